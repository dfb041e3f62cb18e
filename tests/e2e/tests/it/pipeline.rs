//! The local pipeline (every service in one process, in-process queues, a directory of
//! buckets): a signed entry webhook at the ingress ends as the entry's files on disk, with the
//! exporter talking to the Benchling stand-in over HTTP, and the packager's metadata files beside
//! them and Quilt's packager stand-in's revision; signed canvas webhooks end as canvases created
//! and updated in the stand-in.

use std::time::Duration;

use bw_config::Env;
use bw_contracts::{Button, ButtonAction, EntryId};
use bw_local::LocalConfig;
use bw_standin::archive::{build, deflated};
use bw_standin::benchling::{BenchlingStandIn, FIXTURE_ENTRY_ID, TaskScript};
use bw_standin::stub::free_port;
use bw_testkit::jwks::JwksServer;
use bw_testkit::sample::pattern;
use bw_testkit::signer::{SigningKey, now_unix};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::harness::{APP, fixture, markdown, secret_json};

/// The whole pipeline running in-process against the Benchling stand-in.
struct Pipeline {
    url: String,
    http: reqwest::Client,
    key: SigningKey,
    benchling: BenchlingStandIn,
    dir: tempfile::TempDir,
    stop: watch::Sender<bool>,
    running: JoinHandle<Result<(), bw_local::LocalError>>,
    _jwks: JwksServer,
}

impl Pipeline {
    /// Starts every service and waits until the ingress is ready; `export` is what the
    /// stand-in serves as the entry's export.
    async fn start(export: Vec<u8>) -> Self {
        let key = SigningKey::generate("key-1");
        let jwks = JwksServer::start(APP, &[&key]);
        let secret: Value = serde_json::from_str(&secret_json()).unwrap();
        let benchling = BenchlingStandIn::start(
            secret["client_id"].as_str().unwrap(),
            secret["client_secret"].as_str().unwrap(),
        );
        benchling.add_download("export.zip", export);
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
        let running = tokio::spawn(bw_local::run(config, stopped));
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
        Self {
            url,
            http,
            key,
            benchling,
            dir,
            stop,
            running,
            _jwks: jwks,
        }
    }

    /// Posts a signed webhook to `path` and returns the status.
    async fn post_signed(&self, path: &str, webhook_id: &str, webhook: &Value) -> u16 {
        let body = serde_json::to_vec(webhook).unwrap();
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
            .body(body.clone());
        for (name, value) in self.key.sign(webhook_id, now_unix(), &body).pairs() {
            request = request.header(name, value);
        }
        request.send().await.unwrap().status().as_u16()
    }

    /// A file under the package bucket, once it exists.
    async fn file(&self, path: &str) -> Vec<u8> {
        let path = self.dir.path().join("buckets/e2e-bucket").join(path);
        for _ in 0..200 {
            if let Ok(bytes) = std::fs::read(&path) {
                return bytes;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} never appeared", path.display())
    }

    /// The body of the `count`-th request of `method` whose path starts with `path`.
    async fn request(&self, method: &str, path: &str, count: usize) -> Value {
        for _ in 0..400 {
            if let Some(request) = self.benchling.requests_to(method, path).get(count - 1) {
                return request.json().expect("a JSON body");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {method} #{count} to {path}")
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.running)
            .await
            .expect("the pipeline stops")
            .unwrap()
            .unwrap();
    }
}

#[tokio::test]
async fn an_entry_webhook_becomes_the_entrys_files_on_disk() {
    let report = pattern(200 * 1024, 9);
    let pipeline = Pipeline::start(build(&[("results/report.pdf", deflated(), &report)])).await;
    pipeline.benchling.push_task(TaskScript::Succeed {
        running: 1,
        download: "export.zip".into(),
    });
    let mut webhook: Value = serde_json::from_slice(&fixture("entry-updated.json")).unwrap();
    webhook["message"]["resourceId"] = Value::from(FIXTURE_ENTRY_ID);
    assert_eq!(
        pipeline
            .post_signed("/event", "msg_pipeline", &webhook)
            .await,
        202
    );

    let written = pipeline
        .file("benchling/EXP25000007/results/report.pdf")
        .await;
    assert!(written == report, "the attachment did not arrive intact");
    assert_eq!(
        pipeline
            .benchling
            .requests_to("POST", "/api/v2/exports")
            .len(),
        1
    );
    // The packager follows with the metadata files, README last.
    let readme = String::from_utf8(pipeline.file("benchling/EXP25000007/README.md").await).unwrap();
    assert!(
        readme.contains("- `results/report.pdf` (204800 bytes)"),
        "{readme}"
    );
    let entry: Value =
        serde_json::from_slice(&pipeline.file("benchling/EXP25000007/entry.json").await).unwrap();
    assert_eq!(entry["package_name"], "benchling/EXP25000007");
    assert_eq!(entry["webhook_data"]["type"], "v2.entry.updated.fields");
    pipeline.stop().await;
}

#[tokio::test]
async fn canvas_webhooks_create_the_canvas_and_update_runs_the_whole_loop() {
    let pipeline = Pipeline::start(build(&[("plate.csv", deflated(), b"A1,0.5\n")])).await;
    pipeline.benchling.push_task(TaskScript::Succeed {
        running: 0,
        download: "export.zip".into(),
    });
    // Benchling asks for a canvas on the entry: no canvas id yet.
    let mut initialized: Value =
        serde_json::from_slice(&fixture("canvas-initialized.json")).unwrap();
    let message = initialized["message"].as_object_mut().unwrap();
    message.remove("canvasId");
    message.insert("resourceId".to_owned(), json!(FIXTURE_ENTRY_ID));
    message.insert("featureId".to_owned(), json!("quilt_entry"));
    assert_eq!(
        pipeline
            .post_signed("/canvas", "msg_initialized", &initialized)
            .await,
        202
    );
    let created = pipeline.request("POST", "/api/v2/app-canvases", 1).await;
    assert_eq!(created["featureId"], "quilt_entry");
    assert_eq!(created["resourceId"], FIXTURE_ENTRY_ID);
    assert!(markdown(&created).contains("## EXP25000007"), "{created}");
    // The entry was never published, so inserting its canvas exports it at once.
    assert!(markdown(&created).contains("⏳ *Updating...*"), "{created}");
    let record: Value = serde_json::from_slice(
        &pipeline
            .file(&format!(
                ".benchling-webhook/entries/{FIXTURE_ENTRY_ID}/canvas.json"
            ))
            .await,
    )
    .unwrap();
    let canvas = record["canvas_id"].as_str().expect("the canvas id is kept");

    let patch = format!("/api/v2/app-canvases/{canvas}");
    let exported = pipeline.request("PATCH", &patch, 1).await;
    assert!(
        markdown(&exported).contains("✅ *Updated at "),
        "{exported}"
    );
    pipeline.file("benchling/EXP25000007/plate.csv").await;
    // Quilt's stand-in builds the revision and announces it: the canvas is refreshed once more.
    let announced = pipeline.request("PATCH", &patch, 2).await;
    assert!(
        markdown(&announced).contains("✅ *Updated at "),
        "{announced}"
    );
    pipeline
        .file(".quilt/named_packages/benchling/EXP25000007/latest")
        .await;

    // The user clicks "Update Package" on it.
    let entry: EntryId = FIXTURE_ENTRY_ID.parse().unwrap();
    let button = Button::new(entry, ButtonAction::Update).encode().unwrap();
    let mut click: Value = serde_json::from_slice(&fixture("canvas-interaction.json")).unwrap();
    click["message"]["canvasId"] = json!(canvas);
    click["message"]["buttonId"] = json!(button);
    assert_eq!(
        pipeline.post_signed("/canvas", "msg_click", &click).await,
        202
    );
    let updating = pipeline.request("PATCH", &patch, 3).await;
    assert!(
        markdown(&updating).contains("⏳ *Updating...*"),
        "{updating}"
    );
    // The export finds the version announced and in Quilt's registry: up to date.
    let updated = pipeline.request("PATCH", &patch, 4).await;
    assert!(
        markdown(&updated).contains("✅ *Up to date:* revision `"),
        "{updated}"
    );
    pipeline.stop().await;
}
