//! When and how long to wait before trying a Benchling call again: exponential backoff with full
//! jitter, or the wait Benchling asks for on 429.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng as _;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Retry policy for transient failures (429, 502, 503, 504, timeouts, connection errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryOptions {
    /// Tries per call, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff ceiling for the first retry; doubles on each retry.
    pub initial_backoff: Duration,
    /// The longest single wait, a `Retry-After` hint included.
    pub max_wait: Duration,
}

impl Default for RetryOptions {
    /// Like Benchling's SDK (5 tries, 1 s doubling), with jitter and a 60 s cap per wait.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl RetryOptions {
    /// The wait before retry number `retry` (1 for the first). A server hint wins over the
    /// backoff; otherwise the wait is uniform in `0..=initial_backoff × 2^(retry-1)` (full
    /// jitter, so tasks that failed together do not retry together). Both are capped by
    /// `max_wait`.
    pub(crate) fn wait(&self, retry: u32, hint: Option<Duration>) -> Duration {
        let wait = match hint {
            Some(hint) => hint,
            None => {
                let ceiling = self
                    .initial_backoff
                    .saturating_mul(1u32 << retry.saturating_sub(1).min(20))
                    .min(self.max_wait);
                let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
                Duration::from_millis(rand::rng().random_range(0..=millis))
            }
        };
        wait.min(self.max_wait)
    }
}

/// Whether a response status is worth retrying.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// How long the server asked us to wait: `Retry-After` (seconds or an HTTP date) or
/// `x-rate-limit-reset` (seconds until the window resets, or a Unix time), the longer of the two.
pub(crate) fn server_hint(headers: &HeaderMap) -> Option<Duration> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let retry_after = header(RETRY_AFTER.as_str()).and_then(|v| {
        v.parse::<u64>()
            .ok()
            .map(Duration::from_secs)
            .or_else(|| until_http_date(v))
    });
    let reset = header("x-rate-limit-reset")
        .and_then(|v| v.parse::<u64>().ok())
        .map(until_reset);
    retry_after.max(reset)
}

/// Benchling documents `x-rate-limit-reset` as seconds; a value that looks like a Unix time is
/// read as one.
fn until_reset(value: u64) -> Duration {
    const LOOKS_LIKE_UNIX_TIME: u64 = 1_000_000_000;
    if value < LOOKS_LIKE_UNIX_TIME {
        return Duration::from_secs(value);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Duration::from_secs(value.saturating_sub(now))
}

fn until_http_date(value: &str) -> Option<Duration> {
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let secs = (at.timestamp() - chrono::Utc::now().timestamp()).max(0);
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_is_jittered_below_a_doubling_ceiling() {
        let options = RetryOptions {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_wait: Duration::from_millis(350),
        };
        for _ in 0..200 {
            assert!(options.wait(1, None) <= Duration::from_millis(100));
            assert!(options.wait(2, None) <= Duration::from_millis(200));
            assert!(options.wait(6, None) <= Duration::from_millis(350));
        }
        assert_eq!(
            options.wait(1, Some(Duration::from_secs(9))),
            Duration::from_millis(350)
        );
    }

    #[test]
    fn hints_take_the_longer_of_retry_after_and_reset() {
        let mut headers = HeaderMap::new();
        assert_eq!(server_hint(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(server_hint(&headers), Some(Duration::from_secs(2)));
        headers.insert("x-rate-limit-reset", HeaderValue::from_static("7"));
        assert_eq!(server_hint(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(server_hint(&headers), Some(Duration::from_secs(7)));
    }
}
