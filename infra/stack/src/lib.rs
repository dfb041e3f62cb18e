//! The AWS deployment as a CloudFormation template, built from typed Rust values: one stack
//! holding one or more environments (`prod`, `dev`, …), each with its own API stage, four ECS
//! services, queues, log group, secret and image tag, sharing the VPC, the ECS cluster, the API
//! and the network load balancer.
//!
//! ```
//! let template = bw_stack::build(&bw_stack::StackOptions::default());
//! assert!(template.resources.contains_key("ProdIngressService"));
//! ```

pub mod aws;
mod cluster;
mod entry;
mod environment;
mod network;
pub mod options;
pub mod params;
pub mod service;
pub mod template;
mod yaml;

pub use options::{Cidr, EnvironmentName, METADATA_KEY, Network, OptionsError, StackOptions};
pub use template::Template;
pub use yaml::to_yaml;

/// The description every emitted template carries.
const DESCRIPTION: &str = "Benchling webhook integration for Quilt: API Gateway, ECS Fargate services and SQS queues (emitted by benchling-webhook template)";

/// The template for `options`.
pub fn build(options: &StackOptions) -> Template {
    let mut template = Template::new(DESCRIPTION);
    params::add(&mut template, options);
    let placement = network::add(&mut template, options.network());
    cluster::add(&mut template, &placement);
    let deployment = entry::add(&mut template, &placement, options.allow());
    for (index, env) in options.environments().iter().enumerate() {
        let target_group =
            entry::add_environment(&mut template, env, index, &placement, &deployment);
        environment::add(&mut template, env, &placement, target_group);
    }
    template.output(
        "ClusterName",
        "The ECS cluster of every environment",
        template::Expr::r#ref(cluster::CLUSTER),
    );
    template
}

/// How a template is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Block-style YAML.
    Yaml,
    /// Pretty-printed JSON.
    Json,
}

/// `template` as text.
pub fn render(template: &Template, format: Format) -> String {
    let json = template.to_json();
    match format {
        Format::Yaml => yaml::to_yaml(&json),
        // A `Value` always serialises.
        Format::Json => serde_json::to_string_pretty(&json).expect("JSON serialises") + "\n",
    }
}
