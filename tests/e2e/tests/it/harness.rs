//! Runs the ingress in-process on an ephemeral loopback port, with a JWKS stand-in, a signing
//! key, and the queues and secret source a test chooses.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use bw_config::{Env, SecretLoader, SecretSource, SecretState, SecretWatch};
use bw_contracts::{Job, JobEnvelope};
use bw_ingress::{Ingress, IngressConfig, Queues};
use bw_queue::Queue;
use bw_telemetry::{Telemetry, TelemetryConfig};
use bw_testkit::jwks::JwksServer;
use bw_testkit::signer::{SignedHeaders, SigningKey, now_unix};
use serde_json::Value;

/// The app definition every test secret names.
pub const APP: &str = "appdef_e2e";

/// A valid secret for `APP`, with verification on.
pub fn secret_json() -> String {
    serde_json::json!({
        "tenant": "e2e",
        "client_id": "client-id-e2e",
        "client_secret": "client-secret-e2e-DO-NOT-LOG",
        "app_definition_id": APP,
        "user_bucket": "e2e-bucket",
        "pkg_prefix": "benchling",
        "pkg_key": "experiment_id",
        "log_level": "INFO",
        "enable_webhook_verification": true,
    })
    .to_string()
}

/// Where the test's secret comes from.
pub enum Secret {
    /// A temporary file holding [`secret_json`].
    File,
    /// A Secrets Manager secret (which may not exist yet).
    Manager {
        /// Secret name.
        name: String,
        /// Client pointed at moto.
        client: aws_sdk_secretsmanager::Client,
    },
    /// `BenchlingSecret` unset.
    Unset,
}

/// How to start the ingress.
pub struct Options {
    /// Queues; `None` means fresh embedded ones.
    pub queues: Option<Queues>,
    /// The secret source.
    pub secret: Secret,
    /// Extra environment for `IngressConfig`.
    pub env: Vec<(String, String)>,
    /// Whether the JWKS stand-in is down from the start.
    pub jwks_down: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            queues: None,
            secret: Secret::File,
            env: Vec::new(),
            jwks_down: false,
        }
    }
}

/// A running ingress and the stand-ins around it.
pub struct Harness {
    /// Base URL of the ingress.
    pub url: String,
    /// The export queue it writes to.
    pub export: Arc<dyn Queue>,
    /// The canvas queue it writes to.
    pub canvas: Arc<dyn Queue>,
    /// The key the JWKS stand-in publishes.
    pub key: SigningKey,
    /// The JWKS stand-in.
    pub jwks: JwksServer,
    http: reqwest::Client,
    handle: ServerHandle,
    secret_dir: Option<PathBuf>,
}

impl Harness {
    /// Embedded queues, a file secret, verification on.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// Starts with the given options.
    pub async fn start_with(options: Options) -> Self {
        init_telemetry();
        let key = SigningKey::generate("key-1");
        let jwks = JwksServer::start(APP, &[&key]);
        jwks.set_failing(options.jwks_down);
        let mut env = vec![
            ("HOST".to_owned(), "127.0.0.1".to_owned()),
            ("PORT".to_owned(), "0".to_owned()),
            ("INGRESS_WORKERS".to_owned(), "2".to_owned()),
            ("BENCHLING_JWKS_BASE_URL".to_owned(), jwks.base_url()),
            ("JWKS_MIN_REFRESH_SECS".to_owned(), "0".to_owned()),
            ("SECRET_RETRY_INITIAL_MS".to_owned(), "100".to_owned()),
            ("SECRET_RETRY_MAX_SECS".to_owned(), "1".to_owned()),
            ("SHUTDOWN_TIMEOUT_SECS".to_owned(), "1".to_owned()),
        ];
        let mut secret_dir = None;
        let source = match &options.secret {
            Secret::File => {
                let dir = std::env::temp_dir().join(format!("bw-e2e-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&dir).unwrap();
                let path = dir.join("secret.json");
                std::fs::write(&path, secret_json()).unwrap();
                secret_dir = Some(dir);
                Some(format!("file:{}", path.display()))
            }
            Secret::Manager { name, .. } => Some(name.clone()),
            Secret::Unset => None,
        };
        if let Some(source) = source {
            env.push(("BenchlingSecret".to_owned(), source));
        }
        env.extend(options.env);
        let config =
            IngressConfig::from_env(Env::from_pairs(env)).expect("test configuration is valid");
        let secret = match (&options.secret, &config.secret) {
            (Secret::Manager { client, .. }, Some(source @ SecretSource::SecretsManager(_))) => {
                SecretWatch::spawn(
                    SecretLoader::new(source.clone(), Some(client.clone())),
                    &config.secret_watch,
                )
            }
            (_, Some(source)) => SecretWatch::spawn(
                SecretLoader::new(source.clone(), None),
                &config.secret_watch,
            ),
            (_, None) => SecretWatch::unconfigured("BenchlingSecret is not set"),
        };
        let mut ready = secret.subscribe();
        let queues = options
            .queues
            .unwrap_or_else(|| Queues::open(&bw_queue::QueueOpener::embedded()));
        let (export, canvas) = (queues.export.clone(), queues.canvas.clone());
        let ingress = Ingress::start(config, queues, secret, false).expect("ingress starts");
        let url = format!("http://{}", ingress.addr());
        let handle = ingress.handle();
        tokio::spawn(ingress.run());
        if matches!(options.secret, Secret::File) {
            // Tests of a configured service start once its secret is loaded.
            tokio::time::timeout(
                Duration::from_secs(10),
                ready.wait_for(|s| matches!(s, SecretState::Ready(_))),
            )
            .await
            .expect("the file secret loads")
            .expect("the secret watch runs");
        }
        Self {
            url,
            export,
            canvas,
            key,
            jwks,
            http: reqwest::Client::new(),
            handle,
            secret_dir,
        }
    }

    /// Signs `body` with the published key as a fresh delivery.
    pub fn sign(&self, body: &[u8]) -> SignedHeaders {
        self.key.sign(
            &format!("msg_{}", uuid::Uuid::new_v4().simple()),
            now_unix(),
            body,
        )
    }

    /// POSTs raw bytes with the given headers; returns status and JSON body.
    pub async fn post(&self, path: &str, body: &[u8], headers: &[(&str, String)]) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.url))
            .body(body.to_vec());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("ingress answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs `body` signed as a fresh delivery.
    pub async fn post_signed(&self, path: &str, body: &[u8]) -> (u16, Value) {
        let headers = self.sign(body).pairs();
        self.post(path, body, &headers).await
    }

    /// GETs a path; returns status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("ingress answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls `path` until it answers `status` or `timeout` passes; returns the last answer.
    pub async fn wait_for_status(
        &self,
        path: &str,
        status: u16,
        timeout: Duration,
    ) -> (u16, Value) {
        self.wait_until(path, |s, _| s == status, timeout).await
    }

    /// Polls `path` until `done` holds for its answer or `timeout` passes; returns the last
    /// answer.
    pub async fn wait_until(
        &self,
        path: &str,
        done: impl Fn(u16, &Value) -> bool,
        timeout: Duration,
    ) -> (u16, Value) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (status, body) = self.get(path).await;
            if done(status, &body) || tokio::time::Instant::now() >= deadline {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Sends the stop command now; the server winds down on its own threads.
        drop(self.handle.stop(false));
        if let Some(dir) = &self.secret_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Installs the tracing pipeline once per test process, as the binary does at start-up, so
/// requests have trace context to put in their jobs.
fn init_telemetry() {
    static TELEMETRY: OnceLock<Option<Telemetry>> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        // Logs off: tests assert on answers and queues; spans still get trace context.
        let config = TelemetryConfig::from_env(&Env::from_pairs([("LOG_LEVEL", "off")]), "e2e");
        bw_telemetry::init(&config).ok()
    });
}

/// Takes every message now on `queue` (deleting them) and decodes them as `J` jobs.
pub async fn drain<J: Job>(queue: &dyn Queue) -> Vec<JobEnvelope<J>> {
    let mut jobs = Vec::new();
    loop {
        let batch = queue.receive(10, Duration::ZERO).await.expect("receive");
        if batch.is_empty() {
            return jobs;
        }
        for message in batch {
            queue.delete(&message.receipt).await.expect("delete");
            jobs.push(JobEnvelope::from_body(&message.body).expect("a job envelope"));
        }
    }
}

/// Reads a recorded Benchling payload.
pub fn fixture(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/benchling-events");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The markdown of a canvas body's blocks, joined.
pub fn markdown(body: &Value) -> String {
    body["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .filter_map(|block| block["value"].as_str())
        .collect()
}
