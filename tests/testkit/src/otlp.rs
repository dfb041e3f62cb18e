//! A stand-in OTLP/HTTP collector on loopback that records the spans it receives, so tests
//! can check what services export without a real collector.
//!
//! It accepts `POST /v1/traces` with a JSON `ExportTraceServiceRequest` (the OTLP/HTTP JSON
//! protocol, ids as hex strings) and answers `200 {}`; anything else gets a 4xx and a line
//! on stderr saying why.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

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
#[derive(Debug)]
pub struct OtlpSink {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<SinkSpan>>>,
    stopped: Arc<AtomicBool>,
}

impl OtlpSink {
    /// Starts the sink on an ephemeral loopback port.
    ///
    /// # Panics
    /// When no loopback port can be bound (the test cannot run anyway).
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an OTLP sink port");
        let addr = listener.local_addr().expect("OTLP sink address");
        let spans = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(AtomicBool::new(false));
        let (accepted_spans, accept_stopped) = (Arc::clone(&spans), Arc::clone(&stopped));
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let spans = Arc::clone(&accepted_spans);
                    thread::spawn(move || serve(stream, &spans));
                }
            }
        });
        Self {
            addr,
            spans,
            stopped,
        }
    }

    /// The base URL to use as `OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://127.0.0.1:4318`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
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

impl Drop for OtlpSink {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // The accept loop only sees the flag once a connection wakes it up.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Answers requests on one keep-alive connection until the client closes it.
fn serve(stream: TcpStream, spans: &Mutex<Vec<SinkSpan>>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let (status, body) = match handle(&request) {
            Ok(received) => {
                spans
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(received);
                ("200 OK", "{}")
            }
            Err((status, reason)) => {
                eprintln!(
                    "otlp sink: {status} for {} {}: {reason}",
                    request.method, request.path
                );
                (status, "{}")
            }
        };
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() || request.close {
            return;
        }
    }
}

struct Request {
    method: String,
    path: String,
    content_type: String,
    content_encoding: Option<String>,
    /// `None` when the request had no `content-length` (chunked bodies are not supported).
    body: Option<Vec<u8>>,
    close: bool,
}

/// Reads one HTTP/1.1 request; `None` at end of stream or on a malformed request.
fn read_request(reader: &mut impl BufRead) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut words = line.split_whitespace();
    let (method, path) = (words.next()?.to_owned(), words.next()?.to_owned());
    let mut request = Request {
        method,
        path,
        content_type: String::new(),
        content_encoding: None,
        body: None,
        close: false,
    };
    let mut content_length = None;
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => content_length = Some(value.parse::<usize>().ok()?),
            "content-type" => request.content_type = value.to_ascii_lowercase(),
            "content-encoding" => request.content_encoding = Some(value.to_owned()),
            "connection" => request.close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    if let Some(len) = content_length {
        let mut body = vec![0; len];
        reader.read_exact(&mut body).ok()?;
        request.body = Some(body);
    }
    Some(request)
}

/// The spans in an accepted request, or the status and reason for refusing it.
fn handle(request: &Request) -> Result<Vec<SinkSpan>, (&'static str, String)> {
    if request.method != "POST" || request.path != "/v1/traces" {
        return Err(("404 Not Found", "only POST /v1/traces is served".into()));
    }
    if let Some(encoding) = request
        .content_encoding
        .as_deref()
        .filter(|e| *e != "identity")
    {
        return Err((
            "415 Unsupported Media Type",
            format!("content-encoding {encoding}"),
        ));
    }
    if !request.content_type.starts_with("application/json") {
        return Err((
            "415 Unsupported Media Type",
            format!(
                "content-type {:?}; only OTLP/HTTP JSON is decoded",
                request.content_type
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
