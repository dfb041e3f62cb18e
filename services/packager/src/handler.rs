//! One render job: write the entry version's metadata files into its package prefix, announce
//! the version to Quilt's packager once, and tell the canvas it was updated.

use std::collections::HashMap;

use async_trait::async_trait;
use bw_benchling::{BenchlingClient, Entry, NameLookup};
use bw_config::SecretWatch;
use bw_contracts::bookkeeping::{self, PublishedRecord};
use bw_contracts::{CanvasAction, CanvasJob, FileList, PackageFile, PackagerMessage, RenderJob};
use bw_queue::QueueError;
use bw_store::{Buckets, Key, ObjectStore, Prefix, PutOptions, StoreError};
use bw_worker::{Failure, Handler, JobContext};
use bytes::Bytes;
use tracing::Instrument as _;

use crate::Queues;
use crate::announce;
use crate::metadata::{self, Inputs};
use crate::readme::{Readme, TemplateError};
use crate::references::{LinkCategory, References};

/// Largest entry snapshot read (Benchling entries with many notes reach a few MB).
const MAX_SNAPSHOT_BYTES: u64 = 32 * 1024 * 1024;

/// Largest stored file list read (20,000 files of long names).
const MAX_FILE_LIST_BYTES: u64 = 64 * 1024 * 1024;

/// Why a render job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The Benchling secret is not available.
    #[error("the Benchling secret is not available: {0}")]
    Secret(String),
    /// The bucket or a key is invalid.
    #[error("invalid package location: {0}")]
    Location(#[source] StoreError),
    /// A claim check is missing or unreadable.
    #[error("claim check {key}: {message}")]
    ClaimCheck {
        /// Its key.
        key: String,
        /// What is wrong.
        message: String,
        /// Whether a retry may help (a store outage rather than a missing object).
        transient: bool,
    },
    /// The README template failed on this entry.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Writing a file failed.
    #[error("writing {key}: {source}")]
    Write {
        /// The key.
        key: String,
        /// What the store said.
        source: StoreError,
    },
    /// A message could not be sent.
    #[error("sending to {queue}: {source}")]
    Queue {
        /// Which queue.
        queue: &'static str,
        /// What it said.
        source: QueueError,
    },
}

impl JobError {
    /// Whether redelivery cannot help.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Location(_) | Self::Template(_) => true,
            Self::ClaimCheck { transient, .. } => !transient,
            Self::Write { source, .. } => !source.is_transient(),
            Self::Secret(_) | Self::Queue { .. } => false,
        }
    }
}

/// What a job did.
enum Outcome {
    /// Already announced; only the canvas was told again.
    AlreadyPublished,
    /// Files written, message sent.
    Published { files: usize, names: usize },
}

/// The packager's job handler.
pub struct RenderHandler {
    /// The Benchling API (entity names).
    pub client: BenchlingClient,
    /// The secret (tenant, workflow).
    pub secret: SecretWatch,
    /// Where buckets live.
    pub buckets: Buckets,
    /// The queues.
    pub queues: Queues,
    /// The checked README template.
    pub readme: Readme,
}

impl RenderHandler {
    async fn run(&self, job: &RenderJob) -> Result<Outcome, JobError> {
        let secret = self.secret.loaded().map_err(JobError::Secret)?;
        let store = self.buckets.open(&job.bucket).map_err(JobError::Location)?;
        let published_key = key(bookkeeping::published_key(&job.entry_id))?;
        if let Some(record) = self.published(store.as_ref(), &published_key, job).await? {
            self.notify_canvas(job, record.published_at).await?;
            return Ok(Outcome::AlreadyPublished);
        }

        let entry = self.snapshot(store.as_ref(), job).await?;
        let files = self.files(store.as_ref(), job).await?;
        let references = References::discover(&entry.raw);
        let names = self.names(&references).await;
        let default_base_url = format!("https://{}.benchling.com", secret.tenant);
        let inputs = Inputs {
            job,
            entry: &entry,
            files: &files,
            references: &references,
            names: &names,
            default_base_url: &default_base_url,
        };
        let prefix = Prefix::new(job.package_prefix.clone()).map_err(JobError::Location)?;
        for (name, bytes) in metadata::render(&inputs, &self.readme)? {
            let key = prefix.join(name).map_err(JobError::Location)?;
            store
                .put_bytes(&key, Bytes::from(bytes), PutOptions::for_name(name))
                .await
                .map_err(|source| JobError::Write {
                    key: key.to_string(),
                    source,
                })?;
        }

        let message = PackagerMessage::for_job(job, secret.workflow.as_deref());
        self.queues
            .packager
            .send(announce::outgoing(
                &message,
                job,
                self.queues.packager.is_fifo(),
            ))
            .await
            .map_err(|source| JobError::Queue {
                queue: "the Quilt packager queue",
                source,
            })?;
        let published_at = chrono::Utc::now();
        let record = PublishedRecord {
            entry_id: job.entry_id.clone(),
            modified_at: job.modified_at,
            package_name: job.package_prefix.clone(),
            published_at,
        };
        store
            .put_bytes(
                &published_key,
                Bytes::from(serde_json::to_vec(&record).expect("records serialize")),
                PutOptions::for_name("published.json"),
            )
            .await
            .map_err(|source| JobError::Write {
                key: published_key.to_string(),
                source,
            })?;
        self.notify_canvas(job, published_at).await?;
        self.remove_claim_checks(store.as_ref(), job).await;
        Ok(Outcome::Published {
            files: files.len(),
            names: names.len(),
        })
    }

    /// Deletes this version's claim checks: once the record exists, a redelivered job stops at
    /// the record and never reads them. A failure only leaves a few kB behind.
    async fn remove_claim_checks(&self, store: &dyn ObjectStore, job: &RenderJob) {
        let mut keys = vec![job.entry_key.clone()];
        if let FileList::Stored { key, .. } = &job.files {
            keys.push(key.clone());
        }
        for raw in keys {
            let removed = match Key::new(raw.clone()) {
                Ok(key) => store.delete(&key).await,
                Err(e) => Err(e),
            };
            if let Err(e) = removed {
                tracing::warn!(key = %raw, error = %e, "could not remove a claim check");
            }
        }
    }

    /// The published record, when it announces this version or a later one, unless the job
    /// re-announces exactly the announcement the record holds (once: announcing rewrites the
    /// record with a new time, so a redelivered job stops here).
    async fn published(
        &self,
        store: &dyn ObjectStore,
        key: &Key,
        job: &RenderJob,
    ) -> Result<Option<PublishedRecord>, JobError> {
        match bw_store::get_record::<PublishedRecord>(store, key).await {
            Ok(record) => Ok(record.filter(|record| {
                let reannouncing = job.reannounce == Some(record.published_at)
                    && record.modified_at == job.modified_at;
                record.modified_at >= job.modified_at && !reannouncing
            })),
            Err(e) => Err(JobError::ClaimCheck {
                key: key.to_string(),
                message: e.to_string(),
                transient: e.is_transient(),
            }),
        }
    }

    async fn snapshot(&self, store: &dyn ObjectStore, job: &RenderJob) -> Result<Entry, JobError> {
        let bytes = read(store, &job.entry_key, MAX_SNAPSHOT_BYTES).await?;
        serde_json::from_slice(&bytes)
            .and_then(Entry::from_value)
            .map_err(|e| JobError::ClaimCheck {
                key: job.entry_key.clone(),
                message: format!("not an entry: {e}"),
                transient: false,
            })
    }

    async fn files(
        &self,
        store: &dyn ObjectStore,
        job: &RenderJob,
    ) -> Result<Vec<PackageFile>, JobError> {
        match &job.files {
            FileList::Inline { files } => Ok(files.clone()),
            FileList::Stored { key, .. } => {
                let bytes = read(store, key, MAX_FILE_LIST_BYTES).await?;
                serde_json::from_slice(&bytes).map_err(|e| JobError::ClaimCheck {
                    key: key.clone(),
                    message: format!("not a file list: {e}"),
                    transient: false,
                })
            }
        }
    }

    /// Names of the referenced objects, one bulk request per link type (within the client's
    /// rate limit). A failed look-up leaves those names out and never fails the job.
    async fn names(&self, references: &References) -> HashMap<String, String> {
        let mut by_type: HashMap<&str, Vec<&str>> = HashMap::new();
        for link in &references.links {
            if let Some(id) = &link.id
                && LinkCategory::of(&link.link_type).is_fetchable()
            {
                by_type.entry(&link.link_type).or_default().push(id);
            }
        }
        for entity in &references.entities {
            if LinkCategory::of(&entity.entity_type).is_fetchable() {
                by_type
                    .entry(&entity.entity_type)
                    .or_default()
                    .push(&entity.id);
            }
        }
        let mut names = HashMap::new();
        for (link_type, ids) in by_type {
            let Some(lookup) = NameLookup::for_link_type(link_type) else {
                continue;
            };
            match self.client.entity_names(lookup, &ids).await {
                Ok(found) => names.extend(found),
                Err(e) => {
                    tracing::warn!(link_type, ids = ids.len(), error = %e, "name look-up failed; names left empty");
                }
            }
        }
        names
    }

    async fn notify_canvas(
        &self,
        job: &RenderJob,
        published_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), JobError> {
        self.send_canvas(job, CanvasAction::Published { published_at }, published_at)
            .await
    }

    async fn send_canvas(
        &self,
        job: &RenderJob,
        action: CanvasAction,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), JobError> {
        let canvas = CanvasJob::follow_up(
            job.entry_id.clone(),
            job.canvas_id.clone(),
            action,
            &job.trigger,
            at,
        );
        bw_worker::send_job(self.queues.canvas.as_ref(), canvas)
            .await
            .map_err(|source| JobError::Queue {
                queue: "the canvas queue",
                source,
            })
    }
}

fn key(raw: String) -> Result<Key, JobError> {
    Key::new(raw).map_err(JobError::Location)
}

async fn read(store: &dyn ObjectStore, raw: &str, limit: u64) -> Result<Bytes, JobError> {
    let key = key(raw.to_owned())?;
    store
        .get_bytes(&key, limit)
        .await
        .map_err(|e| JobError::ClaimCheck {
            key: raw.to_owned(),
            message: e.to_string(),
            transient: e.is_transient(),
        })
}

#[async_trait]
impl Handler for RenderHandler {
    type Job = RenderJob;

    async fn handle(&self, job: &RenderJob, _context: &JobContext) -> Result<String, Failure> {
        let span = tracing::info_span!(
            "package",
            entry_id = %job.entry_id,
            package = %job.package_prefix,
            version = %bookkeeping::version_tag(&job.modified_at),
        );
        let detail = match self.run(job).instrument(span).await {
            Ok(Outcome::AlreadyPublished) => {
                "version already announced; canvas notified again".to_owned()
            }
            Ok(Outcome::Published { files, names }) => format!(
                "metadata for {files} file(s) written ({names} name(s) found); packager message sent"
            ),
            Err(e) => return Err(Failure::of(&e, e.is_permanent())),
        };
        Ok(detail)
    }

    /// Shows the failure on the entry's canvas, so the user is not left with "Updating…".
    async fn dead_lettered(&self, job: Option<&RenderJob>, reason: &str) {
        let Some(job) = job else { return };
        let action = CanvasAction::export_failed(reason);
        if let Err(e) = self.send_canvas(job, action, chrono::Utc::now()).await {
            tracing::error!(error = %e, entry_id = %job.entry_id, "could not report the failure to the canvas");
        }
    }
}
