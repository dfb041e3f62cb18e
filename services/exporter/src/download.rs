//! Downloading an export ZIP from its pre-signed URL to a file, streaming, within size and time
//! limits.
//!
//! [`start_download`] lets the archive be read while it arrives. A ZIP's central directory is at
//! its end, and nothing may be written before it is validated, so the end comes first: one range
//! request for the last [`TAIL_BYTES`], then a second for everything before them, written to the
//! file in order while the members already complete are decompressed and uploaded. S3, which
//! serves Benchling's pre-signed URLs, answers range requests. A server that ignores them sends
//! the whole ZIP in answer to the first request, and the archive is read once it has all arrived.
//!
//! The URL carries credentials in its query, so every URL in an error goes through
//! [`mask_url`] first.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bw_benchling::PlainHttpHosts;
use bw_config::mask::mask_url;
use futures_util::StreamExt;
use tokio::fs::File;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout, timeout_at};
use url::Url;

use crate::archive::{ArchiveFile, Arrival};

/// How much of the archive's end is fetched first. The central directory must fit in it for the
/// uploads to start before the rest has arrived: 4 MiB holds the directory of 20,000 members
/// (the default member limit) with names of up to 150 bytes. A larger directory is still read
/// correctly, once the rest has arrived.
pub const TAIL_BYTES: u64 = 4 * 1024 * 1024;

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

/// An export ZIP arriving in a file (see the module's documentation).
///
/// Dropping it stops the download; readers of [`Download::file`] waiting for bytes then fail.
#[derive(Debug)]
pub struct Download {
    file: ArchiveFile,
    arrival: Option<Arc<Arrival>>,
    /// The download of everything before the tail, while it runs.
    rest: Option<JoinHandle<Result<(), DownloadError>>>,
    size: u64,
}

impl Download {
    /// The archive file, readable as its bytes arrive.
    pub fn file(&self) -> ArchiveFile {
        self.file.clone()
    }

    /// Whether the download failed, so that the archive will never be whole.
    pub fn has_failed(&self) -> bool {
        self.arrival
            .as_ref()
            .is_some_and(|arrival| arrival.has_failed())
    }

    /// Waits for the rest of the archive; returns its size in bytes.
    ///
    /// # Errors
    ///
    /// Why the download failed.
    pub async fn finish(mut self) -> Result<u64, DownloadError> {
        if let Some(rest) = self.rest.take() {
            rest.await.map_err(|error| DownloadError::Transport {
                url: "the export download".to_owned(),
                message: format!("the download task ended: {error}"),
            })??;
        }
        Ok(self.size)
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        if let Some(rest) = &self.rest {
            rest.abort();
            if let Some(arrival) = &self.arrival {
                arrival.failed("the download was stopped");
            }
        }
    }
}

/// Starts downloading `url` into `dest`, returning once the archive can be opened (see the
/// module's documentation). Memory stays at one chunk whatever the size.
///
/// `http` must not follow redirects to other hosts: build it with
/// `reqwest::redirect::Policy::none()` (a pre-signed URL has no reason to redirect) or a policy
/// that stops at other origins. Any 3xx that reaches us, or a response whose final URL has
/// another origin, is refused. Only `https` URLs are fetched, and `http` to loopback (the test
/// stand-ins) or a host [`DownloadLimits::plain_http`] allows, so a forged URL cannot reach
/// internal hosts.
///
/// A whole body that fails is removed; a ranged one is left for the caller: put `dest` in a
/// temporary directory the caller cleans up.
///
/// # Errors
///
/// When the first response breaks those rules or its body cannot be written; the rest of the
/// download reports through [`Download::finish`].
pub async fn start_download(
    http: &reqwest::Client,
    url: &Url,
    dest: &Path,
    limits: &DownloadLimits,
) -> Result<Download, DownloadError> {
    let transfer = Transfer {
        shown: mask_url(url.as_str()),
        dest: dest.to_owned(),
        limits: limits.clone(),
    };
    if !limits.plain_http.is_secure(url) {
        return Err(DownloadError::InsecureUrl {
            url: transfer.shown,
        });
    }
    let deadline = Instant::now() + limits.timeout;
    let tail_range = format!("bytes=-{TAIL_BYTES}");
    let first = transfer
        .within(deadline, open(http, url, Some(&tail_range), &transfer))
        .await;
    let response = match first {
        // An empty object has no last bytes to give.
        Err(DownloadError::Status { status: 416, .. }) => {
            transfer
                .within(deadline, open(http, url, None, &transfer))
                .await?
        }
        other => other?,
    };
    let Some(range) = transfer.partial(&response)? else {
        // The server ignored the range: this is the whole archive.
        let size = transfer.spool_whole(response, deadline).await?;
        let file = std::fs::File::open(dest)
            .and_then(ArchiveFile::new)
            .map_err(|source| transfer.io_error(source))?;
        return Ok(Download {
            file,
            arrival: None,
            rest: None,
            size,
        });
    };
    if range.size > limits.max_bytes {
        return Err(transfer.too_large());
    }
    let mut file = File::create(dest)
        .await
        .map_err(|source| transfer.io_error(source))?;
    let written = async {
        file.set_len(range.size).await?;
        file.seek(SeekFrom::Start(range.start)).await
    };
    written.await.map_err(|source| transfer.io_error(source))?;
    let promised = range.size - range.start;
    let tail = transfer.write_body(response, &mut file, Expected::Range(promised), |_| {});
    let tail = transfer.within(deadline, tail).await?;
    if tail != promised {
        return Err(transfer.short(tail, promised));
    }
    let arrival = Arrival::new(range.start);
    let reader = std::fs::File::open(dest)
        .and_then(|reader| ArchiveFile::arriving(reader, Arc::clone(&arrival)))
        .map_err(|source| transfer.io_error(source))?;
    let rest = (range.start > 0).then(|| {
        let rest = Rest {
            http: http.clone(),
            url: url.clone(),
            transfer,
            end: range.start,
            size: range.size,
        };
        let arrival = Arc::clone(&arrival);
        tokio::spawn(async move {
            let fetched = rest
                .transfer
                .within(deadline, rest.fetch(file, &arrival))
                .await;
            if let Err(error) = &fetched {
                arrival.failed(error.to_string());
            }
            fetched
        })
    });
    Ok(Download {
        file: reader,
        arrival: Some(arrival),
        rest,
        size: range.size,
    })
}

/// What a `206 Partial Content` answer holds: bytes `start..size` of a `size`-byte object.
struct PartialRange {
    start: u64,
    size: u64,
}

/// How many bytes a body may hold.
#[derive(Clone, Copy)]
enum Expected {
    /// The answer to a range request: at most this many, more is a broken answer.
    Range(u64),
    /// A whole object: at most [`DownloadLimits::max_bytes`].
    Whole,
}

/// One download's URL (masked), destination and limits, shared by its requests and their errors.
struct Transfer {
    shown: String,
    dest: PathBuf,
    limits: DownloadLimits,
}

impl Transfer {
    /// Runs `work` until `deadline`, the end of the whole download.
    async fn within<T>(
        &self,
        deadline: Instant,
        work: impl Future<Output = Result<T, DownloadError>>,
    ) -> Result<T, DownloadError> {
        timeout_at(deadline, work).await.unwrap_or_else(|_| {
            Err(DownloadError::TimedOut {
                url: self.shown.clone(),
                after: self.limits.timeout,
            })
        })
    }

    /// The range a `206` response carries, `None` for a whole body (`200`).
    fn partial(&self, response: &reqwest::Response) -> Result<Option<PartialRange>, DownloadError> {
        if response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
            return Ok(None);
        }
        let header = response
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        let parsed = header
            .strip_prefix("bytes ")
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(span, size)| {
                let (first, last) = span.split_once('-')?;
                Some((
                    first.parse::<u64>().ok()?,
                    last.parse::<u64>().ok()?,
                    size.parse::<u64>().ok()?,
                ))
            });
        match parsed {
            // The tail asked for: it must reach the end.
            Some((first, last, size)) if first <= last && last.checked_add(1) == Some(size) => {
                Ok(Some(PartialRange { start: first, size }))
            }
            _ => Err(DownloadError::Transport {
                url: self.shown.clone(),
                message: format!("the answer to a range request has content-range {header:?}"),
            }),
        }
    }

    /// Writes a whole body to the destination (created or truncated) within the deadline;
    /// returns its size. On error the partial file is removed.
    async fn spool_whole(
        &self,
        response: reqwest::Response,
        deadline: Instant,
    ) -> Result<u64, DownloadError> {
        let spooled = async {
            let mut file = File::create(&self.dest)
                .await
                .map_err(|source| self.io_error(source))?;
            self.write_body(response, &mut file, Expected::Whole, |_| {})
                .await
        };
        let result = self.within(deadline, spooled).await;
        if result.is_err() {
            // Best effort: the original error matters more than a failed clean-up.
            let _ = tokio::fs::remove_file(&self.dest).await;
        }
        result
    }

    /// Writes the body to `file` at its position, chunk by chunk, counting bytes as they arrive
    /// (Content-Length may lie) against `expected`. `progress` hears the count after every
    /// chunk. Returns the bytes written.
    async fn write_body(
        &self,
        response: reqwest::Response,
        file: &mut File,
        expected: Expected,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, DownloadError> {
        let most = match expected {
            Expected::Range(promised) => promised,
            Expected::Whole => self.limits.max_bytes,
        };
        let mut body = response.bytes_stream();
        let mut written: u64 = 0;
        loop {
            let next = timeout(self.limits.read_timeout, body.next())
                .await
                .map_err(|_| DownloadError::TimedOut {
                    url: self.shown.clone(),
                    after: self.limits.read_timeout,
                })?;
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(|e| transport(&self.shown, e))?;
            let len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
            written = written.saturating_add(len);
            if written > most {
                return Err(match expected {
                    Expected::Range(promised) => DownloadError::Transport {
                        url: self.shown.clone(),
                        message: format!(
                            "the answer holds more than the {promised} bytes asked for"
                        ),
                    },
                    Expected::Whole => self.too_large(),
                });
            }
            // Flushed before `progress` hears of it: tokio's `File` finishes writes in the
            // background, and readers of the file must find the bytes there.
            let wrote = async {
                file.write_all(&chunk).await?;
                file.flush().await
            };
            wrote.await.map_err(|source| self.io_error(source))?;
            progress(written);
        }
        // No fsync: the file lives in this job's temporary directory and is read back by this
        // process only. After a crash the job starts again with a new download.
        Ok(written)
    }

    fn io_error(&self, source: io::Error) -> DownloadError {
        DownloadError::Io {
            path: self.dest.clone(),
            source,
        }
    }

    /// A body that ended before the bytes its range promised.
    fn short(&self, got: u64, promised: u64) -> DownloadError {
        DownloadError::Transport {
            url: self.shown.clone(),
            message: format!("the answer ended after {got} of {promised} bytes"),
        }
    }

    fn too_large(&self) -> DownloadError {
        DownloadError::TooLarge {
            url: self.shown.clone(),
            limit: self.limits.max_bytes,
        }
    }
}

/// The download of everything before the tail.
struct Rest {
    http: reqwest::Client,
    url: Url,
    transfer: Transfer,
    /// Bytes `0..end` are fetched.
    end: u64,
    /// The whole archive's size, which the answer must confirm.
    size: u64,
}

impl Rest {
    async fn fetch(&self, mut file: File, arrival: &Arrival) -> Result<(), DownloadError> {
        let transfer = &self.transfer;
        let range = format!("bytes=0-{}", self.end - 1);
        let response = open(&self.http, &self.url, Some(&range), transfer).await?;
        // The same object must answer: the exact range, of the same size.
        let expected = format!("bytes 0-{}/{}", self.end - 1, self.size);
        let header = response
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|value| value.to_str().ok());
        if response.status() != reqwest::StatusCode::PARTIAL_CONTENT || header != Some(&expected) {
            return Err(DownloadError::Transport {
                url: transfer.shown.clone(),
                message: format!(
                    "asked for {expected}, the server answered HTTP {} with content-range {header:?}",
                    response.status().as_u16()
                ),
            });
        }
        file.seek(SeekFrom::Start(0))
            .await
            .map_err(|source| transfer.io_error(source))?;
        let fetched = transfer
            .write_body(response, &mut file, Expected::Range(self.end), |written| {
                arrival.arrived(written);
            })
            .await?;
        if fetched != self.end {
            return Err(transfer.short(fetched, self.end));
        }
        Ok(())
    }
}

/// Sends the request and checks everything knowable before the body: status, origin, size.
async fn open(
    http: &reqwest::Client,
    url: &Url,
    range: Option<&str>,
    transfer: &Transfer,
) -> Result<reqwest::Response, DownloadError> {
    let shown = &transfer.shown;
    let limits = &transfer.limits;
    let mut request = http.get(url.clone());
    if let Some(range) = range {
        request = request.header(reqwest::header::RANGE, range);
    }
    let response = timeout(limits.read_timeout, request.send())
        .await
        .map_err(|_| DownloadError::TimedOut {
            url: shown.clone(),
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
            url: shown.clone(),
            location,
        });
    }
    // A client that follows redirects may have ended up elsewhere.
    let landed = response.url();
    if landed.origin() != url.origin() || !limits.plain_http.is_secure(landed) {
        return Err(DownloadError::Redirected {
            url: shown.clone(),
            location: mask_url(landed.as_str()),
        });
    }
    if !status.is_success() {
        return Err(DownloadError::Status {
            url: shown.clone(),
            status: status.as_u16(),
        });
    }
    if response
        .content_length()
        .is_some_and(|len| len > limits.max_bytes)
    {
        return Err(transfer.too_large());
    }
    Ok(response)
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
