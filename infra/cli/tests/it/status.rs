//! `benchling-webhook status` against moto: a stack with the environment's queues, an ECS
//! cluster and its ingress service, and (with `--entry`) an entry's records in the bucket,
//! written in the services' own types, and a dead-lettered job about it.

use std::path::Path;
use std::process::{Command, Output};

use bw_contracts::EntryId;
use bw_contracts::bookkeeping::{self, CanvasRecord, PublishedRecord, UpdateFailure};
use bw_queue::{OutgoingMessage, Queue as _};
use bw_testkit::moto::Moto;
use chrono::{TimeZone as _, Utc};
use serde_json::{Value, json};

use crate::profiles::{self, stderr, stdout};

/// The redrive test's queues, plus the recorded options, a cluster and the ingress service.
fn template(prefix: &str) -> String {
    let mut template: Value = serde_json::from_str(&crate::redrive::template(prefix)).unwrap();
    template["Metadata"] = json!({"BenchlingWebhook": {"environments": ["prod"]}});
    let resources = template["Resources"].as_object_mut().unwrap();
    resources.insert("Cluster".into(), json!({"Type": "AWS::ECS::Cluster"}));
    resources.insert(
        "IngressTask".into(),
        json!({"Type": "AWS::ECS::TaskDefinition", "Properties": {
            "Family": format!("{prefix}-ingress"),
            "ContainerDefinitions": [{"Name": "ingress", "Image": "bw:0.1.0", "Memory": 1024}]
        }}),
    );
    resources.insert(
        "ProdIngressService".into(),
        json!({"Type": "AWS::ECS::Service", "Properties": {
            "Cluster": {"Ref": "Cluster"}, "TaskDefinition": {"Ref": "IngressTask"}, "DesiredCount": 2
        }}),
    );
    template["Outputs"]["ClusterName"] = json!({"Value": {"Ref": "Cluster"}});
    template["Outputs"]["ProdWebhookUrl"] =
        json!({"Value": "https://abc.execute-api.us-east-1.amazonaws.com/prod"});
    template.to_string()
}

fn status(home: &Path, args: &[&str]) -> Output {
    profiles::run(home, "status", args)
}

#[tokio::test]
async fn status_shows_each_service_queue_and_the_last_deployment_then_an_entry_history() {
    let moto = Moto::shared();
    let config = moto.sdk_config().await;
    let prefix = Moto::unique_name("status");
    let stack = Moto::unique_name("stack");
    aws_sdk_cloudformation::Client::new(&config)
        .create_stack()
        .stack_name(&stack)
        .template_body(template(&prefix))
        .send()
        .await
        .unwrap();
    let bucket = Moto::unique_name("packages");
    moto.create_bucket(&bucket).await;
    let home = tempfile::tempdir().unwrap();
    let mut profile = profiles::prod("benchling-webhook/prod");
    profile["stack"] = json!({"name": stack, "region": "us-east-1"});
    profile["packages"]["bucket"] = json!(bucket);
    profiles::write(home.path(), "default", &profile);
    std::fs::write(
        home.path()
            .join("benchling-webhook/default/deployments.json"),
        json!({"schemaVersion": 1, "deployments": [{
            "at": "2026-12-01T10:00:00Z", "stack": stack, "region": "us-east-1",
            "environment": "prod", "changeSet": "benchling-webhook-prod-20261201T100000Z",
            "imageTag": "0.1.0", "outcome": "succeeded", "status": "UPDATE_COMPLETE",
            "parameters": {"ProdImageTag": "0.1.0"}
        }]})
        .to_string(),
    )
    .unwrap();

    let sqs = aws_sdk_sqs::Client::new(&config);
    let export = profiles::queue(&sqs, &format!("{prefix}-Export.fifo")).await;
    for n in 0..2 {
        export
            .send(
                OutgoingMessage::new(format!("{{\"n\":{n}}}"))
                    .group("etr_other")
                    .dedup(format!("e{n}")),
            )
            .await
            .unwrap();
    }
    let entry = EntryId::parse("etr_st4tus01").unwrap();
    let canvas_dlq = profiles::queue(&sqs, &format!("{prefix}-Canvas-dlq.fifo")).await;
    canvas_dlq
        .send(
            OutgoingMessage::new(
                json!({"kind": "refresh", "entry_id": entry.as_str()}).to_string(),
            )
            .group(entry.as_str())
            .dedup("c1")
            .attribute(
                "failure_reason",
                "Benchling answered 403 to the canvas update",
            ),
        )
        .await
        .unwrap();

    let shown = status(home.path(), &["--output", "json"]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let report: Value = serde_json::from_str(&stdout(&shown)).unwrap();
    assert_eq!(report["stack"]["status"], "CREATE_COMPLETE", "{report:#}");
    let prod = &report["environments"][0];
    assert_eq!(prod["environment"], "prod");
    assert_eq!(
        prod["webhookUrl"],
        "https://abc.execute-api.us-east-1.amazonaws.com/prod"
    );
    let ingress = &prod["services"][0];
    assert_eq!(
        (&ingress["service"], &ingress["desired"]),
        (&json!("ingress"), &json!(2))
    );
    assert!(
        prod["services"][1]["problem"]
            .as_str()
            .unwrap()
            .contains("ProdExporterService is not in the stack"),
        "{report:#}"
    );
    let depth = |queue: &str| {
        prod["queues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["queue"] == queue)
            .map(|q| (q["waiting"].clone(), q["deadLetters"].clone()))
            .unwrap()
    };
    assert_eq!(depth("Export"), (json!(2), json!(0)));
    assert_eq!(depth("Canvas"), (json!(0), json!(1)));
    assert_eq!(prod["lastDeployment"]["imageTag"], "0.1.0");
    let text = status(home.path(), &[]);
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(
        stdout(&text).contains("status: CREATE_COMPLETE"),
        "{}",
        stdout(&text)
    );

    // The entry's records, as the services write them.
    let modified = Utc.with_ymd_and_hms(2026, 11, 30, 9, 0, 0).unwrap();
    let older = Utc.with_ymd_and_hms(2026, 11, 29, 9, 0, 0).unwrap();
    for version in [older, modified] {
        moto.put_object(
            &bucket,
            &bookkeeping::entry_snapshot_key(&entry, &version),
            b"{}".to_vec(),
        )
        .await;
    }
    let published = PublishedRecord {
        entry_id: entry.clone(),
        modified_at: modified,
        package_name: "benchling/EXP25000007".into(),
        published_at: Utc.with_ymd_and_hms(2026, 11, 30, 9, 1, 0).unwrap(),
    };
    moto.put_object(
        &bucket,
        &bookkeeping::published_key(&entry),
        serde_json::to_vec(&published).unwrap(),
    )
    .await;
    let canvas = CanvasRecord {
        canvas_id: Some("cnvs_st4tus".parse().unwrap()),
        failure: Some(UpdateFailure {
            reason: "Benchling answered 403 to the canvas update".into(),
            at: Utc.with_ymd_and_hms(2026, 11, 30, 9, 2, 0).unwrap(),
        }),
        ..CanvasRecord::default()
    };
    moto.put_object(
        &bucket,
        &bookkeeping::canvas_key(&entry),
        serde_json::to_vec(&canvas).unwrap(),
    )
    .await;

    // Quilt's registry: one revision, whose metadata names the version.
    let package = "benchling/EXP25000007";
    for (pointer, top_hash) in [("1796029265", "0123abcd"), ("latest", "0123abcd")] {
        moto.put_object(
            &bucket,
            &bw_registry::pointer_key(package, pointer),
            top_hash.as_bytes().to_vec(),
        )
        .await;
    }
    moto.put_object(
        &bucket,
        &bw_registry::manifest_key("0123abcd"),
        format!(
            "{}\n",
            json!({"version": "v0", "user_meta": {
                "entry_id": entry.as_str(), "modified_at": "2026-11-30T09:00:00Z"
            }})
        )
        .into_bytes(),
    )
    .await;

    let history = status(
        home.path(),
        &["--entry", entry.as_str(), "--output", "json"],
    );
    assert!(history.status.success(), "{}", stderr(&history));
    let history: Value = serde_json::from_str(&stdout(&history)).unwrap();
    assert_eq!(
        history["awaitingPackaging"],
        json!([{"version": "20261129T090000.000000Z"}, {"version": "20261130T090000.000000Z"}])
    );
    assert_eq!(
        history["revisions"],
        json!([{
            "createdAt": "2026-11-30T09:01:05Z",
            "topHash": "0123abcd",
            "modifiedAt": "2026-11-30T09:00:00Z"
        }])
    );
    assert_eq!(history["published"]["version"], "20261130T090000.000000Z");
    assert_eq!(history["published"]["package"], "benchling/EXP25000007");
    assert_eq!(history["canvas"]["canvasId"], "cnvs_st4tus");
    assert_eq!(
        history["lastFailure"]["reason"],
        "Benchling answered 403 to the canvas update"
    );
    let dead = history["deadLettered"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{history:#}");
    assert_eq!(dead[0]["queue"], "Canvas");
    assert_eq!(dead[0]["job"]["kind"], "refresh");
    let again = canvas_dlq
        .receive(10, std::time::Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        again.len(),
        1,
        "read, not consumed, and visible again at once"
    );

    let bad = status(home.path(), &["--entry", "../etr_1"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("--entry"), "{}", stderr(&bad));
}

#[test]
fn health_names_an_unreachable_endpoint_and_fails() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let output = Command::new(env!("CARGO_BIN_EXE_benchling-webhook"))
        .args(["health", "--url", &url])
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).starts_with(&format!("{url}: unreachable")),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("is unreachable"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test]
async fn logs_prints_one_services_events_since_a_time() {
    let moto = Moto::shared();
    let config = moto.sdk_config().await;
    let group = Moto::unique_name("/benchling-webhook/prod");
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    let now = Utc::now().timestamp_millis();
    for (stream, message, age_ms) in [
        ("ingress/ingress/task1", "webhook accepted", 1_000),
        ("ingress/ingress/task1", "long ago", 3 * 3_600_000),
        ("exporter/exporter/task2", "exported 2 file(s)", 500),
    ] {
        let _ = logs
            .create_log_stream()
            .log_group_name(&group)
            .log_stream_name(stream)
            .send()
            .await;
        logs.put_log_events()
            .log_group_name(&group)
            .log_stream_name(stream)
            .log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(now - age_ms)
                    .message(message)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let stack = Moto::unique_name("stack");
    aws_sdk_cloudformation::Client::new(&config)
        .create_stack()
        .stack_name(&stack)
        .template_body(
            json!({
                "Resources": {"Marker": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {"ProdLogGroupName": {"Value": group}}
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut profile = profiles::prod("benchling-webhook/prod");
    profile["stack"] = json!({"name": stack, "region": "us-east-1"});
    profiles::write(home.path(), "default", &profile);
    let logs = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_benchling-webhook"))
            .arg("logs")
            .args(args)
            .env("XDG_CONFIG_HOME", home.path())
            .envs(moto.env())
            .output()
            .unwrap()
    };

    let ingress = logs(&["--service", "ingress", "--output", "json"]);
    assert!(ingress.status.success(), "{}", stderr(&ingress));
    let said: Value = serde_json::from_str(&stdout(&ingress)).unwrap();
    let messages: Vec<&str> = said["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["webhook accepted"], "{said:#}");

    let all = logs(&["--since", "4h"]);
    assert!(all.status.success(), "{}", stderr(&all));
    let lines: Vec<&str> = std::str::from_utf8(&all.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[0].ends_with("ingress/ingress/task1 long ago"),
        "{lines:?}"
    );
    assert!(
        lines[2].ends_with("exporter/exporter/task2 exported 2 file(s)"),
        "{lines:?}"
    );

    let bad = logs(&["--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2), "a usage error");
}
