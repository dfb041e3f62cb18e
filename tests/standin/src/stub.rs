//! A minimal HTTP/1.1 server for stand-ins (this crate's, and the test kit's JWKS and OTLP
//! ones): one thread per connection, keep-alive, `content-length` bodies. Each stand-in supplies
//! a handler. Tests run it on an ephemeral loopback port; `benchling-standin` on the address it
//! is given.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

/// A request as the stand-in sees it.
#[derive(Clone, Debug)]
pub struct StubRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body (`None` when the request had no `content-length`).
    pub body: Option<Vec<u8>>,
}

impl StubRequest {
    /// The body parsed as JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(self.body.as_deref()?).ok()
    }

    /// The first value of a header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response to send back.
#[derive(Clone, Debug)]
pub struct StubResponse {
    /// Status line tail, e.g. `200 OK`.
    pub status: &'static str,
    /// `content-type`.
    pub content_type: &'static str,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Extra response headers, e.g. `retry-after`.
    pub headers: Vec<(String, String)>,
    /// When set, the body is streamed from this file instead of `body`, so large downloads
    /// need not be held in memory.
    pub body_file: Option<FileBody>,
}

/// A response body streamed from a file.
#[derive(Clone, Debug)]
pub struct FileBody {
    /// The file.
    pub path: PathBuf,
    /// The bytes to send; the whole file when `None`.
    pub range: Option<Range<u64>>,
}

impl StubResponse {
    /// A JSON response.
    pub fn json(status: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.into(),
            headers: Vec::new(),
            body_file: None,
        }
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&StubRequest) -> StubResponse + Send + Sync;

/// A running stand-in; it stops accepting connections when dropped.
pub struct StubServer {
    addr: SocketAddr,
    stopped: Arc<AtomicBool>,
}

impl StubServer {
    /// Serves `handler` on an ephemeral loopback port.
    ///
    /// # Panics
    /// When no loopback port can be bound (the test cannot run anyway).
    pub fn start(handler: impl Fn(&StubRequest) -> StubResponse + Send + Sync + 'static) -> Self {
        Self::bind((Ipv4Addr::LOCALHOST, 0).into(), handler).expect("bind a stand-in port")
    }

    /// Serves `handler` on `addr` (port 0: an ephemeral one, see [`StubServer::addr`]).
    ///
    /// # Errors
    /// When `addr` cannot be bound.
    pub fn bind(
        addr: SocketAddr,
        handler: impl Fn(&StubRequest) -> StubResponse + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stopped = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let accept_stopped = Arc::clone(&stopped);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let handler = Arc::clone(&handler);
                    thread::spawn(move || serve(stream, handler.as_ref()));
                }
            }
        });
        Ok(Self { addr, stopped })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // The accept loop only sees the flag once a connection wakes it up.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Answers requests on one keep-alive connection until the client closes it.
fn serve(stream: TcpStream, handler: &Handler) {
    // Head and body go out in separate writes; with Nagle's algorithm the body would wait for the
    // client's delayed ACK (about 40 ms per response).
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some((request, close)) = read_request(&mut reader) {
        let response = handler(&request);
        if write_response(&mut writer, &response).is_err() || close {
            return;
        }
    }
}

/// Writes the status line, headers and body (from memory or streamed from a file).
fn write_response(writer: &mut TcpStream, response: &StubResponse) -> std::io::Result<()> {
    let mut file = match &response.body_file {
        Some(FileBody { path, range }) => {
            let mut file = File::open(path)?;
            let range = match range {
                Some(range) => range.clone(),
                None => 0..file.metadata()?.len(),
            };
            file.seek(SeekFrom::Start(range.start))?;
            Some((file.take(range.end - range.start), range.end - range.start))
        }
        None => None,
    };
    let len = file
        .as_ref()
        .map_or(response.body.len() as u64, |(_, len)| *len);
    let mut head = format!(
        "HTTP/1.1 {}\r\ncontent-type: {}\r\ncontent-length: {len}\r\n",
        response.status, response.content_type
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes())?;
    match &mut file {
        Some((file, _)) => std::io::copy(file, writer).map(drop),
        None => writer.write_all(&response.body),
    }
}

/// Reads one request; `None` at end of stream or on a malformed request.
fn read_request(reader: &mut impl BufRead) -> Option<(StubRequest, bool)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut words = line.split_whitespace();
    let (method, path) = (words.next()?.to_owned(), words.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut request = StubRequest {
        method,
        path,
        headers,
        body: None,
    };
    if let Some(len) = request.header("content-length") {
        let mut body = vec![0; len.parse::<usize>().ok()?];
        reader.read_exact(&mut body).ok()?;
        request.body = Some(body);
    }
    let close = request
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    Some((request, close))
}

/// A free port on 127.0.0.1, for a server started later (a test or benchmark binary). Another
/// process could take it in between; on a test machine that does not happen in practice.
///
/// # Panics
/// When the kernel has no free port.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}
