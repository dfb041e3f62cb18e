//! One export job, end to end: skip an entry version already published, otherwise export the
//! entry from Benchling, validate and publish its archive into the package prefix, prune what
//! the entry no longer has, store the claim checks and hand a render job to the packager.
//!
//! "Update Package" on a version already announced checks Quilt's registry: when the package's
//! latest revision holds the version, the canvas says it is up to date; when it does not (the
//! packager failed or the message was lost) and [`REANNOUNCE_AFTER`] has passed, the version is
//! exported and announced again.
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
use bw_contracts::{CanvasAction, CanvasJob, ExportJob, FileList, Job, PackageFile, RenderJob};
use bw_metrics::{Counter, Family as _};
use bw_queue::{Queue, QueueError};
use bw_registry::RegistryError;
use bw_store::{Buckets, Key, ObjectStore, Prefix, PutOptions, StoreError};
use bw_worker::{Failure, Handler, JobContext};
use bytes::Bytes;
use tracing::Instrument as _;

use crate::Queues;
use crate::archive::{Archive, ArchiveError, ArchiveLimits};
use crate::download::{Download, DownloadError, DownloadLimits, start_download};
use crate::export::{ExportError, ExportOptions, run_export};
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

/// Registers the exporter's own families, so a scrape shows them before the first export.
pub fn register_metrics() {
    EXPORT_BYTES.register();
    EXPORT_FILES.register();
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
            Self::Location(_) => true,
            Self::Export(e) => e.is_permanent(),
            Self::Download(e) => e.is_permanent(),
            Self::Archive(e) => e.is_permanent(),
            Self::Upload(e) => e.is_permanent(),
            Self::Bookkeeping(e) => !e.is_transient(),
            Self::Secret(_) | Self::Queue { .. } | Self::TempDir(_) => false,
        }
    }
}

/// How long Quilt's packager is given to build an announced version before "Update Package"
/// announces it again. Its builds take seconds to a few minutes; announcing while one runs
/// would make a second revision.
pub const REANNOUNCE_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// Whether the registry holds an announced version.
enum Registry {
    /// The package's latest revision (this top hash) holds it.
    Holds(String),
    /// Not yet, but Quilt may still be building it.
    Building,
    /// No, and the announcement is too old to be still building.
    Lacks,
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
        let entry = self
            .client
            .get_entry(&job.entry_id)
            .await
            .map_err(|source| JobError::Entry {
                entry: job.entry_id.to_string(),
                source,
            })?;
        let span = tracing::Span::current();
        span.record("display_id", entry.display_id.as_str());
        span.record("version", bookkeeping::version_tag(&entry.modified_at));

        let mut reannounce = None;
        if let Some(record) = self.already_published(store.as_ref(), &entry).await? {
            // Only a user asking from the canvas gets the registry checked: webhooks about a
            // version already announced are duplicates.
            if job.canvas_id.is_none() {
                return Ok(Outcome::Skipped);
            }
            let published_at = record.published_at;
            match self.in_registry(store.as_ref(), &record).await? {
                Registry::Holds(top_hash) => {
                    self.send_canvas(
                        job,
                        CanvasAction::UpToDate {
                            published_at,
                            top_hash,
                        },
                    )
                    .await?;
                    return Ok(Outcome::UpToDate);
                }
                Registry::Building => {
                    self.send_canvas(job, CanvasAction::Published { published_at })
                        .await?;
                    return Ok(Outcome::Skipped);
                }
                Registry::Lacks => {
                    tracing::warn!(
                        %published_at,
                        "the announced version is not in Quilt's registry; announcing it again"
                    );
                    reannounce = Some(published_at);
                }
            }
        }

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

    /// The published record, when it announces exactly this version of the entry. An
    /// unreadable record is logged and ignored: exporting again is safe, skipping wrongly is not.
    async fn already_published(
        &self,
        store: &dyn ObjectStore,
        entry: &Entry,
    ) -> Result<Option<PublishedRecord>, JobError> {
        let key = bookkeeping_key(bookkeeping::published_key(&entry.id))?;
        match bw_store::get_record::<PublishedRecord>(store, &key).await {
            Ok(record) => Ok(record.filter(|record| record.covers(&entry.modified_at))),
            Err(e) if e.is_transient() => Err(JobError::Bookkeeping(e)),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring an unreadable published record");
                Ok(None)
            }
        }
    }

    /// Whether Quilt's registry holds the version `record` announced: the package's latest
    /// revision carries it (the record is always the latest version announced).
    async fn in_registry(
        &self,
        store: &dyn ObjectStore,
        record: &PublishedRecord,
    ) -> Result<Registry, JobError> {
        let found = match bw_registry::latest_revision(store, &record.package_name).await {
            Ok(revision) => revision
                .holds(&record.entry_id, &record.modified_at)
                .then_some(revision.top_hash),
            Err(RegistryError::NoSuchPackage(_)) => None,
            Err(RegistryError::Store(e)) if e.is_transient() => {
                return Err(JobError::Bookkeeping(e));
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the package's latest revision");
                None
            }
        };
        Ok(match found {
            Some(top_hash) => Registry::Holds(top_hash),
            None if chrono::Utc::now() - record.published_at < REANNOUNCE_AFTER => {
                Registry::Building
            }
            None => Registry::Lacks,
        })
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
