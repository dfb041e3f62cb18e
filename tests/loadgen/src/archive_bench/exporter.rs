//! One timed run of the release `exporter` binary: fresh queues on moto, a fresh bucket (or
//! directory), a Benchling stand-in serving the archive from disk; the clock runs from sending
//! the export job to receiving the render job the exporter sends when the package files are all
//! written.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bw_contracts::{EventType, ExportJob, FileList, JobEnvelope, RenderJob, Trigger, WebhookId};
use bw_queue::{OutgoingMessage, Queue as _, SqsQueue};
use bw_standin::benchling::{BenchlingStandIn, FIXTURE_ENTRY_ID, secret_json};
use bw_standin::stub::free_port;
use bw_testkit::moto::{Moto, WorkerQueues};
use tokio::process::Child;

use crate::shapes::{self, Shape};
use crate::{Backend, spread_subdirectories, sync_disks};
use bw_loadgen::service_bench::buckets;
use bw_loadgen::service_bench::cli::{CLIENT_ID, CLIENT_SECRET};
use bw_loadgen::service_bench::process;
use bw_loadgen::service_bench::procfs::{self, CpuMeter};

/// Longest wait for the render job. Far above any expected run, so only a stuck run hits it.
const JOB_TIMEOUT: Duration = Duration::from_secs(900);
/// The export queue's visibility timeout: longer than any run, so a job is never redelivered
/// while the first attempt is still working (which would make the time meaningless).
const VISIBILITY_SECS: u32 = 1_800;

/// What stays the same across the exporter runs.
pub struct Setup {
    /// The moto server.
    pub moto: &'static Moto,
    /// An S3 client for it.
    pub s3: aws_sdk_s3::Client,
    /// An SQS client for it.
    pub sqs: aws_sdk_sqs::Client,
    /// Its process, when found, to count its CPU.
    pub moto_pid: Option<u32>,
    /// The `exporter` binary.
    pub exporter: PathBuf,
    /// Variables set after the defaults (knobs under test, such as `UPLOAD_CONCURRENCY`).
    pub extra_env: Vec<(String, String)>,
    /// Scratch space; each run works in its own directory below it, removed afterwards.
    pub work: PathBuf,
    /// Where each run's exporter log is kept.
    pub logs: PathBuf,
}

/// The measurements of one exporter run.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    /// Export job sent → render job received.
    pub elapsed: Duration,
    /// The exporter's `VmHWM` in KiB, read just before SIGTERM.
    pub peak_rss_kib: u64,
    /// CPU the exporter used over its whole life (start-up and idle included: a few ms).
    pub cpu: Duration,
    /// CPU moto used while the clock ran, if its process was found.
    pub moto_cpu: Option<Duration>,
}

/// Exports `zip` (of `shape`) once into `backend`, checks the result, and cleans up after a
/// successful run.
pub async fn run(
    setup: &Setup,
    shape: Shape,
    zip: &Path,
    backend: Backend,
    label: &str,
) -> anyhow::Result<Measured> {
    let dir = setup.work.join(label);
    // A run interrupted earlier may have left its directory.
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    // The spool (created and deleted per member) and the store each get a fresh place.
    spread_subdirectories(&dir);
    let bucket = Moto::unique_name("bench");
    if backend == Backend::S3 {
        setup.moto.create_bucket(&bucket).await;
    }
    // A failed run stops the benchmark and leaves its directory for a look.
    let measured = measure(setup, shape, zip, backend, label, &dir, &bucket).await?;
    if backend == Backend::S3 {
        buckets::remove(&setup.s3, &bucket).await?;
    }
    fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    Ok(measured)
}

async fn measure(
    setup: &Setup,
    shape: Shape,
    zip: &Path,
    backend: Backend,
    label: &str,
    dir: &Path,
    bucket: &str,
) -> anyhow::Result<Measured> {
    let moto = setup.moto;
    let WorkerQueues {
        export: export_url,
        render: render_url,
        canvas: canvas_url,
        ..
    } = moto.create_worker_queues(VISIBILITY_SECS, 2).await;
    let benchling = BenchlingStandIn::start(CLIENT_ID, CLIENT_SECRET);
    // The stand-in's default export task succeeds at once with `export.zip`.
    benchling.add_download_file("export.zip", zip);
    let secret_path = dir.join("secret.json");
    fs::write(&secret_path, secret_json(CLIENT_ID, CLIENT_SECRET, bucket))?;
    // Named per run: ext4 starts its search for a top directory's group at a hash of the name.
    let store_dir = dir.join(format!("store-{label}"));
    let spool_dir = dir.join(format!("spool-{label}"));
    fs::create_dir_all(&spool_dir)?;
    let port = free_port();

    let mut env: Vec<(String, String)> = moto.env();
    env.extend(
        [
            ("EXPORT_QUEUE_URL", export_url.clone()),
            ("RENDER_QUEUE_URL", render_url.clone()),
            ("CANVAS_QUEUE_URL", canvas_url),
            ("BenchlingSecret", format!("file:{}", secret_path.display())),
            ("BENCHLING_API_BASE_URL", benchling.url()),
            ("EXPORT_FIRST_POLL_MS", "10".to_owned()),
            ("EXPORT_TEMP_DIR", spool_dir.display().to_string()),
            ("LOG_LEVEL", "warn".to_owned()),
            ("HOST", "127.0.0.1".to_owned()),
            ("PORT", port.to_string()),
            ("OBJECT_STORE", backend.name().to_owned()),
        ]
        .map(|(name, value)| (name.to_owned(), value)),
    );
    if backend == Backend::Directory {
        env.push((
            "OBJECT_STORE_DIR".to_owned(),
            store_dir.display().to_string(),
        ));
    }
    env.extend(setup.extra_env.iter().cloned());

    let log_path = setup.logs.join(format!("{label}.log"));
    let (mut child, pid) =
        process::start(&setup.exporter, env, &log_path, port, "exporter").await?;
    let seen = |e: anyhow::Error| e.context(format!("exporter log: {}", log_path.display()));

    let export_queue = SqsQueue::new(setup.sqs.clone(), export_url);
    let render_queue = SqsQueue::new(setup.sqs.clone(), render_url);
    let job = export_job(label)?;
    sync_disks()?;
    let moto_meter = CpuMeter::start(setup.moto_pid);
    let started = Instant::now();
    export_queue
        .send(OutgoingMessage::job(job, None))
        .await
        .context("sending the export job")?;
    let body = next_message(&render_queue, &mut child)
        .await
        .map_err(seen)?;
    let elapsed = started.elapsed();
    let moto_cpu = moto_meter.and_then(|meter| meter.used());
    let peak_rss_kib = procfs::peak_rss_kib(pid)?;
    let cpu = procfs::cpu_time(pid)?;
    process::terminate(&mut child, pid, "exporter")
        .await
        .map_err(seen)?;

    let render = JobEnvelope::<RenderJob>::from_body(&body)
        .context("the render queue got something other than a render job")?
        .job;
    let listed = match &render.files {
        FileList::Inline { files } => files.len(),
        FileList::Stored { count, .. } => *count,
    };
    if listed != shape.members {
        bail!(
            "the render job lists {listed} files; the archive has {}",
            shape.members
        );
    }
    let prefix = format!("{}/", render.package_prefix);
    let (count, bytes) = match backend {
        Backend::S3 => buckets::usage(&setup.s3, bucket, &prefix).await?,
        Backend::Directory => {
            let files = shapes::files_below(&store_dir.join(bucket).join(&prefix))?;
            (files.len(), files.iter().map(|(_, size)| size).sum())
        }
    };
    shapes::check(shape, &format!("the package prefix {prefix}"), count, bytes)?;
    let requests = benchling.requests_to("POST", "/api/v2/exports").len();
    if requests != 1 {
        bail!("the exporter started {requests} exports; a retried job does not measure one export");
    }
    Ok(Measured {
        elapsed,
        peak_rss_kib,
        cpu,
        moto_cpu,
    })
}

/// An export job for the stand-in's fixture entry, as the ingress writes it.
fn export_job(label: &str) -> anyhow::Result<ExportJob> {
    Ok(ExportJob {
        entry_id: FIXTURE_ENTRY_ID.parse()?,
        canvas_id: None,
        base_url: Some("https://standin.benchling.com".into()),
        trigger: Trigger {
            event_type: EventType::EntryUpdatedFields,
            event_id: None,
            webhook_id: Some(WebhookId::parse(format!(
                "msg_bench_{}",
                label.replace('-', "_")
            ))?),
            occurred_at: "2025-03-30T23:37:23Z".parse()?,
            user_id: None,
        },
    })
}

/// The body of the next message on `queue` (long polls of a second, which moto answers as soon
/// as a message arrives). Fails if the exporter exits first or [`JOB_TIMEOUT`] passes.
async fn next_message(queue: &SqsQueue, child: &mut Child) -> anyhow::Result<String> {
    let deadline = Instant::now() + JOB_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(message) = queue
            .receive(1, Duration::from_secs(1))
            .await
            .context("receiving from the render queue")?
            .into_iter()
            .next()
        {
            return Ok(message.body);
        }
        if let Some(status) = child.try_wait()? {
            bail!("the exporter exited before sending the render job: {status}");
        }
    }
    bail!("no render job within {JOB_TIMEOUT:?}")
}
