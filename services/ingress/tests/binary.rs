//! The `ingress` binary as operators run it: configuration errors, start-up, SIGTERM with a
//! request in flight, OTLP export with the trace id carried in the job, and logs that never
//! contain credentials or signatures; `ingress --health` as a container health check runs it.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use bw_contracts::{ExportJob, JobEnvelope};
use bw_queue::{Queue as _, SqsQueue};
use bw_standin::stub::free_port;
use bw_testkit::jwks::JwksServer;
use bw_testkit::moto::Moto;
use bw_testkit::otlp::OtlpSink;
use bw_testkit::signer::{SigningKey, now_unix};

const CLIENT_SECRET: &str = "binary-test-client-secret";

fn secret_file(verify: bool) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "bw-ingress-bin-{}-{verify}.json",
        std::process::id()
    ));
    std::fs::write(&path, secret_text(verify)).unwrap();
    path
}

fn secret_text(verify: bool) -> String {
    format!(
        r#"{{"tenant":"t","client_id":"binary-test-client-id","client_secret":"{CLIENT_SECRET}","app_definition_id":"appdef_bin","user_bucket":"bkt","enable_webhook_verification":{verify}}}"#
    )
}

fn spawn(port: u16, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ingress"));
    command
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().expect("spawn ingress")
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

fn wait_until_up(port: u16, path: &str) -> Duration {
    wait_for_status(port, path, "200")
}

fn wait_for_status(port: u16, path: &str, status: &str) -> Duration {
    let started = Instant::now();
    let status_line = format!("HTTP/1.1 {status}");
    while started.elapsed() < Duration::from_secs(20) {
        if get(port, path).is_some_and(|a| a.starts_with(&status_line)) {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("ingress did not answer {status} on {path}");
}

fn terminate(child: &Child) {
    // SAFETY: sends SIGTERM to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
}

/// Waits for `child` to exit, killing it and failing the test after `timeout`.
fn wait_bounded(mut child: Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("process {} did not exit within {timeout:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `ingress --health` as the container health check runs it, with nothing but `PORT` in its
/// environment: it must not need the rest of the configuration.
fn health_check(port: &str) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_ingress"))
        .arg("--health")
        .env_clear()
        .env("PORT", port)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ingress --health");
    // The check bounds itself to 2 s; this only keeps a broken one from hanging the suite.
    wait_bounded(child, Duration::from_secs(10))
}

/// Kills the ingress when a test fails before stopping it, so none outlives the suite.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn output(child: Child) -> (std::process::ExitStatus, String) {
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status, text)
}

#[test]
fn a_bad_configuration_exits_naming_every_bad_field() {
    let child = spawn(
        free_port(),
        &[
            ("PORT", "eighty".into()),
            ("EXPORT_QUEUE_URL", "https://x/q.fifo".into()),
        ],
    );
    let (status, text) = output(child);
    assert_eq!(status.code(), Some(2), "{text}");
    assert!(
        text.contains("PORT:") && text.contains("CANVAS_QUEUE_URL:"),
        "{text}"
    );
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits_cleanly() {
    let port = free_port();
    let secret = secret_file(false);
    let child = spawn(
        port,
        &[("BenchlingSecret", format!("file:{}", secret.display()))],
    );
    wait_until_up(port, "/health/ready");

    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/benchling-events/entry-created.json"
    ))
    .unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "POST /event HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len()).unwrap();
    stream.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    terminate(&child);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        get(port, "/health").is_none(),
        "no new connections after SIGTERM"
    );
    stream.write_all(&body[10..]).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");

    let (status, text) = output(child);
    assert!(status.success(), "{status}: {text}");
    assert!(text.contains("ingress stopped"), "{text}");
    assert!(!text.contains(CLIENT_SECRET));
    std::fs::remove_file(secret).unwrap();
}

#[test]
fn spans_are_exported_with_the_trace_id_the_job_carries_and_logs_hold_no_secrets() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::shared();
    let (export_url, canvas_url) = runtime.block_on(async {
        (
            moto.create_queue(&Moto::unique_name("bin-export"), true, 30, None)
                .await,
            moto.create_queue(&Moto::unique_name("bin-canvas"), true, 30, None)
                .await,
        )
    });
    let sink = OtlpSink::start();
    let key = SigningKey::generate("bin");
    let jwks = JwksServer::start("appdef_bin", &[&key]);
    let secret = secret_file(true);
    let port = free_port();
    let mut env = vec![
        ("BenchlingSecret", format!("file:{}", secret.display())),
        ("BENCHLING_JWKS_BASE_URL", jwks.base_url()),
        ("EXPORT_QUEUE_URL", export_url.clone()),
        ("CANVAS_QUEUE_URL", canvas_url),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.endpoint()),
        ("LOG_LEVEL", "debug".into()),
    ];
    let moto_env = moto.env();
    env.extend(moto_env.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let child = spawn(port, &env);
    let startup = wait_until_up(port, "/health/ready");
    eprintln!("ready after {startup:?}");

    let post = |fixture: &str, webhook_id: &str| {
        let body = std::fs::read(format!(
            "{}/../../tests/fixtures/benchling-events/{fixture}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let signed = key.sign(webhook_id, now_unix(), &body);
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "POST /prod/event HTTP/1.1\r\nhost: x\r\nconnection: close\r\nwebhook-id: {}\r\nwebhook-timestamp: {}\r\nwebhook-signature: {}\r\ncontent-length: {}\r\n\r\n",
            signed.id, signed.timestamp, signed.signature, body.len()
        )
        .unwrap();
        stream.write_all(&body).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        (answer, signed)
    };
    let (answer, signed) = post("entry-updated.json", "msg_binary_1");
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    // A click on a button that is not ours is answered and logged, never queued.
    let (answer, _) = post("canvas-interaction.json", "msg_binary_2");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let traceparent = runtime.block_on(async {
        let queue = SqsQueue::new(moto.sqs_client().await, &export_url);
        let messages = queue.receive(10, Duration::from_secs(2)).await.unwrap();
        assert_eq!(messages.len(), 1);
        JobEnvelope::<ExportJob>::from_body(&messages[0].body)
            .unwrap()
            .traceparent
            .unwrap()
    });
    let trace_id = traceparent.split('-').nth(1).unwrap().to_owned();

    terminate(&child);
    let (status, logs) = output(child);
    assert!(status.success(), "{logs}");
    let spans = sink.wait_for(
        |s| s.iter().any(|s| s.trace_id == trace_id),
        Duration::from_secs(5),
    );
    let webhook = spans
        .iter()
        .find(|s| s.trace_id == trace_id && s.name == "webhook")
        .unwrap_or_else(|| panic!("no webhook span with trace {trace_id}: {spans:?}"));
    assert_eq!(webhook.service_name, "benchling-webhook-ingress");

    let signature = signed.signature.trim_start_matches("v1der,");
    for secret_text in [CLIENT_SECRET, "binary-test-client-id", signature] {
        assert!(!logs.contains(secret_text), "logs contain {secret_text}");
    }
    assert!(
        logs.contains("msg_binary_1"),
        "the webhook id is logged: {logs}"
    );
    let ignored = logs
        .lines()
        .find(|line| line.contains("webhook ignored"))
        .unwrap_or_else(|| panic!("no log line for the ignored button: {logs}"));
    assert!(ignored.contains("my_button_id"), "{ignored}");
    std::fs::remove_file(secret).unwrap();
}

#[test]
fn the_secrets_log_level_is_applied() {
    let port = free_port();
    let mut secret: serde_json::Value = serde_json::from_str(&secret_text(false)).unwrap();
    secret["log_level"] = "DEBUG".into();
    let path =
        std::env::temp_dir().join(format!("bw-ingress-bin-{}-debug.json", std::process::id()));
    std::fs::write(&path, secret.to_string()).unwrap();
    let child = spawn(
        port,
        &[("BenchlingSecret", format!("file:{}", path.display()))],
    );
    wait_until_up(port, "/health/ready");
    terminate(&child);
    let (status, text) = output(child);
    std::fs::remove_file(path).unwrap();
    assert!(status.success(), "{status}: {text}");
    let changed = text
        .lines()
        .find(|line| line.contains("log level changed"))
        .unwrap_or_else(|| panic!("the secret's log_level was not applied: {text}"));
    assert!(changed.contains("debug"), "{changed}");
}

#[test]
fn the_health_flag_follows_readiness_and_reads_only_port() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let moto = Moto::shared();
    let (export_url, canvas_url) = runtime.block_on(async {
        (
            moto.create_queue(&Moto::unique_name("health-export"), true, 30, None)
                .await,
            moto.create_queue(&Moto::unique_name("health-canvas"), true, 30, None)
                .await,
        )
    });
    // The secret file appears only later, so the ingress starts degraded and then recovers.
    let secret =
        std::env::temp_dir().join(format!("bw-ingress-bin-{}-health.json", std::process::id()));
    let _ = std::fs::remove_file(&secret);
    let port = free_port();
    let mut env = vec![
        ("BenchlingSecret", format!("file:{}", secret.display())),
        ("SECRET_RETRY_INITIAL_MS", "50".into()),
        ("SECRET_RETRY_MAX_SECS", "1".into()),
        ("EXPORT_QUEUE_URL", export_url),
        ("CANVAS_QUEUE_URL", canvas_url),
    ];
    let moto_env = moto.env();
    env.extend(moto_env.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let mut ingress = KillOnDrop(Some(spawn(port, &env)));
    let addr = format!("127.0.0.1:{port}");

    wait_for_status(port, "/health/ready", "503");
    let degraded = health_check(&port.to_string());
    let stderr = String::from_utf8_lossy(&degraded.stderr);
    assert_eq!(degraded.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("not ready: {addr} answered 503")),
        "{stderr}"
    );

    std::fs::write(&secret, secret_text(false)).unwrap();
    wait_until_up(port, "/health/ready");
    let ready = health_check(&port.to_string());
    assert_eq!(
        ready.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&ready.stdout),
        format!("ready: {addr} answered 200\n")
    );

    let child = ingress.0.take().unwrap();
    terminate(&child);
    let stopped = wait_bounded(child, Duration::from_secs(30));
    assert!(stopped.status.success(), "{}", stopped.status);
    let gone = health_check(&port.to_string());
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(gone.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("not ready: cannot connect to {addr}")),
        "{stderr}"
    );
    std::fs::remove_file(secret).unwrap();
}

#[test]
fn the_health_flag_fails_naming_a_port_it_cannot_check() {
    for bad in ["eighty", "0"] {
        let check = health_check(bad);
        let stderr = String::from_utf8_lossy(&check.stderr);
        // 1 like any failed check, not the configuration error's 2.
        assert_eq!(check.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("PORT"), "{stderr}");
    }
}
