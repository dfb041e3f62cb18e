//! `quilt-standin`: Quilt's packager on its own, for compose and the end-to-end tests. Reads
//! `PACKAGER_SQS_URL`, `PACKAGE_EVENT_QUEUE_URL`, `OBJECT_STORE` and the AWS variables, and
//! builds one revision per packager message until SIGTERM or SIGINT.

use std::process::ExitCode;

use anyhow::Context as _;
use bw_config::Env;
use bw_contracts::QueueName;
use bw_queue::QueueOpener;
use bw_quilt_standin::{QuiltStandIn, QuiltStandInConfig};
use bw_store::Buckets;

fn main() -> ExitCode {
    let config = match QuiltStandInConfig::from_env(Env::from_process()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("quilt-standin: {e}");
            return ExitCode::from(2);
        }
    };
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quilt-standin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: QuiltStandInConfig) -> anyhow::Result<()> {
    let telemetry = bw_telemetry::init(&config.telemetry).context("starting telemetry")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = runtime.block_on(async {
        let aws = bw_config::aws_sdk_config_for(&[&config.queues, &config.store]).await;
        let queues = QueueOpener::new(&config.queues, aws.as_ref());
        let buckets = Buckets::for_backend(&config.store, aws.as_ref());
        tracing::warn!(
            store = %buckets.describe(),
            "Quilt packager stand-in: for local runs only, never beside a Quilt stack"
        );
        QuiltStandIn::new(buckets, queues.open(QueueName::PACKAGE_EVENTS))
            .with_build_delay(config.build_delay)
            .run(
                queues.open(QueueName::QUILT_PACKAGER),
                bw_worker::shutdown_on_signals(),
            )
            .await
            .context("consuming the packager queue")
    });
    telemetry.shutdown();
    result
}
