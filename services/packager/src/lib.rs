//! The packager worker: turns an exported entry version into a Quilt package announcement. It
//! writes the metadata files (`entry.json`, `entry_data.json`, `links.json`, `input.json`,
//! `README.md`) into the package prefix, sends Quilt's packager message once per version, and
//! tells the canvas.
//!
//! [`connect`] opens what the configuration names and loads the README template (a broken one
//! stops the service here); [`run`] consumes render jobs until stopped.

pub mod announce;
pub mod config;
pub mod metadata;
pub mod readme;
pub mod references;
pub mod worker;

use std::sync::Arc;

use bw_benchling::{BenchlingClient, BenchlingError};
use bw_config::{SecretSource, SecretWatch, StoreBackend};
use bw_queue::{EmbeddedOptions, EmbeddedQueue, QueueError, SqsQueue};
use bw_store::{Buckets, Key, StoreError};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{PackagerConfig, QueueBackend};
pub use readme::{Readme, TemplateError, TemplateSource};
pub use worker::{PackageWorker, PackagerQueues};

/// Largest custom README template read.
const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;

/// What the packager works with, opened from its configuration.
#[derive(Debug)]
pub struct Connections {
    /// Its queues.
    pub queues: PackagerQueues,
    /// The Benchling secret, kept current.
    pub secret: SecretWatch,
    /// Where package buckets live.
    pub buckets: Buckets,
    /// The checked README template.
    pub readme: Readme,
}

/// Why the packager could not start or keep consuming.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The custom README template cannot be read or used.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The custom README template could not be fetched.
    #[error("reading the README template {origin}: {message}")]
    TemplateSource {
        /// Where it was looked for.
        origin: String,
        /// Why it could not be read.
        message: String,
    },
    /// The Benchling client could not be built.
    #[error(transparent)]
    Client(#[from] BenchlingError),
    /// The render queue could not be set up.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Opens the queues, secret and buckets the configuration names and loads the README template.
///
/// # Errors
/// [`RunError::Template`] or [`RunError::TemplateSource`] for a custom template that cannot be
/// read or does not render.
pub async fn connect(config: &PackagerConfig) -> Result<Connections, RunError> {
    let template_in_s3 = matches!(config.readme_template, Some(TemplateSource::S3 { .. }));
    let needs_aws = matches!(config.queues, QueueBackend::Sqs { .. })
        || config.store == StoreBackend::S3
        || template_in_s3
        || matches!(config.secret, Some(SecretSource::SecretsManager(_)));
    let aws = bw_config::aws_sdk_config_if(needs_aws).await;
    let queues = match (&config.queues, &aws) {
        (
            QueueBackend::Sqs {
                render_url,
                canvas_url,
                packager_url,
            },
            Some(aws),
        ) => {
            let client = aws_sdk_sqs::Client::new(aws);
            let queue = |url: &str| Arc::new(SqsQueue::new(client.clone(), url));
            PackagerQueues {
                render: queue(render_url),
                canvas: queue(canvas_url),
                packager: queue(packager_url),
            }
        }
        _ => {
            tracing::warn!(
                "no RENDER_QUEUE_URL/CANVAS_QUEUE_URL/PACKAGER_SQS_URL: using in-process queues, which only other services in this process can reach"
            );
            PackagerQueues {
                render: EmbeddedQueue::with_dead_letter("render.fifo", true).0,
                canvas: EmbeddedQueue::with_dead_letter("canvas.fifo", true).0,
                packager: EmbeddedQueue::new(EmbeddedOptions::new("quilt-packager")),
            }
        }
    };
    let readme = load_template(
        config.readme_template.as_ref(),
        aws.as_ref().filter(|_| template_in_s3),
    )
    .await?;
    Ok(Connections {
        queues,
        secret: SecretWatch::connect(config.secret.as_ref(), aws.as_ref(), config.secret_watch),
        buckets: Buckets::for_backend(&config.store, aws.as_ref()),
        readme,
    })
}

/// Reads and checks the configured README template.
///
/// # Errors
/// When the template cannot be read, does not parse, or fails on a sample entry.
pub async fn load_template(
    source: Option<&TemplateSource>,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<Readme, RunError> {
    let unreadable = |origin: String, message: String| RunError::TemplateSource { origin, message };
    let (text, origin) = match source {
        None | Some(TemplateSource::BuiltIn) => return Ok(Readme::built_in()),
        Some(TemplateSource::File(path)) => {
            let origin = path.display().to_string();
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| unreadable(origin.clone(), e.to_string()))?;
            (text, origin)
        }
        Some(TemplateSource::S3 { bucket, key }) => {
            let origin = format!("s3://{bucket}/{key}");
            let aws =
                aws.ok_or_else(|| unreadable(origin.clone(), "no AWS configuration".to_owned()))?;
            let store = Buckets::S3(bw_store::s3_client(aws))
                .open(bucket)
                .map_err(|e| unreadable(origin.clone(), e.to_string()))?;
            let key =
                Key::new(key.clone()).map_err(|e| unreadable(origin.clone(), e.to_string()))?;
            let bytes = store
                .get_bytes(&key, MAX_TEMPLATE_BYTES)
                .await
                .map_err(|e: StoreError| unreadable(origin.clone(), e.to_string()))?;
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| unreadable(origin.clone(), "not UTF-8".to_owned()))?;
            (text, origin)
        }
    };
    let readme = Readme::new(text, &origin)?;
    tracing::info!(template = %origin, "custom README template loaded");
    Ok(readme)
}

/// Serves the probes on `listener` (see [`bw_worker::WorkerConfig::bind_probes`]) and consumes
/// render jobs until `stop` turns true.
pub async fn run(
    config: &PackagerConfig,
    connections: Connections,
    listener: TcpListener,
    stop: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let Connections {
        queues,
        secret,
        buckets,
        readme,
    } = connections;
    tracing::info!(store = %buckets.describe(), packager_queue = queues.packager.name(), "packager starting");
    let handler = PackageWorker {
        client: BenchlingClient::new(Arc::new(secret.clone()), config.benchling.clone())?,
        secret: secret.clone(),
        buckets,
        queues: queues.clone(),
        readme,
    };
    let consumer = bw_worker::Consumer::new(&config.worker, queues.render, Arc::new(handler));
    bw_worker::serve(vec![consumer], secret, listener, stop).await?;
    Ok(())
}

impl bw_worker::Service for PackagerConfig {
    type Error = RunError;

    fn worker(&self) -> &bw_worker::WorkerConfig {
        &self.worker
    }

    fn telemetry(&self) -> &bw_telemetry::TelemetryConfig {
        &self.telemetry
    }

    fn is_config_error(error: &RunError) -> bool {
        matches!(
            error,
            RunError::Template(_) | RunError::TemplateSource { .. } | RunError::Client(_)
        )
    }

    async fn run(self, probes: TcpListener, stop: watch::Receiver<bool>) -> Result<(), RunError> {
        let connections = connect(&self).await?;
        run(&self, connections, probes, stop).await
    }
}
