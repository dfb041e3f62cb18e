//! `benchling-webhook config …` as an operator runs it: the binary under test, run as a process,
//! profiles in a scratch `XDG_CONFIG_HOME`, exit codes and output checked.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

fn run(config_home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_benchling-webhook"))
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("HOME")
        .output()
        .expect("the CLI runs")
}

fn write_profile(config_home: &Path, name: &str, profile: &Value) {
    let dir = config_home.join("benchling-webhook").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(profile).unwrap(),
    )
    .unwrap();
}

fn prod() -> Value {
    json!({
        "schemaVersion": 1,
        "environment": "prod",
        "quilt": {"stackArn": "arn:aws:cloudformation:us-east-2:123456789012:stack/quilt/1"},
        "benchling": {
            "tenant": "acme",
            "clientId": "client-1",
            "appDefinitionId": "appdef_1",
            "secret": "arn:aws:secretsmanager:us-east-2:123456789012:secret:prod-x1"
        },
        "packages": {"bucket": "acme-packages"}
    })
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn list_show_and_validate_a_profile_and_its_child() {
    let home = tempfile::tempdir().unwrap();
    write_profile(home.path(), "default", &prod());
    write_profile(
        home.path(),
        "dev",
        &json!({
            "_inherits": "default",
            "environment": "dev",
            "benchling": {"secret": "arn:aws:secretsmanager:us-east-2:123456789012:secret:dev-y2"}
        }),
    );

    let listed = run(home.path(), &["config", "list", "--output", "json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        listed["profiles"],
        json!([{"name": "default", "valid": true}, {"name": "dev", "valid": true}])
    );

    let shown = run(
        home.path(),
        &["config", "show", "--profile", "dev", "--output", "json"],
    );
    assert!(shown.status.success(), "{}", stderr(&shown));
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["environment"], "dev");
    assert_eq!(shown["benchling"]["tenant"], "acme", "inherited");
    assert_eq!(
        shown["benchling"]["secret"],
        "arn:aws:secretsmanager:us-east-2:***:secret:dev-y2"
    );
    assert_eq!(shown["stack"]["name"], "BenchlingWebhookStack");

    let text = run(home.path(), &["config", "show"]);
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(!stdout(&text).contains("123456789012"), "{}", stdout(&text));
    assert!(
        stdout(&text).contains("environment:        prod"),
        "{}",
        stdout(&text)
    );

    let valid = run(home.path(), &["config", "validate", "--profile", "dev"]);
    assert_eq!(valid.status.code(), Some(0), "{}", stderr(&valid));
}

#[test]
fn an_invalid_profile_exits_1_naming_the_field_and_usage_errors_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let mut bad = prod();
    bad["packages"]["bucket"] = json!("Not A Bucket");
    write_profile(home.path(), "default", &bad);

    let validated = run(home.path(), &["config", "validate"]);
    assert_eq!(validated.status.code(), Some(1));
    assert!(
        stderr(&validated).contains("packages.bucket"),
        "{}",
        stderr(&validated)
    );

    let listed = run(home.path(), &["config", "list"]);
    assert_eq!(
        listed.status.code(),
        Some(0),
        "list reports, it does not fail"
    );
    assert!(
        stdout(&listed).contains("default: INVALID"),
        "{}",
        stdout(&listed)
    );

    let missing = run(home.path(), &["config", "show", "--profile", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("\"nope\" does not exist"),
        "{}",
        stderr(&missing)
    );

    let usage = run(home.path(), &["config", "show", "--output", "yaml"]);
    assert_eq!(usage.status.code(), Some(2), "{}", stderr(&usage));
}

#[test]
fn no_profiles_says_how_to_make_one() {
    let home = tempfile::tempdir().unwrap();
    let listed = run(home.path(), &["config", "list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(
        stdout(&listed).contains("no profiles in"),
        "{}",
        stdout(&listed)
    );
}
