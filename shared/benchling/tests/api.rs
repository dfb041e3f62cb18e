//! The Benchling client against the Benchling stand-in over real HTTP on 127.0.0.1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bw_benchling::{
    BenchlingClient, BenchlingError, ClientOptions, Credentials, NameLookup, NewAppCanvas,
    RateLimit, RetryOptions, TaskStatus, TransportKind,
};
use bw_config::{Redacted, SecretWatch};
use bw_contracts::{CanvasId, EntryId, FeatureId};
use bw_standin::benchling::{BenchlingStandIn, ENTRY_FIXTURE, FIXTURE_ENTRY_ID, Fault, TaskScript};
use serde_json::{Value, json};
use tokio::sync::watch;
use url::Url;

const CLIENT_ID: &str = "standin-client";
const SECRET: &str = "very-secret-value";

fn credentials(client_id: &str, secret: &str) -> Credentials {
    Credentials {
        tenant: "standin".to_owned(),
        client_id: client_id.to_owned(),
        client_secret: Redacted::new(secret),
    }
}

/// Production behaviour with test-sized waits and no practical rate limit.
fn options(base: &str) -> ClientOptions {
    ClientOptions {
        base_url: Some(Url::parse(base).unwrap()),
        request_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        retry: RetryOptions {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(20),
            max_wait: Duration::from_secs(2),
        },
        rate_limit: RateLimit {
            requests: 1000,
            per: Duration::from_secs(1),
        },
        ..ClientOptions::default()
    }
}

fn client_with(options: ClientOptions) -> BenchlingClient {
    BenchlingClient::new(Arc::new(credentials(CLIENT_ID, SECRET)), options).unwrap()
}

fn client(stand_in: &BenchlingStandIn) -> BenchlingClient {
    client_with(options(&stand_in.url()))
}

fn entry_id() -> EntryId {
    EntryId::parse(FIXTURE_ENTRY_ID).unwrap()
}

fn entry_requests(stand_in: &BenchlingStandIn) -> usize {
    stand_in
        .requests_to("GET", &format!("/api/v2/entries/{FIXTURE_ENTRY_ID}"))
        .len()
}

#[tokio::test]
async fn entry_is_typed_and_keeps_its_raw_json() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    let entry = client(&stand_in).get_entry(&entry_id()).await.unwrap();

    assert_eq!(entry.id.as_str(), FIXTURE_ENTRY_ID);
    assert_eq!(entry.display_id, "EXP25000007");
    assert_eq!(entry.name, "quiltable");
    assert!(entry.web_url.ends_with("/etr_0uKCQZ8f-quiltable/edit"));
    assert_eq!(
        entry.created_at.to_rfc3339(),
        "2025-03-24T21:34:16.262367+00:00"
    );
    assert_eq!(
        entry.modified_at.to_rfc3339(),
        "2025-03-30T23:37:22.777296+00:00"
    );
    assert_eq!(entry.creator.unwrap().handle.as_deref(), Some("eprabhakar"));
    assert_eq!(entry.authors.len(), 1);
    let fixture: Value = serde_json::from_str(ENTRY_FIXTURE).unwrap();
    assert_eq!(entry.raw, fixture["entry"]);

    let token = &stand_in.requests_to("POST", "/api/v2/token")[0];
    assert_eq!(token.header("authorization"), Some("Basic"));
    assert_eq!(
        token.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        token.body.as_deref(),
        Some(&b"grant_type=client_credentials"[..])
    );
    let get = &stand_in.requests_to("GET", "/api/v2/entries/")[0];
    assert_eq!(get.header("authorization"), Some("Bearer"));
}

#[tokio::test]
async fn a_missing_entry_is_not_found_permanent_and_not_retried() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    let missing = EntryId::parse("etr_missing").unwrap();
    let err = client(&stand_in).get_entry(&missing).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.is_permanent());
    assert!(err.to_string().contains("Entry not found"), "{err}");
    assert_eq!(
        stand_in
            .requests_to("GET", "/api/v2/entries/etr_missing")
            .len(),
        1
    );
}

#[tokio::test]
async fn one_token_serves_every_clone_and_task() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    let client = client(&stand_in);
    let calls = (0..6).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.get_entry(&entry_id()).await })
    });
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(stand_in.token_requests(), 1);
}

#[tokio::test]
async fn the_token_is_refreshed_shortly_before_it_expires() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    // 2 s lifetime, 1 s buffer (the minimum): the token is dropped after 1 s.
    stand_in.set_token_lifetime(2);
    let client = client(&stand_in);
    client.get_entry(&entry_id()).await.unwrap();
    client.get_entry(&entry_id()).await.unwrap();
    assert_eq!(stand_in.token_requests(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    client.get_entry(&entry_id()).await.unwrap();
    assert_eq!(stand_in.token_requests(), 2);
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_retries_once() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    let client = client(&stand_in);
    client.get_entry(&entry_id()).await.unwrap();
    stand_in.expire_tokens();
    client.get_entry(&entry_id()).await.unwrap();
    assert_eq!(stand_in.token_requests(), 2);
    assert_eq!(entry_requests(&stand_in), 3);

    // A 401 that persists after the refresh is returned, as transient (a rotation may be
    // under way), after exactly one retry.
    stand_in.inject(Fault::Status(401), 5);
    let err = client.get_entry(&entry_id()).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_permanent());
    assert_eq!(stand_in.token_requests(), 3);
    assert_eq!(entry_requests(&stand_in), 5);
}

#[tokio::test]
async fn rotated_credentials_are_used_without_a_restart() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    let (tx, rx) = watch::channel(credentials(CLIENT_ID, SECRET));
    let client = BenchlingClient::new(Arc::new(rx), options(&stand_in.url())).unwrap();
    client.get_entry(&entry_id()).await.unwrap();

    // Benchling now accepts only the new secret; the client sees it on its next call and
    // drops the token cached for the old one.
    stand_in.set_credentials(CLIENT_ID, "rotated-secret");
    tx.send(credentials(CLIENT_ID, "rotated-secret")).unwrap();
    client.get_entry(&entry_id()).await.unwrap();
    assert_eq!(stand_in.token_requests(), 2);
}

#[tokio::test]
async fn bad_credentials_fail_without_revealing_the_secret() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, "another-secret");
    let err = client(&stand_in).get_entry(&entry_id()).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(err.to_string().contains("invalid_client"), "{err}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("standin-token"), "{shown}");
    }
}

#[tokio::test]
async fn no_credentials_yet_is_a_transient_error() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    let watch = SecretWatch::unconfigured("BenchlingSecret is not set");
    let client = BenchlingClient::new(Arc::new(watch), options(&stand_in.url())).unwrap();
    let err = client.get_entry(&entry_id()).await.unwrap_err();
    assert!(matches!(err, BenchlingError::NoCredentials(_)), "{err}");
    assert!(!err.is_permanent());
    assert!(stand_in.requests().is_empty());
}

#[tokio::test]
async fn a_429_waits_as_long_as_retry_after_says() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    let client = client(&stand_in);
    client.get_entry(&entry_id()).await.unwrap();
    stand_in.inject(Fault::RateLimited(1), 1);
    let start = Instant::now();
    client.get_entry(&entry_id()).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(entry_requests(&stand_in), 3);
}

#[tokio::test]
async fn a_503_burst_is_retried_through() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    stand_in.inject(Fault::Status(503), 3);
    client(&stand_in).get_entry(&entry_id()).await.unwrap();
    assert_eq!(entry_requests(&stand_in), 4);
}

#[tokio::test]
async fn a_400_is_permanent_and_not_retried() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    stand_in.inject(Fault::Status(400), 1);
    let err = client(&stand_in).get_entry(&entry_id()).await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.is_permanent());
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(entry_requests(&stand_in), 1);
}

#[tokio::test]
async fn attempts_are_bounded() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    let mut options = options(&stand_in.url());
    options.retry.max_attempts = 3;
    stand_in.inject(Fault::Status(503), 10);
    let err = client_with(options)
        .get_entry(&entry_id())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert!(!err.is_permanent());
    assert_eq!(entry_requests(&stand_in), 3);
}

#[tokio::test]
async fn timeouts_are_retried() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    let mut options = options(&stand_in.url());
    options.request_timeout = Duration::from_millis(300);
    let client = client_with(options.clone());
    stand_in.inject(Fault::Delay(Duration::from_millis(800)), 1);
    client.get_entry(&entry_id()).await.unwrap();
    assert_eq!(entry_requests(&stand_in), 2);

    options.retry.max_attempts = 1;
    stand_in.inject(Fault::Delay(Duration::from_millis(800)), 1);
    let err = client_with(options)
        .get_entry(&entry_id())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BenchlingError::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_permanent());
}

#[tokio::test]
async fn connection_errors_are_retried_a_bounded_number_of_times() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut options = options(&format!("http://127.0.0.1:{port}"));
    options.retry.max_attempts = 3;
    let err = client_with(options)
        .get_entry(&entry_id())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BenchlingError::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_permanent());
}

#[tokio::test]
async fn the_rate_limiter_paces_all_clones_together() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    let mut options = options(&stand_in.url());
    options.rate_limit = RateLimit {
        requests: 5,
        per: Duration::from_secs(1),
    };
    let client = client_with(options);
    let start = Instant::now();
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get_entry(&entry_id()).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    // 11 requests (one token, ten entries) at 5 per second after a burst of 5: ≥ 1.2 s.
    assert!(
        start.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(entry_requests(&stand_in), 10);
}

#[tokio::test]
async fn an_export_runs_then_succeeds_with_a_download_url() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    stand_in.add_download("e.zip", b"PK\x05\x06zip bytes".to_vec());
    stand_in.push_task(TaskScript::Succeed {
        running: 2,
        download: "e.zip".to_owned(),
    });
    let client = client(&stand_in);
    let task = client.start_export(&entry_id()).await.unwrap();
    let body = stand_in.requests_to("POST", "/api/v2/exports")[0].json();
    assert_eq!(body, Some(json!({"id": FIXTURE_ENTRY_ID})));

    assert_eq!(client.get_task(&task).await.unwrap(), TaskStatus::Running);
    assert_eq!(client.get_task(&task).await.unwrap(), TaskStatus::Running);
    let TaskStatus::Succeeded { download_url } = client.get_task(&task).await.unwrap() else {
        panic!("the task should have succeeded");
    };
    assert_eq!(download_url.as_str(), stand_in.download_url("e.zip"));
    assert!(bw_benchling::PlainHttpHosts::default().is_secure(&download_url));

    // The download route serves registered bytes and streams registered files.
    let bytes = reqwest::get(download_url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"PK\x05\x06zip bytes");
    let path = std::env::temp_dir().join(format!("bw-standin-{}.zip", std::process::id()));
    std::fs::write(&path, vec![7u8; 300_000]).unwrap();
    stand_in.add_download_file("big.zip", &path);
    let bytes = reqwest::get(stand_in.download_url("big.zip"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len(), 300_000);
    std::fs::remove_file(&path).unwrap();
}

#[tokio::test]
async fn a_failed_export_carries_benchlings_reason() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    stand_in.push_task(TaskScript::Fail {
        running: 1,
        message: "Export failed".to_owned(),
        errors: vec!["Entry is locked for review".to_owned()],
    });
    let client = client(&stand_in);
    let task = client.start_export(&entry_id()).await.unwrap();
    assert_eq!(client.get_task(&task).await.unwrap(), TaskStatus::Running);
    assert_eq!(
        client.get_task(&task).await.unwrap(),
        TaskStatus::Failed {
            message: "Export failed; Entry is locked for review".to_owned()
        }
    );
    let err = BenchlingError::ExportFailed {
        task_id: task.to_string(),
        message: "Export failed".to_owned(),
    };
    assert!(err.is_permanent());

    let missing = EntryId::parse("etr_gone").unwrap();
    let err = client.start_export(&missing).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

#[tokio::test]
async fn canvases_are_created_read_and_updated_with_the_bodies_benchling_expects() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    let client = client(&stand_in);
    let blocks = json!([{"type": "MARKDOWN", "id": "md", "value": "# Hello"}]);
    let created = client
        .create_app_canvas(&NewAppCanvas {
            app_id: None,
            feature_id: FeatureId::parse("quilt_integration").unwrap(),
            resource_id: FIXTURE_ENTRY_ID.to_owned(),
            enabled: true,
            blocks: blocks.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        stand_in.requests_to("POST", "/api/v2/app-canvases")[0].json(),
        Some(
            json!({"featureId": "quilt_integration", "resourceId": FIXTURE_ENTRY_ID,
            "enabled": true, "blocks": blocks})
        )
    );

    let read = client.get_app_canvas(&created.id).await.unwrap();
    assert_eq!(read.resource_id.as_deref(), Some(FIXTURE_ENTRY_ID));
    assert_eq!(read.feature_id.unwrap().as_str(), "quilt_integration");

    let new_blocks = json!([{"type": "BUTTON", "id": "b1", "text": "Refresh", "enabled": true}]);
    let updated = client
        .update_app_canvas(&created.id, true, new_blocks.clone())
        .await
        .unwrap();
    assert_eq!(updated.blocks, new_blocks);
    let patch = &stand_in.requests_to("PATCH", &format!("/api/v2/app-canvases/{}", created.id))[0];
    assert_eq!(
        patch.json(),
        Some(json!({"enabled": true, "blocks": new_blocks}))
    );
    assert_eq!(
        stand_in.canvas(created.id.as_str()).unwrap()["blocks"],
        new_blocks
    );

    let deleted = CanvasId::parse("cnvs_deleted").unwrap();
    let err = client.get_app_canvas(&deleted).await.unwrap_err();
    assert!(err.is_not_found() && err.is_permanent(), "{err}");
}

#[tokio::test]
async fn canvas_creation_is_never_repeated_after_a_gateway_error_but_is_after_429() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    let client = client(&stand_in);
    let canvas = NewAppCanvas {
        app_id: None,
        feature_id: FeatureId::parse("quilt_integration").unwrap(),
        resource_id: FIXTURE_ENTRY_ID.to_owned(),
        enabled: true,
        blocks: json!([]),
    };
    stand_in.inject(Fault::Status(502), 1);
    let err = client.create_app_canvas(&canvas).await.unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert_eq!(
        stand_in.requests_to("POST", "/api/v2/app-canvases").len(),
        1,
        "a 502 may have created the canvas: not retried"
    );
    stand_in.inject(Fault::RateLimited(0), 1);
    client.create_app_canvas(&canvas).await.unwrap();
    assert_eq!(
        stand_in.requests_to("POST", "/api/v2/app-canvases").len(),
        3,
        "a 429 was refused before any effect: retried"
    );
}

#[tokio::test]
async fn names_are_looked_up_in_bulk_for_every_supported_link_type() {
    let stand_in = BenchlingStandIn::start(CLIENT_ID, SECRET);
    let client = client(&stand_in);
    stand_in.add_entity("custom_entity", "bfi_a", "Plasmid A");
    stand_in.add_entity("custom_entity", "bfi_b", "Plasmid B");
    let lookup = NameLookup::for_link_type("custom_entity").unwrap();
    let names = client
        .entity_names(lookup, &["bfi_a", "bfi_b", "bfi_a", "bfi_unknown"])
        .await
        .unwrap();
    assert_eq!(names.len(), 2);
    assert_eq!(names["bfi_b"], "Plasmid B");
    let requests = stand_in.requests_to("GET", "/api/v2/custom-entities:bulk-get?");
    assert_eq!(requests.len(), 1, "one request for all ids");
    assert!(
        requests[0]
            .path
            .ends_with("customEntityIds=bfi_a%2Cbfi_b%2Cbfi_unknown"),
        "{}",
        requests[0].path
    );

    for link_type in [
        "dna_sequence",
        "aa_sequence",
        "batch",
        "container",
        "plate",
        "box",
        "location",
    ] {
        let id = format!("id_{link_type}");
        stand_in.add_entity(link_type, &id, link_type);
        let lookup = NameLookup::for_link_type(link_type).unwrap();
        let names = client.entity_names(lookup, &[id.as_str()]).await.unwrap();
        assert_eq!(names.get(&id).map(String::as_str), Some(link_type));
    }
    let entries = NameLookup::for_link_type("entry").unwrap();
    let names = client
        .entity_names(entries, &[FIXTURE_ENTRY_ID])
        .await
        .unwrap();
    assert_eq!(names[FIXTURE_ENTRY_ID], "quiltable");
    for unsupported in ["user", "folder", "link", ""] {
        assert!(NameLookup::for_link_type(unsupported).is_none());
    }
}

#[test]
fn plain_http_is_refused_except_on_loopback() {
    let make = |base: &str| {
        let options = ClientOptions {
            base_url: Some(Url::parse(base).unwrap()),
            ..ClientOptions::default()
        };
        BenchlingClient::new(Arc::new(credentials(CLIENT_ID, SECRET)), options)
    };
    assert!(matches!(
        make("http://acme.benchling.com"),
        Err(BenchlingError::InvalidBaseUrl { .. })
    ));
    assert!(make("http://127.0.0.1:9").is_ok());
    assert!(make("https://acme.benchling.com").is_ok());
}
