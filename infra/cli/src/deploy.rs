//! `benchling-webhook deploy`: creates or updates the profile's environment in its stack through
//! a change set, after the pre-flight checks, and records the deployment.
//!
//! Two inputs are enough: the Quilt stack (its outputs give the queue, catalog, database and
//! workgroup) and the Benchling secret. The template is rebuilt from the options the deployed
//! one records, with the profile's environment added at the end, so the other environments keep
//! their listener ports; their parameters keep their previous values.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::Parameter;
use bw_stack::{EnvironmentName, StackOptions, params};
use clap::Args;
use serde_json::{Value, json};

use crate::Output;
use crate::changeset::{Deployer, change_json, print_changes};
use crate::deployments::{Deployments, Outcome};
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

/// Plans, checks, deploys and records.
///
/// # Errors
/// When a check fails, the operator declines, or the deployment fails (the first failed
/// resource's reason given).
pub async fn run(args: &DeployArgs, output: Output) -> anyhow::Result<()> {
    let store = ProfileStore::from_env()?;
    let profile = store.load(&args.profile)?;
    let (region, config) = crate::aws::deployment(&profile).await?;
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
    // Read once: it gives the recorded options and tells an unchanged deploy.
    let deployed_template = match existing {
        Some(_) => crate::stack::template(&cloudformation, &profile.stack.name).await?,
        None => None,
    };

    let template = match &args.template {
        Some(path) => read_template(path)?,
        None => {
            let recorded = match existing {
                Some(_) => {
                    crate::stack::options_in(
                        &cloudformation,
                        &profile.stack.name,
                        deployed_template.as_ref(),
                    )
                    .await?
                }
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
        && deployed_template.as_ref() == Some(&template)
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
