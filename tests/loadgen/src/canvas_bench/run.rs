//! One repeat: a fresh bucket of Quilt packages and fresh queues on moto, a Benchling stand-in
//! knowing every entry and its canvas, and the release `canvas` binary started on them. After one
//! warm-up click, one entry's package is paged through click by click; then one click per other
//! entry is sent at once; then the checks.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bw_contracts::{
    Button, ButtonAction, CanvasAction, CanvasJob, EntryId, EventType, PackageTarget, Trigger,
};
use bw_queue::{OutgoingMessage, Queue as _, SqsQueue};
use bw_standin::benchling::{BenchlingStandIn, ENTRY_FIXTURE, secret_json};
use bw_standin::stub::free_port;
use bw_testkit::moto::Moto;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use bw_loadgen::service_bench::buckets;
use bw_loadgen::service_bench::cli::{CLIENT_ID, CLIENT_SECRET};
use bw_loadgen::service_bench::process;
use bw_loadgen::service_bench::procfs::{self, CpuMeter};

/// The entry whose click warms the worker up.
const WARM_UP: usize = 1;
/// The entry whose package is paged through.
const PAGED: usize = 2;
/// Files per browser page (the canvas's default).
const PAGE_SIZE: u32 = 15;
/// Longest wait for the canvas updates of a stretch; only a stuck run reaches it.
const UPDATE_TIMEOUT: Duration = Duration::from_secs(600);
/// The canvas queue's visibility timeout: longer than any run, so no click is redelivered
/// while its first attempt works.
const VISIBILITY_SECS: u32 = 1_800;

/// What the repeats have in common.
pub struct Setup {
    /// The moto server.
    pub moto: &'static Moto,
    /// An S3 client for it.
    pub s3: aws_sdk_s3::Client,
    /// Its process, when found, to count its CPU.
    pub moto_pid: Option<u32>,
    /// The `canvas` binary.
    pub canvas: PathBuf,
    /// Variables set after the defaults.
    pub extra_env: Vec<(String, String)>,
    /// Where each repeat's worker log and secret file go.
    pub logs: PathBuf,
}

/// The size of a repeat.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Entries, each with a package and a canvas: the first warms the worker up, the second
    /// is paged through, the others get one click each in the burst.
    pub entries: usize,
    /// Files in every package.
    pub files: usize,
    /// Pages of the first package browsed one after another.
    pub pages: usize,
}

/// The measurements of one repeat.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    /// The worker's time for the first page of a package it has not read yet (its
    /// `duration_ms`), once warm.
    pub first_page: Duration,
    /// The median of the worker's times for the following pages.
    pub next_page: Duration,
    /// One click per other entry, sent at once: first send → last canvas update.
    pub burst: Duration,
    /// Clicks in the burst.
    pub burst_clicks: usize,
    /// The worker's CPU over the burst.
    pub burst_cpu: Duration,
    /// moto's CPU over the burst, if its process was found.
    pub moto_burst_cpu: Option<Duration>,
    /// The worker's `VmHWM` in KiB, read just before SIGTERM.
    pub peak_rss_kib: u64,
    /// The worker's CPU over its whole life.
    pub cpu: Duration,
}

impl Measured {
    /// Clicks per second over the burst.
    pub fn clicks_per_second(&self) -> f64 {
        self.burst_clicks as f64 / self.burst.as_secs_f64()
    }

    /// moto's CPU over the burst as a share of its wall time.
    pub fn moto_share(&self) -> Option<f64> {
        self.moto_burst_cpu
            .map(|cpu| cpu.as_secs_f64() / self.burst.as_secs_f64())
    }
}

fn entry(i: usize) -> String {
    format!("etr_bench{i:04}")
}

fn canvas(i: usize) -> String {
    format!("cnvs_bench{i:04}")
}

/// Runs repeat number `repeat` of `shape` and removes its bucket.
pub async fn run(setup: &Setup, shape: Shape, repeat: usize) -> anyhow::Result<Measured> {
    let moto = setup.moto;
    let bucket = Moto::unique_name("bench-canvas");
    moto.create_bucket(&bucket).await;
    let (canvas_url, dead_letter_url) = moto
        .create_queue_with_dead_letter(&Moto::unique_name("canvas"), true, VISIBILITY_SECS, 2)
        .await;
    let export_url = moto
        .create_queue(&Moto::unique_name("export"), true, 30, None)
        .await;
    let sqs = moto.sqs_client().await;
    let benchling = BenchlingStandIn::start(CLIENT_ID, CLIENT_SECRET);
    eprintln!(
        "== repeat {repeat}: storing {} packages of {} files",
        shape.entries, shape.files
    );
    store_packages(setup, shape, &bucket, &benchling).await?;

    let secret_path = setup.logs.join(format!("canvas-secret-{repeat}.json"));
    fs::write(&secret_path, secret_json(CLIENT_ID, CLIENT_SECRET, &bucket))?;
    let port = free_port();
    let mut env = setup.moto.env();
    env.extend(
        [
            ("CANVAS_QUEUE_URL", canvas_url.clone()),
            ("EXPORT_QUEUE_URL", export_url),
            ("BenchlingSecret", format!("file:{}", secret_path.display())),
            ("BENCHLING_API_BASE_URL", benchling.url()),
            ("QUILT_WEB_HOST", "catalog.example.com".to_owned()),
            // Required with SQS; Browse clicks never query it.
            ("ATHENA_USER_DATABASE", "quilt_bench".to_owned()),
            // One `job processed` line per click, with its duration.
            ("LOG_LEVEL", "info".to_owned()),
            ("LOG_FORMAT", "json".to_owned()),
            // moto keeps a FIFO group busy for a whole long poll that began while one of its
            // jobs ran; short polls stop that from stalling the pages of one entry.
            ("RECEIVE_WAIT_SECS", "1".to_owned()),
            ("HOST", "127.0.0.1".to_owned()),
            ("PORT", port.to_string()),
        ]
        .map(|(name, value)| (name.to_owned(), value)),
    );
    env.extend(setup.extra_env.iter().cloned());
    let log_path = setup.logs.join(format!("canvas-{repeat}.log"));
    let (mut child, pid) = process::start(&setup.canvas, env, &log_path, port, "canvas").await?;
    let seen = |e: anyhow::Error| e.context(format!("canvas log: {}", log_path.display()));
    let queue = SqsQueue::new(sqs.clone(), &canvas_url);
    let total_pages = shape.files.div_ceil(PAGE_SIZE as usize);

    // A first click warms the worker up (its Benchling token, its connections), so the pages
    // below measure the package, not the start.
    send(&queue, WARM_UP, 0).await?;
    await_updates(&benchling, &[WARM_UP], 1)
        .await
        .map_err(seen)?;

    // One package, page after page: each click once the previous one shows.
    for page in 0..shape.pages {
        send(&queue, PAGED, page as u32).await?;
        let body = await_updates(&benchling, &[PAGED], page + 1)
            .await
            .map_err(seen)?;
        expect_page(&body[0], page, total_pages)?;
    }

    // One click per other entry, all at once (distinct FIFO groups).
    let others: Vec<usize> = (PAGED + 1..=shape.entries).collect();
    let moto_meter = CpuMeter::start(setup.moto_pid);
    let cpu_before = procfs::cpu_time(pid)?;
    let started = Instant::now();
    let mut sends = JoinSet::new();
    for &i in &others {
        let queue = SqsQueue::new(sqs.clone(), &canvas_url);
        sends.spawn(async move { send(&queue, i, 0).await });
    }
    while let Some(sent) = sends.join_next().await {
        sent??;
    }
    let bodies = await_updates(&benchling, &others, 1).await.map_err(seen)?;
    let burst = started.elapsed();
    let burst_cpu = procfs::cpu_time(pid)?.saturating_sub(cpu_before);
    let moto_burst_cpu = moto_meter.and_then(|meter| meter.used());
    for body in &bodies {
        expect_page(body, 0, total_pages)?;
    }
    let peak_rss_kib = procfs::peak_rss_kib(pid)?;
    let cpu = procfs::cpu_time(pid)?;
    process::terminate(&mut child, pid, "canvas")
        .await
        .map_err(seen)?;
    fs::remove_file(&secret_path)?;

    let dead = SqsQueue::new(sqs, &dead_letter_url)
        .receive(10, Duration::ZERO)
        .await?;
    ensure!(
        dead.is_empty(),
        "{} click(s) were dead-lettered",
        dead.len()
    );
    let durations = job_durations(&fs::read_to_string(&log_path)?, &entry(PAGED));
    ensure!(
        durations.len() == shape.pages,
        "{} job lines for the paged entry, expected {}",
        durations.len(),
        shape.pages
    );
    // Browsing reads packages; it never writes into them.
    let (written, _) = buckets::usage(&setup.s3, &bucket, "benchling/").await?;
    ensure!(
        written == 0,
        "{written} object(s) written under the package prefix"
    );
    let mut next: Vec<Duration> = durations[1..].to_vec();
    next.sort();
    buckets::remove(&setup.s3, &bucket).await?;
    Ok(Measured {
        first_page: durations[0],
        next_page: next[next.len() / 2],
        burst,
        burst_clicks: others.len(),
        burst_cpu,
        moto_burst_cpu,
        peak_rss_kib,
        cpu,
    })
}

/// Per entry: the stand-in learns the entry and its canvas, and the bucket gets a Quilt
/// package (manifest, `latest` pointer, `entry.json`) of `shape.files` files.
async fn store_packages(
    setup: &Setup,
    shape: Shape,
    bucket: &str,
    benchling: &BenchlingStandIn,
) -> anyhow::Result<()> {
    let fixture: Value = serde_json::from_str(ENTRY_FIXTURE)?;
    for i in 1..=shape.entries {
        let display_id = format!("EXPB{i:04}");
        let package = format!("benchling/{display_id}");
        let mut raw = fixture["entry"].clone();
        raw["id"] = json!(entry(i));
        raw["displayId"] = json!(display_id);
        benchling.add_entry(raw);
        benchling.add_canvas(json!({
            "id": canvas(i),
            "featureId": "quilt_entry",
            "resourceId": entry(i),
            "enabled": true,
            "blocks": [],
        }));
        let mut manifest = String::with_capacity(shape.files * 160);
        manifest
            .push_str(&json!({"version": "v0", "message": "bench", "user_meta": {}}).to_string());
        manifest.push('\n');
        for n in 1..=shape.files {
            let line = json!({
                "logical_key": format!("data/well-{n:05}.csv"),
                "physical_keys": [format!("s3://{bucket}/{package}/data/well-{n:05}.csv?versionId=v1")],
                "size": 1_000 + n,
                "hash": {"type": "SHA256", "value": format!("{n:064x}")},
            });
            manifest.push_str(&line.to_string());
            manifest.push('\n');
        }
        let top_hash = format!("{:064x}", 0xbe4c_0000 + i);
        let moto = setup.moto;
        moto.put_object(
            bucket,
            &format!(".quilt/packages/{top_hash}"),
            manifest.into_bytes(),
        )
        .await;
        moto.put_object(
            bucket,
            &format!(".quilt/named_packages/{package}/latest"),
            top_hash.into_bytes(),
        )
        .await;
    }
    Ok(())
}

/// Sends a Browse click on entry `i`'s canvas for `page`.
async fn send(queue: &SqsQueue, i: usize, page: u32) -> anyhow::Result<()> {
    let entry_id: EntryId = entry(i).parse()?;
    let button = Button::new(
        entry_id.clone(),
        ButtonAction::paged(false, PackageTarget::Primary, page, PAGE_SIZE),
    );
    let job = CanvasJob {
        canvas_id: Some(canvas(i).parse()?),
        entry_id: Some(entry_id),
        feature_id: None,
        app_id: None,
        action: CanvasAction::Button { button },
        trigger: Trigger {
            event_type: EventType::CanvasUserInteracted,
            event_id: None,
            webhook_id: None,
            occurred_at: chrono::Utc::now(),
            user_id: None,
        },
    };
    queue.send(OutgoingMessage::job(job, None)).await?;
    Ok(())
}

/// Waits until each of `entries`' canvases got `count` updates and returns the last body of
/// each.
async fn await_updates(
    benchling: &BenchlingStandIn,
    entries: &[usize],
    count: usize,
) -> anyhow::Result<Vec<Value>> {
    let deadline = Instant::now() + UPDATE_TIMEOUT;
    loop {
        let mut bodies = Vec::with_capacity(entries.len());
        for &i in entries {
            let path = format!("/api/v2/app-canvases/{}", canvas(i));
            let updates = benchling.requests_to("PATCH", &path);
            match updates.get(count - 1) {
                Some(update) => bodies.push(update.json().context("a PATCH without JSON")?),
                None => break,
            }
        }
        if bodies.len() == entries.len() {
            return Ok(bodies);
        }
        if Instant::now() > deadline {
            bail!("canvas updates missing after {UPDATE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Checks that a canvas update shows page `page` (0-based) of `total`.
fn expect_page(body: &Value, page: usize, total: usize) -> anyhow::Result<()> {
    let markdown: String = body["blocks"]
        .as_array()
        .context("no blocks")?
        .iter()
        .filter_map(|block| block["value"].as_str())
        .collect();
    let title = format!("Page {} of {total}", page + 1);
    ensure!(
        markdown.contains(&title),
        "expected {title:?} in {markdown}"
    );
    Ok(())
}

/// The `duration_ms` of every `job processed` line about `entry`, in order.
fn job_durations(log: &str, entry: &str) -> Vec<Duration> {
    let mut by_entry: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    for line in &lines {
        if line["message"] != "job processed" {
            continue;
        }
        if let (Some(id), Some(ms)) = (
            line["span"]["entry_id"].as_str(),
            line["duration_ms"].as_u64(),
        ) {
            by_entry
                .entry(id)
                .or_default()
                .push(Duration::from_millis(ms));
        }
    }
    by_entry.remove(entry).unwrap_or_default()
}
