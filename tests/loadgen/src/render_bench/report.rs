//! The results: medians over the repeats, then every repeat, as markdown.

use std::fmt::Write as _;
use std::time::Duration;

use crate::run::{Measured, Shape};

/// How the runs were made, for the report's header.
#[derive(Clone, Debug)]
pub struct Context {
    /// Cores, CPU, memory, kernel.
    pub machine: String,
    /// The packager binary.
    pub packager: String,
    /// Variables set on the packager beyond the defaults, as `NAME=value`.
    pub extra_env: Vec<String>,
    /// Entries and files per entry.
    pub shape: Shape,
}

/// The report: a summary row of medians, then every repeat.
pub fn markdown(context: &Context, samples: &[Measured]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "machine: {}", context.machine);
    let _ = writeln!(
        out,
        "packager: {} (extra env: {}); {} repeat(s) of {} entries × {} files\n",
        context.packager,
        if context.extra_env.is_empty() {
            "none".to_owned()
        } else {
            context.extra_env.join(" ")
        },
        samples.len(),
        context.shape.entries,
        context.shape.files,
    );
    let shape = context.shape;
    out.push_str(
        "| Entry | One job alone (median) | Burst (median) | Jobs/s (median) | Peak RSS (max) | Packager CPU per job (median) | moto CPU / burst wall time (median) |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|\n");
    let burst_jobs = samples.first().map_or(0, |s| s.burst_jobs);
    let single = median(samples.iter().map(|s| s.single.as_secs_f64()).collect());
    let burst = median(samples.iter().map(|s| s.burst.as_secs_f64()).collect());
    let rate = median(samples.iter().map(Measured::jobs_per_second).collect());
    let peak = samples.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0);
    let cpu_per_job = median(samples.iter().map(per_job_cpu).collect());
    let moto_share = median(samples.iter().filter_map(moto_share).collect());
    let _ = writeln!(
        out,
        "| {} files | {} | {} ({burst_jobs} jobs) | **{rate:.1}** | **{}** | {:.0} ms | {} |",
        thousands(shape.files),
        seconds(single),
        seconds(burst),
        mib(peak),
        cpu_per_job * 1000.0,
        percent(moto_share),
    );
    out.push_str(
        "\nAll repeats:\n\n| Run | One job s | Burst s | Jobs/s | Peak RSS MiB | Packager CPU s, burst / life | moto CPU s, burst | Name look-ups |\n|---|---|---|---|---|---|---|---|\n",
    );
    for (index, sample) in samples.iter().enumerate() {
        out.push_str(&run_row(index + 1, sample));
        out.push('\n');
    }
    out
}

/// One repeat as a table row.
pub fn run_row(repeat: usize, sample: &Measured) -> String {
    format!(
        "| {repeat} | {:.3} | {:.2} | {:.1} | {:.1} | {:.2} / {:.2} | {} | {} |",
        sample.single.as_secs_f64(),
        sample.burst.as_secs_f64(),
        sample.jobs_per_second(),
        sample.peak_rss_kib as f64 / 1024.0,
        sample.burst_cpu.as_secs_f64(),
        sample.cpu.as_secs_f64(),
        sample
            .moto_burst_cpu
            .map_or_else(|| "–".to_owned(), |cpu| format!("{:.2}", cpu.as_secs_f64())),
        sample.lookups,
    )
}

/// The packager's CPU per job in the burst, in seconds.
fn per_job_cpu(sample: &Measured) -> f64 {
    sample.burst_cpu.as_secs_f64() / sample.burst_jobs as f64
}

/// moto's CPU over the burst as a share of the burst's wall time (1.0 = one core busy).
fn moto_share(sample: &Measured) -> Option<f64> {
    let cpu: Duration = sample.moto_burst_cpu?;
    Some(cpu.as_secs_f64() / sample.burst.as_secs_f64())
}

/// The median; NaN when empty.
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

fn seconds(value: f64) -> String {
    format!("{value:.2} s")
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn percent(share: f64) -> String {
    if share.is_nan() {
        "–".to_owned()
    } else {
        format!("{:.0} %", share * 100.0)
    }
}

/// `2000` as `2,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
