//! `serve`: the ingress library with embedded queues, a JWKS stand-in, and consumers that keep
//! the queues empty, in one process.
//!
//! The drain models the steady state in which the workers keep up: without it every accepted
//! job would stay in memory and the run would measure a growing backlog, not the ingress.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bw_config::{Env, SecretLoader, SecretSource, SecretWatch};
use bw_ingress::{Ingress, IngressConfig, Queues};
use bw_queue::{EmbeddedQueue, MAX_BATCH, Queue as _};
use bw_testkit::jwks::JwksServer;
use bw_testkit::signer::SigningKey;

use crate::requests::RequestSet;
use crate::stand_ins::{APP_DEFINITION_ID, KEY_ID, write_secret};

/// What `serve` was asked for.
#[derive(Debug)]
pub struct ServeOptions {
    /// The port to listen on (127.0.0.1).
    pub port: u16,
    /// `LOG_LEVEL` for the ingress (`warn` for the measured runs).
    pub log_level: String,
    /// Requests to sign before serving, if any.
    pub requests: Option<RequestSet>,
}

/// Runs until SIGTERM or SIGINT, then reports how many jobs were drained.
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
        let (export, _) = EmbeddedQueue::with_dead_letter("export.fifo", true);
        let (canvas, _) = EmbeddedQueue::with_dead_letter("canvas.fifo", true);
        let queues = Queues {
            export: export.clone(),
            canvas: canvas.clone(),
            backend: "embedded",
        };
        let secret_watch = SecretWatch::spawn(
            SecretLoader::new(SecretSource::File(secret), None),
            config.secret_watch,
        );
        let ingress = Ingress::start(config, queues, secret_watch, true)
            .context("binding the HTTP port")?;
        eprintln!("webhook-bench: ingress listening on http://{}", ingress.addr());
        let drained = [export, canvas].map(|queue| {
            let count = Arc::new(AtomicU64::new(0));
            tokio::spawn(drain(queue, count.clone()));
            count
        });
        let served = ingress.run().await.context("serving");
        eprintln!(
            "webhook-bench: drained export={} canvas={}",
            drained[0].load(Ordering::Relaxed),
            drained[1].load(Ordering::Relaxed)
        );
        served
    });
    telemetry.shutdown();
    result
}

/// Receives and deletes every message, counting them.
async fn drain(queue: Arc<EmbeddedQueue>, drained: Arc<AtomicU64>) {
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
