//! `stand-ins`: what the real `ingress` binary needs around it for a benchmark, kept running
//! in one process: a JWKS stand-in whose key persists in a file (so `sign` in another process
//! signs with it), the secret file, and optionally two FIFO queues, in moto or in the fast SQS
//! stand-in. The environment for the binary is written to `{dir}/ingress.env`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use bw_testkit::jwks::JwksServer;
use bw_testkit::moto::Moto;
use bw_testkit::signer::SigningKey;
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};

/// The app definition the benchmark's secret, stand-in and requests name.
pub const APP_DEFINITION_ID: &str = "appdef_bench";

/// The JWKS key id.
pub const KEY_ID: &str = "bench-key";

/// How often the export queue in moto is emptied.
const PURGE_INTERVAL: Duration = Duration::from_millis(100);

/// Where the persisted signing key lives in `dir`.
pub fn key_path(dir: &Path) -> PathBuf {
    dir.join("signing-key.p8")
}

/// Writes the Benchling secret for [`APP_DEFINITION_ID`] with verification on, and returns
/// its path.
pub fn write_secret(dir: &Path) -> anyhow::Result<PathBuf> {
    let secret = json!({
        "tenant": "bench",
        "client_id": "bench-client",
        "client_secret": "bench-secret",
        "app_definition_id": APP_DEFINITION_ID,
        "user_bucket": "bench-bucket",
        "enable_webhook_verification": true,
    });
    let path = dir.join("benchling-secret.json");
    std::fs::write(&path, secret.to_string())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Loads the key persisted in `dir`.
pub fn load_key(dir: &Path) -> anyhow::Result<SigningKey> {
    let path = key_path(dir);
    let der = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    SigningKey::from_pkcs8(KEY_ID, &der)
        .map_err(|e| anyhow::anyhow!("{} is not a P-256 PKCS#8 key: {e}", path.display()))
}

/// Where the stand-ins put the ingress's queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sqs {
    /// Nowhere: the ingress runs on its embedded queues.
    None,
    /// moto.
    Moto,
    /// The fast SQS stand-in ([`crate::fast_sqs`]), which prints how many messages it took
    /// when it stops.
    Fast,
}

/// Runs the stand-ins until SIGTERM or SIGINT. With [`Sqs::Moto`], moto is started from
/// `$MOTO_SERVER` (else `moto_server` on `PATH`) and dies with this process, and the export
/// queue is purged every [`PURGE_INTERVAL`], which needs
/// `MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR=false` in the environment (moto otherwise
/// allows one purge a minute, as SQS does).
pub fn stand_ins(dir: &Path, sqs: Sqs) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = match load_key(dir) {
        Ok(key) => key,
        Err(_) => {
            let key = SigningKey::generate(KEY_ID);
            std::fs::write(key_path(dir), key.to_pkcs8()).context("saving the signing key")?;
            key
        }
    };
    let jwks = JwksServer::start(APP_DEFINITION_ID, &[&key]);
    let secret = write_secret(dir)?;
    let mut env = vec![
        (
            "BenchlingSecret".to_owned(),
            format!("file:{}", secret.display()),
        ),
        ("BENCHLING_JWKS_BASE_URL".to_owned(), jwks.base_url()),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let fast = (sqs == Sqs::Fast).then(crate::fast_sqs::FastSqs::start);
    if let Some(fast) = &fast {
        env.extend([
            ("AWS_ENDPOINT_URL".to_owned(), fast.url()),
            ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID".to_owned(), "bench".to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "bench".to_owned()),
            (
                "EXPORT_QUEUE_URL".to_owned(),
                fast.queue_url("bench-export.fifo"),
            ),
            (
                "CANVAS_QUEUE_URL".to_owned(),
                fast.queue_url("bench-canvas.fifo"),
            ),
        ]);
    }
    runtime.block_on(async {
        if sqs == Sqs::Moto {
            let server = Moto::shared();
            let export = server.create_queue("bench-export", true, 30, None).await;
            let canvas = server.create_queue("bench-canvas", true, 30, None).await;
            env.extend(server.env());
            tokio::spawn(purge(server.sqs_client().await, export.clone()));
            env.push(("EXPORT_QUEUE_URL".to_owned(), export));
            env.push(("CANVAS_QUEUE_URL".to_owned(), canvas));
        }
        write_env(&dir.join("ingress.env"), &env)?;
        eprintln!(
            "webhook-bench: stand-ins ready, JWKS at {}",
            jwks.base_url()
        );
        let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        if let Some(fast) = &fast {
            eprintln!(
                "webhook-bench: fast SQS took {} messages in {} send requests",
                fast.stored(),
                fast.send_requests()
            );
        }
        Ok::<_, anyhow::Error>(())
    })
}

/// Keeps moto's export queue shallow, as workers that keep up would. moto's SQS scans every
/// stored message several times (with date arithmetic) on each send, so without this its cost
/// per send grows with the backlog and the run would measure the backlog, not the ingress. A
/// purge is one request, where receiving and deleting would double moto's work per message.
/// Only the export queue: the benchmark's webhooks are entry events, which all go there.
async fn purge(client: aws_sdk_sqs::Client, url: String) {
    let mut tick = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tick.tick().await;
        if let Err(error) = client.purge_queue().queue_url(&url).send().await {
            eprintln!(
                "webhook-bench: purging {url} failed, so moto's queue will grow \
                 (is MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR=false set?): {error:?}"
            );
            return;
        }
    }
}

/// Writes `NAME='value'` lines for `set -a; . FILE`, under the final name only once complete.
fn write_env(path: &Path, env: &[(String, String)]) -> anyhow::Result<()> {
    let mut text = String::new();
    for (name, value) in env {
        anyhow::ensure!(!value.contains('\''), "{name} contains a quote: {value}");
        text.push_str(&format!("{name}='{value}'\n"));
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))
}
