//! Errors from Benchling API calls, classified as permanent (retrying the job cannot help) or
//! transient (a later attempt may succeed). Messages never contain credentials or tokens.

use std::fmt;

/// The kind of transport failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// The request or its response took longer than the timeout.
    Timeout,
    /// No connection could be made.
    Connect,
    /// Anything else below HTTP (reset connection, malformed response, …).
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timed out",
            Self::Connect => "could not connect",
            Self::Other => "failed",
        })
    }
}

/// A failed Benchling call.
#[derive(Debug, thiserror::Error)]
pub enum BenchlingError {
    /// Benchling has no such resource (a deleted entry or canvas, or one the app cannot see).
    #[error("Benchling {method} {path}: 404 not found{}", detail(.message))]
    NotFound {
        /// HTTP method.
        method: String,
        /// API path, e.g. `/entries/etr_1`.
        path: String,
        /// Benchling's error message, if any.
        message: String,
    },
    /// Any other non-success status (after the retries and the one token refresh).
    #[error("Benchling {method} {path}: HTTP {status}{}", detail(.message))]
    Status {
        /// HTTP method.
        method: String,
        /// API path.
        path: String,
        /// HTTP status code.
        status: u16,
        /// Benchling's error message, if any.
        message: String,
    },
    /// The request never got an HTTP answer.
    #[error("Benchling {method} {path} {kind}: {message}")]
    Transport {
        /// HTTP method.
        method: String,
        /// API path.
        path: String,
        /// Timeout, connect or other.
        kind: TransportKind,
        /// What went wrong.
        message: String,
    },
    /// A success response without a field we need, or not the JSON we expect.
    #[error("unexpected Benchling response to {path}: {detail}")]
    InvalidResponse {
        /// API path.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// An export task ended in `FAILED`.
    #[error("Benchling export task {task_id} failed: {message}")]
    ExportFailed {
        /// The task.
        task_id: String,
        /// Benchling's `message` and `errors`.
        message: String,
    },
    /// No credentials yet (the secret is loading or unavailable).
    #[error("Benchling credentials are not available: {0}")]
    NoCredentials(String),
    /// The API base URL (configured or derived from the tenant) is not acceptable.
    #[error("invalid Benchling API base URL {url}: {reason}")]
    InvalidBaseUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The HTTP client could not be set up (TLS initialisation).
    #[error("could not build the Benchling HTTP client: {0}")]
    HttpClient(String),
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl BenchlingError {
    /// Whether retrying later cannot help: a 4xx other than 401 (credentials may be rotating),
    /// 408 and 429, a missing resource, a malformed response, a failed export, a bad base URL.
    /// Server errors, transport failures and missing credentials are transient.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::NotFound { .. }
            | Self::InvalidResponse { .. }
            | Self::ExportFailed { .. }
            | Self::InvalidBaseUrl { .. }
            | Self::HttpClient(_) => true,
            Self::Status { status, .. } => {
                (400..500).contains(status) && !matches!(status, 401 | 408 | 429)
            }
            Self::Transport { .. } | Self::NoCredentials(_) => false,
        }
    }

    /// Whether Benchling said the resource does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// The HTTP status Benchling answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::NotFound { .. } => Some(404),
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}
