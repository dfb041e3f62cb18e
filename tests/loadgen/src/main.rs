//! `webhook-bench`: the load benchmark's tool for the webhook ingress (driven by
//! `scripts/bench-ingress`; results in `docs/benchmarks.md`).
//!
//! ```text
//! webhook-bench serve --port P [--log-level L] [--queues embedded|discard]
//!                     [--requests-out PREFIX --count N [--slices S]]
//!     JWKS stand-in + ingress library on embedded queues (drained) or discard queues,
//!     until SIGTERM.
//! webhook-bench stand-ins --dir DIR [--moto | --fast-sqs]
//!     JWKS stand-in with a key persisted in DIR, the secret file, and (with --moto) moto and
//!     two FIFO queues; writes DIR/ingress.env for the real `ingress` binary; until SIGTERM.
//! webhook-bench sign --dir DIR --port P --count N --out PREFIX [--slices S]
//!     Signs N requests with DIR's key into PREFIX.0 … PREFIX.{S-1}.
//! webhook-bench startup [--runs N] -- PROGRAM [ARGS…]
//!     Median time from spawn to the first 200 on /health and on /health/ready.
//! webhook-bench verify [--count N] [--threads T]
//!     CPU per ES256 signature check alone, on one thread and on T at once (default: the cores).
//! ```

mod args;
mod discard;
mod fast_sqs;
mod requests;
mod serve;
mod stand_ins;
mod startup;
mod verify;

use anyhow::{Context as _, bail};

use crate::args::Args;
use crate::requests::RequestSet;
use crate::serve::{QueueKind, ServeOptions};
use crate::stand_ins::APP_DEFINITION_ID;

fn main() {
    if let Err(error) = run() {
        eprintln!("webhook-bench: {error:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let mut words = std::env::args().skip(1);
    let command = words.next().unwrap_or_default();
    match command.as_str() {
        "serve" => {
            let args = Args::parse(words, &[])?;
            let port = args.required("port")?;
            let requests = match args.path("requests-out") {
                Some(prefix) => Some(request_set(&args, prefix, port)?),
                None => None,
            };
            serve::serve(ServeOptions {
                port,
                log_level: args.optional("log-level")?.unwrap_or_else(|| "warn".into()),
                queues: args.optional("queues")?.unwrap_or(QueueKind::Embedded),
                requests,
            })
        }
        "stand-ins" => {
            let args = Args::parse(words, &["moto", "fast-sqs"])?;
            let dir = args.path("dir").context("--dir is required")?;
            let queues = match (args.switch("moto"), args.switch("fast-sqs")) {
                (true, true) => anyhow::bail!("--moto and --fast-sqs exclude each other"),
                (true, false) => stand_ins::Sqs::Moto,
                (false, true) => stand_ins::Sqs::Fast,
                (false, false) => stand_ins::Sqs::None,
            };
            stand_ins::stand_ins(&dir, queues)
        }
        "sign" => {
            let args = Args::parse(words, &[])?;
            let dir = args.path("dir").context("--dir is required")?;
            let prefix = args.path("out").context("--out is required")?;
            let set = request_set(&args, prefix, args.required("port")?)?;
            set.write(&stand_ins::load_key(&dir)?)
        }
        "startup" => {
            let args = Args::parse(words, &[])?;
            let runs = args.optional("runs")?.unwrap_or(10);
            if runs == 0 {
                bail!("--runs must be at least 1");
            }
            startup::startup(runs, &args.rest)
        }
        "verify" => {
            let args = Args::parse(words, &[])?;
            let threads = match args.optional("threads")? {
                Some(threads) => threads,
                None => std::thread::available_parallelism()?.get(),
            };
            verify::verify(args.optional("count")?.unwrap_or(20_000), threads)
        }
        "" | "help" | "--help" | "-h" => {
            println!("{}", usage());
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{}", usage()),
    }
}

fn request_set(args: &Args, prefix: std::path::PathBuf, port: u16) -> anyhow::Result<RequestSet> {
    Ok(RequestSet {
        count: args.required("count")?,
        slices: args.optional("slices")?.unwrap_or(1),
        prefix,
        port,
        app_definition_id: APP_DEFINITION_ID.to_owned(),
    })
}

fn usage() -> &'static str {
    "usage: webhook-bench serve|stand-ins|sign|startup|verify … (see scripts/bench-ingress)"
}
