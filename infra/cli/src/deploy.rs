//! `benchling-webhook deploy`: creates or updates the profile's environment in its stack through
//! a change set, after the pre-flight checks, and records the deployment.
//!
//! Two inputs are enough: the Quilt stack (its outputs give the queue, catalog, database and
//! workgroup) and the Benchling secret. The template is rebuilt from the options the deployed
//! one records, with the profile's environment added at the end, so the other environments keep
//! their listener ports; their parameters keep their previous values.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ProvideErrorMetadata as _;
use aws_sdk_cloudformation::types::{
    Capability, Change, ChangeSetStatus, ChangeSetType, Parameter, StackEvent,
};
use bw_stack::{EnvironmentName, StackOptions, params};
use bw_store::{Key, ObjectStore as _, PutOptions, S3Store};
use chrono::Utc;
use clap::Args;
use serde_json::{Value, json};

use crate::Output;
use crate::deployments::{Deployment, Deployments, Outcome};
use crate::preflight::{self, Preflight};
use crate::profile::{DEFAULT_PROFILE, Profile, ProfileStore};
use crate::stack::Deployed;

/// What to deploy, and how to ask.
#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The profile.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    profile: String,
    /// Execute the change set without asking.
    #[arg(long)]
    yes: bool,
    /// Check and write the template and parameters only; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Where --dry-run writes template.json and parameters.json.
    #[arg(long, default_value = ".", requires = "dry_run")]
    out: PathBuf,
    /// Deploy this JSON template instead of the one this version builds (one reviewed or
    /// changed by hand); the parameters it declares are set as usual.
    #[arg(long)]
    template: Option<PathBuf>,
    /// Sets a stack parameter, NAME=VALUE (repeatable), over the profile's values.
    #[arg(long = "parameter", value_parser = name_value)]
    parameters: Vec<(String, String)>,
    /// Deploy into a stack whose template records no options (one deployed with the AWS CLI);
    /// the profile's stack.vpcId and stack.allowCidrs must then describe it.
    #[arg(long)]
    adopt: bool,
}

fn name_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))
}

/// Seconds between polls of a change set or the stack's events.
const POLL: Duration = Duration::from_secs(2);
/// The reasons CloudFormation gives for a change set that changes nothing.
const NO_CHANGES: [&str; 2] = ["didn't contain changes", "No updates are to be performed"];

/// Plans, checks, deploys and records.
///
/// # Errors
/// When a check fails, the operator declines, or the deployment fails (the first failed
/// resource's reason given).
pub async fn run(args: &DeployArgs, output: Output) -> anyhow::Result<()> {
    let store = ProfileStore::from_env()?;
    let profile = store.load(&args.profile)?;
    let region =
        crate::aws::region_of(&profile).context("the profile names no region: set stack.region")?;
    let config = crate::aws::config(Some(region.clone())).await;
    let cloudformation = Client::new(&config);
    let quilt_region = crate::quilt::arn_region(&profile.quilt.stack_arn)?.to_owned();
    let quilt = crate::quilt::by_arn(
        &Client::new(&crate::aws::config(Some(quilt_region)).await),
        &profile.quilt.stack_arn,
    )
    .await?;
    let deployed = crate::stack::describe(&cloudformation, &profile.stack.name).await?;
    if let Some(stack) = &deployed {
        anyhow::ensure!(
            !stack.busy(),
            "the stack {} is {}: wait until it finishes",
            profile.stack.name,
            stack.status
        );
        anyhow::ensure!(
            stack.status != "ROLLBACK_COMPLETE",
            "the stack {} is ROLLBACK_COMPLETE (its creation failed and it cannot be updated): delete it with `benchling-webhook destroy --profile {}`, then deploy again",
            profile.stack.name,
            args.profile
        );
    }
    let existing = deployed.as_ref().filter(|s| !s.is_empty());

    let template = match &args.template {
        Some(path) => read_template(path)?,
        None => {
            let recorded = match existing {
                Some(_) => crate::stack::options(&cloudformation, &profile.stack.name).await?,
                None => None,
            };
            let options = options(&profile, existing, recorded, args.adopt)?;
            bw_stack::build(&options).to_json()
        }
    };
    let declared: Vec<String> = template["Parameters"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();

    let env = profile.environment.title();
    let tag = profile.image.tag_or_default();
    let repository = profile
        .image
        .repository
        .clone()
        .or_else(|| existing.and_then(|s| s.parameters.get(params::IMAGE_REPOSITORY).cloned()));
    let preflight = preflight::run(
        &config,
        &preflight::Inputs {
            profile: &args.profile,
            workgroup: &quilt.workgroup,
            secret: &profile.benchling.secret,
            bucket: &profile.packages.bucket,
            repository: repository.as_deref(),
            tag: &tag,
        },
    )
    .await;
    report_preflight(&preflight, output);
    anyhow::ensure!(preflight.passed(), "pre-flight failed: nothing was changed");

    let mut values = BTreeMap::from([
        (params::PACKAGE_BUCKET, profile.packages.bucket.clone()),
        (params::PACKAGER_QUEUE_URL, quilt.packager_queue_url.clone()),
        (params::QUILT_WEB_HOST, quilt.web_host.clone()),
        (params::ATHENA_USER_DATABASE, quilt.athena_database.clone()),
        (params::ATHENA_WORKGROUP, quilt.workgroup.clone()),
        (params::LOG_LEVEL, profile.log_level.clone()),
    ])
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect::<BTreeMap<String, String>>();
    if let Some(repository) = repository {
        values.insert(params::IMAGE_REPOSITORY.to_owned(), repository);
    }
    values.insert(params::image_tag(&env), tag.clone());
    if let Some(arn) = &preflight.secret_arn {
        values.insert(params::secret_arn(&env), arn.clone());
    }
    for (name, value) in &args.parameters {
        anyhow::ensure!(
            declared.contains(name),
            "--parameter {name}: the template declares no such parameter"
        );
        values.insert(name.clone(), value.clone());
    }
    values.retain(|name, _| declared.contains(name));
    let parameters = parameters(&declared, &values, existing);

    if args.dry_run {
        return write_dry_run(args, &template, &parameters, output);
    }

    if let Some(stack) = existing
        && values
            .iter()
            .all(|(k, v)| stack.parameters.get(k) == Some(v))
        && crate::stack::template(&cloudformation, &profile.stack.name)
            .await?
            .as_ref()
            == Some(&template)
    {
        return nothing_to_deploy(&profile, &args.profile, output);
    }
    let deployment = Deployer {
        cloudformation: &cloudformation,
        config: &config,
        profile: &profile,
        profile_name: &args.profile,
        region: &region,
    };
    let changes = deployment
        .change_set(&template, parameters, existing.is_some())
        .await?;
    let Some(change_set) = changes else {
        return nothing_to_deploy(&profile, &args.profile, output);
    };
    if output == Output::Text {
        print_changes(&change_set.changes);
    }
    if !args.yes
        && let Err(e) = crate::ask::confirm(
            &format!(
                "execute these {} change(s) to {}?",
                change_set.changes.len(),
                profile.stack.name
            ),
            "nothing deployed",
        )
    {
        deployment.discard(&change_set).await;
        return Err(e);
    }
    let record = deployment.execute(&change_set, &tag, values).await?;
    Deployments::of(&store, &args.profile)?.record(record.clone())?;
    match output {
        Output::Json => println!(
            "{:#}",
            json!({
                "changes": change_set.changes.iter().map(change_json).collect::<Vec<_>>(),
                "deployed": record.outcome == Outcome::Succeeded,
                "deployment": record,
            })
        ),
        Output::Text if record.outcome == Outcome::Succeeded => {
            println!("{}: {}", profile.stack.name, record.status);
            if let Some(url) = &record.webhook_url {
                println!("webhook URL for the Benchling app: {url}");
            }
        }
        Output::Text => {}
    }
    anyhow::ensure!(
        record.outcome == Outcome::Succeeded,
        "the deployment failed ({}): {}",
        record.status,
        record.reason.as_deref().unwrap_or("no reason given")
    );
    Ok(())
}

fn nothing_to_deploy(profile: &Profile, name: &str, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{:#}", json!({"changes": [], "deployed": false})),
        Output::Text => println!(
            "the stack {} already matches profile {name}: nothing to deploy",
            profile.stack.name
        ),
    }
    Ok(())
}

/// The template's options: the deployed record, else the profile's (a new stack, or `--adopt`),
/// with the profile's environment added at the end and its allowlist when it sets one.
fn options(
    profile: &Profile,
    existing: Option<&Deployed>,
    recorded: Option<StackOptions>,
    adopt: bool,
) -> anyhow::Result<StackOptions> {
    let wanted = profile.stack.network()?;
    let (mut environments, network, allow) = match (existing, recorded) {
        (Some(stack), None) => {
            anyhow::ensure!(
                adopt,
                "the stack {} records no options in its template (it was not deployed by this CLI): give --adopt once the profile's stack.vpcId, stack.privateSubnetIds and stack.allowCidrs describe it",
                profile.stack.name
            );
            // Environments from their parameters: `ProdBenchlingSecretARN` → `prod`.
            let environments = stack
                .parameters
                .keys()
                .filter_map(|k| k.strip_suffix("BenchlingSecretARN"))
                .filter_map(|title| title.to_lowercase().parse::<EnvironmentName>().ok())
                .collect();
            (
                environments,
                wanted,
                profile.stack.allow()?.unwrap_or_default(),
            )
        }
        (Some(_), Some(recorded)) => {
            anyhow::ensure!(
                profile.stack.vpc_id.is_none() || &wanted == recorded.network(),
                "stack.vpcId: the stack {} runs in {}; a stack cannot move (deploy another stack.name)",
                profile.stack.name,
                describe_network(recorded.network())
            );
            let allow = profile
                .stack
                .allow()?
                .unwrap_or_else(|| recorded.allow().to_vec());
            (
                recorded.environments().to_vec(),
                recorded.network().clone(),
                allow,
            )
        }
        (None, _) => (
            Vec::new(),
            wanted,
            profile.stack.allow()?.unwrap_or_default(),
        ),
    };
    if !environments.contains(&profile.environment) {
        environments.push(profile.environment.clone());
    }
    Ok(StackOptions::new(environments, network, allow)?)
}

fn describe_network(network: &bw_stack::Network) -> String {
    match network {
        bw_stack::Network::New => "its own VPC".to_owned(),
        bw_stack::Network::Existing { vpc_id, .. } => vpc_id.clone(),
    }
}

/// A template file as JSON.
fn read_template(path: &std::path::Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read(path).with_context(|| format!("reading the template {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is not a JSON template (benchling-webhook template --format json writes one)",
            path.display()
        )
    })
}

/// Every declared parameter: the value set, else the previous one on an existing stack that has
/// it, else left out for its default.
fn parameters(
    declared: &[String],
    values: &BTreeMap<String, String>,
    existing: Option<&Deployed>,
) -> Vec<Parameter> {
    declared
        .iter()
        .filter_map(|name| {
            let parameter = Parameter::builder().parameter_key(name);
            if let Some(value) = values.get(name) {
                Some(parameter.parameter_value(value).build())
            } else if existing.is_some_and(|s| s.parameters.contains_key(name)) {
                Some(parameter.use_previous_value(true).build())
            } else {
                None
            }
        })
        .collect()
}

fn report_preflight(preflight: &Preflight, output: Output) {
    // On JSON output the checks go with the result (or the error) instead.
    for check in &preflight.checks {
        let mark = if check.ok { "ok  " } else { "FAIL" };
        if output == Output::Text || !check.ok {
            eprintln!("pre-flight {mark} {:<9} {}", check.check, check.detail);
        }
    }
}

fn write_dry_run(
    args: &DeployArgs,
    template: &Value,
    parameters: &[Parameter],
    output: Output,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let template_path = args.out.join("template.json");
    let parameters_path = args.out.join("parameters.json");
    // The AWS CLI's `--parameters file://parameters.json` form.
    let parameters: Vec<Value> = parameters
        .iter()
        .map(|p| match p.parameter_value() {
            Some(value) => json!({"ParameterKey": p.parameter_key(), "ParameterValue": value}),
            None => json!({"ParameterKey": p.parameter_key(), "UsePreviousValue": true}),
        })
        .collect();
    for (path, value) in [
        (&template_path, template),
        (&parameters_path, &Value::Array(parameters)),
    ] {
        let mut text = serde_json::to_vec_pretty(value)?;
        text.push(b'\n');
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    match output {
        Output::Json => println!(
            "{:#}",
            json!({"template": template_path, "parameters": parameters_path})
        ),
        Output::Text => println!(
            "dry run: wrote {} and {}; nothing was changed",
            template_path.display(),
            parameters_path.display()
        ),
    }
    Ok(())
}

/// A change set ready to execute.
struct ChangeSet {
    id: String,
    name: String,
    creates: bool,
    changes: Vec<Change>,
}

/// The AWS side of one deployment.
struct Deployer<'a> {
    cloudformation: &'a Client,
    config: &'a aws_config::SdkConfig,
    profile: &'a Profile,
    profile_name: &'a str,
    region: &'a str,
}

impl Deployer<'_> {
    fn stack(&self) -> &str {
        &self.profile.stack.name
    }

    /// Uploads the template, creates the change set and waits for it; `None` when it changes
    /// nothing (and is deleted).
    async fn change_set(
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
    async fn discard(&self, change_set: &ChangeSet) {
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
    async fn execute(
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
            Ok(_) => self.follow(started, change_set.changes.len()).await?,
            Err(e) => ("EXECUTE_FAILED".to_owned(), Some(crate::aws::message(&e))),
        };
        let outcome = if matches!(status.as_str(), "CREATE_COMPLETE" | "UPDATE_COMPLETE") {
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

    /// Polls the stack's events, showing progress, until its status is final; returns that
    /// status and, on failure, the first failed resource's reason.
    async fn follow(
        &self,
        started: chrono::DateTime<Utc>,
        total: usize,
    ) -> anyhow::Result<(String, Option<String>)> {
        let spinner = crate::ask::spinner(format!("deploying {}", self.stack()));
        let mut seen = std::collections::HashSet::new();
        let mut events: Vec<StackEvent> = Vec::new();
        let mut done = std::collections::HashSet::new();
        loop {
            let stack = crate::stack::describe(self.cloudformation, self.stack())
                .await?
                .with_context(|| format!("the stack {} disappeared", self.stack()))?;
            for event in self.events_since(started).await? {
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
        started: chrono::DateTime<Utc>,
    ) -> anyhow::Result<Vec<StackEvent>> {
        let mut events = Vec::new();
        let mut token = None;
        'pages: loop {
            let page = self
                .cloudformation
                .describe_stack_events()
                .stack_name(self.stack())
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

fn no_changes(message: Option<&str>) -> bool {
    message.is_some_and(|m| NO_CHANGES.iter().any(|text| m.contains(text)))
}

fn change_json(change: &Change) -> Value {
    let resource = change.resource_change();
    json!({
        "action": resource.and_then(|r| r.action()).map(|a| a.as_str()),
        "logicalId": resource.and_then(|r| r.logical_resource_id()),
        "type": resource.and_then(|r| r.resource_type()),
        "replacement": resource.and_then(|r| r.replacement()).map(|r| r.as_str()),
    })
}

fn print_changes(changes: &[Change]) {
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
