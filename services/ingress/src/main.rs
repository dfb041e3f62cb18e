//! `ingress`: the Benchling webhook receiver.

use std::process::ExitCode;

use anyhow::Context as _;
use bw_config::Env;
use bw_ingress::{Ingress, IngressConfig};

fn main() -> anyhow::Result<ExitCode> {
    // Before the configuration: a container health check must answer even when it is bad.
    if let Some(code) = bw_probe::from_args() {
        return Ok(code);
    }
    let config = match IngressConfig::from_env(Env::from_process()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ingress: {e}");
            std::process::exit(2);
        }
    };
    let telemetry = bw_telemetry::init(&config.telemetry).context("starting telemetry")?;
    // One thread runs start-up, the queue checks and upkeep; actix-web adds its worker threads,
    // and each of them sends to the queues itself (see `outbox`).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = runtime.block_on(async {
        let (queues, secret) = bw_ingress::connect(&config).await;
        bw_telemetry::follow_secret_log_level(&secret);
        let ingress =
            Ingress::start(config, queues, secret, true).context("binding the HTTP port")?;
        ingress.run().await.context("serving")
    });
    tracing::info!("ingress stopped");
    telemetry.shutdown();
    result.map(|()| ExitCode::SUCCESS)
}
