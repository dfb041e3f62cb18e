//! What every worker binary's `main` does, in one place: read the configuration (a bad one
//! exits 2, naming every field), start telemetry and the runtime, bind the probes, run until
//! SIGTERM or SIGINT, and flush telemetry.

use std::future::Future;
use std::process::ExitCode;

use bw_config::{ConfigError, SecretWatch};
use bw_queue::QueueError;
use bw_telemetry::TelemetryConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::runtime::shutdown_on_signals;
use crate::service::{Consumer, WorkerConfig, serve};

/// Exit code of a configuration problem found at start-up.
const CONFIG_EXIT: u8 = 2;

/// A worker service: what it opens and which queues it consumes with which handlers. Its
/// binary starts it with [`main`]; a process hosting several services opens their
/// connections itself and starts each with [`run`].
pub trait Service: Sized {
    /// What the service works with once opened (queues, the secret, buckets, …).
    type Connections;

    /// Why it could not start or keep running.
    type Error: std::fmt::Display + From<QueueError>;

    /// Its worker settings (probes, concurrency, …).
    fn worker(&self) -> &WorkerConfig;

    /// Its logging and tracing settings.
    fn telemetry(&self) -> &TelemetryConfig;

    /// Whether `error` is a configuration problem found while starting (exit 2 like a bad
    /// variable), rather than a failure while running.
    fn is_config_error(error: &Self::Error) -> bool;

    /// Opens what the configuration names.
    fn connect(&self) -> impl Future<Output = Result<Self::Connections, Self::Error>>;

    /// The consumers to run over `connections`, and the Benchling secret they wait for.
    ///
    /// # Errors
    /// When a handler cannot be built from the configuration.
    fn consumers(
        &self,
        connections: Self::Connections,
    ) -> Result<(Vec<Consumer>, SecretWatch), Self::Error>;
}

/// Serves the probes on `listener` and runs `service`'s consumers over `connections` until
/// `stop` turns true; running jobs then get the shutdown timeout to finish before they are
/// released to other consumers. Nothing is consumed before the Benchling secret has loaded.
///
/// # Errors
/// When a handler cannot be built, or a queue cannot be set up.
pub async fn run<S: Service>(
    service: &S,
    connections: S::Connections,
    listener: TcpListener,
    stop: watch::Receiver<bool>,
) -> Result<(), S::Error> {
    let (consumers, secret) = service.consumers(connections)?;
    serve(consumers, secret, listener, stop).await?;
    Ok(())
}

/// The body of a worker binary's `main`: `name` prefixes every message on stderr.
pub fn main<S: Service>(name: &str, config: Result<S, ConfigError>) -> ExitCode {
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::from(CONFIG_EXIT);
        }
    };
    let telemetry = match bw_telemetry::init(config.telemetry()) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("{name}: starting telemetry: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{name}: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        let stop = shutdown_on_signals();
        let probes = match config.worker().bind_probes().await {
            Ok(probes) => probes,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                eprintln!("{name}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let started = match config.connect().await {
            Ok(connections) => run(&config, connections, probes, stop).await,
            Err(e) => Err(e),
        };
        match started {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "stopped with an error");
                eprintln!("{name}: {e}");
                if S::is_config_error(&e) {
                    ExitCode::from(CONFIG_EXIT)
                } else {
                    ExitCode::FAILURE
                }
            }
        }
    });
    tracing::info!("{name} stopped");
    telemetry.shutdown();
    code
}
