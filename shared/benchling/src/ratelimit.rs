//! A client-side rate limiter shared by every clone of the client, so all of a worker's tasks
//! together stay under the tenant's request budget.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A request budget: at most `requests` per `per`, with bursts up to `requests`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window.
    pub per: Duration,
}

impl Default for RateLimit {
    /// Benchling's default: 60 requests per 30 s per tenant.
    fn default() -> Self {
        Self {
            requests: 60,
            per: Duration::from_secs(30),
        }
    }
}

/// A token bucket. Callers reserve a token even when the bucket is empty (the balance goes
/// negative) and then sleep for their share, so waiters are served in arrival order without
/// polling.
pub(crate) struct RateLimiter {
    capacity: f64,
    per_second: f64,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
    /// Benchling asked us to hold off (429 with a reset hint) until then.
    held_until: Option<Instant>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let capacity = f64::from(limit.requests.max(1));
        let window = limit.per.as_secs_f64().max(f64::EPSILON);
        Self {
            capacity,
            per_second: capacity / window,
            bucket: Mutex::new(Bucket {
                tokens: capacity,
                updated: Instant::now(),
                held_until: None,
            }),
        }
    }

    /// Waits until one more request fits in the budget.
    pub(crate) async fn acquire(&self) {
        let wait = {
            let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.capacity);
            bucket.updated = now;
            bucket.tokens -= 1.0;
            let share = if bucket.tokens < 0.0 {
                Duration::from_secs_f64(-bucket.tokens / self.per_second)
            } else {
                Duration::ZERO
            };
            let held = bucket
                .held_until
                .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
            share.max(held)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Makes every caller wait until `until` (Benchling said the budget is spent).
    pub(crate) fn hold_until(&self, until: Instant) {
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        if bucket.held_until.is_none_or(|current| current < until) {
            bucket.held_until = Some(until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bursts_up_to_the_limit_then_paces() {
        let limiter = RateLimiter::new(RateLimit {
            requests: 4,
            per: Duration::from_secs(2),
        });
        let start = Instant::now();
        for _ in 0..4 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        for _ in 0..4 {
            limiter.acquire().await;
        }
        assert!(start.elapsed() >= Duration::from_millis(1990));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_delays_everyone() {
        let limiter = RateLimiter::new(RateLimit::default());
        let start = Instant::now();
        limiter.hold_until(start + Duration::from_secs(3));
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(3));
    }
}
