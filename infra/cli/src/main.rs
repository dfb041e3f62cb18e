//! `benchling-webhook`: the operator CLI. Today it prints the CloudFormation template; deploying
//! and day-2 commands follow.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod template;

/// Deploys and operates the Benchling webhook integration for Quilt.
#[derive(Parser)]
#[command(name = "benchling-webhook", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prints the CloudFormation template of the stack.
    Template(template::TemplateArgs),
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
        Command::Template(args) => template::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchling-webhook: {e:#}");
            // Usage errors exit 2 like clap's own.
            ExitCode::from(2)
        }
    }
}
