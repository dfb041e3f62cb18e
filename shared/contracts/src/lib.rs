//! The contracts every service shares: Benchling identifiers, typed webhook payloads, canvas
//! button ids, and the versioned job messages carried on our queues.
//!
//! Raw JSON becomes typed values here, at the edge; nothing downstream handles unvalidated ids.

pub mod button;
pub mod id;
pub mod job;
pub mod webhook;

pub use button::{Button, ButtonAction, PackageTarget};
pub use id::{
    AppDefinitionId, AppId, CanvasId, EntryId, EventId, FeatureId, IdError, UserId, WebhookId,
};
pub use job::{CanvasAction, CanvasJob, ExportJob, Job, JobEnvelope, JobError, Trigger};
pub use webhook::{EventType, Message, PayloadError, Webhook};
