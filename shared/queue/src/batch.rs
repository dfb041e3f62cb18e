//! Coalesces concurrent sends into `send_batch` calls.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::{MAX_BATCH, OutgoingMessage, Queue, QueueError};

/// How a [`Batcher`] groups sends.
#[derive(Clone, Copy, Debug)]
pub struct BatchOptions {
    /// How long a batch that is not full waits for more messages, and only while another
    /// batch is in flight: a lone send goes out at once, while under load batches fill up
    /// instead of going out nearly empty (fewer requests, and more throughput per request).
    /// Zero never waits.
    pub linger: Duration,
    /// How many batch requests may be in flight at once (at least 1).
    pub max_in_flight: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            linger: Duration::ZERO,
            max_in_flight: 16,
        }
    }
}

/// One caller's message and where its outcome goes.
struct Request {
    message: OutgoingMessage,
    reply: oneshot::Sender<Result<String, QueueError>>,
}

/// Coalesces concurrent [`send`](Batcher::send)s into [`Queue::send_batch`] calls made by a task
/// on the runtime that spawned it, so callers on other runtimes (actix-web workers, say) never
/// drive the backend's connections themselves.
///
/// Clones share the task. Once every clone is dropped the task sends what is still pending and
/// exits. Batches run concurrently, so only a caller that awaits each send before the next
/// keeps its own messages in order.
#[derive(Clone, Debug)]
pub struct Batcher {
    requests: mpsc::UnboundedSender<Request>,
    queue: Arc<str>,
}

impl Batcher {
    /// Starts the batching task on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn spawn(queue: Arc<dyn Queue>, options: BatchOptions) -> Self {
        // Unbounded: each caller waits for its reply, so callers themselves bound the backlog.
        let (requests, pending) = mpsc::unbounded_channel();
        let name = Arc::from(queue.name());
        tokio::spawn(run(queue, options, pending));
        Self {
            requests,
            queue: name,
        }
    }

    /// Sends one message and returns its id once the backend has stored it, or the error for
    /// this message (a failed batch request fails every message in it).
    pub async fn send(&self, message: OutgoingMessage) -> Result<String, QueueError> {
        let (reply, outcome) = oneshot::channel();
        self.requests
            .send(Request { message, reply })
            .map_err(|_| self.gone())?;
        outcome.await.unwrap_or_else(|_| Err(self.gone()))
    }

    fn gone(&self) -> QueueError {
        QueueError::Unavailable {
            queue: self.queue.to_string(),
            operation: "SendMessageBatch",
            message: "no answer from the batching task (stopped, or its runtime shut down)".into(),
        }
    }
}

async fn run(
    queue: Arc<dyn Queue>,
    options: BatchOptions,
    mut pending: mpsc::UnboundedReceiver<Request>,
) {
    let slots = Arc::new(Semaphore::new(options.max_in_flight.max(1)));
    // `acquire_owned` fails only on a closed semaphore, and this one is never closed.
    while let Ok(slot) = Arc::clone(&slots).acquire_owned().await {
        // Holding a slot before collecting lets requests that arrive while all slots are busy
        // fill the next batch.
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if pending.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let others_in_flight = slots.available_permits() + 1 < options.max_in_flight.max(1);
        if !options.linger.is_zero() && batch.len() < MAX_BATCH && others_in_flight {
            let linger = tokio::time::sleep(options.linger);
            tokio::pin!(linger);
            while batch.len() < MAX_BATCH {
                let room = MAX_BATCH - batch.len();
                tokio::select! {
                    received = pending.recv_many(&mut batch, room) => if received == 0 { break },
                    () = &mut linger => break,
                }
            }
        }
        let queue = Arc::clone(&queue);
        tokio::spawn(async move {
            flush(queue.as_ref(), batch).await;
            drop(slot);
        });
    }
}

/// Sends one batch and answers each caller. A caller that stopped waiting is skipped; one left
/// without an answer (a backend returning too few results) gets `Unavailable`.
async fn flush(queue: &dyn Queue, batch: Vec<Request>) {
    let (messages, replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|request| (request.message, request.reply))
        .unzip();
    match queue.send_batch(messages).await {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}
