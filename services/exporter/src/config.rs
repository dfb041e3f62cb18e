//! The exporter configuration: one typed struct, read from the environment in one place and
//! validated at start-up (every bad or missing field is named).

use std::path::PathBuf;

use bw_benchling::ClientOptions;
use bw_config::{ConfigError, Env, SecretSource, SecretWatchOptions, StoreBackend};
use bw_queue::QueueBackend;
use bw_telemetry::TelemetryConfig;
use bw_worker::WorkerConfig;

use crate::Queues;
use crate::archive::ArchiveLimits;
use crate::download::DownloadLimits;
use crate::export::ExportOptions;

/// Everything the exporter needs to run.
#[derive(Clone, Debug)]
pub struct ExporterConfig {
    /// `BenchlingSecret`; the worker consumes nothing until it has loaded.
    pub secret: Option<SecretSource>,
    /// How the secret is retried and refreshed.
    pub secret_watch: SecretWatchOptions,
    /// The Benchling API client: base URL (`BENCHLING_API_BASE_URL`, default
    /// `https://{tenant}.benchling.com`), retries and rate limit.
    pub benchling: ClientOptions,
    /// The queues (`EXPORT_QUEUE_URL`, `RENDER_QUEUE_URL`, `CANVAS_QUEUE_URL`, all or none).
    pub queues: QueueBackend,
    /// `OBJECT_STORE` (`s3` or `directory`; default `s3` with SQS queues, `directory` without)
    /// and `OBJECT_STORE_DIR` (default `.local/buckets`).
    pub store: StoreBackend,
    /// Concurrency (`WORKER_CONCURRENCY`, default 2), visibility, probes and stop grace.
    pub worker: WorkerConfig,
    /// `EXPORT_DEADLINE_SECS` (default 1800), `EXPORT_FIRST_POLL_MS` (1000),
    /// `EXPORT_MAX_POLL_SECS` (15).
    pub export: ExportOptions,
    /// `DOWNLOAD_MAX_BYTES` (5 GiB), `DOWNLOAD_TIMEOUT_SECS` (1800).
    pub download: DownloadLimits,
    /// `ARCHIVE_MAX_MEMBERS` (20000), `ARCHIVE_MAX_TOTAL_BYTES` (4 GiB), `ARCHIVE_BOMB_RATIO`
    /// (200), `ARCHIVE_BOMB_MIN_BYTES` (1 MiB).
    pub archive: ArchiveLimits,
    /// `UPLOAD_CONCURRENCY`: members decompressed and uploaded at once per job (default 8).
    pub upload_concurrency: usize,
    /// `EXPORT_TEMP_DIR`: where export ZIPs are downloaded (default: the system's).
    pub temp_dir: PathBuf,
    /// Logging and tracing.
    pub telemetry: TelemetryConfig,
}

impl ExporterConfig {
    /// Reads and validates the configuration.
    pub fn from_env(env: Env) -> Result<Self, ConfigError> {
        let secret = env
            .optional("BenchlingSecret")
            .map(|raw| SecretSource::parse(&raw));
        let queues = QueueBackend::from_env(&env, &Queues::NAMES, &[]);
        let store = StoreBackend::from_env(&env, queues.is_sqs());
        let export_defaults = ExportOptions::default();
        let export = ExportOptions {
            first_poll: env.millis_or(
                "EXPORT_FIRST_POLL_MS",
                export_defaults.first_poll,
                1..=60_000,
            ),
            max_poll_interval: env.seconds_or(
                "EXPORT_MAX_POLL_SECS",
                export_defaults.max_poll_interval,
                1..=300,
            ),
            deadline: env.seconds_or(
                "EXPORT_DEADLINE_SECS",
                export_defaults.deadline,
                10..=6 * 3_600,
            ),
        };
        let benchling = ClientOptions::from_env(&env);
        let download_defaults = DownloadLimits::default();
        let download = DownloadLimits {
            max_bytes: env.ranged_or(
                "DOWNLOAD_MAX_BYTES",
                download_defaults.max_bytes,
                1..=u64::MAX,
            ),
            timeout: env.seconds_or(
                "DOWNLOAD_TIMEOUT_SECS",
                download_defaults.timeout,
                1..=6 * 3_600,
            ),
            // Export downloads come from Benchling, so they may go where its API may.
            plain_http: benchling.plain_http.clone(),
            ..download_defaults
        };
        let archive_defaults = ArchiveLimits::default();
        let archive = ArchiveLimits {
            max_members: env.ranged_or(
                "ARCHIVE_MAX_MEMBERS",
                archive_defaults.max_members as u64,
                1..=1_000_000,
            ) as usize,
            max_total_bytes: env.ranged_or(
                "ARCHIVE_MAX_TOTAL_BYTES",
                archive_defaults.max_total_bytes,
                1..=u64::MAX,
            ),
            bomb_ratio: env.ranged_or(
                "ARCHIVE_BOMB_RATIO",
                archive_defaults.bomb_ratio,
                2..=100_000,
            ),
            bomb_min_bytes: env.ranged_or(
                "ARCHIVE_BOMB_MIN_BYTES",
                archive_defaults.bomb_min_bytes,
                0..=u64::MAX,
            ),
        };
        let config = Self {
            secret,
            secret_watch: SecretWatchOptions::from_env(&env),
            benchling,
            queues,
            store,
            worker: WorkerConfig::from_env(&env, 2),
            export,
            download,
            archive,
            upload_concurrency: env.ranged_or("UPLOAD_CONCURRENCY", 8, 1..=64) as usize,
            temp_dir: env
                .optional("EXPORT_TEMP_DIR")
                .map_or_else(std::env::temp_dir, PathBuf::from),
            telemetry: TelemetryConfig::from_env(&env, "benchling-webhook-exporter"),
        };
        env.finish(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn defaults_are_embedded_with_a_directory_store() {
        let config = ExporterConfig::from_env(Env::from_pairs([("PORT", "0")])).unwrap();
        assert_eq!(
            config.queues,
            QueueBackend::Embedded(bw_queue::Capacity::default())
        );
        assert_eq!(
            config.store,
            StoreBackend::Directory(PathBuf::from(".local/buckets"))
        );
        assert_eq!(config.export.deadline, Duration::from_secs(1800));
        assert_eq!(config.archive, ArchiveLimits::default());
        assert!(config.worker.visibility.is_none());
    }

    #[test]
    fn sqs_queues_default_to_s3() {
        let queue = |name: &str| format!("http://127.0.0.1:5000/123456789012/{name}.fifo");
        let config = ExporterConfig::from_env(Env::from_pairs([
            ("EXPORT_QUEUE_URL", queue("export")),
            ("RENDER_QUEUE_URL", queue("render")),
            ("CANVAS_QUEUE_URL", queue("canvas")),
            ("VISIBILITY_TIMEOUT_SECS", "60".to_owned()),
        ]))
        .unwrap();
        assert!(matches!(config.queues, QueueBackend::Sqs { .. }));
        assert_eq!(config.store, StoreBackend::S3);
        assert_eq!(config.worker.visibility, Some(Duration::from_secs(60)));
    }

    #[test]
    fn names_each_bad_field() {
        let err = ExporterConfig::from_env(Env::from_pairs([
            (
                "EXPORT_QUEUE_URL",
                "http://127.0.0.1:5000/123456789012/export.fifo",
            ),
            ("OBJECT_STORE", "gcs"),
            ("EXPORT_DEADLINE_SECS", "1"),
            ("ARCHIVE_BOMB_RATIO", "x"),
            ("BENCHLING_API_BASE_URL", "ftp://benchling"),
        ]))
        .unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field().to_owned()).collect();
        for field in [
            "RENDER_QUEUE_URL",
            "CANVAS_QUEUE_URL",
            "OBJECT_STORE",
            "EXPORT_DEADLINE_SECS",
            "ARCHIVE_BOMB_RATIO",
            "BENCHLING_API_BASE_URL",
        ] {
            assert!(
                fields.iter().any(|f| f == field),
                "{field} not in {fields:?}"
            );
        }
    }
}
