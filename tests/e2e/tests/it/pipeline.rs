//! The local pipeline (every service in one process, in-process queues, a directory of
//! buckets): a signed entry webhook at the ingress ends as the entry's files on disk, with the
//! exporter talking to the Benchling stand-in over HTTP, and the packager's metadata files beside
//! them.

use std::time::Duration;

use bw_config::Env;
use bw_local::LocalConfig;
use bw_testkit::archive::{build, deflated};
use bw_testkit::benchling::{BenchlingStandIn, FIXTURE_ENTRY_ID, TaskScript};
use bw_testkit::jwks::JwksServer;
use bw_testkit::sample::pattern;
use bw_testkit::signer::{SigningKey, now_unix};
use bw_testkit::stub::free_port;
use serde_json::Value;
use tokio::sync::watch;

use crate::harness::{APP, fixture, secret_json};

#[tokio::test]
async fn an_entry_webhook_becomes_the_entrys_files_on_disk() {
    let key = SigningKey::generate("key-1");
    let jwks = JwksServer::start(APP, &[&key]);
    let secret: Value = serde_json::from_str(&secret_json()).unwrap();
    let benchling = BenchlingStandIn::start(
        secret["client_id"].as_str().unwrap(),
        secret["client_secret"].as_str().unwrap(),
    );
    let report = pattern(200 * 1024, 9);
    benchling.add_download(
        "export.zip",
        build(&[("results/report.pdf", deflated(), &report)]),
    );
    benchling.push_task(TaskScript::Succeed {
        running: 1,
        download: "export.zip".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let secret_path = dir.path().join("secret.json");
    std::fs::write(&secret_path, secret_json()).unwrap();
    let buckets = dir.path().join("buckets");
    let port = free_port();
    let (jwks_url, api_url) = (jwks.base_url(), benchling.url());
    let env = move || {
        Env::from_pairs([
            ("HOST", "127.0.0.1".to_owned()),
            ("PORT", port.to_string()),
            ("BenchlingSecret", format!("file:{}", secret_path.display())),
            ("BENCHLING_JWKS_BASE_URL", jwks_url.clone()),
            ("BENCHLING_API_BASE_URL", api_url.clone()),
            ("EXPORT_FIRST_POLL_MS", "10".to_owned()),
            ("OBJECT_STORE_DIR", buckets.display().to_string()),
            ("SHUTDOWN_TIMEOUT_SECS", "2".to_owned()),
        ])
    };
    let config = LocalConfig::from_env(&env).unwrap();
    let (stop, stopped) = watch::channel(false);
    let pipeline = tokio::spawn(bw_local::run(config, stopped));

    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("{url}/health/ready")).send().await
            && response.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the pipeline never became ready");

    let mut webhook: Value = serde_json::from_slice(&fixture("entry-updated.json")).unwrap();
    webhook["message"]["resourceId"] = Value::from(FIXTURE_ENTRY_ID);
    let body = serde_json::to_vec(&webhook).unwrap();
    let mut request = http.post(format!("{url}/event")).body(body.clone());
    for (name, value) in key.sign("msg_pipeline", now_unix(), &body).pairs() {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status(), 202);

    let written = dir
        .path()
        .join("buckets/e2e-bucket/benchling/EXP25000007/results/report.pdf");
    let mut found = None;
    for _ in 0..200 {
        if let Ok(bytes) = std::fs::read(&written) {
            found = Some(bytes);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(found == Some(report), "the attachment never arrived intact");
    assert_eq!(benchling.requests_to("POST", "/api/v2/exports").len(), 1);
    // The packager follows with the metadata files, README last.
    let package = dir.path().join("buckets/e2e-bucket/benchling/EXP25000007");
    let mut readme = None;
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(package.join("README.md")) {
            readme = Some(text);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let readme = readme.expect("the packager wrote the README");
    assert!(
        readme.contains("- `results/report.pdf` (204800 bytes)"),
        "{readme}"
    );
    let entry: Value =
        serde_json::from_slice(&std::fs::read(package.join("entry.json")).unwrap()).unwrap();
    assert_eq!(entry["package_name"], "benchling/EXP25000007");
    assert_eq!(entry["webhook_data"]["type"], "v2.entry.updated.fields");

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), pipeline)
        .await
        .expect("the pipeline stops")
        .unwrap()
        .unwrap();
}
