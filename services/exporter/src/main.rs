//! `exporter`: the export worker.

use std::process::ExitCode;

use bw_config::Env;

fn main() -> ExitCode {
    bw_worker::main(
        "exporter",
        bw_exporter::ExporterConfig::from_env(Env::from_process()),
    )
}
