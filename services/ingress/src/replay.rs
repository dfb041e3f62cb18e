//! The `webhook-id` replay window. Benchling retries a delivery with the same `webhook-id`
//! until it sees a 2xx; a retry of a delivery we already queued is acknowledged again without
//! queueing it twice. (Across ingress instances, SQS FIFO deduplication on the same id covers
//! the same ground for five minutes.)

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bw_contracts::WebhookId;

/// How long an accepted `webhook-id` is remembered.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(10 * 60);

enum State {
    InFlight,
    Accepted,
}

/// Remembers recent `webhook-id`s, by keyed hash to keep memory small and fixed per id.
pub struct ReplayGuard {
    hasher: RandomState,
    window: Duration,
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    states: HashMap<u64, State>,
    accepted: VecDeque<(u64, Instant)>,
}

/// What the guard says about a delivery.
pub enum Claim<'a> {
    /// First sight: process it, then [`ClaimToken::accept`].
    New(ClaimToken<'a>),
    /// Already queued: acknowledge without queueing.
    Accepted,
    /// Another request with this id is being processed right now: ask the sender to retry,
    /// since acknowledging now would be wrong if that request fails.
    InFlight,
}

/// An in-flight claim on an id. Dropped without `accept`, it releases the id so the sender's
/// retry is processed afresh.
pub struct ClaimToken<'a> {
    guard: &'a ReplayGuard,
    key: u64,
    accepted: bool,
}

impl ReplayGuard {
    /// A guard remembering ids for `window`, at most `capacity` of them (oldest dropped first).
    pub fn new(window: Duration, capacity: usize) -> Self {
        Self {
            hasher: RandomState::new(),
            window,
            capacity,
            inner: Mutex::default(),
        }
    }

    /// Claims `id` for processing.
    pub fn claim(&self, id: &WebhookId) -> Claim<'_> {
        let key = self.hasher.hash_one(id.as_str());
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.expire(&mut inner, Instant::now());
        match inner.states.get(&key) {
            Some(State::Accepted) => Claim::Accepted,
            Some(State::InFlight) => Claim::InFlight,
            None => {
                inner.states.insert(key, State::InFlight);
                Claim::New(ClaimToken {
                    guard: self,
                    key,
                    accepted: false,
                })
            }
        }
    }

    fn expire(&self, inner: &mut Inner, now: Instant) {
        while let Some(&(key, at)) = inner.accepted.front() {
            if now.duration_since(at) < self.window && inner.accepted.len() <= self.capacity {
                break;
            }
            inner.accepted.pop_front();
            inner.states.remove(&key);
        }
    }
}

impl ClaimToken<'_> {
    /// Records that the delivery was queued.
    pub fn accept(mut self) {
        self.accepted = true;
        let mut inner = self.guard.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.states.insert(self.key, State::Accepted);
        inner.accepted.push_back((self.key, Instant::now()));
    }
}

impl Drop for ClaimToken<'_> {
    fn drop(&mut self) {
        if !self.accepted {
            let mut inner = self.guard.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.states.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: &str) -> WebhookId {
        WebhookId::parse(raw).unwrap()
    }

    #[test]
    fn accepted_ids_are_recognised_and_failed_ones_released() {
        let guard = ReplayGuard::new(REPLAY_WINDOW, 1_000);
        let Claim::New(token) = guard.claim(&id("msg_1")) else {
            panic!()
        };
        assert!(matches!(guard.claim(&id("msg_1")), Claim::InFlight));
        token.accept();
        assert!(matches!(guard.claim(&id("msg_1")), Claim::Accepted));

        let Claim::New(token) = guard.claim(&id("msg_2")) else {
            panic!()
        };
        drop(token);
        assert!(matches!(guard.claim(&id("msg_2")), Claim::New(_)));
    }

    #[test]
    fn forgets_after_the_window_and_beyond_capacity() {
        let guard = ReplayGuard::new(Duration::from_millis(30), 1_000);
        let Claim::New(token) = guard.claim(&id("msg_1")) else {
            panic!()
        };
        token.accept();
        std::thread::sleep(Duration::from_millis(40));
        assert!(matches!(guard.claim(&id("msg_1")), Claim::New(_)));

        let guard = ReplayGuard::new(REPLAY_WINDOW, 2);
        for n in 0..3 {
            let Claim::New(token) = guard.claim(&id(&format!("msg_{n}"))) else {
                panic!()
            };
            token.accept();
        }
        assert!(matches!(guard.claim(&id("msg_0")), Claim::New(_)));
        assert!(matches!(guard.claim(&id("msg_2")), Claim::Accepted));
    }
}
