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

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bw_benchling::{BenchlingClient, BenchlingError};
use bw_config::{SecretState, SecretWatch};
use bw_queue::{EmbeddedQueue, QueueError, SqsQueue};
use bw_store::Buckets;
use bw_worker::{Worker, WorkerOptions, serve_probes};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{ExporterConfig, QueueBackend, StoreBackend};
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
    /// The probe port could not be bound.
    #[error("binding the probe port {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
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
    let buckets = match (&config.store, &aws) {
        (StoreBackend::S3, Some(aws)) => Buckets::S3(bw_store::s3_client(aws)),
        (StoreBackend::Directory(root), _) => Buckets::Directory(root.clone()),
        (StoreBackend::S3, None) => unreachable!("S3 always loads the AWS configuration"),
    };
    let secret = SecretWatch::connect(config.secret.as_ref(), aws.as_ref(), config.secret_watch);
    Connections {
        queues,
        secret,
        buckets,
    }
}

/// Serves the probes and consumes export jobs until `stop` turns true; running jobs then get
/// `config.shutdown_timeout` to finish before they are released to other consumers.
///
/// Nothing is consumed before the Benchling secret has loaded, so jobs wait in the queue
/// rather than fail while the secret is missing.
pub async fn run(
    config: &ExporterConfig,
    connections: Connections,
    stop: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let addr = SocketAddr::new(config.probe_host, config.probe_port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Bind { addr, source })?;
    run_with_listener(config, connections, listener, stop).await
}

/// [`run`] with an already bound probe listener (tests bind port 0 and read the address).
pub async fn run_with_listener(
    config: &ExporterConfig,
    connections: Connections,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let Connections {
        queues,
        mut secret,
        buckets,
    } = connections;
    let client = BenchlingClient::new(Arc::new(secret.clone()), config.benchling.clone())?;
    let worker = Worker::new(
        Arc::clone(&queues.export),
        WorkerOptions {
            concurrency: config.concurrency,
            visibility: config.visibility,
            shutdown_grace: config.shutdown_timeout,
            ..WorkerOptions::default()
        },
    );
    let health = worker.health();
    let probe_secret = secret.clone();
    let readiness = move || match probe_secret.state() {
        SecretState::Ready(_) => health.check(),
        SecretState::Loading => Err("the Benchling secret is loading".to_owned()),
        SecretState::Unavailable { error, .. } => Err(error),
    };
    tracing::info!(
        probes = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()),
        queue = queues.export.name(),
        store = %buckets.describe(),
        "exporter starting"
    );
    tokio::spawn(serve_probes(listener, Arc::new(readiness), stop.clone()));

    if secret.secret().is_none() {
        tracing::info!("waiting for the Benchling secret before consuming");
    }
    tokio::select! {
        _ = secret.ready() => {}
        _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| BenchlingError::HttpClient(e.to_string()))?;
    let handler = ExportWorker {
        client,
        secret,
        buckets,
        http,
        queues,
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
    worker.run(Arc::new(handler), stop).await?;
    Ok(())
}
