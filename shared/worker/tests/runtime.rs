//! The worker runtime against real queues: the embedded backend, and SQS on moto for the
//! dead-letter path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bw_contracts::{EntryId, Job, JobEnvelope};
use bw_queue::{EmbeddedOptions, EmbeddedQueue, OutgoingMessage, Queue, SqsQueue};
use bw_testkit::moto::Moto;
use bw_worker::{Failure, Handler, JobContext, Worker, WorkerOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Behaviour {
    Succeed,
    FailTransientlyOnce,
    FailPermanently,
    Sleep(u64),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Note {
    group: String,
    n: u32,
    behaviour: Behaviour,
}

impl Job for Note {
    const KIND: &'static str = "note";
    // The runtime never looks at a job's queue: these tests hand it queues directly.
    const QUEUE: bw_contracts::QueueName = bw_contracts::QueueName::EXPORT;
    fn group_id(&self) -> String {
        self.group.clone()
    }
    fn dedup_id(&self) -> String {
        format!("{}-{}", self.group, self.n)
    }
    fn entry_id(&self) -> Option<&EntryId> {
        None
    }
}

#[derive(Default)]
struct Recorder {
    /// (group, n, start, end) per attempt.
    runs: Mutex<Vec<(String, u32, Instant, Instant)>>,
    dead: Mutex<Vec<(Option<u32>, String)>>,
    /// The trace context each attempt ran in, as a job it sends would carry it.
    traces: Mutex<Vec<Option<String>>>,
}

impl Recorder {
    fn attempts(&self) -> HashMap<(String, u32), usize> {
        let mut counts = HashMap::new();
        for (group, n, _, _) in self.runs.lock().unwrap().iter() {
            *counts.entry((group.clone(), *n)).or_insert(0) += 1;
        }
        counts
    }
}

#[async_trait]
impl Handler for Recorder {
    type Job = Note;

    async fn handle(&self, job: &Note, context: &JobContext) -> Result<String, Failure> {
        let start = Instant::now();
        self.traces
            .lock()
            .unwrap()
            .push(bw_telemetry::current_traceparent());
        let result = match &job.behaviour {
            Behaviour::Succeed => Ok(()),
            Behaviour::FailTransientlyOnce if context.receive_count == 1 => {
                Err(Failure::Transient("try again".into()))
            }
            Behaviour::FailTransientlyOnce => Ok(()),
            Behaviour::FailPermanently => Err(Failure::Permanent("entry is gone".into())),
            Behaviour::Sleep(ms) => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                Ok(())
            }
        };
        self.runs
            .lock()
            .unwrap()
            .push((job.group.clone(), job.n, start, Instant::now()));
        result.map(|()| format!("note {} done", job.n))
    }

    async fn dead_lettered(&self, job: Option<&Note>, reason: &str) {
        self.dead
            .lock()
            .unwrap()
            .push((job.map(|j| j.n), reason.to_owned()));
    }
}

fn note(group: &str, n: u32, behaviour: Behaviour) -> OutgoingMessage {
    let job = Note {
        group: group.into(),
        n,
        behaviour,
    };
    OutgoingMessage::job(job, None)
}

fn fifo(visibility: Duration) -> (Arc<EmbeddedQueue>, Arc<EmbeddedQueue>) {
    let dead_letter = EmbeddedQueue::new(EmbeddedOptions::new("dlq.fifo").fifo(true));
    let queue = EmbeddedQueue::new(
        EmbeddedOptions::new("jobs.fifo")
            .fifo(true)
            .visibility_timeout(visibility)
            .dead_letter(Arc::clone(&dead_letter)),
    );
    (queue, dead_letter)
}

fn options() -> WorkerOptions {
    WorkerOptions {
        concurrency: 8,
        wait: Duration::from_millis(100),
        retry_backoff: Duration::from_millis(200),
        shutdown_grace: Duration::from_secs(5),
        ..WorkerOptions::default()
    }
}

/// Runs a worker until `done` holds for the recorder (or 15 s), then stops it.
async fn run_until(
    queue: Arc<dyn Queue>,
    options: WorkerOptions,
    recorder: Arc<Recorder>,
    done: impl Fn(&Recorder) -> bool,
) {
    let (stop, stopped) = watch::channel(false);
    let worker = Worker::new(queue, options);
    let handler = Arc::clone(&recorder);
    let running = tokio::spawn(async move { worker.run(handler, stopped).await });
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done(&recorder) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
}

async fn is_empty(queue: &dyn Queue) -> bool {
    queue.receive(10, Duration::ZERO).await.unwrap().is_empty()
}

/// The process's telemetry, as a service installs it (logs at WARN, spans not exported).
fn telemetry() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let telemetry = bw_telemetry::init(&bw_telemetry::TelemetryConfig {
            service_name: "worker-test".into(),
            service_version: None,
            log_level: Some("warn".into()),
            format: bw_telemetry::LogFormat::Json,
            otlp_endpoint: None,
        })
        .expect("telemetry installs once");
        // Kept for the whole test process, as a service keeps it until it exits.
        std::mem::forget(telemetry);
    });
}

#[tokio::test]
async fn a_job_runs_in_the_trace_of_the_span_that_sent_it() {
    telemetry();
    let (queue, _) = fifo(Duration::from_secs(30));
    let producer = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let job = Note {
        group: "traced".into(),
        n: 1,
        behaviour: Behaviour::Succeed,
    };
    queue
        .send(OutgoingMessage::job(job, Some(producer.into())))
        .await
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    run_until(queue.clone(), options(), recorder.clone(), |r| {
        !r.runs.lock().unwrap().is_empty()
    })
    .await;
    let traces = recorder.traces.lock().unwrap().clone();
    let seen = traces[0].as_deref().expect("the job ran in a traced span");
    assert_eq!(
        bw_telemetry::trace_id_of(seen),
        bw_telemetry::trace_id_of(producer),
        "the job's span continues the producer's trace"
    );
    assert_ne!(&seen[36..52], &producer[36..52], "in a span of its own");
}

#[tokio::test]
async fn successful_jobs_run_once_and_are_deleted() {
    let (queue, _) = fifo(Duration::from_secs(30));
    for n in 0..3 {
        queue
            .send(note(&format!("g{n}"), n, Behaviour::Succeed))
            .await
            .unwrap();
    }
    let recorder = Arc::new(Recorder::default());
    run_until(queue.clone(), options(), recorder.clone(), |r| {
        r.runs.lock().unwrap().len() >= 3
    })
    .await;
    assert!(
        recorder.attempts().values().all(|&n| n == 1),
        "{:?}",
        recorder.attempts()
    );
    assert_eq!(recorder.attempts().len(), 3);
    assert!(is_empty(queue.as_ref()).await);
}

#[tokio::test]
async fn transient_failures_come_back_after_a_backoff() {
    let (queue, dead_letter) = fifo(Duration::from_secs(30));
    queue
        .send(note("g", 1, Behaviour::FailTransientlyOnce))
        .await
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    run_until(queue.clone(), options(), recorder.clone(), |r| {
        r.runs.lock().unwrap().len() >= 2
    })
    .await;
    let runs = recorder.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 2, "retried once, then succeeded");
    let gap = runs[1].2.duration_since(runs[0].3);
    assert!(
        gap >= Duration::from_millis(150),
        "waited for the backoff, not the 30 s visibility: {gap:?}"
    );
    assert!(
        gap < Duration::from_secs(10),
        "did not wait for the visibility timeout: {gap:?}"
    );
    assert!(recorder.dead.lock().unwrap().is_empty());
    assert!(is_empty(queue.as_ref()).await && is_empty(dead_letter.as_ref()).await);
}

#[tokio::test]
async fn permanent_failures_go_to_the_dead_letter_queue_once_with_their_reason() {
    let (queue, dead_letter) = fifo(Duration::from_secs(1));
    queue
        .send(note("g", 7, Behaviour::FailPermanently))
        .await
        .unwrap();
    queue
        .send(OutgoingMessage::new("not a job").group("g2"))
        .await
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    run_until(queue.clone(), options(), recorder.clone(), |r| {
        r.dead.lock().unwrap().len() >= 2
    })
    .await;
    // Give a wrongly kept message time to come back after its 1 s visibility.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(is_empty(queue.as_ref()).await, "the originals were deleted");
    assert_eq!(
        recorder.attempts().get(&("g".to_owned(), 7)),
        Some(&1),
        "no useless redelivery"
    );
    let mut dead = recorder.dead.lock().unwrap().clone();
    dead.sort();
    assert_eq!(dead[0].0, None, "the unreadable message");
    assert!(dead[0].1.contains("not a job envelope"), "{}", dead[0].1);
    assert_eq!(dead[1], (Some(7), "entry is gone".to_owned()));
    let parked = dead_letter.receive(10, Duration::ZERO).await.unwrap();
    assert_eq!(parked.len(), 2);
    let reasons: Vec<&str> = parked
        .iter()
        .map(|m| m.attributes["failure_reason"].as_str())
        .collect();
    assert!(reasons.contains(&"entry is gone"), "{reasons:?}");
}

#[tokio::test]
async fn a_group_runs_in_order_while_groups_run_side_by_side() {
    let (queue, _) = fifo(Duration::from_secs(30));
    for n in 0..4 {
        queue
            .send(note("a", n, Behaviour::Sleep(100)))
            .await
            .unwrap();
        queue
            .send(note("b", n, Behaviour::Sleep(100)))
            .await
            .unwrap();
    }
    let recorder = Arc::new(Recorder::default());
    run_until(queue.clone(), options(), recorder.clone(), |r| {
        r.runs.lock().unwrap().len() >= 8
    })
    .await;
    let runs = recorder.runs.lock().unwrap().clone();
    for group in ["a", "b"] {
        let mine: Vec<_> = runs.iter().filter(|r| r.0 == group).collect();
        let order: Vec<u32> = mine.iter().map(|r| r.1).collect();
        assert_eq!(order, [0, 1, 2, 3], "group {group} kept its order");
        for pair in mine.windows(2) {
            assert!(
                pair[1].2 >= pair[0].3,
                "group {group}: a job started before the previous ended"
            );
        }
    }
    let a_end = runs
        .iter()
        .filter(|r| r.0 == "a")
        .map(|r| r.3)
        .max()
        .unwrap();
    let b_start = runs
        .iter()
        .filter(|r| r.0 == "b")
        .map(|r| r.2)
        .min()
        .unwrap();
    assert!(b_start < a_end, "the two groups overlapped in time");
}

#[tokio::test]
async fn the_heartbeat_keeps_a_long_job_from_being_redelivered() {
    let (queue, _) = fifo(Duration::from_secs(1));
    queue
        .send(note("g", 1, Behaviour::Sleep(2_500)))
        .await
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    // A second consumer polls the same queue: it would take the message if it reappeared.
    let rival = Arc::new(Recorder::default());
    let (stop, stopped) = watch::channel(false);
    let rival_worker = Worker::new(queue.clone(), options());
    let rival_run = {
        let rival = Arc::clone(&rival);
        tokio::spawn(async move { rival_worker.run(rival, stopped).await })
    };
    run_until(queue.clone(), options(), recorder.clone(), |r| {
        !r.runs.lock().unwrap().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(true).unwrap();
    rival_run.await.unwrap().unwrap();
    let total = recorder.runs.lock().unwrap().len() + rival.runs.lock().unwrap().len();
    assert_eq!(
        total, 1,
        "ran once although it took 2.5× the visibility timeout"
    );
}

#[tokio::test]
async fn a_stop_releases_unfinished_jobs_at_once() {
    let (queue, _) = fifo(Duration::from_secs(30));
    queue
        .send(note("g", 1, Behaviour::Sleep(10_000)))
        .await
        .unwrap();
    let (stop, stopped) = watch::channel(false);
    let worker = Worker::new(
        queue.clone(),
        WorkerOptions {
            shutdown_grace: Duration::from_millis(200),
            ..options()
        },
    );
    let running =
        tokio::spawn(async move { worker.run(Arc::new(Recorder::default()), stopped).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).unwrap();
    let stopped_at = Instant::now();
    running.await.unwrap().unwrap();
    assert!(
        stopped_at.elapsed() < Duration::from_secs(3),
        "the grace period bounds the stop"
    );
    let again = queue.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!(
        again.len(),
        1,
        "visible at once, not after the 30 s visibility timeout"
    );
    assert_eq!(again[0].receive_count, 2);
}

#[tokio::test]
async fn on_sqs_a_permanent_failure_lands_in_the_redrive_target_with_its_reason() {
    let moto = Moto::shared();
    let (url, dead_letter_url) = moto
        .create_queue_with_dead_letter(&Moto::unique_name("worker"), true, 30, 5)
        .await;
    let client = moto.sqs_client().await;
    let queue: Arc<dyn Queue> = Arc::new(SqsQueue::new(client.clone(), url));
    let dead_letter = SqsQueue::new(client, dead_letter_url);
    queue
        .send(note("g", 3, Behaviour::FailPermanently))
        .await
        .unwrap();
    let recorder = Arc::new(Recorder::default());
    run_until(queue.clone(), options(), recorder.clone(), |r| {
        !r.dead.lock().unwrap().is_empty()
    })
    .await;
    let parked = dead_letter
        .receive(10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].attributes["failure_reason"], "entry is gone");
    assert_eq!(parked[0].attributes["source_queue"], queue.name());
    let job = JobEnvelope::<Note>::from_body(&parked[0].body).unwrap().job;
    assert_eq!(job.n, 3);
    assert!(
        queue
            .receive(10, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
    // The queue's name is unique to this test, so its series count this test's job alone; the
    // lag needs SQS's SentTimestamp, which the backend must ask for.
    let metrics = bw_metrics::render();
    let name = queue.name();
    for series in [
        format!("bw_dead_letters_total{{queue=\"{name}\"}} 1\n"),
        format!(
            "bw_job_duration_seconds_count{{queue=\"{name}\",outcome=\"permanent_error\"}} 1\n"
        ),
        format!("bw_queue_lag_seconds_count{{queue=\"{name}\"}} 1\n"),
    ] {
        assert!(metrics.contains(&series), "no {series} in:\n{metrics}");
    }
}

#[tokio::test]
async fn a_consumer_that_cannot_start_ends_the_service_with_its_error() {
    use bw_config::{Env, SecretSource, SecretWatch, SecretWatchOptions};
    use bw_worker::{Consumer, WorkerConfig};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.json");
    std::fs::write(
        &path,
        bw_standin::benchling::secret_json("id", "secret", "bucket"),
    )
    .unwrap();
    let secret = SecretWatch::connect(
        Some(&SecretSource::File(path)),
        None,
        &SecretWatchOptions::default(),
    );
    let config = WorkerConfig::from_env(&Env::from_pairs([("RECEIVE_WAIT_SECS", "1")]), 2);
    let healthy: Arc<dyn Queue> = EmbeddedQueue::with_dead_letter("healthy.fifo", true).0;
    let moto = Moto::shared();
    let missing: Arc<dyn Queue> = Arc::new(SqsQueue::new(
        moto.sqs_client().await,
        format!("{}/123456789012/missing.fifo", moto.endpoint()),
    ));
    let recorder = Arc::new(Recorder::default());
    let consumers = vec![
        Consumer::new(&config, healthy, Arc::clone(&recorder)),
        Consumer::new(&config, missing, recorder),
    ];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_stop, stopped) = watch::channel(false);
    let served = tokio::time::timeout(
        Duration::from_secs(20),
        bw_worker::serve(consumers, secret, listener, stopped),
    )
    .await
    .expect("the healthy consumer was stopped too");
    let error = served.expect_err("the missing queue is an error");
    assert!(error.to_string().contains("missing"), "{error}");
}
