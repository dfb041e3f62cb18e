//! The packager end to end, in-process: render jobs in through SQS on moto, the claim checks and
//! metadata files in S3 on moto, entity names from the Benchling stand-in, Quilt's packager
//! message and the canvas notice out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bw_config::Env;
use bw_contracts::bookkeeping::{self, PublishedRecord};
use bw_contracts::{
    CanvasAction, CanvasJob, EventType, FileList, Job, JobEnvelope, PackageFile, RenderJob, Trigger,
};
use bw_packager::{Connections, PackagerConfig, Readme};
use bw_queue::{OutgoingMessage, Queue, ReceivedMessage};
use bw_standin::benchling::ENTRY_FIXTURE;
use bw_testkit::moto::Moto;
use bw_testkit::rig::{RunningService, ServiceRig};
use serde_json::{Value, json};

const CLIENT_ID: &str = "packager-client";
const CLIENT_SECRET: &str = "packager-secret-DO-NOT-LOG";

struct Rig {
    base: ServiceRig,
    render: Arc<dyn Queue>,
    render_dead_letter: Arc<dyn Queue>,
    canvas: Arc<dyn Queue>,
    packager: Arc<dyn Queue>,
    _service: RunningService<bw_packager::RunError>,
}

impl Rig {
    async fn start() -> Self {
        let base = ServiceRig::new("packager", CLIENT_ID, CLIENT_SECRET).await;
        let moto = base.moto;
        let canvas = moto
            .create_queue(&Moto::unique_name("canvas"), true, 30, None)
            .await;
        let (render, render_dead_letter) = moto
            .create_queue_with_dead_letter(&Moto::unique_name("render"), true, 30, 3)
            .await;
        let packager = moto
            .create_queue(&Moto::unique_name("quilt-packager"), false, 30, None)
            .await;
        base.benchling
            .add_entity("custom_entity", "bfi_AbC", "Strain 7");
        let config = PackagerConfig::from_env(Env::from_pairs([
            ("BENCHLING_API_BASE_URL", base.benchling.url()),
            ("BENCHLING_RETRY_INITIAL_MS", "20".to_owned()),
            // One slot: with two, a long poll begun while the entry's group was in flight
            // never sees the group's next job on moto (it keeps the in-flight groups as they
            // were when the poll began), so each job after the first waited out the poll.
            ("WORKER_CONCURRENCY", "1".to_owned()),
        ]))
        .unwrap();
        let connections = Connections {
            queues: bw_packager::Queues {
                render: base.queue(&render),
                canvas: base.queue(&canvas),
                packager: base.queue(&packager),
            },
            secret: base.secret(),
            buckets: base.buckets().await,
            readme: Readme::built_in(),
        };
        let service = RunningService::spawn(config, connections).await;
        Self {
            render: base.queue(&render),
            render_dead_letter: base.queue(&render_dead_letter),
            canvas: base.queue(&canvas),
            packager: base.queue(&packager),
            base,
            _service: service,
        }
    }

    async fn put(&self, key: &str, body: Vec<u8>) {
        self.base
            .moto
            .put_object(&self.base.bucket, key, body)
            .await;
    }

    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.base.moto.get_object(&self.base.bucket, key).await
    }

    /// Stores the claim check of the fixture entry, with one linked entity, and returns the
    /// render job the exporter would send for it.
    async fn exported(&self, files: FileList, webhook: &str) -> RenderJob {
        let fixture: Value = serde_json::from_str(ENTRY_FIXTURE).unwrap();
        let mut entry = fixture["entry"].clone();
        entry["days"][0]["notes"][0]["links"] = json!([
            {"type": "custom_entity", "id": "bfi_AbC", "webURL": "https://standin.benchling.com/s/f/lib/bfi-AbC-strain-7/edit"}
        ]);
        let entry_id = "etr_0uKCQZ8f".parse().unwrap();
        let modified_at = entry["modifiedAt"].as_str().unwrap().parse().unwrap();
        let entry_key = bookkeeping::entry_snapshot_key(&entry_id, &modified_at);
        self.put(&entry_key, serde_json::to_vec(&entry).unwrap())
            .await;
        RenderJob {
            reannounce: None,
            entry_id,
            display_id: "EXP25000007".into(),
            modified_at,
            bucket: self.base.bucket.clone(),
            package_prefix: "benchling/EXP25000007".into(),
            entry_key,
            files,
            canvas_id: Some("cnvs_1".parse().unwrap()),
            base_url: Some("https://standin.benchling.com".into()),
            trigger: Trigger {
                event_type: EventType::EntryUpdatedFields,
                event_id: None,
                webhook_id: Some(webhook.parse().unwrap()),
                occurred_at: "2025-03-30T23:37:23Z".parse().unwrap(),
                user_id: None,
            },
        }
    }
}

fn files(count: usize) -> Vec<PackageFile> {
    (0..count)
        .map(|i| PackageFile {
            name: format!("data/part-{i:04}.csv"),
            key: format!("benchling/EXP25000007/data/part-{i:04}.csv"),
            size: 100 + i as u64,
        })
        .collect()
}

async fn next(queue: &dyn Queue, timeout: Duration) -> Option<ReceivedMessage> {
    let deadline = Instant::now() + timeout;
    loop {
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_secs(1));
        if let Some(message) = queue.receive(1, wait).await.unwrap().into_iter().next() {
            queue.delete(&message.receipt).await.unwrap();
            return Some(message);
        }
        if Instant::now() >= deadline {
            return None;
        }
    }
}

async fn next_canvas(rig: &Rig) -> CanvasJob {
    let message = next(rig.canvas.as_ref(), Duration::from_secs(30))
        .await
        .expect("a canvas job");
    JobEnvelope::<CanvasJob>::from_body(&message.body)
        .unwrap()
        .job
}

#[tokio::test]
async fn a_render_job_writes_the_metadata_and_announces_the_version_once() {
    let rig = Rig::start().await;
    let job = rig
        .exported(FileList::Inline { files: files(3) }, "msg_first")
        .await;
    rig.render
        .send(OutgoingMessage::job(job.clone(), None))
        .await
        .unwrap();

    let notice = next_canvas(&rig).await;
    assert!(
        matches!(notice.action, CanvasAction::Published { .. }),
        "{notice:?}"
    );
    assert_eq!(notice.canvas_id.unwrap().as_str(), "cnvs_1");

    let message = next(rig.packager.as_ref(), Duration::from_secs(5))
        .await
        .expect("the packager message");
    let body: Value = serde_json::from_str(&message.body).unwrap();
    assert_eq!(
        body,
        json!({
            "source_prefix": format!("s3://{}/benchling/EXP25000007/", rig.base.bucket),
            "registry": rig.base.bucket,
            "package_name": "benchling/EXP25000007",
            "metadata_uri": "entry.json",
            "commit_message": "Benchling v2.entry.updated.fields at 2025-03-30T23:37:23.000000Z",
        })
    );
    assert!(message.group_id.is_none(), "a standard queue gets no group");

    let entry_json: Value =
        serde_json::from_slice(&rig.get("benchling/EXP25000007/entry.json").await.unwrap())
            .unwrap();
    assert_eq!(entry_json["files"].as_object().unwrap().len(), 3);
    assert_eq!(entry_json["links"][0]["name"], "Strain 7", "{entry_json}");
    assert_eq!(
        entry_json["export_timestamp"],
        "2025-03-30T23:37:23.000000Z"
    );
    for name in ["entry_data.json", "links.json", "input.json", "README.md"] {
        let bytes = rig
            .get(&format!("benchling/EXP25000007/{name}"))
            .await
            .unwrap_or_else(|| panic!("{name} missing"));
        assert!(
            !String::from_utf8_lossy(&bytes).contains("X-Amz-"),
            "{name}"
        );
    }
    let record: PublishedRecord = serde_json::from_slice(
        &rig.get(&bookkeeping::published_key(&job.entry_id))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(record.covers(&job.modified_at));
    assert!(
        rig.get(&job.entry_key).await.is_none(),
        "the claim check outlived the announcement"
    );
    assert_eq!(
        rig.base
            .benchling
            .requests_to("GET", "/api/v2/custom-entities:bulk-get")
            .len(),
        1
    );

    // The same version delivered again (another webhook for it): no second announcement, and
    // the canvas is told again.
    let again = RenderJob {
        trigger: Trigger {
            webhook_id: Some("msg_second".parse().unwrap()),
            ..job.trigger.clone()
        },
        ..job.clone()
    };
    assert_ne!(again.dedup_id(), job.dedup_id());
    rig.render
        .send(OutgoingMessage::job(again, None))
        .await
        .unwrap();
    assert!(matches!(
        next_canvas(&rig).await.action,
        CanvasAction::Published { .. }
    ));
    assert!(
        next(rig.packager.as_ref(), Duration::from_secs(2))
            .await
            .is_none(),
        "the version was announced twice"
    );

    // "Update Package" found the version missing from Quilt's registry and exported it again:
    // a job repeating exactly the recorded announcement is announced once more, and the record
    // gets the new time, so the same job delivered again (or one naming an older
    // announcement) announces nothing.
    let rig = &rig;
    let repeat = |webhook: &'static str, reannounce| async move {
        let mut job = rig
            .exported(FileList::Inline { files: files(3) }, webhook)
            .await;
        job.reannounce = Some(reannounce);
        rig.render
            .send(OutgoingMessage::job(job, None))
            .await
            .unwrap();
        assert!(matches!(
            next_canvas(rig).await.action,
            CanvasAction::Published { .. }
        ));
        next(rig.packager.as_ref(), Duration::from_secs(2)).await
    };
    let message = repeat("msg_reannounce", record.published_at).await;
    assert!(message.is_some(), "the lost announcement was not repeated");
    let repeated: PublishedRecord = serde_json::from_slice(
        &rig.get(&bookkeeping::published_key(&job.entry_id))
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(repeated.published_at > record.published_at);
    assert!(repeated.covers(&job.modified_at));
    for webhook in ["msg_reannounce_again", "msg_reannounce_stale"] {
        assert!(
            repeat(webhook, record.published_at).await.is_none(),
            "{webhook}: announced again"
        );
    }
}

#[tokio::test]
async fn a_stored_file_list_is_read_from_its_claim_check() {
    let rig = Rig::start().await;
    let listed = files(2500);
    let job = rig
        .exported(
            FileList::Stored {
                key: "placeholder".into(),
                count: listed.len(),
            },
            "msg_many",
        )
        .await;
    let key = bookkeeping::file_list_key(&job.entry_id, &job.modified_at);
    rig.put(&key, serde_json::to_vec(&listed).unwrap()).await;
    let job = RenderJob {
        files: FileList::Stored {
            key,
            count: listed.len(),
        },
        ..job
    };
    rig.render
        .send(OutgoingMessage::job(job, None))
        .await
        .unwrap();
    next_canvas(&rig).await;
    let entry_json: Value =
        serde_json::from_slice(&rig.get("benchling/EXP25000007/entry.json").await.unwrap())
            .unwrap();
    assert_eq!(entry_json["files"].as_object().unwrap().len(), 2500);
}

#[tokio::test]
async fn a_missing_claim_check_is_dead_lettered_and_shown_on_the_canvas() {
    let rig = Rig::start().await;
    let job = rig
        .exported(FileList::Inline { files: files(1) }, "msg_lost")
        .await;
    let job = RenderJob {
        entry_key: ".benchling-webhook/entries/etr_0uKCQZ8f/gone/entry.json".into(),
        ..job
    };
    rig.render
        .send(OutgoingMessage::job(job, None))
        .await
        .unwrap();
    let parked = next(rig.render_dead_letter.as_ref(), Duration::from_secs(30))
        .await
        .expect("dead-lettered");
    assert!(
        parked.attributes["failure_reason"].contains("claim check"),
        "{:?}",
        parked.attributes
    );
    match next_canvas(&rig).await.action {
        CanvasAction::ExportFailed { reason } => assert!(reason.contains("claim check")),
        other => panic!("expected ExportFailed, got {other:?}"),
    }
    assert!(
        next(rig.packager.as_ref(), Duration::from_secs(1))
            .await
            .is_none()
    );
    assert!(rig.get("benchling/EXP25000007/entry.json").await.is_none());
}

#[tokio::test]
async fn a_failed_name_look_up_leaves_names_empty_and_the_job_succeeds() {
    let rig = Rig::start().await;
    rig.base
        .benchling
        .inject(bw_standin::benchling::Fault::Status(400), 1);
    let job = rig
        .exported(FileList::Inline { files: files(1) }, "msg_names")
        .await;
    rig.render
        .send(OutgoingMessage::job(job, None))
        .await
        .unwrap();
    assert!(matches!(
        next_canvas(&rig).await.action,
        CanvasAction::Published { .. }
    ));
    let entry_json: Value =
        serde_json::from_slice(&rig.get("benchling/EXP25000007/entry.json").await.unwrap())
            .unwrap();
    assert_eq!(entry_json["links"][0]["id"], "bfi_AbC");
    assert!(entry_json["links"][0]["name"].is_null(), "{entry_json}");
    assert!(
        next(rig.packager.as_ref(), Duration::from_secs(5))
            .await
            .is_some()
    );
}
