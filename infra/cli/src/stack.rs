//! The deployed stack, as the day-2 commands read it.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_cloudformation::Client;

/// The outputs of stack `name`, by key.
///
/// # Errors
///
/// When the stack does not exist or CloudFormation cannot be asked.
pub async fn outputs(
    cloudformation: &Client,
    name: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let described = cloudformation
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("reading the stack {name}: {}", crate::aws::message(&e)))?;
    let stack = described
        .stacks()
        .first()
        .with_context(|| format!("the stack {name} does not exist"))?;
    Ok(stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect())
}
