//! The stand-in's revisions read back by quilt3 itself (on moto S3), and its announcements on
//! in-process queues.

use std::process::Command;
use std::time::Duration;

use bw_contracts::{PackagerMessage, QueueName};
use bw_queue::{OutgoingMessage, QueueOpener};
use bw_quilt_standin::{QuiltStandIn, push};
use bw_store::Buckets;
use bw_testkit::moto::Moto;
use serde_json::{Value, json};

/// Reads a package with quilt3 the way a Quilt user would, and prints what it saw as JSON.
/// `get_bytes` checks each file against its manifest hash.
const BROWSE: &str = r#"
import json, sys
import quilt3
name, registry = sys.argv[1], sys.argv[2]
pkg = quilt3.Package.browse(name, registry=registry)
entries = []
for logical_key, entry in pkg.walk():
    data = entry.get_bytes()
    entries.append({"logical_key": logical_key, "size": entry.size, "hash": entry.hash, "read": len(data)})
print(json.dumps({"top_hash": pkg.top_hash, "message": pkg._meta.get("message"), "meta": pkg.meta, "entries": entries}))
"#;

fn message(bucket: &str, name: &str) -> PackagerMessage {
    PackagerMessage {
        source_prefix: format!("s3://{bucket}/{name}/"),
        registry: bucket.to_owned(),
        package_name: name.to_owned(),
        metadata_uri: "entry.json".to_owned(),
        commit_message: "Benchling v2.entry.updated.fields at 2026-12-04T00:00:00Z".to_owned(),
        workflow: None,
    }
}

#[tokio::test]
async fn quilt3_browses_and_verifies_the_revision() {
    let moto = Moto::shared();
    let bucket = Moto::unique_name("quilt-registry");
    moto.create_bucket(&bucket).await;
    let metadata = json!({"entry_id": "etr_1", "name": "Ünïcode ✓ <b>", "ratio": 0.00001, "n": 3});
    let big: Vec<u8> = (0..(8 << 20) + 5).map(|i: u32| (i % 253) as u8).collect();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("entry.json", serde_json::to_vec(&metadata).unwrap()),
        ("README.md", b"# EXP1\n".to_vec()),
        ("data.csv", b"a,b\n1,2\n".to_vec()),
        ("data/a b+c.csv", b"x\n".to_vec()),
        ("données/é.txt", "é".as_bytes().to_vec()),
        ("empty.txt", Vec::new()),
        ("big.bin", big),
    ];
    for (name, bytes) in &files {
        moto.put_object(&bucket, &format!("benchling/EXP1/{name}"), bytes.clone())
            .await;
    }
    // Neither belongs to the package.
    moto.put_object(&bucket, "benchling/EXP10/other.csv", b"no".to_vec())
        .await;
    moto.put_object(
        &bucket,
        ".benchling-webhook/entries/etr_1/published.json",
        b"{}".to_vec(),
    )
    .await;

    let buckets = Buckets::S3(moto.s3_client().await);
    let revision = push(&buckets, &message(&bucket, "benchling/EXP1"))
        .await
        .expect("the revision is written");
    assert_eq!(revision.files, files.len());

    let python = bw_testkit::moto::python();
    let cache = tempfile::tempdir().unwrap();
    let output = Command::new(&python)
        .args(["-c", BROWSE, "benchling/EXP1", &format!("s3://{bucket}")])
        .envs(moto.env())
        .env("QUILT_DISABLE_USAGE_METRICS", "true")
        .env("XDG_CACHE_HOME", cache.path())
        .env("XDG_DATA_HOME", cache.path())
        .env("XDG_CONFIG_HOME", cache.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        output.status.success(),
        "quilt3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).expect("the script prints JSON");
    assert_eq!(
        seen["top_hash"],
        revision.top_hash.as_str(),
        "quilt3 recomputes our top hash"
    );
    assert_eq!(
        seen["message"],
        "Benchling v2.entry.updated.fields at 2026-12-04T00:00:00Z"
    );
    assert_eq!(seen["meta"], metadata);
    let entries = seen["entries"].as_array().unwrap();
    let keys: Vec<&str> = entries
        .iter()
        .map(|e| e["logical_key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "README.md",
            "big.bin",
            "data/a b+c.csv",
            "data.csv",
            "donn\u{e9}es/\u{e9}.txt",
            "empty.txt",
            "entry.json"
        ],
        "quilt3 walks directories first within a level"
    );
    for entry in entries {
        let name = entry["logical_key"].as_str().unwrap();
        let (_, bytes) = files.iter().find(|(n, _)| *n == name).unwrap();
        assert_eq!(entry["size"], bytes.len(), "{name}");
        assert_eq!(entry["read"], bytes.len(), "{name}");
        assert_eq!(entry["hash"]["type"], "sha2-256-chunked", "{name}");
    }

    // Pushing the same files again makes the same top hash, as Quilt does.
    let again = push(&buckets, &message(&bucket, "benchling/EXP1"))
        .await
        .unwrap();
    assert_eq!(again.top_hash, revision.top_hash);
}

#[tokio::test]
async fn a_message_becomes_a_revision_and_its_package_revision_event() {
    let root = tempfile::tempdir().unwrap();
    let buckets = Buckets::Directory(root.path().to_owned());
    let store = buckets.open("local-bucket").unwrap();
    store
        .put_bytes(
            &bw_store::Key::new("benchling/EXP2/entry.json").unwrap(),
            br#"{"entry_id":"etr_2"}"#.to_vec().into(),
            bw_store::PutOptions::default(),
        )
        .await
        .unwrap();
    let queues = QueueOpener::embedded();
    let (packager, events) = (
        queues.open(QueueName::QUILT_PACKAGER),
        queues.open(QueueName::PACKAGE_EVENTS),
    );
    for name in ["benchling/EXP2", "benchling/MISSING"] {
        let body = serde_json::to_string(&message("local-bucket", name)).unwrap();
        packager.send(OutgoingMessage::new(body)).await.unwrap();
    }
    packager
        .send(OutgoingMessage::new("not json"))
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(QuiltStandIn::new(buckets, events.clone()).run(packager, stopped));

    let received = events.receive(10, Duration::from_secs(10)).await.unwrap();
    assert_eq!(received.len(), 1, "one event: the other messages fail");
    let event: Value = serde_json::from_str(&received[0].body).unwrap();
    assert_eq!(event["source"], "com.quiltdata");
    assert_eq!(event["detail-type"], "package-revision");
    assert_eq!(event["detail"]["bucket"], "local-bucket");
    assert_eq!(event["detail"]["handle"], "benchling/EXP2");
    let top_hash = event["detail"]["topHash"].as_str().unwrap();
    let latest = std::fs::read_to_string(
        root.path()
            .join("local-bucket/.quilt/named_packages/benchling/EXP2/latest"),
    )
    .unwrap();
    assert_eq!(latest, top_hash);
    let manifest = std::fs::read_to_string(
        root.path()
            .join(format!("local-bucket/.quilt/packages/{top_hash}")),
    )
    .unwrap();
    let header: Value = serde_json::from_str(manifest.lines().next().unwrap()).unwrap();
    assert_eq!(header["user_meta"]["entry_id"], "etr_2");
    stop.send(true).unwrap();
    running.await.unwrap().unwrap();
}
