//! The `canvas` binary refuses a bad configuration at start-up, naming every bad field, with
//! the exit code of a configuration error; a workgroup it cannot use leaves it running and
//! ready, with the problem named in its log and readiness answer.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bw_standin::benchling::secret_json;
use bw_standin::stub::free_port;
use bw_testkit::moto::Moto;

#[test]
fn a_bad_workgroup_and_a_missing_database_stop_the_service_at_start_up() {
    let output = Command::new(env!("CARGO_BIN_EXE_canvas"))
        .env_clear()
        .env("PORT", "0")
        .env(
            "CANVAS_QUEUE_URL",
            "http://127.0.0.1:9/123456789012/canvas.fifo",
        )
        .env(
            "EXPORT_QUEUE_URL",
            "http://127.0.0.1:9/123456789012/export.fifo",
        )
        .env("QUILT_WEB_HOST", "catalog.example.com")
        .env("ATHENA_USER_WORKGROUP", "no spaces; allowed")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for field in ["ATHENA_USER_WORKGROUP", "ATHENA_USER_DATABASE"] {
        assert!(stderr.contains(field), "{field} not named: {stderr}");
    }
}

#[tokio::test]
async fn a_missing_workgroup_is_named_in_the_log_and_readiness_while_the_worker_runs() {
    let moto = Moto::shared();
    let (canvas, _) = moto
        .create_queue_with_dead_letter(&Moto::unique_name("canvas"), true, 30, 3)
        .await;
    let export = moto
        .create_queue(&Moto::unique_name("export"), true, 30, None)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.json");
    std::fs::write(&secret, secret_json("id", "secret", "bucket")).unwrap();
    let log = dir.path().join("canvas.log");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_canvas"))
        .env_clear()
        .envs(moto.env())
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .env("LOG_FORMAT", "json")
        .env("BenchlingSecret", format!("file:{}", secret.display()))
        .env("CANVAS_QUEUE_URL", &canvas)
        .env("EXPORT_QUEUE_URL", &export)
        .env("QUILT_WEB_HOST", "catalog.example.com")
        .env("ATHENA_USER_DATABASE", "quilt_catalog")
        .env("BENCHLING_ATHENA_WORKGROUP", "never-created-wg")
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/health/ready");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    let warned = loop {
        if let Ok(response) = reqwest::get(&url).await
            && response.status() == 200
        {
            last = response.text().await.unwrap();
            if last.contains("never-created-wg") {
                break true;
            }
        }
        if Instant::now() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        warned,
        "ready without the workgroup warning: {last}\n{logged}"
    );
    assert!(last.contains("BENCHLING_ATHENA_WORKGROUP"), "{last}");
    assert!(
        logged.contains("Athena workgroup check failed") && logged.contains("never-created-wg"),
        "{logged}"
    );
}
