//! The ingress configuration: one typed struct, read from the environment in one place and
//! validated at start-up (every bad or missing field is named).

use std::net::IpAddr;
use std::time::Duration;

use bw_benchling::JwksOptions;
use bw_config::{ConfigError, Env, SecretSource, SecretWatchOptions};
use bw_queue::QueueBackend;
use bw_telemetry::TelemetryConfig;

use crate::queues::Queues;

/// Benchling's production JWKS host.
pub const DEFAULT_JWKS_BASE_URL: &str = "https://apps.benchling.com";

/// Values shown by `/config` that the ingress itself does not use.
#[derive(Clone, Debug, Default)]
pub struct DisplayConfig {
    /// `AWS_REGION`.
    pub aws_region: Option<String>,
    /// `QUILT_WEB_HOST`.
    pub quilt_web_host: Option<String>,
    /// `ATHENA_USER_DATABASE`.
    pub athena_database: Option<String>,
    /// `PACKAGER_SQS_URL`.
    pub packager_queue_url: Option<String>,
    /// `QuiltStackARN`.
    pub quilt_stack_arn: Option<String>,
}

/// Everything the ingress needs to run.
#[derive(Clone, Debug)]
pub struct IngressConfig {
    /// `HOST` (default `0.0.0.0`).
    pub host: IpAddr,
    /// `PORT` (default 8080; 0 picks a free port).
    pub port: u16,
    /// `INGRESS_WORKERS`: HTTP worker threads (default: one per core).
    pub workers: usize,
    /// `BenchlingSecret`; `None` starts the service degraded.
    pub secret: Option<SecretSource>,
    /// How the secret is retried and refreshed (`SECRET_RETRY_INITIAL_MS`,
    /// `SECRET_RETRY_MAX_SECS`, `SECRET_REFRESH_SECS`).
    pub secret_watch: SecretWatchOptions,
    /// `ENABLE_WEBHOOK_VERIFICATION`: can only turn verification off.
    pub verification_allowed: bool,
    /// JWKS location and caching (`BENCHLING_JWKS_BASE_URL`, `JWKS_CACHE_TTL_SECS`,
    /// `JWKS_MIN_REFRESH_SECS`).
    pub jwks: JwksOptions,
    /// Queue backend (`EXPORT_QUEUE_URL` + `CANVAS_QUEUE_URL`, or neither).
    pub queues: QueueBackend,
    /// `SQS_BATCH_LINGER_MS`: how long a send waits for companions to share a batch while
    /// another batch is in flight (never when the queue is idle).
    pub batch_linger: Duration,
    /// `REPLAY_CACHE_CAPACITY`: most `webhook-id`s remembered.
    pub replay_capacity: usize,
    /// `SHUTDOWN_TIMEOUT_SECS`: grace for in-flight requests on SIGTERM.
    pub shutdown_timeout: Duration,
    /// Logging and tracing.
    pub telemetry: TelemetryConfig,
    /// Values only shown by `/config`.
    pub display: DisplayConfig,
}

impl IngressConfig {
    /// Reads and validates the configuration.
    pub fn from_env(env: Env) -> Result<Self, ConfigError> {
        let host = env.parse_or("HOST", IpAddr::from([0, 0, 0, 0]));
        let port = env.parse_or("PORT", 8080u16);
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let workers = env.ranged_or("INGRESS_WORKERS", cores as u64, 1..=64) as usize;
        let secret = env
            .optional("BenchlingSecret")
            .map(|raw| SecretSource::parse(&raw));
        let secret_watch = SecretWatchOptions::from_env(&env);
        let verification_allowed = env.flag_or("ENABLE_WEBHOOK_VERIFICATION", true);
        let jwks_base_url = env
            .http_url("BENCHLING_JWKS_BASE_URL")
            .unwrap_or_else(|| DEFAULT_JWKS_BASE_URL.to_owned());
        let jwks = JwksOptions {
            base_url: jwks_base_url,
            // Benchling documents key rotation; six hours bounds how long a revoked key works.
            ttl: env.seconds_or(
                "JWKS_CACHE_TTL_SECS",
                Duration::from_secs(3_600),
                1..=21_600,
            ),
            min_refresh_interval: env.seconds_or(
                "JWKS_MIN_REFRESH_SECS",
                Duration::from_secs(10),
                0..=3_600,
            ),
            timeout: Duration::from_secs(5),
        };
        let queues = QueueBackend::from_env(&env, &Queues::NAMES, &[]);
        let batch_linger = env.millis_or("SQS_BATCH_LINGER_MS", Duration::from_millis(5), 0..=100);
        let replay_capacity =
            env.ranged_or("REPLAY_CACHE_CAPACITY", 100_000, 1_000..=10_000_000) as usize;
        let shutdown_timeout =
            env.seconds_or("SHUTDOWN_TIMEOUT_SECS", Duration::from_secs(25), 0..=600);
        let telemetry = TelemetryConfig::from_env(&env, "benchling-webhook-ingress");
        let display = DisplayConfig {
            aws_region: env.optional("AWS_REGION"),
            quilt_web_host: env.optional("QUILT_WEB_HOST"),
            athena_database: env.optional("ATHENA_USER_DATABASE"),
            packager_queue_url: env.optional("PACKAGER_SQS_URL"),
            quilt_stack_arn: env.optional("QuiltStackARN"),
        };
        let config = Self {
            host,
            port,
            workers,
            secret,
            secret_watch,
            verification_allowed,
            jwks,
            queues,
            batch_linger,
            replay_capacity,
            shutdown_timeout,
            telemetry,
            display,
        };
        env.finish(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_embedded_queues_and_benchling_jwks() {
        let config = IngressConfig::from_env(Env::from_pairs([("PORT", "9000")])).unwrap();
        assert_eq!(config.port, 9000);
        assert_eq!(
            config.queues,
            QueueBackend::Embedded(bw_queue::Capacity::default())
        );
        assert_eq!(config.jwks.base_url, DEFAULT_JWKS_BASE_URL);
        assert!(config.secret.is_none());
        assert!(config.verification_allowed);
    }

    #[test]
    fn names_each_bad_field() {
        let err = IngressConfig::from_env(Env::from_pairs([
            ("PORT", "http"),
            (
                "EXPORT_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/export",
            ),
            ("JWKS_CACHE_TTL_SECS", "86400"),
            ("BENCHLING_JWKS_BASE_URL", "ftp://x"),
        ]))
        .unwrap_err();
        let fields: Vec<_> = err.0.iter().map(|e| e.field().to_owned()).collect();
        for field in [
            "PORT",
            "CANVAS_QUEUE_URL",
            "JWKS_CACHE_TTL_SECS",
            "BENCHLING_JWKS_BASE_URL",
        ] {
            assert!(
                fields.iter().any(|f| f == field),
                "{field} not in {fields:?}"
            );
        }
    }

    #[test]
    fn sqs_needs_fifo_queues() {
        let err = IngressConfig::from_env(Env::from_pairs([
            (
                "EXPORT_QUEUE_URL",
                "http://127.0.0.1:5000/123456789012/export",
            ),
            (
                "CANVAS_QUEUE_URL",
                "http://127.0.0.1:5000/123456789012/canvas.fifo",
            ),
        ]))
        .unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert!(
            err.to_string()
                .contains("EXPORT_QUEUE_URL: must be a FIFO queue"),
            "{err}"
        );
        let config = IngressConfig::from_env(Env::from_pairs([
            (
                "EXPORT_QUEUE_URL",
                "http://127.0.0.1:5000/123456789012/export.fifo",
            ),
            (
                "CANVAS_QUEUE_URL",
                "http://127.0.0.1:5000/123456789012/canvas.fifo",
            ),
        ]))
        .unwrap();
        assert!(config.queues.is_sqs());
    }
}
