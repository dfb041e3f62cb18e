//! A stand-in OTLP/HTTP collector on loopback that records the spans it receives, so tests
//! can check what services export without a real collector.
//!
//! It accepts `POST /v1/traces` with a JSON `ExportTraceServiceRequest` (the OTLP/HTTP JSON
//! protocol, ids as hex strings) and answers `200 {}`; anything else gets a 4xx and a line
//! on stderr saying why.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use bw_standin::stub::{StubRequest, StubResponse, StubServer};

/// One span as the sink received it.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkSpan {
    /// The `service.name` resource attribute ("" when absent).
    pub service_name: String,
    /// The span name.
    pub name: String,
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// 16 lowercase hex digits, or "" for a root span.
    pub parent_span_id: String,
    /// The span's attributes as an object of key → plain value (`stringValue`, `intValue`…
    /// unwrapped; OTLP JSON writes 64-bit integers as strings).
    pub attributes: Value,
    /// The resource's attributes, in the same shape as `attributes`.
    pub resource: Value,
}

/// A running sink; it stops accepting connections when dropped.
pub struct OtlpSink {
    server: StubServer,
    spans: Arc<Mutex<Vec<SinkSpan>>>,
}

impl OtlpSink {
    /// Starts the sink on an ephemeral loopback port.
    pub fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let received = Arc::clone(&spans);
        let server = StubServer::start(move |request| match handle(request) {
            Ok(new_spans) => {
                received
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(new_spans);
                StubResponse::json("200 OK", "{}")
            }
            Err((status, reason)) => {
                eprintln!(
                    "otlp sink: {status} for {} {}: {reason}",
                    request.method, request.path
                );
                StubResponse::json(status, "{}")
            }
        });
        Self { server, spans }
    }

    /// The base URL to use as `OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://127.0.0.1:4318`.
    pub fn endpoint(&self) -> String {
        self.server.url()
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<SinkSpan> {
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Polls until `done` holds for the spans received so far or `timeout` passes, and
    /// returns the spans either way (the caller's assertions then say what is missing).
    pub fn wait_for(&self, done: impl Fn(&[SinkSpan]) -> bool, timeout: Duration) -> Vec<SinkSpan> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) || Instant::now() >= deadline {
                return spans;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The spans in an accepted request, or the status and reason for refusing it.
fn handle(request: &StubRequest) -> Result<Vec<SinkSpan>, (&'static str, String)> {
    if request.method != "POST" || request.path != "/v1/traces" {
        return Err(("404 Not Found", "only POST /v1/traces is served".into()));
    }
    if let Some(encoding) = request
        .header("content-encoding")
        .filter(|e| *e != "identity")
    {
        return Err((
            "415 Unsupported Media Type",
            format!("content-encoding {encoding}"),
        ));
    }
    let content_type = request
        .header("content-type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !content_type.starts_with("application/json") {
        return Err((
            "415 Unsupported Media Type",
            format!(
                "content-type {:?}; only OTLP/HTTP JSON is decoded",
                content_type
            ),
        ));
    }
    let body = request
        .body
        .as_deref()
        .ok_or(("411 Length Required", "no content-length".to_owned()))?;
    let export: Value = serde_json::from_slice(body)
        .map_err(|e| ("400 Bad Request", format!("body is not JSON: {e}")))?;
    Ok(spans_of(&export))
}

/// Flattens an `ExportTraceServiceRequest` into its spans.
fn spans_of(export: &Value) -> Vec<SinkSpan> {
    let mut spans = Vec::new();
    for resource_spans in items(export, "resourceSpans") {
        let resource = attributes(&resource_spans["resource"]);
        let service_name = resource["service.name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for scope_spans in items(resource_spans, "scopeSpans") {
            for span in items(scope_spans, "spans") {
                let text = |key: &str| span[key].as_str().unwrap_or_default().to_owned();
                spans.push(SinkSpan {
                    service_name: service_name.clone(),
                    name: text("name"),
                    trace_id: text("traceId"),
                    span_id: text("spanId"),
                    parent_span_id: text("parentSpanId"),
                    attributes: attributes(span),
                    resource: resource.clone(),
                });
            }
        }
    }
    spans
}

fn items<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value[key].as_array().into_iter().flatten()
}

/// An OTLP `attributes` list as an object of key → plain value.
fn attributes(owner: &Value) -> Value {
    let map: Map<String, Value> = items(owner, "attributes")
        .filter_map(|kv| {
            let key = kv["key"].as_str()?.to_owned();
            // An AnyValue is an object with one member named after its type.
            let value = match kv["value"].as_object() {
                Some(any) if any.len() == 1 => any.values().next().cloned().unwrap_or_default(),
                _ => kv["value"].clone(),
            };
            Some((key, value))
        })
        .collect();
    Value::Object(map)
}
