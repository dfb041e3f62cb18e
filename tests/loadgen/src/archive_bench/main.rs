//! `archive-bench`: the exporter benchmark of issue 3 (driven by `scripts/bench-exporter`;
//! results in `docs/benchmarks.md`).
//!
//! ```text
//! archive-bench [--repeats N] [--shapes small,many,large[,tiny]] [--backends s3,directory]
//!               [--exporter PATH] [--work DIR] [--out FILE] [--set NAME=VALUE]…
//! ```
//!
//! For each shape it writes (once, kept for later runs) a deflated ZIP of incompressible
//! members, then, `--repeats` times and for each backend, runs the release `exporter` binary on
//! moto's SQS queues with a Benchling stand-in serving that ZIP from loopback, and right after it
//! the backend's ceiling on the same bytes (see `ceiling`). It prints a markdown table of medians
//! and verdicts and writes it to `--out`.
//!
//! Defaults: the `exporter` beside this executable; `--work` and `--out` under
//! `{target}/bench-exporter/`, `{target}` being the directory above this executable's. `--set`
//! adds variables to the exporter's environment after the defaults (`--set UPLOAD_CONCURRENCY=16`).

mod ceiling;
mod exporter;
mod report;
mod shapes;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::exporter::Setup;
use crate::report::Sample;
use crate::shapes::Shape;
use bw_loadgen::service_bench::{self, cli, procfs};

/// PUTs in flight in the S3 ceiling: the exporter's default `UPLOAD_CONCURRENCY`.
const CEILING_CONCURRENCY: usize = 8;

/// Where the exporter writes the package files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// S3 on moto.
    S3,
    /// The filesystem backend (`OBJECT_STORE=directory`).
    Directory,
}

impl Backend {
    /// The `OBJECT_STORE` value and command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::S3 => "s3",
            Self::Directory => "directory",
        }
    }

    /// How the results name it.
    pub fn label(self) -> &'static str {
        match self {
            Self::S3 => "S3 (moto)",
            Self::Directory => "directory",
        }
    }

    fn named(name: &str) -> anyhow::Result<Self> {
        match name {
            "s3" => Ok(Self::S3),
            "directory" => Ok(Self::Directory),
            _ => bail!("unknown backend {name:?} (s3 or directory)"),
        }
    }
}

/// Flushes dirty pages to disk, so a run does not pay for the previous run's writeback.
pub fn sync_disks() -> anyhow::Result<()> {
    let status = Command::new("sync").status().context("running sync")?;
    if !status.success() {
        bail!("sync failed: {status}");
    }
    Ok(())
}

/// Asks ext4 to spread the new subdirectories of `dir` over its block groups (the `T`
/// attribute, as `chattr +T`), so that a run's files are less likely to land where the previous
/// run's were just deleted. ext4 starts the search at a hash of the subdirectory's name, so the
/// names must differ from run to run.
///
/// Why: ext4 without a journal (as on the benchmark VM) does not reuse an inode freed in the last
/// minute or more, and allocating a new one scans past every such inode of the group. Creating
/// thousands of files where thousands were just deleted therefore gets quadratic: `unzip` of the
/// 2,000-member archive went from 0.24 s to 2 s after a few rounds in one place. Best effort:
/// where the attribute does not exist, nothing changes.
pub fn spread_subdirectories(dir: &Path) {
    let _ = Command::new("chattr")
        .arg("+T")
        .arg(dir)
        .stderr(Stdio::null())
        .status();
}

/// The command line.
struct Options {
    repeats: usize,
    shapes: Vec<Shape>,
    backends: Vec<Backend>,
    exporter: PathBuf,
    work: PathBuf,
    out: PathBuf,
    extra_env: Vec<(String, String)>,
}

impl Options {
    /// Reads the flags; `None` for `--help`.
    fn parse(words: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Self>> {
        let (bin_dir, target) = cli::locations()?;
        let mut options = Self {
            repeats: 3,
            shapes: shapes::SHAPES.to_vec(),
            backends: vec![Backend::S3, Backend::Directory],
            exporter: bin_dir.join("exporter"),
            work: target.join("bench-exporter/work"),
            out: target.join("bench-exporter/results.md"),
            extra_env: Vec::new(),
        };
        let proceed = cli::flags(words, USAGE, |flag, value| {
            match flag {
                "--repeats" => options.repeats = cli::count(flag, &value, 1)?,
                "--shapes" => {
                    options.shapes = list(&value).map(Shape::named).collect::<Result<_, _>>()?;
                }
                "--backends" => {
                    options.backends =
                        list(&value).map(Backend::named).collect::<Result<_, _>>()?;
                }
                "--exporter" => options.exporter = PathBuf::from(value),
                "--work" => options.work = PathBuf::from(value),
                "--out" => options.out = PathBuf::from(value),
                "--set" => options.extra_env.push(cli::env_pair(&value)?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if !proceed {
            return Ok(None);
        }
        if options.shapes.is_empty() || options.backends.is_empty() {
            bail!("nothing to run: --shapes and --backends need at least one name each");
        }
        Ok(Some(options))
    }
}

/// Comma- or space-separated names.
fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split([',', ' ']).filter(|name| !name.is_empty())
}

const USAGE: &str = "usage: archive-bench [--repeats N] [--shapes small,many,large[,tiny]] \
[--backends s3,directory] [--exporter PATH] [--work DIR] [--out FILE] [--set NAME=VALUE]…";

#[tokio::main]
async fn main() {
    cli::exit_on_error("archive-bench", run().await);
}

async fn run() -> anyhow::Result<()> {
    let Some(options) = Options::parse(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    cli::service_binary(&options.exporter, "exporter", "bw-exporter")?;
    let archives = options.work.join("archives");
    let logs = options.work.join("logs");
    let runs = options.work.join("runs");
    for dir in [&archives, &logs, &runs] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    spread_subdirectories(&runs);
    let moto = service_bench::process::moto().await?;
    let setup = Setup {
        moto,
        s3: moto.s3_client().await,
        sqs: moto.sqs_client().await,
        moto_pid: procfs::moto_pid(),
        exporter: options.exporter.clone(),
        extra_env: options.extra_env.clone(),
        work: runs.clone(),
        logs,
    };

    let mut samples = Vec::new();
    for &shape in &options.shapes {
        eprintln!("== {}: writing or reusing the archive", shape.label);
        let zip = tokio::task::spawn_blocking({
            let archives = archives.clone();
            move || shapes::archive(shape, &archives)
        })
        .await??;
        let sources = runs.join(format!("{}-members", shape.name));
        let members = if options.backends.contains(&Backend::S3) {
            let _ = fs::remove_dir_all(&sources);
            shapes::unzip(&zip, &sources)?;
            member_files(shape, &sources)?
        } else {
            Vec::new()
        };
        for repeat in 1..=options.repeats {
            for &backend in &options.backends {
                let label = format!("{}-{}-{repeat}", shape.name, backend.name());
                let measured = exporter::run(&setup, shape, &zip, backend, &label)
                    .await
                    .with_context(|| format!("exporter run {label}"))?;
                let ceiling = match backend {
                    Backend::S3 => {
                        ceiling::s3_puts(&setup, shape, &members, CEILING_CONCURRENCY).await
                    }
                    Backend::Directory => {
                        ceiling::unzip(shape, &zip, &runs.join(format!("{label}-unzip")))
                    }
                }
                .with_context(|| format!("ceiling run {label}"))?;
                let sample = Sample {
                    shape,
                    backend,
                    repeat,
                    exporter: measured,
                    ceiling,
                };
                eprintln!("{}", report::run_row(&sample));
                samples.push(sample);
            }
        }
        if !members.is_empty() {
            fs::remove_dir_all(&sources)?;
        }
    }

    let context = report::Context {
        machine: service_bench::process::machine(),
        exporter: options.exporter.display().to_string(),
        extra_env: options
            .extra_env
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect(),
        repeats: options.repeats,
        ceiling_concurrency: CEILING_CONCURRENCY,
    };
    let table = report::markdown(&context, &samples);
    print!("{table}");
    if let Some(dir) = options.out.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&options.out, &table)
        .with_context(|| format!("writing {}", options.out.display()))?;
    eprintln!("== results written to {}", options.out.display());
    Ok(())
}

/// The extracted members of `shape` below `root`, as (path, member name), in archive order;
/// fails unless they are exactly the shape's members.
fn member_files(shape: Shape, root: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let files = shapes::files_below(root)?;
    let bytes = files.iter().map(|(_, size)| size).sum();
    shapes::check(shape, "the extracted archive", files.len(), bytes)?;
    Ok(files
        .into_iter()
        .map(|(name, _)| (root.join(&name), name))
        .collect())
}
