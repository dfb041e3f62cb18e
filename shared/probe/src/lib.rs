//! The container health self-check: `<binary> --health` asks the service's own readiness probe.
//!
//! The runtime image is distroless (no shell, no curl), so a container health check cannot call
//! `curl`; each service binary checks itself instead. The check reads only `PORT`, so a broken
//! configuration still gets a truthful answer (the service is then not ready), and it never
//! takes longer than [`BUDGET`], well inside any health-check timeout.

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The first argument that turns a service binary into its own health check.
pub const FLAG: &str = "--health";

/// How long the whole check (connect, write, read) may take.
pub const BUDGET: Duration = Duration::from_secs(2);

/// The services' default `PORT`.
const DEFAULT_PORT: u16 = 8080;

/// Most bytes read while looking for the status line; a real one is a few dozen.
const MAX_STATUS_LINE: usize = 1024;

/// Runs the health check when the process's first argument is exactly [`FLAG`] and returns its
/// exit code (0 ready, 1 not); `None` otherwise, and the binary starts normally.
///
/// Call it first in `main`, before reading any configuration.
pub fn from_args() -> Option<ExitCode> {
    if std::env::args_os().nth(1).as_deref() != Some(OsStr::new(FLAG)) {
        return None;
    }
    let outcome = port(std::env::var_os("PORT").as_deref())
        .and_then(|port| check(port, BUDGET).map(|()| port));
    Some(match outcome {
        Ok(port) => {
            println!("ready: {} answered 200", address(port));
            ExitCode::SUCCESS
        }
        Err(not_ready) => {
            eprintln!("not ready: {not_ready}");
            ExitCode::FAILURE
        }
    })
}

/// Asks `GET /health/ready` on `127.0.0.1:port` and succeeds only on a `200` status, all within
/// `budget`: each socket operation gets the time left until the deadline.
///
/// # Errors
/// The connection is refused or breaks, the deadline passes, or the answer is not `200`.
pub fn check(port: u16, budget: Duration) -> Result<(), NotReady> {
    let deadline = Instant::now() + budget;
    let addr = address(port);
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            // The socket calls reject a zero timeout, and no time left is a timeout anyway.
            .filter(|left| !left.is_zero())
            .ok_or(NotReady::Timeout { addr, budget })
    };
    let exchange = |error: io::Error| match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => NotReady::Timeout { addr, budget },
        _ => NotReady::Exchange { addr, error },
    };

    let mut stream = TcpStream::connect_timeout(&addr, left()?)
        .map_err(|error| NotReady::Connect { addr, error })?;
    stream.set_write_timeout(Some(left()?)).map_err(exchange)?;
    write!(
        stream,
        "GET /health/ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(exchange)?;

    let mut answer = Vec::with_capacity(128);
    let mut chunk = [0u8; 256];
    while !answer.contains(&b'\n') && answer.len() < MAX_STATUS_LINE {
        stream.set_read_timeout(Some(left()?)).map_err(exchange)?;
        match stream.read(&mut chunk).map_err(exchange)? {
            0 => break,
            read => answer.extend_from_slice(&chunk[..read]),
        }
    }
    let line_end = answer
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(answer.len());
    let line = String::from_utf8_lossy(&answer[..line_end]).into_owned();
    match status(&line) {
        Some("200") => Ok(()),
        Some(_) => Err(NotReady::Status {
            addr,
            // What follows the version: the code and its reason phrase.
            status: line
                .split_once(' ')
                .map_or("", |(_, s)| s)
                .trim()
                .to_owned(),
        }),
        None => Err(NotReady::Garbage { addr, line }),
    }
}

/// Why the service is not ready, or why the check could not tell.
#[derive(Debug)]
pub enum NotReady {
    /// `PORT` is not a fixed port to connect to.
    BadPort {
        /// The value found (lossy UTF-8).
        value: String,
    },
    /// Nothing accepted the connection.
    Connect {
        /// Where the check connected.
        addr: SocketAddr,
        /// Why it failed.
        error: io::Error,
    },
    /// The service did not answer within the budget.
    Timeout {
        /// Where the check connected.
        addr: SocketAddr,
        /// The budget that ran out.
        budget: Duration,
    },
    /// The connection broke before an answer came back.
    Exchange {
        /// Where the check connected.
        addr: SocketAddr,
        /// Why it broke.
        error: io::Error,
    },
    /// The answer did not start with an HTTP status line (empty: no answer at all).
    Garbage {
        /// Where the check connected.
        addr: SocketAddr,
        /// The first line received.
        line: String,
    },
    /// The service answered a status other than 200.
    Status {
        /// Where the check connected.
        addr: SocketAddr,
        /// The status code and reason phrase, e.g. `503 Service Unavailable`.
        status: String,
    },
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadPort { value } => {
                write!(f, "PORT is {value:?}, not a port from 1 to 65535 to check")
            }
            Self::Connect { addr, error } => write!(f, "cannot connect to {addr}: {error}"),
            Self::Timeout { addr, budget } => {
                write!(f, "{addr} did not answer within {budget:?}")
            }
            Self::Exchange { addr, error } => write!(f, "{addr} broke the connection: {error}"),
            Self::Garbage { addr, line } if line.is_empty() => {
                write!(f, "{addr} closed the connection without an answer")
            }
            Self::Garbage { addr, line } => {
                let shown: String = line.chars().take(80).collect();
                write!(f, "{addr} answered something other than HTTP: {shown:?}")
            }
            Self::Status { addr, status } => write!(f, "{addr} answered {status}"),
        }
    }
}

impl std::error::Error for NotReady {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect { error, .. } | Self::Exchange { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// The port from `PORT` as the services read it: trimmed, blank or unset is the default. `0`
/// lets a service pick any port, which the check cannot know, so it is refused.
fn port(raw: Option<&OsStr>) -> Result<u16, NotReady> {
    let value = raw.map(OsStr::to_string_lossy).unwrap_or_default();
    let value = value.trim();
    if value.is_empty() {
        return Ok(DEFAULT_PORT);
    }
    match value.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(NotReady::BadPort {
            value: value.to_owned(),
        }),
    }
}

/// The loopback address the check connects to: the services listen on all addresses by default.
fn address(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// The three-digit status code of an HTTP status line, or `None` when `line` is not one.
fn status(line: &str) -> Option<&str> {
    let mut parts = line.split(' ');
    let version = parts.next()?;
    let code = parts.next()?;
    (version.starts_with("HTTP/") && code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
        .then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread::JoinHandle;

    /// A generous bound: the checks below must end long before it, whatever the machine's load.
    const UPPER_BOUND: Duration = Duration::from_secs(10);

    /// A server on a free loopback port that answers one connection with `answer` after reading
    /// the request head, and returns that head.
    fn answer_once(answer: &'static [u8]) -> (u16, JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut chunk = [0u8; 256];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => head.extend_from_slice(&chunk[..read]),
                }
            }
            // The check may hang up as soon as it has the status line.
            let _ = stream.write_all(answer);
            String::from_utf8(head).unwrap()
        });
        (port, server)
    }

    #[test]
    fn a_200_is_ready_and_the_request_asks_the_readiness_probe() {
        let (port, server) = answer_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
        check(port, BUDGET).unwrap();
        let head = server.join().unwrap();
        assert!(head.starts_with("GET /health/ready HTTP/1.1\r\n"), "{head}");
        assert!(
            head.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
            "{head}"
        );
        assert!(head.contains("Connection: close\r\n"), "{head}");
    }

    #[test]
    fn a_503_is_not_ready_and_says_so() {
        let (port, server) =
            answer_once(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
        let error = check(port, BUDGET).unwrap_err();
        server.join().unwrap();
        assert_eq!(
            error.to_string(),
            format!("127.0.0.1:{port} answered 503 Service Unavailable")
        );
    }

    #[test]
    fn a_service_that_never_answers_is_not_ready_within_the_budget() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts and reads until the check hangs up, never answering.
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let _ = io::copy(&mut stream, &mut io::sink());
        });
        let started = Instant::now();
        let result = check(port, Duration::from_millis(300));
        assert!(result.is_err(), "{result:?}");
        assert!(started.elapsed() < UPPER_BOUND, "{:?}", started.elapsed());
        server.join().unwrap();
    }

    #[test]
    fn a_closed_port_is_not_ready() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let started = Instant::now();
        let error = check(port, BUDGET).unwrap_err();
        assert!(started.elapsed() < UPPER_BOUND, "{:?}", started.elapsed());
        assert!(
            error
                .to_string()
                .starts_with("cannot connect to 127.0.0.1:"),
            "{error}"
        );
    }

    #[test]
    fn an_answer_that_is_not_http_is_not_ready() {
        let (port, server) = answer_once(b"SSH-2.0-OpenSSH_9.6\r\n");
        let error = check(port, BUDGET).unwrap_err();
        server.join().unwrap();
        assert!(error.to_string().contains("other than HTTP"), "{error}");
    }

    #[test]
    fn a_connection_closed_without_an_answer_is_not_ready() {
        let (port, server) = answer_once(b"");
        assert!(check(port, BUDGET).is_err());
        server.join().unwrap();
    }

    #[test]
    fn port_reads_like_the_services_and_refuses_what_it_cannot_check() {
        assert_eq!(port(None).unwrap(), 8080);
        assert_eq!(port(Some(OsStr::new(" "))).unwrap(), 8080);
        assert_eq!(port(Some(OsStr::new(" 9000 "))).unwrap(), 9000);
        for bad in ["0", "eighty", "70000", "-1"] {
            let error = port(Some(OsStr::new(bad))).unwrap_err();
            assert!(error.to_string().starts_with("PORT is "), "{error}");
        }
    }

    #[test]
    fn status_takes_the_code_of_a_status_line_only() {
        assert_eq!(status("HTTP/1.1 200 OK"), Some("200"));
        assert_eq!(status("HTTP/1.0 503"), Some("503"));
        for garbage in [
            "",
            "200 OK",
            "HTTP/1.1 2000 OK",
            "HTTP/1.1 OK",
            "SSH-2.0-x 200",
        ] {
            assert_eq!(status(garbage), None, "{garbage}");
        }
    }
}
