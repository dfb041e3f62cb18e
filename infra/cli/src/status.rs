//! `benchling-webhook status`: the stack and each of its environments (endpoint, services'
//! tasks, queue and dead-letter depths, the profile's last deployment); with `--entry`, one
//! entry's history from the services' records and the dead-letter queues. No database: the
//! records beside the packages and the queues are the state.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use bw_contracts::EntryId;
use bw_contracts::bookkeeping::{self, CanvasRecord, PublishedRecord};
use bw_queue::{Queue as _, SqsQueue};
use bw_stack::service::{QueueKind, ServiceKind};
use bw_stack::{EnvironmentName, StackOptions};
use bw_store::{ObjectStore as _, Prefix, S3Store};
use clap::Args;
use serde::Serialize;
use serde_json::{Value, json};

use crate::Output;
use crate::deployments::{Deployment, Deployments};
use crate::profile::{DEFAULT_PROFILE, Profile, ProfileStore};

/// Whose status.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The profile.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    profile: String,
    /// One entry's history instead (`etr_…`).
    #[arg(long)]
    entry: Option<String>,
}

/// Most dead-lettered jobs read per queue when looking for an entry's.
const DEAD_LETTER_SCAN: usize = 1_000;

/// Prints the stack's status, or the entry's history.
///
/// # Errors
/// When the profile or the stack cannot be read, or AWS cannot be asked.
pub async fn run(args: &StatusArgs, output: Output) -> anyhow::Result<()> {
    let store = ProfileStore::from_env()?;
    let profile = store.load(&args.profile)?;
    let config = crate::aws::config(crate::aws::region_of(&profile)).await;
    let report = match &args.entry {
        Some(entry) => {
            let entry: EntryId = entry
                .parse()
                .map_err(|e| anyhow::anyhow!("--entry {entry:?}: {e}"))?;
            entry_history(&config, &profile, &entry).await?
        }
        None => {
            let last = Deployments::of(&store, &args.profile)?.all()?.pop();
            stack_status(&config, &profile, last).await?
        }
    };
    match output {
        Output::Json => println!("{report:#}"),
        Output::Text => print_text(&report, 0),
    }
    Ok(())
}

/// One service's tasks.
#[derive(Serialize)]
struct Tasks {
    service: &'static str,
    running: Option<i32>,
    desired: Option<i32>,
    pending: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

/// One queue's depth and its dead-letter queue's.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Depths {
    queue: &'static str,
    waiting: Option<u64>,
    dead_letters: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
}

async fn stack_status(
    config: &aws_config::SdkConfig,
    profile: &Profile,
    last: Option<Deployment>,
) -> anyhow::Result<Value> {
    let cloudformation = aws_sdk_cloudformation::Client::new(config);
    let name = &profile.stack.name;
    let Some(stack) = crate::stack::describe(&cloudformation, name).await? else {
        return Ok(json!({
            "stack": {"name": name, "status": "NOT_DEPLOYED"},
            "environments": [],
            "lastDeployment": last,
        }));
    };
    let environments = crate::stack::options(&cloudformation, name)
        .await?
        .map(|o: StackOptions| o.environments().to_vec())
        .unwrap_or_else(|| vec![profile.environment.clone()]);
    let resources = physical_ids(&cloudformation, name).await?;
    let cluster = stack
        .outputs
        .get("ClusterName")
        .or_else(|| resources.get("Cluster"))
        .cloned();
    let ecs = aws_sdk_ecs::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut reported = Vec::new();
    for env in &environments {
        let services = services(&ecs, cluster.as_deref(), &resources, env).await;
        let queues = queues(&sqs, &stack.outputs, env).await;
        reported.push(json!({
            "environment": env.as_str(),
            "webhookUrl": stack.outputs.get(&format!("{}WebhookUrl", env.title())),
            "services": services,
            "queues": queues,
            "lastDeployment": (env == &profile.environment).then_some(&last),
        }));
    }
    Ok(json!({
        "stack": {"name": name, "status": stack.status},
        "environments": reported,
    }))
}

/// Logical id → physical id of the stack's resources.
async fn physical_ids(
    cloudformation: &aws_sdk_cloudformation::Client,
    name: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let resources = cloudformation
        .describe_stack_resources()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "reading the resources of {name}: {}",
                crate::aws::message(&e)
            )
        })?;
    Ok(resources
        .stack_resources()
        .iter()
        .filter_map(|r| {
            Some((
                r.logical_resource_id()?.to_owned(),
                r.physical_resource_id()?.to_owned(),
            ))
        })
        .collect())
}

async fn services(
    ecs: &aws_sdk_ecs::Client,
    cluster: Option<&str>,
    resources: &BTreeMap<String, String>,
    env: &EnvironmentName,
) -> Vec<Tasks> {
    let mut found = Vec::new();
    for kind in ServiceKind::ALL {
        let logical = format!("{}{}Service", env.title(), kind.title());
        let tasks = |problem: String| Tasks {
            service: kind.name(),
            running: None,
            desired: None,
            pending: None,
            problem: Some(problem),
        };
        let (Some(cluster), Some(service)) = (cluster, resources.get(&logical)) else {
            found.push(tasks(format!("{logical} is not in the stack")));
            continue;
        };
        let described = ecs
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await;
        found.push(match described {
            Ok(described) => match described.services().first() {
                Some(s) => Tasks {
                    service: kind.name(),
                    running: Some(s.running_count()),
                    desired: Some(s.desired_count()),
                    pending: Some(s.pending_count()),
                    problem: None,
                },
                None => tasks(format!("ECS does not know {service}")),
            },
            Err(e) => tasks(crate::aws::message(&e)),
        });
    }
    found
}

async fn queues(
    sqs: &aws_sdk_sqs::Client,
    outputs: &BTreeMap<String, String>,
    env: &EnvironmentName,
) -> Vec<Depths> {
    let mut found = Vec::new();
    for kind in QueueKind::ALL {
        let depths = match outputs.get(&kind.output_name(env)) {
            None => Err(format!("the stack has no output {}", kind.output_name(env))),
            Some(url) => {
                let queue = SqsQueue::new(sqs.clone(), url.clone());
                match (queue.depth().await, queue.dead_letter().await) {
                    (Ok(waiting), Ok(Some(dead))) => match dead.depth().await {
                        Ok(dead) => Ok((waiting, Some(dead))),
                        Err(e) => Err(e.to_string()),
                    },
                    (Ok(waiting), Ok(None)) => Ok((waiting, None)),
                    (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
                }
            }
        };
        found.push(match depths {
            Ok((waiting, dead_letters)) => Depths {
                queue: kind.title(),
                waiting: Some(waiting),
                dead_letters,
                problem: None,
            },
            Err(problem) => Depths {
                queue: kind.title(),
                waiting: None,
                dead_letters: None,
                problem: Some(problem),
            },
        });
    }
    found
}

/// The entry's versions exported, its last announcement, its canvas and the jobs about it in
/// the dead-letter queues.
async fn entry_history(
    config: &aws_config::SdkConfig,
    profile: &Profile,
    entry: &EntryId,
) -> anyhow::Result<Value> {
    let store = S3Store::new(bw_store::s3_client(config), profile.packages.bucket.clone());
    let folder = bookkeeping::entry_records(entry);
    let listed = store
        .list(&Prefix::new(folder.trim_end_matches('/'))?)
        .await
        .with_context(|| format!("listing s3://{}/{folder}", profile.packages.bucket))?;
    // A version's claim check lives from its export until the packager announces it.
    let awaiting: Vec<Value> = listed
        .iter()
        .filter_map(|object| {
            let rest = object.key.as_str().strip_prefix(&folder)?;
            let version = rest.strip_suffix("/entry.json")?;
            Some(json!({"version": version}))
        })
        .collect();
    let published: Option<PublishedRecord> = bw_store::get_record(
        &store,
        &bw_store::Key::new(bookkeeping::published_key(entry))?,
    )
    .await?;
    let revisions = match &published {
        Some(published) => revisions(&store, &published.package_name, entry).await?,
        None => Vec::new(),
    };
    let canvas: Option<CanvasRecord> =
        bw_store::get_record(&store, &bw_store::Key::new(bookkeeping::canvas_key(entry))?).await?;

    let cloudformation = aws_sdk_cloudformation::Client::new(config);
    let outputs = crate::stack::outputs(&cloudformation, &profile.stack.name).await?;
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut dead_lettered = Vec::new();
    for kind in QueueKind::ALL {
        let Some(url) = outputs.get(&kind.output_name(&profile.environment)) else {
            continue;
        };
        let Some(dead) = SqsQueue::new(sqs.clone(), url.clone())
            .dead_letter()
            .await?
        else {
            continue;
        };
        for (reason, body) in about(&dead, entry).await? {
            dead_lettered.push(json!({"queue": kind.title(), "reason": reason, "job": body}));
        }
    }
    let last_failure = canvas
        .as_ref()
        .and_then(|c| c.failure.as_ref())
        .map(|f| json!({"reason": f.reason, "at": f.at}));
    Ok(json!({
        "entry": entry.as_str(),
        "awaitingPackaging": awaiting,
        "revisions": revisions,
        "published": published.map(|p| json!({
            "version": bookkeeping::version_tag(&p.modified_at),
            "package": p.package_name,
            "publishedAt": p.published_at,
        })),
        "canvas": canvas.as_ref().map(|c| json!({
            "canvasId": c.canvas_id.as_ref().map(|id| id.as_str().to_owned()),
            "updateRequestedAt": c.update_requested_at,
            "verified": c.verified,
        })),
        "lastFailure": last_failure,
        "deadLettered": dead_lettered,
    }))
}

/// Most revisions of a package read.
const REVISIONS_SHOWN: usize = 20;

/// Quilt's newest revisions of `package` (at most [`REVISIONS_SHOWN`]), oldest first, each with
/// the entry version its metadata names.
async fn revisions(store: &S3Store, package: &str, entry: &EntryId) -> anyhow::Result<Vec<Value>> {
    let pointers = bw_registry::revisions(store, package)
        .await
        .with_context(|| format!("reading Quilt's revisions of {package}"))?;
    let mut shown = Vec::new();
    for (time, top_hash) in pointers.into_iter().rev().take(REVISIONS_SHOWN).rev() {
        let meta = match bw_registry::revision(store, top_hash.clone()).await {
            Ok(revision) => revision.user_meta,
            Err(e) => json!({"error": e.to_string()}),
        };
        let version = (meta["entry_id"].as_str() == Some(entry.as_str()))
            .then(|| meta["modified_at"].clone());
        shown.push(json!({
            "createdAt": chrono::DateTime::from_timestamp(time, 0),
            "topHash": top_hash,
            "modifiedAt": version,
        }));
    }
    Ok(shown)
}

/// The dead-lettered jobs about `entry`, with their recorded reasons. The queue is read
/// without consuming: every message received is made visible again at once.
async fn about(queue: &SqsQueue, entry: &EntryId) -> anyhow::Result<Vec<(Option<String>, Value)>> {
    let mut matched = Vec::new();
    let mut receipts = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while seen.len() < DEAD_LETTER_SCAN {
        let batch = queue.receive(10, Duration::from_secs(1)).await?;
        if batch.is_empty() {
            break;
        }
        for message in batch {
            receipts.push(message.receipt.clone());
            if !seen.insert(message.message_id.clone()) {
                continue;
            }
            let mine = message.group_id.as_deref() == Some(entry.as_str())
                || message.body.contains(entry.as_str());
            if mine {
                let body = serde_json::from_str(&message.body)
                    .unwrap_or_else(|_| Value::String(message.body.clone()));
                matched.push((message.attributes.get("failure_reason").cloned(), body));
            }
        }
    }
    for receipt in &receipts {
        // A job left hidden reappears after the queue's visibility timeout; say so and go on.
        if let Err(e) = queue.change_visibility(receipt, Duration::ZERO).await {
            eprintln!("a dead-lettered job stays hidden until its visibility timeout: {e}");
        }
    }
    Ok(matched)
}

/// The report as indented `key: value` lines.
fn print_text(value: &Value, depth: usize) {
    let indent = "  ".repeat(depth);
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match value {
                    Value::Object(_) | Value::Array(_) => {
                        println!("{indent}{key}:");
                        print_text(value, depth + 1);
                    }
                    scalar => println!("{indent}{key}: {}", scalar_text(scalar)),
                }
            }
        }
        Value::Array(items) if items.is_empty() => println!("{indent}(none)"),
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(map) if map.values().all(|v| !v.is_object() && !v.is_array()) => {
                        let fields: Vec<String> = map
                            .iter()
                            .filter(|(_, v)| !v.is_null())
                            .map(|(k, v)| format!("{k}={}", scalar_text(v)))
                            .collect();
                        println!("{indent}- {}", fields.join(" "));
                    }
                    _ => {
                        println!("{indent}-");
                        print_text(item, depth + 1);
                    }
                }
            }
        }
        scalar => println!("{indent}{}", scalar_text(scalar)),
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}
