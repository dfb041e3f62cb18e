//! An in-process queue with the SQS semantics the services rely on, for running without AWS and
//! for tests.
//!
//! [`state`] holds the queue's state machine; this module wraps it in the [`Queue`] trait: the
//! lock and clock, long polls, receipts that name their queue, and the hand-over of exhausted
//! messages to the dead-letter queue.

mod state;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

pub use self::state::Capacity;
use self::state::{Refused, State, Stored};
use crate::{
    MAX_BATCH, MAX_WAIT, OutgoingMessage, Queue, QueueError, ReceiptHandle, ReceivedMessage,
};

/// SQS's longest visibility timeout.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);

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
    /// The most it holds before sends are refused as unavailable.
    pub capacity: Capacity,
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
            capacity: Capacity::default(),
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

    /// Sets the capacity.
    pub fn capacity(mut self, capacity: Capacity) -> Self {
        self.capacity = capacity;
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

impl EmbeddedQueue {
    /// Creates a queue.
    pub fn new(options: EmbeddedOptions) -> Arc<Self> {
        // Like SQS's `maxReceiveCount`, the limit only applies with somewhere to move messages to.
        let redrive_after = options.dead_letter.as_ref().and(options.max_receives);
        Arc::new(Self {
            tag: NEXT_QUEUE_TAG.fetch_add(1, Ordering::Relaxed),
            state: Mutex::new(State::new(options.fifo, redrive_after, options.capacity)),
            options,
            arrivals: Notify::new(),
        })
    }

    /// A queue and its dead-letter queue `{name}-dlq`, with default settings otherwise.
    pub fn with_dead_letter(name: &str, fifo: bool) -> (Arc<Self>, Arc<Self>) {
        Self::with_dead_letter_and_capacity(name, fifo, Capacity::default())
    }

    /// A queue of `capacity` and its dead-letter queue `{name}-dlq` (of the same capacity),
    /// with default settings otherwise.
    pub fn with_dead_letter_and_capacity(
        name: &str,
        fifo: bool,
        capacity: Capacity,
    ) -> (Arc<Self>, Arc<Self>) {
        let dead_letter = Self::new(
            EmbeddedOptions::new(format!("{name}-dlq"))
                .fifo(fifo)
                .capacity(capacity),
        );
        let main = Self::new(
            EmbeddedOptions::new(name)
                .fifo(fifo)
                .dead_letter(Arc::clone(&dead_letter))
                .capacity(capacity),
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

    /// A full queue refuses as an unreachable one would: the sender should try again later.
    fn full(&self, operation: &'static str, message: String) -> QueueError {
        QueueError::Unavailable {
            queue: self.options.name.clone(),
            operation,
            message,
        }
    }

    /// Runs `f` on the state after returning expired messages to the queue, then hands
    /// messages that ran out of receives to the dead-letter queue (outside the lock, so two
    /// queues that dead-letter into each other cannot deadlock).
    fn with_state<R>(&self, f: impl FnOnce(&mut State, Instant) -> R) -> R {
        let now = Instant::now();
        let (redriven, result) = {
            let mut state = self.state();
            let redriven = state.expire(now);
            (redriven, f(&mut state, now))
        };
        self.redrive(redriven);
        result
    }

    /// Moves messages that ran out of receives to the dead-letter queue. Call without the lock.
    fn redrive(&self, messages: Vec<Stored>) {
        if let Some(dead_letter) = &self.options.dead_letter
            && !messages.is_empty()
        {
            dead_letter.accept_redriven(messages);
        }
    }

    /// Stores messages moved here from another queue.
    fn accept_redriven(&self, messages: Vec<Stored>) {
        self.with_state(|state, _| state.accept_redriven(messages));
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
        state
            .store(message, now)
            .map(|id| id.to_string())
            .map_err(|refused| match refused {
                Refused::Invalid(reason) => self.rejected(operation, reason),
                Refused::Full(reason) => self.full(operation, reason),
            })
    }

    /// Takes up to `max` deliverable messages; also says when the next in-flight message
    /// becomes visible again, so a long poll knows when to look again.
    fn try_receive(&self, max: usize) -> (Vec<ReceivedMessage>, Option<Instant>) {
        let visibility = self.options.visibility_timeout;
        self.with_state(|state, now| {
            let received = state.receive(max, now + visibility, self.tag);
            (received, state.next_deadline())
        })
    }

    /// Parses a receipt issued by this queue into (sequence number, receipt number).
    fn parse_receipt(
        &self,
        operation: &'static str,
        receipt: &ReceiptHandle,
    ) -> Result<(u64, u64), QueueError> {
        state::parse_receipt(self.tag, receipt).ok_or_else(|| {
            self.rejected(operation, "the receipt handle is not valid for this queue")
        })
    }
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
        let unblocked = self.with_state(|state, _| state.delete(seq, number));
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
            state
                .change_visibility(seq, number, timeout, now)
                .map_err(|state::NotInFlight| {
                    self.rejected(OPERATION, "the message is not in flight under this receipt")
                })
        })?;
        self.redrive(redriven.into_iter().collect());
        // Long polls sleep until the earliest deadline; let them recompute it.
        self.arrivals.notify_waiters();
        Ok(())
    }

    async fn visibility_timeout(&self) -> Result<Duration, QueueError> {
        Ok(self.options.visibility_timeout)
    }

    async fn check(&self) -> Result<(), QueueError> {
        self.with_state(|state, _| state.fullness(0))
            .map_err(|reason| self.full("GetQueueAttributes", reason))
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
    async fn a_full_queue_refuses_as_unavailable_until_it_has_room() {
        let capacity = Capacity {
            messages: 2,
            bytes: 1_000,
        };
        let queue = EmbeddedQueue::new(
            EmbeddedOptions::new("unit.fifo")
                .fifo(true)
                .capacity(capacity),
        );
        let job = |body: &str| OutgoingMessage::new(body).group(body).dedup(body);
        queue.send(job("a")).await.unwrap();
        queue.send(job("b")).await.unwrap();
        assert!(queue.check().await.is_err(), "two messages fill it");
        let refused = queue.send(job("c")).await;
        match refused {
            Err(QueueError::Unavailable { message, .. }) => {
                assert!(message.contains("EMBEDDED_QUEUE_MAX_MESSAGES"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // A duplicate of a stored message is still answered with its id.
        queue.send(job("a")).await.unwrap();

        // Room comes back as messages are deleted; in-flight ones still count.
        let taken = queue.receive(1, Duration::ZERO).await.unwrap().remove(0);
        assert!(
            queue.send(job("c")).await.is_err(),
            "in flight still counts"
        );
        queue.delete(&taken.receipt).await.unwrap();
        assert!(queue.check().await.is_ok());
        queue.send(job("c")).await.unwrap();

        // The byte limit, counted over bodies and attributes.
        let small = EmbeddedQueue::new(EmbeddedOptions::new("bytes").capacity(Capacity {
            messages: 100,
            bytes: 10,
        }));
        small.send(OutgoingMessage::new("123456")).await.unwrap();
        match small.send(OutgoingMessage::new("12345")).await {
            Err(QueueError::Unavailable { message, .. }) => {
                assert!(message.contains("EMBEDDED_QUEUE_MAX_BYTES"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        small.send(OutgoingMessage::new("1234")).await.unwrap();
        assert!(small.check().await.is_err(), "exactly at the byte limit");
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
        // What SQS refuses in one message is the state's to check: this is the error it becomes.
        let refused = queue.send(OutgoingMessage::new("")).await;
        assert!(
            matches!(refused, Err(QueueError::Rejected { .. })),
            "{refused:?}"
        );
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
