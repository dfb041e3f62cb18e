//! The export worker: turns a Benchling entry export into the package's files in object storage,
//! then hands a render job to the packager.
//!
//! [`Service::connect`](bw_worker::Service::connect) opens what the configuration names (queues, the secret, the buckets) and
//! [`bw_worker::run`] consumes export jobs with them until stopped. Keeping the two apart lets
//! one process host several services over shared in-process queues.

pub mod archive;
pub mod config;
pub mod download;
pub mod export;
pub mod handler;
pub mod inflight;
pub mod publish;
pub mod queues;

use std::sync::Arc;

use bw_benchling::{BenchlingClient, BenchlingError};
use bw_config::SecretWatch;
use bw_queue::{QueueError, QueueOpener};
use bw_store::Buckets;
use bw_worker::Consumer;

pub use config::ExporterConfig;
pub use handler::{ExportHandler, ExportSettings};
pub use queues::Queues;

use crate::publish::UploadOptions;

/// What the exporter works with, opened from its configuration.
#[derive(Clone, Debug)]
pub struct Connections {
    /// Its queues.
    pub queues: Queues,
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

impl bw_worker::Service for ExporterConfig {
    type Connections = Connections;
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

    /// Opens the queues, secret and buckets the configuration names. AWS clients are created only
    /// when something lives in AWS.
    async fn connect(&self) -> Result<Connections, RunError> {
        let aws = bw_config::aws_sdk_config_for(&[&self.queues, &self.store, &self.secret]).await;
        Ok(Connections {
            queues: Queues::open(&QueueOpener::new(&self.queues, aws.as_ref())),
            secret: SecretWatch::connect(self.secret.as_ref(), aws.as_ref(), &self.secret_watch),
            buckets: Buckets::for_backend(&self.store, aws.as_ref()),
        })
    }

    /// One consumer: export jobs.
    fn consumers(
        &self,
        connections: Connections,
    ) -> Result<(Vec<Consumer>, SecretWatch), RunError> {
        let Connections {
            queues,
            secret,
            buckets,
        } = connections;
        tracing::info!(store = %buckets.describe(), "exporter starting");
        handler::register_metrics();
        let handler = ExportHandler {
            client: BenchlingClient::new(Arc::new(secret.clone()), self.benchling.clone())?,
            secret: secret.clone(),
            buckets,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(|e| BenchlingError::HttpClient(e.to_string()))?,
            queues: queues.clone(),
            settings: ExportSettings {
                export: self.export,
                download: self.download.clone(),
                archive: self.archive,
                upload: UploadOptions {
                    concurrency: self.upload_concurrency,
                },
                temp_dir: self.temp_dir.clone(),
            },
        };
        let consumer = Consumer::new(&self.worker, queues.export, Arc::new(handler));
        Ok((vec![consumer], secret))
    }
}
