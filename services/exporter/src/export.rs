//! Starting a Benchling export and waiting for its task to finish, polling with exponential
//! backoff up to a deadline.

use std::time::Duration;

use bw_benchling::{BenchlingClient, BenchlingError, TaskId, TaskStatus};
use bw_contracts::EntryId;
use url::Url;

/// Shortest wait between polls: a zero `first_poll` would otherwise never grow and spin.
const MIN_POLL: Duration = Duration::from_millis(1);

/// How to wait for an export task; `Default` gives the production values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    /// Wait before the first poll; each later wait doubles, up to `max_poll_interval`.
    pub first_poll: Duration,
    /// Longest wait between two polls.
    pub max_poll_interval: Duration,
    /// Longest time for the whole export, start and polls included.
    pub deadline: Duration,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            first_poll: Duration::from_secs(1),
            max_poll_interval: Duration::from_secs(15),
            deadline: Duration::from_secs(30 * 60),
        }
    }
}

/// Why an export did not produce a download URL.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Starting or polling failed, or the task ended in `FAILED`
    /// ([`BenchlingError::ExportFailed`], carrying Benchling's reason).
    #[error(transparent)]
    Benchling(#[from] BenchlingError),
    /// The export was still running when the deadline came.
    #[error("Benchling export of {entry} did not finish within {deadline:?}")]
    DeadlineExceeded {
        /// The entry being exported.
        entry: String,
        /// The deadline that passed.
        deadline: Duration,
    },
}

impl ExportError {
    /// Whether retrying the job cannot help: Benchling's permanent errors (4xx, a missing entry, a
    /// `FAILED` task). A deadline overrun is transient, since a later export may be quicker.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Benchling(error) => error.is_permanent(),
            Self::DeadlineExceeded { .. } => false,
        }
    }
}

/// Starts an export of `entry` and polls its task until it succeeds, returning the pre-signed
/// URL of the ZIP. Polls wait `first_poll`, then twice as long each time up to
/// `max_poll_interval`; the whole call gives up after `deadline`.
///
/// Cancel-safe: it only awaits, so dropping the future abandons the wait (the task keeps
/// running at Benchling, unobserved). Keeping the queue message invisible meanwhile is the
/// caller's job.
pub async fn run_export(
    client: &BenchlingClient,
    entry: &EntryId,
    options: &ExportOptions,
) -> Result<Url, ExportError> {
    // One deadline around start and polls: a slow start or slow retried polls count too.
    tokio::time::timeout(options.deadline, start_and_wait(client, entry, options))
        .await
        .unwrap_or_else(|_| {
            Err(ExportError::DeadlineExceeded {
                entry: entry.to_string(),
                deadline: options.deadline,
            })
        })
}

async fn start_and_wait(
    client: &BenchlingClient,
    entry: &EntryId,
    options: &ExportOptions,
) -> Result<Url, ExportError> {
    let task = client.start_export(entry).await?;
    let mut wait = options.first_poll.max(MIN_POLL);
    loop {
        tokio::time::sleep(wait).await;
        match client.get_task(&task).await? {
            TaskStatus::Running => wait = (wait * 2).min(options.max_poll_interval.max(MIN_POLL)),
            TaskStatus::Succeeded { download_url } => return Ok(download_url),
            TaskStatus::Failed { message } => return Err(failed(&task, message)),
        }
    }
}

fn failed(task: &TaskId, message: String) -> ExportError {
    ExportError::Benchling(BenchlingError::ExportFailed {
        task_id: task.to_string(),
        message,
    })
}
