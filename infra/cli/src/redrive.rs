//! `benchling-webhook redrive`: moves the jobs in an environment's dead-letter queues back to
//! their source queues, once an operator has fixed what made them fail.
//!
//! Each message is sent to the source queue, then deleted from the dead-letter queue, so a crash
//! in between leaves a copy in both, never none. On FIFO queues the copy keeps its group and gets
//! the deduplication id `redrive-<message id>`, stable for the message, so running again within
//! SQS's five-minute window does not queue it twice. The reason the worker recorded
//! (`failure_reason`) stays behind. At most the number counted first is moved: jobs that fail
//! again meanwhile are not moved round in a loop.

use std::time::Duration;

use anyhow::Context as _;
use bw_queue::{OutgoingMessage, Queue as _, SqsQueue};
use bw_stack::service::QueueKind;
use clap::{Args, ValueEnum};

use crate::Output;
use crate::profile::{DEFAULT_PROFILE, ProfileStore};
use crate::stack::EnvironmentOutputs;

/// The attribute the workers put on a dead-lettered job.
const FAILURE_REASON: &str = "failure_reason";

/// Which queues, and whether to ask first.
#[derive(Args, Debug)]
pub struct RedriveArgs {
    /// The profile.
    #[arg(long, default_value = DEFAULT_PROFILE)]
    profile: String,
    /// Only this queue (default: all four).
    #[arg(long, value_enum)]
    queue: Option<QueueArg>,
    /// Move without asking.
    #[arg(long)]
    yes: bool,
}

/// A queue of an environment.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum QueueArg {
    Export,
    Render,
    Canvas,
    PackageEvents,
}

impl From<QueueArg> for QueueKind {
    fn from(queue: QueueArg) -> Self {
        match queue {
            QueueArg::Export => Self::Export,
            QueueArg::Render => Self::Render,
            QueueArg::Canvas => Self::Canvas,
            QueueArg::PackageEvents => Self::PackageEvents,
        }
    }
}

/// One source queue and its dead-letter queue.
struct Lane {
    kind: QueueKind,
    source: SqsQueue,
    dead_letter: SqsQueue,
    waiting: u64,
}

/// Counts, asks, moves, reports.
///
/// # Errors
///
/// When the profile or the stack cannot be read, a queue cannot be reached, or the operator
/// declines (or cannot be asked without `--yes`).
pub async fn run(args: &RedriveArgs, output: Output) -> anyhow::Result<()> {
    let profile = ProfileStore::from_env()?.load(&args.profile)?;
    let config = crate::aws::config(crate::aws::region_of(&profile)).await;
    let outputs = EnvironmentOutputs::read(&config, &profile).await?;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let kinds: Vec<QueueKind> = match args.queue {
        Some(queue) => vec![queue.into()],
        None => QueueKind::ALL.to_vec(),
    };
    let mut lanes = Vec::new();
    for kind in kinds {
        let url = outputs.require(&kind.output_name(&profile.environment))?;
        let source = SqsQueue::new(sqs.clone(), url.clone());
        let dead_letter = source
            .dead_letter()
            .await?
            .with_context(|| format!("the {} queue has no dead-letter queue", kind.title()))?;
        let waiting = dead_letter.depth().await?;
        lanes.push(Lane {
            kind,
            source,
            dead_letter,
            waiting,
        });
    }

    let total: u64 = lanes.iter().map(|lane| lane.waiting).sum();
    if total > 0 && !args.yes {
        confirm(&lanes)?;
    }
    let mut moved = Vec::new();
    for lane in &lanes {
        let progress =
            crate::ask::spinner(format!("{}: moving {}", lane.kind.title(), lane.waiting));
        moved.push((lane.kind, lane.waiting, redrive(lane, &progress).await?));
        progress.finish_and_clear();
    }
    match output {
        Output::Json => {
            let queues: Vec<_> = moved
                .iter()
                .map(|(kind, waiting, moved)| {
                    serde_json::json!({"queue": kind.title(), "waiting": waiting, "moved": moved})
                })
                .collect();
            println!("{:#}", serde_json::json!({ "queues": queues }));
        }
        Output::Text => {
            for (kind, waiting, moved) in moved {
                println!("{}: {moved} of {waiting} moved back", kind.title());
            }
        }
    }
    Ok(())
}

/// Asks on the terminal; refuses without one.
fn confirm(lanes: &[Lane]) -> anyhow::Result<()> {
    let plan: Vec<String> = lanes
        .iter()
        .filter(|lane| lane.waiting > 0)
        .map(|lane| format!("{} {}", lane.waiting, lane.kind.title()))
        .collect();
    let question = format!("move {} job(s) back to their queues?", plan.join(", "));
    crate::ask::confirm(&question, "nothing moved")
}

/// Moves up to `lane.waiting` messages; returns how many moved.
async fn redrive(lane: &Lane, progress: &indicatif::ProgressBar) -> anyhow::Result<u64> {
    let mut moved = 0;
    while moved < lane.waiting {
        let batch = lane.dead_letter.receive(10, Duration::from_secs(1)).await?;
        if batch.is_empty() {
            break;
        }
        for message in batch {
            if moved == lane.waiting {
                // Counted after the count was taken: left where it is, visible again soon.
                break;
            }
            let mut attributes = message.attributes;
            attributes.remove(FAILURE_REASON);
            let copy = OutgoingMessage {
                body: message.body,
                group_id: message.group_id,
                dedup_id: Some(format!("redrive-{}", message.message_id)),
                attributes,
            };
            lane.source.send(copy).await?;
            lane.dead_letter.delete(&message.receipt).await?;
            moved += 1;
            progress.set_message(format!(
                "{}: {moved} of {} moved back",
                lane.kind.title(),
                lane.waiting
            ));
        }
    }
    Ok(moved)
}
