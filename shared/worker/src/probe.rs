//! The probes of a worker: a minimal HTTP/1.1 responder for `GET /health`, `/health/live` and
//! `/health/ready`, so orchestrators (ECS, compose, Kubernetes) can tell a live worker from a
//! ready one, and `GET /metrics` for Prometheus. Workers serve nothing else, so a full HTTP
//! stack would be weight without use.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Longest request head read; probes send a few hundred bytes.
const MAX_HEAD: usize = 8 * 1024;

/// How long a client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a worker can do its work now: `Ok` with the warnings it runs with (problems that
/// leave it ready, such as an optional feature misconfigured), or `Err` saying why not. Never
/// holds secrets.
pub trait Readiness: Send + Sync + 'static {
    /// Checks readiness. Called per probe, so it must be cheap and must not block.
    fn check(&self) -> Result<Vec<String>, String>;
}

impl<F> Readiness for F
where
    F: Fn() -> Result<Vec<String>, String> + Send + Sync + 'static,
{
    fn check(&self) -> Result<Vec<String>, String> {
        self()
    }
}

/// Problems a worker reports while it stays ready, shown in its `/health/ready` body (still
/// 200: the worker does its main work) and set or cleared by whoever watches the problem.
/// Clones share the list.
#[derive(Clone, Debug, Default)]
pub struct Warnings(Arc<Mutex<BTreeMap<&'static str, String>>>);

impl Warnings {
    /// Reports the problem of `topic` (replacing an earlier one).
    pub fn set(&self, topic: &'static str, message: impl Into<String>) {
        self.lock().insert(topic, message.into());
    }

    /// The problem of `topic` is gone.
    pub fn clear(&self, topic: &'static str) {
        self.lock().remove(topic);
    }

    /// Every current problem, by topic.
    pub fn list(&self) -> Vec<String> {
        self.lock()
            .iter()
            .map(|(topic, message)| format!("{topic}: {message}"))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Answers probes on `listener` until `stop` turns true.
pub async fn serve_probes(
    listener: TcpListener,
    readiness: Arc<dyn Readiness>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(answer(stream, Arc::clone(&readiness)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "probe listener failed to accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

async fn answer(mut stream: TcpStream, readiness: Arc<dyn Readiness>) {
    let Ok(Some(request_line)) = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
        .await
        .map(Result::ok)
        .map(Option::flatten)
    else {
        return;
    };
    let mut parts = request_line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = route(method, path, readiness.as_ref());
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let mut response = head.into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(body.as_bytes());
    }
    // A client that went away is not our problem.
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

/// The status line's code and reason, the content type and the body of an answer.
type Answer = (&'static str, &'static str, String);

const JSON: &str = "application/json";

fn route(method: &str, path: &str, readiness: &dyn Readiness) -> Answer {
    let known = matches!(
        path,
        "/health" | "/health/live" | "/health/ready" | "/metrics"
    );
    if !known {
        return (
            "404 Not Found",
            JSON,
            r#"{"reason":"no such route"}"#.to_owned(),
        );
    }
    if method != "GET" && method != "HEAD" {
        return (
            "405 Method Not Allowed",
            JSON,
            r#"{"reason":"only GET and HEAD"}"#.to_owned(),
        );
    }
    match path {
        "/metrics" => ("200 OK", bw_metrics::CONTENT_TYPE, bw_metrics::render()),
        "/health/ready" => match readiness.check() {
            Ok(warnings) if warnings.is_empty() => {
                ("200 OK", JSON, r#"{"status":"ready"}"#.to_owned())
            }
            Ok(warnings) => (
                "200 OK",
                JSON,
                serde_json::json!({ "status": "ready", "warnings": warnings }).to_string(),
            ),
            Err(reason) => (
                "503 Service Unavailable",
                JSON,
                serde_json::json!({ "status": "not_ready", "reason": reason }).to_string(),
            ),
        },
        _ => ("200 OK", JSON, r#"{"status":"ok"}"#.to_owned()),
    }
}

/// Reads up to the end of the request head and returns its first line.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await?;
        if read == 0 || head.len() + read > MAX_HEAD {
            return Ok(None);
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let line_end = head.iter().position(|&b| b == b'\r').unwrap_or(head.len());
    Ok(String::from_utf8(head[..line_end].to_vec()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    async fn get(addr: std::net::SocketAddr, request: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn live_ready_and_unknown_routes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ready = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ready);
        let warnings = Warnings::default();
        let shown = warnings.clone();
        let readiness = move || {
            if flag.load(Ordering::SeqCst) {
                Ok(shown.list())
            } else {
                Err("secret loading".to_owned())
            }
        };
        let (stop_tx, stop) = watch::channel(false);
        let server = tokio::spawn(serve_probes(listener, Arc::new(readiness), stop));

        let live = get(addr, "GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n").await;
        assert!(live.starts_with("HTTP/1.1 200 OK"), "{live}");
        let not_ready = get(addr, "GET /health/ready HTTP/1.1\r\n\r\n").await;
        assert!(not_ready.starts_with("HTTP/1.1 503"), "{not_ready}");
        assert!(
            not_ready.contains(r#""reason":"secret loading""#),
            "{not_ready}"
        );
        ready.store(true, Ordering::SeqCst);
        let now_ready = get(addr, "GET /health/ready?x=1 HTTP/1.1\r\n\r\n").await;
        assert!(now_ready.starts_with("HTTP/1.1 200 OK"), "{now_ready}");
        assert!(now_ready.ends_with(r#"{"status":"ready"}"#), "{now_ready}");
        warnings.set("athena", "workgroup \"wg\" is disabled");
        let warned = get(addr, "GET /health/ready HTTP/1.1\r\n\r\n").await;
        assert!(warned.starts_with("HTTP/1.1 200 OK"), "{warned}");
        assert!(
            warned.contains(r#""warnings":["athena: workgroup \"wg\" is disabled"]"#),
            "{warned}"
        );
        warnings.clear("athena");
        let cleared = get(addr, "GET /health/ready HTTP/1.1\r\n\r\n").await;
        assert!(cleared.ends_with(r#"{"status":"ready"}"#), "{cleared}");
        let missing = get(addr, "GET /config HTTP/1.1\r\n\r\n").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        let post = get(addr, "POST /health HTTP/1.1\r\n\r\n").await;
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        static PROBED: bw_metrics::Counter =
            bw_metrics::Counter::new("probe_test_total", "Counted by the probe test.", &[]);
        PROBED.add(&[], 2);
        let metrics = get(addr, "GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
        assert!(
            metrics.contains("content-type: text/plain; version=0.0.4"),
            "{metrics}"
        );
        assert!(metrics.ends_with("probe_test_total 2\n"), "{metrics}");

        stop_tx.send(true).unwrap();
        server.await.unwrap();
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "the listener must close on stop"
        );
    }
}
