//! The results: medians per shape and backend, set against the targets of issue 3, as markdown.

use std::fmt::Write as _;
use std::time::Duration;

use crate::Backend;
use crate::ceiling::Ceiling;
use crate::exporter::Measured;
use crate::shapes::{self, Shape};

/// Exporter time may be at most this multiple of the ceiling's.
pub const MAX_RATIO: f64 = 1.25;
/// Peak RSS limit of the exporter, in MiB, for every size.
pub const MAX_RSS_MIB: f64 = 64.0;

/// One repeat of one shape on one backend.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// The export.
    pub shape: Shape,
    /// Where it went.
    pub backend: Backend,
    /// Which repeat (from 1).
    pub repeat: usize,
    /// The exporter's run.
    pub exporter: Measured,
    /// The ceiling, measured right after it.
    pub ceiling: Ceiling,
}

/// How the runs were made, for the report's header.
#[derive(Clone, Debug)]
pub struct Context {
    /// Cores, CPU, memory, kernel.
    pub machine: String,
    /// The exporter binary.
    pub exporter: String,
    /// Variables set on the exporter beyond the defaults, as `NAME=value`.
    pub extra_env: Vec<String>,
    /// Repeats per shape and backend.
    pub repeats: usize,
    /// PUTs in flight in the S3 ceiling.
    pub ceiling_concurrency: usize,
}

/// The report: a summary table with verdicts, then every run.
pub fn markdown(context: &Context, samples: &[Sample]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "machine: {}", context.machine);
    let _ = writeln!(
        out,
        "exporter: {} (extra env: {}); {} repeat(s) each; S3 ceiling: {} PutObjects in flight",
        context.exporter,
        if context.extra_env.is_empty() {
            "none".to_owned()
        } else {
            context.extra_env.join(" ")
        },
        context.repeats,
        context.ceiling_concurrency,
    );
    let _ = writeln!(
        out,
        "targets: exporter time ≤ {MAX_RATIO} × ceiling, exporter peak RSS ≤ {MAX_RSS_MIB} MiB\n"
    );
    out.push_str("| Export | Backend | Exporter (median) | Ceiling (median) | Ratio | Peak RSS (max) | Verdict |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    let mut groups: Vec<(Shape, Backend)> = Vec::new();
    for sample in samples {
        if !groups.contains(&(sample.shape, sample.backend)) {
            groups.push((sample.shape, sample.backend));
        }
    }
    for &(shape, backend) in &groups {
        let runs: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.shape == shape && s.backend == backend)
            .collect();
        let exporter = median(runs.iter().map(|s| s.exporter.elapsed).collect());
        let ceiling = median(runs.iter().map(|s| s.ceiling.elapsed).collect());
        let ratio = exporter.as_secs_f64() / ceiling.as_secs_f64();
        let rss = runs
            .iter()
            .map(|s| mib(s.exporter.peak_rss_kib))
            .fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} s | {:.2} s | {ratio:.2} | {rss:.1} MiB | {} |",
            shape.label,
            backend.label(),
            exporter.as_secs_f64(),
            ceiling.as_secs_f64(),
            if shape == shapes::TINY {
                "no target (fixed cost only)".to_owned()
            } else {
                verdict(ratio, rss)
            },
        );
    }
    out.push_str("\nAll runs:\n\n");
    out.push_str("| Export | Backend | Run | Exporter s | Ceiling s | Ratio | Peak RSS MiB | Exporter CPU s | moto CPU s, exporter / ceiling |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|\n");
    for sample in samples {
        let _ = writeln!(out, "{}", run_row(sample));
    }
    out
}

/// One line of the all-runs table (also printed as progress).
pub fn run_row(sample: &Sample) -> String {
    let exporter = sample.exporter.elapsed.as_secs_f64();
    let ceiling = sample.ceiling.elapsed.as_secs_f64();
    let cpu = |cpu: Option<Duration>| {
        cpu.map_or_else(|| "–".to_owned(), |cpu| format!("{:.2}", cpu.as_secs_f64()))
    };
    format!(
        "| {} | {} | {} | {exporter:.2} | {ceiling:.2} | {:.2} | {:.1} | {:.2} | {} / {} |",
        sample.shape.label,
        sample.backend.label(),
        sample.repeat,
        exporter / ceiling,
        mib(sample.exporter.peak_rss_kib),
        sample.exporter.cpu.as_secs_f64(),
        cpu(sample.exporter.moto_cpu),
        cpu(sample.ceiling.moto_cpu),
    )
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn verdict(ratio: f64, rss_mib: f64) -> String {
    let mut missed = Vec::new();
    if ratio > MAX_RATIO {
        missed.push("time");
    }
    if rss_mib > MAX_RSS_MIB {
        missed.push("RSS");
    }
    if missed.is_empty() {
        "pass".to_owned()
    } else {
        format!("**fail** ({})", missed.join(", "))
    }
}

/// The median (the mean of the middle two for an even count); zero for no samples.
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let mid = samples.len() / 2;
    match samples.len() {
        0 => Duration::ZERO,
        n if n.is_multiple_of(2) => (samples[mid - 1] + samples[mid]) / 2,
        _ => samples[mid],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_verdicts() {
        let ms = Duration::from_millis;
        assert_eq!(median(vec![ms(9), ms(1), ms(5)]), ms(5));
        assert_eq!(median(vec![ms(9), ms(1), ms(5), ms(3)]), ms(4));
        assert_eq!(verdict(1.25, 64.0), "pass");
        assert_eq!(verdict(1.3, 10.0), "**fail** (time)");
        assert_eq!(verdict(1.3, 65.0), "**fail** (time, RSS)");
    }
}
