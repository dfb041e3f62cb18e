//! The deployed stack, as `deploy` and the day-2 commands read it.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ProvideErrorMetadata as _;
use bw_stack::StackOptions;

/// A stack as CloudFormation describes it.
#[derive(Clone, Debug)]
pub struct Deployed {
    /// Its ARN, by which it is found even once deleted.
    pub id: String,
    /// `CREATE_COMPLETE`, `UPDATE_ROLLBACK_COMPLETE`, …
    pub status: String,
    /// Its parameters' values.
    pub parameters: BTreeMap<String, String>,
    /// Its outputs, by key.
    pub outputs: BTreeMap<String, String>,
}

impl Deployed {
    /// Whether an operation is running on it.
    pub fn busy(&self) -> bool {
        self.status.ends_with("_IN_PROGRESS") && self.status != "REVIEW_IN_PROGRESS"
    }

    /// Whether it holds nothing yet: only a change set made it (`REVIEW_IN_PROGRESS`), so the
    /// next change set creates it.
    pub fn is_empty(&self) -> bool {
        self.status == "REVIEW_IN_PROGRESS"
    }
}

/// The stack `name`, or `None` when there is none.
///
/// # Errors
/// When CloudFormation cannot be asked.
pub async fn describe(cloudformation: &Client, name: &str) -> anyhow::Result<Option<Deployed>> {
    let described = match cloudformation
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
    {
        Ok(described) => described,
        // CloudFormation answers a missing stack with a validation error of this text.
        Err(e)
            if e.code() == Some("ValidationError")
                && e.message().is_some_and(|m| m.contains("does not exist")) =>
        {
            return Ok(None);
        }
        Err(e) => anyhow::bail!("reading the stack {name}: {}", crate::aws::message(&e)),
    };
    let Some(stack) = described.stacks().first() else {
        return Ok(None);
    };
    Ok(Some(Deployed {
        id: stack.stack_id().unwrap_or(name).to_owned(),
        status: stack
            .stack_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        parameters: stack
            .parameters()
            .iter()
            .filter_map(|p| {
                Some((
                    p.parameter_key()?.to_owned(),
                    p.parameter_value()?.to_owned(),
                ))
            })
            .collect(),
        outputs: stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect(),
    }))
}

/// The outputs of stack `name`, by key.
///
/// # Errors
///
/// When the stack does not exist or CloudFormation cannot be asked.
pub async fn outputs(
    cloudformation: &Client,
    name: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let stack = describe(cloudformation, name)
        .await?
        .with_context(|| format!("the stack {name} does not exist"))?;
    Ok(stack.outputs)
}

/// A deployed environment's stack outputs, each required by name.
pub struct EnvironmentOutputs {
    stack: String,
    environment: String,
    outputs: BTreeMap<String, String>,
}

impl EnvironmentOutputs {
    /// The outputs of the profile's stack.
    ///
    /// # Errors
    /// When the stack does not exist or CloudFormation cannot be asked.
    pub async fn read(
        config: &aws_config::SdkConfig,
        profile: &crate::profile::Profile,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            outputs: outputs(&Client::new(config), &profile.stack.name).await?,
            stack: profile.stack.name.clone(),
            environment: profile.environment.as_str().to_owned(),
        })
    }

    /// The output `name`.
    ///
    /// # Errors
    /// When the stack has no such output, naming it and the environment.
    pub fn require(&self, name: &str) -> anyhow::Result<&String> {
        self.outputs.get(name).with_context(|| {
            format!(
                "the stack {} has no output {name}: is environment {} deployed in it?",
                self.stack, self.environment
            )
        })
    }
}

/// The options the stack's template records (see [`bw_stack::METADATA_KEY`]); `None` for a
/// template that records none.
///
/// # Errors
/// When CloudFormation cannot be asked, or the record is damaged.
pub async fn options(cloudformation: &Client, name: &str) -> anyhow::Result<Option<StackOptions>> {
    let deployed = template(cloudformation, name).await?;
    options_in(cloudformation, name, deployed.as_ref()).await
}

/// [`options`] of a stack whose template (`deployed`, as [`template`] read it) is already at
/// hand.
///
/// # Errors
/// As [`options`].
pub async fn options_in(
    cloudformation: &Client,
    name: &str,
    deployed: Option<&serde_json::Value>,
) -> anyhow::Result<Option<StackOptions>> {
    // The template as deployed is JSON when this CLI deployed it; a YAML one (the AWS CLI's
    // deploy of `template`'s default output) is read through the summary, which gives its
    // metadata as JSON.
    let metadata = match deployed {
        Some(template) => template.get("Metadata").cloned(),
        None => {
            let summary = cloudformation
                .get_template_summary()
                .stack_name(name)
                .send()
                .await
                .map_err(|e| template_error(name, &e))?;
            summary
                .metadata()
                .map(serde_json::from_str)
                .transpose()
                .with_context(|| format!("the stack {name}'s template metadata is not JSON"))?
        }
    };
    match metadata {
        Some(metadata) => Ok(StackOptions::from_metadata(&metadata)?),
        None => Ok(None),
    }
}

/// The stack's template as JSON; `None` when it is not JSON (one written in YAML).
///
/// # Errors
/// When CloudFormation cannot be asked.
pub async fn template(
    cloudformation: &Client,
    name: &str,
) -> anyhow::Result<Option<serde_json::Value>> {
    let found = cloudformation
        .get_template()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| template_error(name, &e))?;
    Ok(found
        .template_body()
        .and_then(|body| serde_json::from_str(body).ok()))
}

fn template_error<E>(
    name: &str,
    error: &aws_sdk_cloudformation::error::SdkError<
        E,
        aws_sdk_cloudformation::config::http::HttpResponse,
    >,
) -> anyhow::Error
where
    E: aws_sdk_cloudformation::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    anyhow::anyhow!(
        "reading the template of the stack {name}: {}",
        crate::aws::message(error)
    )
}
