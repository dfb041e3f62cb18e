//! The HTTP surface: routes and stage prefixes, refusals, probes, and what `/config` shows.

use std::time::Duration;

use bw_contracts::ExportJob;

use crate::harness::{Harness, Options, drain, fixture};

#[tokio::test]
async fn webhook_routes_exist_bare_under_any_stage_and_at_the_root() {
    let h = Harness::start().await;
    let body = fixture("entry-created.json");
    for path in [
        "/event",
        "/canvas",
        "/lifecycle",
        "/prod/event",
        "/dev/canvas",
        "/custom-stage/lifecycle",
        "/",
        "/prod",
    ] {
        let (status, answer) = h.post_signed(path, &body).await;
        assert_eq!(status, 202, "{path}: {answer}");
    }
    assert_eq!(drain::<ExportJob>(h.export.as_ref()).await.len(), 8);
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_get_json_errors() {
    let h = Harness::start().await;
    for path in [
        "/nonexistent",
        "/prod/nonexistent",
        "/a/b/c",
        "/prod/config",
    ] {
        let (status, answer) = h.get(path).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (404, Some("Endpoint not found")),
            "{path}"
        );
    }
    let (status, _) = h.post("/a/b/c", b"{}", &[]).await;
    assert_eq!(status, 404);
    let (status, answer) = h.get("/event").await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (405, Some("Method Not Allowed"))
    );
    let (status, _) = h.post("/health", b"", &[]).await;
    assert_eq!(status, 405);
    let response = reqwest::Client::new()
        .put(format!("{}/prod/canvas", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "POST");
}

#[tokio::test]
async fn bad_bodies_are_refused_and_nothing_is_queued() {
    let h = Harness::start().await;
    let (status, answer) = h.post_signed("/event", b"{not json").await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (400, Some("invalid_json"))
    );
    let (status, answer) = h.post_signed("/event", b"{\"message\":\"\xff\"}").await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (400, Some("invalid_utf8"))
    );
    let (status, answer) = h
        .post_signed(
            "/event",
            br#"{"message":{"type":"v2.entry.created","resourceId":"../../etc"}}"#,
        )
        .await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (400, Some("invalid_payload"))
    );
    let huge = vec![b' '; 1024 * 1024 + 1];
    let (status, answer) = h.post_signed("/event", &huge).await;
    assert_eq!(
        (status, answer["reason"].as_str()),
        (413, Some("body_too_large"))
    );
    let limit = vec![b' '; 1024 * 1024];
    let (status, _) = h.post_signed("/event", &limit).await;
    assert_eq!(
        status, 400,
        "a body of exactly 1 MiB is read, then refused as JSON"
    );
    assert!(drain::<ExportJob>(h.export.as_ref()).await.is_empty());
}

#[tokio::test]
async fn unknown_event_types_are_acknowledged_and_ignored() {
    let h = Harness::start().await;
    let (status, answer) = h
        .post_signed(
            "/event",
            br#"{"message":{"type":"v2.assayRun.created","id":"evt_1"}}"#,
        )
        .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("ignored")));
    assert!(drain::<ExportJob>(h.export.as_ref()).await.is_empty());
}

#[tokio::test]
async fn probes_answer_on_bare_and_staged_paths() {
    let h = Harness::start().await;
    for path in ["/health", "/prod/health"] {
        let (status, answer) = h.get(path).await;
        assert_eq!(
            (status, answer["status"].as_str()),
            (200, Some("healthy")),
            "{path}"
        );
    }
    let (status, answer) = h.get("/health/live").await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("alive")));
    let (status, answer) = h
        .wait_for_status("/prod/health/ready", 200, Duration::from_secs(10))
        .await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("ready")),
        "{answer}"
    );
}

#[tokio::test]
async fn config_masks_arns_accounts_and_never_shows_credentials() {
    let h = Harness::start_with(Options {
        env: vec![
            (
                "QuiltStackARN".into(),
                "arn:aws:cloudformation:us-east-1:123456789012:stack/quilt/abc".into(),
            ),
            (
                "PACKAGER_SQS_URL".into(),
                "https://sqs.us-east-1.amazonaws.com/123456789012/quilt-packager".into(),
            ),
            ("QUILT_WEB_HOST".into(), "catalog.example.com".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
        ],
        ..Options::default()
    })
    .await;
    h.wait_for_status("/health/ready", 200, Duration::from_secs(10))
        .await;
    let (status, config) = h.get("/config").await;
    assert_eq!(status, 200);
    let text = config.to_string();
    for secret in ["123456789012", "client-secret-e2e", "client-id-e2e"] {
        assert!(!text.contains(secret), "/config shows {secret}: {text}");
    }
    assert_eq!(
        config["aws"]["quilt_stack_arn"],
        "arn:aws:cloudformation:us-east-1:***:stack/quilt/abc"
    );
    assert_eq!(
        config["quilt"]["packager_queue_url"],
        "https://sqs.us-east-1.amazonaws.com/***/quilt-packager"
    );
    assert_eq!(config["security"]["webhook_verification_enabled"], true);
    assert_eq!(config["quilt"]["bucket"], "e2e-bucket");
}

#[tokio::test]
async fn verification_can_be_turned_off_only_by_the_environment_and_says_so() {
    let h = Harness::start_with(Options {
        env: vec![("ENABLE_WEBHOOK_VERIFICATION".into(), "false".into())],
        ..Options::default()
    })
    .await;
    h.wait_for_status("/health/ready", 200, Duration::from_secs(10))
        .await;
    let (status, _) = h.post("/event", &fixture("entry-created.json"), &[]).await;
    assert_eq!(status, 202);
    let (_, config) = h.get("/config").await;
    assert_eq!(config["security"]["webhook_verification_enabled"], false);
    assert_eq!(config["security"]["verification_allowed_by_env"], false);
}
