//! The system as it runs in production: the release binaries of the four services, and Quilt's
//! packager stand-in, as separate processes on SQS, S3 and Secrets Manager (moto), with the
//! Benchling and JWKS stand-ins over HTTP on loopback. The queues, their dead-letter queues, the
//! bucket and the secret are made by compose's init script (`compose/init/init.py`), so every
//! run also proves that script. The operator CLI's release binary is run against the processes
//! as against a deployed environment ([`System::as_deployed`]).
//!
//! The tests of this harness must take turns (see `system::bounded`): they share one moto,
//! whose Athena answers the next query of the whole server with the result queued last.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bw_contracts::QueueName;
use bw_standin::benchling::{BenchlingStandIn, secret_json};
use bw_standin::stub::free_port;
use bw_testkit::jwks::JwksServer;
use bw_testkit::moto::Moto;
use bw_testkit::signer::{SigningKey, now_unix};
use serde_json::Value;

/// The OAuth client the Benchling stand-in accepts and the secret names.
const CLIENT_ID: &str = "e2e-processes-client";
/// The client secret the secret holds; it must never appear in any output.
pub const CLIENT_SECRET: &str = "e2e-processes-secret-DO-NOT-LOG";

/// The app the secret names (as [`secret_json`] writes it), whose keys the JWKS stand-in serves.
const APP: &str = "appdef_standin";

/// The queue visibility the init script gives: a killed worker's job comes back this soon.
const VISIBILITY_SECS: u64 = 5;

/// The processes, by binary name.
pub const PROCESSES: [&str; 5] = ["ingress", "exporter", "packager", "canvas", "quilt-standin"];

/// The operator CLI, built with the processes and run against them as a deployed environment.
pub const OPERATOR_CLI: &str = "benchling-webhook";

/// The release binaries' folder: `BW_E2E_BIN_DIR` when set (binaries built elsewhere, e.g.
/// copied out of the image), else `target/release`, built once per test run with the same
/// `cargo` and target folder as the tests. Blocks while it builds (minutes from a cold cache).
pub fn binaries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("BW_E2E_BIN_DIR") {
            return PathBuf::from(dir);
        }
        // The test binary is `{target}/debug/deps/it-…`.
        let exe = std::env::current_exe().expect("the test binary's path");
        let target = exe
            .ancestors()
            .nth(3)
            .expect("the test binary lies in {target}/debug/deps");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .current_dir(workspace())
            .args(["build", "--release", "--locked", "--target-dir"])
            .arg(target);
        for name in PROCESSES.into_iter().chain([OPERATOR_CLI]) {
            build.args(["--bin", name]);
        }
        let status = build.status().expect("run cargo build --release");
        assert!(status.success(), "building the release binaries failed");
        target.join("release")
    })
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One test's AWS resources, named uniquely, as compose's init script creates them.
pub struct World {
    /// The package bucket.
    pub bucket: String,
    /// The Benchling secret's name.
    pub secret: String,
    /// Queue URLs by queue.
    queues: BTreeMap<QueueName, String>,
    /// Dead-letter queue URLs by source queue.
    dead_letters: BTreeMap<QueueName, String>,
}

/// The queues the init script creates, by the names compose gives them.
const QUEUES: [(QueueName, &str); 5] = [
    (QueueName::EXPORT, "export.fifo"),
    (QueueName::RENDER, "render.fifo"),
    (QueueName::CANVAS, "canvas.fifo"),
    (QueueName::PACKAGE_EVENTS, "package-events"),
    (QueueName::QUILT_PACKAGER, "quilt-packager"),
];

impl World {
    /// Runs the init script against moto with this test's names; without `with_secret` the
    /// secret is left for the test to create.
    async fn create(moto: &Moto, with_secret: bool) -> Self {
        let prefix = Moto::unique_name("e2e");
        let bucket = prefix.to_lowercase();
        let secret_name = format!("{prefix}/benchling");
        let names: Vec<String> = QUEUES
            .iter()
            .map(|(_, name)| format!("{prefix}-{name}"))
            .collect();
        let mut init = Command::new(bw_testkit::moto::python());
        init.arg(workspace().join("compose/init/init.py"))
            .env_clear()
            .envs(moto.env())
            .env("BUCKETS", &bucket)
            .env("QUEUES", names.join(" "))
            .env("VISIBILITY_TIMEOUT_SECS", VISIBILITY_SECS.to_string());
        if with_secret {
            init.env("SECRET_NAME", &secret_name).env(
                "SECRET_STRING",
                secret_json(CLIENT_ID, CLIENT_SECRET, &bucket),
            );
        }
        let output = init.output().expect("run compose/init/init.py");
        assert!(
            output.status.success(),
            "compose/init/init.py failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let sqs = moto.sqs_client().await;
        let url = |name: String| {
            let sqs = sqs.clone();
            async move {
                sqs.get_queue_url()
                    .queue_name(&name)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("the init script did not create {name}: {e:?}"))
                    .queue_url()
                    .expect("a queue URL")
                    .to_owned()
            }
        };
        let mut queues = BTreeMap::new();
        let mut dead_letters = BTreeMap::new();
        for ((queue, _), name) in QUEUES.iter().zip(names) {
            let dead_letter = dead_letter_name(&name);
            queues.insert(*queue, url(name).await);
            dead_letters.insert(*queue, url(dead_letter).await);
        }
        Self {
            bucket,
            secret: secret_name,
            queues,
            dead_letters,
        }
    }

    /// The name of `queue`, as the services label it in their metrics: its URL's last segment.
    pub fn queue_name(&self, queue: QueueName) -> &str {
        let url = &self.queues[&queue];
        url.rsplit('/').next().unwrap_or(url)
    }

    /// `{URL variable}={URL}` for each of `queues`.
    fn queue_env(&self, queues: &[QueueName]) -> Vec<(String, String)> {
        queues
            .iter()
            .map(|q| (q.url_var.to_owned(), self.queues[q].clone()))
            .collect()
    }
}

/// The dead-letter queue compose's init script gives `queue`: `<base>-dlq[.fifo]`.
pub fn dead_letter_name(queue: &str) -> String {
    match queue.strip_suffix(".fifo") {
        Some(base) => format!("{base}-dlq.fifo"),
        None => format!("{queue}-dlq"),
    }
}

/// One service process.
pub struct Process {
    name: &'static str,
    port: u16,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the process log");
        let child = Command::new(binaries().join(self.name))
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.name));
        self.child = Some(child);
    }

    /// The pid of the running process.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the process runs").id()
    }

    /// Whether it is still running (it never exited since it was spawned).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().expect("poll the child").is_none())
    }

    /// Kills it with SIGKILL, as a crash or an out-of-memory kill would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap the killed process");
        }
    }

    /// Sets (or with `None`, removes) one variable of its environment for the next start.
    pub fn set_env(&mut self, name: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != name);
        if let Some(value) = value {
            self.env.push((name.to_owned(), value.to_owned()));
        }
    }

    /// Waits up to `limit` for it to exit on its own; its exit status, if it did.
    pub fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().expect("the process was started");
        loop {
            if let Some(status) = child.try_wait().expect("poll the child") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts it again with the same environment (appending to the same log).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends SIGTERM by pid and waits up to 15 s for the exit.
    fn terminate(&mut self) -> ExitStatus {
        // SAFETY: kill(2) with a pid we spawned and have not reaped.
        let sent = unsafe { libc::kill(self.pid() as i32, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM to {}", self.name);
        if let Some(status) = self.exited_within(Duration::from_secs(15)) {
            return status;
        }
        self.kill();
        panic!("{} did not stop within 15 s of SIGTERM", self.name);
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What `GET /metrics` on its port answers now, checked to be Prometheus' text format.
    pub async fn metrics(&self) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        let response = reqwest::get(&url).await.expect("/metrics answers");
        assert_eq!(response.status(), 200, "GET {url}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        response.text().await.expect("a text body")
    }

    /// The status `/health/ready` answers now (0: no answer).
    pub async fn readiness(&self) -> u16 {
        let url = format!("http://127.0.0.1:{}/health/ready", self.port);
        match reqwest::get(url).await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A failed test still leaves no process behind.
        self.kill();
    }
}

/// How to start the system.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Start the services before their secret exists.
    pub secret_missing: bool,
    /// Every process exports its spans to this OTLP/HTTP endpoint.
    pub otlp_endpoint: Option<String>,
    /// Quilt's stand-in waits this long after taking a message before building it.
    pub quilt_build_delay: Duration,
}

/// The running system and the stand-ins around it.
pub struct System {
    /// moto.
    pub moto: &'static Moto,
    /// The test's AWS resources.
    pub world: World,
    /// Benchling's API.
    pub benchling: BenchlingStandIn,
    /// The processes by binary name.
    pub processes: BTreeMap<&'static str, Process>,
    key: SigningKey,
    http: reqwest::Client,
    _jwks: JwksServer,
    _logs: tempfile::TempDir,
}

impl System {
    /// Creates the resources, starts every process and, unless the secret is missing, waits
    /// until each is ready.
    pub async fn start(options: Options) -> Self {
        let bin = tokio::task::spawn_blocking(binaries).await.unwrap();
        let moto = Moto::shared();
        let world = World::create(moto, !options.secret_missing).await;
        let benchling = BenchlingStandIn::start(CLIENT_ID, CLIENT_SECRET);
        let key = SigningKey::generate("e2e-key");
        let jwks = JwksServer::start(APP, &[&key]);
        let logs = tempfile::tempdir().unwrap();
        let common: Vec<(String, String)> = moto
            .env()
            .into_iter()
            .chain(
                [
                    ("BenchlingSecret", world.secret.as_str()),
                    // As the stack gives it: completes a four-key secret.
                    ("PACKAGE_BUCKET", world.bucket.as_str()),
                    ("OBJECT_STORE", "s3"),
                    ("LOG_FORMAT", "json"),
                    ("LOG_LEVEL", "INFO"),
                    ("HOST", "127.0.0.1"),
                    ("SECRET_RETRY_INITIAL_MS", "200"),
                    ("SECRET_RETRY_MAX_SECS", "1"),
                    ("SHUTDOWN_TIMEOUT_SECS", "3"),
                    // moto keeps a FIFO group busy for a whole long poll begun while one of its
                    // jobs ran; short polls keep the steps quick.
                    ("RECEIVE_WAIT_SECS", "1"),
                    ("BENCHLING_API_BASE_URL", benchling.url().as_str()),
                    ("BENCHLING_RETRY_INITIAL_MS", "50"),
                    ("EXPORT_FIRST_POLL_MS", "50"),
                ]
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
            )
            .chain(options.otlp_endpoint.iter().flat_map(|endpoint| {
                [
                    ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint.clone()),
                    // Batches leave every 200 ms rather than every 5 s.
                    ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "200".to_owned()),
                ]
            }))
            .collect();
        let own: [(&str, Vec<(String, String)>); 5] = [
            (
                "ingress",
                [
                    world.queue_env(&bw_ingress::Queues::NAMES),
                    vec![
                        ("BENCHLING_JWKS_BASE_URL".into(), jwks.base_url()),
                        ("JWKS_MIN_REFRESH_SECS".into(), "0".into()),
                    ],
                ]
                .concat(),
            ),
            ("exporter", world.queue_env(&bw_exporter::Queues::NAMES)),
            ("packager", world.queue_env(&bw_packager::Queues::NAMES)),
            (
                "canvas",
                [
                    world.queue_env(&bw_canvas::Queues::NAMES),
                    world.queue_env(&[QueueName::PACKAGE_EVENTS]),
                    vec![
                        ("QUILT_WEB_HOST".into(), "catalog.example.com".into()),
                        ("ATHENA_USER_DATABASE".into(), "quilt_catalog".into()),
                    ],
                ]
                .concat(),
            ),
            (
                "quilt-standin",
                [
                    world.queue_env(&[QueueName::QUILT_PACKAGER, QueueName::PACKAGE_EVENTS]),
                    vec![(
                        "QUILT_BUILD_DELAY_MS".into(),
                        options.quilt_build_delay.as_millis().to_string(),
                    )],
                ]
                .concat(),
            ),
        ];
        let mut processes = BTreeMap::new();
        for (name, env) in own {
            assert!(bin.join(name).is_file(), "{name} is built");
            let port = free_port();
            let mut process = Process {
                name,
                port,
                env: [
                    common.clone(),
                    env,
                    vec![("PORT".to_owned(), port.to_string())],
                ]
                .concat(),
                log: logs.path().join(format!("{name}.log")),
                child: None,
            };
            process.spawn();
            processes.insert(name, process);
        }
        let system = Self {
            moto,
            world,
            benchling,
            processes,
            key,
            http: reqwest::Client::new(),
            _jwks: jwks,
            _logs: logs,
        };
        if !options.secret_missing {
            system.wait_ready().await;
        }
        system
    }

    /// Creates the secret the services name (for a test that started without it) in the
    /// four-key form, whose bucket comes from the deployment's `PACKAGE_BUCKET`.
    pub async fn create_secret(&self) {
        let four_keys = serde_json::json!({
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "tenant": "standin",
            "app_definition_id": APP,
        });
        aws_sdk_secretsmanager::Client::new(&self.moto.sdk_config().await)
            .create_secret()
            .name(&self.world.secret)
            .secret_string(four_keys.to_string())
            .send()
            .await
            .expect("create the secret");
    }

    /// Waits until every service answers ready (the stand-in has no probe: it must be running).
    pub async fn wait_ready(&self) {
        for (name, process) in &self.processes {
            if *name == "quilt-standin" {
                continue;
            }
            let ready = eventually(Duration::from_secs(30), || async {
                (process.readiness().await == 200).then_some(())
            })
            .await;
            assert!(
                ready.is_some(),
                "{name} never became ready:\n{}",
                process.log()
            );
        }
    }

    /// The process named `name`.
    pub fn process(&mut self, name: &str) -> &mut Process {
        self.processes.get_mut(name).expect("a known process")
    }

    /// The ingress's base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.processes["ingress"].port)
    }

    /// Posts `webhook` to the ingress at `path`, signed as a fresh delivery, and checks it was
    /// accepted (202).
    pub async fn deliver(&self, path: &str, webhook: &Value) {
        self.deliver_with_id(path, webhook, None).await;
    }

    /// Posts `webhook` to the ingress at `path`, signed now under the webhook id `replay_of`
    /// (a replay, which must be acknowledged as a duplicate: 200) or a fresh one (which must be
    /// accepted: 202). Returns the id.
    pub async fn deliver_with_id(
        &self,
        path: &str,
        webhook: &Value,
        replay_of: Option<&str>,
    ) -> String {
        let body = serde_json::to_vec(webhook).unwrap();
        let id = replay_of.map_or_else(
            || format!("msg_{}", uuid::Uuid::new_v4().simple()),
            str::to_owned,
        );
        let mut request = self
            .http
            .post(format!("{}{path}", self.url()))
            .body(body.clone());
        for (name, value) in self.key.sign(&id, now_unix(), &body).pairs() {
            request = request.header(name, value);
        }
        let status = request.send().await.expect("the ingress answers").status();
        let expected = if replay_of.is_some() { 200 } else { 202 };
        assert_eq!(status, expected, "POST {path} as {id}{}", self.logs());
        id
    }

    /// The bodies of the jobs in `queue`'s dead-letter queue (received, so they stay invisible
    /// for the visibility timeout).
    pub async fn dead_letters(&self, queue: QueueName) -> Vec<Value> {
        self.dead_letters_with_reasons(queue)
            .await
            .into_iter()
            .map(|(body, _)| body)
            .collect()
    }

    /// The jobs in `queue`'s dead-letter queue with the `failure_reason` each was parked with
    /// (received, so they stay invisible for the visibility timeout).
    pub async fn dead_letters_with_reasons(&self, queue: QueueName) -> Vec<(Value, String)> {
        let sqs = self.moto.sqs_client().await;
        let mut parked = Vec::new();
        loop {
            let received = sqs
                .receive_message()
                .queue_url(&self.world.dead_letters[&queue])
                .max_number_of_messages(10)
                .visibility_timeout(300)
                .message_attribute_names("All")
                .send()
                .await
                .expect("receive from the dead-letter queue");
            let messages = received.messages();
            if messages.is_empty() {
                return parked;
            }
            parked.extend(messages.iter().map(|message| {
                let body = message.body().expect("a body");
                let reason = message
                    .message_attributes()
                    .and_then(|attributes| attributes.get("failure_reason"))
                    .and_then(|value| value.string_value())
                    .unwrap_or_default();
                (
                    serde_json::from_str(body).expect("a JSON job"),
                    reason.to_owned(),
                )
            }));
        }
    }

    /// Posts `body` to the ingress at `path` with `headers` as they are; returns the status and
    /// the JSON answer (`null` when the answer is not JSON).
    pub async fn post(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&'static str, String)],
    ) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.url())).body(body);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("the ingress answers");
        let status = response.status().as_u16();
        let answer = response.json().await.unwrap_or(Value::Null);
        (status, answer)
    }

    /// The signature headers Benchling would send with `body` as webhook `id` at `unix` time.
    pub fn sign(&self, id: &str, unix: i64, body: &[u8]) -> [(&'static str, String); 3] {
        self.key.sign(id, unix, body).pairs()
    }

    /// The bytes of an object in the package bucket, once it exists (within 60 s).
    pub async fn object(&self, key: &str) -> Vec<u8> {
        eventually(Duration::from_secs(60), || {
            self.moto.get_object(&self.world.bucket, key)
        })
        .await
        .unwrap_or_else(|| panic!("{key} never appeared in the bucket{}", self.logs()))
    }

    /// Every key in the package bucket under `prefix`.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let listed = self
            .moto
            .s3_client()
            .await
            .list_objects_v2()
            .bucket(&self.world.bucket)
            .prefix(prefix)
            .send()
            .await
            .expect("list the bucket");
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect()
    }

    /// The revisions Quilt's stand-in built of `package`: one log line per packager message.
    pub fn revisions(&self, package: &str) -> usize {
        let mark = format!("revision {package}@");
        self.processes["quilt-standin"]
            .log()
            .lines()
            .filter(|line| line.contains(&mark))
            .count()
    }

    /// The body of the `count`-th request of `method` to a path starting with `path`, once
    /// the Benchling stand-in has received it (within 60 s).
    pub async fn request(&self, method: &str, path: &str, count: usize) -> Value {
        eventually(Duration::from_secs(60), || async {
            self.benchling
                .requests_to(method, path)
                .get(count - 1)
                .map(|r| r.json().expect("a JSON body"))
        })
        .await
        .unwrap_or_else(|| panic!("no {method} #{count} to {path}{}", self.logs()))
    }

    /// How many messages wait in `queue`'s dead-letter queue, and in `queue` itself (visible
    /// or in flight).
    pub async fn depths(&self, queue: QueueName) -> (u64, u64) {
        let sqs = self.moto.sqs_client().await;
        let depth = |url: String| {
            let sqs = sqs.clone();
            async move {
                let attributes = sqs
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                    .send()
                    .await
                    .expect("queue attributes");
                let attributes = attributes.attributes().expect("attributes");
                [
                    aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
                    aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                ]
                .iter()
                .map(|name| attributes[name].parse::<u64>().expect("a count"))
                .sum()
            }
        };
        (
            depth(self.world.dead_letters[&queue].clone()).await,
            depth(self.world.queues[&queue].clone()).await,
        )
    }

    /// Makes this system look deployed to the operator CLI, as environment `prod` of a stack on
    /// moto whose outputs name its queues and its ingress, and writes a profile for it. Returns
    /// the `XDG_CONFIG_HOME` holding the profile.
    pub async fn as_deployed(&self) -> tempfile::TempDir {
        use bw_stack::service::QueueKind;
        let stack = Moto::unique_name("BenchlingWebhookStack");
        let env: bw_stack::EnvironmentName = "prod".parse().unwrap();
        let mut outputs = serde_json::Map::new();
        for (kind, queue) in [
            (QueueKind::Export, QueueName::EXPORT),
            (QueueKind::Render, QueueName::RENDER),
            (QueueKind::Canvas, QueueName::CANVAS),
            (QueueKind::PackageEvents, QueueName::PACKAGE_EVENTS),
        ] {
            outputs.insert(
                kind.output_name(&env),
                serde_json::json!({"Value": self.world.queues[&queue]}),
            );
        }
        outputs.insert(
            "ProdWebhookUrl".into(),
            serde_json::json!({"Value": self.url()}),
        );
        let template = serde_json::json!({
            "Metadata": {"BenchlingWebhook": {"environments": ["prod"]}},
            "Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
            "Outputs": outputs
        });
        aws_sdk_cloudformation::Client::new(&self.moto.sdk_config().await)
            .create_stack()
            .stack_name(&stack)
            .template_body(template.to_string())
            .send()
            .await
            .expect("the operator's stack");
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("benchling-webhook/default");
        std::fs::create_dir_all(&dir).unwrap();
        let profile = serde_json::json!({
            "schemaVersion": 1,
            "stack": {"name": stack, "region": "us-east-1"},
            "environment": "prod",
            "quilt": {"stackArn": "arn:aws:cloudformation:us-east-1:123456789012:stack/quilt/1"},
            "benchling": {
                "tenant": "standin", "clientId": CLIENT_ID, "appDefinitionId": APP,
                "secret": self.world.secret
            },
            "packages": {"bucket": self.world.bucket}
        });
        std::fs::write(dir.join("config.json"), profile.to_string()).unwrap();
        home
    }

    /// Runs the operator CLI with `args` and the profile of [`Self::as_deployed`] in `home`.
    pub fn operator(&self, home: &Path, args: &[&str]) -> std::process::Output {
        Command::new(binaries().join(OPERATOR_CLI))
            .args(args)
            .env_clear()
            .envs(self.moto.env())
            .env("XDG_CONFIG_HOME", home)
            .stdin(Stdio::null())
            .output()
            .expect("run the operator CLI")
    }

    /// Drops every message waiting in `queue`, as a message lost on its way would be.
    pub async fn purge(&self, queue: QueueName) {
        self.moto
            .sqs_client()
            .await
            .purge_queue()
            .queue_url(&self.world.queues[&queue])
            .send()
            .await
            .expect("purge the queue");
    }

    /// Every process's log, for a failure message.
    pub fn logs(&self) -> String {
        self.processes
            .iter()
            .map(|(name, p)| format!("\n--- {name} ---\n{}", p.log()))
            .collect()
    }

    /// Stops every process with SIGTERM by its pid and checks each exited cleanly, and that no
    /// log holds a panic or the client secret.
    pub async fn stop(mut self) {
        let logs = self.logs();
        for (name, process) in &mut self.processes {
            let status = process.terminate();
            assert!(status.success(), "{name} exited with {status}{logs}");
        }
        assert!(!logs.contains("panicked"), "a process panicked{logs}");
        assert!(
            !logs.contains(CLIENT_SECRET),
            "a log holds the client secret"
        );
    }
}

/// Polls `check` every 100 ms until it gives a value or `limit` passes.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
