//! One repeat: fresh queues and bucket on moto, the claim checks of every entry stored up
//! front, the release `packager` binary started on them; one render job timed alone, then the
//! rest sent at once and timed until the last canvas notice; then the checks.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bw_contracts::bookkeeping;
use bw_contracts::{
    CanvasAction, CanvasJob, EventType, FileList, JobEnvelope, PackageFile, RenderJob, Trigger,
};
use bw_queue::{OutgoingMessage, Queue as _, SqsQueue};
use bw_standin::benchling::{BenchlingStandIn, ENTRY_FIXTURE, secret_json};
use bw_standin::stub::free_port;
use bw_testkit::moto::Moto;
use serde_json::{Value, json};
use tokio::process::Child;
use tokio::task::JoinSet;

use bw_loadgen::service_bench::buckets;
use bw_loadgen::service_bench::cli::{CLIENT_ID, CLIENT_SECRET};
use bw_loadgen::service_bench::process;
use bw_loadgen::service_bench::procfs::{self, CpuMeter};

/// The linked entities in every entry's notes, which the packager names through Benchling.
const LINKED: [(&str, &str); 2] = [("bfi_benchA", "Strain A"), ("bfi_benchB", "Strain B")];
/// The metadata files the packager writes per package.
const METADATA_FILES: usize = 5;

/// Longest wait for the canvas notices of a stretch. Far above any expected run, so only a
/// stuck run hits it.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(600);
/// The render queue's visibility timeout: longer than any run, so a job is never redelivered
/// while its first attempt is still working (which would make the numbers meaningless).
const VISIBILITY_SECS: u32 = 1_800;

/// What the repeats have in common.
pub struct Setup {
    /// The moto server.
    pub moto: &'static Moto,
    /// An S3 client for it.
    pub s3: aws_sdk_s3::Client,
    /// An SQS client for it.
    pub sqs: aws_sdk_sqs::Client,
    /// Its process, when found, to count its CPU.
    pub moto_pid: Option<u32>,
    /// The `packager` binary.
    pub packager: PathBuf,
    /// Variables set after the defaults (knobs under test, such as `WORKER_CONCURRENCY`).
    pub extra_env: Vec<(String, String)>,
    /// Where each repeat's packager log and secret file go.
    pub logs: PathBuf,
}

/// The size of a repeat.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Entries, hence render jobs: one alone, the rest in the burst.
    pub entries: usize,
    /// Files in each entry's stored file list.
    pub files: usize,
}

/// The measurements of one repeat.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    /// The first job alone: sent → its canvas notice received.
    pub single: Duration,
    /// The other jobs, sent at once: first send → last canvas notice received.
    pub burst: Duration,
    /// Jobs in the burst.
    pub burst_jobs: usize,
    /// The packager's CPU over the burst.
    pub burst_cpu: Duration,
    /// moto's CPU over the burst, if its process was found.
    pub moto_burst_cpu: Option<Duration>,
    /// The packager's `VmHWM` in KiB, read just before SIGTERM.
    pub peak_rss_kib: u64,
    /// The packager's CPU over its whole life (start-up included).
    pub cpu: Duration,
    /// Bulk-get calls the Benchling stand-in answered (the entity-name look-ups).
    pub lookups: usize,
}

impl Measured {
    /// Render jobs per second over the burst.
    pub fn jobs_per_second(&self) -> f64 {
        self.burst_jobs as f64 / self.burst.as_secs_f64()
    }
}

/// The queues of one repeat.
struct Queues {
    render: Arc<SqsQueue>,
    render_dead_letter: SqsQueue,
    canvas: SqsQueue,
    packager: SqsQueue,
    /// (`RENDER_QUEUE_URL`, `CANVAS_QUEUE_URL`, `PACKAGER_SQS_URL`).
    urls: [String; 3],
}

/// Runs repeat number `repeat` of `shape`, checks the results, and removes its bucket.
pub async fn run(setup: &Setup, shape: Shape, repeat: usize) -> anyhow::Result<Measured> {
    let moto = setup.moto;
    let bucket = Moto::unique_name("bench");
    moto.create_bucket(&bucket).await;
    let (render_url, dead_letter_url) = moto
        .create_queue_with_dead_letter(&Moto::unique_name("render"), true, VISIBILITY_SECS, 2)
        .await;
    let canvas_url = moto
        .create_queue(&Moto::unique_name("canvas"), true, 30, None)
        .await;
    // Quilt's packager queue is a standard queue.
    let packager_url = moto
        .create_queue(&Moto::unique_name("quilt-packager"), false, 30, None)
        .await;
    let queue = |url: &str| SqsQueue::new(setup.sqs.clone(), url);
    let queues = Queues {
        render: Arc::new(queue(&render_url)),
        render_dead_letter: queue(&dead_letter_url),
        canvas: queue(&canvas_url),
        packager: queue(&packager_url),
        urls: [render_url, canvas_url, packager_url],
    };
    let benchling = BenchlingStandIn::start(CLIENT_ID, CLIENT_SECRET);
    for (id, name) in LINKED {
        benchling.add_entity("custom_entity", id, name);
    }
    eprintln!(
        "== repeat {repeat}: storing {} claim checks of {} files",
        shape.entries, shape.files
    );
    let jobs = store_claim_checks(setup, shape, &bucket, repeat).await?;
    let measured = measure(setup, shape, &bucket, &queues, &benchling, &jobs, repeat).await?;
    check(setup, shape, &bucket, &queues, &jobs).await?;
    buckets::remove(&setup.s3, &bucket).await?;
    Ok(measured)
}

/// Stores, per entry, the entry JSON and the file list as the exporter leaves them, and returns
/// the render jobs the exporter would send.
async fn store_claim_checks(
    setup: &Setup,
    shape: Shape,
    bucket: &str,
    repeat: usize,
) -> anyhow::Result<Vec<RenderJob>> {
    let fixture: Value = serde_json::from_str(ENTRY_FIXTURE)?;
    let mut jobs = Vec::with_capacity(shape.entries);
    for i in 1..=shape.entries {
        let entry_id: bw_contracts::EntryId = format!("etr_bench{i:04}").parse()?;
        let display_id = format!("EXPB{i:04}");
        let prefix = format!("benchling/{display_id}");
        let mut entry = fixture["entry"].clone();
        entry["id"] = json!(entry_id.as_str());
        entry["displayId"] = json!(display_id);
        entry["days"][0]["notes"][0]["links"] = LINKED
            .iter()
            .map(|(id, _)| {
                json!({
                    "type": "custom_entity",
                    "id": id,
                    "webURL": format!("https://standin.benchling.com/s/f/lib/{id}/edit"),
                })
            })
            .collect();
        let modified_at = entry["modifiedAt"]
            .as_str()
            .context("the fixture has no modifiedAt")?
            .parse()?;
        let entry_key = bookkeeping::entry_snapshot_key(&entry_id, &modified_at);
        put(setup, bucket, &entry_key, serde_json::to_vec(&entry)?).await?;
        let files: Vec<PackageFile> = (1..=shape.files)
            .map(|n| PackageFile {
                name: format!("data/well-{n:04}.csv"),
                key: format!("{prefix}/data/well-{n:04}.csv"),
                size: 1_000 + n as u64,
            })
            .collect();
        let files_key = bookkeeping::file_list_key(&entry_id, &modified_at);
        put(setup, bucket, &files_key, serde_json::to_vec(&files)?).await?;
        jobs.push(RenderJob {
            reannounce: None,
            entry_id,
            display_id: display_id.clone(),
            modified_at,
            bucket: bucket.to_owned(),
            package_prefix: prefix,
            entry_key,
            files: FileList::Stored {
                key: files_key,
                count: files.len(),
            },
            canvas_id: Some(format!("cnvs_bench{i:04}").parse()?),
            base_url: Some("https://standin.benchling.com".into()),
            trigger: Trigger {
                event_type: EventType::EntryUpdatedFields,
                event_id: None,
                webhook_id: Some(format!("msg_bench_{repeat}_{i:04}").parse()?),
                occurred_at: "2025-03-30T23:37:23Z".parse()?,
                user_id: None,
            },
        });
    }
    Ok(jobs)
}

async fn put(setup: &Setup, bucket: &str, key: &str, body: Vec<u8>) -> anyhow::Result<()> {
    setup
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .with_context(|| format!("storing s3://{bucket}/{key}"))?;
    Ok(())
}

/// Starts the packager, times the single job and the burst, and stops it.
async fn measure(
    setup: &Setup,
    shape: Shape,
    bucket: &str,
    queues: &Queues,
    benchling: &BenchlingStandIn,
    jobs: &[RenderJob],
    repeat: usize,
) -> anyhow::Result<Measured> {
    let secret_path = setup.logs.join(format!("secret-{repeat}.json"));
    fs::write(&secret_path, secret_json(CLIENT_ID, CLIENT_SECRET, bucket))?;
    let port = free_port();
    let [render_url, canvas_url, packager_url] = queues.urls.clone();
    let mut env: Vec<(String, String)> = setup.moto.env();
    env.extend(
        [
            ("RENDER_QUEUE_URL", render_url),
            ("CANVAS_QUEUE_URL", canvas_url),
            ("PACKAGER_SQS_URL", packager_url),
            ("BenchlingSecret", format!("file:{}", secret_path.display())),
            ("BENCHLING_API_BASE_URL", benchling.url()),
            ("LOG_LEVEL", "warn".to_owned()),
            ("HOST", "127.0.0.1".to_owned()),
            ("PORT", port.to_string()),
        ]
        .map(|(name, value)| (name.to_owned(), value)),
    );
    env.extend(setup.extra_env.iter().cloned());

    let log_path = setup.logs.join(format!("packager-{repeat}.log"));
    let (mut child, pid) =
        process::start(&setup.packager, env, &log_path, port, "packager").await?;
    let seen = |e: anyhow::Error| e.context(format!("packager log: {}", log_path.display()));

    let (first, rest) = jobs.split_first().context("no jobs")?;
    let started = Instant::now();
    send(queues, std::slice::from_ref(first)).await?;
    let mut notified = BTreeSet::new();
    await_notices(queues, &mut child, &mut notified, 1)
        .await
        .map_err(seen)?;
    let single = started.elapsed();

    let moto_meter = CpuMeter::start(setup.moto_pid);
    let packager_before = procfs::cpu_time(pid)?;
    let started = Instant::now();
    send(queues, rest).await?;
    await_notices(queues, &mut child, &mut notified, shape.entries)
        .await
        .map_err(seen)?;
    let burst = started.elapsed();
    let moto_burst_cpu = moto_meter.and_then(|meter| meter.used());
    let peak_rss_kib = procfs::peak_rss_kib(pid)?;
    let cpu = procfs::cpu_time(pid)?;
    process::terminate(&mut child, pid, "packager")
        .await
        .map_err(seen)?;
    fs::remove_file(&secret_path)?;

    let expected: BTreeSet<String> = jobs.iter().map(|job| job.entry_id.to_string()).collect();
    ensure!(
        notified == expected,
        "the canvas notices name other entries than the jobs"
    );
    Ok(Measured {
        single,
        burst,
        burst_jobs: rest.len(),
        burst_cpu: cpu.saturating_sub(packager_before),
        moto_burst_cpu,
        peak_rss_kib,
        cpu,
        lookups: benchling
            .requests_to("GET", "/api/v2/custom-entities:bulk-get")
            .len(),
    })
}

/// Sends `jobs` to the render queue all at once, as the exporters of many entries would.
async fn send(queues: &Queues, jobs: &[RenderJob]) -> anyhow::Result<()> {
    let mut sends = JoinSet::new();
    for job in jobs {
        let queue = Arc::clone(&queues.render);
        let message = OutgoingMessage::job(job.clone(), None);
        sends.spawn(async move { queue.send(message).await });
    }
    while let Some(sent) = sends.join_next().await {
        sent?.context("sending a render job")?;
    }
    Ok(())
}

/// Receives and deletes canvas notices until `notified` holds `total` entries; every notice
/// must say "published". Fails if the packager exits first or [`NOTICE_TIMEOUT`] passes.
async fn await_notices(
    queues: &Queues,
    child: &mut Child,
    notified: &mut BTreeSet<String>,
    total: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + NOTICE_TIMEOUT;
    while notified.len() < total {
        if Instant::now() >= deadline {
            bail!(
                "{} of {total} canvas notices within {NOTICE_TIMEOUT:?}",
                notified.len()
            );
        }
        // Long polls of a second, which moto answers as soon as a message arrives.
        for message in queues
            .canvas
            .receive(10, Duration::from_secs(1))
            .await
            .context("receiving from the canvas queue")?
        {
            queues.canvas.delete(&message.receipt).await?;
            let notice = JobEnvelope::<CanvasJob>::from_body(&message.body)
                .context("the canvas queue got something other than a canvas job")?
                .job;
            ensure!(
                matches!(notice.action, CanvasAction::Published { .. }),
                "a render job did not publish: {:?}",
                notice.action
            );
            let entry = notice.entry_id.context("a canvas notice names no entry")?;
            notified.insert(entry.to_string());
        }
        if let Some(status) = child.try_wait()? {
            bail!("the packager exited before every canvas notice: {status}");
        }
    }
    Ok(())
}

/// One packager message per entry, nothing dead-lettered, and for the first and last entry the
/// five metadata files with every listed file in `entry.json`.
async fn check(
    setup: &Setup,
    shape: Shape,
    bucket: &str,
    queues: &Queues,
    jobs: &[RenderJob],
) -> anyhow::Result<()> {
    let parked = queues
        .render_dead_letter
        .receive(10, Duration::ZERO)
        .await?;
    ensure!(
        parked.is_empty(),
        "{} render job(s) dead-lettered",
        parked.len()
    );
    let mut packages = Vec::new();
    while packages.len() < shape.entries {
        let batch = queues.packager.receive(10, Duration::from_secs(1)).await?;
        if batch.is_empty() {
            break;
        }
        for message in batch {
            let body: Value = serde_json::from_str(&message.body)?;
            packages.push(body["package_name"].as_str().unwrap_or_default().to_owned());
        }
    }
    let distinct: BTreeSet<&String> = packages.iter().collect();
    ensure!(
        packages.len() == shape.entries && distinct.len() == shape.entries,
        "{} packager messages for {} packages; expected one per entry ({})",
        packages.len(),
        distinct.len(),
        shape.entries
    );
    for job in [jobs.first(), jobs.last()].into_iter().flatten() {
        let prefix = format!("{}/", job.package_prefix);
        let (objects, _) = buckets::usage(&setup.s3, bucket, &prefix).await?;
        ensure!(
            objects == METADATA_FILES,
            "{objects} objects under {prefix}; expected the {METADATA_FILES} metadata files"
        );
        let key = format!("{prefix}entry.json");
        let object = setup
            .s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .with_context(|| format!("reading s3://{bucket}/{key}"))?;
        let entry_json: Value = serde_json::from_slice(&object.body.collect().await?.into_bytes())?;
        let files = entry_json["files"]
            .as_object()
            .map_or(0, |files| files.len());
        ensure!(
            files == shape.files,
            "{key} lists {files} files; expected {}",
            shape.files
        );
    }
    Ok(())
}
