//! Work queues: one [`Queue`] trait with an Amazon SQS backend and an embedded in-process backend
//! that keeps the same semantics (visibility timeout, redelivery, FIFO groups and deduplication,
//! max receives → dead-letter queue), a [`Batcher`] that coalesces concurrent sends, and the
//! one way services open their queues ([`QueueBackend`], [`QueueOpener`]).

mod backend;
mod batch;
mod embedded;
mod sqs;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use sha2::{Digest as _, Sha256};

pub use backend::{QueueBackend, QueueOpener};
pub use batch::{BatchOptions, Batcher};
pub use bw_contracts::{QueueKind, QueueName};
pub use embedded::{Capacity, EmbeddedOptions, EmbeddedQueue};
pub use sqs::SqsQueue;

/// SQS's ceiling for one `ReceiveMessage` and one `SendMessageBatch`.
pub const MAX_BATCH: usize = 10;

/// SQS's ceiling for a long poll.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

/// The longest deduplication id SQS accepts.
pub const MAX_DEDUP_ID_LEN: usize = 128;

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

    /// A job in its envelope, with the job's FIFO group and deduplication id (standard queues
    /// ignore both, so they are always set).
    pub fn job<J: bw_contracts::Job>(job: J, traceparent: Option<String>) -> Self {
        let (group, dedup) = (job.group_id(), job.dedup_id());
        Self::new(bw_contracts::JobEnvelope::new(job, traceparent).to_body())
            .group(group)
            .dedup(dedup)
    }

    /// Sets the FIFO group id.
    pub fn group(mut self, group_id: impl Into<String>) -> Self {
        self.group_id = Some(group_id.into());
        self
    }

    /// Sets the FIFO deduplication id. An id SQS would refuse (over 128 characters, or with
    /// characters outside printable ASCII) is replaced by its SHA-256, so equal ids stay equal.
    pub fn dedup(mut self, dedup_id: impl Into<String>) -> Self {
        let dedup_id = dedup_id.into();
        let valid = dedup_id.len() <= MAX_DEDUP_ID_LEN
            && !dedup_id.is_empty()
            && dedup_id.bytes().all(|b| b.is_ascii_graphic());
        self.dedup_id = Some(if valid {
            dedup_id
        } else {
            let digest = Sha256::digest(dedup_id.as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("sha256:{hex}")
        });
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
    /// When the queue accepted the message (its first send, not this receipt), for queue lag.
    pub sent_at: Option<SystemTime>,
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

    /// The same queue with connections of its own, for a thread that sends on its own runtime:
    /// network connections are driven by the runtime that opened them, so a shared pool would
    /// wake another thread for every request. `None` when the backend has no connections.
    fn with_own_connections(&self) -> Option<Arc<dyn Queue>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_ids_sqs_would_refuse_are_hashed_consistently() {
        let short = OutgoingMessage::new("b").dedup("export:msg_1");
        assert_eq!(short.dedup_id.as_deref(), Some("export:msg_1"));
        let long_id = "x".repeat(MAX_DEDUP_ID_LEN + 1);
        let long = OutgoingMessage::new("b").dedup(long_id.clone());
        let hashed = long.dedup_id.unwrap();
        assert!(
            hashed.starts_with("sha256:") && hashed.len() == 71,
            "{hashed}"
        );
        assert_eq!(
            OutgoingMessage::new("b").dedup(long_id).dedup_id.unwrap(),
            hashed
        );
        let spaced = OutgoingMessage::new("b").dedup("a b").dedup_id.unwrap();
        assert!(spaced.starts_with("sha256:"));
        let exact = "y".repeat(MAX_DEDUP_ID_LEN);
        assert_eq!(
            OutgoingMessage::new("b").dedup(exact.clone()).dedup_id,
            Some(exact)
        );
    }
}
