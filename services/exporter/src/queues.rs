//! The queues the exporter talks to.

use std::sync::Arc;

use bw_contracts::{CanvasJob, ExportJob, Job as _, RenderJob};
use bw_queue::{Queue, QueueName, QueueOpener};

/// The queues the exporter reads and writes.
#[derive(Clone, Debug)]
pub struct Queues {
    /// Export jobs come from here.
    pub export: Arc<dyn Queue>,
    /// Render jobs go here.
    pub render: Arc<dyn Queue>,
    /// Canvas jobs (failures, refreshes) go here.
    pub canvas: Arc<dyn Queue>,
}

impl Queues {
    /// The queues the exporter reads the URLs of.
    pub const NAMES: [QueueName; 3] = [ExportJob::QUEUE, RenderJob::QUEUE, CanvasJob::QUEUE];

    /// Opens them through `opener`.
    pub fn open(opener: &QueueOpener) -> Self {
        Self {
            export: opener.open(ExportJob::QUEUE),
            render: opener.open(RenderJob::QUEUE),
            canvas: opener.open(CanvasJob::QUEUE),
        }
    }
}
