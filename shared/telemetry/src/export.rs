//! The OpenTelemetry tracer provider, with OTLP/HTTP export when an endpoint is configured.

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::{TelemetryConfig, TelemetryError};

/// The OTLP exporter's default time limit for one export request.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// A provider that gives every span real W3C ids, and batches spans to the OTLP endpoint
/// when one is configured.
pub(crate) fn tracer_provider(
    config: &TelemetryConfig,
) -> Result<SdkTracerProvider, TelemetryError> {
    let mut resource = Resource::builder().with_service_name(config.service_name.clone());
    if let Some(version) = &config.service_version {
        resource = resource.with_attribute(KeyValue::new("service.version", version.clone()));
    }
    let mut provider = SdkTracerProvider::builder().with_resource(resource.build());
    if let Some(endpoint) = &config.otlp_endpoint {
        provider = provider.with_batch_exporter(span_exporter(endpoint)?);
    }
    Ok(provider.build())
}

fn span_exporter(endpoint: &str) -> Result<SpanExporter, TelemetryError> {
    // The batch processor exports from a plain thread, where only the blocking client works
    // (the async one deadlocks or panics under actix-web); and the blocking client panics when
    // built on a runtime thread, so it is built on a thread of its own.
    let client = std::thread::spawn(|| {
        reqwest::blocking::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .build()
    })
    .join()
    .map_err(|_| TelemetryError::HttpClientThread)?
    .map_err(TelemetryError::HttpClient)?;
    Ok(SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(traces_url(endpoint))
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(client)
        .build()?)
}

/// `OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL to which each signal appends its path (OTel
/// specification), but the exporter uses an endpoint set with `with_endpoint` verbatim.
fn traces_url(base: &str) -> String {
    format!("{}/v1/traces", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bw_testkit::otlp::OtlpSink;
    use opentelemetry::trace::{Span, Tracer, TracerProvider};

    use super::*;
    use crate::LogFormat;

    #[test]
    fn traces_path_is_appended_to_the_base_url() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("https://c/otlp"), "https://c/otlp/v1/traces");
    }

    #[test]
    fn exports_without_any_async_runtime() {
        let sink = OtlpSink::start();
        let config = TelemetryConfig {
            service_name: "plain-thread".into(),
            service_version: Some("9.9.9".into()),
            log_level: None,
            format: LogFormat::Text,
            otlp_endpoint: Some(format!("{}/", sink.endpoint())),
        };
        let provider = tracer_provider(&config).unwrap();
        let mut span = provider.tracer("test").start("no-runtime");
        span.end();
        provider.shutdown().unwrap();
        let spans = sink.wait_for(|s| !s.is_empty(), Duration::from_secs(5));
        assert_eq!(spans.len(), 1, "{spans:?}");
        assert_eq!(spans[0].name, "no-runtime");
        assert_eq!(spans[0].service_name, "plain-thread");
        assert_eq!(spans[0].resource["service.version"], "9.9.9");
    }
}
