//! Work queues: one [`Queue`] trait with an Amazon SQS backend and an embedded in-process backend
//! that keeps the same semantics (visibility timeout, redelivery, FIFO groups and deduplication,
//! max receives → dead-letter queue), plus a [`Batcher`] that coalesces concurrent sends.

mod batch;
mod embedded;
mod sqs;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use batch::{BatchOptions, Batcher};
pub use embedded::{EmbeddedOptions, EmbeddedQueue};
pub use sqs::SqsQueue;

/// SQS's ceiling for one `ReceiveMessage` and one `SendMessageBatch`.
pub const MAX_BATCH: usize = 10;

/// SQS's ceiling for a long poll.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

/// A message to send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The body, usually a serialized job.
    pub body: String,
    /// FIFO message group; ignored by standard queues.
    pub group_id: Option<String>,
    /// FIFO deduplication id; ignored by standard queues.
    pub dedup_id: Option<String>,
    /// String message attributes (for example a dead-letter reason).
    pub attributes: BTreeMap<String, String>,
}

impl OutgoingMessage {
    /// A message with only a body.
    pub fn new(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    /// Sets the FIFO group id.
    pub fn group(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    /// Sets the FIFO deduplication id.
    pub fn dedup(mut self, dedup_id: impl Into<String>) -> Self {
        self.dedup_id = Some(dedup_id.into());
        self
    }

    /// Adds a string attribute.
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }
}

/// Opaque handle that names one receipt of a message; needed to delete it or change its visibility.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReceiptHandle(pub String);

/// A message taken from a queue. It stays invisible to other consumers until its visibility
/// timeout runs out, it is deleted, or its visibility is changed.
#[derive(Clone, Debug)]
pub struct ReceivedMessage {
    /// The queue's id for the message (stable across redeliveries).
    pub message_id: String,
    /// The handle of this receipt.
    pub receipt: ReceiptHandle,
    /// The body as sent.
    pub body: String,
    /// How many times the message has been received, this receipt included.
    pub receive_count: u32,
    /// The FIFO group, if any.
    pub group_id: Option<String>,
    /// String message attributes.
    pub attributes: BTreeMap<String, String>,
}

/// Errors from a queue backend. `Clone` so that one failed batch request can be reported to
/// every caller whose message was in it.
#[derive(Clone, Debug, thiserror::Error)]
pub enum QueueError {
    /// The request was refused as invalid (missing group id on a FIFO queue, bad receipt, …);
    /// retrying the same request will not help.
    #[error("{queue}: {operation} rejected: {message}")]
    Rejected {
        /// Queue name.
        queue: String,
        /// The operation, e.g. `SendMessage`.
        operation: &'static str,
        /// What the backend said.
        message: String,
    },
    /// The backend could not be reached or failed; the request may succeed later.
    #[error("{queue}: {operation} failed: {message}")]
    Unavailable {
        /// Queue name.
        queue: String,
        /// The operation, e.g. `SendMessage`.
        operation: &'static str,
        /// What went wrong.
        message: String,
    },
}

/// A work queue. Implementations are cheap to share behind an `Arc`.
#[async_trait]
pub trait Queue: Send + Sync + fmt::Debug {
    /// Short name for logs (the queue name, never a full URL).
    fn name(&self) -> &str;

    /// Whether the queue is FIFO (group ordering and deduplication apply).
    fn is_fifo(&self) -> bool;

    /// Sends one message and returns the queue's message id.
    async fn send(&self, message: OutgoingMessage) -> Result<String, QueueError>;

    /// Sends up to [`MAX_BATCH`] messages in one request. The outer error means nothing was
    /// sent; the inner results say, entry by entry, what was stored.
    async fn send_batch(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<Result<String, QueueError>>, QueueError>;

    /// Long-polls for up to `max` (≤ [`MAX_BATCH`]) messages, waiting at most `wait`
    /// (≤ [`MAX_WAIT`]) when none is ready.
    async fn receive(&self, max: usize, wait: Duration)
    -> Result<Vec<ReceivedMessage>, QueueError>;

    /// Deletes a received message.
    async fn delete(&self, receipt: &ReceiptHandle) -> Result<(), QueueError>;

    /// Sets how long from now the message stays invisible; zero makes it visible at once.
    async fn change_visibility(
        &self,
        receipt: &ReceiptHandle,
        timeout: Duration,
    ) -> Result<(), QueueError>;

    /// The queue's default visibility timeout.
    async fn visibility_timeout(&self) -> Result<Duration, QueueError>;

    /// Checks that the queue exists and is usable (for readiness probes).
    async fn check(&self) -> Result<(), QueueError>;

    /// The queue's dead-letter queue, if it has one (on SQS, the target of its
    /// `RedrivePolicy`): where a consumer moves a message that can never succeed.
    async fn dead_letter_queue(&self) -> Result<Option<Arc<dyn Queue>>, QueueError>;
}
