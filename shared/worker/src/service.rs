//! Running a worker as a service: the settings every worker reads the same way, and the start-up
//! order they share (probes first, then wait for the Benchling secret, then consume).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bw_config::{Env, SecretState, SecretWatch};
use bw_queue::{Queue, QueueError};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::probe::serve_probes;
use crate::runtime::{Handler, Worker, WorkerOptions};

/// A worker service's own settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// `WORKER_CONCURRENCY`: jobs at once (jobs of one FIFO group never run together).
    pub concurrency: usize,
    /// `VISIBILITY_TIMEOUT_SECS`: overrides the queue's own visibility timeout.
    pub visibility: Option<Duration>,
    /// `HOST` (default `0.0.0.0`) of the probes.
    pub probe_host: IpAddr,
    /// `PORT` (default 8080; 0 picks a free port) of the probes.
    pub probe_port: u16,
    /// `SHUTDOWN_TIMEOUT_SECS`: how long running jobs may finish after SIGTERM (default 25).
    pub shutdown_timeout: Duration,
}

impl WorkerConfig {
    /// Reads the settings, recording bad values in `env`.
    pub fn from_env(env: &Env, default_concurrency: u64) -> Self {
        Self {
            concurrency: env.ranged_or("WORKER_CONCURRENCY", default_concurrency, 1..=64) as usize,
            visibility: env
                .optional("VISIBILITY_TIMEOUT_SECS")
                .map(|_| env.seconds_or("VISIBILITY_TIMEOUT_SECS", Duration::ZERO, 1..=43_200)),
            probe_host: env.parse_or("HOST", IpAddr::from([0, 0, 0, 0])),
            probe_port: env.parse_or("PORT", 8080u16),
            shutdown_timeout: env.seconds_or(
                "SHUTDOWN_TIMEOUT_SECS",
                Duration::from_secs(25),
                0..=600,
            ),
        }
    }
}

impl WorkerConfig {
    /// Binds the probe listener at `HOST:PORT`.
    ///
    /// # Errors
    /// When the address cannot be bound; the error names it.
    pub async fn bind_probes(&self) -> std::io::Result<TcpListener> {
        let addr = std::net::SocketAddr::new(self.probe_host, self.probe_port);
        TcpListener::bind(addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("binding the probe port {addr}: {e}"))
        })
    }
}

/// Serves the probes on `listener`, waits for the Benchling secret (so jobs wait in their queue
/// rather than fail while it is missing), then consumes `queue` with `handler` until `stop`
/// turns true. Readiness is the secret loaded and the last receive successful.
pub async fn serve<H: Handler>(
    config: &WorkerConfig,
    queue: Arc<dyn Queue>,
    mut secret: SecretWatch,
    listener: TcpListener,
    handler: Arc<H>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), QueueError> {
    let worker = Worker::new(
        Arc::clone(&queue),
        WorkerOptions {
            concurrency: config.concurrency,
            visibility: config.visibility,
            shutdown_grace: config.shutdown_timeout,
            ..WorkerOptions::default()
        },
    );
    let health = worker.health();
    let probe_secret = secret.clone();
    let readiness = move || match probe_secret.state() {
        SecretState::Ready(_) => health.check(),
        SecretState::Loading => Err("the Benchling secret is loading".to_owned()),
        SecretState::Unavailable { error, .. } => Err(error),
    };
    tracing::info!(
        probes = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()),
        queue = queue.name(),
        "worker service starting"
    );
    tokio::spawn(serve_probes(listener, Arc::new(readiness), stop.clone()));
    if secret.secret().is_none() {
        tracing::info!("waiting for the Benchling secret before consuming");
    }
    tokio::select! {
        _ = secret.ready() => {}
        _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
    }
    worker.run(handler, stop).await
}
