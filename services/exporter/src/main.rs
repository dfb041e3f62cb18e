//! `exporter`: the export worker.

use anyhow::Context as _;
use bw_config::Env;
use bw_exporter::ExporterConfig;

fn main() -> anyhow::Result<()> {
    let config = match ExporterConfig::from_env(Env::from_process()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("exporter: {e}");
            std::process::exit(2);
        }
    };
    let telemetry = bw_telemetry::init(&config.telemetry).context("starting telemetry")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = runtime.block_on(async {
        let connections = bw_exporter::connect(&config).await;
        let stop = bw_worker::shutdown_on_signals();
        let probes = config.worker.bind_probes().await?;
        bw_exporter::run(&config, connections, probes, stop)
            .await
            .map_err(anyhow::Error::from)
    });
    tracing::info!("exporter stopped");
    telemetry.shutdown();
    result.context("exporter")
}
