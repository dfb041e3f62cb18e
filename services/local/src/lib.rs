//! Every service in one process, for a laptop: the ingress, the exporter, the packager and the
//! canvas worker share in-process queues and a directory of buckets, so one command runs the
//! whole pipeline without AWS. No Quilt stack reads the packager messages locally, so Quilt's
//! packager stand-in (`bw-quilt-standin`) builds each revision in the bucket and announces it on
//! the package-event queue, as Quilt would; canvases then show "Updated at" and browse the
//! package. (Linked packages need Athena, so they stay empty locally.)
//!
//! Each service reads its own configuration from the same environment, exactly as its binary
//! does; only the queues and the store are shared here instead of named by URL.

use std::path::PathBuf;

use bw_canvas::CanvasConfig;
use bw_config::{ConfigError, Env, FieldError, SecretWatch, StoreBackend};
use bw_contracts::QueueName;
use bw_exporter::ExporterConfig;
use bw_ingress::{Ingress, IngressConfig};
use bw_packager::PackagerConfig;
use bw_queue::QueueOpener;
use bw_quilt_standin::QuiltStandIn;
use bw_standin::benchling::{BenchlingStandIn, FIXTURE_ENTRY_ID};
use bw_store::Buckets;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The configuration of every service in the pipeline.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// The ingress's.
    pub ingress: IngressConfig,
    /// The exporter's.
    pub exporter: ExporterConfig,
    /// The packager's.
    pub packager: PackagerConfig,
    /// The canvas worker's.
    pub canvas: CanvasConfig,
    /// Where the buckets live (`OBJECT_STORE_DIR`, default `.local/buckets`).
    pub buckets: PathBuf,
    /// `LOCAL_BENCHLING_STAND_IN`: serve Benchling's API from a stand-in on loopback (the
    /// recorded fixture entry and a sample export), so the pipeline runs without a tenant.
    pub stand_in: bool,
}

impl LocalConfig {
    /// Reads each service's configuration from `env` (called once per service) and refuses
    /// what cannot work in one process: queue URLs and an S3 store.
    pub fn from_env(env: impl Fn() -> Env) -> Result<Self, ConfigError> {
        let mut errors = Vec::new();
        let ingress = IngressConfig::from_env(env()).map_err(|e| errors.extend(e.0));
        let exporter = ExporterConfig::from_env(env()).map_err(|e| errors.extend(e.0));
        let packager = PackagerConfig::from_env(env()).map_err(|e| errors.extend(e.0));
        let canvas = CanvasConfig::from_env(env()).map_err(|e| errors.extend(e.0));
        let (Ok(ingress), Ok(exporter), Ok(packager), Ok(canvas)) =
            (ingress, exporter, packager, canvas)
        else {
            return Err(ConfigError(errors));
        };
        if exporter.queues.is_sqs() {
            errors.push(FieldError::invalid(
                "EXPORT_QUEUE_URL",
                "the local pipeline runs on in-process queues: unset the queue URLs",
            ));
        }
        let buckets = match &exporter.store {
            StoreBackend::Directory(dir) => dir.clone(),
            StoreBackend::S3 => {
                errors.push(FieldError::invalid(
                    "OBJECT_STORE",
                    "the local pipeline writes to a directory: unset OBJECT_STORE or set it to directory",
                ));
                PathBuf::new()
            }
        };
        let local = env();
        let stand_in = local.flag_or("LOCAL_BENCHLING_STAND_IN", false);
        if let Err(e) = local.finish(()) {
            errors.extend(e.0);
        }
        if !errors.is_empty() {
            return Err(ConfigError(errors));
        }
        Ok(Self {
            ingress,
            exporter,
            packager,
            canvas,
            buckets,
            stand_in,
        })
    }
}

/// Why the pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The ingress could not bind or serve.
    #[error("ingress: {0}")]
    Ingress(#[source] std::io::Error),
    /// The exporter failed.
    #[error("exporter: {0}")]
    Exporter(#[from] bw_exporter::RunError),
    /// The packager failed, or its README template is unusable.
    #[error("packager: {0}")]
    Packager(#[from] bw_packager::RunError),
    /// The canvas worker failed.
    #[error("canvas: {0}")]
    Canvas(#[from] bw_canvas::RunError),
    /// Quilt's packager stand-in could not consume its queue.
    #[error("Quilt packager stand-in: {0}")]
    Quilt(#[source] bw_queue::QueueError),
}

/// Runs the services until `stop` turns true, then stops them gracefully.
pub async fn run(mut config: LocalConfig, stop: watch::Receiver<bool>) -> Result<(), LocalError> {
    let aws = bw_config::aws_sdk_config_for(&[&config.ingress.secret]).await;
    let secret = SecretWatch::connect(
        config.ingress.secret.as_ref(),
        aws.as_ref(),
        &config.ingress.secret_watch,
    );
    // Kept alive until the pipeline stops.
    let _stand_in = if config.stand_in {
        let stand_in = start_stand_in(&secret).await;
        config.exporter.benchling.base_url = Some(stand_in.0.clone());
        config.packager.benchling.base_url = Some(stand_in.0.clone());
        config.canvas.benchling.base_url = Some(stand_in.0);
        Some(stand_in.1)
    } else {
        None
    };
    // One opener, so every service opens the same in-process queues.
    let queues = QueueOpener::embedded_with(config.ingress.queues.embedded_capacity());
    let ingress = Ingress::start(
        config.ingress.clone(),
        bw_ingress::Queues::open(&queues),
        secret.clone(),
        false,
    )
    .map_err(LocalError::Ingress)?;
    let server = ingress.handle();
    let mut stopping = stop.clone();
    tokio::spawn(async move {
        if stopping.wait_for(|stopped| *stopped).await.is_ok() {
            server.stop(true).await;
        }
    });
    let readme = bw_packager::load_template(config.packager.readme_template.as_ref(), None).await?;
    let buckets = Buckets::Directory(config.buckets.clone());
    let quilt = QuiltStandIn::new(buckets.clone(), queues.open(QueueName::PACKAGE_EVENTS))
        .run(queues.open(QueueName::QUILT_PACKAGER), stop.clone());
    tracing::info!(
        buckets = %config.buckets.display(),
        ingress = %ingress.addr(),
        "local pipeline running: ingress, exporter, packager and canvas on in-process queues"
    );
    // The ingress answers the probes for the whole process; the workers' go to free ports.
    let probes = || TcpListener::bind((config.ingress.host, 0));
    let (exporter_probes, packager_probes, canvas_probes) = (
        probes().await.map_err(LocalError::Ingress)?,
        probes().await.map_err(LocalError::Ingress)?,
        probes().await.map_err(LocalError::Ingress)?,
    );
    let exporter = bw_worker::run(
        &config.exporter,
        bw_exporter::Connections {
            queues: bw_exporter::Queues::open(&queues),
            secret: secret.clone(),
            buckets: buckets.clone(),
        },
        exporter_probes,
        stop.clone(),
    );
    let packager = bw_worker::run(
        &config.packager,
        bw_packager::Connections {
            queues: bw_packager::Queues::open(&queues),
            secret: secret.clone(),
            buckets: buckets.clone(),
            readme,
        },
        packager_probes,
        stop.clone(),
    );
    let canvas = bw_worker::run(
        &config.canvas,
        bw_canvas::Connections {
            // The stand-in's announcements reach the canvas as Quilt's events would.
            queues: bw_canvas::Queues {
                package_events: Some(queues.open(QueueName::PACKAGE_EVENTS)),
                ..bw_canvas::Queues::open(&queues)
            },
            secret,
            buckets,
            query: None,
        },
        canvas_probes,
        stop,
    );
    let (ingress, exporter, packager, canvas, quilt) =
        tokio::join!(ingress.run(), exporter, packager, canvas, quilt);
    ingress.map_err(LocalError::Ingress)?;
    quilt.map_err(LocalError::Quilt)?;
    exporter?;
    packager?;
    canvas?;
    Ok(())
}

/// Starts the Benchling stand-in once the secret has loaded (it accepts the secret's OAuth
/// client) and returns its URL and the task that keeps it alive.
async fn start_stand_in(secret: &SecretWatch) -> (url::Url, tokio::task::JoinHandle<()>) {
    let (ready, address) = tokio::sync::oneshot::channel();
    let mut secret = secret.clone();
    let task = tokio::spawn(async move {
        let Some(loaded) = secret.ready().await else {
            return;
        };
        let stand_in = BenchlingStandIn::start(&loaded.client_id, loaded.client_secret.expose());
        stand_in.add_sample_export();
        let _ = ready.send(stand_in.url());
        // The stand-in stops when dropped; this task lives as long as the runtime.
        std::future::pending::<()>().await;
    });
    let url = address
        .await
        .ok()
        .and_then(|raw| url::Url::parse(&raw).ok())
        .expect("the stand-in starts once the secret is loaded");
    tracing::warn!(%url, entry = FIXTURE_ENTRY_ID, "Benchling API served by the local stand-in (LOCAL_BENCHLING_STAND_IN)");
    (url, task)
}
