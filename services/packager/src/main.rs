//! `packager`: the packager worker.

use std::process::ExitCode;

use bw_config::Env;

fn main() -> ExitCode {
    bw_worker::main(
        "packager",
        bw_packager::PackagerConfig::from_env(Env::from_process()),
    )
}
