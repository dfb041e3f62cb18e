//! `canvas-bench`: the canvas worker benchmark (driven by `scripts/bench-canvas`; results in
//! `docs/benchmarks.md`): how long one Browse click takes on a large package, first page and
//! following pages, how many clicks per second the worker serves on distinct entries, and its
//! peak RSS.
//!
//! ```text
//! canvas-bench [--repeats N] [--entries N] [--files N] [--pages N] [--canvas PATH] [--out FILE]
//!              [--set NAME=VALUE]…
//! ```
//!
//! Each repeat starts the release `canvas` binary on fresh moto queues and a fresh bucket
//! holding `--entries` Quilt packages of `--files` files each (see `run`). It prints a markdown
//! table of medians and writes it to `--out`.
//!
//! Defaults: 3 repeats, 20 entries, 20,000 files, 10 pages; the `canvas` beside this executable;
//! `--out` is `{target}/bench-canvas/results.md`. `--set` adds variables to the worker's
//! environment after the defaults.

mod run;

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::run::{Measured, Setup, Shape};
use bw_loadgen::service_bench::{self, cli, procfs};

const USAGE: &str = "usage: canvas-bench [--repeats N] [--entries N] [--files N] [--pages N] \
[--canvas PATH] [--out FILE] [--set NAME=VALUE]…";

/// The command line.
struct Options {
    repeats: usize,
    shape: Shape,
    canvas: PathBuf,
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
                entries: 20,
                files: 20_000,
                pages: 10,
            },
            canvas: bin_dir.join("canvas"),
            out: target.join("bench-canvas/results.md"),
            extra_env: Vec::new(),
        };
        let proceed = cli::flags(words, USAGE, |flag, value| {
            match flag {
                "--repeats" => options.repeats = cli::count(flag, &value, 1)?,
                // The warm-up, the paged entry, and at least one in the burst.
                "--entries" => options.shape.entries = cli::count(flag, &value, 3)?,
                "--files" => options.shape.files = cli::count(flag, &value, 1)?,
                "--pages" => options.shape.pages = cli::count(flag, &value, 2)?,
                "--canvas" => options.canvas = PathBuf::from(value),
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

#[tokio::main]
async fn main() {
    cli::exit_on_error("canvas-bench", run().await);
}

async fn run() -> anyhow::Result<()> {
    let Some(options) = Options::parse(std::env::args().skip(1))? else {
        println!("{USAGE}");
        return Ok(());
    };
    cli::service_binary(&options.canvas, "canvas", "bw-canvas")?;
    let out_dir = options.out.parent().map(PathBuf::from).unwrap_or_default();
    let logs = out_dir.join("logs");
    fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let moto = service_bench::process::moto().await?;
    let setup = Setup {
        moto,
        s3: moto.s3_client().await,
        moto_pid: procfs::moto_pid(),
        canvas: options.canvas.clone(),
        extra_env: options.extra_env.clone(),
        logs,
    };
    let mut samples = Vec::new();
    for repeat in 1..=options.repeats {
        let measured = run::run(&setup, options.shape, repeat)
            .await
            .with_context(|| format!("repeat {repeat}"))?;
        eprintln!("{}", row(repeat, &measured));
        samples.push(measured);
    }
    let table = report(&options, &samples);
    print!("{table}");
    fs::write(&options.out, &table)
        .with_context(|| format!("writing {}", options.out.display()))?;
    eprintln!("== results written to {}", options.out.display());
    Ok(())
}

/// The summary (medians, largest RSS), then every repeat.
fn report(options: &Options, samples: &[Measured]) -> String {
    let shape = options.shape;
    let mut out = String::new();
    let extra: Vec<String> = options
        .extra_env
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let _ = writeln!(
        out,
        "machine: {}\ncanvas: {} (extra env: {}); {} repeat(s): {} entries × {} files, {} pages browsed\n",
        service_bench::process::machine(),
        options.canvas.display(),
        if extra.is_empty() {
            "none".to_owned()
        } else {
            extra.join(" ")
        },
        samples.len(),
        shape.entries,
        shape.files,
        shape.pages,
    );
    let median_of = |value: fn(&Measured) -> f64| median(samples.iter().map(value).collect());
    out.push_str("| Package | First page (median) | Next pages (median) | Burst clicks/s (median) | Peak RSS (max) | Worker CPU per burst click (median) | moto CPU / burst wall time (median) |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    let _ = writeln!(
        out,
        "| {} files | {} | {} | **{:.1}** | **{:.1} MiB** | {:.0} ms | {:.0} % |",
        shape.files,
        ms(median_of(|m| m.first_page.as_secs_f64())),
        ms(median_of(|m| m.next_page.as_secs_f64())),
        median_of(Measured::clicks_per_second),
        samples.iter().map(|m| m.peak_rss_kib).max().unwrap_or(0) as f64 / 1024.0,
        median_of(|m| m.burst_cpu.as_secs_f64() / m.burst_clicks as f64) * 1000.0,
        median_of(|m| m.moto_share().unwrap_or(f64::NAN)) * 100.0,
    );
    out.push_str("\nAll repeats:\n\n| Run | First page | Next pages (median) | Burst | Clicks/s | Peak RSS MiB | Worker CPU s, burst / life |\n|---|---|---|---|---|---|---|\n");
    for (index, measured) in samples.iter().enumerate() {
        out.push_str(&row(index + 1, measured));
        out.push('\n');
    }
    out
}

fn row(repeat: usize, m: &Measured) -> String {
    format!(
        "| {repeat} | {} | {} | {:.2} s ({} clicks) | {:.1} | {:.1} | {:.2} / {:.2} |",
        ms(m.first_page.as_secs_f64()),
        ms(m.next_page.as_secs_f64()),
        m.burst.as_secs_f64(),
        m.burst_clicks,
        m.clicks_per_second(),
        m.peak_rss_kib as f64 / 1024.0,
        m.burst_cpu.as_secs_f64(),
        m.cpu.as_secs_f64(),
    )
}

fn ms(seconds: f64) -> String {
    format!("{:.0} ms", seconds * 1000.0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| !v.is_nan());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
