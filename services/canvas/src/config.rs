//! The canvas worker's configuration: one typed struct, read from the environment in one place
//! and validated at start-up (every bad or missing field is named).

use std::time::Duration;

use bw_benchling::ClientOptions;
use bw_config::{ConfigError, Env, FieldError, SecretSource, SecretWatchOptions, StoreBackend};
use bw_queue::{QueueBackend, QueueName};
use bw_telemetry::TelemetryConfig;
use bw_worker::WorkerConfig;

use crate::Queues;
use crate::athena::{AthenaOptions, valid_database, valid_workgroup};

/// The workgroup used when none is configured.
pub const DEFAULT_WORKGROUP: &str = "primary";

/// Everything the canvas worker needs to run.
#[derive(Clone, Debug)]
pub struct CanvasConfig {
    /// `BenchlingSecret`; the worker consumes nothing until it has loaded.
    pub secret: Option<SecretSource>,
    /// How the secret is retried and refreshed.
    pub secret_watch: SecretWatchOptions,
    /// The Benchling API client (entries and app canvases).
    pub benchling: ClientOptions,
    /// The queues: `CANVAS_QUEUE_URL` (FIFO, consumed) and `EXPORT_QUEUE_URL` (FIFO, "Update
    /// Package" sends export jobs there), both or neither; with them, optionally
    /// `PACKAGE_EVENT_QUEUE_URL` (Quilt's `package-revision` events, a standard queue fed by
    /// EventBridge; no package-event consumer when unset).
    pub queues: QueueBackend,
    /// `OBJECT_STORE`, `OBJECT_STORE_DIR`: where the registry bucket is read.
    pub store: StoreBackend,
    /// The linked-package query: `ATHENA_USER_DATABASE` (required with SQS; without it, no
    /// linked packages are listed), the workgroup and the output location.
    pub athena: Option<AthenaOptions>,
    /// `QUILT_WEB_HOST`: the Quilt catalog's bare host, for package links.
    pub quilt_host: String,
    /// `LINKED_PACKAGES_CACHE_SECS` (default 60): how long an entry's linked packages and
    /// display id are reused, so paging through a package does not query again.
    pub cache_ttl: Duration,
    /// `MANIFEST_CACHE_FILES` (default 100,000): how many files the parsed manifests kept in
    /// memory may list in total, so paging through a package reads its manifest once.
    pub manifest_cache_files: usize,
    /// Concurrency (`WORKER_CONCURRENCY`, default 8), visibility, probes and stop grace.
    pub worker: WorkerConfig,
    /// Logging and tracing.
    pub telemetry: TelemetryConfig,
}

impl CanvasConfig {
    /// Reads and validates the configuration.
    pub fn from_env(env: Env) -> Result<Self, ConfigError> {
        let secret = env
            .optional("BenchlingSecret")
            .map(|raw| SecretSource::parse(&raw));
        let queues = QueueBackend::from_env(&env, &Queues::NAMES, &[QueueName::PACKAGE_EVENTS]);
        let sqs = queues.is_sqs();
        let config = Self {
            secret,
            secret_watch: SecretWatchOptions::from_env(&env),
            benchling: ClientOptions::from_env(&env),
            athena: athena(&env, sqs),
            quilt_host: quilt_host(&env, sqs),
            queues,
            store: StoreBackend::from_env(&env, sqs),
            cache_ttl: env.seconds_or(
                "LINKED_PACKAGES_CACHE_SECS",
                Duration::from_secs(60),
                0..=3600,
            ),
            manifest_cache_files: env.ranged_or("MANIFEST_CACHE_FILES", 100_000, 0..=10_000_000)
                as usize,
            worker: WorkerConfig::from_env(&env, 8),
            telemetry: TelemetryConfig::from_env(&env, "benchling-webhook-canvas"),
        };
        env.finish(config)
    }
}

/// The Athena settings. The workgroup is checked even without a database, so a typo is caught
/// before the database is added.
fn athena(env: &Env, required: bool) -> Option<AthenaOptions> {
    let (field, workgroup) = env
        .first_of(&["BENCHLING_ATHENA_WORKGROUP", "ATHENA_USER_WORKGROUP"])
        .unwrap_or(("BENCHLING_ATHENA_WORKGROUP", DEFAULT_WORKGROUP.to_owned()));
    if !valid_workgroup(&workgroup) {
        env.record(FieldError::invalid(
            field,
            "must be 1-128 letters, digits, '-', '_' or '.'",
        ));
    }
    let output_location = env.optional("ATHENA_OUTPUT_LOCATION");
    if output_location
        .as_deref()
        .is_some_and(|l| !l.starts_with("s3://") || l.len() <= "s3://".len())
    {
        env.record(FieldError::invalid(
            "ATHENA_OUTPUT_LOCATION",
            "must be an s3://bucket/prefix/ URI",
        ));
    }
    let database = if required {
        env.required("ATHENA_USER_DATABASE")?
    } else {
        env.optional("ATHENA_USER_DATABASE")?
    };
    if !valid_database(&database) {
        env.record(FieldError::invalid(
            "ATHENA_USER_DATABASE",
            "must be 1-255 lowercase letters, digits or '_' (a Glue database name)",
        ));
    }
    let mut options = AthenaOptions::new(database, workgroup);
    options.output_location = output_location;
    options.timeout = env.seconds_or("ATHENA_QUERY_TIMEOUT_SECS", options.timeout, 1..=600);
    Some(options)
}

/// `QUILT_WEB_HOST`: required with SQS; `localhost` for the local pipeline.
fn quilt_host(env: &Env, required: bool) -> String {
    let host = if required {
        env.required("QUILT_WEB_HOST")
    } else {
        env.optional("QUILT_WEB_HOST")
    };
    let Some(host) = host else {
        return "localhost".to_owned();
    };
    let bare = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'));
    if !bare {
        env.record(FieldError::invalid(
            "QUILT_WEB_HOST",
            "must be a bare host such as catalog.example.com (no scheme or path)",
        ));
    }
    host
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(name: &str) -> String {
        format!("http://127.0.0.1:5000/123456789012/{name}")
    }

    fn fields(env: Env) -> Vec<String> {
        let err = CanvasConfig::from_env(env).unwrap_err();
        err.0.iter().map(|e| e.field().to_owned()).collect()
    }

    #[test]
    fn embedded_defaults_need_no_athena() {
        let config = CanvasConfig::from_env(Env::from_pairs([("PORT", "0")])).unwrap();
        assert_eq!(
            config.queues,
            QueueBackend::Embedded(bw_queue::Capacity::default())
        );
        assert!(config.athena.is_none());
        assert_eq!(config.quilt_host, "localhost");
        assert_eq!(config.cache_ttl, Duration::from_secs(60));
    }

    #[test]
    fn sqs_needs_the_database_and_the_catalog_host() {
        let env = Env::from_pairs([
            ("CANVAS_QUEUE_URL", queue("canvas.fifo")),
            ("EXPORT_QUEUE_URL", queue("export.fifo")),
        ]);
        assert_eq!(fields(env), ["ATHENA_USER_DATABASE", "QUILT_WEB_HOST"]);
        let config = CanvasConfig::from_env(Env::from_pairs([
            ("CANVAS_QUEUE_URL", queue("canvas.fifo")),
            ("EXPORT_QUEUE_URL", queue("export.fifo")),
            ("PACKAGE_EVENT_QUEUE_URL", queue("package-events")),
            ("ATHENA_USER_DATABASE", "quilt_db".to_owned()),
            ("ATHENA_USER_WORKGROUP", "quilt-wg.1".to_owned()),
            ("QUILT_WEB_HOST", "catalog.example.com".to_owned()),
        ]))
        .unwrap();
        let athena = config.athena.unwrap();
        assert_eq!(
            (athena.database.as_str(), athena.workgroup.as_str()),
            ("quilt_db", "quilt-wg.1")
        );
        assert!(config.queues.url(QueueName::PACKAGE_EVENTS).is_some());
        assert_eq!(config.store, StoreBackend::S3);
    }

    #[test]
    fn bad_values_are_named_and_the_preferred_workgroup_name_wins() {
        let env = Env::from_pairs([
            ("BENCHLING_ATHENA_WORKGROUP", "bad workgroup"),
            ("ATHENA_USER_WORKGROUP", "fine"),
            ("ATHENA_USER_DATABASE", "Quilt-DB"),
            ("ATHENA_OUTPUT_LOCATION", "https://bucket/results"),
            ("QUILT_WEB_HOST", "https://catalog.example.com"),
            ("PACKAGE_EVENT_QUEUE_URL", "http://127.0.0.1:5000/1/events"),
        ]);
        assert_eq!(
            fields(env),
            [
                "PACKAGE_EVENT_QUEUE_URL",
                "BENCHLING_ATHENA_WORKGROUP",
                "ATHENA_OUTPUT_LOCATION",
                "ATHENA_USER_DATABASE",
                "QUILT_WEB_HOST"
            ]
        );
        let alias_only = Env::from_pairs([("ATHENA_USER_WORKGROUP", "x".repeat(129))]);
        assert_eq!(fields(alias_only), ["ATHENA_USER_WORKGROUP"]);
    }
}
