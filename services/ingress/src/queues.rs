//! The queues the ingress writes to.

use std::sync::Arc;

use bw_contracts::{CanvasJob, ExportJob, Job as _};
use bw_queue::{Queue, QueueName, QueueOpener};

/// The two queues the ingress writes to.
#[derive(Clone, Debug)]
pub struct Queues {
    /// Export jobs (FIFO, grouped by entry).
    pub export: Arc<dyn Queue>,
    /// Canvas jobs (FIFO, grouped by canvas).
    pub canvas: Arc<dyn Queue>,
    /// `embedded` or `sqs`, for `/config` and logs.
    pub backend: &'static str,
    /// Whether sends go through a [`bw_queue::Batcher`]: batching amortises network round
    /// trips, and an in-process queue has none, so it is called directly.
    pub batched: bool,
}

impl Queues {
    /// The queues the ingress reads the URLs of.
    pub const NAMES: [QueueName; 2] = [ExportJob::QUEUE, CanvasJob::QUEUE];

    /// Opens them through `opener`.
    pub fn open(opener: &QueueOpener) -> Self {
        Self {
            export: opener.open(ExportJob::QUEUE),
            canvas: opener.open(CanvasJob::QUEUE),
            backend: if opener.is_sqs() { "sqs" } else { "embedded" },
            batched: opener.is_sqs(),
        }
    }
}
