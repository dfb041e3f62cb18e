//! `benchling-webhook secret sync`: creates or updates the profile's Benchling secret in Secrets
//! Manager with the keys the services read (docs/configuration.md, "The Benchling secret").
//!
//! The client secret comes from `BENCHLING_CLIENT_SECRET` or standard input, never from a flag
//! (flags land in shell history) nor from disk. Without one, an existing secret keeps its own.
//! Keys the profile does not own (`enable_webhook_verification`, `workflow`) are kept. The result
//! is checked with the services' own parser before it is written, and no value is ever printed.

use std::io::Read as _;

use anyhow::Context as _;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata as _;
use bw_config::BenchlingSecret;
use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use crate::Output;
use crate::profile::{DEFAULT_PROFILE, Profile, ProfileStore};

/// The environment variable that may carry the client secret.
pub const CLIENT_SECRET_VAR: &str = "BENCHLING_CLIENT_SECRET";

/// What to do with the secret.
#[derive(Args, Debug)]
pub struct SecretArgs {
    #[command(subcommand)]
    command: SecretCommand,
}

#[derive(Subcommand, Debug)]
enum SecretCommand {
    /// Creates or updates the profile's secret from the profile (and the client secret).
    Sync(SyncArgs),
}

#[derive(Args, Debug)]
struct SyncArgs {
    /// The profile.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    profile: String,
    /// Read the client secret from standard input (one line) instead of BENCHLING_CLIENT_SECRET.
    #[arg(long)]
    client_secret_stdin: bool,
}

/// Runs the command.
///
/// # Errors
///
/// When the profile is unusable, no client secret is given for a new secret, the result would
/// not be a valid secret, or Secrets Manager refuses.
pub async fn run(args: &SecretArgs, output: Output) -> anyhow::Result<()> {
    let SecretCommand::Sync(sync) = &args.command;
    let profile = ProfileStore::from_env()?.load(&sync.profile)?;
    let client_secret = client_secret(sync.client_secret_stdin)?;
    let config = crate::aws::config(crate::aws::region_of(&profile)).await;
    let client = Client::new(&config);
    let id = &profile.benchling.secret;

    let existing = current(&client, id).await?;
    if let Some(old) = existing
        .as_ref()
        .and_then(|keys| keys.keys().find(|k| k.starts_with("BENCHLING_")))
    {
        anyhow::bail!(
            "the secret {id} is in the Python system's uppercase form ({old}, …), which the services still read; \
             secret sync writes the snake_case form and will not mix the two: keep that secret as it is, or name a new one in the profile"
        );
    }
    let mut keys = existing.clone().unwrap_or_default();
    apply(&profile, &mut keys);
    match client_secret {
        Some(value) => {
            keys.insert("client_secret".into(), Value::String(value));
        }
        None if keys.contains_key("client_secret") => {}
        None => anyhow::bail!(
            "the secret {id} holds no client secret yet: give the app's client secret in {CLIENT_SECRET_VAR} or with --client-secret-stdin"
        ),
    }
    let text = Value::Object(keys.clone()).to_string();
    BenchlingSecret::from_json(&text)
        .with_context(|| format!("the secret {id} would not be usable by the services"))?;

    let (action, arn) = if existing.is_some() {
        let put = client
            .put_secret_value()
            .secret_id(id)
            .secret_string(&text)
            .send()
            .await
            .map_err(|e| aws_error("PutSecretValue", id, &e))?;
        ("updated", put.arn().unwrap_or(id).to_owned())
    } else {
        let created = client
            .create_secret()
            .name(id)
            .description("Benchling app credentials for the Benchling webhook (benchling-webhook secret sync)")
            .secret_string(&text)
            .send()
            .await
            .map_err(|e| aws_error("CreateSecret", id, &e))?;
        ("created", created.arn().unwrap_or(id).to_owned())
    };
    let shown = bw_config::mask::mask_arn(&arn);
    let names: Vec<&String> = keys.keys().collect();
    match output {
        Output::Json => println!(
            "{:#}",
            serde_json::json!({"secret": shown, "action": action, "keys": names})
        ),
        Output::Text => {
            let names: Vec<&str> = names.iter().map(|k| k.as_str()).collect();
            println!("{action} {shown} (keys: {})", names.join(", "));
        }
    }
    Ok(())
}

/// The profile's keys, over whatever the secret held.
fn apply(profile: &Profile, keys: &mut Map<String, Value>) {
    let owned = [
        ("tenant", &profile.benchling.tenant),
        ("client_id", &profile.benchling.client_id),
        ("app_definition_id", &profile.benchling.app_definition_id),
        ("user_bucket", &profile.packages.bucket),
        ("pkg_prefix", &profile.packages.prefix),
        ("pkg_key", &profile.packages.metadata_key),
        ("log_level", &profile.log_level),
    ];
    for (key, value) in owned {
        keys.insert(key.to_owned(), Value::String(value.clone()));
    }
}

/// The client secret from standard input or the environment, when given.
fn client_secret(from_stdin: bool) -> anyhow::Result<Option<String>> {
    let value = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .take(64 * 1024)
            .read_to_string(&mut line)
            .context("reading the client secret from standard input")?;
        Some(line)
    } else {
        std::env::var(CLIENT_SECRET_VAR).ok()
    };
    Ok(value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()))
}

/// The secret's JSON object, or `None` when the secret does not exist.
async fn current(client: &Client, id: &str) -> anyhow::Result<Option<Map<String, Value>>> {
    match client.get_secret_value().secret_id(id).send().await {
        Ok(found) => {
            let text = found.secret_string().unwrap_or("{}");
            match serde_json::from_str(text) {
                Ok(Value::Object(keys)) => Ok(Some(keys)),
                _ => anyhow::bail!(
                    "the secret {id} exists but is not a JSON object: fix or delete it first"
                ),
            }
        }
        Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
        Err(e) => Err(aws_error("GetSecretValue", id, &e)),
    }
}

fn aws_error<E>(
    call: &str,
    id: &str,
    error: &aws_sdk_secretsmanager::error::SdkError<E>,
) -> anyhow::Error
where
    E: aws_sdk_secretsmanager::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    anyhow::anyhow!(
        "Secrets Manager {call} on {id} failed: {}",
        crate::aws::message(error)
    )
}
