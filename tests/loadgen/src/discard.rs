//! A queue that accepts every message and keeps none, for measuring the ingress's own memory.
//!
//! The embedded queue keeps each FIFO deduplication id for five minutes, as SQS does, so under
//! a load of thousands of webhooks a second its memory grows with every accepted job, drained
//! or not, and hides the ingress's own footprint. With this queue the process holds only
//! what the ingress holds; in production that other memory lives in SQS.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bw_queue::{MAX_BATCH, OutgoingMessage, Queue, QueueError, ReceiptHandle, ReceivedMessage};

/// Accepts and forgets messages; counts them.
#[derive(Debug)]
pub struct DiscardQueue {
    name: String,
    accepted: AtomicU64,
}

impl DiscardQueue {
    /// A FIFO-flavoured queue called `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            accepted: AtomicU64::new(0),
        }
    }

    /// How many messages were sent to it.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// A message id as long as SQS's (36 characters), so responses keep their real size.
    fn next_id(&self) -> String {
        let n = self.accepted.fetch_add(1, Ordering::Relaxed);
        format!("00000000-0000-4000-8000-{n:012x}")
    }
}

#[async_trait]
impl Queue for DiscardQueue {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_fifo(&self) -> bool {
        true
    }

    async fn send(&self, _message: OutgoingMessage) -> Result<String, QueueError> {
        Ok(self.next_id())
    }

    async fn send_batch(
        &self,
        messages: Vec<OutgoingMessage>,
    ) -> Result<Vec<Result<String, QueueError>>, QueueError> {
        if messages.is_empty() || messages.len() > MAX_BATCH {
            return Err(QueueError::Rejected {
                queue: self.name.clone(),
                operation: "SendMessageBatch",
                message: format!("{} entries", messages.len()),
            });
        }
        Ok(messages.iter().map(|_| Ok(self.next_id())).collect())
    }

    async fn receive(
        &self,
        _max: usize,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        tokio::time::sleep(wait).await;
        Ok(Vec::new())
    }

    async fn delete(&self, _receipt: &ReceiptHandle) -> Result<(), QueueError> {
        Ok(())
    }

    async fn change_visibility(
        &self,
        _receipt: &ReceiptHandle,
        _timeout: Duration,
    ) -> Result<(), QueueError> {
        Ok(())
    }

    async fn visibility_timeout(&self) -> Result<Duration, QueueError> {
        Ok(Duration::from_secs(30))
    }

    async fn check(&self) -> Result<(), QueueError> {
        Ok(())
    }

    async fn dead_letter_queue(&self) -> Result<Option<std::sync::Arc<dyn Queue>>, QueueError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepts_batches_and_counts_them() {
        let queue = DiscardQueue::new(bw_queue::QueueName::EXPORT.name);
        let batch = vec![OutgoingMessage::new("a"), OutgoingMessage::new("b")];
        let ids = queue.send_batch(batch).await.unwrap();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0].as_ref().unwrap().len(), 36);
        assert_ne!(ids[0].as_ref().unwrap(), ids[1].as_ref().unwrap());
        assert_eq!(queue.accepted(), 2);
        assert!(queue.send_batch(Vec::new()).await.is_err());
    }
}
