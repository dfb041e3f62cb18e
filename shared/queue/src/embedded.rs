//! An in-process queue with the SQS semantics the services rely on, for running without AWS and
//! for tests.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::{
    MAX_BATCH, MAX_WAIT, OutgoingMessage, Queue, QueueError, ReceiptHandle, ReceivedMessage,
};

/// How long a FIFO deduplication id suppresses duplicates (SQS's fixed interval).
const DEDUP_WINDOW: Duration = Duration::from_secs(300);

/// Most deduplication ids remembered at once. SQS keeps every id for the whole window; this
/// in-memory backend forgets the oldest early instead of growing without bound on a long run.
const DEDUP_CAPACITY: usize = 10_000;

/// SQS's longest visibility timeout.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

/// SQS's largest message: body plus attribute names and values.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// SQS's most message attributes per message.
const MAX_ATTRIBUTES: usize = 10;

/// Gives every queue in the process its own receipt prefix, so a receipt from one queue is
/// refused by another instead of deleting an unrelated message.
static NEXT_QUEUE_TAG: AtomicU64 = AtomicU64::new(1);

/// Settings for an [`EmbeddedQueue`].
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// Queue name, for logs and errors.
    pub name: String,
    /// FIFO: group ordering and deduplication apply, and every message needs a group id.
    pub fifo: bool,
    /// How long a received message stays invisible (default 30 s, as SQS).
    pub visibility_timeout: Duration,
    /// After this many receives a message goes to `dead_letter` instead of being delivered
    /// again (default 5). Like SQS's `maxReceiveCount`, it has no effect without a dead-letter
    /// queue.
    pub max_receives: Option<u32>,
    /// Where messages go once received `max_receives` times. It should be of the same kind
    /// (FIFO or standard), as SQS requires; a FIFO dead-letter queue puts a message that arrives
    /// without a group into a group of its own.
    pub dead_letter: Option<Arc<EmbeddedQueue>>,
}

impl EmbeddedOptions {
    /// A standard queue with SQS's defaults and no dead-letter queue.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            fifo: false,
            visibility_timeout: Duration::from_secs(30),
            max_receives: Some(5),
            dead_letter: None,
        }
    }

    /// Makes the queue FIFO (or standard).
    pub fn fifo(mut self, fifo: bool) -> Self {
        self.fifo = fifo;
        self
    }

    /// Sets the visibility timeout.
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.visibility_timeout = timeout;
        self
    }

    /// Sets how many receives a message gets before it goes to the dead-letter queue.
    pub fn max_receives(mut self, max_receives: Option<u32>) -> Self {
        self.max_receives = max_receives;
        self
    }

    /// Sets the dead-letter queue.
    pub fn dead_letter(mut self, queue: Arc<EmbeddedQueue>) -> Self {
        self.dead_letter = Some(queue);
        self
    }
}

/// An in-process queue with SQS semantics: visibility timeout and redelivery with a new receipt,
/// redrive to a dead-letter queue after `max_receives`, and for FIFO queues group ordering,
/// one group in flight at a time, and 5-minute deduplication (by dedup id, else by body, as
/// content-based deduplication). Messages live in memory only.
///
/// Differences from SQS, all on the lenient side: a standard queue silently drops group and
/// dedup ids (SQS refuses a dedup id there), and deleting with a stale receipt succeeds without
/// deleting, which SQS also allows ("succeeds but might not delete").
pub struct EmbeddedQueue {
    options: EmbeddedOptions,
    tag: u64,
    state: Mutex<State>,
    /// Wakes long polls when a message may have become deliverable.
    arrivals: Notify,
}

/// A stored message. `receipt` numbers its latest receipt (0: never received).
struct Stored {
    id: uuid::Uuid,
    body: String,
    group: Option<Arc<str>>,
    attributes: BTreeMap<String, String>,
    receive_count: u32,
    receipt: u64,
    /// Set while the message is in flight.
    deadline: Option<Instant>,
}

/// A FIFO group: its visible messages in send order and how many of its messages are in flight.
#[derive(Default)]
struct Group {
    visible: BTreeSet<u64>,
    in_flight: usize,
}

impl Group {
    /// The group's oldest message if the group may deliver now.
    fn head(&self) -> Option<u64> {
        if self.in_flight == 0 {
            self.visible.first().copied()
        } else {
            None
        }
    }
}

/// Messages are keyed by a sequence number, so a redelivered message goes back to its place.
#[derive(Default)]
struct State {
    next_seq: u64,
    next_receipt: u64,
    messages: HashMap<u64, Stored>,
    /// Standard queue: visible messages.
    ready: BTreeSet<u64>,
    /// FIFO queue: groups with a visible or in-flight message.
    groups: HashMap<Arc<str>, Group>,
    /// FIFO queue: groups that may deliver, by their oldest visible message.
    heads: BTreeSet<(u64, Arc<str>)>,
    in_flight: BTreeSet<(Instant, u64)>,
    /// FIFO queue: keyed hash of the deduplication key → (message id, end of its window).
    /// Hashes keep the cost per remembered id small and fixed.
    dedup: HashMap<u64, (uuid::Uuid, Instant)>,
    /// The same keys in send order, to expire them cheaply.
    dedup_expiry: VecDeque<(Instant, u64)>,
    dedup_hasher: RandomState,
}

impl EmbeddedQueue {
    /// Creates a queue.
    pub fn new(options: EmbeddedOptions) -> Arc<Self> {
        Arc::new(Self {
            options,
            tag: NEXT_QUEUE_TAG.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(State::default()),
            arrivals: Notify::new(),
        })
    }

    /// A queue and its dead-letter queue `{name}-dlq`, with default settings otherwise.
    pub fn with_dead_letter(name: &str, fifo: bool) -> (Arc<Self>, Arc<Self>) {
        let dead_letter = Self::new(EmbeddedOptions::new(format!("{name}-dlq")).fifo(fifo));
        let main = Self::new(
            EmbeddedOptions::new(name)
                .fifo(fifo)
                .dead_letter(Arc::clone(&dead_letter)),
        );
        (main, dead_letter)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn rejected(&self, operation: &'static str, message: impl Into<String>) -> QueueError {
        QueueError::Rejected {
            queue: self.options.name.clone(),
            operation,
            message: message.into(),
        }
    }

    /// Runs `f` on the state after returning expired messages to the queue, then hands
    /// messages that ran out of receives to the dead-letter queue (outside the lock, so two
    /// queues that dead-letter into each other cannot deadlock).
    fn with_state<R>(&self, f: impl FnOnce(&mut State, Instant) -> R) -> R {
        let now = Instant::now();
        let mut redriven = Vec::new();
        let result = {
            let mut state = self.state();
            while let Some(&(deadline, seq)) = state.in_flight.first()
                && deadline <= now
            {
                state.in_flight.remove(&(deadline, seq));
                if let Some(stored) = state.release(seq, &self.options) {
                    redriven.push(stored);
                }
            }
            f(&mut state, now)
        };
        if let Some(dead_letter) = &self.options.dead_letter
            && !redriven.is_empty()
        {
            dead_letter.accept_redriven(redriven);
        }
        result
    }

    /// Stores messages moved here from another queue, keeping their id, receive count, body,
    /// attributes and group.
    fn accept_redriven(&self, messages: Vec<Stored>) {
        let fifo = self.options.fifo;
        self.with_state(|state, _| {
            for mut stored in messages {
                stored.receipt = 0;
                stored.deadline = None;
                stored.group = match stored.group.take() {
                    Some(group) if fifo => Some(group),
                    None if fifo => Some(Arc::from(stored.id.to_string().as_str())),
                    _ => None,
                };
                state.insert(stored);
            }
        });
        self.arrivals.notify_waiters();
    }

    /// Validates and stores one message; a FIFO duplicate returns the original's id.
    fn store(
        &self,
        state: &mut State,
        now: Instant,
        operation: &'static str,
        message: OutgoingMessage,
    ) -> Result<String, QueueError> {
        self.validate(&message)
            .map_err(|reason| self.rejected(operation, reason))?;
        let OutgoingMessage {
            body,
            group_id,
            dedup_id,
            attributes,
        } = message;
        if !self.options.fifo {
            return Ok(state
                .insert(Stored::new(body, None, attributes))
                .to_string());
        }
        state.forget_expired_dedup(now);
        let key = state
            .dedup_hasher
            .hash_one(dedup_id.as_deref().unwrap_or(&body));
        if let Some((id, _)) = state.dedup.get(&key) {
            return Ok(id.to_string());
        }
        let id = state.insert(Stored::new(body, group_id.map(Arc::from), attributes));
        let expires = now + DEDUP_WINDOW;
        state.dedup.insert(key, (id, expires));
        state.dedup_expiry.push_back((expires, key));
        Ok(id.to_string())
    }

    /// Checks a message as SQS would, returning why it is refused.
    fn validate(&self, message: &OutgoingMessage) -> Result<(), String> {
        if message.body.is_empty() {
            return Err("the message body must not be empty".into());
        }
        if let Some(c) = message.body.chars().find(|&c| !sqs_allows(c)) {
            return Err(format!(
                "the message body contains U+{:04X}, which SQS does not allow",
                u32::from(c)
            ));
        }
        if message.attributes.len() > MAX_ATTRIBUTES {
            return Err(format!("more than {MAX_ATTRIBUTES} message attributes"));
        }
        if let Some(name) = message
            .attributes
            .iter()
            .find_map(|(name, value)| value.is_empty().then_some(name))
        {
            return Err(format!("message attribute {name} has an empty value"));
        }
        let size = message.body.len()
            + message
                .attributes
                .iter()
                .map(|(name, value)| name.len() + value.len())
                .sum::<usize>();
        if size > MAX_MESSAGE_BYTES {
            return Err(format!(
                "the message is {size} bytes, over the {MAX_MESSAGE_BYTES}-byte limit"
            ));
        }
        if self.options.fifo && message.group_id.is_none() {
            return Err("MessageGroupId is required on a FIFO queue".into());
        }
        Ok(())
    }

    /// Takes up to `max` deliverable messages; also says when the next in-flight message
    /// becomes visible again, so a long poll knows when to look again.
    fn try_receive(&self, max: usize) -> (Vec<ReceivedMessage>, Option<Instant>) {
        let visibility = self.options.visibility_timeout;
        let fifo = self.options.fifo;
        self.with_state(|state, now| {
            let taken = state.take(max, fifo);
            let deadline = now + visibility;
            let received = taken
                .into_iter()
                .filter_map(|seq| state.deliver(seq, deadline, self.tag))
                .collect();
            let next = state.in_flight.first().map(|&(deadline, _)| deadline);
            (received, next)
        })
    }

    /// Parses a receipt issued by this queue into (sequence number, receipt number).
    fn parse_receipt(
        &self,
        operation: &'static str,
        receipt: &ReceiptHandle,
    ) -> Result<(u64, u64), QueueError> {
        let invalid = || self.rejected(operation, "the receipt handle is not valid for this queue");
        let mut parts = receipt.0.split('.').map(str::parse::<u64>);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Ok(tag)), Some(Ok(seq)), Some(Ok(number)), None) if tag == self.tag => {
                Ok((seq, number))
            }
            _ => Err(invalid()),
        }
    }
}

impl Stored {
    fn new(body: String, group: Option<Arc<str>>, attributes: BTreeMap<String, String>) -> Self {
        Self {
            id: uuid::Uuid::new_v4(),
            body,
            group,
            attributes,
            receive_count: 0,
            receipt: 0,
            deadline: None,
        }
    }
}

impl State {
    /// Adds a visible message at the end of the queue and returns its id.
    fn insert(&mut self, stored: Stored) -> uuid::Uuid {
        let seq = self.next_seq;
        self.next_seq += 1;
        let id = stored.id;
        let group = stored.group.clone();
        self.messages.insert(seq, stored);
        match group {
            Some(group) => self.update_group(&group, |g| {
                g.visible.insert(seq);
            }),
            None => {
                self.ready.insert(seq);
            }
        }
        id
    }

    /// Changes a FIFO group and keeps `heads` in step with it.
    fn update_group(&mut self, group: &Arc<str>, change: impl FnOnce(&mut Group)) {
        let entry = self.groups.entry(Arc::clone(group)).or_default();
        let before = entry.head();
        change(entry);
        let after = entry.head();
        if entry.visible.is_empty() && entry.in_flight == 0 {
            self.groups.remove(group);
        }
        if before != after {
            if let Some(seq) = before {
                self.heads.remove(&(seq, Arc::clone(group)));
            }
            if let Some(seq) = after {
                self.heads.insert((seq, Arc::clone(group)));
            }
        }
    }

    /// Takes up to `max` deliverable messages, oldest first, out of the visible set.
    fn take(&mut self, max: usize, fifo: bool) -> Vec<u64> {
        let mut taken = Vec::with_capacity(max);
        if !fifo {
            while taken.len() < max
                && let Some(seq) = self.ready.pop_first()
            {
                taken.push(seq);
            }
            return taken;
        }
        while taken.len() < max
            && let Some((_, group)) = self.heads.first().cloned()
        {
            // Like SQS, hand out consecutive messages of one group together.
            while taken.len() < max
                && let Some(seq) = self
                    .groups
                    .get(&group)
                    .and_then(|g| g.visible.first().copied())
            {
                self.update_group(&group, |g| {
                    g.visible.remove(&seq);
                    g.in_flight += 1;
                });
                taken.push(seq);
            }
        }
        taken
    }

    /// Marks a taken message in flight under a new receipt.
    fn deliver(&mut self, seq: u64, deadline: Instant, tag: u64) -> Option<ReceivedMessage> {
        self.next_receipt += 1;
        let receipt = self.next_receipt;
        let stored = self.messages.get_mut(&seq)?;
        stored.receive_count += 1;
        stored.receipt = receipt;
        stored.deadline = Some(deadline);
        let received = ReceivedMessage {
            message_id: stored.id.to_string(),
            receipt: ReceiptHandle(format!("{tag}.{seq}.{receipt}")),
            body: stored.body.clone(),
            receive_count: stored.receive_count,
            group_id: stored.group.as_deref().map(str::to_owned),
            attributes: stored.attributes.clone(),
        };
        self.in_flight.insert((deadline, seq));
        Some(received)
    }

    /// Ends an in-flight period (the caller has removed it from `in_flight`): the message
    /// becomes visible again at its old place, or, out of receives, is removed and returned for
    /// the dead-letter queue.
    fn release(&mut self, seq: u64, options: &EmbeddedOptions) -> Option<Stored> {
        let stored = self.messages.get_mut(&seq)?;
        stored.deadline = None;
        let exhausted = options.dead_letter.is_some()
            && options
                .max_receives
                .is_some_and(|max| stored.receive_count >= max);
        let group = stored.group.clone();
        match group {
            Some(group) => self.update_group(&group, |g| {
                g.in_flight -= 1;
                if !exhausted {
                    g.visible.insert(seq);
                }
            }),
            None if !exhausted => {
                self.ready.insert(seq);
            }
            None => {}
        }
        if exhausted {
            self.messages.remove(&seq)
        } else {
            None
        }
    }

    /// Removes a message, visible or in flight. Says whether a FIFO group may have been unblocked.
    fn remove(&mut self, seq: u64) -> bool {
        let Some(stored) = self.messages.remove(&seq) else {
            return false;
        };
        if let Some(deadline) = stored.deadline {
            self.in_flight.remove(&(deadline, seq));
        }
        match &stored.group {
            Some(group) => {
                self.update_group(group, |g| {
                    if stored.deadline.is_some() {
                        g.in_flight -= 1;
                    } else {
                        g.visible.remove(&seq);
                    }
                });
                stored.deadline.is_some()
            }
            None => {
                self.ready.remove(&seq);
                false
            }
        }
    }

    /// Forgets ids whose window ended, and the oldest ones beyond [`DEDUP_CAPACITY`].
    fn forget_expired_dedup(&mut self, now: Instant) {
        while let Some((expires, _)) = self.dedup_expiry.front()
            && (*expires <= now || self.dedup_expiry.len() >= DEDUP_CAPACITY)
        {
            if let Some((_, key)) = self.dedup_expiry.pop_front() {
                self.dedup.remove(&key);
            }
        }
    }
}

/// Whether SQS accepts the character in a message (its documented XML character range).
fn sqs_allows(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

impl fmt::Debug for EmbeddedQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedQueue")
            .field("name", &self.options.name)
            .field("fifo", &self.options.fifo)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    fn name(&self) -> &str {
        &self.options.name
    }

    fn is_fifo(&self) -> bool {
        self.options.fifo
    }

    async fn send(&self, message: OutgoingMessage) -> Result<String, QueueError> {
        let result = self.with_state(|state, now| self.store(state, now, "SendMessage", message));
        if result.is_ok() {
            self.arrivals.notify_waiters();
        }
        result
    }

    async fn send_batch(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<Result<String, QueueError>>, QueueError> {
        const OPERATION: &str = "SendMessageBatch";
        if messages.is_empty() {
            return Err(self.rejected(OPERATION, "the batch is empty"));
        }
        if messages.len() > MAX_BATCH {
            return Err(self.rejected(
                OPERATION,
                format!("{} entries, more than {MAX_BATCH}", messages.len()),
            ));
        }
        let results: Vec<_> = self.with_state(|state, now| {
            messages
                .into_iter()
                .map(|message| self.store(state, now, OPERATION, message))
                .collect()
        });
        if results.iter().any(Result::is_ok) {
            self.arrivals.notify_waiters();
        }
        Ok(results)
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let max = max.clamp(1, MAX_BATCH);
        let give_up = Instant::now() + wait.min(MAX_WAIT);
        loop {
            // Registered before looking, so a send between the look and the wait still wakes us.
            let arrival = self.arrivals.notified();
            tokio::pin!(arrival);
            arrival.as_mut().enable();
            let (received, next_deadline) = self.try_receive(max);
            if !received.is_empty() || Instant::now() >= give_up {
                return Ok(received);
            }
            let wake = next_deadline.map_or(give_up, |deadline| deadline.min(give_up));
            tokio::select! {
                () = &mut arrival => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Deletes the message if `receipt` is its latest receipt, even after its visibility ran
    /// out; a stale or repeated delete succeeds without deleting anything, as SQS allows.
    async fn delete(&self, receipt: &ReceiptHandle) -> Result<(), QueueError> {
        let (seq, number) = self.parse_receipt("DeleteMessage", receipt)?;
        let unblocked = self.with_state(|state, _| {
            let latest = state
                .messages
                .get(&seq)
                .is_some_and(|m| m.receipt == number);
            latest && state.remove(seq)
        });
        if unblocked {
            self.arrivals.notify_waiters();
        }
        Ok(())
    }

    /// Refused unless `receipt` is the latest receipt of a message still in flight
    /// (SQS's `MessageNotInflight` / `ReceiptHandleIsInvalid`).
    async fn change_visibility(
        &self,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        const OPERATION: &str = "ChangeMessageVisibility";
        let (seq, number) = self.parse_receipt(OPERATION, receipt)?;
        if timeout > MAX_VISIBILITY {
            return Err(self.rejected(OPERATION, "the visibility timeout is over 12 hours"));
        }
        let redriven = self.with_state(|state, now| {
            let deadline = state
                .messages
                .get(&seq)
                .filter(|m| m.receipt == number)
                .and_then(|m| m.deadline)
                .ok_or_else(|| {
                    self.rejected(OPERATION, "the message is not in flight under this receipt")
                })?;
            state.in_flight.remove(&(deadline, seq));
            if timeout.is_zero() {
                return Ok(state.release(seq, &self.options));
            }
            let deadline = now + timeout;
            if let Some(stored) = state.messages.get_mut(&seq) {
                stored.deadline = Some(deadline);
            }
            state.in_flight.insert((deadline, seq));
            Ok(None)
        })?;
        if let (Some(stored), Some(dead_letter)) = (redriven, &self.options.dead_letter) {
            dead_letter.accept_redriven(vec![stored]);
        }
        // Long polls sleep until the earliest deadline; let them recompute it.
        self.arrivals.notify_waiters();
        Ok(())
    }

    async fn visibility_timeout(&self) -> Result<Duration, QueueError> {
        Ok(self.options.visibility_timeout)
    }

    async fn check(&self) -> Result<(), QueueError> {
        Ok(())
    }

    async fn dead_letter_queue(&self) -> Result<Option<Arc<dyn Queue>>, QueueError> {
        Ok(self
            .options
            .dead_letter
            .clone()
            .map(|queue| queue as Arc<dyn Queue>))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(100);

    fn fifo(visibility: Duration) -> Arc<EmbeddedQueue> {
        EmbeddedQueue::new(
            EmbeddedOptions::new("unit.fifo")
                .fifo(true)
                .visibility_timeout(visibility),
        )
    }

    fn bodies(messages: &[ReceivedMessage]) -> Vec<&str> {
        messages.iter().map(|m| m.body.as_str()).collect()
    }

    #[tokio::test]
    async fn redelivered_fifo_message_returns_to_its_place() {
        let queue = fifo(SHORT);
        for body in ["a", "b", "c"] {
            queue
                .send(OutgoingMessage::new(body).group("g"))
                .await
                .unwrap();
        }
        let first = queue.receive(1, Duration::ZERO).await.unwrap();
        assert_eq!(bodies(&first), ["a"]);

        let again = queue.receive(10, Duration::from_secs(5)).await.unwrap();
        assert_eq!(bodies(&again), ["a", "b", "c"]);
        assert_eq!(again[0].receive_count, 2);
        assert_ne!(again[0].receipt, first[0].receipt);
        assert_eq!(again[1].receive_count, 1);
    }

    #[tokio::test]
    async fn in_flight_message_blocks_only_its_group() {
        let queue = fifo(Duration::from_secs(30));
        queue
            .send(OutgoingMessage::new("g1").group("g"))
            .await
            .unwrap();
        queue
            .send(OutgoingMessage::new("g2").group("g"))
            .await
            .unwrap();
        let first = queue.receive(1, Duration::ZERO).await.unwrap();
        assert_eq!(bodies(&first), ["g1"]);
        queue
            .send(OutgoingMessage::new("h1").group("h"))
            .await
            .unwrap();

        let other = queue.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(bodies(&other), ["h1"]);
        assert!(queue.receive(10, Duration::ZERO).await.unwrap().is_empty());

        queue.delete(&first[0].receipt).await.unwrap();
        let next = queue.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(bodies(&next), ["g2"]);
    }

    #[tokio::test]
    async fn returning_one_message_early_keeps_its_group_blocked_by_the_other() {
        let queue = fifo(Duration::from_secs(30));
        queue
            .send(OutgoingMessage::new("a").group("g"))
            .await
            .unwrap();
        queue
            .send(OutgoingMessage::new("b").group("g"))
            .await
            .unwrap();
        let both = queue.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(bodies(&both), ["a", "b"]);

        queue
            .change_visibility(&both[0].receipt, Duration::ZERO)
            .await
            .unwrap();
        assert!(queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
        queue.delete(&both[1].receipt).await.unwrap();
        let again = queue.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(bodies(&again), ["a"]);
        assert_eq!(again[0].receive_count, 2);
    }

    #[tokio::test]
    async fn deduplication_memory_is_bounded_oldest_first() {
        let queue = fifo(Duration::from_secs(30));
        let first = queue
            .send(OutgoingMessage::new("m").group("g").dedup("id-0"))
            .await
            .unwrap();
        let batch = |from: usize| {
            (from..from + MAX_BATCH)
                .map(|n| {
                    OutgoingMessage::new("m")
                        .group("g")
                        .dedup(format!("id-{n}"))
                })
                .collect::<Vec<_>>()
        };
        let mut last_sent = Vec::new();
        for from in (1..DEDUP_CAPACITY).step_by(MAX_BATCH) {
            last_sent = queue.send_batch(batch(from)).await.unwrap();
        }
        let last_id = format!("id-{}", DEDUP_CAPACITY);
        let again = queue
            .send(OutgoingMessage::new("m").group("g").dedup(last_id))
            .await
            .unwrap();
        let original = last_sent.pop().unwrap().unwrap();
        assert_eq!(again, original, "recent ids are still deduplicated");
        assert!(queue.state.lock().unwrap().dedup.len() <= DEDUP_CAPACITY);
        let resent = queue
            .send(OutgoingMessage::new("m").group("g").dedup("id-0"))
            .await
            .unwrap();
        assert_ne!(resent, first, "the oldest id was forgotten to bound memory");
    }

    #[tokio::test]
    async fn duplicate_returns_the_original_id_even_after_delete() {
        let queue = fifo(Duration::from_secs(30));
        let original = queue
            .send(OutgoingMessage::new("first").group("g").dedup("d"))
            .await
            .unwrap();
        let duplicate = queue
            .send(OutgoingMessage::new("second").group("g").dedup("d"))
            .await
            .unwrap();
        assert_eq!(duplicate, original);

        let received = queue.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(bodies(&received), ["first"]);
        queue.delete(&received[0].receipt).await.unwrap();
        let by_body = queue
            .send(OutgoingMessage::new("first").group("g"))
            .await
            .unwrap();
        let again = queue
            .send(OutgoingMessage::new("first").group("other"))
            .await
            .unwrap();
        assert_eq!(
            by_body, again,
            "content-based deduplication ignores the group"
        );
        let dedup_after_delete = queue
            .send(OutgoingMessage::new("third").group("g").dedup("d"))
            .await
            .unwrap();
        assert_eq!(dedup_after_delete, original);
        assert_eq!(
            bodies(&queue.receive(10, Duration::ZERO).await.unwrap()),
            ["first"]
        );
    }

    #[tokio::test]
    async fn receipts_must_be_current_and_from_this_queue() {
        let queue = EmbeddedQueue::new(EmbeddedOptions::new("unit").visibility_timeout(SHORT));
        let other = EmbeddedQueue::new(EmbeddedOptions::new("other"));
        queue.send(OutgoingMessage::new("m")).await.unwrap();
        let stale = queue.receive(1, Duration::ZERO).await.unwrap().remove(0);
        let current = queue
            .receive(1, Duration::from_secs(5))
            .await
            .unwrap()
            .remove(0);
        assert_eq!(current.receive_count, 2);

        let refused = queue
            .change_visibility(&stale.receipt, Duration::ZERO)
            .await;
        assert!(
            matches!(refused, Err(QueueError::Rejected { .. })),
            "{refused:?}"
        );
        queue.delete(&stale.receipt).await.unwrap();
        for wrong in [ReceiptHandle("garbage".into()), current.receipt.clone()] {
            let refused = other.delete(&wrong).await;
            assert!(
                matches!(refused, Err(QueueError::Rejected { .. })),
                "{refused:?}"
            );
        }

        queue
            .change_visibility(&current.receipt, Duration::ZERO)
            .await
            .unwrap();
        let third = queue.receive(1, Duration::ZERO).await.unwrap().remove(0);
        assert_eq!(
            (third.message_id, third.receive_count),
            (stale.message_id, 3)
        );
        queue.delete(&third.receipt).await.unwrap();
        queue.delete(&third.receipt).await.unwrap();
        assert!(
            queue
                .receive(1, Duration::from_millis(300))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn change_visibility_of_an_expired_message_is_refused() {
        let queue = EmbeddedQueue::new(EmbeddedOptions::new("unit").visibility_timeout(SHORT));
        queue.send(OutgoingMessage::new("m")).await.unwrap();
        let received = queue.receive(1, Duration::ZERO).await.unwrap().remove(0);
        tokio::time::sleep(SHORT * 2).await;
        let refused = queue
            .change_visibility(&received.receipt, Duration::from_secs(10))
            .await;
        assert!(
            matches!(refused, Err(QueueError::Rejected { .. })),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn extending_visibility_delays_redelivery() {
        let queue = EmbeddedQueue::new(EmbeddedOptions::new("unit").visibility_timeout(SHORT));
        queue.send(OutgoingMessage::new("m")).await.unwrap();
        let received = queue.receive(1, Duration::ZERO).await.unwrap().remove(0);
        queue
            .change_visibility(&received.receipt, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(queue.receive(1, SHORT * 3).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn long_poll_wakes_on_send_from_another_runtime() {
        let queue = EmbeddedQueue::new(EmbeddedOptions::new("unit"));
        let sender = Arc::clone(&queue);
        let thread = std::thread::spawn(move || {
            std::thread::sleep(SHORT);
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(sender.send(OutgoingMessage::new("late")))
        });
        let started = std::time::Instant::now();
        let received = queue.receive(10, Duration::from_secs(15)).await.unwrap();
        assert_eq!(bodies(&received), ["late"]);
        assert!(started.elapsed() < Duration::from_secs(10));
        thread.join().unwrap().unwrap();
    }

    #[tokio::test]
    async fn redriven_message_keeps_id_body_group_and_attributes() {
        let dead_letter = fifo(Duration::from_secs(30));
        let queue = EmbeddedQueue::new(
            EmbeddedOptions::new("unit.fifo")
                .fifo(true)
                .visibility_timeout(SHORT)
                .max_receives(Some(1))
                .dead_letter(Arc::clone(&dead_letter)),
        );
        let id = queue
            .send(OutgoingMessage::new("m").group("g").attribute("k", "v"))
            .await
            .unwrap();
        queue
            .send(OutgoingMessage::new("n").group("g"))
            .await
            .unwrap();
        assert_eq!(
            bodies(&queue.receive(1, Duration::ZERO).await.unwrap()),
            ["m"]
        );

        let next = queue.receive(10, Duration::from_secs(5)).await.unwrap();
        assert_eq!(
            bodies(&next),
            ["n"],
            "the exhausted message left, unblocking its group"
        );
        let moved = dead_letter.receive(10, Duration::ZERO).await.unwrap();
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].message_id, id);
        assert_eq!(moved[0].group_id.as_deref(), Some("g"));
        assert_eq!(moved[0].attributes.get("k").map(String::as_str), Some("v"));
    }

    #[tokio::test]
    async fn messages_sqs_would_refuse_are_rejected() {
        let queue = EmbeddedQueue::new(EmbeddedOptions::new("unit"));
        let too_many = (0..=MAX_ATTRIBUTES).fold(OutgoingMessage::new("m"), |m, i| {
            m.attribute(format!("a{i}"), "v")
        });
        for message in [
            OutgoingMessage::new(""),
            OutgoingMessage::new("nul \u{0}"),
            OutgoingMessage::new("m").attribute("empty", ""),
            OutgoingMessage::new("x".repeat(MAX_MESSAGE_BYTES + 1)),
            too_many,
        ] {
            let refused = queue.send(message).await;
            assert!(
                matches!(refused, Err(QueueError::Rejected { .. })),
                "{refused:?}"
            );
        }
        for count in [0, MAX_BATCH + 1] {
            let batch = vec![OutgoingMessage::new("m"); count];
            assert!(matches!(
                queue.send_batch(batch).await,
                Err(QueueError::Rejected { .. })
            ));
        }
        assert!(queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
    }
}
