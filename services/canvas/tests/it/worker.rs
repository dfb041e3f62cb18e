//! The canvas worker end to end, in-process: canvas jobs and package events in through SQS on
//! moto, the Quilt registry and bookkeeping records in S3 on moto, linked packages from Athena on
//! moto, and every canvas create and update checked as the Benchling stand-in received it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bw_canvas::athena::{AthenaOptions, PackageQuery};
use bw_canvas::{CanvasConfig, Connections};
use bw_config::Env;
use bw_contracts::bookkeeping::{self, CanvasRecord, PublishedRecord};
use bw_contracts::{
    Button, ButtonAction, CanvasAction, CanvasJob, EntryId, EventType, ExportJob, JobEnvelope,
    PackageTarget, Trigger,
};
use bw_queue::{OutgoingMessage, Queue};
use bw_standin::benchling::{FIXTURE_ENTRY_ID, RecordedRequest};
use bw_testkit::moto::Moto;
use bw_testkit::rig::{RunningService, ServiceRig};
use serde_json::{Value, json};

const CLIENT_ID: &str = "canvas-client";
const CLIENT_SECRET: &str = "canvas-secret-DO-NOT-LOG";
const PACKAGE: &str = "benchling/EXP25000007";

struct Rig {
    base: ServiceRig,
    sqs: aws_sdk_sqs::Client,
    canvas: Arc<dyn Queue>,
    canvas_url: String,
    canvas_dead_letter: Arc<dyn Queue>,
    export: Arc<dyn Queue>,
    events: Arc<dyn Queue>,
    events_url: String,
    events_dead_letter: Arc<dyn Queue>,
    athena: Option<aws_sdk_athena::Client>,
    started: chrono::DateTime<chrono::Utc>,
    _service: RunningService<bw_canvas::RunError>,
}

impl Rig {
    /// A running canvas worker; `athena` names a workgroup to run linked-package queries in.
    async fn start(athena: Option<&str>) -> Self {
        let base = ServiceRig::new("canvas", CLIENT_ID, CLIENT_SECRET).await;
        let moto = base.moto;
        let (canvas_url, canvas_dead_letter) = moto
            .create_queue_with_dead_letter(&Moto::unique_name("canvas"), true, 30, 3)
            .await;
        let export_url = moto
            .create_queue(&Moto::unique_name("export"), true, 30, None)
            .await;
        let (events_url, events_dead_letter) = moto
            .create_queue_with_dead_letter(&Moto::unique_name("package-events"), false, 30, 3)
            .await;
        let config = CanvasConfig::from_env(Env::from_pairs([
            ("BENCHLING_API_BASE_URL", base.benchling.url()),
            ("BENCHLING_RETRY_INITIAL_MS", "20".to_owned()),
            ("QUILT_WEB_HOST", "catalog.example.com".to_owned()),
            // moto holds a FIFO group busy for a whole long poll begun while one of its
            // jobs ran; short polls keep the steps of a test quick.
            ("RECEIVE_WAIT_SECS", "1".to_owned()),
        ]))
        .unwrap();
        let athena_client = match athena {
            Some(_) => Some(aws_sdk_athena::Client::new(&moto.sdk_config().await)),
            None => None,
        };
        let query = match (athena, &athena_client) {
            (Some(workgroup), Some(client)) => {
                client
                    .create_work_group()
                    .name(workgroup)
                    .send()
                    .await
                    .unwrap();
                let options = AthenaOptions {
                    first_poll: Duration::from_millis(10),
                    ..AthenaOptions::new("quilt_catalog", workgroup)
                };
                Some(PackageQuery::new(client.clone(), options).unwrap())
            }
            _ => None,
        };
        let connections = Connections {
            queues: bw_canvas::Queues {
                canvas: base.queue(&canvas_url),
                export: base.queue(&export_url),
                package_events: Some(base.queue(&events_url)),
            },
            secret: base.secret(),
            buckets: base.buckets().await,
            query,
        };
        let service = RunningService::spawn(config, connections).await;
        Self {
            canvas: base.queue(&canvas_url),
            canvas_url,
            canvas_dead_letter: base.queue(&canvas_dead_letter),
            export: base.queue(&export_url),
            events: base.queue(&events_url),
            events_url,
            events_dead_letter: base.queue(&events_dead_letter),
            sqs: moto.sqs_client().await,
            athena: athena_client,
            started: chrono::Utc::now(),
            base,
            _service: service,
        }
    }

    /// Registers the entry's canvas in the stand-in.
    fn add_canvas(&self, id: &str) {
        self.base.benchling.add_canvas(json!({
            "id": id,
            "featureId": "quilt_entry",
            "resourceId": FIXTURE_ENTRY_ID,
            "enabled": true,
            "blocks": [],
        }));
    }

    /// A canvas job for the entry, caused `minute` minutes after the rig started.
    fn job(&self, canvas: Option<&str>, action: CanvasAction, minute: i64) -> CanvasJob {
        CanvasJob {
            canvas_id: canvas.map(|c| c.parse().unwrap()),
            entry_id: Some(entry()),
            feature_id: Some("quilt_entry".parse().unwrap()),
            app_id: None,
            action,
            trigger: Trigger {
                event_type: EventType::CanvasUserInteracted,
                event_id: None,
                webhook_id: None,
                occurred_at: self.started + chrono::TimeDelta::minutes(minute),
                user_id: None,
            },
        }
    }

    async fn send_job(&self, job: CanvasJob) {
        self.canvas
            .send(OutgoingMessage::job(job, None))
            .await
            .unwrap();
    }

    async fn send(&self, canvas: Option<&str>, action: CanvasAction, minute: i64) {
        self.send_job(self.job(canvas, action, minute)).await;
    }

    async fn click(&self, canvas: &str, action: ButtonAction, minute: i64) {
        let button = Button::new(entry(), action);
        self.send(Some(canvas), CanvasAction::Button { button }, minute)
            .await;
    }

    /// Waits for the `count`-th request of `method` to the canvas and returns its JSON body.
    async fn nth(&self, method: &str, path: &str, count: usize) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let requests: Vec<RecordedRequest> = self.base.benchling.requests_to(method, path);
            if let Some(request) = requests.get(count - 1) {
                return request.json().expect("a JSON body");
            }
            assert!(
                Instant::now() < deadline,
                "no {method} #{count} to {path}; got {}",
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Requests of `method` so far whose path starts with `path`.
    fn count(&self, method: &str, path: &str) -> usize {
        self.base.benchling.requests_to(method, path).len()
    }

    async fn patch(&self, canvas: &str, count: usize) -> Value {
        self.nth("PATCH", &format!("/api/v2/app-canvases/{canvas}"), count)
            .await
    }

    async fn put(&self, key: &str, body: impl Into<Vec<u8>>) {
        self.base
            .moto
            .put_object(&self.base.bucket, key, body.into())
            .await;
    }

    async fn record(&self) -> CanvasRecord {
        let bytes = self
            .base
            .moto
            .get_object(&self.base.bucket, &bookkeeping::canvas_key(&entry()))
            .await
            .expect("a canvas record");
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Records that the packager announced the entry at `published_at`.
    async fn record_published(&self, published_at: chrono::DateTime<chrono::Utc>) {
        let record = PublishedRecord {
            entry_id: entry(),
            modified_at: self.started,
            package_name: PACKAGE.to_owned(),
            published_at,
        };
        self.put(
            &bookkeeping::published_key(&entry()),
            serde_json::to_vec(&record).unwrap(),
        )
        .await;
    }

    /// Writes a package revision in the Quilt registry layout: `files` data files and an
    /// `entry.json` naming the entry and `canvas`.
    async fn publish_package(&self, top_hash: &str, files: usize, canvas: Option<&str>) {
        let mut lines = vec![json!({"version": "v0", "message": "Benchling", "user_meta": {}})];
        for i in 0..files {
            lines.push(json!({
                "logical_key": format!("data/part-{i:02}.csv"),
                "physical_keys": [format!("s3://{}/{PACKAGE}/data/part-{i:02}.csv", self.base.bucket)],
                "size": 1000 + i,
            }));
        }
        lines.push(json!({
            "logical_key": "entry.json",
            "physical_keys": [format!("s3://{}/{PACKAGE}/entry.json?versionId=1", self.base.bucket)],
            "size": 100,
        }));
        let manifest: String = lines.iter().map(|l| format!("{l}\n")).collect();
        self.put(&format!(".quilt/packages/{top_hash}"), manifest)
            .await;
        self.put(&format!(".quilt/named_packages/{PACKAGE}/latest"), top_hash)
            .await;
        let mut entry_json = json!({
            "entry_id": FIXTURE_ENTRY_ID,
            "display_id": "EXP25000007",
            "web_url": "https://standin.benchling.com/entries/EXP25000007",
        });
        if let Some(canvas) = canvas {
            entry_json["canvas_id"] = json!(canvas);
        }
        self.put(&format!("{PACKAGE}/entry.json"), entry_json.to_string())
            .await;
    }

    /// How many Athena queries ran in `workgroup`.
    async fn queries(&self, workgroup: &str) -> usize {
        let athena = self.athena.as_ref().expect("a rig with Athena");
        let executions = athena
            .list_query_executions()
            .work_group(workgroup)
            .send()
            .await
            .unwrap();
        executions.query_execution_ids().len()
    }

    /// Waits until the canvas queue holds no job, waiting or in flight: every job finished
    /// and none was left for a retry.
    async fn settled(&self) {
        eventually("a canvas job was kept for a retry", || async {
            self.depth(&self.canvas_url).await == 0
        })
        .await;
    }

    /// Waits until the canvas queue is settled, then checks that no job was dead-lettered.
    async fn settled_without_dead_letters(&self) {
        self.settled().await;
        // Jobs are settled, so a dead-lettered one would already be there.
        assert!(
            next_within(self.canvas_dead_letter.as_ref(), Duration::from_secs(1))
                .await
                .is_none()
        );
    }

    /// Messages in `url` waiting or in flight.
    async fn depth(&self, url: &str) -> u64 {
        use aws_sdk_sqs::types::QueueAttributeName as Name;
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(Name::ApproximateNumberOfMessages)
            .attribute_names(Name::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let map = attributes.attributes().unwrap();
        [
            Name::ApproximateNumberOfMessages,
            Name::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|name| map[name].parse::<u64>().unwrap())
        .sum()
    }
}

/// Waits up to ten seconds for `done` to hold; `what` says what never happened.
async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut done: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn entry() -> EntryId {
    FIXTURE_ENTRY_ID.parse().unwrap()
}

/// The Markdown of every block, joined, and the buttons as `(text, enabled)`.
fn shown(body: &Value) -> (String, Vec<(String, bool)>) {
    let mut markdown = String::new();
    let mut buttons = Vec::new();
    let mut visit = |block: &Value| match block["type"].as_str() {
        Some("MARKDOWN") => markdown.push_str(block["value"].as_str().unwrap()),
        Some("BUTTON") => buttons.push((
            block["text"].as_str().unwrap().to_owned(),
            block["enabled"].as_bool().unwrap(),
        )),
        other => panic!("unexpected block type {other:?}"),
    };
    for block in body["blocks"].as_array().expect("blocks") {
        if block["type"] == "SECTION" {
            block["children"]
                .as_array()
                .unwrap()
                .iter()
                .for_each(&mut visit);
        } else {
            visit(block);
        }
    }
    (markdown, buttons)
}

fn button_enabled(body: &Value, text: &str) -> bool {
    let (_, buttons) = shown(body);
    buttons
        .iter()
        .find(|(t, _)| t == text)
        .unwrap_or_else(|| panic!("no {text:?} button in {body}"))
        .1
}

async fn next(queue: &dyn Queue) -> Option<String> {
    next_within(queue, Duration::from_secs(10)).await
}

/// The next message's body, deleted, if one arrives within `wait`.
async fn next_within(queue: &dyn Queue, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Some(message) = queue
            .receive(1, Duration::from_secs(1))
            .await
            .unwrap()
            .into_iter()
            .next()
        {
            queue.delete(&message.receipt).await.unwrap();
            return Some(message.body);
        }
    }
    None
}

#[tokio::test]
async fn an_initialized_canvas_is_created_once_and_remembered() {
    let rig = Rig::start(None).await;
    rig.record_published(rig.started).await;
    rig.send(None, CanvasAction::Create, 0).await;
    let created = rig.nth("POST", "/api/v2/app-canvases", 1).await;
    assert_eq!(created["featureId"], "quilt_entry");
    assert_eq!(created["resourceId"], FIXTURE_ENTRY_ID);
    assert_eq!(created["enabled"], true);
    assert!(created.get("data").is_none(), "no canvas data is sent");
    let (markdown, buttons) = shown(&created);
    assert!(markdown.contains("## EXP25000007"), "{markdown}");
    assert!(markdown.contains("✅ *Updated at"), "{markdown}");
    assert_eq!(
        buttons,
        [
            ("Browse Package".to_owned(), true),
            ("Update Package".to_owned(), true)
        ]
    );
    assert_eq!(
        next_within(rig.export.as_ref(), Duration::from_secs(2)).await,
        None,
        "a published entry is not exported again"
    );

    // The record keeps the canvas created.
    let key = bookkeeping::canvas_key(&entry());
    eventually("no canvas record", || async {
        rig.base
            .moto
            .get_object(&rig.base.bucket, &key)
            .await
            .is_some()
    })
    .await;
    let canvas = rig
        .record()
        .await
        .canvas_id
        .expect("the created canvas is remembered");

    // Benchling asks again (or the job is redelivered): the canvas is reused, not duplicated.
    rig.send(None, CanvasAction::Create, 1).await;
    rig.patch(canvas.as_str(), 1).await;
    assert_eq!(rig.count("POST", "/api/v2/app-canvases"), 1);
    assert_eq!(
        rig.count("GET", "/api/v2/entries/"),
        1,
        "the display id is remembered between jobs"
    );
}

#[tokio::test]
async fn inserting_the_canvas_of_an_unpublished_entry_exports_it_once() {
    let rig = Rig::start(None).await;
    rig.send(None, CanvasAction::Create, 0).await;
    let created = rig.nth("POST", "/api/v2/app-canvases", 1).await;
    let (markdown, _) = shown(&created);
    assert!(markdown.contains("⏳ *Updating...*"), "{markdown}");
    let export = next(rig.export.as_ref())
        .await
        .expect("the new canvas queues the entry's export");
    let export = JobEnvelope::<ExportJob>::from_body(&export).unwrap().job;
    assert_eq!(export.entry_id, entry());

    // Benchling asks again while the export runs: the canvas still says so, and the entry is
    // not exported twice.
    let canvas = rig
        .record()
        .await
        .canvas_id
        .expect("the canvas is remembered");
    rig.send(None, CanvasAction::Create, 1).await;
    let (markdown, _) = shown(&rig.patch(canvas.as_str(), 1).await);
    assert!(markdown.contains("⏳ *Updating...*"), "{markdown}");
    assert_eq!(
        next_within(rig.export.as_ref(), Duration::from_secs(2)).await,
        None
    );
}

#[tokio::test]
async fn update_shows_updating_then_the_outcome_and_a_failure_stays_until_a_newer_version() {
    let rig = Rig::start(None).await;
    rig.add_canvas("cnvs_1");
    rig.click("cnvs_1", ButtonAction::Update, 0).await;
    let updating = rig.patch("cnvs_1", 1).await;
    let (markdown, _) = shown(&updating);
    assert!(markdown.contains("⏳ *Updating...*"), "{markdown}");
    assert!(!button_enabled(&updating, "Update Package"));
    let export = next(rig.export.as_ref()).await.expect("an export job");
    let export = JobEnvelope::<ExportJob>::from_body(&export).unwrap().job;
    assert_eq!(export.entry_id, entry());
    assert_eq!(export.canvas_id.unwrap().as_str(), "cnvs_1");

    // Going back to the package while the update runs still says so.
    rig.click("cnvs_1", ButtonAction::Main, 1).await;
    let back = rig.patch("cnvs_1", 2).await;
    assert!(shown(&back).0.contains("⏳ *Updating...*"), "{back}");
    assert!(!button_enabled(&back, "Update Package"));

    // The export failed for good: the reason shows, and stays on later renders.
    let reason = "export task FAILED: *quota*".to_owned();
    rig.send(Some("cnvs_1"), CanvasAction::ExportFailed { reason }, 2)
        .await;
    let failed = rig.patch("cnvs_1", 3).await;
    let (markdown, _) = shown(&failed);
    assert!(
        markdown.contains(r"❌ *Update failed:* export task FAILED: \*quota\*"),
        "{markdown}"
    );
    assert!(button_enabled(&failed, "Update Package"));
    rig.click("cnvs_1", ButtonAction::Main, 3).await;
    let (markdown, _) = shown(&rig.patch("cnvs_1", 4).await);
    assert!(markdown.contains("❌ *Update failed:*"), "{markdown}");

    // A notice whose version has no published record claims nothing.
    let published_at: chrono::DateTime<chrono::Utc> = rig.started + chrono::TimeDelta::minutes(5);
    rig.send(Some("cnvs_1"), CanvasAction::Published { published_at }, 4)
        .await;
    let (markdown, _) = shown(&rig.patch("cnvs_1", 5).await);
    assert!(markdown.contains("❌ *Update failed:*"), "{markdown}");

    // The packager announced a newer version: "Updated at" with its recorded time.
    rig.record_published(published_at).await;
    rig.send(Some("cnvs_1"), CanvasAction::Published { published_at }, 5)
        .await;
    let (markdown, _) = shown(&rig.patch("cnvs_1", 6).await);
    let expected = format!(
        "✅ *Updated at {}*",
        published_at.format("%Y-%m-%d %H:%M UTC")
    );
    assert!(markdown.contains(&expected), "{markdown}");
}

#[tokio::test]
async fn an_update_of_a_version_quilt_holds_says_up_to_date_until_a_newer_one() {
    let rig = Rig::start(None).await;
    rig.add_canvas("cnvs_1");
    let published_at: chrono::DateTime<chrono::Utc> = rig.started - chrono::TimeDelta::hours(1);
    rig.record_published(published_at).await;
    rig.click("cnvs_1", ButtonAction::Update, 0).await;
    assert!(
        shown(&rig.patch("cnvs_1", 1).await)
            .0
            .contains("⏳ *Updating...*")
    );

    // The exporter found the announced version in the registry.
    let top_hash = "0123456789abcdef".to_owned();
    rig.send(
        Some("cnvs_1"),
        CanvasAction::UpToDate {
            published_at,
            top_hash,
        },
        1,
    )
    .await;
    let up_to_date = rig.patch("cnvs_1", 2).await;
    let (markdown, _) = shown(&up_to_date);
    let expected = format!(
        "✅ *Up to date:* revision `0123456789` holds the version announced at {}",
        published_at.format("%Y-%m-%d %H:%M UTC")
    );
    assert!(markdown.contains(&expected), "{markdown}");
    assert!(button_enabled(&up_to_date, "Update Package"));
    // Remembered: going back to the package shows it again.
    rig.click("cnvs_1", ButtonAction::Main, 2).await;
    assert!(shown(&rig.patch("cnvs_1", 3).await).0.contains(&expected));

    // A newer announcement is not known to be in the registry yet.
    let newer = rig.started;
    rig.record_published(newer).await;
    rig.send(
        Some("cnvs_1"),
        CanvasAction::Published {
            published_at: newer,
        },
        3,
    )
    .await;
    let (markdown, _) = shown(&rig.patch("cnvs_1", 4).await);
    assert!(markdown.contains("✅ *Updated at"), "{markdown}");
    assert!(!markdown.contains("Up to date"), "{markdown}");
}

#[tokio::test]
async fn an_update_click_that_fails_for_good_shows_the_failure() {
    let rig = Rig::start(None).await;
    rig.add_canvas("cnvs_1");
    // Benchling refuses the entry look-up of the click once.
    rig.base
        .benchling
        .inject(bw_standin::benchling::Fault::Status(400), 1);
    rig.click("cnvs_1", ButtonAction::Update, 0).await;
    let shown_failure = rig.patch("cnvs_1", 1).await;
    let (markdown, _) = shown(&shown_failure);
    assert!(markdown.contains("❌ *Update failed:*"), "{markdown}");
    assert!(markdown.contains("400"), "{markdown}");
    assert!(button_enabled(&shown_failure, "Update Package"));
    assert!(
        next(rig.canvas_dead_letter.as_ref()).await.is_some(),
        "the click is dead-lettered"
    );
    assert!(
        next_within(rig.export.as_ref(), Duration::from_secs(1))
            .await
            .is_none(),
        "no export was asked for"
    );
}

#[tokio::test]
async fn browse_and_metadata_read_the_package_from_the_registry() {
    let rig = Rig::start(None).await;
    rig.add_canvas("cnvs_1");
    let paged = |metadata, package, page| ButtonAction::paged(metadata, package, page, 15);

    // Not packaged yet.
    rig.click("cnvs_1", paged(false, PackageTarget::Primary, 0), 0)
        .await;
    let (markdown, buttons) = shown(&rig.patch("cnvs_1", 1).await);
    assert!(markdown.contains("## Package Not Created"), "{markdown}");
    assert!(buttons.contains(&("Update Package".to_owned(), true)));

    rig.publish_package("aaaa", 20, Some("cnvs_1")).await;
    rig.click("cnvs_1", paged(false, PackageTarget::Primary, 1), 1)
        .await;
    let page = rig.patch("cnvs_1", 2).await;
    let (markdown, _) = shown(&page);
    assert!(markdown.contains("Page 2 of 2"), "{markdown}");
    assert!(
        markdown.contains("**Showing files 16-21 of 21**"),
        "{markdown}"
    );
    assert!(markdown.contains("`part-19.csv`"), "{markdown}");
    assert!(button_enabled(&page, "← Previous"));
    assert!(!button_enabled(&page, "Next →"));

    rig.click("cnvs_1", paged(true, PackageTarget::Primary, 1), 2)
        .await;
    let meta = rig.patch("cnvs_1", 3).await;
    let (markdown, _) = shown(&meta);
    assert!(markdown.contains("## Package Metadata"), "{markdown}");
    assert!(
        markdown.contains(&format!(
            "- **entry\\_id**: {}",
            FIXTURE_ENTRY_ID.replace('_', "\\_")
        )),
        "{markdown}"
    );
    assert!(
        markdown.contains("- **display\\_id**: EXP25000007"),
        "{markdown}"
    );

    // A linked package that does not exist: the error view, whose Retry is the primary one.
    rig.click(
        "cnvs_1",
        paged(false, PackageTarget::Linked("team/gone".to_owned()), 0),
        3,
    )
    .await;
    let (markdown, buttons) = shown(&rig.patch("cnvs_1", 4).await);
    assert!(markdown.contains("## Error Loading Files"), "{markdown}");
    assert!(markdown.contains("`team/gone`"), "{markdown}");
    assert!(buttons.contains(&("Retry".to_owned(), true)));
}

#[tokio::test]
async fn a_deleted_canvas_is_forgotten_and_not_retried() {
    let rig = Rig::start(None).await;
    rig.add_canvas("cnvs_live");
    rig.send(Some("cnvs_live"), CanvasAction::Render, 0).await;
    rig.patch("cnvs_live", 1).await;
    assert_eq!(rig.record().await.canvas_id.unwrap().as_str(), "cnvs_live");

    // The user removed the canvas from the entry; the packager's notice still names it.
    rig.base
        .benchling
        .inject(bw_standin::benchling::Fault::Status(404), 1);
    rig.send(
        None,
        CanvasAction::Published {
            published_at: "2026-01-01T00:01:00Z".parse().unwrap(),
        },
        1,
    )
    .await;
    rig.patch("cnvs_live", 2).await;
    eventually("the deleted canvas is still remembered", || async {
        rig.record().await.canvas_id.is_none()
    })
    .await;
    rig.settled_without_dead_letters().await;
    assert_eq!(rig.count("PATCH", "/api/v2/app-canvases/"), 2);

    // A canvas deleted before its first render: `canvas.created` names no entry, and the
    // canvas's look-up answers 404.
    let created = CanvasJob {
        entry_id: None,
        ..rig.job(Some("cnvs_gone"), CanvasAction::Render, 1)
    };
    rig.send_job(created).await;
    eventually("the canvas was never looked up", || async {
        rig.count("GET", "/api/v2/app-canvases/cnvs_gone") > 0
    })
    .await;
    rig.settled_without_dead_letters().await;

    // With no canvas left, later notices show nothing and finish.
    rig.send(None, CanvasAction::Refresh, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    rig.settled().await;
    assert_eq!(rig.count("PATCH", "/api/v2/app-canvases/"), 2);
}

#[tokio::test]
async fn a_failure_notice_about_an_entry_benchling_no_longer_has_finishes_quietly() {
    let rig = Rig::start(None).await;
    // The exporter dead-lettered the entry's export (the entry is gone) and reports it; the
    // entry's look-up answers 404 too. Dead-lettering the notice would report the same failure
    // a second time.
    rig.base
        .benchling
        .inject(bw_standin::benchling::Fault::Status(404), 1);
    rig.send(None, CanvasAction::export_failed("GET entry: 404"), 0)
        .await;
    eventually("the entry was looked up", || async {
        rig.count("GET", "/api/v2/entries/") > 0
    })
    .await;
    rig.settled_without_dead_letters().await;
    assert_eq!(rig.count("PATCH", "/api/v2/app-canvases/"), 0);
    assert_eq!(rig.count("POST", "/api/v2/app-canvases"), 0);
}

#[tokio::test]
async fn package_events_refresh_the_canvas_and_skip_what_is_not_ours() {
    let rig = Rig::start(None).await;
    rig.add_canvas("cnvs_1");
    rig.publish_package("bbbb", 2, Some("cnvs_1")).await;
    let published = PublishedRecord {
        entry_id: entry(),
        modified_at: "2026-01-01T00:00:00Z".parse().unwrap(),
        package_name: PACKAGE.to_owned(),
        published_at: "2026-01-01T00:05:00Z".parse().unwrap(),
    };
    rig.put(
        &bookkeeping::published_key(&entry()),
        serde_json::to_vec(&published).unwrap(),
    )
    .await;
    let event = |bucket: &str, handle: &str, top_hash: &str| {
        json!({
            "version": "0",
            "source": "com.quiltdata",
            "detail-type": "package-revision",
            "detail": {"type": "package-revision", "bucket": bucket, "handle": handle, "topHash": top_hash},
        })
        .to_string()
    };
    for body in [
        event("someone-elses-bucket", PACKAGE, "bbbb"),
        event(&rig.base.bucket, "team/other", "bbbb"),
        event(&rig.base.bucket, PACKAGE, "aaaa-stale"),
        "{\"detail\": 42}".to_owned(),
        event(&rig.base.bucket, PACKAGE, "bbbb"),
    ] {
        rig.events.send(OutgoingMessage::new(body)).await.unwrap();
    }
    let refreshed = rig.patch("cnvs_1", 1).await;
    let (markdown, _) = shown(&refreshed);
    assert!(
        markdown.contains("✅ *Updated at 2026-01-01 00:05 UTC*"),
        "{markdown}"
    );
    let parked = next(rig.events_dead_letter.as_ref())
        .await
        .expect("the malformed event is dead-lettered");
    assert_eq!(parked, "{\"detail\": 42}");
    // Every event handled and every refresh it queued shown before counting.
    eventually("events left unhandled", || async {
        rig.depth(&rig.events_url).await == 0
    })
    .await;
    rig.settled().await;
    assert_eq!(
        rig.count("PATCH", "/api/v2/app-canvases/"),
        1,
        "only the current revision of our package refreshes the canvas"
    );
}

#[tokio::test]
async fn linked_packages_come_from_athena_and_are_reused_while_paging() {
    let _turn = Moto::shared().athena_turn().await;
    let workgroup = Moto::unique_name("canvas-wg");
    let rig = Rig::start(Some(&workgroup)).await;
    rig.add_canvas("cnvs_1");
    rig.record_published(rig.started).await;
    seed_linked(rig.base.moto).await;
    rig.send(Some("cnvs_1"), CanvasAction::Render, 0).await;
    let main = rig.patch("cnvs_1", 1).await;
    let (markdown, buttons) = shown(&main);
    assert!(markdown.contains("### Linked Packages"), "{markdown}");
    assert!(markdown.contains("* [team/assay-7]"), "{markdown}");
    assert!(
        !markdown.contains(&format!("* [{PACKAGE}]")),
        "the entry's own package is listed as linked: {markdown}"
    );
    let linked: Vec<_> = buttons.iter().map(|(text, _)| text.as_str()).collect();
    assert_eq!(linked, ["Browse Package", "Update Package", "team/assay-7"]);

    // Browsing and coming back within the cache time reuses the result.
    rig.publish_package("cccc", 1, Some("cnvs_1")).await;
    let browse = ButtonAction::paged(false, PackageTarget::Linked("team/assay-7".into()), 0, 15);
    rig.click("cnvs_1", browse, 1).await;
    rig.patch("cnvs_1", 2).await;
    rig.click("cnvs_1", ButtonAction::Main, 2).await;
    let (markdown, _) = shown(&rig.patch("cnvs_1", 3).await);
    assert!(markdown.contains("### Linked Packages"), "{markdown}");
    assert_eq!(rig.queries(&workgroup).await, 1);

    // A new revision runs the query again.
    seed_linked(rig.base.moto).await;
    rig.send(Some("cnvs_1"), CanvasAction::Refresh, 3).await;
    rig.patch("cnvs_1", 4).await;
    assert_eq!(rig.queries(&workgroup).await, 2);
}

#[tokio::test]
async fn a_new_canvas_queries_athena_afresh_even_within_the_cache_time() {
    let _turn = Moto::shared().athena_turn().await;
    let workgroup = Moto::unique_name("canvas-wg");
    let rig = Rig::start(Some(&workgroup)).await;
    // The entry is published before it has a canvas: its main view is rendered (and its linked
    // packages, none yet, looked up) with nowhere to show it.
    let published_at = rig.started;
    rig.record_published(published_at).await;
    rig.send(None, CanvasAction::Published { published_at }, 0)
        .await;
    eventually("the published notice ran no query", || async {
        rig.queries(&workgroup).await == 1
    })
    .await;
    rig.settled().await;

    // Then a package links the entry, and Benchling asks for the entry's canvas at once.
    seed_linked(rig.base.moto).await;
    rig.send(None, CanvasAction::Create, 1).await;
    let created = rig.nth("POST", "/api/v2/app-canvases", 1).await;
    let (markdown, _) = shown(&created);
    assert!(
        markdown.contains("* [team/assay-7]"),
        "the new canvas lists the cached, stale result: {markdown}"
    );
    assert_eq!(rig.queries(&workgroup).await, 2);
}

/// Queues one query result in moto: the entry's own package and a linked one.
async fn seed_linked(moto: &Moto) {
    let meta = r#"{"experiment_id":"EXP25000007"}"#;
    moto.queue_athena_result(&[
        &["pkg_name", "timestamp", "message", "user_meta"],
        &[PACKAGE, "latest", "own", meta],
        &["team/assay-7", "latest", "linked", meta],
    ])
    .await;
}
