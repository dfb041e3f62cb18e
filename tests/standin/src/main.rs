//! `benchling-standin`: Benchling's REST API from recorded payloads, on its own, for compose and
//! for a pipeline run by hand (`BENCHLING_API_BASE_URL`).
//!
//! ```text
//! benchling-standin [--host 127.0.0.1] [--port 8081] [--client-id ID] [--client-secret SECRET]
//! ```
//!
//! Serves the recorded entry and, for every export, the sample archive, exactly as
//! `local-pipeline`'s built-in stand-in does, until SIGTERM or SIGINT. Prints one line with its
//! base URL once it accepts connections (`--port 0`: an ephemeral port, shown in that line). The
//! OAuth client defaults to the development secret `scripts/local` writes. `--host 0.0.0.0`
//! serves other containers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context as _, bail};
use bw_standin::benchling::{BenchlingStandIn, FIXTURE_ENTRY_ID};
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: benchling-standin [--host 127.0.0.1] [--port 8081] \
                     [--client-id ID] [--client-secret SECRET]";

/// What the command line asks for.
struct Args {
    addr: SocketAddr,
    client_id: String,
    client_secret: String,
}

/// Reads the flags; defaults as in [`USAGE`].
fn parse(mut words: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let mut args = Args {
        addr: (Ipv4Addr::LOCALHOST, 8081).into(),
        client_id: "local-client-id".to_owned(),
        client_secret: "local-client-secret".to_owned(),
    };
    while let Some(flag) = words.next() {
        let mut value = || {
            words
                .next()
                .with_context(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--host" => {
                let host: IpAddr = value()?.parse().context("--host takes an IP address")?;
                args.addr.set_ip(host);
            }
            "--port" => args
                .addr
                .set_port(value()?.parse().context("--port takes 0–65535")?),
            "--client-id" => args.client_id = value()?,
            "--client-secret" => args.client_secret = value()?,
            _ => bail!("unknown argument {flag:?}"),
        }
    }
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let mut words = std::env::args().skip(1).peekable();
    if words.peek().is_some_and(|w| w == "--help" || w == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let args = match parse(words) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("benchling-standin: {e:#}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        // Handlers before the URL line: a SIGTERM sent as soon as it appears is a clean exit,
        // not the default death by signal.
        let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let stand_in = BenchlingStandIn::bind(args.addr, &args.client_id, &args.client_secret)
            .with_context(|| format!("binding {}", args.addr))?;
        stand_in.add_sample_export();
        println!(
            "benchling stand-in on {} (entry {FIXTURE_ENTRY_ID})",
            stand_in.url()
        );
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        Ok(())
    })
}
