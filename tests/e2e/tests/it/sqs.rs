//! The ingress against SQS FIFO queues on moto: jobs land with their group and deduplication
//! ids and trace context, retries are stored once, and a queue failure is a 503.

use std::sync::Arc;
use std::time::Duration;

use bw_contracts::{ExportJob, JobEnvelope};
use bw_ingress::Queues;
use bw_queue::SqsQueue;
use bw_testkit::moto::Moto;

use crate::harness::{Harness, Options, fixture};

async fn sqs_queues(moto: &Moto) -> Queues {
    let client = moto.sqs_client().await;
    let export = moto
        .create_queue(&Moto::unique_name("export"), true, 30, None)
        .await;
    let canvas = moto
        .create_queue(&Moto::unique_name("canvas"), true, 30, None)
        .await;
    sqs(&client, &export, &canvas)
}

/// The ingress's queues on SQS, as [`Queues::open`] opens them when both URLs are set.
fn sqs(client: &aws_sdk_sqs::Client, export: &str, canvas: &str) -> Queues {
    Queues {
        export: Arc::new(SqsQueue::new(client.clone(), export)),
        canvas: Arc::new(SqsQueue::new(client.clone(), canvas)),
        backend: "sqs",
        batched: true,
    }
}

#[tokio::test]
async fn an_entry_event_lands_on_the_fifo_queue_grouped_by_entry() {
    let moto = Moto::shared();
    let queues = sqs_queues(moto).await;
    let export = queues.export.clone();
    let h = Harness::start_with(Options {
        queues: Some(queues),
        ..Options::default()
    })
    .await;
    let (status, answer) = h
        .post_signed("/event", &fixture("entry-updated.json"))
        .await;
    assert_eq!(status, 202, "{answer}");

    let messages = export.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].group_id.as_deref(),
        Some("8316d144-745d-4276-a389-f8afc8ff3115")
    );
    assert_eq!(
        messages[0].message_id,
        answer["message_id"].as_str().unwrap()
    );
    let envelope: JobEnvelope<ExportJob> = JobEnvelope::from_body(&messages[0].body).unwrap();
    let traceparent = envelope.traceparent.expect("trace context in the message");
    assert!(
        bw_telemetry::trace_id_of(&traceparent).is_some(),
        "{traceparent}"
    );
}

#[tokio::test]
async fn a_retry_reaching_another_instance_is_deduplicated_by_the_queue() {
    let moto = Moto::shared();
    let queues = sqs_queues(moto).await;
    let export = queues.export.clone();
    let first = Harness::start_with(Options {
        queues: Some(queues.clone()),
        ..Options::default()
    })
    .await;
    let second = Harness::start_with(Options {
        queues: Some(queues),
        ..Options::default()
    })
    .await;
    // Both instances must trust the same key, as two tasks of one service do.
    second.jwks.set_keys(&[&first.key]);
    let body = fixture("entry-created.json");
    let headers = first.sign(&body).pairs();
    assert_eq!(first.post("/event", &body, &headers).await.0, 202);
    assert_eq!(second.post("/prod/event", &body, &headers).await.0, 202);
    let messages = export.receive(10, Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        messages.len(),
        1,
        "SQS FIFO deduplication on the webhook id"
    );
}

#[tokio::test]
async fn a_queue_failure_is_a_503_and_the_service_is_not_ready() {
    let moto = Moto::shared();
    let client = moto.sqs_client().await;
    let missing = format!(
        "{}/123456789012/{}.fifo",
        moto.endpoint(),
        Moto::unique_name("missing")
    );
    let h = Harness::start_with(Options {
        queues: Some(sqs(&client, &missing, &missing)),
        ..Options::default()
    })
    .await;
    let (status, answer) = h
        .post_signed("/event", &fixture("entry-created.json"))
        .await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (503, Some("queue_unavailable")),
        "{answer}"
    );
    assert!(!answer.to_string().contains("123456789012"));
    let (status, ready) = h
        .wait_for_status("/health/ready", 503, Duration::from_secs(5))
        .await;
    assert_eq!(status, 503);
    assert_eq!(ready["checks"]["queues"]["ok"], false);
}
