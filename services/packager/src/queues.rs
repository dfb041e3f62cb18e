//! The queues the packager talks to.

use std::sync::Arc;

use bw_contracts::{CanvasJob, Job as _, RenderJob};
use bw_queue::{Queue, QueueName, QueueOpener};

/// The queues the packager reads and writes.
#[derive(Clone, Debug)]
pub struct Queues {
    /// Render jobs come from here.
    pub render: Arc<dyn Queue>,
    /// "Updated" notices go here.
    pub canvas: Arc<dyn Queue>,
    /// Quilt's packager queue.
    pub packager: Arc<dyn Queue>,
}

impl Queues {
    /// The queues the packager reads the URLs of.
    pub const NAMES: [QueueName; 3] = [
        RenderJob::QUEUE,
        CanvasJob::QUEUE,
        QueueName::QUILT_PACKAGER,
    ];

    /// Opens them through `opener`.
    pub fn open(opener: &QueueOpener) -> Self {
        Self {
            render: opener.open(RenderJob::QUEUE),
            canvas: opener.open(CanvasJob::QUEUE),
            packager: opener.open(QueueName::QUILT_PACKAGER),
        }
    }
}
