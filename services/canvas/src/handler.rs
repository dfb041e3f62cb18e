//! One canvas job: work out the entry and its canvas, build the view the job asks for, and
//! create or update the canvas in Benchling.
//!
//! Jobs for one canvas arrive in one FIFO group, so they never run concurrently and a later
//! view never loses to an earlier one.

use std::sync::Arc;

use async_trait::async_trait;
use bw_benchling::{BenchlingClient, BenchlingError, NewAppCanvas};
use bw_config::{BenchlingSecret, SecretWatch};
use bw_contracts::bookkeeping::{CanvasRecord, UpdateFailure, Verified};
use bw_contracts::{
    ButtonAction, CanvasAction, CanvasId, CanvasJob, EntryId, ExportJob, PackageTarget,
};
use bw_queue::{Queue, QueueError};
use bw_store::{Buckets, ObjectStore, StoreError};
use bw_worker::{Failure, Handler, JobContext};
use serde_json::Value;
use tracing::Instrument as _;

use crate::athena::{AthenaError, PackageQuery};
use crate::cache::{EntryCache, ManifestCache};
use crate::record;
use crate::view::{Block, Canvas, Linked, Status};
use bw_registry::{Manifest, RegistryError};

/// Why a canvas job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The Benchling secret is not available.
    #[error("the Benchling secret is not available: {0}")]
    Secret(String),
    /// A Benchling call failed.
    #[error("{call}: {source}")]
    Benchling {
        /// What was asked.
        call: String,
        /// What went wrong.
        source: BenchlingError,
    },
    /// The canvas is attached to something other than an entry.
    #[error("canvas {canvas} is not on a notebook entry (resource {resource:?})")]
    NotAnEntry {
        /// The canvas.
        canvas: CanvasId,
        /// Its resource id.
        resource: Option<String>,
    },
    /// The job names neither an entry nor a canvas.
    #[error("the job names neither an entry nor a canvas")]
    NoSubject,
    /// Benchling asked for a canvas without saying which app feature it belongs to.
    #[error("cannot create a canvas for {0}: the event names no app feature")]
    NoFeature(EntryId),
    /// A bookkeeping record could not be read or written.
    #[error("canvas record of {entry}: {source}")]
    Record {
        /// The entry.
        entry: EntryId,
        /// What the store said.
        source: StoreError,
    },
    /// The export job could not be sent.
    #[error("sending the export job: {0}")]
    Queue(#[source] QueueError),
}

impl JobError {
    /// Whether redelivery cannot help.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Benchling { source, .. } => source.is_permanent(),
            Self::NotAnEntry { .. } | Self::NoSubject | Self::NoFeature(_) => true,
            Self::Record { source, .. } => !source.is_transient(),
            Self::Secret(_) | Self::Queue(_) => false,
        }
    }
}

/// What a job did, for its log line.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The canvas now shows the view.
    Updated(CanvasId),
    /// A canvas was created with the view.
    Created(CanvasId),
    /// The entry has no canvas to show anything on (its failure, if any, was recorded).
    NoCanvas,
    /// The canvas was deleted in Benchling; it was forgotten rather than retried.
    CanvasGone(CanvasId),
    /// Nothing for this worker to do.
    Skipped(&'static str),
}

/// The linked-package finder with its per-entry memory.
pub struct LinkedPackages {
    /// The query; `None` when no Athena database is configured.
    pub query: Option<PackageQuery>,
    /// Recent results by entry.
    pub cache: EntryCache<Vec<Linked>>,
}

/// The canvas worker's job handler.
pub struct CanvasHandler {
    /// Benchling's API.
    pub client: BenchlingClient,
    /// The secret (registry bucket, package prefix, metadata key).
    pub secret: SecretWatch,
    /// Where the registry bucket lives.
    pub buckets: Buckets,
    /// "Update Package" sends export jobs here.
    pub export_queue: Arc<dyn Queue>,
    /// Linked packages.
    pub linked: LinkedPackages,
    /// Recent display ids by entry.
    pub display_ids: EntryCache<String>,
    /// Parsed manifests by revision.
    pub manifests: ManifestCache,
    /// `QUILT_WEB_HOST`.
    pub quilt_host: String,
}

/// What one job works with.
struct Scene<'a> {
    job: &'a CanvasJob,
    secret: &'a BenchlingSecret,
    store: Arc<dyn ObjectStore>,
    entry: EntryId,
    display_id: String,
    package: String,
    /// The entry's canvas record, with this job's changes.
    record: CanvasRecord,
    /// A new canvas for an entry never published: its export is queued at once, as if "Update
    /// Package" had been clicked, so inserting the canvas creates the package.
    export_first: bool,
}

impl Scene<'_> {
    fn canvas<'s>(&'s self, quilt_host: &'s str) -> Canvas<'s> {
        Canvas {
            entry_id: &self.entry,
            display_id: &self.display_id,
            package: &self.package,
            bucket: &self.secret.user_bucket,
            quilt_host,
        }
    }
}

impl CanvasHandler {
    async fn run(&self, job: &CanvasJob) -> Result<Outcome, JobError> {
        if job.action == CanvasAction::AppHome {
            return Ok(Outcome::Skipped(
                "the app has no home canvas; entry canvases are created when Benchling asks",
            ));
        }
        let secret = self.secret.loaded().map_err(JobError::Secret)?;
        let entry = match self.entry_of(job).await {
            Ok(entry) => entry,
            // A canvas deleted before its first render: nothing to show, nothing to retry.
            Err(JobError::Benchling { source, .. }) if source.is_not_found() => {
                let canvas = job.canvas_id.clone().ok_or(JobError::NoSubject)?;
                return Ok(Outcome::CanvasGone(canvas));
            }
            Err(e) => return Err(e),
        };
        let store = self
            .buckets
            .open(&secret.user_bucket)
            .map_err(record_error(&entry))?;
        let known = record::canvas(store.as_ref(), &entry)
            .await
            .map_err(record_error(&entry))?;
        let mut record = known.clone();
        // The footer comes from the records only: "Updated at" needs the packager's
        // published record, never just a notice's time.
        match &job.action {
            CanvasAction::Button { button } if button.action == ButtonAction::Update => {
                record.update_requested_at = Some(job.trigger.occurred_at);
            }
            CanvasAction::ExportFailed { reason } => {
                record.failure = Some(UpdateFailure {
                    reason: reason.clone(),
                    at: job.trigger.occurred_at,
                });
                record.update_requested_at = None;
            }
            CanvasAction::Published { .. } => record.update_requested_at = None,
            CanvasAction::UpToDate {
                published_at,
                top_hash,
            } => {
                record.update_requested_at = None;
                record.verified = Some(Verified {
                    published_at: *published_at,
                    top_hash: top_hash.clone(),
                });
            }
            _ => {}
        }
        let export_first = matches!(job.action, CanvasAction::Create | CanvasAction::Render)
            && record.update_requested_at.is_none()
            && record::published_at(store.as_ref(), &entry)
                .await
                .map_err(record_error(&entry))?
                .is_none();
        if export_first {
            record.update_requested_at = Some(job.trigger.occurred_at);
        }
        let display_id = match self.display_id(&entry).await {
            Ok(display_id) => display_id,
            // An entry Benchling no longer has, and no canvas named (a notice about the entry's
            // failed export, say): nothing can show it. Dead-lettering the notice would only
            // report the same failure a second time.
            Err(JobError::Benchling { source, .. })
                if source.is_not_found() && job.canvas_id.is_none() =>
            {
                return Ok(Outcome::Skipped("the entry is gone, so no canvas shows it"));
            }
            Err(e) => return Err(e),
        };
        let scene = Scene {
            package: format!("{}/{display_id}", secret.pkg_prefix),
            job,
            secret: &secret,
            store,
            entry,
            display_id,
            record,
            export_first,
        };
        let outcome = self.show(&scene).await;
        let mut record = scene.record;
        match &outcome {
            Ok(Outcome::Created(id) | Outcome::Updated(id)) => {
                record.canvas_id = Some(id.clone());
            }
            Ok(Outcome::CanvasGone(id)) if record.canvas_id.as_ref() == Some(id) => {
                record.canvas_id = None;
            }
            _ => {}
        }
        // The failure is recorded even when the canvas update failed, so the next render shows it.
        if record != known {
            record::save_canvas(scene.store.as_ref(), &scene.entry, &record)
                .await
                .map_err(record_error(&scene.entry))?;
        }
        outcome
    }

    /// Builds the view the job asks for and puts it on the canvas.
    async fn show(&self, scene: &Scene<'_>) -> Result<Outcome, JobError> {
        let job = scene.job;
        let canvas = scene.canvas(&self.quilt_host);
        let blocks = match &job.action {
            CanvasAction::Button { button } => match &button.action {
                ButtonAction::Update => {
                    self.request_export(scene).await?;
                    canvas.updating()
                }
                ButtonAction::Main => self.main_view(scene, false).await?,
                ButtonAction::Browse {
                    package,
                    page,
                    size,
                } => self.browser(scene, package, *page, *size).await,
                ButtonAction::Metadata {
                    package,
                    page,
                    size,
                } => self.metadata(scene, package, *page, *size).await,
            },
            // A new canvas, a new version and a new revision query afresh: a result cached
            // before them (even one rendered with no canvas to show it) may predate a link.
            CanvasAction::Create | CanvasAction::Render if scene.export_first => {
                self.request_export(scene).await?;
                canvas.updating()
            }
            CanvasAction::Create
            | CanvasAction::Render
            | CanvasAction::Published { .. }
            | CanvasAction::Refresh => self.main_view(scene, true).await?,
            CanvasAction::ExportFailed { .. } | CanvasAction::UpToDate { .. } => {
                self.main_view(scene, false).await?
            }
            CanvasAction::AppHome => unreachable!("handled before the entry is resolved"),
        };
        let blocks = serde_json::to_value(blocks).expect("blocks serialize");
        self.put(scene, blocks).await
    }

    /// Updates the job's (or the entry's remembered) canvas, or creates one when Benchling
    /// asked for it.
    async fn put(&self, scene: &Scene<'_>, blocks: Value) -> Result<Outcome, JobError> {
        let job = scene.job;
        let remembered = scene.record.canvas_id.as_ref();
        let target = match (&job.canvas_id, &job.action) {
            (Some(id), _) => Some(id.clone()),
            // A redelivered create finds the canvas it made (if it still exists and is not
            // archived) instead of adding a second one to the entry.
            (None, CanvasAction::Create) => match remembered {
                Some(id) => match self.client.get_app_canvas(id).await {
                    Ok(found) if !found.archived => Some(id.clone()),
                    Ok(_) => None,
                    Err(e) if e.is_not_found() => None,
                    Err(source) => return Err(benchling(format!("GET canvas {id}"), source)),
                },
                None => None,
            },
            (None, _) => remembered.cloned(),
        };
        match target {
            Some(id) => match self.client.update_app_canvas(&id, true, blocks).await {
                Ok(_) => Ok(Outcome::Updated(id)),
                Err(e) if e.is_not_found() => Ok(Outcome::CanvasGone(id)),
                Err(source) => Err(benchling(format!("PATCH canvas {id}"), source)),
            },
            None if job.action == CanvasAction::Create => {
                let feature_id = job
                    .feature_id
                    .clone()
                    .ok_or_else(|| JobError::NoFeature(scene.entry.clone()))?;
                let new = NewAppCanvas {
                    app_id: job.app_id.clone(),
                    feature_id,
                    resource_id: scene.entry.to_string(),
                    enabled: true,
                    blocks,
                };
                let created = self
                    .client
                    .create_app_canvas(&new)
                    .await
                    .map_err(|source| {
                        benchling(format!("POST canvas for {}", scene.entry), source)
                    })?;
                Ok(Outcome::Created(created.id))
            }
            None => Ok(Outcome::NoCanvas),
        }
    }

    /// The entry a job is about: named by the job, else the canvas's resource.
    async fn entry_of(&self, job: &CanvasJob) -> Result<EntryId, JobError> {
        if let Some(entry) = &job.entry_id {
            return Ok(entry.clone());
        }
        let Some(canvas) = &job.canvas_id else {
            return Err(JobError::NoSubject);
        };
        let found = self
            .client
            .get_app_canvas(canvas)
            .await
            .map_err(|source| benchling(format!("GET canvas {canvas}"), source))?;
        found
            .resource_id
            .as_deref()
            .and_then(|r| EntryId::parse(r).ok())
            .filter(|e| e.as_str().starts_with("etr_"))
            .ok_or(JobError::NotAnEntry {
                canvas: canvas.clone(),
                resource: found.resource_id,
            })
    }

    async fn display_id(&self, entry: &EntryId) -> Result<String, JobError> {
        if let Some(display_id) = self.display_ids.get(entry) {
            return Ok(display_id);
        }
        let found = self
            .client
            .get_entry(entry)
            .await
            .map_err(|source| benchling(format!("GET entry {entry}"), source))?;
        self.display_ids.put(entry, found.display_id.clone());
        Ok(found.display_id)
    }

    /// Sends the export job "Update Package" (or a new canvas of an unpublished entry) asks
    /// for; the canvas then shows "Updating…".
    async fn request_export(&self, scene: &Scene<'_>) -> Result<(), JobError> {
        let job = ExportJob {
            entry_id: scene.entry.clone(),
            canvas_id: scene.job.canvas_id.clone(),
            base_url: None,
            trigger: scene.job.trigger.clone(),
        };
        bw_worker::send_job(self.export_queue.as_ref(), job)
            .await
            .map_err(JobError::Queue)
    }

    /// The main view. `fresh` runs the linked-package query even when a recent result is
    /// remembered (a new revision may have changed it).
    async fn main_view(&self, scene: &Scene<'_>, fresh: bool) -> Result<Vec<Block>, JobError> {
        let canvas = scene.canvas(&self.quilt_host);
        let published_at = record::published_at(scene.store.as_ref(), &scene.entry)
            .await
            .map_err(record_error(&scene.entry))?;
        let status = record::status(&scene.record, published_at, chrono::Utc::now());
        if status == Status::Updating {
            return Ok(canvas.updating());
        }
        let linked = self.linked(scene, fresh).await;
        Ok(match &linked {
            Ok(linked) => canvas.main(Ok(linked), &status),
            Err(e) => canvas.main(Err(e.as_str()), &status),
        })
    }

    async fn linked(&self, scene: &Scene<'_>, fresh: bool) -> Result<Vec<Linked>, String> {
        let Some(query) = &self.linked.query else {
            return Ok(Vec::new());
        };
        if !fresh && let Some(linked) = self.linked.cache.get(&scene.entry) {
            return Ok(linked);
        }
        let found = query
            .linked_packages(
                &scene.secret.user_bucket,
                &scene.secret.pkg_key,
                &scene.display_id,
            )
            .await
            .map_err(|e: AthenaError| {
                tracing::warn!(error = %e, "linked-package query failed");
                e.to_string()
            })?;
        let linked: Vec<Linked> = found.into_iter().map(|p| Linked { name: p.name }).collect();
        self.linked.cache.put(&scene.entry, linked.clone());
        Ok(linked)
    }

    async fn browser(
        &self,
        scene: &Scene<'_>,
        target: &PackageTarget,
        page: u32,
        size: u32,
    ) -> Vec<Block> {
        let manifest = match self.manifest(scene, target, "Files").await {
            Ok(manifest) => manifest,
            Err(view) => return view,
        };
        scene
            .canvas(&self.quilt_host)
            .browser(target, &manifest.entries, page, size)
    }

    async fn metadata(
        &self,
        scene: &Scene<'_>,
        target: &PackageTarget,
        page: u32,
        size: u32,
    ) -> Vec<Block> {
        let manifest = match self.manifest(scene, target, "Metadata").await {
            Ok(manifest) => manifest,
            Err(view) => return view,
        };
        let canvas = scene.canvas(&self.quilt_host);
        match bw_registry::package_metadata(
            scene.store.as_ref(),
            &scene.secret.user_bucket,
            &manifest,
        )
        .await
        {
            Ok(meta) => canvas.metadata(target, &meta, page, size),
            Err(e) => canvas.error("Metadata", target, &e.to_string()),
        }
    }

    /// The package's latest manifest, or the view to show instead: "not created" for the
    /// entry's own package, the error view (loading `what`) otherwise.
    async fn manifest(
        &self,
        scene: &Scene<'_>,
        target: &PackageTarget,
        what: &str,
    ) -> Result<Arc<Manifest>, Vec<Block>> {
        let canvas = scene.canvas(&self.quilt_host);
        match self.latest_manifest(scene, package_of(scene, target)).await {
            Ok(manifest) => Ok(manifest),
            Err(RegistryError::NoSuchPackage(_)) if *target == PackageTarget::Primary => {
                Err(canvas.not_created())
            }
            Err(e) => {
                tracing::warn!(error = %e, "package could not be read");
                Err(canvas.error(what, target, &e.to_string()))
            }
        }
    }
}

impl CanvasHandler {
    /// The latest revision's manifest: the `latest` pointer is read every time (it moves), the
    /// manifest only when this revision is not cached (it never changes).
    async fn latest_manifest(
        &self,
        scene: &Scene<'_>,
        package: &str,
    ) -> Result<Arc<Manifest>, RegistryError> {
        let store = scene.store.as_ref();
        let bucket = &scene.secret.user_bucket;
        let top_hash = bw_registry::latest_top_hash(store, package)
            .await?
            .ok_or_else(|| RegistryError::NoSuchPackage(package.to_owned()))?;
        if let Some(manifest) = self.manifests.get(bucket, &top_hash) {
            return Ok(manifest);
        }
        let manifest = Arc::new(bw_registry::manifest(store, &top_hash).await?);
        self.manifests.put(bucket, Arc::clone(&manifest));
        Ok(manifest)
    }
}

fn package_of<'a>(scene: &'a Scene<'_>, target: &'a PackageTarget) -> &'a str {
    match target {
        PackageTarget::Primary => &scene.package,
        PackageTarget::Linked(name) => name,
    }
}

fn record_error(entry: &EntryId) -> impl Fn(StoreError) -> JobError + '_ {
    |source| JobError::Record {
        entry: entry.clone(),
        source,
    }
}

fn benchling(call: String, source: BenchlingError) -> JobError {
    JobError::Benchling { call, source }
}

#[async_trait]
impl Handler for CanvasHandler {
    type Job = CanvasJob;

    async fn handle(&self, job: &CanvasJob, _context: &JobContext) -> Result<String, Failure> {
        let span = tracing::info_span!(
            "canvas",
            action = action_name(&job.action),
            canvas_id = job.canvas_id.as_ref().map(|c| c.as_str()),
        );
        let detail = match self.run(job).instrument(span).await {
            Ok(Outcome::Updated(id)) => format!("canvas {id} updated"),
            Ok(Outcome::Created(id)) => format!("canvas {id} created"),
            Ok(Outcome::NoCanvas) => "the entry has no canvas; nothing shown".to_owned(),
            Ok(Outcome::CanvasGone(id)) => {
                format!("canvas {id} no longer exists in Benchling; forgotten, not retried")
            }
            Ok(Outcome::Skipped(why)) => why.to_owned(),
            Err(e) => return Err(Failure::of(&e, e.is_permanent())),
        };
        Ok(detail)
    }

    /// A click on "Update Package" that failed for good is shown on the canvas as a failed
    /// update (once, best effort), so the click does not seem to do nothing; other failed jobs
    /// show in the log and the dead-letter queue.
    async fn dead_lettered(&self, job: Option<&CanvasJob>, reason: &str) {
        let Some(job) = job else { return };
        tracing::error!(
            action = action_name(&job.action),
            reason,
            "canvas job dead-lettered"
        );
        let CanvasAction::Button { button } = &job.action else {
            return;
        };
        if button.action != ButtonAction::Update {
            return;
        }
        let failed = CanvasJob {
            action: CanvasAction::export_failed(reason),
            ..job.clone()
        };
        if let Err(e) = self.run(&failed).await {
            tracing::error!(error = %e, "could not show the failed update on the canvas");
        }
    }
}

fn action_name(action: &CanvasAction) -> &'static str {
    match action {
        CanvasAction::Create => "create",
        CanvasAction::Render => "render",
        CanvasAction::Button { .. } => "button",
        CanvasAction::AppHome => "app_home",
        CanvasAction::Published { .. } => "published",
        CanvasAction::UpToDate { .. } => "up_to_date",
        CanvasAction::Refresh => "refresh",
        CanvasAction::ExportFailed { .. } => "export_failed",
    }
}
