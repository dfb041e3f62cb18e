//! `benchling-webhook backfill` against the Benchling stand-in (entries listed page by page)
//! and moto (the secret, the bucket's records, the stack's export queue): exactly the versions
//! not yet packaged are queued, once each, through an interruption and a resumed run.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bw_contracts::bookkeeping::{self, PublishedRecord};
use bw_contracts::{EntryId, ExportJob, JobEnvelope};
use bw_queue::{Queue as _, SqsQueue};
use bw_standin::benchling::{BenchlingStandIn, secret_json};
use bw_testkit::moto::Moto;
use chrono::{DateTime, Duration as Age, TimeZone as _, Utc};
use serde_json::{Value, json};

use crate::profiles::{self, stderr, stdout};

const CLIENT_ID: &str = "backfill-client";
const CLIENT_SECRET: &str = "backfill-secret-DO-NOT-PRINT";

fn entry(n: usize, project: &str, modified: DateTime<Utc>) -> Value {
    json!({
        "id": format!("etr_bf{n:04}"),
        "displayId": format!("EXP{n:04}"),
        "name": format!("Entry {n}"),
        "webURL": format!("https://standin.benchling.com/entries/{n}"),
        "createdAt": "2024-01-01T00:00:00Z",
        "modifiedAt": modified.to_rfc3339(),
        "projectId": project,
        "folderId": "lib_1",
    })
}

fn backfill(home: &Path, benchling: &BenchlingStandIn, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_benchling-webhook"));
    command
        .arg("backfill")
        .args(args)
        .env("XDG_CONFIG_HOME", home)
        .env("BENCHLING_API_BASE_URL", benchling.url())
        .envs(Moto::shared().env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn finish(command: &mut Command) -> Output {
    command.output().unwrap()
}

#[tokio::test]
async fn backfill_queues_each_missing_version_once_and_resumes_after_an_interruption() {
    let moto = Moto::shared();
    let config = moto.sdk_config().await;
    let benchling = BenchlingStandIn::start(CLIENT_ID, CLIENT_SECRET);
    let base = Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap();
    let bucket = Moto::unique_name("packages");
    moto.create_bucket(&bucket).await;
    let mut expected = Vec::new();
    for n in 0..100 {
        let modified = base + Age::minutes(n as i64);
        benchling.add_entry(entry(n, "src_backfill", modified));
        let id = EntryId::parse(format!("etr_bf{n:04}")).unwrap();
        // Every tenth is published at this version; every tenth but one at an older one.
        let published_at = match n % 10 {
            0 => Some(modified),
            1 => Some(modified - Age::days(1)),
            _ => None,
        };
        if let Some(version) = published_at {
            let record = PublishedRecord {
                entry_id: id.clone(),
                modified_at: version,
                package_name: format!("benchling/EXP{n:04}"),
                published_at: version,
            };
            moto.put_object(
                &bucket,
                &bookkeeping::published_key(&id),
                serde_json::to_vec(&record).unwrap(),
            )
            .await;
        }
        if n % 10 != 0 {
            expected.push(id.to_string());
        }
    }
    // Another project's entry is never listed.
    benchling.add_entry(entry(999, "src_other", base));

    let secret = Moto::unique_name("benchling-webhook/backfill");
    aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name(&secret)
        .secret_string(secret_json(CLIENT_ID, CLIENT_SECRET, &bucket))
        .send()
        .await
        .unwrap();
    let queue_url = moto
        .create_queue(&Moto::unique_name("export"), true, 30, None)
        .await;
    let stack = Moto::unique_name("stack");
    aws_sdk_cloudformation::Client::new(&config)
        .create_stack()
        .stack_name(&stack)
        .template_body(
            json!({
                "Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"ProdExportQueueUrl": {"Value": queue_url}}
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut profile = profiles::prod(&secret);
    profile["stack"] = json!({"name": stack, "region": "us-east-1"});
    profile["packages"]["bucket"] = json!(bucket);
    profiles::write(home.path(), "default", &profile);
    let scope = ["--project", "src_backfill"];

    let counted = finish(&mut backfill(
        home.path(),
        &benchling,
        &[&scope[..], &["--dry-run", "--output", "json"]].concat(),
    ));
    assert!(counted.status.success(), "{}", stderr(&counted));
    let counts: Value = serde_json::from_str(&stdout(&counted)).unwrap();
    assert_eq!(
        (&counts["listed"], &counts["queued"], &counts["skipped"]),
        (&json!(100), &json!(90), &json!(10)),
        "{counts:#}"
    );
    let checkpoint = home.path().join("benchling-webhook/default/backfill.json");
    assert!(!checkpoint.exists(), "a dry run saves no position");

    // Interrupted once the first page is saved, while the second is being queued.
    let mut first = backfill(
        home.path(),
        &benchling,
        &[&scope[..], &["--rate", "40"]].concat(),
    )
    .spawn()
    .unwrap();
    let started = Instant::now();
    loop {
        let saved: Option<Value> = std::fs::read(&checkpoint)
            .ok()
            .and_then(|text| serde_json::from_slice(&text).ok());
        if saved.is_some_and(|s| s["pages"] == 1) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first page was never saved"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    first.kill().unwrap();
    first.wait().unwrap();

    let resumed = finish(&mut backfill(
        home.path(),
        &benchling,
        &[&scope[..], &["--rate", "40"]].concat(),
    ));
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains("resuming after page 1"),
        "{}",
        stderr(&resumed)
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert_eq!(saved["finished"], true);
    for output in [&counted, &resumed] {
        assert!(!stdout(output).contains(CLIENT_SECRET) && !stderr(output).contains(CLIENT_SECRET));
    }

    // The queue holds one export job per missing version, and nothing else.
    let queue = SqsQueue::new(moto.sqs_client().await, queue_url);
    let mut queued: BTreeMap<String, usize> = BTreeMap::new();
    loop {
        let batch = queue.receive(10, Duration::from_secs(1)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for message in batch {
            let job: JobEnvelope<ExportJob> = JobEnvelope::from_body(&message.body).unwrap();
            assert_eq!(message.group_id.as_deref(), Some(job.job.entry_id.as_str()));
            *queued.entry(job.job.entry_id.to_string()).or_default() += 1;
            queue.delete(&message.receipt).await.unwrap();
        }
    }
    let once: Vec<&String> = queued
        .iter()
        .filter(|(_, n)| **n == 1)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(queued.len(), expected.len(), "{queued:?}");
    assert_eq!(once.len(), expected.len(), "each version once: {queued:?}");
    assert!(expected.iter().all(|id| queued.contains_key(id)));

    let listings = benchling.requests_to("GET", "/api/v2/entries?");
    assert!(
        listings
            .iter()
            .all(|r| r.path.contains("projectId=src_backfill")),
        "{listings:?}"
    );
}
