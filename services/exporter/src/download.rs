//! Downloading an export ZIP from its pre-signed URL to a file, streaming, within size and time
//! limits.
//!
//! The URL carries credentials in its query, so every URL in an error goes through
//! [`mask_url`] first.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bw_benchling::PlainHttpHosts;
use bw_config::mask::mask_url;
use futures_util::StreamExt;
use tokio::fs::File;
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, timeout, timeout_at};
use url::Url;

/// Limits on one download; `Default` gives the production values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadLimits {
    /// Largest body accepted, counted while streaming.
    pub max_bytes: u64,
    /// Longest time for the whole download, response headers to the last byte written.
    pub timeout: Duration,
    /// Longest wait for the response headers or for the next chunk of the body.
    pub read_timeout: Duration,
    /// Where plain `http` may go (loopback, and hosts the Benchling client allows).
    pub plain_http: PlainHttpHosts,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        Self {
            max_bytes: 5 * 1024 * 1024 * 1024,
            timeout: Duration::from_secs(30 * 60),
            read_timeout: Duration::from_secs(60),
            plain_http: PlainHttpHosts::default(),
        }
    }
}

/// Why a download failed. URLs are masked (no query, no user info).
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// Not `https`, nor `http` to a loopback address.
    #[error("refusing to download from {url}: only https (or http to loopback) is allowed")]
    InsecureUrl {
        /// The masked URL.
        url: String,
    },
    /// The server redirected, or the response came from another origin than the one asked.
    #[error("refusing the redirect of the download from {url} to {location}")]
    Redirected {
        /// The masked URL asked for.
        url: String,
        /// The masked redirect target, or `unknown` when the response gave none.
        location: String,
    },
    /// A status other than 2xx. 403 and 404 are what S3 answers once a pre-signed URL expired.
    #[error("download from {url} answered HTTP {status}")]
    Status {
        /// The masked URL.
        url: String,
        /// HTTP status code.
        status: u16,
    },
    /// The body (announced or received) is larger than [`DownloadLimits::max_bytes`].
    #[error("download from {url} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The masked URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The whole download, or one wait for data, took longer than its limit.
    #[error("download from {url} timed out after {after:?}")]
    TimedOut {
        /// The masked URL.
        url: String,
        /// The limit that passed.
        after: Duration,
    },
    /// The connection failed or broke.
    #[error("download from {url} failed: {message}")]
    Transport {
        /// The masked URL.
        url: String,
        /// What went wrong, without the URL.
        message: String,
    },
    /// Writing or syncing the file failed.
    #[error("writing the download to {}: {source}", .path.display())]
    Io {
        /// The destination file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl DownloadError {
    /// Whether retrying the job cannot help: an insecure URL, a refused redirect, a body over
    /// the limit. Status errors are transient because a retried job starts a new export with a
    /// fresh URL (403/404 mean this one expired); network, timeout and disk errors are transient.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::InsecureUrl { .. } | Self::Redirected { .. } | Self::TooLarge { .. } => true,
            Self::Status { .. }
            | Self::TimedOut { .. }
            | Self::Transport { .. }
            | Self::Io { .. } => false,
        }
    }
}

/// Streams the body at `url` into `dest` (created or truncated); returns the
/// bytes written. Memory stays at one chunk whatever the size.
///
/// `http` must not follow redirects to other hosts: build it with
/// `reqwest::redirect::Policy::none()` (a pre-signed URL has no reason to redirect) or a policy
/// that stops at other origins. Any 3xx that reaches us, or a response whose final URL has
/// another origin, is refused. Only `https` URLs are fetched, and `http` to loopback (the test
/// stand-ins) or a host [`DownloadLimits::plain_http`] allows, so a forged URL cannot reach internal hosts.
///
/// On error the partial file is removed. Cancelling the future leaves it in place: put `dest`
/// in a temporary directory the caller cleans up.
pub async fn download_to_file(
    http: &reqwest::Client,
    url: &Url,
    dest: &Path,
    limits: &DownloadLimits,
) -> Result<u64, DownloadError> {
    let shown = mask_url(url.as_str());
    if !limits.plain_http.is_secure(url) {
        return Err(DownloadError::InsecureUrl { url: shown });
    }
    let deadline = Instant::now() + limits.timeout;
    let timed_out = || DownloadError::TimedOut {
        url: shown.clone(),
        after: limits.timeout,
    };
    let response = timeout_at(deadline, open(http, url, &shown, limits))
        .await
        .unwrap_or_else(|_| Err(timed_out()))?;
    let result = timeout_at(deadline, spool(response, dest, &shown, limits))
        .await
        .unwrap_or_else(|_| Err(timed_out()));
    if result.is_err() {
        // Best effort: the original error matters more than a failed clean-up.
        let _ = tokio::fs::remove_file(dest).await;
    }
    result
}

/// Sends the request and checks everything knowable before the body: status, origin, size.
async fn open(
    http: &reqwest::Client,
    url: &Url,
    shown: &str,
    limits: &DownloadLimits,
) -> Result<reqwest::Response, DownloadError> {
    let response = timeout(limits.read_timeout, http.get(url.clone()).send())
        .await
        .map_err(|_| DownloadError::TimedOut {
            url: shown.to_owned(),
            after: limits.read_timeout,
        })?
        .map_err(|e| transport(shown, e))?;
    let status = response.status();
    if status.is_redirection() {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| url.join(v).ok())
            .map_or_else(|| "unknown".to_owned(), |u| mask_url(u.as_str()));
        return Err(DownloadError::Redirected {
            url: shown.to_owned(),
            location,
        });
    }
    // A client that follows redirects may have ended up elsewhere.
    let landed = response.url();
    if landed.origin() != url.origin() || !limits.plain_http.is_secure(landed) {
        return Err(DownloadError::Redirected {
            url: shown.to_owned(),
            location: mask_url(landed.as_str()),
        });
    }
    if !status.is_success() {
        return Err(DownloadError::Status {
            url: shown.to_owned(),
            status: status.as_u16(),
        });
    }
    if response
        .content_length()
        .is_some_and(|len| len > limits.max_bytes)
    {
        return Err(too_large(shown, limits));
    }
    Ok(response)
}

/// Writes the body chunk by chunk, counting bytes as they arrive (Content-Length may lie).
async fn spool(
    response: reqwest::Response,
    dest: &Path,
    shown: &str,
    limits: &DownloadLimits,
) -> Result<u64, DownloadError> {
    let io_error = |source| DownloadError::Io {
        path: dest.to_owned(),
        source,
    };
    let mut file = File::create(dest).await.map_err(io_error)?;
    let mut body = response.bytes_stream();
    let mut written: u64 = 0;
    loop {
        let next = timeout(limits.read_timeout, body.next())
            .await
            .map_err(|_| DownloadError::TimedOut {
                url: shown.to_owned(),
                after: limits.read_timeout,
            })?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| transport(shown, e))?;
        let len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        written = written.saturating_add(len);
        if written > limits.max_bytes {
            return Err(too_large(shown, limits));
        }
        file.write_all(&chunk).await.map_err(io_error)?;
    }
    // No fsync: the file lives in this job's temporary directory and is read back by this
    // process only. After a crash the job starts again with a new download.
    file.flush().await.map_err(io_error)?;
    Ok(written)
}

fn too_large(shown: &str, limits: &DownloadLimits) -> DownloadError {
    DownloadError::TooLarge {
        url: shown.to_owned(),
        limit: limits.max_bytes,
    }
}

/// A transport error without the URL reqwest puts in its message (it holds the signature).
fn transport(shown: &str, error: reqwest::Error) -> DownloadError {
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    DownloadError::Transport {
        url: shown.to_owned(),
        message,
    }
}
