//! `canvas`: the canvas worker.

use std::process::ExitCode;

use bw_config::Env;

fn main() -> ExitCode {
    bw_worker::main(
        "canvas",
        bw_canvas::CanvasConfig::from_env(Env::from_process()),
    )
}
