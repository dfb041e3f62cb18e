//! `benchling-webhook secret sync` against Secrets Manager on moto: created from the profile and
//! the client secret, updated without it, operator keys kept, no value ever printed.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use bw_config::BenchlingSecret;
use bw_testkit::moto::Moto;
use serde_json::{Value, json};

use crate::profiles::{self, stderr};

const CLIENT_SECRET: &str = "cs-Very-Secret-9f2";

fn write_profile(home: &Path, secret: &str, log_level: &str) {
    let mut profile = profiles::prod(secret);
    profile["logLevel"] = json!(log_level);
    profiles::write(home, "default", &profile);
}

fn sync(home: &Path, client_secret: Option<&str>, stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_benchling-webhook"));
    command
        .args(["secret", "sync"])
        .env("XDG_CONFIG_HOME", home)
        .envs(Moto::shared().env())
        .env_remove("BENCHLING_CLIENT_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(value) = client_secret {
        command.env("BENCHLING_CLIENT_SECRET", value);
    }
    if stdin.is_some() {
        command.arg("--client-secret-stdin");
    }
    let mut child = command.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !said.contains(CLIENT_SECRET),
        "the client secret was printed: {said}"
    );
    output
}

async fn stored(name: &str) -> Option<Value> {
    let client = aws_sdk_secretsmanager::Client::new(&Moto::shared().sdk_config().await);
    let found = client
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .ok()?;
    serde_json::from_str(found.secret_string()?).ok()
}

#[tokio::test]
async fn sync_creates_then_updates_the_secret_keeping_what_the_profile_does_not_own() {
    let home = tempfile::tempdir().unwrap();
    let name = format!("benchling-webhook/{}", Moto::unique_name("sync"));
    write_profile(home.path(), &name, "INFO");

    let refused = sync(home.path(), None, None);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("BENCHLING_CLIENT_SECRET"),
        "{}",
        stderr(&refused)
    );
    assert!(stored(&name).await.is_none(), "nothing created");

    let created = sync(home.path(), Some(CLIENT_SECRET), None);
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(String::from_utf8_lossy(&created.stdout).starts_with("created "));
    let secret = stored(&name).await.unwrap();
    let parsed = BenchlingSecret::from_json(&secret.to_string()).unwrap();
    assert_eq!(parsed.client_secret.expose(), CLIENT_SECRET);
    assert_eq!(parsed.user_bucket, "acme-packages");
    assert_eq!(parsed.pkg_key, "experiment_id");

    // An operator's own key, and a profile change: a sync without the client secret keeps both.
    let mut edited = secret.clone();
    edited["workflow"] = json!("alpha");
    aws_sdk_secretsmanager::Client::new(&Moto::shared().sdk_config().await)
        .put_secret_value()
        .secret_id(&name)
        .secret_string(edited.to_string())
        .send()
        .await
        .unwrap();
    write_profile(home.path(), &name, "DEBUG");
    let updated = sync(home.path(), None, None);
    assert!(updated.status.success(), "{}", stderr(&updated));
    assert!(String::from_utf8_lossy(&updated.stdout).starts_with("updated "));
    let secret = stored(&name).await.unwrap();
    assert_eq!(secret["log_level"], "DEBUG");
    assert_eq!(secret["workflow"], "alpha");
    assert_eq!(secret["client_secret"], CLIENT_SECRET);

    let rotated = sync(home.path(), None, Some("cs-rotated\n"));
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    assert_eq!(stored(&name).await.unwrap()["client_secret"], "cs-rotated");
}

#[tokio::test]
async fn a_secret_the_services_could_not_read_is_not_written() {
    let home = tempfile::tempdir().unwrap();
    let name = format!("benchling-webhook/{}", Moto::unique_name("broken"));
    write_profile(home.path(), &name, "INFO");
    let client = aws_sdk_secretsmanager::Client::new(&Moto::shared().sdk_config().await);
    // The Python system's uppercase form: the profile's keys are not mixed into it.
    let old = json!({"BENCHLING_TENANT": "acme", "BENCHLING_CLIENT_SECRET": CLIENT_SECRET});
    client
        .create_secret()
        .name(&name)
        .secret_string(old.to_string())
        .send()
        .await
        .unwrap();

    let refused = sync(home.path(), None, None);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("uppercase form"),
        "{}",
        stderr(&refused)
    );
    let with_secret = sync(home.path(), Some(CLIENT_SECRET), None);
    assert_eq!(with_secret.status.code(), Some(1));
    assert_eq!(stored(&name).await.unwrap(), old, "left as it was");

    // A value the services would refuse (the metadata key must be an identifier).
    let fresh = format!("benchling-webhook/{}", Moto::unique_name("invalid"));
    write_profile(home.path(), &fresh, "INFO");
    let path = home.path().join("benchling-webhook/default/config.json");
    let mut profile: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    profile["packages"]["metadataKey"] = json!("experiment id");
    std::fs::write(&path, profile.to_string()).unwrap();
    let unusable = sync(home.path(), Some(CLIENT_SECRET), None);
    assert_eq!(unusable.status.code(), Some(1));
    assert!(
        stderr(&unusable).contains("would not be usable"),
        "{}",
        stderr(&unusable)
    );
    assert!(stored(&fresh).await.is_none(), "nothing created");
}
