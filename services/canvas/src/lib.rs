//! The canvas worker: everything the user sees inside Benchling. It renders the entry's App
//! Canvas (main view with linked packages, file browser, metadata), creates the canvas when
//! Benchling asks, turns "Update Package" into an export job, and refreshes the canvas when
//! Quilt announces a new revision of the entry's package.
//!
//! [`Service::connect`](bw_worker::Service::connect) opens what the configuration names; [`bw_worker::run`] consumes canvas jobs (and
//! package events, when their queue is configured) until stopped.

pub mod athena;
pub mod cache;
pub mod config;
pub mod events;
pub mod handler;
pub mod queues;
pub mod record;
pub mod view;

use std::sync::Arc;

use bw_benchling::{BenchlingClient, BenchlingError};
use bw_config::SecretWatch;
use bw_queue::{QueueError, QueueOpener};
use bw_store::Buckets;
use bw_worker::{Consumer, Warnings};

pub use config::CanvasConfig;
pub use events::PackageEventHandler;
pub use handler::{CanvasHandler, LinkedPackages};
pub use queues::Queues;

use crate::athena::{AthenaError, PackageQuery};
use crate::cache::{EntryCache, ManifestCache};

/// What the canvas worker works with, opened from its configuration.
#[derive(Debug)]
pub struct Connections {
    /// Its queues.
    pub queues: Queues,
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

impl bw_worker::Service for CanvasConfig {
    type Connections = Connections;
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

    /// Opens the queues, secret, buckets and Athena client the configuration names. AWS clients are
    /// created only when something lives in AWS.
    ///
    /// # Errors
    /// [`RunError::Athena`] when the Athena settings are unusable.
    async fn connect(&self) -> Result<Connections, RunError> {
        let aws = bw_config::aws_sdk_config_for(&[
            &self.queues,
            &self.store,
            &self.secret,
            &self.athena.is_some(),
        ])
        .await;
        let queues = Queues::open(&QueueOpener::new(&self.queues, aws.as_ref()));
        let query = match (&self.athena, &aws) {
            (Some(options), Some(aws)) => Some(PackageQuery::new(
                aws_sdk_athena::Client::new(aws),
                options.clone(),
            )?),
            _ => None,
        };
        Ok(Connections {
            queues,
            secret: SecretWatch::connect(self.secret.as_ref(), aws.as_ref(), &self.secret_watch),
            buckets: Buckets::for_backend(&self.store, aws.as_ref()),
            query,
        })
    }

    /// Canvas jobs, and package events when their queue is configured.
    fn consumers(
        &self,
        connections: Connections,
    ) -> Result<(Vec<Consumer>, SecretWatch), RunError> {
        let Connections {
            queues,
            secret,
            buckets,
            query,
        } = connections;
        let warnings = Warnings::default();
        match (&query, &self.athena) {
            (Some(query), Some(athena)) => {
                tracing::info!(
                    database = %athena.database,
                    workgroup = %athena.workgroup,
                    "linked packages found with Athena"
                );
                tokio::spawn(athena::watch_workgroup(query.clone(), warnings.clone()));
            }
            _ => tracing::warn!("no ATHENA_USER_DATABASE: canvases list no linked packages"),
        }
        if queues.package_events.is_none() {
            tracing::info!(
                "no PACKAGE_EVENT_QUEUE_URL: canvases are refreshed only by the packager"
            );
        }
        tracing::info!(store = %buckets.describe(), "canvas worker starting");
        let canvas = CanvasHandler {
            client: BenchlingClient::new(Arc::new(secret.clone()), self.benchling.clone())?,
            secret: secret.clone(),
            buckets: buckets.clone(),
            export_queue: Arc::clone(&queues.export),
            linked: LinkedPackages {
                query,
                cache: EntryCache::new(self.cache_ttl),
            },
            display_ids: EntryCache::new(self.cache_ttl),
            manifests: ManifestCache::new(self.manifest_cache_files),
            quilt_host: self.quilt_host.clone(),
        };
        let mut consumers = vec![
            Consumer::new(&self.worker, Arc::clone(&queues.canvas), Arc::new(canvas))
                .with_warnings(warnings),
        ];
        if let Some(events) = queues.package_events {
            let handler = PackageEventHandler {
                secret: secret.clone(),
                buckets,
                canvas_queue: queues.canvas,
            };
            consumers.push(Consumer::new(&self.worker, events, Arc::new(handler)));
        }
        Ok((consumers, secret))
    }
}
