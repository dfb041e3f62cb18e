//! Logging and tracing for every service: a tracing subscriber (JSON or text), OpenTelemetry
//! OTLP export when configured, and W3C trace-context propagation across queue hops.
//!
//! A service reads [`TelemetryConfig::from_env`], calls [`init`] once at the top of `main`
//! and keeps the returned [`Telemetry`] alive until it exits. Producers put
//! [`current_traceparent`] on each job; consumers call [`set_parent`] on the span that
//! handles it, so one trace follows a webhook through every queue.

mod config;
mod error;
mod export;
mod filter;
mod propagation;
mod subscriber;

pub use config::{LogFormat, TelemetryConfig, UnknownLogFormat};
pub use error::TelemetryError;
pub use propagation::{current_traceparent, set_parent, trace_id_of};
pub use subscriber::{Telemetry, follow_secret_log_level, init};
