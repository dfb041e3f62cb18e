//! `benchling-webhook`: the operator CLI. It keeps the operator's profiles, deploys an environment
//! of the stack through a change set, and runs the day-2 commands.
//!
//! Exit codes: 0 success, 1 failure (a profile that is missing or invalid, …), 2 usage.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod ask;
mod aws;
mod backfill;
mod changeset;
mod config;
mod deploy;
mod deployments;
mod destroy;
mod ecr;
mod health;
mod init;
mod logs;
mod manifest;
mod preflight;
mod profile;
mod quilt;
mod redrive;
mod secret;
mod stack;
mod status;
mod template;

/// Deploys and operates the Benchling webhook integration for Quilt.
#[derive(Parser)]
#[command(name = "benchling-webhook", version, about)]
struct Cli {
    /// How read commands print their result.
    #[arg(long, global = true, value_enum, default_value = "text")]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prints the CloudFormation template of the stack.
    Template(template::TemplateArgs),
    /// Writes a profile, after finding the Quilt stack.
    Init(Box<init::InitArgs>),
    /// Lists, shows and validates profiles.
    Config(config::ConfigArgs),
    /// Creates or updates the profile's environment in its stack, through a change set.
    Deploy(Box<deploy::DeployArgs>),
    /// Removes the profile's environment, or the stack when it is the last.
    Destroy(destroy::DestroyArgs),
    /// Shows the stack and its environments, or one entry's history.
    Status(status::StatusArgs),
    /// Prints the environment's service logs.
    Logs(logs::LogsArgs),
    /// Asks the environment's ingress whether it is ready.
    Health(health::HealthArgs),
    /// Creates or updates the Benchling secret in Secrets Manager.
    Secret(secret::SecretArgs),
    /// Queues exports of entries that already exist (a project, a folder, a time range).
    Backfill(Box<backfill::BackfillArgs>),
    /// Moves dead-lettered jobs back to their queues.
    Redrive(redrive::RedriveArgs),
    /// Writes the Benchling app manifest.
    Manifest(manifest::ManifestArgs),
}

/// How a read command prints its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    /// For people.
    Text,
    /// For scripts: one JSON document on standard output.
    Json,
}

/// How a template is printed.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    /// Block-style YAML.
    Yaml,
    /// JSON.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        // Bad template options are usage errors, which exit 2 like clap's own.
        Command::Template(args) => template::run(&args).map_err(|e| (e, 2)),
        Command::Init(args) => block_on(init::run(&args)).map_err(|e| (e, 1)),
        Command::Config(args) => config::run(&args, cli.output).map_err(|e| (e, 1)),
        Command::Deploy(args) => block_on(deploy::run(&args, cli.output)).map_err(|e| (e, 1)),
        Command::Destroy(args) => block_on(destroy::run(&args, cli.output)).map_err(|e| (e, 1)),
        Command::Status(args) => block_on(status::run(&args, cli.output)).map_err(|e| (e, 1)),
        Command::Logs(args) => block_on(logs::run(&args, cli.output)).map_err(|e| (e, 1)),
        Command::Health(args) => block_on(health::run(&args, cli.output)).map_err(|e| (e, 1)),
        Command::Secret(args) => block_on(secret::run(&args, cli.output)).map_err(|e| (e, 1)),
        Command::Backfill(args) => block_on(backfill::run(&args, cli.output)).map_err(|e| (e, 1)),
        Command::Redrive(args) => block_on(redrive::run(&args, cli.output)).map_err(|e| (e, 1)),
        Command::Manifest(args) => manifest::run(&args).map_err(|e| (e, 1)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((e, _)) if e.is::<UsageError>() => {
            eprintln!("benchling-webhook: {e:#}");
            ExitCode::from(2)
        }
        Err((e, code)) => {
            eprintln!("benchling-webhook: {e:#}");
            ExitCode::from(code)
        }
    }
}

/// A command used wrongly in a way clap cannot tell (a value neither given nor asked for):
/// exits 2 like clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Runs an AWS command on a runtime of its own.
fn block_on(command: impl Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(command)
}
