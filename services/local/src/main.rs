//! `local-pipeline`: every service in one process on in-process queues and a directory store.

use anyhow::Context as _;
use bw_config::Env;
use bw_local::LocalConfig;

fn main() -> anyhow::Result<()> {
    let config = match LocalConfig::from_env(Env::from_process) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("local-pipeline: {e}");
            std::process::exit(2);
        }
    };
    let telemetry = bw_telemetry::init(&config.ingress.telemetry).context("starting telemetry")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = runtime.block_on(async {
        let stop = bw_worker::shutdown_on_signals();
        bw_local::run(config, stop).await
    });
    tracing::info!("local pipeline stopped");
    telemetry.shutdown();
    result.context("local pipeline")
}
