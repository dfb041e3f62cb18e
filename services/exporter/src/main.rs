//! `exporter`: the export worker.

use std::process::ExitCode;

use bw_config::Env;

fn main() -> ExitCode {
    // Before the configuration: a container health check must answer even when it is bad.
    if let Some(code) = bw_probe::from_args() {
        return code;
    }
    bw_worker::main(
        "exporter",
        bw_exporter::ExporterConfig::from_env(Env::from_process()),
    )
}
