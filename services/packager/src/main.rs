//! `packager`: the packager worker.

use std::process::ExitCode;

use bw_config::Env;

fn main() -> ExitCode {
    // Before the configuration: a container health check must answer even when it is bad.
    if let Some(code) = bw_probe::from_args() {
        return code;
    }
    bw_worker::main(
        "packager",
        bw_packager::PackagerConfig::from_env(Env::from_process()),
    )
}
