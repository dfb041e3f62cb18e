//! `benchling-webhook manifest`: the file it writes, read back as YAML by PyYAML (from the
//! `.venv` that `scripts/test` puts on PATH) and checked against the manifest schema as
//! Benchling documents it, and against the message types the ingress routes.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use bw_contracts::EventType;
use serde_json::Value;

/// The top-level fields of Benchling's app manifest reference.
const DOCUMENTED_FIELDS: [&str; 7] = [
    "manifestVersion",
    "info",
    "settings",
    "configuration",
    "features",
    "subscriptions",
    "security",
];

fn read_yaml(path: &Path) -> Value {
    let loaded = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml\nprint(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(path)
        .output()
        .expect("python3 with PyYAML: run ./scripts/test, which installs it into .venv");
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    serde_json::from_slice(&loaded.stdout).unwrap()
}

/// What Benchling's documentation says a manifest is, as far as it goes.
fn check_against_documented_schema(manifest: &Value) {
    let root = manifest.as_object().expect("a mapping");
    for key in root.keys() {
        assert!(
            DOCUMENTED_FIELDS.contains(&key.as_str()),
            "undocumented field {key}"
        );
    }
    assert_eq!(manifest["manifestVersion"], 1);
    let info = &manifest["info"];
    assert!(info["name"].as_str().is_some_and(|n| !n.is_empty()));
    let version = info["version"].as_str().expect("info.version");
    assert!(
        version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "info.version {version} is not semantic"
    );
    // Sunset in 2024: the URL is set in the Developer Console, lifecycle messages subscribed to.
    assert!(manifest.pointer("/settings/webhookUrl").is_none());
    assert!(manifest.pointer("/settings/lifecycleManagement").is_none());
    for feature in manifest["features"].as_array().expect("features") {
        let keys: BTreeSet<&str> = feature
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, BTreeSet::from(["id", "name", "type"]), "{feature}");
    }
    assert_eq!(manifest["subscriptions"]["deliveryMethod"], "WEBHOOK");
    let messages = manifest["subscriptions"]["messages"]
        .as_array()
        .expect("subscriptions.messages");
    assert!(!messages.is_empty());
    for message in messages {
        assert_eq!(message.as_object().unwrap().len(), 1, "{message}");
        assert!(message["type"].is_string(), "{message}");
    }
}

#[test]
fn the_manifest_is_what_benchling_documents_and_subscribes_to_what_the_ingress_routes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app-manifest.yaml");
    let written = Command::new(env!("CARGO_BIN_EXE_benchling-webhook"))
        .args(["manifest", "--name", "Acme: Quilt", "--out"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        written.status.success(),
        "{}",
        String::from_utf8_lossy(&written.stderr)
    );
    assert!(String::from_utf8_lossy(&written.stderr).contains("next:"));

    let manifest = read_yaml(&path);
    check_against_documented_schema(&manifest);
    assert_eq!(
        manifest["info"]["name"], "Acme: Quilt",
        "quoted, not a mapping"
    );
    assert_eq!(manifest["features"][0]["type"], "CANVAS");
    assert_eq!(manifest["features"][0]["id"], "quilt_integration");

    let subscribed: BTreeSet<String> = manifest["subscriptions"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["type"].as_str().unwrap().to_owned())
        .collect();
    for kind in &subscribed {
        assert!(
            !matches!(EventType::parse(kind), EventType::Other(_)),
            "{kind} is not a type the ingress routes"
        );
    }
    for kind in [
        "v2.entry.created",
        "v2.entry.updated.fields",
        "v2.entry.updated.reviewRecord",
        "v2.canvas.userInteracted",
        "v2.canvas.created",
        "v2.canvas.initialized",
        "v2.app.installed",
        "v2.app.activateRequested",
        "v2.app.deactivated",
    ] {
        assert!(subscribed.contains(kind), "{kind} is missing");
    }
    assert!(
        !subscribed.contains("v2-beta.canvas.created"),
        "one name per event"
    );

    let printed = Command::new(env!("CARGO_BIN_EXE_benchling-webhook"))
        .args(["manifest", "--name", "Acme: Quilt", "--out", "-"])
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert_eq!(printed.stdout, std::fs::read(&path).unwrap());
}

#[test]
fn an_empty_name_is_refused() {
    let refused = Command::new(env!("CARGO_BIN_EXE_benchling-webhook"))
        .args(["manifest", "--name", " ", "--out", "-"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--name"));
}
