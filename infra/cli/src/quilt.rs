//! The Quilt stack a deployment writes to, found by its ARN or by its catalog's host, and read
//! by exact output names. One resolver, used by `init` and (later) `deploy`, so values are never
//! guessed from partial names and a missing output is named.

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::Stack;

/// The output naming Quilt's packager queue.
pub const PACKAGER_QUEUE_URL: &str = "PackagerQueueUrl";
/// The output naming the Athena database of Quilt's package tables.
pub const USER_ATHENA_DATABASE: &str = "UserAthenaDatabaseName";
/// The output naming the catalog's host.
pub const QUILT_WEB_HOST: &str = "QuiltWebHost";
/// The output naming the Athena workgroup for package queries; `primary` without it.
pub const TABULATOR_WORKGROUP: &str = "TabulatorOpenQueryWorkGroup";

/// What a deployment needs from the Quilt stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuiltStack {
    /// The stack's ARN.
    pub arn: String,
    /// Its region (from the ARN).
    pub region: String,
    /// `PackagerQueueUrl`.
    pub packager_queue_url: String,
    /// `UserAthenaDatabaseName`.
    pub athena_database: String,
    /// `QuiltWebHost`.
    pub web_host: String,
    /// `TabulatorOpenQueryWorkGroup`, or `primary`.
    pub workgroup: String,
}

/// Why the Quilt stack could not be used.
#[derive(Debug, thiserror::Error)]
pub enum QuiltError {
    /// No stack with that ARN (or it was deleted).
    #[error("no Quilt stack {0}: check --quilt-stack-arn and the region and account it names")]
    NotFound(String),
    /// The stack lacks outputs a deployment needs.
    #[error(
        "the stack {stack} lacks the output(s) {}: is it a Quilt stack, and is it up to date?",
        .missing.join(", ")
    )]
    MissingOutputs {
        /// The stack's name.
        stack: String,
        /// The outputs not found, by exact name.
        missing: Vec<&'static str>,
    },
    /// No stack's `QuiltWebHost` is the catalog asked for.
    #[error(
        "no stack in this account and region has QuiltWebHost {0}: give --quilt-stack-arn, or the region of the Quilt stack"
    )]
    NoCatalog(String),
    /// Several stacks serve the catalog.
    #[error("several stacks have QuiltWebHost {host}: {}; give --quilt-stack-arn", .stacks.join(", "))]
    SeveralCatalogs {
        /// The catalog asked for.
        host: String,
        /// The stacks' ARNs.
        stacks: Vec<String>,
    },
    /// The ARN is not a CloudFormation stack ARN.
    #[error(
        "{0:?} is not a CloudFormation stack ARN (arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>)"
    )]
    BadArn(String),
    /// CloudFormation refused or failed the call.
    #[error("CloudFormation {call} failed: {message}")]
    Aws {
        /// The API call.
        call: &'static str,
        /// What the service or the SDK said.
        message: String,
    },
}

/// The region field of a stack ARN.
///
/// # Errors
///
/// [`QuiltError::BadArn`] when `arn` is not a CloudFormation stack ARN.
pub fn arn_region(arn: &str) -> Result<&str, QuiltError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts[..] {
        ["arn", partition, "cloudformation", region, _, resource]
            if partition.starts_with("aws")
                && !region.is_empty()
                && resource.starts_with("stack/") =>
        {
            Ok(region)
        }
        _ => Err(QuiltError::BadArn(arn.to_owned())),
    }
}

/// The Quilt stack `arn`, its outputs read.
///
/// # Errors
///
/// When it does not exist, lacks an output, or the call fails.
pub async fn by_arn(cloudformation: &Client, arn: &str) -> Result<QuiltStack, QuiltError> {
    arn_region(arn)?;
    let described = cloudformation
        .describe_stacks()
        .stack_name(arn)
        .send()
        .await
        .map_err(|e| {
            let message = crate::aws::message(&e);
            if message.contains("does not exist") {
                QuiltError::NotFound(arn.to_owned())
            } else {
                QuiltError::Aws {
                    call: "DescribeStacks",
                    message,
                }
            }
        })?;
    let stack = described
        .stacks()
        .first()
        .ok_or_else(|| QuiltError::NotFound(arn.to_owned()))?;
    read(stack)
}

/// The one stack whose `QuiltWebHost` output is `catalog` (a host, or a URL whose host is
/// compared), among every stack of the client's account and region.
///
/// # Errors
///
/// When none or several match, the match lacks an output, or a call fails.
pub async fn by_catalog(cloudformation: &Client, catalog: &str) -> Result<QuiltStack, QuiltError> {
    let host = catalog_host(catalog);
    let mut pages = cloudformation.describe_stacks().into_paginator().send();
    let mut found = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| QuiltError::Aws {
            call: "DescribeStacks",
            message: crate::aws::message(&e),
        })?;
        found.extend(
            page.stacks()
                .iter()
                .filter(|stack| {
                    output(stack, QUILT_WEB_HOST).is_some_and(|web| catalog_host(web) == host)
                })
                .cloned(),
        );
    }
    match found.as_slice() {
        [] => Err(QuiltError::NoCatalog(host)),
        [stack] => read(stack),
        several => Err(QuiltError::SeveralCatalogs {
            host,
            stacks: several
                .iter()
                .map(|s| s.stack_id().unwrap_or_default().to_owned())
                .collect(),
        }),
    }
}

/// `https://Quilt.Example.com/` → `quilt.example.com`.
fn catalog_host(catalog: &str) -> String {
    let trimmed = catalog.trim();
    let without_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    without_scheme
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn read(stack: &Stack) -> Result<QuiltStack, QuiltError> {
    let arn = stack.stack_id().unwrap_or_default().to_owned();
    let mut missing = Vec::new();
    let mut required = |name: &'static str| {
        output(stack, name).map(str::to_owned).unwrap_or_else(|| {
            missing.push(name);
            String::new()
        })
    };
    let packager_queue_url = required(PACKAGER_QUEUE_URL);
    let athena_database = required(USER_ATHENA_DATABASE);
    let web_host = required(QUILT_WEB_HOST);
    if !missing.is_empty() {
        return Err(QuiltError::MissingOutputs {
            stack: stack.stack_name().unwrap_or_default().to_owned(),
            missing,
        });
    }
    Ok(QuiltStack {
        region: arn_region(&arn)?.to_owned(),
        arn,
        packager_queue_url,
        athena_database,
        web_host,
        workgroup: output(stack, TABULATOR_WORKGROUP)
            .unwrap_or("primary")
            .to_owned(),
    })
}

/// The value of the output named exactly `name`, when it is not empty.
fn output<'a>(stack: &'a Stack, name: &str) -> Option<&'a str> {
    stack
        .outputs()
        .iter()
        .find(|o| o.output_key() == Some(name))
        .and_then(|o| o.output_value())
        .filter(|value| !value.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogs_compare_by_host() {
        assert_eq!(
            catalog_host("https://Quilt.Example.com/b/x"),
            "quilt.example.com"
        );
        assert_eq!(catalog_host(" quilt.example.com "), "quilt.example.com");
    }

    #[test]
    fn arns_give_their_region() {
        let arn = "arn:aws-us-gov:cloudformation:us-gov-west-1:123456789012:stack/quilt/1";
        assert_eq!(arn_region(arn).unwrap(), "us-gov-west-1");
        assert!(arn_region("arn:aws:s3:::bucket").is_err());
    }
}
