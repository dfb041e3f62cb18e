//! Profiles as the tests write them, the way an operator's files would be, and the output
//! helpers every CLI test uses.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use bw_queue::SqsQueue;
use bw_testkit::moto::Moto;

use serde_json::{Value, json};

/// A valid `prod` profile whose Benchling secret is `secret` (a name or an ARN).
pub fn prod(secret: &str) -> Value {
    json!({
        "schemaVersion": 1,
        "environment": "prod",
        "quilt": {"stackArn": "arn:aws:cloudformation:us-east-1:123456789012:stack/quilt/1"},
        "benchling": {
            "tenant": "acme",
            "clientId": "client-1",
            "appDefinitionId": "appdef_1",
            "secret": secret
        },
        "packages": {"bucket": "acme-packages"}
    })
}

/// Writes `profile` as profile `name` under `config_home` (what `XDG_CONFIG_HOME` names).
pub fn write(config_home: &Path, name: &str, profile: &Value) {
    let dir = config_home.join("benchling-webhook").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(profile).unwrap(),
    )
    .unwrap();
}

/// A process's standard output, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A process's standard error, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `benchling-webhook <command> <args>` with the profiles in `config_home`, against moto,
/// with no terminal to ask on.
pub fn run(config_home: &Path, command: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_benchling-webhook"))
        .arg(command)
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .envs(Moto::shared().env())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The queue named `name`.
pub async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> SqsQueue {
    let url = sqs
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    SqsQueue::new(sqs.clone(), url)
}
