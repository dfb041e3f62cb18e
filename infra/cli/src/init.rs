//! `benchling-webhook init`: writes a profile, after finding the Quilt stack by its ARN or its
//! catalog's host and checking it has the outputs a deployment reads. Every value is a flag for
//! scripts; on a terminal, the required ones not given are asked for.

use std::io::IsTerminal as _;

use clap::Args;

use crate::UsageError;
use crate::profile::{
    BenchlingApp, DEFAULT_PROFILE, DEFAULT_STACK_NAME, Image, Packages, Profile, ProfileStore,
    QuiltTarget, SCHEMA_VERSION, StackTarget,
};
use crate::quilt;

/// Everything a profile holds; the Quilt stack by ARN or by catalog.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// The profile to write.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    profile: String,
    /// Replace the profile if it exists.
    #[arg(long)]
    force: bool,
    /// The Quilt stack's ARN.
    #[arg(long, conflicts_with = "catalog")]
    quilt_stack_arn: Option<String>,
    /// The Quilt catalog's host: the stack whose QuiltWebHost output it is, in --region.
    #[arg(long)]
    catalog: Option<String>,
    /// Where to look for the catalog's stack (default: the AWS configuration's region).
    #[arg(long)]
    region: Option<String>,
    /// The stack's environment this profile owns (default: prod).
    #[arg(long)]
    environment: Option<String>,
    /// The deployment's stack name.
    #[arg(long, default_value = DEFAULT_STACK_NAME)]
    stack_name: String,
    /// The Benchling tenant (`acme` for acme.benchling.com).
    #[arg(long)]
    tenant: Option<String>,
    /// The Benchling app's client id.
    #[arg(long)]
    client_id: Option<String>,
    /// The Benchling app definition id (`appdef_…`).
    #[arg(long)]
    app_definition_id: Option<String>,
    /// The Secrets Manager secret (ARN or name) for the Benchling app's credentials; `secret
    /// sync` creates it (default: `benchling-webhook/<stack name>/<environment>`).
    #[arg(long)]
    secret: Option<String>,
    /// The Quilt bucket packages are written to.
    #[arg(long)]
    bucket: Option<String>,
    /// The package name prefix.
    #[arg(long, default_value = "benchling")]
    prefix: String,
    /// The metadata key linking packages to entries.
    #[arg(long, default_value = "experiment_id")]
    metadata_key: String,
    /// The image tag to deploy (default: this CLI's version).
    #[arg(long)]
    image_tag: Option<String>,
    /// The ECR repository holding the image (`{account}.dkr.ecr.{region}.amazonaws.com/{name}`);
    /// needed to create the stack.
    #[arg(long)]
    image_repository: Option<String>,
    /// The services' log level.
    #[arg(long, default_value = "INFO")]
    log_level: String,
}

/// Where values not given as flags come from: the operator on a terminal, else nowhere (a
/// usage error naming the flag).
struct Asker {
    terminal: bool,
}

impl Asker {
    /// `given`, else the answer to `question` (`default` on an empty answer), else an error
    /// naming `flag`.
    fn value(
        &self,
        given: Option<&String>,
        flag: &str,
        question: &str,
        default: Option<&str>,
    ) -> anyhow::Result<String> {
        if let Some(value) = given {
            return Ok(value.clone());
        }
        if !self.terminal {
            return match default {
                Some(default) => Ok(default.to_owned()),
                None => Err(UsageError(format!(
                    "give --{flag} (or run init on a terminal to be asked)"
                ))
                .into()),
            };
        }
        loop {
            let answer = crate::ask::prompt(question, default)?;
            if !answer.is_empty() {
                return Ok(answer);
            }
            eprintln!("a value is needed");
        }
    }

    /// `given`, else (on a terminal) the answer, where an empty one means none.
    fn optional(&self, given: Option<&String>, question: &str) -> anyhow::Result<Option<String>> {
        match (given, self.terminal) {
            (Some(value), _) => Ok(Some(value.clone())),
            (None, true) => {
                Ok(Some(crate::ask::prompt(question, Some(""))?).filter(|a| !a.is_empty()))
            }
            (None, false) => Ok(None),
        }
    }
}

/// Finds the Quilt stack, then validates and writes the profile.
///
/// # Errors
///
/// When the Quilt stack cannot be used, a value is invalid (named), or the profile exists
/// without `--force`; a usage error when a required value is neither given nor asked for.
pub async fn run(args: &InitArgs) -> anyhow::Result<()> {
    let store = ProfileStore::from_env()?;
    let asker = Asker {
        terminal: std::io::stdin().is_terminal(),
    };
    let quilt_stack = match (&args.quilt_stack_arn, &args.catalog) {
        (Some(arn), _) => arn.clone(),
        (None, Some(catalog)) => catalog.clone(),
        (None, None) => asker.value(
            None,
            "quilt-stack-arn or --catalog",
            "Quilt stack ARN, or the catalog's host",
            None,
        )?,
    };
    let found = if quilt_stack.starts_with("arn:") {
        let region = quilt::arn_region(&quilt_stack)?.to_owned();
        quilt::by_arn(&cloudformation(Some(region)).await, &quilt_stack).await?
    } else {
        quilt::by_catalog(&cloudformation(args.region.clone()).await, &quilt_stack).await?
    };
    println!(
        "Quilt stack {} in {}: catalog {}, packager queue {}, database {}, workgroup {}",
        bw_config::mask::mask_arn(&found.arn),
        found.region,
        found.web_host,
        bw_config::mask::mask_url(&found.packager_queue_url),
        found.athena_database,
        found.workgroup
    );
    let environment = asker.value(
        args.environment.as_ref(),
        "environment",
        "Environment",
        Some("prod"),
    )?;
    let tenant = asker.value(
        args.tenant.as_ref(),
        "tenant",
        "Benchling tenant (acme for acme.benchling.com)",
        None,
    )?;
    let client_id = asker.value(
        args.client_id.as_ref(),
        "client-id",
        "Benchling app client id",
        None,
    )?;
    let app_definition_id = asker.value(
        args.app_definition_id.as_ref(),
        "app-definition-id",
        "Benchling app definition id (appdef_...)",
        None,
    )?;
    let bucket = asker.value(
        args.bucket.as_ref(),
        "bucket",
        "Quilt bucket for the packages",
        None,
    )?;
    let default_secret = format!("benchling-webhook/{}/{environment}", args.stack_name);
    let secret = asker.value(
        args.secret.as_ref(),
        "secret",
        "Secrets Manager secret for the app's credentials",
        Some(&default_secret),
    )?;
    let image_repository = asker.optional(
        args.image_repository.as_ref(),
        "ECR repository of the image (empty: set it before the first deploy)",
    )?;
    let profile = Profile {
        schema_version: SCHEMA_VERSION,
        stack: StackTarget {
            name: args.stack_name.clone(),
            ..StackTarget::default()
        },
        environment: environment.parse()?,
        quilt: QuiltTarget {
            stack_arn: found.arn.clone(),
        },
        benchling: BenchlingApp {
            tenant,
            client_id,
            app_definition_id,
            secret,
        },
        packages: Packages {
            bucket,
            prefix: args.prefix.clone(),
            metadata_key: args.metadata_key.clone(),
        },
        image: Image {
            tag: args.image_tag.clone(),
            repository: image_repository,
        },
        log_level: args.log_level.clone(),
    };
    let path = store.save(&args.profile, &profile, args.force)?;
    println!("wrote profile {:?} to {}", args.profile, path.display());
    Ok(())
}

/// A CloudFormation client from the standard AWS configuration, in `region` when given.
async fn cloudformation(region: Option<String>) -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&crate::aws::config(region).await)
}
