//! `benchling-webhook redrive` against SQS and CloudFormation on moto: a reduced stack with the
//! environment's four queues, their dead-letter queues and the outputs the CLI reads.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use bw_queue::{OutgoingMessage, Queue as _};
use bw_testkit::moto::Moto;
use serde_json::{Map, Value, json};

use crate::profiles::{self, stderr};

/// Each queue of `prod` with a dead-letter queue, and the stack's queue URL outputs.
pub fn template(prefix: &str) -> String {
    let mut resources = Map::new();
    let mut outputs = Map::new();
    for (title, fifo) in [
        ("Export", true),
        ("Render", true),
        ("Canvas", true),
        ("PackageEvent", false),
    ] {
        let suffix = if fifo { ".fifo" } else { "" };
        let mut dead = json!({"QueueName": format!("{prefix}-{title}-dlq{suffix}")});
        let mut queue = json!({
            "QueueName": format!("{prefix}-{title}{suffix}"),
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": [format!("Prod{title}DeadLetterQueue"), "Arn"]},
                "maxReceiveCount": 3
            }
        });
        if fifo {
            dead["FifoQueue"] = json!(true);
            queue["FifoQueue"] = json!(true);
        }
        resources.insert(
            format!("Prod{title}DeadLetterQueue"),
            json!({"Type": "AWS::SQS::Queue", "Properties": dead}),
        );
        resources.insert(
            format!("Prod{title}Queue"),
            json!({"Type": "AWS::SQS::Queue", "Properties": queue}),
        );
        outputs.insert(
            format!("Prod{title}QueueUrl"),
            json!({"Value": {"Ref": format!("Prod{title}Queue")}}),
        );
    }
    json!({"Resources": resources, "Outputs": outputs}).to_string()
}

fn write_profile(home: &Path, stack: &str) {
    let mut profile = profiles::prod("benchling-webhook/prod");
    profile["stack"] = json!({"name": stack, "region": "us-east-1"});
    profiles::write(home, "default", &profile);
}

fn redrive(home: &Path, args: &[&str]) -> Output {
    profiles::run(home, "redrive", args)
}

#[tokio::test]
async fn dead_lettered_jobs_go_back_to_their_queues_once_and_without_their_failure() {
    let moto = Moto::shared();
    let config = moto.sdk_config().await;
    let prefix = Moto::unique_name("redrive");
    let stack = Moto::unique_name("stack");
    aws_sdk_cloudformation::Client::new(&config)
        .create_stack()
        .stack_name(&stack)
        .template_body(template(&prefix))
        .send()
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    write_profile(home.path(), &stack);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let export_dlq = profiles::queue(&sqs, &format!("{prefix}-Export-dlq.fifo")).await;
    let render_dlq = profiles::queue(&sqs, &format!("{prefix}-Render-dlq.fifo")).await;
    for n in 0..3 {
        let job = OutgoingMessage::new(format!("export {n}"))
            .group("etr_1")
            .dedup(format!("d{n}"))
            .attribute("failure_reason", "Benchling answered 500")
            .attribute(
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            );
        export_dlq.send(job).await.unwrap();
    }
    for n in 0..2 {
        let job = OutgoingMessage::new(format!("render {n}"))
            .group("etr_2")
            .dedup(format!("r{n}"));
        render_dlq.send(job).await.unwrap();
    }

    let unasked = redrive(home.path(), &[]);
    assert_eq!(unasked.status.code(), Some(1));
    assert!(stderr(&unasked).contains("--yes"), "{}", stderr(&unasked));
    assert_eq!(export_dlq.depth().await.unwrap(), 3, "nothing moved");

    let moved = redrive(home.path(), &["--yes", "--output", "json"]);
    assert!(moved.status.success(), "{}", stderr(&moved));
    let report: Value = serde_json::from_slice(&moved.stdout).unwrap();
    assert_eq!(
        report["queues"],
        json!([
            {"queue": "Export", "waiting": 3, "moved": 3},
            {"queue": "Render", "waiting": 2, "moved": 2},
            {"queue": "Canvas", "waiting": 0, "moved": 0},
            {"queue": "PackageEvent", "waiting": 0, "moved": 0}
        ])
    );
    assert_eq!(export_dlq.depth().await.unwrap(), 0);
    assert_eq!(render_dlq.depth().await.unwrap(), 0);

    let export = profiles::queue(&sqs, &format!("{prefix}-Export.fifo")).await;
    let mut bodies = Vec::new();
    for _ in 0..3 {
        for message in export.receive(10, Duration::from_secs(1)).await.unwrap() {
            assert_eq!(message.group_id.as_deref(), Some("etr_1"));
            assert!(!message.attributes.contains_key("failure_reason"));
            assert!(message.attributes.contains_key("traceparent"));
            bodies.push(message.body);
            export.delete(&message.receipt).await.unwrap();
        }
    }
    bodies.sort();
    assert_eq!(bodies, ["export 0", "export 1", "export 2"]);

    let again = redrive(home.path(), &["--queue", "export", "--yes"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        "Export: 0 of 0 moved back\n"
    );
}

#[tokio::test]
async fn a_stack_without_the_environment_is_named() {
    let home = tempfile::tempdir().unwrap();
    write_profile(home.path(), "no-such-stack");
    let refused = redrive(home.path(), &["--yes"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("no-such-stack"),
        "{}",
        stderr(&refused)
    );
}
