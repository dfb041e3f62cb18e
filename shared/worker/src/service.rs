//! Running a worker as a service: the settings every worker reads the same way, and the start-up
//! order they share (probes first, then wait for the Benchling secret, then consume).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bw_config::{Env, SecretState, SecretWatch};
use bw_queue::{MAX_WAIT, Queue, QueueError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::probe::{Warnings, serve_probes};
use crate::runtime::{Handler, Worker, WorkerHealth, WorkerOptions};

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
    /// `RECEIVE_WAIT_SECS`: the longest long poll (1-20, default 20). Shorter waits cost more
    /// requests on an idle queue.
    pub receive_wait: Duration,
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
            receive_wait: env.seconds_or("RECEIVE_WAIT_SECS", MAX_WAIT, 1..=20),
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

/// A queue and the handler that runs its jobs, ready to be served.
pub struct Consumer {
    name: String,
    health: WorkerHealth,
    warnings: Option<Warnings>,
    run: Box<dyn FnOnce(watch::Receiver<bool>) -> Consuming + Send>,
}

type Consuming = Pin<Box<dyn Future<Output = Result<(), QueueError>> + Send>>;

impl Consumer {
    /// Consumes `queue` with `handler`, with the concurrency, visibility and stop grace of
    /// `config`.
    pub fn new<H: Handler>(config: &WorkerConfig, queue: Arc<dyn Queue>, handler: Arc<H>) -> Self {
        let name = queue.name().to_owned();
        let worker = Worker::new(
            queue,
            WorkerOptions {
                concurrency: config.concurrency,
                visibility: config.visibility,
                shutdown_grace: config.shutdown_timeout,
                wait: config.receive_wait,
                ..WorkerOptions::default()
            },
        );
        Self {
            name,
            health: worker.health(),
            warnings: None,
            run: Box::new(move |stop| Box::pin(async move { worker.run(handler, stop).await })),
        }
    }
}

impl Consumer {
    /// Shows `warnings` in the readiness probe while the consumer is ready.
    pub fn with_warnings(mut self, warnings: Warnings) -> Self {
        self.warnings = Some(warnings);
        self
    }
}

/// Serves the probes on `listener`, waits for the Benchling secret (so jobs wait in their queue
/// rather than fail while it is missing), then runs every consumer until `stop` turns true.
/// Readiness is the secret loaded and every consumer's last receive successful.
///
/// # Errors
/// The first consumer whose queue cannot be set up; the others are stopped gracefully first.
pub async fn serve(
    consumers: Vec<Consumer>,
    mut secret: SecretWatch,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) -> Result<(), QueueError> {
    let health: Vec<(String, WorkerHealth)> = consumers
        .iter()
        .map(|c| (c.name.clone(), c.health.clone()))
        .collect();
    let warnings: Vec<Warnings> = consumers
        .iter()
        .filter_map(|c| c.warnings.clone())
        .collect();
    let probe_secret = secret.clone();
    let readiness = move || match probe_secret.state() {
        SecretState::Ready(_) => {
            health.iter().try_for_each(|(name, health)| {
                health.check().map_err(|e| format!("{name}: {e}"))
            })?;
            Ok(warnings.iter().flat_map(Warnings::list).collect())
        }
        SecretState::Loading => Err("the Benchling secret is loading".to_owned()),
        SecretState::Unavailable { error, .. } => Err(error),
    };
    let queues: Vec<&str> = consumers.iter().map(|c| c.name.as_str()).collect();
    tracing::info!(
        probes = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()),
        queues = %queues.join(", "),
        "worker service starting"
    );
    tokio::spawn(serve_probes(listener, Arc::new(readiness), stop.clone()));
    bw_telemetry::follow_secret_log_level(&secret);
    if secret.secret().is_none() {
        tracing::info!("waiting for the Benchling secret before consuming");
    }
    tokio::select! {
        _ = secret.ready() => {}
        _ = stop.wait_for(|stopped| *stopped) => return Ok(()),
    }
    // One consumer failing stops the others the graceful way, so their running jobs finish or
    // are released rather than aborted.
    let (halt, halted) = watch::channel(false);
    let forward = halt.clone();
    tokio::spawn(async move {
        if stop.wait_for(|stopped| *stopped).await.is_ok() {
            let _ = forward.send(true);
        }
    });
    let mut running = JoinSet::new();
    for consumer in consumers {
        running.spawn((consumer.run)(halted.clone()));
    }
    let mut first_error = None;
    while let Some(finished) = running.join_next().await {
        match finished {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = halt.send(true);
                first_error.get_or_insert(e);
            }
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    first_error.map_or(Ok(()), Err)
}
