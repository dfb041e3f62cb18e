//! `startup`: how long a service takes from `spawn` to its first `200` on `GET /health`, and
//! on to its first `200` on `GET /health/ready` (secret loaded, queues checked); and its
//! resident memory once idle, one second after it became ready.
//!
//! Timing starts just before the process is spawned, so it includes exec, dynamic loading,
//! configuration and binding. Polls are 200 µs apart, which bounds the error far below the
//! 100 ms target.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bw_loadgen::service_bench::procfs::rss_kib;
use bw_standin::stub::free_port;

/// Longest wait for one start-up.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Pause between two polls that found the service not answering 200 yet.
const POLL_INTERVAL: Duration = Duration::from_micros(200);

/// How long an idle service runs after it became ready before its memory is read.
const IDLE: Duration = Duration::from_secs(1);

/// One start-up's timings, and the memory after it.
#[derive(Clone, Copy, Debug)]
struct Run {
    health: Duration,
    ready: Duration,
    idle_rss_kib: u64,
}

/// Starts `program` `runs` times with `PORT` set to a free port (the rest of the environment
/// is inherited) and prints the median, minimum and maximum of each timing.
pub fn startup(runs: usize, program: &[String]) -> anyhow::Result<()> {
    let (program, args) = program
        .split_first()
        .context("startup needs the program to start after --")?;
    let mut timings = Vec::with_capacity(runs);
    for _ in 0..runs {
        timings.push(once(program, args)?);
    }
    report("health", timings.iter().map(|t| t.health).collect());
    report("ready", timings.iter().map(|t| t.ready).collect());
    let mut rss: Vec<u64> = timings.iter().map(|t| t.idle_rss_kib).collect();
    rss.sort_unstable();
    // The same median as the timings': the mean of the middle two for an even count.
    let mid = rss.len() / 2;
    let median = if rss.len().is_multiple_of(2) {
        (rss[mid - 1] + rss[mid]) / 2
    } else {
        rss[mid]
    };
    println!(
        "startup idle_rss_kib median={median} min={} max={} runs={}",
        rss[0],
        rss[rss.len() - 1],
        rss.len()
    );
    Ok(())
}

fn once(program: &str, args: &[String]) -> anyhow::Result<Run> {
    let port = free_port();
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let timings = poll(port, "/health", started).and_then(|health| {
        let ready = poll(port, "/health/ready", started)?;
        std::thread::sleep(IDLE);
        let idle_rss_kib = rss_kib(child.id())?;
        Ok(Run {
            health,
            ready,
            idle_rss_kib,
        })
    });
    // SIGKILL is fine: nothing of the run is kept.
    let _ = child.kill();
    child.wait().context("waiting for the service to exit")?;
    timings
}

/// Polls `path` until it answers 200; returns the time since `started`.
fn poll(port: u16, path: &str, started: Instant) -> anyhow::Result<Duration> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    while started.elapsed() < TIMEOUT {
        if status(address, path).is_ok_and(|code| code == 200) {
            return Ok(started.elapsed());
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    bail!("no 200 from GET {path} within {TIMEOUT:?}")
}

fn status(address: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0))
}

/// Prints `startup {what}_ms median=… min=… max=… runs=…`, the line the bench script reads.
fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let Some((&min, &max)) = samples.first().zip(samples.last()) else {
        return;
    };
    println!(
        "startup {what}_ms median={:.1} min={:.1} max={:.1} runs={}",
        ms(median(&samples)),
        ms(min),
        ms(max),
        samples.len()
    );
}

/// The median of sorted samples (the mean of the middle two for an even count).
fn median(sorted: &[Duration]) -> Duration {
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2
    } else {
        sorted[mid]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(1), ms(5), ms(9)]), ms(5));
        assert_eq!(median(&[ms(1), ms(3), ms(5), ms(9)]), ms(4));
    }
}
