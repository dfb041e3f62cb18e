//! One export job, end to end: skip an entry version already published, otherwise export the
//! entry from Benchling, validate and publish its archive into the package prefix, prune what
//! the entry no longer has, store the claim checks and hand a render job to the packager.
//!
//! "Update Package" on a version already announced checks Quilt's registry: when the package's
//! latest revision holds the version, the canvas says it is up to date; when it does not (the
//! packager failed or the message was lost) and
//! [`REANNOUNCE_AFTER`](crate::inflight::REANNOUNCE_AFTER) has passed, the version is exported
//! and announced again.
//!
//! A new version waits for its turn: while another version of the entry is on its way to
//! Quilt's registry, its files stay out of the package prefix (see [`inflight`]).
//!
//! # Idempotency
//!
//! Every key is derived from the entry and its version, so a redelivered job (after a crash,
//! at any step) rewrites the same objects and sends a render job with the same deduplication
//! id. Nothing outside the package prefix is written before the archive has been validated and
//! uploaded, so a hostile archive leaves no bookkeeping behind either.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bw_benchling::{BenchlingClient, BenchlingError, Entry};
use bw_config::SecretWatch;
use bw_contracts::bookkeeping::{self, PublishedRecord};
use bw_contracts::{
    CanvasAction, CanvasJob, EntryId, ExportJob, FileList, Job, PackageFile, RenderJob,
};
use bw_metrics::{Counter, Family as _};
use bw_queue::{Queue, QueueError};
use bw_store::{Buckets, Key, ObjectStore, Prefix, PutOptions, StoreError};
use bw_worker::{Failure, Handler, JobContext};
use bytes::Bytes;
use tracing::Instrument as _;

use crate::Queues;
use crate::archive::{Archive, ArchiveError, ArchiveLimits};
use crate::download::{Download, DownloadError, DownloadLimits, start_download};
use crate::export::{ExportError, ExportOptions, run_export};
use crate::inflight::{self, Registry};
use crate::publish::{
    PACKAGER_FILES, UploadError, UploadOptions, joined, prune_stale, upload_members,
};

/// A file list up to this size travels in the render message; a longer one is stored. SQS
/// messages may hold 256 KiB; this leaves room for the rest of the job.
const INLINE_FILE_LIST_BYTES: usize = 64 * 1024;

/// Bytes of exports this process finished: `archive` the ZIPs downloaded from Benchling,
/// `stored` the members written to the package (their inflated sizes).
static EXPORT_BYTES: Counter = Counter::new(
    "bw_export_bytes_total",
    "Bytes of finished exports: archive (downloaded ZIP) and stored (members written).",
    &["stage"],
);

/// Files written to packages by finished exports.
static EXPORT_FILES: Counter = Counter::new(
    "bw_export_files_total",
    "Files written to packages by finished exports.",
    &[],
);

/// Exports that waited for another version of their entry to reach Quilt's registry before
/// writing its package prefix, by what they waited for.
static EXPORT_WAITS: Counter = Counter::new(
    "bw_export_waits_total",
    "Exports that waited for another version of the entry to be packaged, by cause (rendering, building).",
    &["cause"],
);

/// The first pause while another version of the entry is in flight; pauses double from there.
const FIRST_TURN_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// The longest pause while another version of the entry is in flight.
const MAX_TURN_POLL: std::time::Duration = std::time::Duration::from_secs(10);

/// Registers the exporter's own families, so a scrape shows them before the first export.
pub fn register_metrics() {
    EXPORT_BYTES.register();
    EXPORT_FILES.register();
    EXPORT_WAITS.register();
}

/// How exports run; built from the configuration.
#[derive(Clone, Debug)]
pub struct ExportSettings {
    /// Waiting for Benchling's export task.
    pub export: ExportOptions,
    /// Limits on the download.
    pub download: DownloadLimits,
    /// Limits on the archive.
    pub archive: ArchiveLimits,
    /// Members in flight at once.
    pub upload: UploadOptions,
    /// Where each job's download is spooled.
    pub temp_dir: PathBuf,
}

/// Why an export job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The Benchling secret has not loaded (the worker waits for it, so this is a rotation gone
    /// wrong).
    #[error("the Benchling secret is not available: {0}")]
    Secret(String),
    /// The entry could not be read.
    #[error("reading entry {entry}: {source}")]
    Entry {
        /// The entry.
        entry: String,
        /// What Benchling said.
        source: BenchlingError,
    },
    /// The package prefix or bucket is not valid.
    #[error("the package location is invalid: {0}")]
    Location(#[source] StoreError),
    /// The entry's display id cannot be the last segment of a Quilt package name.
    #[error(
        "display id {0:?} cannot name a Quilt package: only letters, digits, `_` and `-` are allowed"
    )]
    DisplayId(String),
    /// Benchling's export failed or timed out.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The ZIP could not be downloaded.
    #[error(transparent)]
    Download(#[from] DownloadError),
    /// The ZIP was refused.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Publishing into the prefix failed.
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// Writing or reading a bookkeeping object failed.
    #[error("bookkeeping: {0}")]
    Bookkeeping(#[source] StoreError),
    /// A follow-up job could not be sent.
    #[error("sending the {kind} job: {source}")]
    Queue {
        /// The job kind.
        kind: &'static str,
        /// What the queue said.
        source: QueueError,
    },
    /// The job's temporary directory could not be made.
    #[error("creating a temporary directory: {0}")]
    TempDir(#[source] io::Error),
}

impl JobError {
    /// Whether redelivery cannot help: Benchling 4xx and missing entries, a FAILED export, a
    /// hostile or oversized archive, an invalid package location.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Entry { source, .. } => source.is_permanent(),
            Self::Location(_) | Self::DisplayId(_) => true,
            Self::Export(e) => e.is_permanent(),
            Self::Download(e) => e.is_permanent(),
            Self::Archive(e) => e.is_permanent(),
            Self::Upload(e) => e.is_permanent(),
            Self::Bookkeeping(e) => !e.is_transient(),
            Self::Secret(_) | Self::Queue { .. } | Self::TempDir(_) => false,
        }
    }
}

/// Whether a job exports.
enum Decision {
    /// No: it is done.
    Done(Outcome),
    /// Yes, repeating the announcement made at `reannounce` if set.
    Export {
        reannounce: Option<chrono::DateTime<chrono::Utc>>,
    },
}

/// What a job did.
enum Outcome {
    /// The version was already published.
    Skipped,
    /// The version was already published and Quilt's registry holds it.
    UpToDate,
    /// Files were written and a render job sent.
    Exported {
        files: usize,
        bytes: u64,
        pruned: usize,
    },
}

/// The export worker's job handler.
pub struct ExportHandler {
    /// The Benchling API.
    pub client: BenchlingClient,
    /// The secret (bucket and package prefix).
    pub secret: SecretWatch,
    /// Where buckets live.
    pub buckets: Buckets,
    /// Downloads exports; must not follow redirects.
    pub http: reqwest::Client,
    /// The queues.
    pub queues: Queues,
    /// Limits and tuning.
    pub settings: ExportSettings,
}

impl ExportHandler {
    async fn run(&self, job: &ExportJob) -> Result<Outcome, JobError> {
        let secret = self.secret.loaded().map_err(JobError::Secret)?;
        let store = self
            .buckets
            .open(&secret.user_bucket)
            .map_err(JobError::Location)?;
        let mut entry = self.entry(job).await?;
        let record = self.published(store.as_ref(), &entry.id).await?;
        let mut decision = self
            .decide(store.as_ref(), job, &entry, record.as_ref())
            .await?;
        if matches!(decision, Decision::Export { reannounce: None })
            && self.wait_turn(store.as_ref(), &entry, record).await?
        {
            // While this job waited the entry may have changed, and an earlier job may have
            // published this very version.
            entry = self.entry(job).await?;
            let record = self.published(store.as_ref(), &entry.id).await?;
            decision = self
                .decide(store.as_ref(), job, &entry, record.as_ref())
                .await?;
        }
        let reannounce = match decision {
            Decision::Done(outcome) => return Ok(outcome),
            Decision::Export { reannounce } => reannounce,
        };

        let prefix = Prefix::new(format!("{}/{}", secret.pkg_prefix, entry.display_id))
            .map_err(JobError::Location)?;
        let url = run_export(&self.client, &entry.id, &self.settings.export).await?;
        let work = tempfile::Builder::new()
            .prefix("bw-export-")
            .tempdir_in(&self.settings.temp_dir)
            .map_err(JobError::TempDir)?;
        let zip = work.path().join("export.zip");
        let download = start_download(&self.http, &url, &zip, &self.settings.download).await?;
        let (file, limits) = (download.file(), self.settings.archive);
        let read = tokio::task::spawn_blocking(move || Archive::read(file, limits)).await;
        let archive = match joined(read).and_then(|read| Ok(read?)) {
            Ok(archive) => archive,
            Err(error) => return Err(blame(download, error).await),
        };
        let uploads = &self.settings.upload;
        let written = match upload_members(archive, Arc::clone(&store), &prefix, uploads).await {
            Ok(written) => written,
            Err(error) => return Err(blame(download, error).await),
        };
        let bytes = download.finish().await?;
        let pruned = prune_stale(store.as_ref(), &prefix, &written, &PACKAGER_FILES).await?;
        drop(work);

        let files: Vec<PackageFile> = written
            .iter()
            .map(|file| PackageFile {
                name: file.name.clone(),
                key: file.key.to_string(),
                size: file.size,
            })
            .collect();
        let render = RenderJob {
            entry_id: entry.id.clone(),
            display_id: entry.display_id.clone(),
            modified_at: entry.modified_at,
            bucket: secret.user_bucket.clone(),
            package_prefix: prefix.with_slash().trim_end_matches('/').to_owned(),
            entry_key: self.store_snapshot(store.as_ref(), &entry).await?,
            files: self.file_list(store.as_ref(), &entry, files).await?,
            canvas_id: job.canvas_id.clone(),
            base_url: job.base_url.clone(),
            trigger: job.trigger.clone(),
            reannounce,
        };
        send(self.queues.render.as_ref(), render).await?;
        EXPORT_BYTES.add(&["archive"], bytes);
        EXPORT_BYTES.add(&["stored"], written.iter().map(|file| file.size).sum());
        EXPORT_FILES.add(&[], written.len() as u64);
        Ok(Outcome::Exported {
            files: written.len(),
            bytes,
            pruned: pruned.len(),
        })
    }

    /// The entry as Benchling has it now, if its display id can name a package.
    async fn entry(&self, job: &ExportJob) -> Result<Entry, JobError> {
        let entry = self
            .client
            .get_entry(&job.entry_id)
            .await
            .map_err(|source| JobError::Entry {
                entry: job.entry_id.to_string(),
                source,
            })?;
        if !names_a_package(&entry.display_id) {
            let shown: String = entry.display_id.chars().take(64).collect();
            return Err(JobError::DisplayId(shown));
        }
        let span = tracing::Span::current();
        span.record("display_id", entry.display_id.as_str());
        span.record("version", bookkeeping::version_tag(&entry.modified_at));
        Ok(entry)
    }

    /// Whether the job has anything to export: not when the entry version is already
    /// published (`record` is the entry's published record), unless the announcement never
    /// reached Quilt's registry.
    async fn decide(
        &self,
        store: &dyn ObjectStore,
        job: &ExportJob,
        entry: &Entry,
        record: Option<&PublishedRecord>,
    ) -> Result<Decision, JobError> {
        let Some(record) = record.filter(|record| record.covers(&entry.modified_at)) else {
            return Ok(Decision::Export { reannounce: None });
        };
        // Only a user asking from the canvas gets the registry checked: webhooks about a
        // version already announced are duplicates.
        if job.canvas_id.is_none() {
            return Ok(Decision::Done(Outcome::Skipped));
        }
        let published_at = record.published_at;
        Ok(match inflight::registry_state(store, record).await? {
            Registry::Holds(top_hash) => {
                let told = CanvasAction::UpToDate {
                    published_at,
                    top_hash,
                };
                self.send_canvas(job, told).await?;
                Decision::Done(Outcome::UpToDate)
            }
            Registry::Building => {
                self.send_canvas(job, CanvasAction::Published { published_at })
                    .await?;
                Decision::Done(Outcome::Skipped)
            }
            Registry::Lacks => {
                tracing::warn!(
                    %published_at,
                    "the announced version is not in Quilt's registry; announcing it again"
                );
                Decision::Export {
                    reannounce: Some(published_at),
                }
            }
        })
    }

    /// Waits while another version of the entry is in flight (see [`inflight`]), so this
    /// version's files never reach a prefix Quilt is about to build another announcement
    /// from. `record` is the entry's published record as last read. Returns whether it waited.
    async fn wait_turn(
        &self,
        store: &dyn ObjectStore,
        entry: &Entry,
        mut record: Option<PublishedRecord>,
    ) -> Result<bool, JobError> {
        let mut pause = FIRST_TURN_POLL;
        let mut waited = false;
        loop {
            let Some(other) =
                inflight::in_flight(store, &entry.id, &entry.modified_at, record.as_ref()).await?
            else {
                return Ok(waited);
            };
            if !waited {
                tracing::info!(%other, "waiting to write the package prefix");
                EXPORT_WAITS.inc(&[other.cause()]);
                waited = true;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_TURN_POLL);
            record = self.published(store, &entry.id).await?;
        }
    }

    /// The entry's published record: the last version announced. An unreadable record is
    /// logged and ignored: exporting again is safe, skipping wrongly is not.
    async fn published(
        &self,
        store: &dyn ObjectStore,
        entry: &EntryId,
    ) -> Result<Option<PublishedRecord>, JobError> {
        let key = bookkeeping_key(bookkeeping::published_key(entry))?;
        match bw_store::get_record::<PublishedRecord>(store, &key).await {
            Ok(record) => Ok(record),
            Err(e) if e.is_transient() => Err(JobError::Bookkeeping(e)),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an unreadable published record");
                Ok(None)
            }
        }
    }

    /// Stores the raw entry for the packager and returns its key.
    async fn store_snapshot(
        &self,
        store: &dyn ObjectStore,
        entry: &Entry,
    ) -> Result<String, JobError> {
        let key = bookkeeping_key(bookkeeping::entry_snapshot_key(
            &entry.id,
            &entry.modified_at,
        ))?;
        let body = serde_json::to_vec(&entry.raw).expect("JSON values serialize");
        store
            .put_bytes(&key, Bytes::from(body), PutOptions::for_name("entry.json"))
            .await
            .map_err(JobError::Bookkeeping)?;
        Ok(key.to_string())
    }

    /// The files for the render job: inline when small, otherwise stored beside the snapshot.
    async fn file_list(
        &self,
        store: &dyn ObjectStore,
        entry: &Entry,
        files: Vec<PackageFile>,
    ) -> Result<FileList, JobError> {
        let body = serde_json::to_vec(&files).expect("file lists serialize");
        if body.len() <= INLINE_FILE_LIST_BYTES {
            return Ok(FileList::Inline { files });
        }
        let key = bookkeeping_key(bookkeeping::file_list_key(&entry.id, &entry.modified_at))?;
        store
            .put_bytes(&key, Bytes::from(body), PutOptions::for_name("files.json"))
            .await
            .map_err(JobError::Bookkeeping)?;
        Ok(FileList::Stored {
            key: key.to_string(),
            count: files.len(),
        })
    }

    async fn send_canvas(&self, job: &ExportJob, action: CanvasAction) -> Result<(), JobError> {
        let canvas = CanvasJob::follow_up(
            job.entry_id.clone(),
            job.canvas_id.clone(),
            action,
            &job.trigger,
            chrono::Utc::now(),
        );
        send(self.queues.canvas.as_ref(), canvas).await
    }
}

/// Why reading the archive failed: the download's error when the download failed underneath
/// (the reader only saw missing bytes), the reader's otherwise. Stops the download either way.
async fn blame(download: Download, error: UploadError) -> JobError {
    if download.has_failed()
        && let Err(failed) = download.finish().await
    {
        return failed.into();
    }
    error.into()
}

/// Whether `display_id` can end a Quilt package name: Quilt accepts `[\w-]+` per segment, so
/// quotes, spaces, slashes and dots never reach a package name, a key or a query.
fn names_a_package(display_id: &str) -> bool {
    !display_id.is_empty()
        && display_id
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

fn bookkeeping_key(key: String) -> Result<Key, JobError> {
    Key::new(key).map_err(JobError::Bookkeeping)
}

async fn send<J: Job>(queue: &dyn Queue, job: J) -> Result<(), JobError> {
    bw_worker::send_job(queue, job)
        .await
        .map_err(|source| JobError::Queue {
            kind: J::KIND,
            source,
        })
}

#[async_trait]
impl Handler for ExportHandler {
    type Job = ExportJob;

    async fn handle(&self, job: &ExportJob, _context: &JobContext) -> Result<String, Failure> {
        let span = tracing::info_span!(
            "export",
            entry_id = %job.entry_id,
            display_id = tracing::field::Empty,
            version = tracing::field::Empty,
        );
        let result = self.run(job).instrument(span).await;
        let detail = match result {
            Ok(Outcome::Skipped) => "entry version already published; export skipped".to_owned(),
            Ok(Outcome::UpToDate) => {
                "entry version already published and in Quilt's registry; canvas told".to_owned()
            }
            Ok(Outcome::Exported {
                files,
                bytes,
                pruned,
            }) => format!(
                "exported {files} file(s) from a {bytes}-byte archive, pruned {pruned}; render job sent"
            ),
            Err(e) => return Err(Failure::of(&e, e.is_permanent())),
        };
        Ok(detail)
    }

    /// Shows the failure on the entry's canvas, so the user is not left with "Updating…".
    async fn dead_lettered(&self, job: Option<&ExportJob>, reason: &str) {
        let Some(job) = job else { return };
        if let Err(e) = self
            .send_canvas(job, CanvasAction::export_failed(reason))
            .await
        {
            tracing::error!(error = %e, entry_id = %job.entry_id, "could not report the failed export to the canvas");
        }
    }
}
