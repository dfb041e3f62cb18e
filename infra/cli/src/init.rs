//! `benchling-webhook init`: writes a profile from flags, after finding the Quilt stack by its
//! ARN or its catalog's host and checking it has the outputs a deployment reads.

use clap::Args;

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
    #[arg(long, required_unless_present = "catalog", conflicts_with = "catalog")]
    quilt_stack_arn: Option<String>,
    /// The Quilt catalog's host: the stack whose QuiltWebHost output it is, in --region.
    #[arg(long)]
    catalog: Option<String>,
    /// Where to look for the catalog's stack (default: the AWS configuration's region).
    #[arg(long, requires = "catalog")]
    region: Option<String>,
    /// The stack's environment this profile owns.
    #[arg(long, default_value = "prod")]
    environment: String,
    /// The deployment's stack name.
    #[arg(long, default_value = DEFAULT_STACK_NAME)]
    stack_name: String,
    /// The Benchling tenant (`acme` for acme.benchling.com).
    #[arg(long)]
    tenant: String,
    /// The Benchling app's client id.
    #[arg(long)]
    client_id: String,
    /// The Benchling app definition id (`appdef_…`).
    #[arg(long)]
    app_definition_id: String,
    /// The Secrets Manager secret (ARN or name) for the Benchling app's credentials; `secret
    /// sync` creates it (default: `benchling-webhook/<stack name>/<environment>`).
    #[arg(long)]
    secret: Option<String>,
    /// The Quilt bucket packages are written to.
    #[arg(long)]
    bucket: String,
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

/// Finds the Quilt stack, then validates and writes the profile.
///
/// # Errors
///
/// When the Quilt stack cannot be used, a value is invalid (named), or the profile exists
/// without `--force`.
pub async fn run(args: &InitArgs) -> anyhow::Result<()> {
    let store = ProfileStore::from_env()?;
    let found = match (&args.quilt_stack_arn, &args.catalog) {
        (Some(arn), _) => {
            let region = quilt::arn_region(arn)?.to_owned();
            quilt::by_arn(&cloudformation(Some(region)).await, arn).await?
        }
        (None, Some(catalog)) => {
            quilt::by_catalog(&cloudformation(args.region.clone()).await, catalog).await?
        }
        (None, None) => anyhow::bail!("give --quilt-stack-arn or --catalog"),
    };
    let profile = Profile {
        schema_version: SCHEMA_VERSION,
        stack: StackTarget {
            name: args.stack_name.clone(),
            ..StackTarget::default()
        },
        environment: args.environment.parse()?,
        quilt: QuiltTarget {
            stack_arn: found.arn.clone(),
        },
        benchling: BenchlingApp {
            tenant: args.tenant.clone(),
            client_id: args.client_id.clone(),
            app_definition_id: args.app_definition_id.clone(),
            secret: args.secret.clone().unwrap_or_else(|| {
                format!("benchling-webhook/{}/{}", args.stack_name, args.environment)
            }),
        },
        packages: Packages {
            bucket: args.bucket.clone(),
            prefix: args.prefix.clone(),
            metadata_key: args.metadata_key.clone(),
        },
        image: Image {
            tag: args.image_tag.clone(),
            repository: args.image_repository.clone(),
        },
        log_level: args.log_level.clone(),
    };
    let path = store.save(&args.profile, &profile, args.force)?;
    println!(
        "Quilt stack {} in {}: catalog {}, packager queue {}, database {}, workgroup {}",
        bw_config::mask::mask_arn(&found.arn),
        found.region,
        found.web_host,
        bw_config::mask::mask_url(&found.packager_queue_url),
        found.athena_database,
        found.workgroup
    );
    println!("wrote profile {:?} to {}", args.profile, path.display());
    Ok(())
}

/// A CloudFormation client from the standard AWS configuration, in `region` when given.
async fn cloudformation(region: Option<String>) -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&crate::aws::config(region).await)
}
