//! Change sets: creating one from a template and parameters, showing it, executing it and
//! following the stack's events to the end, for `deploy` and `destroy`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ProvideErrorMetadata as _;
use aws_sdk_cloudformation::types::{
    Capability, Change, ChangeSetStatus, ChangeSetType, Parameter, StackEvent,
};
use bw_store::{Key, ObjectStore as _, PutOptions, S3Store};
use chrono::Utc;
use serde_json::{Value, json};

use crate::deployments::{Deployment, Outcome};
use crate::profile::Profile;
use crate::stack::Deployed;

/// Seconds between polls of a change set or the stack's events.
const POLL: Duration = Duration::from_secs(2);
/// The reasons CloudFormation gives for a change set that changes nothing.
const NO_CHANGES: [&str; 2] = ["didn't contain changes", "No updates are to be performed"];

/// A change set ready to execute.
pub struct ChangeSet {
    id: String,
    name: String,
    creates: bool,
    /// The resources it changes.
    pub changes: Vec<Change>,
}

/// The AWS side of one deployment.
pub struct Deployer<'a> {
    /// CloudFormation in the stack's region.
    pub cloudformation: &'a Client,
    /// The AWS configuration (S3 for the template, ECS for a failed service).
    pub config: &'a aws_config::SdkConfig,
    /// The profile deployed.
    pub profile: &'a Profile,
    /// Its name.
    pub profile_name: &'a str,
    /// The stack's region.
    pub region: &'a str,
}

impl Deployer<'_> {
    fn stack(&self) -> &str {
        &self.profile.stack.name
    }

    /// Uploads the template, creates the change set and waits for it; `None` when it changes
    /// nothing (and is deleted).
    pub async fn change_set(
        &self,
        template: &Value,
        parameters: Vec<Parameter>,
        update: bool,
    ) -> anyhow::Result<Option<ChangeSet>> {
        let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
        let env = self.profile.environment.as_str();
        let url = self
            .upload(template, &format!("{env}-{stamp}.json"))
            .await?;
        let name = format!("benchling-webhook-{env}-{stamp}");
        let kind = if update {
            ChangeSetType::Update
        } else {
            ChangeSetType::Create
        };
        let created = self
            .cloudformation
            .create_change_set()
            .stack_name(self.stack())
            .change_set_name(&name)
            .change_set_type(kind)
            .template_url(url)
            .set_parameters(Some(parameters))
            .capabilities(Capability::CapabilityIam)
            .description(format!(
                "benchling-webhook deploy --profile {} ({env})",
                self.profile_name
            ))
            .send()
            .await;
        let id = match created {
            Ok(created) => created.id().unwrap_or(&name).to_owned(),
            Err(e) if no_changes(e.message()) => return Ok(None),
            Err(e) => anyhow::bail!(
                "creating the change set on {}: {}",
                self.stack(),
                crate::aws::message(&e)
            ),
        };
        let spinner = crate::ask::spinner(format!("preparing change set {name}"));
        let mut changes = Vec::new();
        let mut token = None;
        loop {
            let described = self
                .cloudformation
                .describe_change_set()
                .change_set_name(&id)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!("reading the change set {name}: {}", crate::aws::message(&e))
                })?;
            match described.status() {
                Some(ChangeSetStatus::CreateComplete) => {
                    changes.extend(described.changes().iter().cloned());
                    match described.next_token() {
                        Some(next) => token = Some(next.to_owned()),
                        None => break,
                    }
                }
                Some(ChangeSetStatus::Failed) => {
                    spinner.finish_and_clear();
                    let reason = described.status_reason().unwrap_or("no reason given");
                    let set = ChangeSet {
                        id: id.clone(),
                        name: name.clone(),
                        creates: !update,
                        changes: Vec::new(),
                    };
                    self.discard(&set).await;
                    if no_changes(Some(reason)) {
                        return Ok(None);
                    }
                    anyhow::bail!("the change set {name} failed: {reason}");
                }
                _ => tokio::time::sleep(POLL).await,
            }
        }
        spinner.finish_and_clear();
        Ok(Some(ChangeSet {
            id,
            name,
            creates: !update,
            changes,
        }))
    }

    /// Stores the template beside the packages' bookkeeping and returns its URL: templates
    /// over 51,200 bytes (two environments) must be given to CloudFormation by URL.
    async fn upload(&self, template: &Value, file: &str) -> anyhow::Result<String> {
        let bucket = &self.profile.packages.bucket;
        let key = format!(
            "{}/cloudformation/{}/{file}",
            bw_contracts::bookkeeping::BOOKKEEPING_ROOT,
            self.stack()
        );
        let store = S3Store::new(bw_store::s3_client(self.config), bucket.clone());
        let body = serde_json::to_vec(template)?;
        store
            .put_bytes(
                &Key::new(key.clone())?,
                body.into(),
                PutOptions::content_type("application/json"),
            )
            .await
            .with_context(|| format!("uploading the template to s3://{bucket}/{key}"))?;
        let domain = if self.region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        Ok(format!(
            "https://{bucket}.s3.{}.{domain}/{key}",
            self.region
        ))
    }

    /// Deletes a change set not executed, and the empty stack a creating one made. Best
    /// effort: what is left is harmless and the next deploy replaces it.
    pub async fn discard(&self, change_set: &ChangeSet) {
        let _ = self
            .cloudformation
            .delete_change_set()
            .change_set_name(&change_set.id)
            .send()
            .await;
        if change_set.creates {
            let _ = self
                .cloudformation
                .delete_stack()
                .stack_name(self.stack())
                .send()
                .await;
        }
    }

    /// Executes the change set and follows the stack until it settles.
    pub async fn execute(
        &self,
        change_set: &ChangeSet,
        tag: &str,
        values: BTreeMap<String, String>,
    ) -> anyhow::Result<Deployment> {
        let started = Utc::now();
        let executed = self
            .cloudformation
            .execute_change_set()
            .change_set_name(&change_set.id)
            .send()
            .await;
        let (status, reason) = match executed {
            Ok(_) => {
                self.follow(self.stack(), started, change_set.changes.len())
                    .await?
            }
            Err(e) => ("EXECUTE_FAILED".to_owned(), Some(crate::aws::message(&e))),
        };
        let outcome = if succeeded(&status) {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        };
        let outputs = crate::stack::describe(self.cloudformation, self.stack())
            .await?
            .map(|s| s.outputs)
            .unwrap_or_default();
        let webhook_url = outputs
            .get(&format!("{}WebhookUrl", self.profile.environment.title()))
            .cloned();
        Ok(Deployment {
            at: started,
            stack: self.stack().to_owned(),
            region: self.region.to_owned(),
            environment: self.profile.environment.as_str().to_owned(),
            change_set: change_set.name.clone(),
            image_tag: tag.to_owned(),
            outcome,
            status,
            reason,
            webhook_url,
            parameters: values,
        })
    }

    /// Deletes the stack and follows it until it is gone.
    pub async fn delete(&self) -> anyhow::Result<Deployment> {
        let stack = crate::stack::describe(self.cloudformation, self.stack())
            .await?
            .with_context(|| format!("there is no stack {}", self.stack()))?;
        let started = Utc::now();
        self.cloudformation
            .delete_stack()
            .stack_name(&stack.id)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "deleting the stack {}: {}",
                    self.stack(),
                    crate::aws::message(&e)
                )
            })?;
        // Followed by id: a deleted stack is no longer found by name.
        let (status, reason) = self.follow(&stack.id, started, 0).await?;
        Ok(Deployment {
            at: started,
            stack: self.stack().to_owned(),
            region: self.region.to_owned(),
            environment: self.profile.environment.as_str().to_owned(),
            change_set: "delete-stack".to_owned(),
            image_tag: "-".to_owned(),
            outcome: if status == "DELETE_COMPLETE" {
                Outcome::Succeeded
            } else {
                Outcome::Failed
            },
            status,
            reason,
            webhook_url: None,
            parameters: BTreeMap::new(),
        })
    }

    /// Polls the stack's events, showing progress, until its status is final; returns that
    /// status and, on failure, the first failed resource's reason.
    async fn follow(
        &self,
        target: &str,
        started: chrono::DateTime<Utc>,
        total: usize,
    ) -> anyhow::Result<(String, Option<String>)> {
        let spinner = crate::ask::spinner(format!("deploying {}", self.stack()));
        let mut seen = std::collections::HashSet::new();
        let mut events: Vec<StackEvent> = Vec::new();
        let mut done = std::collections::HashSet::new();
        loop {
            let stack = crate::stack::describe(self.cloudformation, target)
                .await?
                .with_context(|| format!("the stack {} disappeared", self.stack()))?;
            for event in self.events_since(target, started).await? {
                let id = event.event_id().unwrap_or_default().to_owned();
                if !seen.insert(id) {
                    continue;
                }
                let status = event
                    .resource_status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default();
                let resource = event.logical_resource_id().unwrap_or_default().to_owned();
                if status.ends_with("_COMPLETE") && resource != self.stack() {
                    done.insert(resource.clone());
                }
                if status.ends_with("_FAILED") {
                    spinner.println(format!(
                        "{resource} {status}: {}",
                        event.resource_status_reason().unwrap_or_default()
                    ));
                }
                spinner.set_message(format!(
                    "{} · {}/{total} resources · {resource} {status}",
                    self.stack(),
                    done.len().min(total)
                ));
                events.push(event);
            }
            if !stack.status.ends_with("_IN_PROGRESS") {
                spinner.finish_and_clear();
                let reason =
                    if matches!(stack.status.as_str(), "CREATE_COMPLETE" | "UPDATE_COMPLETE") {
                        None
                    } else {
                        Some(self.failure(&events, &stack).await)
                    };
                return Ok((stack.status, reason));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The stack's events since `started`, oldest first.
    async fn events_since(
        &self,
        target: &str,
        started: chrono::DateTime<Utc>,
    ) -> anyhow::Result<Vec<StackEvent>> {
        let mut events = Vec::new();
        let mut token = None;
        'pages: loop {
            let page = self
                .cloudformation
                .describe_stack_events()
                .stack_name(target)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "reading the events of {}: {}",
                        self.stack(),
                        crate::aws::message(&e)
                    )
                })?;
            // Newest first: stop at the first event from before the deployment.
            for event in page.stack_events() {
                let at = event
                    .timestamp()
                    .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
                if at.is_some_and(|at| at < started - chrono::Duration::seconds(5)) {
                    break 'pages;
                }
                events.push(event.clone());
            }
            match page.next_token() {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
        events.reverse();
        Ok(events)
    }

    /// The first failed resource's reason; for a service, why its last task stopped.
    async fn failure(&self, events: &[StackEvent], stack: &Deployed) -> String {
        let first = events.iter().find(|e| {
            e.resource_status()
                .is_some_and(|s| s.as_str().ends_with("_FAILED"))
                && !e
                    .resource_status_reason()
                    .is_some_and(|r| r.contains("cancelled"))
                && e.logical_resource_id() != Some(self.stack())
        });
        let Some(first) = first else {
            return format!("the stack is {}", stack.status);
        };
        let resource = first.logical_resource_id().unwrap_or_default();
        let mut reason = format!(
            "{resource} ({}): {}",
            first.resource_type().unwrap_or_default(),
            first.resource_status_reason().unwrap_or("no reason given")
        );
        if first.resource_type() == Some("AWS::ECS::Service")
            && let (Some(cluster), Some(service)) = (
                stack.outputs.get("ClusterName"),
                first.physical_resource_id(),
            )
            && let Some(stopped) = stopped_task(self.config, cluster, service).await
        {
            reason.push_str(&format!("; its last task stopped: {stopped}"));
        }
        reason
    }
}

/// Why the service's most recent task stopped, from ECS.
async fn stopped_task(
    config: &aws_config::SdkConfig,
    cluster: &str,
    service: &str,
) -> Option<String> {
    let ecs = aws_sdk_ecs::Client::new(config);
    let service_name = service.rsplit('/').next().unwrap_or(service);
    let listed = ecs
        .list_tasks()
        .cluster(cluster)
        .service_name(service_name)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
        .ok()?;
    let tasks = ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(listed.task_arns().to_vec()))
        .send()
        .await
        .ok()?;
    let task = tasks
        .tasks()
        .iter()
        .max_by_key(|t| t.stopped_at().map(|t| t.secs()))?;
    let mut reason = task
        .stopped_reason()
        .unwrap_or("no reason given")
        .to_owned();
    for container in task.containers() {
        if let Some(why) = container.reason() {
            reason.push_str(&format!(
                "; {}: {why}",
                container.name().unwrap_or("container")
            ));
        }
    }
    Some(reason)
}

/// Whether a final stack status means the operation did what it was asked.
fn succeeded(status: &str) -> bool {
    matches!(
        status,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "DELETE_COMPLETE"
    )
}

fn no_changes(message: Option<&str>) -> bool {
    message.is_some_and(|m| NO_CHANGES.iter().any(|text| m.contains(text)))
}

pub fn change_json(change: &Change) -> Value {
    let resource = change.resource_change();
    json!({
        "action": resource.and_then(|r| r.action()).map(|a| a.as_str()),
        "logicalId": resource.and_then(|r| r.logical_resource_id()),
        "type": resource.and_then(|r| r.resource_type()),
        "replacement": resource.and_then(|r| r.replacement()).map(|r| r.as_str()),
    })
}

pub fn print_changes(changes: &[Change]) {
    let mut counts = BTreeMap::<&str, usize>::new();
    for change in changes {
        let Some(resource) = change.resource_change() else {
            continue;
        };
        let action = resource.action().map_or("?", |a| a.as_str());
        *counts.entry(action).or_default() += 1;
        let replaces = match resource.replacement().map(|r| r.as_str()) {
            Some("True") => " (replaced)",
            Some("Conditional") => " (may be replaced)",
            _ => "",
        };
        println!(
            "  {action:<7} {:<45} {}{replaces}",
            resource.logical_resource_id().unwrap_or_default(),
            resource.resource_type().unwrap_or_default()
        );
    }
    let summary: Vec<String> = counts.iter().map(|(a, n)| format!("{n} {a}")).collect();
    println!("{} change(s): {}", changes.len(), summary.join(", "));
}
