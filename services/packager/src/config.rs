//! The packager configuration: one typed struct, read from the environment in one place and
//! validated at start-up (every bad or missing field is named).

use bw_benchling::ClientOptions;
use bw_config::{ConfigError, Env, FieldError, SecretSource, SecretWatchOptions, StoreBackend};
use bw_queue::QueueBackend;
use bw_telemetry::TelemetryConfig;
use bw_worker::WorkerConfig;

use crate::Queues;
use crate::readme::TemplateSource;

/// Everything the packager needs to run.
#[derive(Clone, Debug)]
pub struct PackagerConfig {
    /// `BenchlingSecret`; the worker consumes nothing until it has loaded.
    pub secret: Option<SecretSource>,
    /// How the secret is retried and refreshed.
    pub secret_watch: SecretWatchOptions,
    /// The Benchling API client (entity names).
    pub benchling: ClientOptions,
    /// The queues: `RENDER_QUEUE_URL` (FIFO, consumed), `CANVAS_QUEUE_URL` (FIFO, "updated"
    /// notices) and `PACKAGER_SQS_URL` (Quilt's packager queue, owned by the Quilt stack:
    /// standard, or FIFO when the URL ends in `.fifo`); all or none.
    pub queues: QueueBackend,
    /// `OBJECT_STORE`, `OBJECT_STORE_DIR`.
    pub store: StoreBackend,
    /// `README_TEMPLATE`: a file path or `s3://bucket/key` of a custom README template; the
    /// built-in one when unset.
    pub readme_template: Option<TemplateSource>,
    /// Concurrency (`WORKER_CONCURRENCY`, default 4), visibility, probes and stop grace.
    pub worker: WorkerConfig,
    /// Logging and tracing.
    pub telemetry: TelemetryConfig,
}

impl PackagerConfig {
    /// Reads and validates the configuration.
    pub fn from_env(env: Env) -> Result<Self, ConfigError> {
        let secret = env
            .optional("BenchlingSecret")
            .map(|raw| SecretSource::parse(&raw));
        let queues = QueueBackend::from_env(&env, &Queues::NAMES, &[]);
        let sqs = queues.is_sqs();
        let readme_template = env.optional("README_TEMPLATE").map(|raw| {
            TemplateSource::parse(&raw).unwrap_or_else(|reason| {
                env.record(FieldError::invalid("README_TEMPLATE", reason));
                TemplateSource::BuiltIn
            })
        });
        let config = Self {
            secret,
            secret_watch: SecretWatchOptions::from_env(&env),
            benchling: ClientOptions::from_env(&env),
            queues,
            store: StoreBackend::from_env(&env, sqs),
            readme_template,
            worker: WorkerConfig::from_env(&env, 4),
            telemetry: TelemetryConfig::from_env(&env, "benchling-webhook-packager"),
        };
        env.finish(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_embedded_with_the_built_in_template() {
        let config = PackagerConfig::from_env(Env::from_pairs([("PORT", "0")])).unwrap();
        assert_eq!(
            config.queues,
            QueueBackend::Embedded(bw_queue::Capacity::default())
        );
        assert!(config.readme_template.is_none());
        assert_eq!(config.worker.concurrency, 4);
    }

    #[test]
    fn sqs_needs_the_packager_queue_and_names_bad_fields() {
        let queue = |name: &str| format!("http://127.0.0.1:5000/123456789012/{name}.fifo");
        let err = PackagerConfig::from_env(Env::from_pairs([
            ("RENDER_QUEUE_URL", queue("render")),
            ("CANVAS_QUEUE_URL", queue("canvas")),
            ("README_TEMPLATE", "ftp://x/readme.md".to_owned()),
        ]))
        .unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field().to_owned()).collect();
        assert_eq!(fields, ["PACKAGER_SQS_URL", "README_TEMPLATE"], "{err}");
        let config = PackagerConfig::from_env(Env::from_pairs([
            ("RENDER_QUEUE_URL", queue("render")),
            ("CANVAS_QUEUE_URL", queue("canvas")),
            (
                "PACKAGER_SQS_URL",
                "http://127.0.0.1:5000/123456789012/quilt-packager".to_owned(),
            ),
            (
                "README_TEMPLATE",
                "s3://bucket/templates/readme.md.j2".to_owned(),
            ),
        ]))
        .unwrap();
        assert!(config.queues.is_sqs());
        assert_eq!(config.store, StoreBackend::S3);
        assert_eq!(
            config.readme_template,
            Some(TemplateSource::S3 {
                bucket: "bucket".into(),
                key: "templates/readme.md.j2".into()
            })
        );
    }
}
