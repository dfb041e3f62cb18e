//! `benchling-webhook config list|show|validate`: the operator's profiles as this CLI reads them.

use clap::{Args, Subcommand};

use crate::Output;
use crate::profile::{DEFAULT_PROFILE, ProfileStore};

/// What to do with the profiles.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Lists the profiles, each with its state (valid, or why not).
    List,
    /// Shows one profile, its bases merged in, with account ids masked.
    Show(ProfileArg),
    /// Checks one profile; exits 1 naming the first bad field.
    Validate(ProfileArg),
}

#[derive(Args, Debug)]
struct ProfileArg {
    /// The profile.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    profile: String,
}

/// Runs the command.
///
/// # Errors
///
/// When a profile cannot be read or is invalid.
pub fn run(args: &ConfigArgs, output: Output) -> anyhow::Result<()> {
    let store = ProfileStore::from_env()?;
    match &args.command {
        ConfigCommand::List => list(&store, output),
        ConfigCommand::Show(arg) => {
            let profile = store.load(&arg.profile)?;
            match output {
                Output::Json => println!("{:#}", profile.masked_json()),
                Output::Text => println!("{profile}"),
            }
            Ok(())
        }
        ConfigCommand::Validate(arg) => {
            let profile = store.load(&arg.profile)?;
            match output {
                Output::Json => println!(
                    "{:#}",
                    serde_json::json!({"profile": arg.profile, "valid": true})
                ),
                Output::Text => println!(
                    "profile {:?} is valid: environment {} of stack {}",
                    arg.profile,
                    profile.environment.as_str(),
                    profile.stack.name
                ),
            }
            Ok(())
        }
    }
}

fn list(store: &ProfileStore, output: Output) -> anyhow::Result<()> {
    let rows: Vec<(String, Result<String, String>)> = store
        .list()?
        .into_iter()
        .map(|name| {
            let state = store
                .load(&name)
                .map(|p| format!("{} of {}", p.environment.as_str(), p.stack.name))
                .map_err(|e| e.to_string());
            (name, state)
        })
        .collect();
    match output {
        Output::Json => {
            let profiles: Vec<_> = rows
                .iter()
                .map(|(name, state)| match state {
                    Ok(_) => serde_json::json!({"name": name, "valid": true}),
                    Err(error) => serde_json::json!({"name": name, "valid": false, "error": error}),
                })
                .collect();
            println!(
                "{:#}",
                serde_json::json!({"directory": store.root(), "profiles": profiles})
            );
        }
        Output::Text if rows.is_empty() => {
            println!(
                "no profiles in {} (benchling-webhook init creates one)",
                store.root().display()
            );
        }
        Output::Text => {
            for (name, state) in rows {
                match state {
                    Ok(summary) => println!("{name}: {summary}"),
                    Err(error) => println!("{name}: INVALID: {error}"),
                }
            }
        }
    }
    Ok(())
}
