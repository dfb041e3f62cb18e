//! `benchling-webhook logs`: the environment's service logs from CloudWatch Logs (the stack's
//! `<Env>LogGroupName`; each service's streams start with its name), since a time, optionally
//! followed.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use serde_json::json;

use crate::Output;
use crate::profile::{DEFAULT_PROFILE, ProfileStore};
use crate::stack::EnvironmentOutputs;

/// Whose logs, from when.
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The profile.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    profile: String,
    /// Only this service's logs.
    #[arg(long, value_enum)]
    service: Option<ServiceArg>,
    /// How far back: a number and a unit, `s`, `m`, `h` or `d` (`90s`, `15m`, `1h`, `2d`).
    #[arg(long, default_value = "1h", value_parser = since)]
    since: Duration,
    /// Keep printing new events until interrupted.
    #[arg(long)]
    follow: bool,
}

/// A service of an environment.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ServiceArg {
    Ingress,
    Exporter,
    Packager,
    Canvas,
}

impl ServiceArg {
    /// Its log streams' prefix, as the task definitions set it.
    fn stream_prefix(self) -> &'static str {
        let kind = match self {
            Self::Ingress => bw_stack::service::ServiceKind::Ingress,
            Self::Exporter => bw_stack::service::ServiceKind::Exporter,
            Self::Packager => bw_stack::service::ServiceKind::Packager,
            Self::Canvas => bw_stack::service::ServiceKind::Canvas,
        };
        kind.name()
    }
}

fn since(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit (s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit is s, m, h or d")),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

/// How often a follow asks for new events.
const POLL: Duration = Duration::from_secs(2);

/// Prints the events; with `--follow`, keeps polling.
///
/// # Errors
/// When the stack has no log group output, or CloudWatch Logs cannot be asked.
pub async fn run(args: &LogsArgs, output: Output) -> anyhow::Result<()> {
    let profile = ProfileStore::from_env()?.load(&args.profile)?;
    let config = crate::aws::config(crate::aws::region_of(&profile)).await;
    let outputs = EnvironmentOutputs::read(&config, &profile).await?;
    let group = outputs.require(&format!("{}LogGroupName", profile.environment.title()))?;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let since = chrono::Duration::from_std(args.since).unwrap_or(chrono::Duration::MAX);
    let mut start = Utc::now() - since;
    let mut seen = HashSet::new();
    let mut first = true;
    loop {
        let events = fetch(&logs, group, args.service, start).await?;
        let fresh: Vec<_> = events
            .into_iter()
            .filter(|e| seen.insert(e.id.clone()))
            .collect();
        if let Some(last) = fresh.iter().map(|e| e.at).max() {
            // Events of the same millisecond may still arrive: ask from it again, and let the
            // ids drop the repeats.
            start = last;
        }
        match output {
            // One document for a bounded read; a line per event when following.
            Output::Json if !args.follow => {
                let events: Vec<_> = fresh.iter().map(Event::to_json).collect();
                println!("{:#}", json!({"logGroup": group, "events": events}));
            }
            Output::Json => {
                for event in &fresh {
                    println!("{}", event.to_json());
                }
            }
            Output::Text => {
                if first && fresh.is_empty() && !args.follow {
                    eprintln!("no events in {group} since {start}");
                }
                for event in &fresh {
                    println!(
                        "{} {} {}",
                        event.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                        event.stream,
                        event.message.trim_end()
                    );
                }
            }
        }
        first = false;
        if !args.follow {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One log event.
struct Event {
    id: String,
    at: DateTime<Utc>,
    stream: String,
    message: String,
}

impl Event {
    fn to_json(&self) -> serde_json::Value {
        json!({"at": self.at, "stream": self.stream, "message": self.message})
    }
}

/// Every event in `group` from `start` (of one service's streams when given), oldest first.
async fn fetch(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    service: Option<ServiceArg>,
    start: DateTime<Utc>,
) -> anyhow::Result<Vec<Event>> {
    let mut events = Vec::new();
    let mut token = None;
    loop {
        let page = logs
            .filter_log_events()
            .log_group_name(group)
            .set_log_stream_name_prefix(service.map(|s| format!("{}/", s.stream_prefix())))
            .start_time(start.timestamp_millis())
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!("reading the log group {group}: {}", crate::aws::message(&e))
            })?;
        for event in page.events() {
            let at = event
                .timestamp()
                .and_then(DateTime::from_timestamp_millis)
                .unwrap_or(start);
            events.push(Event {
                id: event.event_id().unwrap_or_default().to_owned(),
                at,
                stream: event.log_stream_name().unwrap_or_default().to_owned(),
                message: event.message().unwrap_or_default().to_owned(),
            });
        }
        match page.next_token() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    // The prefix is asked of CloudWatch and checked again here, for servers that ignore it.
    if let Some(service) = service {
        let prefix = format!("{}/", service.stream_prefix());
        events.retain(|e| e.stream.starts_with(&prefix));
    }
    events.sort_by_key(|e| e.at);
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_since() {
        assert_eq!(since("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(since("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(since("1h"), Ok(Duration::from_secs(3_600)));
        assert_eq!(since("2d"), Ok(Duration::from_secs(172_800)));
        for bad in ["", "h", "10", "1w", "-1h", "1.5h"] {
            assert!(since(bad).is_err(), "{bad}");
        }
    }
}
