//! `benchling-webhook destroy`: removes the profile's environment. When other environments
//! share the stack, only this one's resources go (a change set on a template without it, the
//! others keeping their values); when it is the last, the stack is deleted. The package bucket
//! is Quilt's and is never touched, nor the packages and records in it.

use anyhow::Context as _;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::Parameter;
use clap::Args;
use serde_json::json;

use crate::Output;
use crate::changeset::{Deployer, print_changes};
use crate::deployments::{Deployments, Outcome};
use crate::profile::{DEFAULT_PROFILE, ProfileStore};

/// Whose environment, and whether to ask.
#[derive(Args, Debug)]
pub struct DestroyArgs {
    /// The profile.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    profile: String,
    /// Destroy without asking.
    #[arg(long)]
    yes: bool,
}

/// Removes the environment, or deletes the stack it was the last of.
///
/// # Errors
/// When the operator declines, or CloudFormation fails (its reason given).
pub async fn run(args: &DestroyArgs, output: Output) -> anyhow::Result<()> {
    let store = ProfileStore::from_env()?;
    let profile = store.load(&args.profile)?;
    let (region, config) = crate::aws::deployment(&profile).await?;
    let cloudformation = Client::new(&config);
    let name = &profile.stack.name;
    let Some(stack) = crate::stack::describe(&cloudformation, name).await? else {
        println!("there is no stack {name}: nothing to destroy");
        return Ok(());
    };
    anyhow::ensure!(
        !stack.busy(),
        "the stack {name} is {}: wait until it finishes",
        stack.status
    );
    let options = crate::stack::options(&cloudformation, name).await?;
    let others: Vec<_> = options
        .as_ref()
        .map(|o| {
            o.environments()
                .iter()
                .filter(|e| **e != profile.environment)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let deployer = Deployer {
        cloudformation: &cloudformation,
        config: &config,
        profile: &profile,
        profile_name: &args.profile,
        region: &region,
    };
    let env = profile.environment.as_str();
    let record = if let (Some(options), false) = (&options, others.is_empty()) {
        let remaining = bw_stack::StackOptions::new(
            others.clone(),
            options.network().clone(),
            options.allow().to_vec(),
        )?;
        let template = bw_stack::build(&remaining).to_json();
        // Every parameter left keeps its value; this environment's go with it.
        let parameters: Vec<Parameter> = template["Parameters"]
            .as_object()
            .into_iter()
            .flat_map(|p| p.keys())
            .filter(|k| stack.parameters.contains_key(*k))
            .map(|k| {
                Parameter::builder()
                    .parameter_key(k)
                    .use_previous_value(true)
                    .build()
            })
            .collect();
        let change_set = deployer
            .change_set(&template, parameters, true)
            .await?
            .with_context(|| format!("the stack {name} has no environment {env} to remove"))?;
        if output == Output::Text {
            print_changes(&change_set.changes);
        }
        if !args.yes
            && let Err(e) = crate::ask::confirm(
                &format!(
                    "remove environment {env} from {name} (keeping {}; the bucket and its packages stay)?",
                    others
                        .iter()
                        .map(|e| e.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "nothing destroyed",
            )
        {
            deployer.discard(&change_set).await;
            return Err(e);
        }
        deployer
            .execute(&change_set, "-", Default::default())
            .await?
    } else {
        if !args.yes {
            crate::ask::confirm(
                &format!(
                    "delete the stack {name} and environment {env} (the bucket and its packages stay)?"
                ),
                "nothing destroyed",
            )?;
        }
        deployer.delete().await?
    };
    Deployments::of(&store, &args.profile)?.record(record.clone())?;
    match output {
        Output::Json => println!("{:#}", json!({ "destroyed": record })),
        Output::Text => println!("{name}: {}", record.status),
    }
    anyhow::ensure!(
        record.outcome == Outcome::Succeeded,
        "destroying failed ({}): {}",
        record.status,
        record.reason.as_deref().unwrap_or("no reason given")
    );
    Ok(())
}
