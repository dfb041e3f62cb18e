//! Errors raised while installing or adjusting telemetry.

/// Why telemetry could not be installed or changed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A log level or filter directive that cannot be used.
    #[error("invalid log level {value:?}: {reason}")]
    InvalidLogLevel {
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// Another global tracing subscriber is already installed (for example a second `init`).
    #[error("a global tracing subscriber is already installed")]
    AlreadyInitialized,
    /// The HTTP client for OTLP export could not be built.
    #[error("cannot build the OTLP HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The thread that builds the OTLP HTTP client panicked.
    #[error("the thread building the OTLP HTTP client panicked")]
    HttpClientThread,
    /// The OTLP span exporter rejected its configuration (for example a malformed endpoint).
    #[error("cannot build the OTLP span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// The log filter could not be swapped because the subscriber is gone.
    #[error("cannot reload the log filter: {0}")]
    Reload(#[from] tracing_subscriber::reload::Error),
}
