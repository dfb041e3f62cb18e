//! `ingress`: the Benchling webhook receiver.

use std::process::ExitCode;

use anyhow::Context as _;
use bw_config::{Env, SecretState};
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
    // One thread runs the queue senders and upkeep; actix-web adds its own worker threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = runtime.block_on(async {
        let (queues, secret) = bw_ingress::connect(&config).await;
        let mut secret_changes = secret.subscribe();
        let ingress =
            Ingress::start(config, queues, secret, true).context("binding the HTTP port")?;
        let apply_log_level = !telemetry.log_level_from_env();
        let server = ingress.run();
        tokio::pin!(server);
        loop {
            tokio::select! {
                result = &mut server => break result.context("serving"),
                Ok(()) = secret_changes.changed(), if apply_log_level => {
                    if let SecretState::Ready(secret) = &*secret_changes.borrow_and_update()
                        && let Err(e) = telemetry.set_log_level(&secret.log_level)
                    {
                        tracing::warn!(error = %e, "ignoring the secret's log_level");
                    }
                }
            }
        }
    });
    tracing::info!("ingress stopped");
    telemetry.shutdown();
    result.map(|()| ExitCode::SUCCESS)
}
