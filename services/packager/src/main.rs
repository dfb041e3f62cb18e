//! `packager`: the packager worker.

use anyhow::Context as _;
use bw_config::Env;
use bw_packager::PackagerConfig;

fn main() -> anyhow::Result<()> {
    let config = match PackagerConfig::from_env(Env::from_process()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("packager: {e}");
            std::process::exit(2);
        }
    };
    let telemetry = bw_telemetry::init(&config.telemetry).context("starting telemetry")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = runtime.block_on(async {
        let connections = match bw_packager::connect(&config).await {
            Ok(connections) => connections,
            Err(e) => {
                // A broken template is a configuration error: say so and exit 2 like the others.
                tracing::error!(error = %e, "cannot start");
                eprintln!("packager: {e}");
                std::process::exit(2);
            }
        };
        let stop = bw_worker::shutdown_on_signals();
        let probes = config.worker.bind_probes().await?;
        bw_packager::run(&config, connections, probes, stop)
            .await
            .map_err(anyhow::Error::from)
    });
    tracing::info!("packager stopped");
    telemetry.shutdown();
    result.context("packager")
}
