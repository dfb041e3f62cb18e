//! The consumer loop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bw_contracts::{EntryId, Job, JobEnvelope};
use bw_metrics::{Counter, DURATION_BUCKETS, Family, Histogram};
use bw_queue::{
    MAX_BATCH, MAX_WAIT, OutgoingMessage, Queue, QueueError, ReceiptHandle, ReceivedMessage,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{Instrument as _, field};

/// The message attribute that carries why a job was dead-lettered.
pub const FAILURE_REASON_ATTRIBUTE: &str = "failure_reason";

/// How long jobs took, from receipt to outcome, by queue and outcome (`success`,
/// `transient_error`, `permanent_error`, ...: the `outcome` of the job's log line).
static JOB_DURATION: Histogram = Histogram::new(
    "bw_job_duration_seconds",
    "Time from receiving a job to its outcome, by queue and outcome.",
    &["queue", "outcome"],
    DURATION_BUCKETS,
);

/// How long jobs waited in their queue: from the send to each receipt, so a redelivery counts
/// its retry delay too.
static QUEUE_LAG: Histogram = Histogram::new(
    "bw_queue_lag_seconds",
    "Time from a job's send to its receipt (redeliveries included), by queue.",
    &["queue"],
    DURATION_BUCKETS,
);

/// Jobs this process moved to a dead-letter queue.
static DEAD_LETTERS: Counter = Counter::new(
    "bw_dead_letters_total",
    "Jobs moved to the dead-letter queue, by source queue.",
    &["queue"],
);

/// Sends `job` to `queue` with the current span's trace context, so the job that follows
/// continues this job's trace.
///
/// # Errors
/// When the queue refuses the message.
pub async fn send_job<J: Job>(queue: &dyn Queue, job: J) -> Result<(), QueueError> {
    let message = OutgoingMessage::job(job, bw_telemetry::current_traceparent());
    queue.send(message).await.map(drop)
}

/// Why a job did not finish.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// May succeed later (a timeout, a 503, throttling): the message is redelivered.
    #[error("transient: {0}")]
    Transient(String),
    /// Can never succeed (a 4xx, a hostile archive, a missing entry): the message goes to the
    /// dead-letter queue with this reason, without useless redeliveries.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl Failure {
    /// The failure `error` caused: permanent when redelivery cannot help.
    pub fn of(error: &impl std::fmt::Display, permanent: bool) -> Self {
        if permanent {
            Self::Permanent(error.to_string())
        } else {
            Self::Transient(error.to_string())
        }
    }
}

/// Facts about the delivery a handler may use.
#[derive(Clone, Debug)]
pub struct JobContext {
    /// The queue's id for the message.
    pub message_id: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

/// A message a worker can run: decoded from a queue body.
///
/// Every [`Job`] is one, read from its [`JobEnvelope`]; a queue another system fills (such as
/// Quilt's package events) gets its own implementation.
pub trait Incoming: Sized + Send + Sync {
    /// Reads a message body: the job and the W3C trace context of its producer, if any.
    ///
    /// # Errors
    /// Why the body can never be run; the message goes to the dead-letter queue.
    fn decode(body: &str) -> Result<(Self, Option<String>), String>;

    /// The entry the job is about, for its log line.
    fn entry_id(&self) -> Option<&EntryId> {
        None
    }
}

impl<J: Job + Send + Sync> Incoming for J {
    fn decode(body: &str) -> Result<(Self, Option<String>), String> {
        let envelope = JobEnvelope::<J>::from_body(body).map_err(|e| e.to_string())?;
        Ok((envelope.job, envelope.traceparent))
    }

    fn entry_id(&self) -> Option<&EntryId> {
        Job::entry_id(self)
    }
}

/// What a worker does with each job.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// The job type it consumes.
    type Job: Incoming;

    /// Runs one job and says what it did, for the job's one log line (its `detail`). Must be
    /// idempotent: a job may be delivered more than once.
    async fn handle(&self, job: &Self::Job, context: &JobContext) -> Result<String, Failure>;

    /// Called once a job was moved to the dead-letter queue (`job` is `None` when the message
    /// could not be read as a job), e.g. to show the failure to the user.
    async fn dead_lettered(&self, job: Option<&Self::Job>, reason: &str);
}

/// Tuning of a [`Worker`].
#[derive(Clone, Copy, Debug)]
pub struct WorkerOptions {
    /// Jobs run at once.
    pub concurrency: usize,
    /// Longest long poll.
    pub wait: Duration,
    /// The visibility a running job's message is kept at; `None` reads the queue's own
    /// `VisibilityTimeout` at start-up. The heartbeat extends it every half of this.
    pub visibility: Option<Duration>,
    /// First delay before a transiently failed job is retried; doubles per receive, capped at
    /// the visibility timeout.
    pub retry_backoff: Duration,
    /// How long a stop waits for running jobs before releasing them to other consumers.
    pub shutdown_grace: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            wait: MAX_WAIT,
            visibility: None,
            retry_backoff: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(25),
        }
    }
}

/// Consumes one queue.
pub struct Worker {
    queue: Arc<dyn Queue>,
    options: WorkerOptions,
    health: WorkerHealth,
}

/// Whether a worker is consuming its queue, for the readiness probe. Clones share the state.
#[derive(Clone, Debug)]
pub struct WorkerHealth(Arc<Mutex<Result<(), String>>>);

impl WorkerHealth {
    fn new() -> Self {
        Self(Arc::new(Mutex::new(Err("not started".to_owned()))))
    }

    fn set(&self, state: Result<(), String>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }

    /// `Ok` while the last receive succeeded; otherwise why the worker cannot consume.
    pub fn check(&self) -> Result<(), String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// What the running jobs share.
struct Shared<H> {
    queue: Arc<dyn Queue>,
    dead_letter: Option<Arc<dyn Queue>>,
    handler: Arc<H>,
    visibility: Duration,
    retry_backoff: Duration,
    /// Received messages not yet finished, so a stop can release them.
    unfinished: Mutex<HashMap<String, ReceiptHandle>>,
}

impl Worker {
    /// A worker for `queue`.
    pub fn new(queue: Arc<dyn Queue>, options: WorkerOptions) -> Self {
        Self {
            queue,
            options,
            health: WorkerHealth::new(),
        }
    }

    /// The worker's consuming state, for readiness probes.
    pub fn health(&self) -> WorkerHealth {
        self.health.clone()
    }

    /// Consumes until `stop` turns true, then lets running jobs finish for the grace period and
    /// makes the rest visible again at once. Errors only when the queue cannot be set up.
    pub async fn run<H: Handler>(
        &self,
        handler: Arc<H>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), QueueError> {
        let setup = async {
            let visibility = match self.options.visibility {
                Some(visibility) => visibility,
                None => self.queue.visibility_timeout().await?,
            };
            Ok::<_, QueueError>((visibility, self.queue.dead_letter_queue().await?))
        };
        for family in [
            &JOB_DURATION as &'static dyn Family,
            &QUEUE_LAG,
            &DEAD_LETTERS,
        ] {
            family.register();
        }
        let (visibility, dead_letter) = setup.await.inspect_err(|e| {
            self.health.set(Err(format!(
                "cannot set up queue {}: {e}",
                self.queue.name()
            )));
        })?;
        if dead_letter.is_none() {
            tracing::warn!(
                queue = self.queue.name(),
                "queue has no dead-letter queue: permanent failures will be retried until they expire"
            );
        }
        let shared = Arc::new(Shared {
            queue: Arc::clone(&self.queue),
            dead_letter,
            handler,
            visibility,
            retry_backoff: self.options.retry_backoff,
            unfinished: Mutex::default(),
        });
        let slots = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let mut running = JoinSet::new();
        let mut poll_errors = 0u32;
        tracing::info!(
            queue = self.queue.name(),
            concurrency = self.options.concurrency,
            visibility_secs = visibility.as_secs(),
            "worker started"
        );
        self.health.set(Ok(()));
        while !*stop.borrow() {
            let permits = tokio::select! {
                permits = take_slots(&slots) => permits,
                _ = stop.changed() => break,
            };
            let received = tokio::select! {
                received = self.queue.receive(permits.len(), self.options.wait) => received,
                _ = stop.changed() => break,
            };
            while running.try_join_next().is_some() {}
            let messages = match received {
                Ok(messages) => {
                    poll_errors = 0;
                    self.health.set(Ok(()));
                    messages
                }
                Err(e) => {
                    poll_errors = poll_errors.saturating_add(1);
                    self.health.set(Err(format!(
                        "receiving from {} failed: {e}",
                        self.queue.name()
                    )));
                    let pause =
                        Duration::from_millis(500) * 2u32.saturating_pow(poll_errors.min(6));
                    tracing::warn!(queue = self.queue.name(), error = %e, retry_in_ms = pause.as_millis() as u64, "receive failed");
                    tokio::time::sleep(pause.min(Duration::from_secs(30))).await;
                    continue;
                }
            };
            shared.track(&messages);
            let mut permits = permits.into_iter();
            for chain in by_group(messages) {
                let chain_permits: Vec<_> = permits.by_ref().take(chain.len()).collect();
                running.spawn(run_chain(Arc::clone(&shared), chain, chain_permits));
            }
        }
        while running.try_join_next().is_some() {}
        tracing::info!(
            queue = self.queue.name(),
            running = running.len(),
            "worker stopping"
        );
        self.health.set(Err("stopping".to_owned()));
        let drained = tokio::time::timeout(self.options.shutdown_grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            running.abort_all();
        }
        shared.release_unfinished().await;
        Ok(())
    }
}

/// Waits for one free slot, then takes every other free one, up to a receive's maximum.
async fn take_slots(slots: &Arc<Semaphore>) -> Vec<OwnedSemaphorePermit> {
    let mut permits = Vec::with_capacity(MAX_BATCH);
    // The semaphore is never closed, so acquiring only waits.
    if let Ok(first) = Arc::clone(slots).acquire_owned().await {
        permits.push(first);
    }
    while permits.len() < MAX_BATCH {
        match Arc::clone(slots).try_acquire_owned() {
            Ok(permit) => permits.push(permit),
            Err(_) => break,
        }
    }
    permits
}

/// Splits a batch into chains that must run one after another: one chain per FIFO group in
/// receive order, and one chain per message without a group.
fn by_group(messages: Vec<ReceivedMessage>) -> Vec<Vec<ReceivedMessage>> {
    let mut chains: Vec<Vec<ReceivedMessage>> = Vec::new();
    let mut group_chain: HashMap<String, usize> = HashMap::new();
    for message in messages {
        match message.group_id.clone() {
            Some(group) => match group_chain.get(&group) {
                Some(&index) => chains[index].push(message),
                None => {
                    group_chain.insert(group, chains.len());
                    chains.push(vec![message]);
                }
            },
            None => chains.push(vec![message]),
        }
    }
    chains
}

async fn run_chain<H: Handler>(
    shared: Arc<Shared<H>>,
    chain: Vec<ReceivedMessage>,
    permits: Vec<OwnedSemaphorePermit>,
) {
    let mut permits = permits.into_iter();
    for message in chain {
        process(&shared, message).await;
        drop(permits.next());
    }
}

/// Runs one message to one outcome and logs it once.
async fn process<H: Handler>(shared: &Shared<H>, message: ReceivedMessage) {
    let started = Instant::now();
    let queue = shared.queue.name();
    if let Some(waited) = message
        .sent_at
        .and_then(|sent| SystemTime::now().duration_since(sent).ok())
    {
        QUEUE_LAG.observe(&[queue], waited.as_secs_f64());
    }
    let decoded = H::Job::decode(&message.body);
    let span = tracing::info_span!(
        "job",
        queue,
        message_id = %message.message_id,
        receive_count = message.receive_count,
        entry_id = field::Empty,
        outcome = field::Empty,
        detail = field::Empty,
    );
    // The remote parent must be set before the span is first entered: once entered, the span
    // has started its own trace, and a parent set later is ignored.
    if let Ok((_, Some(traceparent))) = &decoded {
        bw_telemetry::set_parent(&span, traceparent);
    }
    let outcome = async {
        match decoded {
            Err(e) => shared.dead_letter(&message, None, &e).await,
            Ok((job, _)) => {
                if let Some(entry) = job.entry_id() {
                    tracing::Span::current().record("entry_id", entry.as_str());
                }
                let context = JobContext {
                    message_id: message.message_id.clone(),
                    receive_count: message.receive_count,
                };
                let result = shared
                    .with_heartbeat(&message.receipt, shared.handler.handle(&job, &context))
                    .await;
                match result {
                    Ok(detail) => {
                        tracing::Span::current().record("detail", detail.as_str());
                        shared.finish(&message).await
                    }
                    Err(Failure::Transient(reason)) => shared.retry_later(&message, &reason).await,
                    Err(Failure::Permanent(reason)) => {
                        shared.dead_letter(&message, Some(&job), &reason).await
                    }
                }
            }
        }
    }
    .instrument(span.clone())
    .await;
    let took = started.elapsed();
    JOB_DURATION.observe(&[queue, outcome], took.as_secs_f64());
    span.record("outcome", outcome);
    span.in_scope(|| {
        tracing::info!(
            outcome,
            duration_ms = took.as_millis() as u64,
            "job processed"
        );
    });
}

impl<H: Handler> Shared<H> {
    fn unfinished(&self) -> std::sync::MutexGuard<'_, HashMap<String, ReceiptHandle>> {
        self.unfinished
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn track(&self, messages: &[ReceivedMessage]) {
        let mut unfinished = self.unfinished();
        for message in messages {
            unfinished.insert(message.message_id.clone(), message.receipt.clone());
        }
    }

    /// Keeps the message invisible while `work` runs, in steps of half the visibility timeout,
    /// so a live job is never redelivered and a dead worker's job comes back within one timeout.
    async fn with_heartbeat<T>(&self, receipt: &ReceiptHandle, work: impl Future<Output = T>) -> T {
        let every = (self.visibility / 2).max(Duration::from_millis(200));
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                () = tokio::time::sleep(every) => {
                    if let Err(e) = self.queue.change_visibility(receipt, self.visibility).await {
                        tracing::warn!(error = %e, "visibility heartbeat failed");
                    }
                }
            }
        }
    }

    async fn finish(&self, message: &ReceivedMessage) -> &'static str {
        match self.queue.delete(&message.receipt).await {
            Ok(()) => {
                self.unfinished().remove(&message.message_id);
                "success"
            }
            Err(e) => {
                // The work is done and idempotent: a redelivery repeats it harmlessly.
                tracing::warn!(error = %e, "could not delete a finished job's message");
                "success_undeleted"
            }
        }
    }

    async fn retry_later(&self, message: &ReceivedMessage, reason: &str) -> &'static str {
        let exponent = message.receive_count.saturating_sub(1).min(16);
        let delay = (self.retry_backoff * 2u32.saturating_pow(exponent)).min(self.visibility);
        tracing::warn!(
            reason,
            retry_in_secs = delay.as_secs(),
            "job failed; will be redelivered"
        );
        if let Err(e) = self.queue.change_visibility(&message.receipt, delay).await {
            tracing::warn!(error = %e, "could not set the retry delay");
        }
        self.unfinished().remove(&message.message_id);
        "transient_error"
    }

    async fn dead_letter(
        &self,
        message: &ReceivedMessage,
        job: Option<&H::Job>,
        reason: &str,
    ) -> &'static str {
        let Some(dead_letter) = &self.dead_letter else {
            tracing::error!(
                reason,
                "job failed permanently and there is no dead-letter queue; leaving it to expire"
            );
            self.unfinished().remove(&message.message_id);
            return "permanent_error";
        };
        let mut parked = OutgoingMessage::new(message.body.clone())
            .dedup(message.message_id.clone())
            .attribute(FAILURE_REASON_ATTRIBUTE, truncate(reason, 1024))
            .attribute("source_queue", self.queue.name());
        if let Some(group) = &message.group_id {
            parked = parked.group(group.clone());
        }
        if let Err(e) = dead_letter.send(parked).await {
            // Not deleted: the message returns and is tried again, which is safe.
            tracing::error!(reason, error = %e, "could not move a failed job to the dead-letter queue");
            self.unfinished().remove(&message.message_id);
            return "dead_letter_failed";
        }
        DEAD_LETTERS.inc(&[self.queue.name()]);
        tracing::error!(
            reason,
            dead_letter_queue = dead_letter.name(),
            "job failed permanently"
        );
        self.handler.dead_lettered(job, reason).await;
        self.finish(message).await;
        "permanent_error"
    }

    /// Makes every received-but-unfinished message visible again, so another consumer takes it
    /// now rather than after the visibility timeout.
    async fn release_unfinished(&self) {
        let receipts: Vec<ReceiptHandle> = self.unfinished().drain().map(|(_, r)| r).collect();
        for receipt in receipts {
            if let Err(e) = self.queue.change_visibility(&receipt, Duration::ZERO).await {
                tracing::warn!(error = %e, "could not release an unfinished job");
            }
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// A stop signal that turns true on SIGTERM or SIGINT (what ECS and a terminal send).
pub fn shutdown_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
        tracing::info!("stop signal received");
        let _ = tx.send(true);
    });
    rx
}
