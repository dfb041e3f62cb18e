//! What every worker binary's `main` does, in one place: read the configuration (a bad one
//! exits 2, naming every field), start telemetry and the runtime, bind the probes, run until
//! SIGTERM or SIGINT, and flush telemetry.

use std::future::Future;
use std::process::ExitCode;

use bw_config::ConfigError;
use bw_telemetry::TelemetryConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::runtime::shutdown_on_signals;
use crate::service::WorkerConfig;

/// Exit code of a configuration problem found at start-up.
const CONFIG_EXIT: u8 = 2;

/// A worker service, as its binary starts it.
pub trait Service: Sized {
    /// Why it could not start or keep running.
    type Error: std::fmt::Display;

    /// Its worker settings (probes, concurrency, …).
    fn worker(&self) -> &WorkerConfig;

    /// Its logging and tracing settings.
    fn telemetry(&self) -> &TelemetryConfig;

    /// Whether `error` is a configuration problem found while starting (exit 2 like a bad
    /// variable), rather than a failure while running.
    fn is_config_error(error: &Self::Error) -> bool;

    /// Opens what the configuration names and consumes until `stop` turns true.
    fn run(
        self,
        probes: TcpListener,
        stop: watch::Receiver<bool>,
    ) -> impl Future<Output = Result<(), Self::Error>>;
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
        match config.run(probes, stop).await {
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
