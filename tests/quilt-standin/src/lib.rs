//! A stand-in for Quilt's packager, for `scripts/local`, compose and the end-to-end tests (never
//! production, where the Quilt stack reads the packager queue). It consumes the packager
//! messages the packager service sends, writes each revision in Quilt's registry layout with
//! the hashes quilt3 computes (`registry`, `manifest`), and announces it with the EventBridge
//! `package-revision` event Quilt sends, so canvases show linked packages and "Updated at"
//! locally as they do in production.

pub mod manifest;
pub mod pyjson;
pub mod registry;

use std::sync::Arc;

use async_trait::async_trait;
use bw_config::{ConfigError, Env, StoreBackend};
use bw_contracts::{PackagerMessage, QueueName};
use bw_queue::{OutgoingMessage, Queue, QueueBackend, QueueError};
use bw_store::Buckets;
use bw_telemetry::TelemetryConfig;
use bw_worker::{Failure, Handler, Incoming, JobContext, Worker, WorkerOptions};
use serde_json::json;
use tokio::sync::watch;

pub use registry::{PackageError, Revision, push};

/// The stand-in's configuration, from the environment the packager and canvas services read.
#[derive(Clone, Debug)]
pub struct QuiltStandInConfig {
    /// `PACKAGER_SQS_URL` (consumed) and `PACKAGE_EVENT_QUEUE_URL` (announced to), both or
    /// neither (in-process queues).
    pub queues: QueueBackend,
    /// `OBJECT_STORE`, `OBJECT_STORE_DIR`: where the registries are.
    pub store: StoreBackend,
    /// `LOG_LEVEL`, `LOG_FORMAT`, `OTEL_*`.
    pub telemetry: TelemetryConfig,
    /// `QUILT_BUILD_DELAY_MS` (default 0): how long a message waits after it is taken off the
    /// queue before its prefix is read, as Quilt's packager may take a while to start on it.
    /// Tests widen the window in which the prefix may change under an announcement this way.
    pub build_delay: std::time::Duration,
}

impl QuiltStandInConfig {
    /// Reads the configuration, naming every missing or bad variable.
    pub fn from_env(env: Env) -> Result<Self, ConfigError> {
        let queues = QueueBackend::from_env(
            &env,
            &[QueueName::QUILT_PACKAGER, QueueName::PACKAGE_EVENTS],
            &[],
        );
        let config = Self {
            build_delay: env.millis_or(
                "QUILT_BUILD_DELAY_MS",
                std::time::Duration::ZERO,
                0..=60_000,
            ),
            store: StoreBackend::from_env(&env, queues.is_sqs()),
            telemetry: TelemetryConfig::from_env(&env, "quilt-standin"),
            queues,
        };
        env.finish(config)
    }
}

/// A packager message, as the worker runtime reads it from the queue.
pub struct Request(pub PackagerMessage);

impl Incoming for Request {
    fn decode(body: &str) -> Result<(Self, Option<String>), String> {
        serde_json::from_str(body)
            .map(|message| (Self(message), None))
            .map_err(|e| format!("not a packager message: {e}"))
    }
}

/// Builds and announces revisions.
pub struct QuiltStandIn {
    buckets: Buckets,
    events: Arc<dyn Queue>,
    build_delay: std::time::Duration,
}

impl QuiltStandIn {
    /// A stand-in writing to `buckets` and announcing on `events` (the package-event queue).
    pub fn new(buckets: Buckets, events: Arc<dyn Queue>) -> Self {
        Self {
            buckets,
            events,
            build_delay: std::time::Duration::ZERO,
        }
    }

    /// Waits `delay` after taking each message off the queue before building it.
    #[must_use]
    pub fn with_build_delay(mut self, delay: std::time::Duration) -> Self {
        self.build_delay = delay;
        self
    }

    /// Consumes `packager` until `stop` turns true.
    ///
    /// # Errors
    /// When the queue cannot be set up.
    pub async fn run(
        self,
        packager: Arc<dyn Queue>,
        stop: watch::Receiver<bool>,
    ) -> Result<(), QueueError> {
        let options = WorkerOptions {
            concurrency: 2,
            ..WorkerOptions::default()
        };
        Worker::new(packager, options)
            .run(Arc::new(self), stop)
            .await
    }
}

/// The EventBridge event Quilt sends for a new revision (`com.quiltdata` / `package-revision`).
pub fn revision_event(revision: &Revision) -> String {
    json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "package-revision",
        "source": "com.quiltdata",
        "account": "123456789012",
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "version": "0.1",
            "type": "created",
            "bucket": revision.bucket,
            "handle": revision.name,
            "topHash": revision.top_hash,
        },
    })
    .to_string()
}

#[async_trait]
impl Handler for QuiltStandIn {
    type Job = Request;

    async fn handle(&self, request: &Request, _: &JobContext) -> Result<String, Failure> {
        tokio::time::sleep(self.build_delay).await;
        let revision = push(&self.buckets, &request.0)
            .await
            .map_err(|e| Failure::of(&e, e.is_permanent()))?;
        self.events
            .send(OutgoingMessage::new(revision_event(&revision)))
            .await
            .map_err(|e| Failure::of(&e, false))?;
        Ok(format!(
            "revision {}@{} of {} files in {}",
            revision.name, revision.top_hash, revision.files, revision.bucket
        ))
    }

    async fn dead_lettered(&self, request: Option<&Request>, reason: &str) {
        tracing::error!(
            package = request.map(|r| r.0.package_name.as_str()),
            reason,
            "packager message dead-lettered"
        );
    }
}
