//! Telemetry settings read from the environment.

use std::str::FromStr;

use bw_config::{Env, FieldError};

use crate::filter::parse_filter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    #[default]
    Json,
    /// Human-readable lines, for a terminal.
    Text,
}

/// A `LOG_FORMAT` value other than `json` or `text`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected json or text")]
pub struct UnknownLogFormat;

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            _ => Err(UnknownLogFormat),
        }
    }
}

/// What [`crate::init`] installs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// The `service.name` resource attribute of exported spans.
    pub service_name: String,
    /// The `service.version` resource attribute; left out when `None`.
    pub service_version: Option<String>,
    /// The operator's `LOG_LEVEL` (a level name or `tracing` directives); `None` means `info`
    /// until the service applies a level from its secret.
    pub log_level: Option<String>,
    /// How log lines are written.
    pub format: LogFormat,
    /// The OTLP/HTTP base URL (`/v1/traces` is appended); `None` means spans are not exported.
    pub otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    /// Reads `LOG_LEVEL`, `LOG_FORMAT` (default `json`), `OTEL_EXPORTER_OTLP_ENDPOINT` and
    /// `OTEL_SERVICE_NAME` (default `default_service_name`). Invalid values are recorded on
    /// `env` under their variable's name and replaced by the defaults.
    pub fn from_env(env: &Env, default_service_name: &str) -> Self {
        let log_level = env
            .optional("LOG_LEVEL")
            .filter(|raw| match parse_filter(raw) {
                Ok(_) => true,
                Err(reason) => {
                    env.record(FieldError::invalid("LOG_LEVEL", reason));
                    false
                }
            });
        let format = env.parse_or("LOG_FORMAT", LogFormat::Json);
        let otlp_endpoint = env.optional("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|url| {
            let ok = url.starts_with("http://") || url.starts_with("https://");
            if !ok {
                env.record(FieldError::invalid(
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    format!("expected an http:// or https:// URL, got {url:?}"),
                ));
            }
            ok
        });
        let service_name = env
            .optional("OTEL_SERVICE_NAME")
            .unwrap_or_else(|| default_service_name.to_owned());
        Self {
            service_name,
            service_version: None,
            log_level,
            format,
            otlp_endpoint,
        }
    }

    /// Sets the `service.version` resource attribute (services pass `env!("CARGO_PKG_VERSION")`).
    #[must_use]
    pub fn with_service_version(mut self, version: impl Into<String>) -> Self {
        self.service_version = Some(version.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(env: Env) -> Vec<String> {
        env.finish(())
            .err()
            .map(|e| e.0.iter().map(|f| f.field().to_owned()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let env = Env::from_pairs::<&str, &str>([]);
        let config = TelemetryConfig::from_env(&env, "ingress");
        assert_eq!(
            config,
            TelemetryConfig {
                service_name: "ingress".into(),
                service_version: None,
                log_level: None,
                format: LogFormat::Json,
                otlp_endpoint: None,
            }
        );
        assert!(fields(env).is_empty());
    }

    #[test]
    fn reads_every_variable() {
        let env = Env::from_pairs([
            ("LOG_LEVEL", "WARNING"),
            ("LOG_FORMAT", "Text"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_SERVICE_NAME", "bw-ingress-prod"),
        ]);
        let config = TelemetryConfig::from_env(&env, "ingress").with_service_version("1.2.3");
        assert_eq!(config.service_name, "bw-ingress-prod");
        assert_eq!(config.service_version.as_deref(), Some("1.2.3"));
        assert_eq!(config.log_level.as_deref(), Some("WARNING"));
        assert_eq!(config.format, LogFormat::Text);
        assert_eq!(
            config.otlp_endpoint.as_deref(),
            Some("http://collector:4318")
        );
        assert!(fields(env).is_empty());
    }

    #[test]
    fn directive_strings_are_valid_log_levels() {
        let env = Env::from_pairs([("LOG_LEVEL", "info,bw_ingress=debug")]);
        let config = TelemetryConfig::from_env(&env, "ingress");
        assert_eq!(config.log_level.as_deref(), Some("info,bw_ingress=debug"));
        assert!(fields(env).is_empty());
    }

    #[test]
    fn invalid_values_are_recorded_under_their_variable() {
        let env = Env::from_pairs([
            ("LOG_LEVEL", "verbose"),
            ("LOG_FORMAT", "yaml"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
        ]);
        let config = TelemetryConfig::from_env(&env, "ingress");
        assert_eq!(config.log_level, None);
        assert_eq!(config.format, LogFormat::Json);
        assert_eq!(config.otlp_endpoint, None);
        let err = env.finish(()).unwrap_err();
        let fields: Vec<_> = err.0.iter().map(FieldError::field).collect();
        assert_eq!(
            fields,
            ["LOG_LEVEL", "LOG_FORMAT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        );
        let message = err.to_string();
        assert!(
            message.contains("LOG_LEVEL: expected DEBUG, INFO"),
            "{message}"
        );
        assert!(
            message.contains("LOG_FORMAT: cannot parse \"yaml\": expected json or text"),
            "{message}"
        );
    }
}
