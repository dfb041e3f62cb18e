//! The `exporter` binary as operators run it: a worker killed with SIGKILL in the middle of an
//! upload has its job redelivered and finished by the next one, with the same objects; a
//! SIGTERM stops it cleanly; a bad configuration names the bad fields; logs never hold the
//! client secret; `exporter --health` answers 0 when the worker is ready and 1 when not.

use std::io::Read as _;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    CLIENT_ID, CLIENT_SECRET, PKG_PREFIX, Rig, export_job, next_job, next_message, send,
};
use bw_contracts::RenderJob;
use bw_standin::archive::{build, stored};
use bw_standin::benchling::{FIXTURE_ENTRY_ID, secret_json};
use bw_standin::stub::free_port;
use bw_testkit::sample::pattern;

const MEMBERS: usize = 400;
const MEMBER_BYTES: usize = 64 * 1024;

fn spawn(rig: &Rig, port: u16, extra: &[(&str, &str)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_exporter"));
    command
        .env_clear()
        .envs(rig.env())
        .envs(rig.base.moto.env())
        .env("PORT", port.to_string())
        .env("LOG_FORMAT", "json")
        .envs(extra.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.spawn().expect("spawn exporter")
}

fn logs(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn wait_with_timeout(mut child: Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the exporter did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

async fn ready(port: u16) -> bool {
    probe_answers(port, 200).await
}

/// Whether `/health/ready` answers `status` within 20 s.
async fn probe_answers(port: u16, status: u16) -> bool {
    let url = format!("http://127.0.0.1:{port}/health/ready");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(response) = reqwest::get(&url).await
            && response.status() == status
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// `exporter --health` as the container health check runs it, with nothing but `PORT` in its
/// environment.
async fn health_check(port: u16) -> Output {
    let check = tokio::process::Command::new(env!("CARGO_BIN_EXE_exporter"))
        .arg("--health")
        .env_clear()
        .env("PORT", port.to_string())
        .kill_on_drop(true)
        .output();
    // The check bounds itself to 2 s; this only keeps a broken one from hanging the suite.
    tokio::time::timeout(Duration::from_secs(10), check)
        .await
        .expect("the health check did not exit within 10 s")
        .expect("run exporter --health")
}

/// Kills a worker when its test ends, passed or failed, so none outlives the suite.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_upload_is_finished_by_the_next_one() {
    // A short visibility timeout, so the killed worker's job comes back within seconds.
    let rig = Rig::new(3, 5).await;
    let files: Vec<(String, Vec<u8>)> = (0..MEMBERS)
        .map(|i| {
            (
                format!("data/part-{i:04}.bin"),
                pattern(MEMBER_BYTES, i as u64),
            )
        })
        .collect();
    let members: Vec<(&str, _, &[u8])> = files
        .iter()
        .map(|(name, bytes)| (name.as_str(), stored(), bytes.as_slice()))
        .collect();
    rig.base
        .benchling
        .add_download("export.zip", build(&members));
    let prefix = format!("{PKG_PREFIX}/EXP25000007/");

    let first_port = free_port();
    let first = spawn(&rig, first_port, &[("UPLOAD_CONCURRENCY", "2")]);
    assert!(
        ready(first_port).await,
        "the first worker never became ready"
    );
    send(
        rig.base.queue(&rig.export_url).as_ref(),
        export_job(FIXTURE_ENTRY_ID, "msg_killed", None),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while rig.keys(&prefix).await.len() < 20 {
        assert!(Instant::now() < deadline, "the upload never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut first = first;
    first.kill().unwrap();
    let first_output = first.wait_with_output().unwrap();
    let written_at_kill = rig.keys(&prefix).await.len();
    assert!(
        written_at_kill < MEMBERS,
        "the upload finished before the kill, so this run proves nothing"
    );
    let render_queue = rig.base.queue(&rig.render_url);
    assert!(
        next_message(render_queue.as_ref(), Duration::ZERO)
            .await
            .is_none(),
        "a render job went out before the upload finished"
    );

    let second_port = free_port();
    let second = spawn(&rig, second_port, &[]);
    let render: RenderJob = next_job(render_queue.as_ref(), Duration::from_secs(90)).await;
    assert_eq!(render.entry_id.as_str(), FIXTURE_ENTRY_ID);
    let objects = rig.objects().await;
    let package: Vec<&String> = objects.keys().filter(|k| k.starts_with(&prefix)).collect();
    assert_eq!(package.len(), MEMBERS);
    for (name, bytes) in &files {
        assert!(
            objects[&format!("{prefix}{name}")] == *bytes,
            "{name} differs"
        );
    }
    assert!(objects.contains_key(&render.entry_key));
    assert_eq!(objects.len(), MEMBERS + 1, "unexpected objects: {:?}", {
        objects
            .keys()
            .filter(|k| !k.starts_with(&prefix))
            .collect::<Vec<_>>()
    });
    assert_eq!(
        rig.base
            .benchling
            .requests_to("POST", "/api/v2/exports")
            .len(),
        2
    );
    assert!(ready(second_port).await);

    // SIGTERM: a clean exit.
    let status = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let second_output = wait_with_timeout(second, Duration::from_secs(30));
    assert!(
        second_output.status.success(),
        "exit {:?}: {}",
        second_output.status,
        logs(&second_output)
    );
    let second_logs = logs(&second_output);
    let processed = second_logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"] == "job processed")
        .unwrap_or_else(|| panic!("no outcome line in: {second_logs}"));
    assert_eq!(processed["outcome"], "success", "{processed}");
    assert_eq!(
        processed["span"]["entry_id"], FIXTURE_ENTRY_ID,
        "{processed}"
    );
    for output in [&first_output, &second_output] {
        assert!(!logs(output).contains(CLIENT_SECRET));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_secrets_log_level_applies_unless_log_level_is_set() {
    let rig = Rig::new(30, 5).await;
    let mut secret: serde_json::Value =
        serde_json::from_str(&secret_json(CLIENT_ID, CLIENT_SECRET, &rig.base.bucket)).unwrap();
    secret["log_level"] = "DEBUG".into();
    let path = rig.base.secret_path.with_file_name("debug-secret.json");
    std::fs::write(&path, secret.to_string()).unwrap();
    let source = format!("file:{}", path.display());
    let (from_secret, from_env) = (free_port(), free_port());
    let mut secret_wins = KillOnDrop(spawn(
        &rig,
        from_secret,
        &[("BenchlingSecret", source.as_str())],
    ));
    let mut variable_wins = KillOnDrop(spawn(
        &rig,
        from_env,
        &[("BenchlingSecret", source.as_str()), ("LOG_LEVEL", "info")],
    ));
    // Read as they are written: at DEBUG a worker fills a pipe left unread and stalls.
    let drain = |worker: &mut KillOnDrop| {
        let mut stdout = worker.0.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        })
    };
    let (secret_out, env_out) = (drain(&mut secret_wins), drain(&mut variable_wins));
    assert!(
        ready(from_secret).await,
        "the first worker never became ready"
    );
    assert!(
        ready(from_env).await,
        "the second worker never became ready"
    );
    drop((secret_wins, variable_wins));
    let (secret_logs, env_logs) = (secret_out.join().unwrap(), env_out.join().unwrap());
    let changed = secret_logs
        .lines()
        .find(|line| line.contains("log level changed"))
        .unwrap_or_else(|| panic!("the secret's log_level was not applied: {secret_logs}"));
    assert!(changed.contains("debug"), "{changed}");
    assert!(
        !env_logs.contains("log level changed"),
        "the secret overrode LOG_LEVEL: {env_logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_health_flag_answers_0_when_ready_and_1_when_not() {
    let rig = Rig::new(30, 5).await;
    let ready_port = free_port();
    let _ready_worker = KillOnDrop(spawn(&rig, ready_port, &[]));
    // A secret that never appears keeps the second worker up but not ready.
    let missing = format!(
        "file:{}",
        rig.base
            .secret_path
            .with_file_name("missing.json")
            .display()
    );
    let waiting_port = free_port();
    let _waiting_worker = KillOnDrop(spawn(
        &rig,
        waiting_port,
        &[("BenchlingSecret", missing.as_str())],
    ));

    assert!(ready(ready_port).await, "the worker never became ready");
    let check = health_check(ready_port).await;
    assert_eq!(check.status.code(), Some(0), "{}", logs(&check));
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        format!("ready: 127.0.0.1:{ready_port} answered 200\n")
    );

    assert!(
        probe_answers(waiting_port, 503).await,
        "the worker without a secret never answered 503"
    );
    let check = health_check(waiting_port).await;
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(check.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("not ready: 127.0.0.1:{waiting_port} answered 503")),
        "{stderr}"
    );
}

#[test]
fn a_bad_configuration_names_every_bad_field_and_exits_2() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_exporter"))
        .env_clear()
        .env(
            "EXPORT_QUEUE_URL",
            "http://127.0.0.1:1/123456789012/export.fifo",
        )
        .env("ARCHIVE_MAX_MEMBERS", "lots")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    for field in [
        "RENDER_QUEUE_URL",
        "CANVAS_QUEUE_URL",
        "ARCHIVE_MAX_MEMBERS",
    ] {
        assert!(stderr.contains(field), "{field} not named: {stderr}");
    }
}
