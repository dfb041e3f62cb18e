//! The packager worker: turns an exported entry version into a Quilt package announcement. It
//! writes the metadata files (`entry.json`, `entry_data.json`, `links.json`, `input.json`,
//! `README.md`) into the package prefix, sends Quilt's packager message once per version, and
//! tells the canvas.
//!
//! [`Service::connect`](bw_worker::Service::connect) opens what the configuration names and loads the README template (a broken one
//! stops the service here); [`bw_worker::run`] consumes render jobs until stopped.

pub mod announce;
pub mod config;
pub mod handler;
pub mod metadata;
pub mod queues;
pub mod readme;
pub mod references;

use std::sync::Arc;

use bw_benchling::{BenchlingClient, BenchlingError};
use bw_config::SecretWatch;
use bw_queue::{QueueError, QueueOpener};
use bw_store::{Buckets, Key, StoreError};
use bw_worker::Consumer;

pub use config::PackagerConfig;
pub use handler::RenderHandler;
pub use queues::Queues;
pub use readme::{Readme, TemplateError, TemplateSource};

/// Largest custom README template read.
const MAX_TEMPLATE_BYTES: u64 = 1024 * 1024;

/// What the packager works with, opened from its configuration.
#[derive(Debug)]
pub struct Connections {
    /// Its queues.
    pub queues: Queues,
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

impl bw_worker::Service for PackagerConfig {
    type Connections = Connections;
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

    /// Opens the queues, secret and buckets the configuration names and loads the README template.
    ///
    /// # Errors
    /// [`RunError::Template`] or [`RunError::TemplateSource`] for a custom template that cannot be
    /// read or does not render.
    async fn connect(&self) -> Result<Connections, RunError> {
        let template_in_s3 = matches!(self.readme_template, Some(TemplateSource::S3 { .. }));
        let aws = bw_config::aws_sdk_config_for(&[
            &self.queues,
            &self.store,
            &self.secret,
            &template_in_s3,
        ])
        .await;
        let queues = Queues::open(&QueueOpener::new(&self.queues, aws.as_ref()));
        let readme = load_template(
            self.readme_template.as_ref(),
            aws.as_ref().filter(|_| template_in_s3),
        )
        .await?;
        Ok(Connections {
            queues,
            secret: SecretWatch::connect(self.secret.as_ref(), aws.as_ref(), &self.secret_watch),
            buckets: Buckets::for_backend(&self.store, aws.as_ref()),
            readme,
        })
    }

    /// One consumer: render jobs.
    fn consumers(
        &self,
        connections: Connections,
    ) -> Result<(Vec<Consumer>, SecretWatch), RunError> {
        let Connections {
            queues,
            secret,
            buckets,
            readme,
        } = connections;
        tracing::info!(store = %buckets.describe(), packager_queue = queues.packager.name(), "packager starting");
        let handler = RenderHandler {
            client: BenchlingClient::new(Arc::new(secret.clone()), self.benchling.clone())?,
            secret: secret.clone(),
            buckets,
            queues: queues.clone(),
            readme,
        };
        let consumer = Consumer::new(&self.worker, queues.render, Arc::new(handler));
        Ok((vec![consumer], secret))
    }
}
