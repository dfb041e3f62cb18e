//! A service binary as a child process: started with its output in a log file, readiness over
//! `/health/ready`, and a clean stop.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bw_testkit::moto::Moto;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// Longest wait for `/health/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the service to exit after SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `binary` with exactly `env`, its stdout and stderr going to `log`, and waits until it
/// is ready on `port`. Returns the child (killed if dropped) and its pid; errors name the log.
pub async fn start(
    binary: &Path,
    env: Vec<(String, String)>,
    log: &Path,
    port: u16,
    service: &str,
) -> anyhow::Result<(Child, u32)> {
    let file = File::create(log)?;
    let mut child = Command::new(binary)
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let pid = child
        .id()
        .with_context(|| format!("the {service} exited at once"))?;
    wait_ready(&mut child, port, service)
        .await
        .with_context(|| format!("{service} log: {}", log.display()))?;
    Ok((child, pid))
}

/// Waits for `GET /health/ready` on `port` to answer 200 (secret loaded, queues reachable).
async fn wait_ready(child: &mut Child, port: u16, service: &str) -> anyhow::Result<()> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("the {service} exited before it was ready: {status}");
        }
        if status(address, "/health/ready")
            .await
            .is_ok_and(|code| code == 200)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the {service} was not ready within {READY_TIMEOUT:?}")
}

/// The status code of `GET path`.
async fn status(address: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(address).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut head = [0; 12];
    stream.read_exact(&mut head).await?;
    Ok(std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|code| code.parse().ok())
        .unwrap_or(0))
}

/// SIGTERM, then a clean exit (status 0) within [`EXIT_TIMEOUT`].
pub async fn terminate(child: &mut Child, pid: u32, service: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await?;
    if !status.success() {
        bail!("kill -TERM {pid} failed: {status}");
    }
    let exited = tokio::time::timeout(EXIT_TIMEOUT, child.wait())
        .await
        .with_context(|| {
            format!("the {service} did not exit within {EXIT_TIMEOUT:?} of SIGTERM")
        })??;
    if !exited.success() {
        bail!("the {service} exited with {exited} after SIGTERM");
    }
    Ok(())
}

/// The moto server the benchmark's services talk to, started on first use.
pub async fn moto() -> anyhow::Result<&'static Moto> {
    // Moto::shared waits for moto with blocking sleeps.
    Ok(tokio::task::spawn_blocking(Moto::shared).await?)
}

/// Cores, CPU model, memory and kernel, from `/proc`.
pub fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = read("/proc/meminfo")
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or_else(String::new, |kib| {
            format!(", {:.0} GiB", kib as f64 / 1024.0 / 1024.0)
        });
    format!(
        "{cores} cores, {model}{memory}, Linux {}",
        read("/proc/sys/kernel/osrelease").trim()
    )
}
