//! The queues the canvas worker talks to.

use std::sync::Arc;

use bw_contracts::{CanvasJob, ExportJob, Job as _};
use bw_queue::{Queue, QueueName, QueueOpener};

/// The queues the canvas worker reads and writes.
#[derive(Clone, Debug)]
pub struct Queues {
    /// Canvas jobs come from here; refreshes caused by package events go here too.
    pub canvas: Arc<dyn Queue>,
    /// "Update Package" sends export jobs here.
    pub export: Arc<dyn Queue>,
    /// Quilt's package events, when configured.
    pub package_events: Option<Arc<dyn Queue>>,
}

impl Queues {
    /// The queues the canvas worker needs the URLs of; it reads Quilt's package events too
    /// when [`QueueName::PACKAGE_EVENTS`] is configured.
    pub const NAMES: [QueueName; 2] = [CanvasJob::QUEUE, ExportJob::QUEUE];

    /// Opens them through `opener`; package events only when their queue is configured, since
    /// nothing in process produces them.
    pub fn open(opener: &QueueOpener) -> Self {
        Self {
            canvas: opener.open(CanvasJob::QUEUE),
            export: opener.open(ExportJob::QUEUE),
            package_events: opener.open_configured(QueueName::PACKAGE_EVENTS),
        }
    }
}
