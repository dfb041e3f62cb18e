//! The canvas worker: everything the user sees inside Benchling. It renders the entry's App
//! Canvas (main view with linked packages, file browser, metadata), creates the canvas when
//! Benchling asks, turns "Update Package" into an export job, and refreshes the canvas when
//! Quilt announces a new revision of the entry's package.
//!
//! [`connect`] opens what the configuration names; [`run`] consumes canvas jobs (and package
//! events, when their queue is configured) until stopped.

pub mod athena;
pub mod cache;
pub mod config;
pub mod events;
pub mod record;
pub mod registry;
pub mod view;
pub mod worker;

use std::sync::Arc;

use bw_benchling::{BenchlingClient, BenchlingError};
use bw_config::{SecretSource, SecretWatch, StoreBackend};
use bw_queue::{EmbeddedQueue, Queue, QueueError, SqsQueue};
use bw_store::Buckets;
use bw_worker::Consumer;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::{CanvasConfig, QueueBackend};
pub use events::PackageEventWorker;
pub use worker::{CanvasWorker, LinkedPackages};

use crate::athena::{AthenaError, PackageQuery};
use crate::cache::{EntryCache, ManifestCache};

/// The queues the canvas worker talks to.
#[derive(Clone, Debug)]
pub struct CanvasQueues {
    /// Canvas jobs come from here; refreshes caused by package events go here too.
    pub canvas: Arc<dyn Queue>,
    /// "Update Package" sends export jobs here.
    pub export: Arc<dyn Queue>,
    /// Quilt's package events, when configured.
    pub package_events: Option<Arc<dyn Queue>>,
}

/// What the canvas worker works with, opened from its configuration.
#[derive(Debug)]
pub struct Connections {
    /// Its queues.
    pub queues: CanvasQueues,
    /// The Benchling secret, kept current.
    pub secret: SecretWatch,
    /// Where the registry bucket lives.
    pub buckets: Buckets,
    /// The linked-package query, when an Athena database is configured.
    pub query: Option<PackageQuery>,
}

/// Why the canvas worker could not start or keep consuming.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The Benchling client could not be built (a bad base URL).
    #[error(transparent)]
    Client(#[from] BenchlingError),
    /// The Athena settings are unusable.
    #[error(transparent)]
    Athena(#[from] AthenaError),
    /// A queue could not be set up.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Opens the queues, secret, buckets and Athena client the configuration names. AWS clients are
/// created only when something lives in AWS.
///
/// # Errors
/// [`RunError::Athena`] when the Athena settings are unusable.
pub async fn connect(config: &CanvasConfig) -> Result<Connections, RunError> {
    let needs_aws = matches!(config.queues, QueueBackend::Sqs { .. })
        || config.store == StoreBackend::S3
        || config.athena.is_some()
        || matches!(config.secret, Some(SecretSource::SecretsManager(_)));
    let aws = bw_config::aws_sdk_config_if(needs_aws).await;
    let queues = match (&config.queues, &aws) {
        (
            QueueBackend::Sqs {
                canvas_url,
                export_url,
                package_event_url,
            },
            Some(aws),
        ) => {
            let client = aws_sdk_sqs::Client::new(aws);
            let queue =
                |url: &str| -> Arc<dyn Queue> { Arc::new(SqsQueue::new(client.clone(), url)) };
            CanvasQueues {
                canvas: queue(canvas_url),
                export: queue(export_url),
                package_events: package_event_url.as_deref().map(queue),
            }
        }
        _ => {
            tracing::warn!(
                "no CANVAS_QUEUE_URL/EXPORT_QUEUE_URL: using in-process queues, which only other services in this process can reach"
            );
            CanvasQueues {
                canvas: EmbeddedQueue::with_dead_letter("canvas.fifo", true).0,
                export: EmbeddedQueue::with_dead_letter("export.fifo", true).0,
                package_events: None,
            }
        }
    };
    let query = match (&config.athena, &aws) {
        (Some(options), Some(aws)) => Some(PackageQuery::new(
            aws_sdk_athena::Client::new(aws),
            options.clone(),
        )?),
        _ => None,
    };
    Ok(Connections {
        queues,
        secret: SecretWatch::connect(config.secret.as_ref(), aws.as_ref(), config.secret_watch),
        buckets: Buckets::for_backend(&config.store, aws.as_ref()),
        query,
    })
}

/// Serves the probes on `listener` (see [`bw_worker::WorkerConfig::bind_probes`]) and consumes
/// canvas jobs and package events until `stop` turns true.
///
/// # Errors
/// When the Benchling client cannot be built or a queue cannot be set up.
pub async fn run(
    config: &CanvasConfig,
    connections: Connections,
    listener: TcpListener,
    stop: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let Connections {
        queues,
        secret,
        buckets,
        query,
    } = connections;
    match (&query, &config.athena) {
        (Some(_), Some(athena)) => tracing::info!(
            database = %athena.database,
            workgroup = %athena.workgroup,
            "linked packages found with Athena"
        ),
        _ => tracing::warn!("no ATHENA_USER_DATABASE: canvases list no linked packages"),
    }
    if queues.package_events.is_none() {
        tracing::info!("no PACKAGE_EVENT_QUEUE_URL: canvases are refreshed only by the packager");
    }
    tracing::info!(store = %buckets.describe(), "canvas worker starting");
    let canvas = CanvasWorker {
        client: BenchlingClient::new(Arc::new(secret.clone()), config.benchling.clone())?,
        secret: secret.clone(),
        buckets: buckets.clone(),
        export_queue: Arc::clone(&queues.export),
        linked: LinkedPackages {
            query,
            cache: EntryCache::new(config.cache_ttl),
        },
        display_ids: EntryCache::new(config.cache_ttl),
        manifests: ManifestCache::new(config.manifest_cache_files),
        quilt_host: config.quilt_host.clone(),
    };
    let mut consumers = vec![Consumer::new(
        &config.worker,
        Arc::clone(&queues.canvas),
        Arc::new(canvas),
    )];
    if let Some(events) = queues.package_events {
        let handler = PackageEventWorker {
            secret: secret.clone(),
            buckets,
            canvas_queue: queues.canvas,
        };
        consumers.push(Consumer::new(&config.worker, events, Arc::new(handler)));
    }
    bw_worker::serve(consumers, secret, listener, stop).await?;
    Ok(())
}

impl bw_worker::Service for CanvasConfig {
    type Error = RunError;

    fn worker(&self) -> &bw_worker::WorkerConfig {
        &self.worker
    }

    fn telemetry(&self) -> &bw_telemetry::TelemetryConfig {
        &self.telemetry
    }

    fn is_config_error(error: &RunError) -> bool {
        matches!(error, RunError::Athena(_) | RunError::Client(_))
    }

    async fn run(self, probes: TcpListener, stop: watch::Receiver<bool>) -> Result<(), RunError> {
        let connections = connect(&self).await?;
        run(&self, connections, probes, stop).await
    }
}
