//! One behavioural suite for every `Queue` backend: each scenario runs against the embedded
//! queue and against SQS in moto, through the real SDK over 127.0.0.1.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bw_queue::{
    BatchOptions, Batcher, EmbeddedOptions, EmbeddedQueue, OutgoingMessage, Queue, QueueError,
    ReceivedMessage, SqsQueue,
};
use bw_testkit::moto::Moto;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Embedded,
    Sqs,
}

/// A queue under test and its dead-letter queue.
struct Queues {
    queue: Arc<dyn Queue>,
    dead_letter: Arc<dyn Queue>,
}

impl Backend {
    async fn queues(self, fifo: bool, visibility_secs: u32, max_receives: u32) -> Queues {
        let name = Moto::unique_name("behaviour");
        let visibility = Duration::from_secs(u64::from(visibility_secs));
        match self {
            Backend::Embedded => {
                let dead_letter = EmbeddedQueue::new(
                    EmbeddedOptions::new(format!("{name}-dlq"))
                        .fifo(fifo)
                        .visibility_timeout(visibility),
                );
                let queue = EmbeddedQueue::new(
                    EmbeddedOptions::new(name)
                        .fifo(fifo)
                        .visibility_timeout(visibility)
                        .max_receives(Some(max_receives))
                        .dead_letter(Arc::clone(&dead_letter)),
                );
                Queues { queue, dead_letter }
            }
            Backend::Sqs => {
                let moto = Moto::shared();
                let (url, dead_letter_url) = moto
                    .create_queue_with_dead_letter(&name, fifo, visibility_secs, max_receives)
                    .await;
                let client = moto.sqs_client().await;
                Queues {
                    queue: Arc::new(SqsQueue::new(client.clone(), url)),
                    dead_letter: Arc::new(SqsQueue::new(client, dead_letter_url)),
                }
            }
        }
    }

    async fn standard(self, visibility_secs: u32) -> Arc<dyn Queue> {
        self.queues(false, visibility_secs, 5).await.queue
    }

    async fn fifo(self, visibility_secs: u32) -> Arc<dyn Queue> {
        self.queues(true, visibility_secs, 5).await.queue
    }
}

const POLL: Duration = Duration::from_secs(1);

fn bodies(messages: &[ReceivedMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.body.as_str()).collect()
}

fn is_rejected<T: std::fmt::Debug>(result: &Result<T, QueueError>) -> bool {
    matches!(result, Err(QueueError::Rejected { .. }))
}

/// Receives and deletes until `count` messages came or 20 s passed.
async fn drain(queue: &dyn Queue, count: usize) -> Vec<ReceivedMessage> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut all = Vec::new();
    while all.len() < count && Instant::now() < deadline {
        for message in queue.receive(10, POLL).await.unwrap() {
            queue.delete(&message.receipt).await.unwrap();
            all.push(message);
        }
    }
    all
}

async fn round_trip_with_attributes(backend: Backend) {
    let queue = backend.standard(30).await;
    assert!(!queue.is_fifo());
    assert!(queue.name().starts_with("behaviour-"), "{}", queue.name());
    assert_eq!(
        queue.visibility_timeout().await.unwrap(),
        Duration::from_secs(30)
    );
    queue.check().await.unwrap();

    let message = OutgoingMessage::new(r#"{"job":"export"}"#)
        .attribute("reason", "benchling 404")
        .attribute("kind", "export");
    let id = queue.send(message.clone()).await.unwrap();
    let received = queue.receive(10, POLL).await.unwrap();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.message_id, id);
    assert_eq!(got.body, message.body);
    assert_eq!(got.attributes, message.attributes);
    assert_eq!(got.receive_count, 1);
    assert_eq!(got.group_id, None);

    queue.delete(&got.receipt).await.unwrap();
    assert!(queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
}

async fn empty_receive_waits_then_returns_nothing(backend: Backend) {
    let queue = backend.standard(30).await;
    let started = Instant::now();
    let received = queue.receive(10, POLL).await.unwrap();
    assert!(received.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(800),
        "returned after {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(10),
        "returned after {waited:?}"
    );
}

async fn expired_visibility_redelivers_with_new_receipt(backend: Backend) {
    let queue = backend.standard(1).await;
    let id = queue.send(OutgoingMessage::new("again")).await.unwrap();
    let first = queue.receive(10, POLL).await.unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        queue.receive(10, Duration::ZERO).await.unwrap().is_empty(),
        "in flight"
    );

    let second = queue.receive(10, Duration::from_secs(5)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].message_id, id);
    assert_eq!(second[0].receive_count, 2);
    assert_ne!(second[0].receipt, first[0].receipt);
}

async fn zero_visibility_makes_message_visible_at_once(backend: Backend) {
    let queue = backend.standard(30).await;
    let id = queue.send(OutgoingMessage::new("retry")).await.unwrap();
    let first = queue.receive(10, POLL).await.unwrap();
    assert_eq!(first.len(), 1);
    queue
        .change_visibility(&first[0].receipt, Duration::ZERO)
        .await
        .unwrap();

    let second = queue.receive(10, Duration::from_secs(3)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].message_id, id);
    assert_eq!(second[0].receive_count, 2);
}

async fn deleted_message_is_not_redelivered(backend: Backend) {
    let queue = backend.standard(1).await;
    queue.send(OutgoingMessage::new("done")).await.unwrap();
    let received = queue.receive(10, POLL).await.unwrap();
    assert_eq!(received.len(), 1);
    queue.delete(&received[0].receipt).await.unwrap();
    assert!(
        queue
            .receive(10, Duration::from_secs(2))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn exhausted_message_moves_to_dead_letter_queue(backend: Backend) {
    let Queues { queue, dead_letter } = backend.queues(true, 1, 2).await;
    let message = OutgoingMessage::new("poison")
        .group("entry-1")
        .attribute("reason", "parse error");
    let id = queue.send(message.clone()).await.unwrap();
    for expected_count in 1..=2 {
        let received = queue.receive(10, Duration::from_secs(5)).await.unwrap();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].receive_count, expected_count);
    }
    // The third delivery attempt moves it instead.
    assert!(
        queue
            .receive(10, Duration::from_secs(2))
            .await
            .unwrap()
            .is_empty()
    );

    let moved = dead_letter
        .receive(10, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].message_id, id);
    assert_eq!(moved[0].body, message.body);
    assert_eq!(moved[0].attributes, message.attributes);
    assert_eq!(moved[0].group_id.as_deref(), Some("entry-1"));
}

async fn fifo_requires_group_id(backend: Backend) {
    let queue = backend.fifo(30).await;
    assert!(queue.is_fifo());
    let refused = queue.send(OutgoingMessage::new("no group")).await;
    assert!(is_rejected(&refused), "{refused:?}");

    let results = queue
        .send_batch(vec![
            OutgoingMessage::new("one").group("g"),
            OutgoingMessage::new("no group"),
            OutgoingMessage::new("two").group("g"),
        ])
        .await
        .unwrap();
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(is_rejected(&results[1]), "{results:?}");
    assert_eq!(bodies(&drain(queue.as_ref(), 2).await), ["one", "two"]);
}

async fn fifo_keeps_order_within_group(backend: Backend) {
    let queue = backend.fifo(30).await;
    let sent: Vec<String> = (0..6).map(|i| format!("step-{i}")).collect();
    for (i, body) in sent.iter().enumerate() {
        // Another group interleaved, to show order is per group.
        queue
            .send(OutgoingMessage::new(format!("other-{i}")).group("other"))
            .await
            .unwrap();
        queue
            .send(OutgoingMessage::new(body.clone()).group("entry"))
            .await
            .unwrap();
    }
    let received = drain(queue.as_ref(), 12).await;
    let entry: Vec<&str> = received
        .iter()
        .filter(|m| m.group_id.as_deref() == Some("entry"))
        .map(|m| m.body.as_str())
        .collect();
    assert_eq!(entry, sent);
    let other: Vec<&str> = received
        .iter()
        .filter(|m| m.group_id.as_deref() == Some("other"))
        .map(|m| m.body.as_str())
        .collect();
    assert_eq!(
        other,
        (0..6).map(|i| format!("other-{i}")).collect::<Vec<_>>()
    );
}

async fn fifo_redelivery_keeps_order(backend: Backend) {
    let queue = backend.fifo(1).await;
    for body in ["a", "b", "c"] {
        queue
            .send(OutgoingMessage::new(body).group("g"))
            .await
            .unwrap();
    }
    let first = queue.receive(1, POLL).await.unwrap();
    assert_eq!(bodies(&first), ["a"]);

    let mut order = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while order.len() < 3 && Instant::now() < deadline {
        for message in queue.receive(10, Duration::from_secs(3)).await.unwrap() {
            if message.body == "a" {
                assert_eq!(message.receive_count, 2);
            }
            queue.delete(&message.receipt).await.unwrap();
            order.push(message.body);
        }
    }
    assert_eq!(order, ["a", "b", "c"]);
}

async fn fifo_drops_duplicates(backend: Backend) {
    let queue = backend.fifo(30).await;
    queue
        .send(
            OutgoingMessage::new("original")
                .group("g")
                .dedup("entry-1@v1"),
        )
        .await
        .unwrap();
    queue
        .send(OutgoingMessage::new("retry").group("g").dedup("entry-1@v1"))
        .await
        .unwrap();
    // Without a dedup id the body is the key (content-based deduplication).
    queue
        .send(OutgoingMessage::new("same body").group("g"))
        .await
        .unwrap();
    queue
        .send(OutgoingMessage::new("same body").group("g"))
        .await
        .unwrap();

    assert_eq!(
        bodies(&drain(queue.as_ref(), 2).await),
        ["original", "same body"]
    );
    assert!(queue.receive(10, POLL).await.unwrap().is_empty());
}

async fn fifo_group_waits_while_a_message_is_in_flight(backend: Backend) {
    let queue = backend.fifo(30).await;
    queue
        .send(OutgoingMessage::new("g-1").group("g"))
        .await
        .unwrap();
    queue
        .send(OutgoingMessage::new("g-2").group("g"))
        .await
        .unwrap();
    let first = queue.receive(1, POLL).await.unwrap();
    assert_eq!(bodies(&first), ["g-1"]);
    queue
        .send(OutgoingMessage::new("h-1").group("h"))
        .await
        .unwrap();

    let others = queue.receive(10, POLL).await.unwrap();
    assert_eq!(bodies(&others), ["h-1"]);
    assert!(
        queue.receive(10, POLL).await.unwrap().is_empty(),
        "g is blocked"
    );

    queue.delete(&first[0].receipt).await.unwrap();
    let next = queue.receive(10, POLL).await.unwrap();
    assert_eq!(bodies(&next), ["g-2"]);
}

async fn batch_of_ten_is_stored_and_received(backend: Backend) {
    let queue = backend.standard(30).await;
    let messages: Vec<_> = (0..10)
        .map(|i| OutgoingMessage::new(format!("m{i}")).attribute("index", i.to_string()))
        .collect();
    let results = queue.send_batch(messages).await.unwrap();
    let ids: Vec<String> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 10);

    let received = drain(queue.as_ref(), 10).await;
    let by_id: HashMap<&str, &ReceivedMessage> = received
        .iter()
        .map(|m| (m.message_id.as_str(), m))
        .collect();
    assert_eq!(by_id.len(), 10);
    for (i, id) in ids.iter().enumerate() {
        let message = by_id[id.as_str()];
        assert_eq!(message.body, format!("m{i}"));
        assert_eq!(message.attributes["index"], i.to_string());
    }
}

async fn standard_queue_ignores_group_and_dedup(backend: Backend) {
    let queue = backend.standard(30).await;
    let first = queue
        .send(OutgoingMessage::new("one").group("g").dedup("d"))
        .await
        .unwrap();
    let second = queue
        .send(OutgoingMessage::new("two").group("g").dedup("d"))
        .await
        .unwrap();
    assert_ne!(first, second);
    // Both are deliverable at once: no group blocks the other.
    let mut received = Vec::new();
    while received.len() < 2 {
        let batch = queue.receive(10, POLL).await.unwrap();
        assert!(!batch.is_empty(), "got only {received:?}");
        received.extend(batch);
    }
    let mut got: Vec<_> = received
        .iter()
        .map(|m| (m.body.as_str(), m.group_id.clone()))
        .collect();
    got.sort();
    assert_eq!(got, [("one", None), ("two", None)]);
}

async fn batcher_stores_each_concurrent_send_once(backend: Backend) {
    let queue = backend.standard(30).await;
    let eager = Batcher::spawn(Arc::clone(&queue), BatchOptions::default());
    let lingering = Batcher::spawn(
        Arc::clone(&queue),
        BatchOptions {
            linger: Duration::from_millis(5),
            max_in_flight: 2,
        },
    );
    // 200 sends from as many tasks, spread over two batchers with different settings.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let batcher = if i % 2 == 0 {
            eager.clone()
        } else {
            lingering.clone()
        };
        tasks.spawn(async move {
            let body = format!("message-{i}");
            (batcher.send(OutgoingMessage::new(body.clone())).await, body)
        });
    }
    let mut sent = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let (result, body) = joined.unwrap();
        assert!(
            sent.insert(result.unwrap(), body).is_none(),
            "an id was handed out twice"
        );
    }
    assert_eq!(sent.len(), 200);

    let received: BTreeMap<String, String> = drain(queue.as_ref(), 200)
        .await
        .into_iter()
        .map(|m| (m.message_id, m.body))
        .collect();
    assert_eq!(received, sent);
    assert!(queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
}

async fn batcher_reports_failure_to_its_caller_only(backend: Backend) {
    let queue = backend.fifo(30).await;
    let batcher = Batcher::spawn(
        Arc::clone(&queue),
        BatchOptions {
            // Long enough that all five sends share one batch.
            linger: Duration::from_millis(200),
            max_in_flight: 1,
        },
    );
    let sends: Vec<_> = (0..5)
        .map(|i| {
            let batcher = batcher.clone();
            let message = OutgoingMessage::new(format!("m{i}"));
            let message = if i == 2 { message } else { message.group("g") };
            tokio::spawn(async move { batcher.send(message).await })
        })
        .collect();
    for (i, send) in sends.into_iter().enumerate() {
        let result = send.await.unwrap();
        if i == 2 {
            assert!(is_rejected(&result), "{result:?}");
        } else {
            assert!(result.is_ok(), "message {i}: {result:?}");
        }
    }
    // The spawned sends race into the batcher, so their order is not fixed.
    let stored = drain(queue.as_ref(), 4).await;
    let mut stored = bodies(&stored);
    stored.sort_unstable();
    assert_eq!(stored, ["m0", "m1", "m3", "m4"]);
}

/// Runs `body(thread)` on `count` threads, each on a current-thread runtime of its own that
/// ends with the thread, and gathers what they return. Joining blocks, so the test's own
/// runtime (and any batching task on it) keeps running on another worker meanwhile.
async fn on_own_runtimes<F, Fut, T>(count: usize, body: F) -> Vec<T>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Vec<T>>,
    T: Send + 'static,
{
    let threads: Vec<_> = (0..count)
        .map(|thread| {
            let body = body.clone();
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(body(thread))
            })
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    })
    .await
    .unwrap()
}

async fn batcher_serves_callers_on_other_runtimes(backend: Backend) {
    let queue = backend.standard(30).await;
    let batcher = Batcher::spawn(Arc::clone(&queue), BatchOptions::default());
    // Callers on their own runtimes, as actix-web workers are.
    let ids: HashSet<String> = on_own_runtimes(3, move |thread| {
        let batcher = batcher.clone();
        async move {
            let mut ids = Vec::new();
            for i in 0..5 {
                let body = format!("thread{thread}-{i}");
                ids.push(batcher.send(OutgoingMessage::new(body)).await.unwrap());
            }
            ids
        }
    })
    .await
    .into_iter()
    .collect();
    assert_eq!(ids.len(), 15);
    let received: HashSet<String> = drain(queue.as_ref(), 15)
        .await
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(received, ids);
}

/// Each actix-web worker sends through its own copy of a queue, batched on its own runtime: an
/// SQS queue gets connections of its own (so no other thread drives them), an in-process
/// queue has none to copy. What the copies send, the original receives, also after their
/// runtimes ended.
async fn per_thread_copies_send_to_the_same_queue(backend: Backend) {
    let queue = backend.standard(30).await;
    assert_eq!(
        queue.with_own_connections().is_some(),
        matches!(backend, Backend::Sqs)
    );
    let shared = Arc::clone(&queue);
    let sent: HashSet<String> = on_own_runtimes(2, move |thread| {
        let queue = Arc::clone(&shared);
        async move {
            let own = queue.with_own_connections().unwrap_or(queue);
            let batcher = Batcher::spawn(own, BatchOptions::default());
            let mut bodies = Vec::new();
            for i in 0..4 {
                let body = format!("thread{thread}-{i}");
                batcher
                    .send(OutgoingMessage::new(body.clone()))
                    .await
                    .unwrap();
                bodies.push(body);
            }
            bodies
        }
    })
    .await
    .into_iter()
    .collect();
    let received: HashSet<String> = bodies(&drain(queue.as_ref(), 8).await)
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(received, sent);
}

macro_rules! suite {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Backend::Embedded).await;
                }
            )*
        }
        mod sqs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(super::Backend::Sqs).await;
                }
            )*
        }
    };
}

/// A consumer finds where to move a message that can never succeed.
async fn dead_letter_queue_is_discovered(backend: Backend) {
    let Queues { queue, dead_letter } = backend.queues(true, 30, 3).await;
    let found = queue
        .dead_letter_queue()
        .await
        .unwrap()
        .expect("the queue has a dead-letter queue");
    assert_eq!(found.name(), dead_letter.name());
    found
        .send(
            OutgoingMessage::new("parked")
                .group("g")
                .attribute("failure_reason", "bad"),
        )
        .await
        .unwrap();
    let parked = drain(dead_letter.as_ref(), 1).await;
    assert_eq!(bodies(&parked), ["parked"]);
    assert_eq!(parked[0].attributes["failure_reason"], "bad");
    assert!(dead_letter.dead_letter_queue().await.unwrap().is_none());
}

suite!(
    dead_letter_queue_is_discovered,
    round_trip_with_attributes,
    empty_receive_waits_then_returns_nothing,
    expired_visibility_redelivers_with_new_receipt,
    zero_visibility_makes_message_visible_at_once,
    deleted_message_is_not_redelivered,
    exhausted_message_moves_to_dead_letter_queue,
    fifo_requires_group_id,
    fifo_keeps_order_within_group,
    fifo_redelivery_keeps_order,
    fifo_drops_duplicates,
    fifo_group_waits_while_a_message_is_in_flight,
    batch_of_ten_is_stored_and_received,
    standard_queue_ignores_group_and_dedup,
    batcher_stores_each_concurrent_send_once,
    batcher_reports_failure_to_its_caller_only,
    batcher_serves_callers_on_other_runtimes,
    per_thread_copies_send_to_the_same_queue,
);

#[tokio::test]
async fn sqs_errors_are_classified_and_name_only_the_queue() {
    let moto = Moto::shared();
    let missing = SqsQueue::new(
        moto.sqs_client().await,
        format!(
            "{}/123456789012/{}",
            moto.endpoint(),
            Moto::unique_name("missing")
        ),
    );
    let error = missing.check().await.unwrap_err();
    assert!(matches!(error, QueueError::Rejected { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with(missing.name()), "{text}");
    assert!(!text.contains("123456789012"), "{text}");

    // A failed batch request is reported to every caller in it.
    let batcher = Batcher::spawn(
        Arc::new(missing),
        BatchOptions {
            linger: Duration::from_millis(100),
            max_in_flight: 1,
        },
    );
    let sends: Vec<_> = (0..3)
        .map(|i| {
            let batcher = batcher.clone();
            tokio::spawn(async move { batcher.send(OutgoingMessage::new(format!("m{i}"))).await })
        })
        .collect();
    for send in sends {
        let result = send.await.unwrap();
        assert!(is_rejected(&result), "{result:?}");
    }

    let config = moto.sdk_config().await;
    let unreachable = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&config)
            .endpoint_url("http://127.0.0.1:9")
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
            .build(),
    );
    let queue = SqsQueue::new(
        unreachable,
        "https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo",
    );
    assert_eq!(queue.name(), "jobs.fifo");
    assert!(queue.is_fifo());
    let error = queue.receive(1, Duration::ZERO).await.unwrap_err();
    assert!(matches!(error, QueueError::Unavailable { .. }), "{error:?}");
    assert!(!error.to_string().contains("123456789012"), "{error}");
}

#[test]
fn batcher_whose_runtime_is_gone_reports_unavailable() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let queue: Arc<dyn Queue> = EmbeddedQueue::new(EmbeddedOptions::new("orphan"));
    let batcher = runtime.block_on(async { Batcher::spawn(queue, BatchOptions::default()) });
    drop(runtime);

    let result = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(batcher.send(OutgoingMessage::new("m")));
    assert!(
        matches!(result, Err(QueueError::Unavailable { .. })),
        "{result:?}"
    );
}
