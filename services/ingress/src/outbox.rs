//! Where accepted webhooks go: the export and canvas queues, each behind a batching sender,
//! with a health flag per queue for the readiness probe.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bw_contracts::{CanvasJob, ExportJob, Job};
use bw_queue::{BatchOptions, Batcher, OutgoingMessage, Queue, QueueError};

use crate::queues::Queues;

/// Whether a queue worked the last time we used or checked it.
#[derive(Debug)]
struct Health {
    ok: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Health {
    fn record<T>(&self, result: &Result<T, QueueError>) {
        let ok = result.is_ok();
        if self.ok.swap(ok, Ordering::Relaxed) != ok || !ok {
            *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
                result.as_ref().err().map(ToString::to_string);
        }
    }
}

#[derive(Debug)]
struct Lane {
    queue: Arc<dyn Queue>,
    batcher: Option<Batcher>,
    health: Health,
}

impl Lane {
    fn new(queue: Arc<dyn Queue>, batch: Option<BatchOptions>) -> Self {
        Self {
            batcher: batch.map(|options| Batcher::spawn(queue.clone(), options)),
            queue,
            health: Health {
                ok: AtomicBool::new(false),
                last_error: Mutex::new(Some("not checked yet".into())),
            },
        }
    }

    async fn send<J: Job>(&self, job: J) -> Result<String, QueueError> {
        let message = OutgoingMessage::job(job, bw_telemetry::current_traceparent());
        let result = match &self.batcher {
            Some(batcher) => batcher.send(message).await,
            None => self.queue.send(message).await,
        };
        self.health.record(&result);
        result
    }
}

/// The ingress's queue senders.
#[derive(Debug)]
pub struct Outbox {
    export: Lane,
    canvas: Lane,
    backend: &'static str,
}

impl Outbox {
    /// Starts the batching senders on the current runtime.
    pub fn new(queues: Queues, linger: Duration) -> Self {
        let batch = queues.batched.then_some(BatchOptions {
            linger,
            ..BatchOptions::default()
        });
        Self {
            export: Lane::new(queues.export, batch),
            canvas: Lane::new(queues.canvas, batch),
            backend: queues.backend,
        }
    }

    /// Queues an export; resolves once the queue has stored it.
    pub async fn export(&self, job: ExportJob) -> Result<String, QueueError> {
        self.export.send(job).await
    }

    /// Queues a canvas job; resolves once the queue has stored it.
    pub async fn canvas(&self, job: CanvasJob) -> Result<String, QueueError> {
        self.canvas.send(job).await
    }

    /// `embedded` or `sqs`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// `Ok` when both queues worked at their last use or check; else the first problem.
    pub fn health(&self) -> Result<(), String> {
        for lane in [&self.export, &self.canvas] {
            if !lane.health.ok.load(Ordering::Relaxed) {
                let error = lane
                    .health
                    .last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                // Queue errors name their queue already; other notes get its name.
                let error = error.unwrap_or_else(|| "unavailable".into());
                let name = lane.queue.name();
                return Err(if error.starts_with(name) {
                    error
                } else {
                    format!("{name}: {error}")
                });
            }
        }
        Ok(())
    }

    /// Checks both queues now (`GetQueueAttributes` on SQS) and records the outcome.
    pub async fn check(&self) {
        for lane in [&self.export, &self.canvas] {
            let result = lane.queue.check().await;
            if let Err(e) = &result {
                tracing::warn!(queue = lane.queue.name(), error = %e, "queue check failed");
            }
            lane.health.record(&result);
        }
    }
}
