//! The export worker: turns a Benchling entry export into the package's files in object storage,
//! then hands a render job to the packager.
//!
//! [`connect`] opens what the configuration names (queues, the secret, the buckets) and [`run`]
//! consumes export jobs with them until stopped. Keeping the two apart lets one process host
//! several services over shared in-process queues.

pub mod archive;
pub mod config;
pub mod download;
pub mod export;
pub mod publish;
pub mod worker;

use std::sync::Arc;

use bw_benchling::{BenchlingClient, BenchlingError};
use bw_config::{SecretWatch, StoreBackend};
use bw_queue::{EmbeddedQueue, QueueError, SqsQueue};
use bw_store::Buckets;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{ExporterConfig, QueueBackend};
pub use worker::{ExportQueues, ExportSettings, ExportWorker};

use crate::publish::UploadOptions;

/// What the exporter works with, opened from its configuration.
#[derive(Clone, Debug)]
pub struct Connections {
    /// Its queues.
    pub queues: ExportQueues,
    /// The Benchling secret, kept current.
    pub secret: SecretWatch,
    /// Where package buckets live.
    pub buckets: Buckets,
}

/// Why the exporter could not start or keep consuming.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The Benchling client could not be built (a bad base URL).
    #[error(transparent)]
    Client(#[from] BenchlingError),
    /// The export queue could not be set up.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Opens the queues, secret and buckets the configuration names. AWS clients are created only
/// when something lives in AWS.
pub async fn connect(config: &ExporterConfig) -> Connections {
    let needs_aws = matches!(config.queues, QueueBackend::Sqs { .. })
        || config.store == StoreBackend::S3
        || matches!(
            config.secret,
            Some(bw_config::SecretSource::SecretsManager(_))
        );
    let aws = bw_config::aws_sdk_config_if(needs_aws).await;
    let queues = match (&config.queues, &aws) {
        (
            QueueBackend::Sqs {
                export_url,
                render_url,
                canvas_url,
            },
            Some(aws),
        ) => {
            let client = aws_sdk_sqs::Client::new(aws);
            let queue = |url: &str| Arc::new(SqsQueue::new(client.clone(), url));
            ExportQueues {
                export: queue(export_url),
                render: queue(render_url),
                canvas: queue(canvas_url),
            }
        }
        _ => {
            tracing::warn!(
                "no EXPORT_QUEUE_URL/RENDER_QUEUE_URL/CANVAS_QUEUE_URL: using in-process queues, which only other services in this process can reach"
            );
            ExportQueues {
                export: EmbeddedQueue::with_dead_letter("export.fifo", true).0,
                render: EmbeddedQueue::with_dead_letter("render.fifo", true).0,
                canvas: EmbeddedQueue::with_dead_letter("canvas.fifo", true).0,
            }
        }
    };
    let buckets = Buckets::for_backend(&config.store, aws.as_ref());
    let secret = SecretWatch::connect(config.secret.as_ref(), aws.as_ref(), config.secret_watch);
    Connections {
        queues,
        secret,
        buckets,
    }
}

/// Serves the probes on `listener` (see [`bw_worker::WorkerConfig::bind_probes`]) and consumes
/// export jobs until `stop` turns true; running jobs then get the shutdown timeout to finish
/// before they are released to other consumers.
///
/// Nothing is consumed before the Benchling secret has loaded, so jobs wait in the queue
/// rather than fail while the secret is missing.
pub async fn run(
    config: &ExporterConfig,
    connections: Connections,
    listener: TcpListener,
    stop: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let Connections {
        queues,
        secret,
        buckets,
    } = connections;
    tracing::info!(store = %buckets.describe(), "exporter starting");
    let handler = ExportWorker {
        client: BenchlingClient::new(Arc::new(secret.clone()), config.benchling.clone())?,
        secret: secret.clone(),
        buckets,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| BenchlingError::HttpClient(e.to_string()))?,
        queues: queues.clone(),
        settings: ExportSettings {
            export: config.export,
            download: config.download,
            archive: config.archive,
            upload: UploadOptions {
                concurrency: config.upload_concurrency,
                temp_dir: config.temp_dir.clone(),
            },
        },
    };
    let consumer = bw_worker::Consumer::new(&config.worker, queues.export, Arc::new(handler));
    bw_worker::serve(vec![consumer], secret, listener, stop).await?;
    Ok(())
}

impl bw_worker::Service for ExporterConfig {
    type Error = RunError;

    fn worker(&self) -> &bw_worker::WorkerConfig {
        &self.worker
    }

    fn telemetry(&self) -> &bw_telemetry::TelemetryConfig {
        &self.telemetry
    }

    fn is_config_error(error: &RunError) -> bool {
        matches!(error, RunError::Client(_))
    }

    async fn run(self, probes: TcpListener, stop: watch::Receiver<bool>) -> Result<(), RunError> {
        let connections = connect(&self).await;
        run(&self, connections, probes, stop).await
    }
}
