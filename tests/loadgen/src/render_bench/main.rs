//! `render-bench`: the packager benchmark of issue 4 (driven by `scripts/bench-packager`;
//! results in `docs/benchmarks.md`): render jobs per second for entries of 2,000 files each, and
//! the packager's peak RSS.
//!
//! ```text
//! render-bench [--repeats N] [--entries N] [--files N] [--packager PATH] [--out FILE]
//!              [--set NAME=VALUE]…
//! ```
//!
//! Each repeat starts the release `packager` binary on fresh moto queues and a fresh bucket
//! holding `--entries` claim checks (entry JSON and a stored file list of `--files` files), times
//! one job alone, then the other jobs sent at once, and checks what the packager wrote (see
//! `run`). It prints a markdown table of medians and writes it to `--out`.
//!
//! Defaults: 3 repeats, 40 entries, 2,000 files; the `packager` beside this executable; `--out`
//! is `{target}/bench-packager/results.md`, `{target}` being the directory above this
//! executable's. `--set` adds variables to the packager's environment after the defaults
//! (`--set WORKER_CONCURRENCY=8`).

mod report;
mod run;

use std::fs;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::run::{Setup, Shape};
use bw_loadgen::service_bench::{self, cli, procfs};

/// The command line.
struct Options {
    repeats: usize,
    shape: Shape,
    packager: PathBuf,
    out: PathBuf,
    extra_env: Vec<(String, String)>,
}

impl Options {
    /// Reads the flags; `None` for `--help`.
    fn parse(words: impl IntoIterator<Item = String>) -> anyhow::Result<Option<Self>> {
        let (bin_dir, target) = cli::locations()?;
        let mut options = Self {
            repeats: 3,
            shape: Shape {
                entries: 40,
                files: 2_000,
            },
            packager: bin_dir.join("packager"),
            out: target.join("bench-packager/results.md"),
            extra_env: Vec::new(),
        };
        let proceed = cli::flags(words, USAGE, |flag, value| {
            match flag {
                "--repeats" => options.repeats = cli::count(flag, &value, 1)?,
                // One job alone plus at least one in the burst.
                "--entries" => options.shape.entries = cli::count(flag, &value, 2)?,
                "--files" => options.shape.files = cli::count(flag, &value, 1)?,
                "--packager" => options.packager = PathBuf::from(value),
                "--out" => options.out = PathBuf::from(value),
                "--set" => options.extra_env.push(cli::env_pair(&value)?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if !proceed {
            return Ok(None);
        }
        Ok(Some(options))
    }
}

const USAGE: &str = "usage: render-bench [--repeats N] [--entries N] [--files N] \
[--packager PATH] [--out FILE] [--set NAME=VALUE]…";

#[tokio::main]
async fn main() {
    cli::exit_on_error("render-bench", run().await);
}

async fn run() -> anyhow::Result<()> {
    let Some(options) = Options::parse(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    cli::service_binary(&options.packager, "packager", "bw-packager")?;
    let out_dir = options.out.parent().map(PathBuf::from).unwrap_or_default();
    let logs = out_dir.join("logs");
    fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let moto = service_bench::process::moto().await?;
    let setup = Setup {
        moto,
        s3: moto.s3_client().await,
        sqs: moto.sqs_client().await,
        moto_pid: procfs::moto_pid(),
        packager: options.packager.clone(),
        extra_env: options.extra_env.clone(),
        logs,
    };

    let mut samples = Vec::new();
    for repeat in 1..=options.repeats {
        let measured = run::run(&setup, options.shape, repeat)
            .await
            .with_context(|| format!("repeat {repeat}"))?;
        eprintln!("{}", report::run_row(repeat, &measured));
        samples.push(measured);
    }

    let context = report::Context {
        machine: service_bench::process::machine(),
        packager: options.packager.display().to_string(),
        extra_env: options
            .extra_env
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect(),
        shape: options.shape,
    };
    let table = report::markdown(&context, &samples);
    print!("{table}");
    fs::write(&options.out, &table)
        .with_context(|| format!("writing {}", options.out.display()))?;
    eprintln!("== results written to {}", options.out.display());
    Ok(())
}
