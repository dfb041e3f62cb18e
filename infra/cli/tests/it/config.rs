//! `benchling-webhook config …` as an operator runs it: the binary under test, run as a process,
//! profiles in a scratch `XDG_CONFIG_HOME`, exit codes and output checked.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::profiles::{self, stderr, stdout};

fn run(config_home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_benchling-webhook"))
        .args(args)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("HOME")
        .output()
        .expect("the CLI runs")
}

fn prod() -> Value {
    profiles::prod("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod-x1")
}

#[test]
fn list_show_and_validate_a_profile_and_its_child() {
    let home = tempfile::tempdir().unwrap();
    profiles::write(home.path(), "default", &prod());
    profiles::write(
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
    profiles::write(home.path(), "default", &bad);

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
