//! Assembles the service: shared state, routes, background upkeep, and the HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, FromRequest, Handler, HttpResponse, HttpServer, Resource, Responder, web};
use bw_benchling::{JwksCache, Verifier};
use bw_config::{BenchlingSecret, SecretState, SecretWatch};

use crate::config::IngressConfig;
use crate::error::ApiError;
use crate::lifecycle::LifecycleLog;
use crate::outbox::{Outbox, Queues};
use crate::replay::{REPLAY_WINDOW, ReplayGuard};
use crate::{health, webhook};

/// The service name in probes and `/config`.
pub const SERVICE_NAME: &str = "benchling-webhook-ingress";

/// The build's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// State shared by every request.
pub struct AppState {
    /// The configuration.
    pub config: IngressConfig,
    /// The Benchling secret.
    pub secret: SecretWatch,
    /// Signature verification.
    pub verifier: Verifier,
    /// The queues.
    pub outbox: Outbox,
    /// Recently accepted `webhook-id`s.
    pub replay: ReplayGuard,
    /// Last lifecycle signals.
    pub lifecycle: LifecycleLog,
}

impl AppState {
    /// Verification runs unless the environment or the secret turns it off.
    pub fn verification_enabled(&self, secret: &BenchlingSecret) -> bool {
        self.config.verification_allowed && secret.enable_webhook_verification
    }
}

/// Registers every route. Webhook endpoints exist bare and under one `/{stage}/` segment (API
/// Gateway stages), and `POST /` and `POST /{stage}` serve Benchling's "Stable" routing.
pub fn routes(cfg: &mut web::ServiceConfig) {
    // Webhooks first: they are the traffic, and the router tries resources in order.
    cfg.service(webhook_endpoint(&["/event", "/{stage}/event"]))
        .service(webhook_endpoint(&["/canvas", "/{stage}/canvas"]))
        .service(webhook_endpoint(&["/lifecycle", "/{stage}/lifecycle"]))
        .service(probe(&["/health", "/{stage}/health"], health::health))
        .service(probe(
            &["/health/live", "/{stage}/health/live"],
            health::live,
        ))
        .service(probe(
            &["/health/ready", "/{stage}/health/ready"],
            health::ready,
        ))
        .service(probe(&["/config"], health::config))
        .service(
            web::resource(["/", "/{stage}"])
                .route(web::post().to(webhook::receive))
                .default_service(web::to(not_found)),
        )
        .default_service(web::to(not_found));
}

fn probe<F, Args>(paths: &[&str], handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(paths.to_vec())
        .route(web::get().to(handler))
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed("GET"))
        }))
}

fn webhook_endpoint(paths: &[&str]) -> Resource {
    web::resource(paths.to_vec())
        .route(web::post().to(webhook::receive))
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed("POST"))
        }))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// A running ingress.
pub struct Ingress {
    addr: SocketAddr,
    server: actix_web::dev::Server,
}

impl Ingress {
    /// Binds and starts serving on the current tokio runtime. With `os_signals`, SIGTERM and
    /// SIGINT stop the server gracefully (stop accepting, finish in-flight requests).
    pub fn start(
        config: IngressConfig,
        queues: Queues,
        secret: SecretWatch,
        os_signals: bool,
    ) -> std::io::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(std::io::Error::other)?;
        let verifier = Verifier::new(JwksCache::new(http, config.jwks.clone()));
        let outbox = Outbox::new(queues, config.batch_linger);
        let state = web::Data::new(AppState {
            replay: ReplayGuard::new(REPLAY_WINDOW, config.replay_capacity),
            lifecycle: LifecycleLog::default(),
            verifier,
            outbox,
            secret,
            config,
        });
        let app_state = state.clone();
        let mut server =
            HttpServer::new(move || App::new().app_data(app_state.clone()).configure(routes))
                .workers(state.config.workers)
                .shutdown_timeout(state.config.shutdown_timeout.as_secs())
                .bind((state.config.host, state.config.port))?;
        if !os_signals {
            server = server.disable_signals();
        }
        let addr = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| std::io::Error::other("no address bound"))?;
        let server = server.run();
        tokio::spawn(upkeep(state.clone().into_inner()));
        tracing::info!(%addr, queues = state.outbox.backend(), workers = state.config.workers, "ingress listening");
        Ok(Self { addr, server })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle to stop the server.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped; returns after in-flight requests finished.
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Background work: keeps queue health current for readiness, and when the secret arrives or
/// changes, pre-fetches the app's keys and says loudly if verification is off.
async fn upkeep(state: Arc<AppState>) {
    let mut secret_changes = state.secret.subscribe();
    if !state.config.verification_allowed {
        tracing::warn!(
            "ENABLE_WEBHOOK_VERIFICATION is off: webhooks are accepted WITHOUT signature checks"
        );
    }
    let mut check = tokio::time::interval(Duration::from_secs(5));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_check = None;
    let mut watching_secret = true;
    loop {
        tokio::select! {
            _ = check.tick() => {
                // Check every 5 s while failing, every 30 s once healthy.
                let due = state.outbox.health().is_err()
                    || last_check.is_none_or(|t: Instant| t.elapsed() >= Duration::from_secs(30));
                if due {
                    state.outbox.check().await;
                    last_check = Some(Instant::now());
                }
            }
            changed = secret_changes.changed(), if watching_secret => {
                if changed.is_err() {
                    // No loader (BenchlingSecret unset): nothing more will change.
                    watching_secret = false;
                    continue;
                }
                let current = secret_changes.borrow_and_update().clone();
                if let SecretState::Ready(secret) = current {
                    if !secret.enable_webhook_verification {
                        tracing::warn!("the Benchling secret turns webhook verification off: webhooks are accepted WITHOUT signature checks");
                    }
                    if state.verification_enabled(&secret) {
                        match state.verifier.prewarm(&secret.app_definition_id).await {
                            Ok(keys) => tracing::info!(keys, "JWKS pre-fetched"),
                            Err(e) => tracing::warn!(error = %e, "JWKS pre-fetch failed; will fetch on the first webhook"),
                        }
                    }
                }
            }
        }
    }
}
