//! `benchling-webhook health`: asks the environment's ingress, through its public endpoint, for
//! `/health/ready` and `/config`, and gives a verdict: healthy, not ready (with each failing
//! check and what to do), or unreachable.

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde_json::{Value, json};

use crate::Output;
use crate::profile::{DEFAULT_PROFILE, ProfileStore};
use crate::stack::EnvironmentOutputs;

/// Whose health.
#[derive(Args, Debug)]
pub struct HealthArgs {
    /// The profile.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    profile: String,
    /// Ask this base URL instead of the stack's `<Env>WebhookUrl` (a local or compose ingress).
    #[arg(long)]
    url: Option<String>,
}

/// Each request's limit.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Asks, prints the verdict; fails unless healthy.
///
/// # Errors
/// When the endpoint cannot be found, or the environment is not healthy.
pub async fn run(args: &HealthArgs, output: Output) -> anyhow::Result<()> {
    let base = match &args.url {
        Some(url) => url.clone(),
        None => {
            let profile = ProfileStore::from_env()?.load(&args.profile)?;
            let config = crate::aws::config(crate::aws::region_of(&profile)).await;
            EnvironmentOutputs::read(&config, &profile)
                .await?
                .require(&format!("{}WebhookUrl", profile.environment.title()))?
                .clone()
        }
    };
    let base = base.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .context("building the HTTP client")?;
    let ready = get(&http, &format!("{base}/health/ready")).await;
    let config = get(&http, &format!("{base}/config")).await;
    let (verdict, problems) = match &ready {
        Err(e) => ("unreachable", vec![e.clone()]),
        Ok((200, _)) => ("healthy", Vec::new()),
        Ok((status, body)) => ("not ready", failing_checks(*status, body)),
    };
    match output {
        Output::Json => println!(
            "{:#}",
            json!({
                "url": base,
                "verdict": verdict,
                "problems": problems,
                "ready": ready.as_ref().ok().map(|(_, body)| body),
                "config": config.as_ref().ok().map(|(_, body)| body),
            })
        ),
        Output::Text => {
            println!("{base}: {verdict}");
            for problem in &problems {
                println!("  {problem}");
            }
            if let Ok((200, config)) = &config {
                println!("config: {config}");
            }
        }
    }
    anyhow::ensure!(verdict == "healthy", "{base} is {verdict}");
    Ok(())
}

/// The status and JSON body of `url`, or why there is none.
async fn get(http: &reqwest::Client, url: &str) -> Result<(u16, Value), String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| format!("{url}: {e}"))?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, body))
}

/// Each failing readiness check, with its error and the action the service suggests.
fn failing_checks(status: u16, body: &Value) -> Vec<String> {
    let Some(checks) = body["checks"].as_object() else {
        return vec![format!("/health/ready answered {status}: {body}")];
    };
    checks
        .iter()
        .filter(|(_, check)| check["ok"] != json!(true))
        .map(|(name, check)| {
            let mut line = format!("{name}: {}", text(&check["error"]));
            if let Some(action) = check["action"].as_str() {
                line.push_str(&format!(" ({action})"));
            }
            line
        })
        .collect()
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}
