//! `serve`: the ingress library, a JWKS stand-in, and its queues, in one process.
//!
//! With embedded queues, consumers drain them: that models the steady state in which the
//! workers keep up; without it every accepted job would stay in memory and the run would
//! measure a growing backlog, not the ingress. With discard queues (see [`DiscardQueue`]) the
//! process holds only the ingress's own memory.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bw_config::{Env, SecretLoader, SecretSource, SecretWatch};
use bw_ingress::{Ingress, IngressConfig, Queues};
use bw_queue::{MAX_BATCH, Queue, QueueName, QueueOpener};
use bw_testkit::jwks::JwksServer;
use bw_testkit::signer::SigningKey;

use crate::discard::DiscardQueue;
use crate::requests::RequestSet;
use crate::stand_ins::{APP_DEFINITION_ID, KEY_ID, write_secret};

/// Which queues the ingress writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueKind {
    /// `bw_queue::EmbeddedQueue`s, as `Queues::open` makes them, drained continuously.
    Embedded,
    /// [`DiscardQueue`]s.
    Discard,
}

impl std::str::FromStr for QueueKind {
    type Err = UnknownQueueKind;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "embedded" => Ok(Self::Embedded),
            "discard" => Ok(Self::Discard),
            _ => Err(UnknownQueueKind),
        }
    }
}

/// A `--queues` value other than `embedded` or `discard`.
#[derive(Debug)]
pub struct UnknownQueueKind;

impl std::fmt::Display for UnknownQueueKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("expected embedded or discard")
    }
}

impl std::error::Error for UnknownQueueKind {}

/// What `serve` was asked for.
#[derive(Debug)]
pub struct ServeOptions {
    /// The port to listen on (127.0.0.1).
    pub port: u16,
    /// `LOG_LEVEL` for the ingress (`warn` for the measured runs).
    pub log_level: String,
    /// The queues.
    pub queues: QueueKind,
    /// Requests to sign before serving, if any.
    pub requests: Option<RequestSet>,
}

/// Runs until SIGTERM or SIGINT, then reports how many jobs the queues took.
pub fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("webhook-bench-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = run(&options, &dir);
    // Best effort: a leftover temp dir holds only the throwaway secret.
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(options: &ServeOptions, dir: &Path) -> anyhow::Result<()> {
    let key = SigningKey::generate(KEY_ID);
    let jwks = JwksServer::start(APP_DEFINITION_ID, &[&key]);
    let secret = write_secret(dir)?;
    let config = IngressConfig::from_env(Env::from_pairs([
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", options.port.to_string()),
        ("BENCHLING_JWKS_BASE_URL", jwks.base_url()),
        ("BenchlingSecret", format!("file:{}", secret.display())),
        ("LOG_FORMAT", "json".to_owned()),
        ("LOG_LEVEL", options.log_level.clone()),
    ]))
    .map_err(|e| anyhow::anyhow!("ingress configuration: {e}"))?;
    let telemetry = bw_telemetry::init(&config.telemetry).context("starting telemetry")?;
    // Signed before the server starts, so signing competes with nothing that is measured.
    if let Some(requests) = &options.requests {
        requests.write(&key).context("writing signed requests")?;
    }
    // One thread for the queue senders, upkeep and the drain, plus actix-web's workers: the
    // same threads as the `ingress` binary.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let result = runtime.block_on(async {
        let (queues, report) = queues(options.queues);
        let secret_watch = SecretWatch::spawn(
            SecretLoader::new(SecretSource::File(secret), None),
            &config.secret_watch,
        );
        let ingress =
            Ingress::start(config, queues, secret_watch, true).context("binding the HTTP port")?;
        eprintln!(
            "webhook-bench: ingress listening on http://{}",
            ingress.addr()
        );
        let served = ingress.run().await.context("serving");
        eprintln!("webhook-bench: {}", report());
        served
    });
    telemetry.shutdown();
    result
}

/// The ingress's queues, plus a closure that says how many jobs they took. Embedded queues get
/// their drain tasks here, so this runs on the runtime.
fn queues(kind: QueueKind) -> (Queues, Box<dyn Fn() -> String>) {
    match kind {
        QueueKind::Embedded => {
            let queues = Queues::open(&QueueOpener::embedded());
            let [export, canvas] = [&queues.export, &queues.canvas].map(|queue| {
                let queue = Arc::clone(queue);
                let count = Arc::new(AtomicU64::new(0));
                tokio::spawn(drain(queue, count.clone()));
                count
            });
            let report = move || {
                format!(
                    "drained export={} canvas={}",
                    export.load(Ordering::Relaxed),
                    canvas.load(Ordering::Relaxed)
                )
            };
            (queues, Box::new(report))
        }
        QueueKind::Discard => {
            let export = Arc::new(DiscardQueue::new(QueueName::EXPORT.name));
            let canvas = Arc::new(DiscardQueue::new(QueueName::CANVAS.name));
            let queues = Queues {
                export: export.clone(),
                canvas: canvas.clone(),
                backend: "discard",
                batched: false,
            };
            let report = move || {
                format!(
                    "discarded export={} canvas={}",
                    export.accepted(),
                    canvas.accepted()
                )
            };
            (queues, Box::new(report))
        }
    }
}

/// Receives and deletes every message, counting them.
async fn drain(queue: Arc<dyn Queue>, drained: Arc<AtomicU64>) {
    loop {
        match queue.receive(MAX_BATCH, Duration::from_secs(1)).await {
            Ok(messages) => {
                for message in messages {
                    if queue.delete(&message.receipt).await.is_ok() {
                        drained.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Err(error) => {
                eprintln!("webhook-bench: drain of {} stopped: {error}", queue.name());
                return;
            }
        }
    }
}
