//! `benchling-webhook template`: the stack's CloudFormation template on standard output.

use std::io::Write as _;

use anyhow::Context as _;
use bw_stack::{Cidr, EnvironmentName, Network, StackOptions};
use clap::Args;

use crate::Format;

/// What the template holds; the rest are parameters given at deploy time.
#[derive(Args, Debug)]
pub struct TemplateArgs {
    /// Environments in the stack, in order (each keeps its load-balancer port: add new ones at
    /// the end).
    #[arg(long, value_delimiter = ',', default_value = "prod")]
    environments: Vec<String>,
    /// An existing VPC to run in (with --private-subnet-ids); without it, a new VPC.
    #[arg(long, requires = "private_subnet_ids")]
    vpc_id: Option<String>,
    /// The existing VPC's private subnets, at least two in different zones.
    #[arg(long, value_delimiter = ',', requires = "vpc_id")]
    private_subnet_ids: Vec<String>,
    /// Only these addresses may call the webhook API (repeatable; default: anyone).
    #[arg(long = "allow-cidr")]
    allow_cidrs: Vec<String>,
    /// The template's format.
    #[arg(long, value_enum, default_value = "yaml")]
    format: Format,
}

impl TemplateArgs {
    fn options(&self) -> anyhow::Result<StackOptions> {
        let environments = self
            .environments
            .iter()
            .map(|e| e.trim().parse::<EnvironmentName>())
            .collect::<Result<Vec<_>, _>>()?;
        let network = match &self.vpc_id {
            Some(vpc_id) => Network::existing(vpc_id, &self.private_subnet_ids)?,
            None => Network::New,
        };
        let allow = self
            .allow_cidrs
            .iter()
            .flat_map(|c| c.split(','))
            .map(str::parse::<Cidr>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(StackOptions::new(environments, network, allow)?)
    }
}

/// Prints the template.
pub fn run(args: &TemplateArgs) -> anyhow::Result<()> {
    let options = args.options()?;
    let format = match args.format {
        Format::Yaml => bw_stack::Format::Yaml,
        Format::Json => bw_stack::Format::Json,
    };
    let text = bw_stack::render(&bw_stack::build(&options), format);
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("writing the template")
}
