//! Quilt's `package-revision` events: when Quilt has built a new revision of one of our
//! packages, the entry's canvas is refreshed.
//!
//! The handler does not touch the canvas itself: it finds the entry and its canvas and sends a
//! `refresh` job to the canvas queue, whose FIFO group keeps it in order with the canvas's other
//! jobs.

use std::sync::Arc;

use async_trait::async_trait;
use bw_config::SecretWatch;
use bw_contracts::{CanvasAction, CanvasId, CanvasJob, EntryId, EventType, Trigger};
use bw_queue::{Queue, QueueError};
use bw_store::Buckets;
use bw_worker::{Failure, Handler, Incoming, JobContext};
use serde::Deserialize;
use serde_json::Value;
use tracing::Instrument as _;

use crate::record;
use bw_registry::RegistryError;

/// The trigger type of refreshes caused by a package event.
pub const PACKAGE_REVISION: &str = "quilt.package-revision";

/// A new package revision, from an EventBridge `package-revision` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageEvent {
    /// The registry bucket.
    pub bucket: String,
    /// The package name (`benchling/EXP25000007`).
    pub handle: String,
    /// The revision's top hash, when the event carries one.
    pub top_hash: Option<String>,
}

/// Why an event body was refused. Permanent: the same body never parses.
#[derive(Debug, thiserror::Error)]
#[error("not a package-revision event: {0}")]
pub struct NotAnEvent(String);

impl PackageEvent {
    /// Reads an EventBridge event body: `detail.bucket` and `detail.handle` (non-empty
    /// strings) and an optional string `detail.topHash`.
    pub fn from_body(body: &str) -> Result<Self, NotAnEvent> {
        #[derive(Deserialize)]
        struct Event {
            detail: Detail,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Detail {
            bucket: String,
            handle: String,
            #[serde(default)]
            top_hash: Option<String>,
        }
        let event: Event = serde_json::from_str(body).map_err(|e| NotAnEvent(e.to_string()))?;
        let Detail {
            bucket,
            handle,
            top_hash,
        } = event.detail;
        if bucket.is_empty() || handle.is_empty() {
            return Err(NotAnEvent(
                "empty detail.bucket or detail.handle".to_owned(),
            ));
        }
        Ok(Self {
            bucket,
            handle,
            top_hash: top_hash.filter(|h| !h.is_empty()),
        })
    }

    /// Whether the event is about one of our packages: the user bucket, and a name under
    /// `{pkg_prefix}/`. The EventBridge rule sends every Quilt event of the account.
    pub fn is_ours(&self, user_bucket: &str, pkg_prefix: &str) -> bool {
        self.bucket == user_bucket
            && self
                .handle
                .strip_prefix(pkg_prefix)
                .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
    }
}

impl Incoming for PackageEvent {
    fn decode(body: &str) -> Result<(Self, Option<String>), String> {
        Self::from_body(body)
            .map(|event| (event, None))
            .map_err(|e| e.to_string())
    }
}

/// What an event led to, for its log line.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A refresh job was sent for the entry's canvas.
    Refresh {
        /// The entry.
        entry: EntryId,
        /// Its canvas.
        canvas: CanvasId,
    },
    /// Another bucket, or a package outside our prefix.
    NotOurs,
    /// A newer revision exists (its own event refreshes the canvas), or the package is gone.
    Stale,
    /// The package names no entry, or the entry has no canvas.
    NoCanvas,
}

/// Why an event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The Benchling secret is not available.
    #[error("the Benchling secret is not available: {0}")]
    Secret(String),
    /// The package could not be read.
    #[error("reading package {package}: {source}")]
    Registry {
        /// The package.
        package: String,
        /// What went wrong.
        source: RegistryError,
    },
    /// The refresh job could not be sent.
    #[error("sending the refresh job: {0}")]
    Queue(#[source] QueueError),
}

impl EventError {
    /// Whether redelivery cannot help.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Registry { source, .. } => match source {
                RegistryError::Store(e) => !e.is_transient(),
                RegistryError::Malformed { .. } | RegistryError::NoSuchPackage(_) => true,
            },
            Self::Secret(_) | Self::Queue(_) => false,
        }
    }
}

/// The package-event handler.
pub struct PackageEventHandler {
    /// The secret (registry bucket and package prefix).
    pub secret: SecretWatch,
    /// Where the registry bucket lives.
    pub buckets: Buckets,
    /// Refresh jobs go here.
    pub canvas_queue: Arc<dyn Queue>,
}

impl PackageEventHandler {
    async fn run(&self, event: &PackageEvent) -> Result<Outcome, EventError> {
        let secret = self.secret.loaded().map_err(EventError::Secret)?;
        if !event.is_ours(&secret.user_bucket, &secret.pkg_prefix) {
            return Ok(Outcome::NotOurs);
        }
        let registry_error = |source| EventError::Registry {
            package: event.handle.clone(),
            source,
        };
        let store = self
            .buckets
            .open(&event.bucket)
            .map_err(|e| registry_error(e.into()))?;
        let store = store.as_ref();
        let latest = bw_registry::latest_top_hash(store, &event.handle)
            .await
            .map_err(registry_error)?;
        if event.top_hash.is_some() && latest != event.top_hash {
            return Ok(Outcome::Stale);
        }
        let manifest = match bw_registry::latest_manifest(store, &event.handle).await {
            Ok(manifest) => manifest,
            // Deleted since: nothing to show.
            Err(RegistryError::NoSuchPackage(_)) => return Ok(Outcome::Stale),
            Err(e) => return Err(registry_error(e)),
        };
        let meta = bw_registry::package_metadata(store, &event.bucket, &manifest)
            .await
            .map_err(registry_error)?;
        let Some(entry) = id_field(&meta, "entry_id").and_then(|e| EntryId::parse(e).ok()) else {
            return Ok(Outcome::NoCanvas);
        };
        // The canvas worker's record names the entry's current canvas; the package metadata
        // only the one that asked for this version.
        let canvas = record::canvas(store, &entry)
            .await
            .map_err(|e| registry_error(e.into()))?
            .canvas_id
            .or_else(|| id_field(&meta, "canvas_id").and_then(|c| CanvasId::parse(c).ok()));
        let Some(canvas) = canvas else {
            return Ok(Outcome::NoCanvas);
        };
        let now = chrono::Utc::now();
        let trigger = Trigger {
            event_type: EventType::Other(PACKAGE_REVISION.to_owned()),
            event_id: None,
            webhook_id: None,
            occurred_at: now,
            user_id: None,
        };
        let job = CanvasJob::follow_up(
            entry.clone(),
            Some(canvas.clone()),
            CanvasAction::Refresh,
            &trigger,
            now,
        );
        bw_worker::send_job(self.canvas_queue.as_ref(), job)
            .await
            .map_err(EventError::Queue)?;
        Ok(Outcome::Refresh { entry, canvas })
    }
}

fn id_field<'a>(meta: &'a Value, name: &str) -> Option<&'a str> {
    meta.get(name).and_then(Value::as_str)
}

#[async_trait]
impl Handler for PackageEventHandler {
    type Job = PackageEvent;

    async fn handle(&self, event: &PackageEvent, _context: &JobContext) -> Result<String, Failure> {
        let span = tracing::info_span!(
            "package_event",
            package = %event.handle,
            top_hash = event.top_hash.as_deref(),
        );
        let detail = match self.run(event).instrument(span).await {
            Ok(Outcome::Refresh { entry, canvas }) => {
                tracing::Span::current().record("entry_id", entry.as_str());
                format!("refresh of canvas {canvas} queued")
            }
            Ok(Outcome::NotOurs) => "not one of our packages".to_owned(),
            Ok(Outcome::Stale) => "stale: a newer revision exists".to_owned(),
            Ok(Outcome::NoCanvas) => "the package's entry has no canvas".to_owned(),
            Err(e) => return Err(Failure::of(&e, e.is_permanent())),
        };
        Ok(detail)
    }

    async fn dead_lettered(&self, _event: Option<&PackageEvent>, _reason: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_and_filter() {
        let body = r#"{"detail-type":"package-revision","detail":{"bucket":"quilt-example","handle":"benchling/EXP1","topHash":"abc"}}"#;
        let event = PackageEvent::from_body(body).unwrap();
        assert_eq!(event.top_hash.as_deref(), Some("abc"));
        assert!(event.is_ours("quilt-example", "benchling"));
        assert!(!event.is_ours("other-bucket", "benchling"));
        assert!(!event.is_ours("quilt-example", "bench"));
        assert!(!event.is_ours("quilt-example", "benchling/EXP1"));
        for bad in [
            "not json",
            r#"{"detail":{"bucket":"b"}}"#,
            r#"{"detail":{"bucket":"","handle":"a/b"}}"#,
            r#"{"detail":{"bucket":"b","handle":"a/b","topHash":7}}"#,
        ] {
            assert!(PackageEvent::from_body(bad).is_err(), "{bad}");
        }
    }
}
