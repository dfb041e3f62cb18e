//! Job messages: what one service asks another to do, through a queue.
//!
//! Every message is a [`JobEnvelope`]: a schema version, the job kind, the W3C `traceparent`
//! of the span that produced it (so a trace follows the work across queue hops) and the job.
//! Producers and consumers share these types, so a change to a job is a change to one file.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::button::Button;
use crate::id::{AppId, CanvasId, EntryId, EventId, FeatureId, UserId, WebhookId};
use crate::queue::QueueName;
use crate::webhook::EventType;

/// The envelope schema version this build writes and reads.
pub const JOB_SCHEMA_VERSION: u16 = 1;

/// What caused a job, carried along so later stages log, trace and timestamp truthfully.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// The webhook event type.
    pub event_type: EventType,
    /// Benchling's event id, when the event has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<EventId>,
    /// The delivery that carried it; absent for jobs one worker creates for another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_id: Option<WebhookId>,
    /// When it happened: the event's `createdAt`, else the signed webhook timestamp.
    pub occurred_at: DateTime<Utc>,
    /// Who did it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
}

/// A job type: its kind name and how queues order and deduplicate it.
pub trait Job: Serialize + DeserializeOwned {
    /// The `kind` written in the envelope.
    const KIND: &'static str;

    /// The queue that carries it.
    const QUEUE: QueueName;

    /// The FIFO group: jobs of one group run one at a time, in order.
    fn group_id(&self) -> String;

    /// A deterministic deduplication id: sending the same job twice stores it once.
    fn dedup_id(&self) -> String;

    /// The entry the job is about, when known: logged with every outcome.
    fn entry_id(&self) -> Option<&EntryId>;
}

/// Export an entry from Benchling into its package prefix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportJob {
    /// The entry to export.
    pub entry_id: EntryId,
    /// The entry's canvas, when the export was asked for from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canvas_id: Option<CanvasId>,
    /// The tenant URL from the webhook, for links in metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// What caused it.
    pub trigger: Trigger,
}

impl Job for ExportJob {
    const KIND: &'static str = "export";
    const QUEUE: QueueName = QueueName::EXPORT;

    fn group_id(&self) -> String {
        self.entry_id.to_string()
    }

    fn dedup_id(&self) -> String {
        dedup_id(Self::KIND, &self.trigger, self.entry_id.as_str())
    }

    fn entry_id(&self) -> Option<&EntryId> {
        Some(&self.entry_id)
    }
}

/// One file an export wrote into the package prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageFile {
    /// The name inside the package, relative to the package prefix (`data/plate 1.csv`).
    pub name: String,
    /// The object key in the bucket.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// The files of a render job: in the message when the list is small, otherwise in an object
/// (a claim check), so a message never nears the queue's size limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FileList {
    /// The files themselves.
    Inline {
        /// The files, in archive order.
        files: Vec<PackageFile>,
    },
    /// A JSON array of [`PackageFile`] stored in the bucket.
    Stored {
        /// Its key in the bucket.
        key: String,
        /// How many files it lists.
        count: usize,
    },
}

/// Render an exported entry version into the package's metadata files and announce it to Quilt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenderJob {
    /// The entry.
    pub entry_id: EntryId,
    /// Its human id (`EXP25000007`), the last segment of the package name.
    pub display_id: String,
    /// The version exported: the entry's `modifiedAt`.
    pub modified_at: DateTime<Utc>,
    /// The bucket written to (the registry).
    pub bucket: String,
    /// The package prefix in the bucket, without a trailing slash (`benchling/EXP25000007`).
    pub package_prefix: String,
    /// Key of the raw entry JSON the exporter stored (claim check).
    pub entry_key: String,
    /// The files written.
    pub files: FileList,
    /// The entry's canvas, when the export was asked for from one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canvas_id: Option<CanvasId>,
    /// The tenant URL from the webhook, for links in metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// What caused the export.
    pub trigger: Trigger,
    /// Set when this version was announced at this time but Quilt's registry never got it:
    /// the packager announces it again, once, if its record still shows that announcement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reannounce: Option<DateTime<Utc>>,
}

impl Job for RenderJob {
    const KIND: &'static str = "render";
    const QUEUE: QueueName = QueueName::RENDER;

    fn group_id(&self) -> String {
        self.entry_id.to_string()
    }

    /// The same trigger and entry version give the same id, so a redelivered export job does
    /// not render twice; a newer version of the entry always gets through.
    fn dedup_id(&self) -> String {
        format!(
            "{}:{}",
            dedup_id(Self::KIND, &self.trigger, self.entry_id.as_str()),
            crate::bookkeeping::version_tag(&self.modified_at)
        )
    }

    fn entry_id(&self) -> Option<&EntryId> {
        Some(&self.entry_id)
    }
}

/// What the canvas worker should do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CanvasAction {
    /// Benchling asked for a canvas (`v2.canvas.initialized`): create it for the entry.
    Create,
    /// A canvas exists (`v2.canvas.created`): render its main view.
    Render,
    /// A user clicked one of our buttons.
    Button {
        /// The decoded button.
        button: Button,
    },
    /// The app was installed or activation was requested: set up the app's home canvas.
    AppHome,
    /// The packager announced a new version to Quilt: show "Updated at" with this time.
    Published {
        /// When the packager message was sent.
        published_at: DateTime<Utc>,
    },
    /// "Update Package" found the announced version already in Quilt's registry: say the
    /// package is up to date.
    UpToDate {
        /// When that version was announced.
        published_at: DateTime<Utc>,
        /// The registry's latest revision, which holds it.
        top_hash: String,
    },
    /// Quilt built a new revision of the entry's package (a package event): render the main
    /// view with a fresh linked-package query.
    Refresh,
    /// An export failed for good: show the reason on the entry's canvas.
    ExportFailed {
        /// Why, in words a user can act on (no URLs or credentials).
        reason: String,
    },
}

/// Longest failure reason a canvas is asked to show.
pub const MAX_FAILURE_REASON_CHARS: usize = 500;

impl CanvasAction {
    /// Shows why an update failed, cut to [`MAX_FAILURE_REASON_CHARS`] characters.
    pub fn export_failed(reason: &str) -> Self {
        Self::ExportFailed {
            reason: reason.chars().take(MAX_FAILURE_REASON_CHARS).collect(),
        }
    }
}

/// Create, render or update an app canvas.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanvasJob {
    /// The canvas, when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canvas_id: Option<CanvasId>,
    /// The entry the canvas belongs to, when known without asking Benchling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_id: Option<EntryId>,
    /// The app feature of the canvas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_id: Option<FeatureId>,
    /// The installed app (lifecycle jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<AppId>,
    /// What to do.
    pub action: CanvasAction,
    /// What caused it.
    pub trigger: Trigger,
}

impl CanvasJob {
    /// A job one worker sends for an entry's canvas about work it did for `cause`; deduplicated
    /// by the time `at`, not by the original delivery.
    pub fn follow_up(
        entry_id: EntryId,
        canvas_id: Option<CanvasId>,
        action: CanvasAction,
        cause: &Trigger,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            canvas_id,
            entry_id: Some(entry_id),
            feature_id: None,
            app_id: None,
            action,
            trigger: Trigger {
                webhook_id: None,
                occurred_at: at,
                ..cause.clone()
            },
        }
    }
}

impl Job for CanvasJob {
    const KIND: &'static str = "canvas";
    const QUEUE: QueueName = QueueName::CANVAS;

    /// One canvas's jobs never run concurrently: grouped by entry when it is known (notices
    /// from an export the entry's own webhook started name no canvas, and must not race the
    /// canvas's clicks), else by canvas, else by app.
    fn group_id(&self) -> String {
        self.entry_id
            .as_ref()
            .map(|e| e.to_string())
            .or_else(|| self.canvas_id.as_ref().map(|c| c.to_string()))
            .or_else(|| self.app_id.as_ref().map(|a| a.to_string()))
            .unwrap_or_else(|| "app".to_owned())
    }

    fn dedup_id(&self) -> String {
        dedup_id(Self::KIND, &self.trigger, &self.group_id())
    }

    fn entry_id(&self) -> Option<&EntryId> {
        self.entry_id.as_ref()
    }
}

/// Deliveries are deduplicated by webhook id; internal jobs by subject and time.
fn dedup_id(kind: &str, trigger: &Trigger, subject: &str) -> String {
    match &trigger.webhook_id {
        Some(webhook) => format!("{kind}:{webhook}"),
        None => format!(
            "{kind}:{subject}:{}",
            trigger
                .occurred_at
                .timestamp_nanos_opt()
                .unwrap_or_default()
        ),
    }
}

/// A versioned job message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobEnvelope<J> {
    /// Schema version ([`JOB_SCHEMA_VERSION`]).
    pub version: u16,
    /// The job kind ([`Job::KIND`]).
    pub kind: String,
    /// W3C trace context of the producing span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The job.
    pub job: J,
}

/// A message body that is not a job this build can run. Permanent: redelivery cannot fix it.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Not JSON, or not an envelope.
    #[error("not a job envelope: {0}")]
    Malformed(String),
    /// Written by a newer or older schema.
    #[error("unsupported job schema version {0} (this build reads {JOB_SCHEMA_VERSION})")]
    UnsupportedVersion(u16),
    /// A job of another kind (sent to the wrong queue).
    #[error("expected a {expected} job, got {actual:?}")]
    WrongKind {
        /// The kind this consumer runs.
        expected: &'static str,
        /// The kind in the message.
        actual: String,
    },
}

impl<J: Job> JobEnvelope<J> {
    /// Wraps a job with the current schema version.
    pub fn new(job: J, traceparent: Option<String>) -> Self {
        Self {
            version: JOB_SCHEMA_VERSION,
            kind: J::KIND.to_owned(),
            traceparent,
            job,
        }
    }

    /// The message body.
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("job types serialize infallibly")
    }

    /// Reads a message body, checking version and kind before the job itself.
    pub fn from_body(body: &str) -> Result<Self, JobError> {
        #[derive(Deserialize)]
        struct Header {
            version: u16,
            kind: String,
        }
        let header: Header =
            serde_json::from_str(body).map_err(|e| JobError::Malformed(e.to_string()))?;
        if header.version != JOB_SCHEMA_VERSION {
            return Err(JobError::UnsupportedVersion(header.version));
        }
        if header.kind != J::KIND {
            return Err(JobError::WrongKind {
                expected: J::KIND,
                actual: header.kind,
            });
        }
        serde_json::from_str(body).map_err(|e| JobError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::button::{ButtonAction, PackageTarget};

    fn trigger(webhook: Option<&str>) -> Trigger {
        Trigger {
            event_type: EventType::EntryUpdatedFields,
            event_id: Some(EventId::parse("evt_1").unwrap()),
            webhook_id: webhook.map(|w| WebhookId::parse(w).unwrap()),
            occurred_at: "2024-06-07T21:46:48.111811Z".parse().unwrap(),
            user_id: None,
        }
    }

    #[test]
    fn export_job_round_trips_with_trace_context() {
        let job = ExportJob {
            entry_id: EntryId::parse("etr_1").unwrap(),
            canvas_id: None,
            base_url: Some("https://t.benchling.com".into()),
            trigger: trigger(Some("msg_1")),
        };
        let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned();
        let body = JobEnvelope::new(job.clone(), Some(tp.clone())).to_body();
        let back = JobEnvelope::<ExportJob>::from_body(&body).unwrap();
        assert_eq!(back.job, job);
        assert_eq!(back.traceparent, Some(tp));
        assert_eq!(job.group_id(), "etr_1");
        assert_eq!(job.dedup_id(), "export:msg_1");
    }

    #[test]
    fn a_failure_reason_is_cut_by_characters() {
        let CanvasAction::ExportFailed { reason } = CanvasAction::export_failed(&"é".repeat(600))
        else {
            panic!("not a failure")
        };
        assert_eq!(reason, "é".repeat(MAX_FAILURE_REASON_CHARS));
        assert_eq!(
            CanvasAction::export_failed("short"),
            CanvasAction::ExportFailed {
                reason: "short".to_owned()
            }
        );
    }

    #[test]
    fn canvas_job_carries_the_button_and_groups_by_entry() {
        let button = Button::new(
            EntryId::parse("etr_1").unwrap(),
            ButtonAction::Browse {
                package: PackageTarget::Linked("a/b".into()),
                page: 1,
                size: 15,
            },
        );
        let job = CanvasJob {
            canvas_id: Some(CanvasId::parse("cnvs_1").unwrap()),
            entry_id: Some(EntryId::parse("etr_1").unwrap()),
            feature_id: None,
            app_id: None,
            action: CanvasAction::Button { button },
            trigger: trigger(None),
        };
        let body = JobEnvelope::new(job.clone(), None).to_body();
        assert_eq!(JobEnvelope::<CanvasJob>::from_body(&body).unwrap().job, job);
        assert_eq!(job.group_id(), "etr_1");
        assert!(job.dedup_id().starts_with("canvas:etr_1:"));
        let created = CanvasJob {
            entry_id: None,
            ..job
        };
        assert_eq!(created.group_id(), "cnvs_1");
    }

    #[test]
    fn render_jobs_dedup_per_trigger_and_version() {
        let modified_at = "2024-06-07T21:46:48.111811Z".parse().unwrap();
        let job = RenderJob {
            reannounce: None,
            entry_id: EntryId::parse("etr_1").unwrap(),
            display_id: "EXP1".into(),
            modified_at,
            bucket: "b".into(),
            package_prefix: "benchling/EXP1".into(),
            entry_key: crate::bookkeeping::entry_snapshot_key(
                &EntryId::parse("etr_1").unwrap(),
                &modified_at,
            ),
            files: FileList::Inline {
                files: vec![PackageFile {
                    name: "a.csv".into(),
                    key: "benchling/EXP1/a.csv".into(),
                    size: 3,
                }],
            },
            canvas_id: None,
            base_url: None,
            trigger: trigger(Some("msg_1")),
        };
        let body = JobEnvelope::new(job.clone(), None).to_body();
        assert!(body.contains(r#""files":{"type":"inline","files":[{"name":"a.csv""#));
        assert_eq!(JobEnvelope::<RenderJob>::from_body(&body).unwrap().job, job);
        assert_eq!(job.dedup_id(), "render:msg_1:20240607T214648.111811Z");
        let newer = RenderJob {
            modified_at: modified_at + chrono::Duration::seconds(1),
            ..job.clone()
        };
        assert_ne!(newer.dedup_id(), job.dedup_id());
        assert_eq!(job.group_id(), "etr_1");
    }

    #[test]
    fn refuses_other_versions_and_kinds() {
        let body = r#"{"version":2,"kind":"export","job":{}}"#;
        assert!(matches!(
            JobEnvelope::<ExportJob>::from_body(body),
            Err(JobError::UnsupportedVersion(2))
        ));
        let body = r#"{"version":1,"kind":"canvas","job":{}}"#;
        assert!(matches!(
            JobEnvelope::<ExportJob>::from_body(body),
            Err(JobError::WrongKind { .. })
        ));
        assert!(matches!(
            JobEnvelope::<ExportJob>::from_body("nope"),
            Err(JobError::Malformed(_))
        ));
    }
}
