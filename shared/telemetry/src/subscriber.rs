//! The global tracing subscriber: filtered log lines plus OpenTelemetry spans.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use bw_config::{SecretState, SecretWatch};

use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

use crate::export::tracer_provider;
use crate::filter::{DEFAULT_DIRECTIVES, parse_filter};
use crate::{LogFormat, TelemetryConfig, TelemetryError};

/// The installed telemetry. Keep it alive for the life of the process: dropping it (or
/// calling [`Telemetry::shutdown`]) flushes and stops span export.
#[derive(Debug)]
#[must_use = "dropping Telemetry stops span export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    filter: reload::Handle<EnvFilter, Registry>,
    log_level_from_env: bool,
}

/// Installs the global tracing subscriber and the W3C trace-context propagator.
///
/// Log lines go to stdout in `config.format`, filtered by `config.log_level` (default
/// `info`). Every span at INFO or above also becomes an OpenTelemetry span with real trace
/// and span ids, exported over OTLP/HTTP (JSON) only when `config.otlp_endpoint` is set.
/// Works inside or outside an async runtime.
///
/// # Errors
/// [`TelemetryError::AlreadyInitialized`] on a second call (or when another subscriber is
/// installed), [`TelemetryError::InvalidLogLevel`] for a bad `log_level`, and the
/// exporter errors when the OTLP endpoint or HTTP client cannot be set up.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, TelemetryError> {
    let directives = config.log_level.as_deref().unwrap_or(DEFAULT_DIRECTIVES);
    let filter = log_filter(directives)?;
    let provider = tracer_provider(config)?;
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::stdout().is_terminal();
    let subscriber = layers(
        config.format,
        ansi,
        filter,
        provider.tracer(env!("CARGO_PKG_NAME")),
        std::io::stdout,
    );
    // On failure the subscriber and its tracer are dropped here and the provider at return,
    // which stops the export thread.
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|_| TelemetryError::AlreadyInitialized)?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    if config.log_level.is_none() {
        // Only one subscriber is ever installed, so this is set at most once.
        let _ = SECRET_LOG_LEVEL.set(handle.clone());
    }
    Ok(Telemetry {
        provider: Some(provider),
        filter: handle,
        log_level_from_env: config.log_level.is_some(),
    })
}

impl Telemetry {
    /// Replaces the log filter with `level` (a level name or `tracing` directives, as for
    /// `LOG_LEVEL`).
    ///
    /// # Errors
    /// [`TelemetryError::InvalidLogLevel`] when `level` cannot be parsed; the filter in
    /// force is then unchanged.
    pub fn set_log_level(&self, level: &str) -> Result<(), TelemetryError> {
        reload_filter(&self.filter, level)
    }

    /// Whether `LOG_LEVEL` was set. The operator's variable wins, so a service applies the
    /// level from its Benchling secret only when this is false.
    pub fn log_level_from_env(&self) -> bool {
        self.log_level_from_env
    }

    /// Exports the spans still queued and stops span export.
    pub fn shutdown(mut self) {
        self.stop_export();
    }

    fn stop_export(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "span export did not shut down cleanly");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop_export();
    }
}

/// The installed filter, when the secret may set it (`LOG_LEVEL` was not set).
static SECRET_LOG_LEVEL: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Whether a task already follows the secret's `log_level`.
static FOLLOWING: AtomicBool = AtomicBool::new(false);

/// Applies the Benchling secret's `log_level` now and whenever a refreshed secret changes it,
/// in whichever service calls it first (every service calls it where its secret is opened, so
/// the services sharing one process share one follower). Does nothing when `LOG_LEVEL` was set
/// (the operator's variable wins) or when [`init`] did not install the subscriber. A level that
/// does not parse is logged and the level in force kept. Call it on a Tokio runtime.
pub fn follow_secret_log_level(secret: &SecretWatch) {
    let Some(handle) = SECRET_LOG_LEVEL.get() else {
        return;
    };
    if FOLLOWING.swap(true, Ordering::SeqCst) {
        return;
    }
    let handle = handle.clone();
    let mut changes = secret.subscribe();
    tokio::spawn(async move {
        let mut applied: Option<String> = None;
        loop {
            let level = match &*changes.borrow_and_update() {
                SecretState::Ready(secret) => Some(secret.log_level.clone()),
                _ => None,
            };
            if let Some(level) = level.filter(|l| applied.as_ref() != Some(l)) {
                if let Err(e) = reload_filter(&handle, &level) {
                    tracing::warn!(error = %e, "ignoring the secret's log_level");
                }
                applied = Some(level);
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    });
}

fn reload_filter(
    handle: &reload::Handle<EnvFilter, Registry>,
    level: &str,
) -> Result<(), TelemetryError> {
    let filter = log_filter(level)?;
    let directives = filter.to_string();
    handle.reload(filter)?;
    tracing::info!(log_level = %directives, "log level changed");
    Ok(())
}

fn log_filter(level: &str) -> Result<EnvFilter, TelemetryError> {
    parse_filter(level).map_err(|reason| TelemetryError::InvalidLogLevel {
        value: level.to_owned(),
        reason,
    })
}

/// The subscriber `init` installs, with the log writer as a parameter so tests can read it.
pub(crate) fn layers<W>(
    format: LogFormat,
    ansi: bool,
    filter: reload::Layer<EnvFilter, Registry>,
    tracer: SdkTracer,
    writer: W,
) -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let log: Box<dyn Layer<Registry> + Send + Sync> = match format {
        // Event fields sit at the top level and the spans' fields under `span`/`spans`, so
        // `grep '"entry_id":"etr_1"'` finds every line about an entry.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(writer)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
    };
    Registry::default().with(log.with_filter(filter)).with(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            // Independent of LOG_LEVEL: turning logs down to WARN must not lose the trace ids
            // that follow jobs across queues, and dependencies' DEBUG spans would only add
            // export volume.
            .with_filter(LevelFilter::INFO),
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use serde_json::Value;

    use super::*;

    /// A log writer the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Captured {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;

        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    /// Runs `f` under the subscriber `init` would install, writing logs to the returned buffer.
    fn capture(format: LogFormat, level: &str, f: impl FnOnce(&Telemetry)) -> Captured {
        let captured = Captured::default();
        let (filter, handle) = reload::Layer::new(parse_filter(level).unwrap());
        let tracer = SdkTracerProvider::builder().build().tracer("test");
        let subscriber = layers(format, false, filter, tracer, captured.clone());
        let telemetry = Telemetry {
            provider: None,
            filter: handle,
            log_level_from_env: false,
        };
        tracing::subscriber::with_default(subscriber, || f(&telemetry));
        captured
    }

    #[test]
    fn json_lines_carry_event_and_span_fields() {
        let captured = capture(LogFormat::Json, "info", |_| {
            tracing::info_span!("job", entry_id = "etr_1").in_scope(|| {
                tracing::info!(attempt = 2, "exporting");
                tracing::debug!("filtered out");
            });
        });
        let lines = captured.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "exporting");
        assert_eq!(line["attempt"], 2);
        assert_eq!(line["target"], module_path!());
        assert!(line["timestamp"].is_string(), "{line}");
        assert_eq!(line["span"]["name"], "job");
        assert_eq!(line["span"]["entry_id"], "etr_1");
        assert_eq!(line["spans"][0]["entry_id"], "etr_1");
    }

    #[test]
    fn text_lines_are_plain_and_readable() {
        let captured = capture(LogFormat::Text, "info", |_| {
            tracing::info_span!("job", entry_id = "etr_1")
                .in_scope(|| tracing::warn!(attempt = 2, "retrying"));
        });
        let lines = captured.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert!(!line.contains('\u{1b}'), "no ANSI escapes: {line:?}");
        for part in ["WARN", "job{entry_id=\"etr_1\"}", "retrying", "attempt=2"] {
            assert!(line.contains(part), "{part} in {line:?}");
        }
    }

    #[test]
    fn set_log_level_swaps_the_filter() {
        let captured = capture(LogFormat::Json, "WARNING", |telemetry| {
            tracing::info!("before");
            telemetry.set_log_level("DEBUG").unwrap();
            tracing::debug!("after");
            let err = telemetry.set_log_level("chatty").unwrap_err();
            assert!(
                err.to_string().contains("invalid log level \"chatty\""),
                "{err}"
            );
            tracing::debug!("still debug");
        });
        let messages: Vec<String> = captured
            .lines()
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["message"].to_string())
            .collect();
        assert_eq!(
            messages,
            ["\"log level changed\"", "\"after\"", "\"still debug\""]
        );
    }
}
