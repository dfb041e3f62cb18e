//! The `benchling-standin` binary as compose runs it: it prints its URL, serves the recorded
//! entry and the sample export over HTTP, and exits cleanly on SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bw_standin::benchling::{ENTRY_FIXTURE, FIXTURE_ENTRY_ID};

/// Kills the child if the test fails before stopping it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_serves_the_recorded_entry_until_sigterm() {
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_benchling-standin"))
            .args(["--port", "0", "--host", "127.0.0.1"])
            .args(["--client-id", "it-id", "--client-secret", "it-secret"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("benchling-standin starts"),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the URL line");
    let url = line
        .strip_prefix("benchling stand-in on ")
        .and_then(|rest| rest.strip_suffix(&format!(" (entry {FIXTURE_ENTRY_ID})\n")))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let port: u16 = url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no loopback port in {url:?}"));
    assert_ne!(port, 0, "the bound port is shown");

    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{url}/api/v2/token"))
        .basic_auth("it-id", Some("it-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON");
    let token = token["access_token"].as_str().expect("an access token");
    let entry = http
        .get(format!("{url}/api/v2/entries/{FIXTURE_ENTRY_ID}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("entry request");
    assert_eq!(entry.status(), 200);
    let entry: serde_json::Value = entry.json().await.expect("entry JSON");
    let recorded: serde_json::Value = serde_json::from_str(ENTRY_FIXTURE).expect("fixture JSON");
    assert_eq!(entry["entry"], recorded["entry"]);
    let export = http
        .get(format!("{url}/downloads/export.zip"))
        .send()
        .await
        .expect("download request");
    assert_eq!(export.status(), 200);
    assert!(
        export
            .bytes()
            .await
            .expect("ZIP bytes")
            .starts_with(b"PK\x03\x04")
    );

    let kill = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit {status:?}");
}

#[test]
fn bad_arguments_exit_2_with_the_usage() {
    let output = Command::new(env!("CARGO_BIN_EXE_benchling-standin"))
        .args(["--host", "localhost"])
        .output()
        .expect("benchling-standin runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--host takes an IP address"), "{stderr}");
    assert!(stderr.contains("usage: benchling-standin"), "{stderr}");
}
