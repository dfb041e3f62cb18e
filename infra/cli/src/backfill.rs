//! `benchling-webhook backfill`: packages entries that already exist. The services only hear of
//! entries that change after the app is installed; this lists a project's, a folder's or a time
//! range's entries through the Benchling API and queues one export job each on the
//! environment's export queue, as a webhook would.
//!
//! - Versions already announced to Quilt (`published.json`) or exported and awaiting their
//!   package (a claim check) are skipped.
//! - Jobs are queued at `--rate` per second, well under Benchling's tenant budget (60 requests
//!   per 30 s), because each costs the exporter several Benchling calls and live webhooks share
//!   that budget.
//! - After each page the position is saved in the profile (`backfill.json`); a run that stops
//!   resumes from it. Jobs of a page queued twice carry the same deduplication id (entry and
//!   version), so the queue keeps one, and the exporter skips a version already published.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bw_benchling::{
    BenchlingClient, ClientOptions, CredentialSource, Credentials, Entry, EntryFilter,
};
use bw_config::BenchlingSecret;
use bw_contracts::bookkeeping::{self, PublishedRecord};
use bw_contracts::{EventType, ExportJob, Trigger};
use bw_queue::{OutgoingMessage, Queue as _, SqsQueue};
use bw_store::{Key, ObjectStore as _, S3Store};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{ArgGroup, Args};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Output;
use crate::profile::{DEFAULT_PROFILE, Profile, ProfileStore, write_atomic};
use crate::stack::EnvironmentOutputs;

/// Which entries, how fast.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("scope").required(true).multiple(true).args(["project", "folder", "since"])))]
pub struct BackfillArgs {
    /// The profile.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    profile: String,
    /// Entries of this project (`src_…`).
    #[arg(long)]
    project: Option<String>,
    /// Entries of this folder (`lib_…`).
    #[arg(long)]
    folder: Option<String>,
    /// Entries modified at or after this date or time (`2024-01-31` or RFC 3339).
    #[arg(long, value_parser = instant)]
    since: Option<DateTime<Utc>>,
    /// Entries modified before this date or time.
    #[arg(long, value_parser = instant)]
    until: Option<DateTime<Utc>>,
    /// Export jobs queued per second.
    #[arg(long, default_value_t = 0.25, value_parser = rate)]
    rate: f64,
    /// Count what would be queued; queue nothing.
    #[arg(long)]
    dry_run: bool,
    /// Start over, ignoring a saved position.
    #[arg(long)]
    restart: bool,
}

fn instant(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| format!("{text:?} is neither YYYY-MM-DD nor an RFC 3339 time"))
}

fn rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= 50.0 => Ok(rate),
        _ => Err(format!(
            "{text:?}: give jobs per second, above 0 and at most 50"
        )),
    }
}

/// The checkpoint's file in the profile's directory.
const CHECKPOINT: &str = "backfill.json";
/// The checkpoint's format.
const SCHEMA_VERSION: u32 = 1;
/// The event type backfilled jobs carry: no webhook caused them.
const BACKFILL_EVENT: &str = "benchling-webhook.backfill";

/// What a backfill selects; a saved position only resumes the same scope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Scope {
    project: Option<String>,
    folder: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

/// Where a backfill stands, saved after each page.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Checkpoint {
    schema_version: u32,
    scope: Scope,
    /// The next page to list; `None` before the first.
    next_token: Option<String>,
    pages: u64,
    listed: u64,
    queued: u64,
    skipped: u64,
    finished: bool,
}

/// The profile's Benchling credentials, read once from its secret.
struct FixedCredentials(Credentials);

impl CredentialSource for FixedCredentials {
    fn current(&self) -> Result<Credentials, String> {
        Ok(self.0.clone())
    }
}

/// Lists, skips, queues, saves; prints the counts.
///
/// # Errors
/// When the secret, the stack or Benchling cannot be read, or a job cannot be queued (the
/// position saved so far is kept).
pub async fn run(args: &BackfillArgs, output: Output) -> anyhow::Result<()> {
    let store = ProfileStore::from_env()?;
    let profile = store.load(&args.profile)?;
    let config = crate::aws::config(crate::aws::region_of(&profile)).await;
    let scope = Scope {
        project: args.project.clone(),
        folder: args.folder.clone(),
        since: args.since,
        until: args.until,
    };
    let path = store.file_path(&args.profile, CHECKPOINT)?;
    let mut checkpoint = match read_checkpoint(&path)? {
        Some(saved) if !args.restart && !args.dry_run && !saved.finished => {
            anyhow::ensure!(
                saved.scope == scope,
                "an unfinished backfill of another scope is saved in {} ({:?}): run it again to finish it, or give --restart",
                path.display(),
                saved.scope
            );
            eprintln!(
                "resuming after page {} ({} queued, {} skipped so far)",
                saved.pages, saved.queued, saved.skipped
            );
            saved
        }
        _ => Checkpoint {
            schema_version: SCHEMA_VERSION,
            scope: scope.clone(),
            next_token: None,
            pages: 0,
            listed: 0,
            queued: 0,
            skipped: 0,
            finished: false,
        },
    };
    let benchling = benchling(&config, &profile).await?;
    let bucket = S3Store::new(
        bw_store::s3_client(&config),
        profile.packages.bucket.clone(),
    );
    let export = if args.dry_run {
        None
    } else {
        let url = EnvironmentOutputs::read(&config, &profile)
            .await?
            .require(&bw_stack::service::QueueKind::Export.output_name(&profile.environment))?
            .clone();
        Some(SqsQueue::new(aws_sdk_sqs::Client::new(&config), url))
    };
    let filter = EntryFilter {
        project_id: scope.project.clone(),
        folder_id: scope.folder.clone(),
        modified_from: scope.since,
        modified_before: scope.until,
    };
    let progress = crate::ask::spinner("listing entries");
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let mut next_slot = tokio::time::Instant::now();
    loop {
        let page = benchling
            .list_entries(&filter, checkpoint.next_token.as_deref())
            .await
            .context("listing entries in Benchling")?;
        for entry in &page.entries {
            checkpoint.listed += 1;
            if has_version(&bucket, entry).await? {
                checkpoint.skipped += 1;
            } else {
                if let Some(export) = &export {
                    tokio::time::sleep_until(next_slot).await;
                    next_slot = tokio::time::Instant::now() + interval;
                    export
                        .send(OutgoingMessage::job(job(entry), None))
                        .await
                        .with_context(|| format!("queueing the export of {}", entry.id))?;
                }
                checkpoint.queued += 1;
            }
            progress.set_message(format!(
                "{} listed · {} {} · {} already packaged",
                checkpoint.listed,
                checkpoint.queued,
                if args.dry_run { "to queue" } else { "queued" },
                checkpoint.skipped
            ));
        }
        checkpoint.pages += 1;
        checkpoint.next_token = page.next_token;
        checkpoint.finished = checkpoint.next_token.is_none();
        if !args.dry_run {
            save_checkpoint(&path, &checkpoint)?;
        }
        if checkpoint.finished {
            break;
        }
    }
    progress.finish_and_clear();
    let verb = if args.dry_run {
        "would queue"
    } else {
        "queued"
    };
    match output {
        Output::Json => println!(
            "{:#}",
            json!({
                "listed": checkpoint.listed,
                "queued": checkpoint.queued,
                "skipped": checkpoint.skipped,
                "dryRun": args.dry_run,
            })
        ),
        Output::Text => println!(
            "{} entries listed: {verb} {} export(s), skipped {} already packaged or in progress",
            checkpoint.listed, checkpoint.queued, checkpoint.skipped
        ),
    }
    Ok(())
}

/// A Benchling client with the profile's secret, under a third of the tenant's budget for the
/// listing itself.
async fn benchling(
    config: &aws_config::SdkConfig,
    profile: &Profile,
) -> anyhow::Result<BenchlingClient> {
    let id = &profile.benchling.secret;
    let found = aws_sdk_secretsmanager::Client::new(config)
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("reading the secret {id}: {}", crate::aws::message(&e)))?;
    let secret = BenchlingSecret::from_json_with(
        found.secret_string().unwrap_or_default(),
        Some(&profile.packages.bucket),
    )
    .with_context(|| format!("the secret {id}"))?;
    let env = bw_config::Env::from_process();
    let mut options = ClientOptions::from_env(&env);
    env.finish(())?;
    options.rate_limit.requests = (options.rate_limit.requests / 3).max(1);
    let credentials = FixedCredentials(Credentials {
        tenant: secret.tenant,
        client_id: secret.client_id,
        client_secret: secret.client_secret,
    });
    Ok(BenchlingClient::new(Arc::new(credentials), options)?)
}

/// Whether this version of the entry is already announced, or exported and awaiting its
/// package.
async fn has_version(bucket: &S3Store, entry: &Entry) -> anyhow::Result<bool> {
    let published: Option<PublishedRecord> =
        bw_store::get_record(bucket, &Key::new(bookkeeping::published_key(&entry.id))?).await?;
    if published.is_some_and(|p| p.covers(&entry.modified_at)) {
        return Ok(true);
    }
    let claim = Key::new(bookkeeping::entry_snapshot_key(
        &entry.id,
        &entry.modified_at,
    ))?;
    Ok(bucket.head(&claim).await?.is_some())
}

/// The export job of this version: its deduplication id is the entry and version, so queueing
/// it twice stores it once.
fn job(entry: &Entry) -> ExportJob {
    ExportJob {
        entry_id: entry.id.clone(),
        canvas_id: None,
        base_url: None,
        trigger: Trigger {
            event_type: EventType::Other(BACKFILL_EVENT.to_owned()),
            event_id: None,
            webhook_id: None,
            occurred_at: entry.modified_at,
            user_id: None,
        },
    }
}

fn read_checkpoint(path: &std::path::Path) -> anyhow::Result<Option<Checkpoint>> {
    match std::fs::read(path) {
        Ok(text) => {
            let checkpoint: Checkpoint = serde_json::from_slice(&text)
                .with_context(|| format!("{} is not a backfill checkpoint", path.display()))?;
            anyhow::ensure!(
                checkpoint.schema_version == SCHEMA_VERSION,
                "{} has schemaVersion {}; this version reads {SCHEMA_VERSION}",
                path.display(),
                checkpoint.schema_version
            );
            Ok(Some(checkpoint))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn save_checkpoint(path: &std::path::Path, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(checkpoint)?;
    text.push(b'\n');
    write_atomic(path, &text).with_context(|| format!("saving {}", path.display()))
}
