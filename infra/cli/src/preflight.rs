//! What `deploy` checks before it changes anything, each failure saying what to fix: the Athena
//! workgroup exists and is enabled, the Benchling secret exists and the services can parse it,
//! the package bucket exists, and the image tag is in its repository.

use aws_config::SdkConfig;
use aws_sdk_athena::types::WorkGroupState;
use bw_config::BenchlingSecret;
use serde::Serialize;

use crate::ecr::{self, Repository};

/// What the checks look at.
pub struct Inputs<'a> {
    /// The profile, named in advice.
    pub profile: &'a str,
    /// The Athena workgroup of the linked-package queries.
    pub workgroup: &'a str,
    /// The Benchling secret, by name or ARN.
    pub secret: &'a str,
    /// The package bucket (`PackageBucket`).
    pub bucket: &'a str,
    /// The image's repository, when known.
    pub repository: Option<&'a str>,
    /// The image tag.
    pub tag: &'a str,
}

/// One check's verdict.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// What was checked: `workgroup`, `secret`, `bucket`, `image`.
    pub check: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was found, or what to fix.
    pub detail: String,
}

/// Every check's verdict, and the secret's full ARN (the stack's parameter) when it passed.
pub struct Preflight {
    /// In a fixed order.
    pub checks: Vec<Check>,
    /// The secret's ARN.
    pub secret_arn: Option<String>,
}

impl Preflight {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// Runs the checks concurrently.
pub async fn run(config: &SdkConfig, inputs: &Inputs<'_>) -> Preflight {
    let (workgroup, secret, bucket, image) = tokio::join!(
        workgroup(config, inputs.workgroup),
        secret(config, inputs),
        bucket(config, inputs.bucket),
        image(config, inputs),
    );
    let secret_arn = secret.as_ref().ok().cloned();
    // Account ids are masked as `/config` masks them.
    let verdict = |check, result: Result<String, String>| {
        let ok = result.is_ok();
        let detail = result.unwrap_or_else(|e| e);
        Check {
            check,
            ok,
            detail: bw_config::mask::mask_account_ids(&detail),
        }
    };
    Preflight {
        checks: vec![
            verdict("workgroup", workgroup),
            verdict(
                "secret",
                secret.map(|arn| format!("{} parses", bw_config::mask::mask_arn(&arn))),
            ),
            verdict("bucket", bucket),
            verdict("image", image),
        ],
        secret_arn,
    }
}

async fn workgroup(config: &SdkConfig, name: &str) -> Result<String, String> {
    let athena = aws_sdk_athena::Client::new(config);
    let found = athena
        .get_work_group()
        .work_group(name)
        .send()
        .await
        .map_err(|e| {
            format!(
                "Athena workgroup {name} cannot be read ({}): create it, or set the Quilt stack's TabulatorOpenQueryWorkGroup output or --parameter AthenaWorkgroup=NAME",
                crate::aws::message(&e)
            )
        })?;
    let Some(found) = found.work_group() else {
        return Err(format!(
            "there is no Athena workgroup {name}: create it, or set the Quilt stack's TabulatorOpenQueryWorkGroup output or --parameter AthenaWorkgroup=NAME"
        ));
    };
    if found.state() == Some(&WorkGroupState::Disabled) {
        return Err(format!(
            "Athena workgroup {name} is disabled: enable it (aws athena update-work-group --state ENABLED)"
        ));
    }
    Ok(format!("Athena workgroup {name} is enabled"))
}

/// The secret's ARN once the services' parser accepts it with this bucket.
async fn secret(config: &SdkConfig, inputs: &Inputs<'_>) -> Result<String, String> {
    let id = inputs.secret;
    let sync = format!("benchling-webhook secret sync --profile {}", inputs.profile);
    let secrets = aws_sdk_secretsmanager::Client::new(config);
    let found = secrets
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| {
            use aws_sdk_secretsmanager::error::ProvideErrorMetadata as _;
            if e.code() == Some("ResourceNotFoundException") {
                format!("no secret {id}: create it with `{sync}`")
            } else {
                format!(
                    "the secret {id} cannot be read: {}",
                    crate::aws::message(&e)
                )
            }
        })?;
    let text = found.secret_string().unwrap_or_default();
    // The parser's messages name keys, never values.
    BenchlingSecret::from_json_with(text, Some(inputs.bucket)).map_err(|e| {
        format!(
            "the secret {id} would not start the services: {e}. Run `{sync}` or fix its keys (docs/configuration.md)"
        )
    })?;
    found
        .arn()
        .map(str::to_owned)
        .ok_or_else(|| format!("Secrets Manager gave no ARN for {id}"))
}

async fn bucket(config: &SdkConfig, bucket: &str) -> Result<String, String> {
    let s3 = bw_store::s3_client(config);
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(format!("bucket {bucket} exists")),
        Err(e) => {
            let status = e.raw_response().map(|r| r.status().as_u16());
            Err(match status {
                Some(404) => format!(
                    "no bucket {bucket}: set packages.bucket to the Quilt stack's registry bucket"
                ),
                Some(403) => format!(
                    "bucket {bucket} exists but these credentials may not use it (the template is uploaded there)"
                ),
                _ => format!(
                    "bucket {bucket} cannot be checked: {}",
                    crate::aws::message(&e)
                ),
            })
        }
    }
}

async fn image(config: &SdkConfig, inputs: &Inputs<'_>) -> Result<String, String> {
    let Some(uri) = inputs.repository else {
        return Err(
            "no image repository: set image.repository in the profile (init --image-repository)"
                .to_owned(),
        );
    };
    let repository =
        Repository::parse(uri).ok_or_else(|| format!("{uri:?} is not an ECR repository URI"))?;
    // The registry's own region: an image may be pulled across regions.
    let ecr = aws_sdk_ecr::Client::from_conf(
        aws_sdk_ecr::config::Builder::from(config)
            .region(aws_config::Region::new(repository.region.clone()))
            .build(),
    );
    let tag = inputs.tag;
    match ecr::has_tag(&ecr, &repository, tag).await {
        Ok(true) => Ok(format!("{uri}:{tag} exists")),
        Ok(false) => Err(format!(
            "{uri} has no tag {tag}: push it (docker push {uri}:{tag}) or set image.tag"
        )),
        Err(message) => Err(format!("{uri}:{tag} cannot be checked: {message}")),
    }
}
