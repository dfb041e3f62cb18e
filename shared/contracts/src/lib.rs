//! The contracts every service shares: Benchling identifiers, typed webhook payloads, canvas
//! button ids, the versioned job messages and the queues that carry them, the messages exchanged with Quilt, and where the services keep
//! their records in the bucket.
//!
//! Raw JSON becomes typed values here, at the edge; nothing downstream handles unvalidated ids.

pub mod bookkeeping;
pub mod button;
pub mod id;
pub mod job;
pub mod queue;
pub mod quilt;
pub mod webhook;

pub use button::{Button, ButtonAction, PackageTarget};
pub use id::{
    AppDefinitionId, AppId, CanvasId, EntryId, EventId, FeatureId, IdError, UserId, WebhookId,
};
pub use job::{
    CanvasAction, CanvasJob, ExportJob, FileList, Job, JobEnvelope, JobError, PackageFile,
    RenderJob, Trigger,
};
pub use queue::{QueueKind, QueueName};
pub use quilt::PackagerMessage;
pub use webhook::{EventType, Message, PayloadError, Webhook};
