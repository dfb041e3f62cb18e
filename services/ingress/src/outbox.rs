//! Where accepted webhooks go: the export and canvas queues, with a health flag per queue for
//! the readiness probe.
//!
//! On SQS each actix-web worker sends through [`Senders`] of its own: a batching task per queue
//! on the worker's runtime, over a client with its own connections. A webhook is then verified,
//! queued and answered on one thread; with one sender shared by all workers, every webhook
//! woke another thread and back, which cost 40–60 µs of CPU per webhook (docs/benchmarks.md).

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

/// One queue and what every worker's sends to it taught us.
#[derive(Debug)]
struct Lane {
    queue: Arc<dyn Queue>,
    health: Health,
}

impl Lane {
    fn new(queue: Arc<dyn Queue>) -> Arc<Self> {
        Arc::new(Self {
            queue,
            health: Health {
                ok: AtomicBool::new(false),
                last_error: Mutex::new(Some("not checked yet".into())),
            },
        })
    }
}

/// The ingress's queues, shared by every worker.
#[derive(Debug)]
pub struct Outbox {
    export: Arc<Lane>,
    canvas: Arc<Lane>,
    batch: Option<BatchOptions>,
    backend: &'static str,
}

impl Outbox {
    /// The queues; sends batch (with `linger`) when the queues are remote.
    pub fn new(queues: Queues, linger: Duration) -> Self {
        Self {
            export: Lane::new(queues.export),
            canvas: Lane::new(queues.canvas),
            batch: queues.batched.then_some(BatchOptions {
                linger,
                ..BatchOptions::default()
            }),
            backend: queues.backend,
        }
    }

    /// Senders for the calling thread, their batching tasks spawned on its tokio runtime. Call
    /// it once per actix-web worker, from the app factory.
    ///
    /// # Panics
    ///
    /// With batching on, outside a tokio runtime.
    pub fn senders(&self) -> Senders {
        let sender = |lane: &Arc<Lane>| Sender {
            batcher: self.batch.map(|options| {
                let queue = lane
                    .queue
                    .with_own_connections()
                    .unwrap_or_else(|| Arc::clone(&lane.queue));
                Batcher::spawn(queue, options)
            }),
            lane: Arc::clone(lane),
        };
        Senders {
            export: sender(&self.export),
            canvas: sender(&self.canvas),
        }
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

/// One worker's way into one queue.
#[derive(Debug)]
struct Sender {
    lane: Arc<Lane>,
    batcher: Option<Batcher>,
}

impl Sender {
    async fn send<J: Job>(&self, job: J) -> Result<String, QueueError> {
        let message = OutgoingMessage::job(job, bw_telemetry::current_traceparent());
        let result = match &self.batcher {
            Some(batcher) => batcher.send(message).await,
            None => self.lane.queue.send(message).await,
        };
        self.lane.health.record(&result);
        result
    }
}

/// One worker's senders (see [`Outbox::senders`]).
#[derive(Debug)]
pub struct Senders {
    export: Sender,
    canvas: Sender,
}

impl Senders {
    /// Queues an export; resolves once the queue has stored it.
    pub async fn export(&self, job: ExportJob) -> Result<String, QueueError> {
        self.export.send(job).await
    }

    /// Queues a canvas job; resolves once the queue has stored it.
    pub async fn canvas(&self, job: CanvasJob) -> Result<String, QueueError> {
        self.canvas.send(job).await
    }
}
