//! What the benchmark reads about processes from `/proc`: peak memory and CPU time.

use std::fs;
use std::time::Duration;

use anyhow::Context as _;

/// `VmHWM` of process `pid` in KiB: the peak resident set over the process's life.
pub fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmHWM")
}

/// `VmRSS` of process `pid` in KiB: the resident set now.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS")
}

fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// User plus system CPU time used so far by process `pid` (all its threads).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces, so fields are counted after its `)`;
    // utime and stime are fields 14 and 15, the 12th and 13th after it.
    let after_name = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest)
        .context("malformed /proc/PID/stat")?;
    let mut fields = after_name.split_whitespace().skip(11);
    let mut ticks = || -> anyhow::Result<u64> {
        fields
            .next()
            .context("short /proc/PID/stat")?
            .parse()
            .context("malformed /proc/PID/stat")
    };
    let total = ticks()? + ticks()?;
    Ok(Duration::from_secs_f64(
        total as f64 / clock_ticks_per_second(),
    ))
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`).
fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions and only reads configuration.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Counts the CPU one process uses over a stretch of a run.
#[derive(Clone, Copy, Debug)]
pub struct CpuMeter {
    pid: u32,
    start: Duration,
}

impl CpuMeter {
    /// Starts counting for `pid`; `None` when there is no such process to watch.
    pub fn start(pid: Option<u32>) -> Option<Self> {
        let pid = pid?;
        Some(Self {
            pid,
            start: cpu_time(pid).ok()?,
        })
    }

    /// The CPU used since [`CpuMeter::start`].
    pub fn used(&self) -> Option<Duration> {
        Some(cpu_time(self.pid).ok()?.saturating_sub(self.start))
    }
}

/// The moto server this process started (`bw_testkit::moto` spawns it as our child), if found.
pub fn moto_pid() -> Option<u32> {
    let own = std::process::id().to_string();
    fs::read_dir("/proc")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let parent = fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    stat.rsplit_once(") ")
                        .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_owned))
                });
            let command = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            parent.as_deref() == Some(own.as_str())
                && String::from_utf8_lossy(&command).contains("moto_server")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(peak_rss_kib(pid).unwrap() > 0);
        cpu_time(pid).unwrap();
    }
}
