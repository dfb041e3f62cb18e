//! Degraded start: without a usable Benchling secret the service is up but not ready, refuses
//! webhooks with 503 (Benchling retries), and recovers by itself when the secret appears.

use std::time::Duration;

use bw_contracts::ExportJob;
use bw_testkit::moto::Moto;

use crate::harness::{Harness, Options, Secret, drain, fixture, secret_json};

async fn with_managed_secret(name: String, client: aws_sdk_secretsmanager::Client) -> Harness {
    Harness::start_with(Options {
        secret: Secret::Manager { name, client },
        ..Options::default()
    })
    .await
}

/// The readiness answer once the first secret load has finished, one way or the other.
async fn first_secret_verdict(h: &Harness) -> (u16, serde_json::Value) {
    let loaded = |_, ready: &serde_json::Value| ready["checks"]["secret"]["error"] != "loading";
    h.wait_until("/health/ready", loaded, Duration::from_secs(10))
        .await
}

#[tokio::test]
async fn a_secret_created_later_is_picked_up_without_restart() {
    let moto = Moto::shared();
    let client = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let name = Moto::unique_name("benchling");
    let h = with_managed_secret(name.clone(), client.clone()).await;

    let (status, ready) = first_secret_verdict(&h).await;
    assert_eq!(status, 503);
    assert_eq!(ready["checks"]["secret"]["ok"], false);
    assert!(
        ready["checks"]["secret"]["error"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{ready}"
    );
    let (status, health) = h.get("/health").await;
    assert_eq!((status, health["mode"].as_str()), (200, Some("degraded")));
    let body = fixture("entry-created.json");
    let (status, answer) = h.post_signed("/event", &body).await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (503, Some("benchling_secret_unavailable"))
    );
    assert!(answer["action"].as_str().is_some());

    client
        .create_secret()
        .name(&name)
        .secret_string(secret_json())
        .send()
        .await
        .expect("create the secret in moto");
    let (status, ready) = h
        .wait_for_status("/health/ready", 200, Duration::from_secs(10))
        .await;
    assert_eq!(status, 200, "{ready}");
    let (status, _) = h.post_signed("/event", &body).await;
    assert_eq!(status, 202);
    assert_eq!(drain::<ExportJob>(h.export.as_ref()).await.len(), 1);
}

#[tokio::test]
async fn an_invalid_secret_is_reported_by_key_without_values() {
    let moto = Moto::shared();
    let client = aws_sdk_secretsmanager::Client::new(&moto.sdk_config().await);
    let name = Moto::unique_name("benchling-invalid");
    client
        .create_secret()
        .name(&name)
        .secret_string(
            r#"{"tenant":"t","client_secret":"hunter2-e2e","user_bucket":"Not_A_Bucket"}"#,
        )
        .send()
        .await
        .unwrap();
    let h = with_managed_secret(name, client).await;
    let (status, ready) = first_secret_verdict(&h).await;
    assert_eq!(status, 503);
    let error = ready["checks"]["secret"]["error"].as_str().unwrap();
    assert!(
        error.contains("client_id")
            && error.contains("app_definition_id")
            && error.contains("user_bucket"),
        "{error}"
    );
    assert!(!ready.to_string().contains("hunter2"));
}

#[tokio::test]
async fn without_benchling_secret_every_webhook_is_503() {
    let h = Harness::start_with(Options {
        secret: Secret::Unset,
        ..Options::default()
    })
    .await;
    let (status, answer) = h
        .post_signed("/canvas", &fixture("canvas-created.json"))
        .await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (503, Some("benchling_secret_unavailable"))
    );
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("BenchlingSecret")
    );
    let (status, _) = h.get("/health/ready").await;
    assert_eq!(status, 503);
    let (_, config) = h.get("/config").await;
    assert_eq!(config["mode"], "degraded");
}

#[tokio::test]
async fn a_full_embedded_queue_answers_503_with_retry_after_until_it_drains() {
    let opener = bw_queue::QueueOpener::embedded_with(bw_queue::Capacity {
        messages: 2,
        bytes: 1 << 20,
    });
    let h = Harness::start_with(Options {
        queues: Some(bw_ingress::Queues::open(&opener)),
        ..Options::default()
    })
    .await;
    // Distinct events, so the export queue's deduplication keeps each.
    let webhook = |n: usize| {
        let mut webhook: serde_json::Value =
            serde_json::from_slice(&fixture("entry-updated.json")).unwrap();
        webhook["message"]["id"] = serde_json::json!(format!("evt_full{n}"));
        serde_json::to_vec(&webhook).unwrap()
    };
    for n in 0..2 {
        assert_eq!(h.post_signed("/event", &webhook(n)).await.0, 202);
    }

    // The third finds the queue full: refused as an SQS outage would be, with a time to retry.
    let body = webhook(2);
    let mut request = reqwest::Client::new()
        .post(format!("{}/event", h.url))
        .body(body.clone());
    for (name, value) in h.sign(&body).pairs() {
        request = request.header(name, value);
    }
    let refused = request.send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    let (status, ready) = h.get("/health/ready").await;
    assert_eq!(status, 503);
    let reason = ready["checks"]["queues"]["error"].as_str().unwrap();
    assert!(reason.contains("EMBEDDED_QUEUE_MAX_MESSAGES"), "{ready}");

    // Once the workers take the jobs, the ingress is ready again and the retry goes through.
    assert_eq!(drain::<ExportJob>(h.export.as_ref()).await.len(), 2);
    let (status, _) = h
        .wait_for_status("/health/ready", 200, Duration::from_secs(15))
        .await;
    assert_eq!(status, 200, "ready again once the queue has room");
    assert_eq!(h.post_signed("/event", &body).await.0, 202);
}
