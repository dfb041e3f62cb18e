//! The webhook ingress: verifies each Benchling webhook, turns it into a job, and answers as
//! soon as the job is stored in its queue. No slow work happens in the request path.
//!
//! [`connect`] opens what the configuration names (queues, the secret) and [`Ingress::start`]
//! serves the routes with them. Imports point one way, so each layer can be read and tested
//! without the ones above it: this file wires the handlers ([`webhook`], [`health`],
//! [`config_view`], [`upkeep`]); they use [`error`], [`state`], [`metrics`] and the domain
//! modules; [`error`] uses only [`state`], [`state`] only domain modules, and the domain modules
//! ([`config`], [`dispatch`], [`replay`], [`queues`], [`outbox`], [`lifecycle`]) import nothing
//! from this crate.

pub mod config;
pub mod config_view;
pub mod dispatch;
pub mod error;
pub mod health;
pub mod lifecycle;
pub mod metrics;
pub mod outbox;
pub mod queues;
pub mod replay;
pub mod state;
pub mod upkeep;
pub mod webhook;

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, FromRequest, Handler, HttpResponse, HttpServer, Resource, Responder, web};
use bw_benchling::{JwksCache, Verifier};
use bw_config::SecretWatch;
use bw_queue::QueueOpener;

pub use config::IngressConfig;
pub use queues::Queues;
pub use state::AppState;

use crate::error::ApiError;
use crate::lifecycle::LifecycleLog;
use crate::outbox::Outbox;
use crate::replay::{REPLAY_WINDOW, ReplayGuard};

/// Builds the queues and secret watch the configuration asks for. AWS clients are created
/// only when a queue or the secret lives in AWS.
pub async fn connect(config: &IngressConfig) -> (Queues, SecretWatch) {
    let aws = bw_config::aws_sdk_config_for(&[&config.queues, &config.secret]).await;
    let queues = Queues::open(&QueueOpener::new(&config.queues, aws.as_ref()));
    let secret = SecretWatch::connect(config.secret.as_ref(), aws.as_ref(), &config.secret_watch);
    (queues, secret)
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
        .service(probe(&["/config"], config_view::show))
        .service(probe(&["/metrics"], metrics::show))
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
    /// Binds and starts serving on the current tokio runtime. With `os_signals`, SIGTERM stops
    /// the server gracefully (stop accepting, finish in-flight requests within the shutdown
    /// timeout); SIGINT and SIGQUIT stop it at once, as actix-web handles them.
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
        metrics::register();
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
        // The factory runs once on each worker's thread, so each gets senders of its own.
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(web::Data::new(app_state.outbox.senders()))
                .configure(routes)
        })
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
        tokio::spawn(upkeep::run(state.clone().into_inner()));
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
