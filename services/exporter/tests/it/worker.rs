//! The exporter end to end, in-process: export jobs in through SQS on moto, Benchling's API on
//! the stand-in, package files out to S3 on moto (or to a directory), render and canvas jobs out.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{PKG_PREFIX, Rig, export_job, fixture_entry, next_job, next_message, send};
use bw_config::Env;
use bw_contracts::bookkeeping::{self, PublishedRecord};
use bw_contracts::{CanvasAction, CanvasJob, FileList, Job, PackageFile, RenderJob};
use bw_exporter::{Connections, ExporterConfig, RunError};
use bw_queue::{EmbeddedQueue, Queue};
use bw_standin::archive::{build, deflated, stored};
use bw_standin::benchling::{FIXTURE_ENTRY_ID, Fault, TaskScript};
use bw_store::Buckets;
use bw_testkit::archive::{rename, with_symlink};
use bw_testkit::rig::RunningService;
use bw_testkit::sample::pattern;
use serde_json::Value;

const DISPLAY_ID: &str = "EXP25000007";
const MIB: usize = 1024 * 1024;

/// A worker running in this process.
type Running = RunningService<RunError>;

/// Starts a worker on the rig's queues and bucket with `extra` environment.
async fn start(rig: &Rig, extra: &[(&str, &str)]) -> Running {
    let mut pairs = rig.env();
    pairs.push(("WORKER_CONCURRENCY".into(), "1".into()));
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = ExporterConfig::from_env(Env::from_pairs(pairs)).unwrap();
    let connections = Connections {
        queues: bw_exporter::Queues {
            export: rig.base.queue(&rig.export_url),
            render: rig.base.queue(&rig.render_url),
            canvas: rig.base.queue(&rig.canvas_url),
        },
        secret: rig.base.secret(),
        buckets: rig.base.buckets().await,
    };
    Running::spawn(config, connections).await
}

fn package_key(name: &str) -> String {
    format!("{PKG_PREFIX}/{DISPLAY_ID}/{name}")
}

/// The attachments of the happy-path export: a multipart-sized file, a nested one, a
/// non-ASCII name and an empty directory.
fn attachments() -> Vec<(String, Vec<u8>)> {
    vec![
        ("plate.csv".into(), pattern(300 * 1024, 1)),
        ("images/gel scan.png".into(), pattern(9 * MIB, 2)),
        ("notes/Übersicht.txt".into(), b"hello".to_vec()),
    ]
}

fn zip_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut members: Vec<(&str, _, &[u8])> = files
        .iter()
        .map(|(name, bytes)| (name.as_str(), deflated(), bytes.as_slice()))
        .collect();
    members.push(("empty/", stored(), b""));
    build(&members)
}

async fn http_status(addr: std::net::SocketAddr, path: &str) -> u16 {
    reqwest::get(format!("http://{addr}{path}"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_export_job_publishes_the_package_and_sends_one_render_job() {
    let rig = Rig::new(30, 3).await;
    let files = attachments();
    rig.base
        .benchling
        .add_download("export.zip", zip_of(&files));
    rig.base.benchling.push_task(TaskScript::Succeed {
        running: 2,
        download: "export.zip".into(),
    });
    // A stale attachment, a metadata file the packager owns, and a neighbouring package whose
    // name starts with ours.
    rig.put(&package_key("removed-in-benchling.csv"), b"old")
        .await;
    rig.put(&package_key("README.md"), b"# packager's").await;
    let neighbour = format!("{PKG_PREFIX}/{DISPLAY_ID}0/keep.csv");
    rig.put(&neighbour, b"neighbour").await;
    // Throttling and an outage burst on the way: the job must ride through both.
    rig.base.benchling.inject(Fault::RateLimited(1), 1);
    rig.base.benchling.inject(Fault::Status(503), 2);

    let worker = start(&rig, &[]).await;
    let render_queue = rig.base.queue(&rig.render_url);
    send(
        rig.base.queue(&rig.export_url).as_ref(),
        export_job(FIXTURE_ENTRY_ID, "msg_happy", None),
    )
    .await;
    let render: RenderJob = next_job(render_queue.as_ref(), Duration::from_secs(60)).await;

    let entry = fixture_entry();
    assert_eq!(render.entry_id.as_str(), FIXTURE_ENTRY_ID);
    assert_eq!(render.display_id, DISPLAY_ID);
    assert_eq!(
        render.modified_at,
        entry["modifiedAt"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    );
    assert_eq!(render.bucket, rig.base.bucket);
    assert_eq!(render.package_prefix, format!("{PKG_PREFIX}/{DISPLAY_ID}"));
    assert_eq!(
        render.trigger.webhook_id.as_ref().unwrap().as_str(),
        "msg_happy"
    );
    let expected_files: Vec<PackageFile> = files
        .iter()
        .map(|(name, bytes)| PackageFile {
            name: name.clone(),
            key: package_key(name),
            size: bytes.len() as u64,
        })
        .collect();
    assert_eq!(
        render.files,
        FileList::Inline {
            files: expected_files
        }
    );
    assert_eq!(
        render.entry_key,
        bookkeeping::entry_snapshot_key(&render.entry_id, &render.modified_at)
    );

    let objects = rig.objects().await;
    let mut expected_keys: Vec<String> = files.iter().map(|(name, _)| package_key(name)).collect();
    expected_keys.extend([
        package_key("README.md"),
        neighbour,
        render.entry_key.clone(),
    ]);
    expected_keys.sort();
    assert_eq!(objects.keys().cloned().collect::<Vec<_>>(), expected_keys);
    for (name, bytes) in &files {
        assert!(objects[&package_key(name)] == *bytes, "{name} differs");
    }
    let snapshot: Value = serde_json::from_slice(&objects[&render.entry_key]).unwrap();
    assert_eq!(snapshot, entry);

    assert_eq!(
        rig.base
            .benchling
            .requests_to("POST", "/api/v2/exports")
            .len(),
        1
    );
    assert!(
        rig.base
            .benchling
            .requests_to("GET", "/api/v2/tasks/")
            .len()
            >= 3
    );
    assert_eq!(http_status(worker.probes, "/health/ready").await, 200);
    // Nothing else went out, and the job is gone from its queue.
    assert!(
        next_message(render_queue.as_ref(), Duration::from_secs(1))
            .await
            .is_none()
    );
    let canvas = rig.base.queue(&rig.canvas_url);
    assert!(
        next_message(canvas.as_ref(), Duration::ZERO)
            .await
            .is_none()
    );
    worker.stop().await.unwrap();
    let export = rig.base.queue(&rig.export_url);
    assert!(
        next_message(export.as_ref(), Duration::ZERO)
            .await
            .is_none()
    );
}

/// Writes `record` as the entry's published record.
async fn publish(rig: &Rig, record: &PublishedRecord) {
    rig.put(
        &bookkeeping::published_key(&record.entry_id),
        &serde_json::to_vec(record).unwrap(),
    )
    .await;
}

/// Writes a revision of the package into the registry layout, with `user_meta` as Quilt's
/// packager copies it from `entry.json`, and points `latest` at it.
async fn revision(rig: &Rig, top_hash: &str, user_meta: Value) {
    let header = serde_json::json!({"version": "v0", "message": "m", "user_meta": user_meta});
    rig.put(
        &format!(".quilt/packages/{top_hash}"),
        format!("{header}\n").as_bytes(),
    )
    .await;
    rig.put(
        &format!(".quilt/named_packages/{PKG_PREFIX}/{DISPLAY_ID}/latest"),
        top_hash.as_bytes(),
    )
    .await;
}

#[tokio::test]
async fn update_package_on_a_published_version_checks_quilts_registry() {
    let rig = Rig::new(30, 3).await;
    let entry = fixture_entry();
    let version = entry["modifiedAt"].as_str().unwrap();
    let modified_at: chrono::DateTime<chrono::Utc> = version.parse().unwrap();
    let mut record = PublishedRecord {
        entry_id: FIXTURE_ENTRY_ID.parse().unwrap(),
        modified_at,
        package_name: format!("{PKG_PREFIX}/{DISPLAY_ID}"),
        published_at: chrono::Utc::now(),
    };
    publish(&rig, &record).await;
    let worker = start(&rig, &[]).await;
    let export = rig.base.queue(&rig.export_url);
    let render = rig.base.queue(&rig.render_url);
    let canvas = rig.base.queue(&rig.canvas_url);
    let exports = || {
        rig.base
            .benchling
            .requests_to("POST", "/api/v2/exports")
            .len()
    };

    // A webhook about the announced version is a duplicate: nothing at all.
    send(
        export.as_ref(),
        export_job(FIXTURE_ENTRY_ID, "msg_dup", None),
    )
    .await;
    // Announced a moment ago and not in the registry yet: Quilt may still be building it, so
    // the canvas shows the announcement and nothing is exported.
    // Asks from the canvas and returns what the canvas is told.
    let ask = |webhook: &'static str| {
        let (export, canvas) = (&export, &canvas);
        async move {
            send(
                export.as_ref(),
                export_job(FIXTURE_ENTRY_ID, webhook, Some("cnvs_1")),
            )
            .await;
            next_job::<CanvasJob>(canvas.as_ref(), Duration::from_secs(30)).await
        }
    };
    let told = ask("msg_fresh").await;
    assert_eq!(
        told.action,
        CanvasAction::Published {
            published_at: record.published_at
        }
    );
    assert_eq!(told.canvas_id.unwrap().as_str(), "cnvs_1");
    assert_eq!(told.entry_id.unwrap().as_str(), FIXTURE_ENTRY_ID);

    // The registry's latest revision holds an older version: not this one.
    revision(
        &rig,
        "0ld",
        serde_json::json!({"entry_id": FIXTURE_ENTRY_ID, "modified_at": "2025-01-01T00:00:00+00:00"}),
    )
    .await;
    // Announced long ago and still missing: the message was lost, so the version is exported
    // again and the render job asks for exactly that announcement to be repeated.
    record.published_at = modified_at;
    publish(&rig, &record).await;
    rig.base
        .benchling
        .add_download("export.zip", zip_of(&attachments()[..1]));
    send(
        export.as_ref(),
        export_job(FIXTURE_ENTRY_ID, "msg_lost", Some("cnvs_1")),
    )
    .await;
    let job: RenderJob = next_job(render.as_ref(), Duration::from_secs(30)).await;
    assert_eq!(job.reannounce, Some(record.published_at));
    assert_eq!(job.modified_at, modified_at);
    assert_eq!(exports(), 1);

    // The registry holds the version: the canvas hears it is up to date, naming the revision.
    revision(
        &rig,
        "abc123",
        serde_json::json!({"entry_id": FIXTURE_ENTRY_ID, "modified_at": version}),
    )
    .await;
    assert_eq!(
        ask("msg_held").await.action,
        CanvasAction::UpToDate {
            published_at: record.published_at,
            top_hash: "abc123".to_owned()
        }
    );
    assert_eq!(exports(), 1);
    assert!(
        next_message(render.as_ref(), Duration::from_secs(1))
            .await
            .is_none()
    );
    assert!(
        next_message(canvas.as_ref(), Duration::ZERO)
            .await
            .is_none(),
        "the duplicate webhook told the canvas nothing"
    );

    // The entry changes: the new version is exported, without a re-announcement.
    let mut newer = entry.clone();
    newer["modifiedAt"] = Value::from("2025-03-31T08:00:00.000001+00:00");
    rig.base.benchling.add_entry(newer);
    rig.base
        .benchling
        .add_download("export.zip", zip_of(&attachments()[..1]));
    send(
        export.as_ref(),
        export_job(FIXTURE_ENTRY_ID, "msg_newer", None),
    )
    .await;
    let job: RenderJob = next_job(render.as_ref(), Duration::from_secs(30)).await;
    assert_eq!(
        bookkeeping::version_tag(&job.modified_at),
        "20250331T080000.000001Z"
    );
    assert_eq!(job.reannounce, None);
    assert_eq!(exports(), 2);
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn a_new_version_waits_until_quilts_registry_holds_the_previous_one() {
    let rig = Rig::new(30, 3).await;
    let entry = fixture_entry();
    let entry_id = FIXTURE_ENTRY_ID.parse().unwrap();
    let version: chrono::DateTime<chrono::Utc> =
        entry["modifiedAt"].as_str().unwrap().parse().unwrap();
    let (announced, handed_over) = (
        version - chrono::TimeDelta::hours(2),
        version - chrono::TimeDelta::hours(1),
    );
    // One version announced a moment ago, and a newer one handed to the packager since.
    let mut record = PublishedRecord {
        entry_id,
        modified_at: announced,
        package_name: format!("{PKG_PREFIX}/{DISPLAY_ID}"),
        published_at: chrono::Utc::now(),
    };
    publish(&rig, &record).await;
    let claim_check = bookkeeping::entry_snapshot_key(&record.entry_id, &handed_over);
    rig.put(&claim_check, b"{}").await;
    rig.base
        .benchling
        .add_download("export.zip", zip_of(&attachments()));
    let worker = start(&rig, &[]).await;
    let render = rig.base.queue(&rig.render_url);
    let exports = || {
        rig.base
            .benchling
            .requests_to("POST", "/api/v2/exports")
            .len()
    };
    let attachment = package_key(&attachments()[0].0);
    send(
        rig.base.queue(&rig.export_url).as_ref(),
        export_job(FIXTURE_ENTRY_ID, "msg_next", None),
    )
    .await;

    // While the packager holds the newer version, nothing is exported or written.
    assert!(
        next_message(render.as_ref(), Duration::from_secs(3))
            .await
            .is_none()
    );
    assert_eq!(exports(), 0);
    // The packager announces it (its claim check goes, the record names it), but Quilt has
    // not built it yet: still nothing.
    rig.base
        .moto
        .s3_client()
        .await
        .delete_object()
        .bucket(&rig.base.bucket)
        .key(&claim_check)
        .send()
        .await
        .unwrap();
    record.modified_at = handed_over;
    record.published_at = chrono::Utc::now();
    publish(&rig, &record).await;
    assert!(
        next_message(render.as_ref(), Duration::from_secs(3))
            .await
            .is_none()
    );
    assert_eq!(exports(), 0);
    assert!(rig.keys(&attachment).await.is_empty());

    // Quilt's registry holds it: the new version is exported and handed over.
    revision(
        &rig,
        "b01d",
        serde_json::json!({"entry_id": FIXTURE_ENTRY_ID, "modified_at": handed_over.to_rfc3339()}),
    )
    .await;
    let job: RenderJob = next_job(render.as_ref(), Duration::from_secs(30)).await;
    assert_eq!(job.modified_at, version);
    assert_eq!(exports(), 1);
    assert_eq!(rig.keys(&attachment).await, [attachment]);
    let metrics = reqwest::get(format!("http://{}/metrics", worker.probes))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("bw_export_waits_total{cause=\"rendering\"} 1\n"),
        "{metrics}"
    );
    worker.stop().await.unwrap();
}

/// Archives that must be refused, with a piece of the reason each one must give.
fn hostile_corpus() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let ok = pattern(64, 3);
    let renamed = |from: &str, to: &[u8]| {
        let mut zip = build(&[("fine.txt", stored(), &ok), (from, stored(), &ok)]);
        rename(&mut zip, 1, to);
        zip
    };
    let zeros = vec![0u8; 8 * MIB];
    let many: Vec<(String, Vec<u8>)> = (0..6).map(|i| (format!("f{i}.txt"), ok.clone())).collect();
    let many: Vec<(&str, _, &[u8])> = many
        .iter()
        .map(|(n, b)| (n.as_str(), stored(), b.as_slice()))
        .collect();
    vec![
        (
            "zip slip",
            renamed("xx/evil.txt", b"../evil.txt"),
            "`..` segment",
        ),
        (
            "absolute path",
            renamed("etcx/evil", b"/etc/evil"),
            "absolute path",
        ),
        (
            "backslash",
            renamed("a_evil.txt", b"a\\evil.txt"),
            "backslash",
        ),
        (
            "drive letter",
            renamed("Cxevil.txt", b"C:evil.txt"),
            "drive letter",
        ),
        (
            "symlink",
            with_symlink("link", "/etc/passwd"),
            "symbolic link",
        ),
        (
            "bomb",
            build(&[("zeros.bin", deflated(), &zeros)]),
            "zeros.bin",
        ),
        ("too many members", build(&many), "more than the limit of 5"),
        (
            "duplicate names",
            renamed("QQQQQQQQ", b"fine.txt"),
            "more than once",
        ),
        (
            "packager file",
            build(&[("README.md", stored(), &ok)]),
            "the packager owns",
        ),
    ]
}

#[tokio::test]
async fn permanent_failures_are_dead_lettered_shown_on_the_canvas_and_write_nothing() {
    let rig = Rig::new(30, 3).await;
    let neighbour = format!("{PKG_PREFIX}/{DISPLAY_ID}0/keep.csv");
    rig.put(&neighbour, b"neighbour").await;
    let before = rig.objects().await;
    let worker = start(&rig, &[("ARCHIVE_MAX_MEMBERS", "5")]).await;
    let export = rig.base.queue(&rig.export_url);
    let dead_letter = rig.base.queue(&rig.dead_letter_url);
    let canvas = rig.base.queue(&rig.canvas_url);

    let mut cases: Vec<(String, Option<TaskScript>, &str, String)> = hostile_corpus()
        .into_iter()
        .map(|(name, zip, reason)| {
            let download = format!("{}.zip", name.replace(' ', "-"));
            rig.base.benchling.add_download(&download, zip);
            (
                name.to_owned(),
                Some(TaskScript::Succeed {
                    running: 0,
                    download,
                }),
                FIXTURE_ENTRY_ID,
                reason.to_owned(),
            )
        })
        .collect();
    cases.push((
        "failed export".into(),
        Some(TaskScript::Fail {
            running: 1,
            message: "Export exceeds the size limit".into(),
            errors: vec![],
        }),
        FIXTURE_ENTRY_ID,
        "Export exceeds the size limit".into(),
    ));
    cases.push((
        "missing entry".into(),
        None,
        "etr_missing",
        "404 not found".into(),
    ));

    for (index, (name, script, entry, reason)) in cases.into_iter().enumerate() {
        if let Some(script) = script {
            rig.base.benchling.push_task(script);
        }
        let canvas_id = format!("cnvs_{index}");
        send(
            export.as_ref(),
            export_job(entry, &format!("msg_bad_{index}"), Some(&canvas_id)),
        )
        .await;
        let parked = next_message(dead_letter.as_ref(), Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("{name}: not dead-lettered"));
        let recorded = &parked.attributes["failure_reason"];
        assert!(recorded.contains(&reason), "{name}: {recorded}");
        let shown: CanvasJob = next_job(canvas.as_ref(), Duration::from_secs(10)).await;
        assert_eq!(shown.canvas_id.unwrap().as_str(), canvas_id, "{name}");
        match shown.action {
            CanvasAction::ExportFailed { reason: text } => {
                assert!(text.contains(&reason), "{name}: {text}");
                assert!(!text.contains("X-Amz"), "{name}: URL leaked: {text}");
            }
            other => panic!("{name}: expected ExportFailed, got {other:?}"),
        }
        assert_eq!(rig.objects().await, before, "{name} wrote something");
    }
    // One export per case: permanent failures are not retried.
    let hostile = hostile_corpus().len();
    assert_eq!(
        rig.base
            .benchling
            .requests_to("POST", "/api/v2/exports")
            .len(),
        hostile + 1
    );
    assert_eq!(
        rig.base
            .benchling
            .requests_to("GET", "/api/v2/entries/etr_missing")
            .len(),
        1
    );
    let render = rig.base.queue(&rig.render_url);
    assert!(
        next_message(render.as_ref(), Duration::from_secs(1))
            .await
            .is_none()
    );
    worker.stop().await.unwrap();
}

#[tokio::test]
async fn embedded_defaults_export_into_a_directory() {
    let rig = Rig::new(30, 3).await;
    let files = attachments();
    rig.base
        .benchling
        .add_download("export.zip", zip_of(&files));
    let buckets = tempfile::tempdir().unwrap();
    let (export, export_dead) = EmbeddedQueue::with_dead_letter("export.fifo", true);
    let (render, _) = EmbeddedQueue::with_dead_letter("render.fifo", true);
    let (canvas, _) = EmbeddedQueue::with_dead_letter("canvas.fifo", true);
    let env = Env::from_pairs([
        ("BENCHLING_API_BASE_URL", rig.base.benchling.url()),
        ("EXPORT_FIRST_POLL_MS", "10".to_owned()),
        (
            "OBJECT_STORE_DIR",
            buckets.path().to_string_lossy().into_owned(),
        ),
    ]);
    let config = ExporterConfig::from_env(env).unwrap();
    assert_eq!(
        config.store,
        bw_config::StoreBackend::Directory(buckets.path().to_owned())
    );
    let worker = Running::spawn(
        config,
        Connections {
            queues: bw_exporter::Queues {
                export: Arc::clone(&export) as Arc<dyn Queue>,
                render: Arc::clone(&render) as Arc<dyn Queue>,
                canvas: canvas as Arc<dyn Queue>,
            },
            secret: rig.base.secret(),
            buckets: Buckets::Directory(buckets.path().to_owned()),
        },
    )
    .await;
    send(
        export.as_ref(),
        export_job(FIXTURE_ENTRY_ID, "msg_local", None),
    )
    .await;
    let job: RenderJob = next_job(render.as_ref(), Duration::from_secs(30)).await;
    let root = buckets.path().join(&rig.base.bucket);
    for (name, bytes) in &files {
        let written = std::fs::read(root.join(package_key(name))).unwrap();
        assert!(written == *bytes, "{name} differs");
    }
    let snapshot: Value =
        serde_json::from_slice(&std::fs::read(root.join(&job.entry_key)).unwrap()).unwrap();
    assert_eq!(snapshot, fixture_entry());
    assert_eq!(job.group_id(), FIXTURE_ENTRY_ID);
    assert!(
        export_dead
            .receive(1, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    worker.stop().await.unwrap();
}
