//! The system's queues, named once: what an in-process queue is called, which variable holds
//! the SQS URL, and whether the queue is FIFO. Each job kind names its queue
//! ([`Job::QUEUE`](crate::Job::QUEUE)); the two queues that carry no job of ours (Quilt's
//! packager queue and Quilt's package events) are named here too.

use std::fmt;

/// One of the queues the services read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueName {
    /// The name of the in-process queue, and the SQS queue's name in the stack and compose.
    pub name: &'static str,
    /// The environment variable holding the SQS queue URL.
    pub url_var: &'static str,
    /// FIFO: jobs of one group run one at a time, in order, deduplicated.
    pub fifo: bool,
}

impl QueueName {
    /// Export jobs: from the ingress and the canvas worker to the exporter.
    pub const EXPORT: Self = Self::fifo("export.fifo", "EXPORT_QUEUE_URL");
    /// Render jobs: from the exporter to the packager.
    pub const RENDER: Self = Self::fifo("render.fifo", "RENDER_QUEUE_URL");
    /// Canvas jobs: from the ingress, the exporter and the packager to the canvas worker.
    pub const CANVAS: Self = Self::fifo("canvas.fifo", "CANVAS_QUEUE_URL");
    /// Quilt's packager queue, which the packager announces each package version to.
    pub const QUILT_PACKAGER: Self = Self::standard("quilt-packager", "PACKAGER_SQS_URL");
    /// Quilt's package events (EventBridge `package-revision`), read by the canvas worker.
    pub const PACKAGE_EVENTS: Self = Self::standard("package-events", "PACKAGE_EVENT_QUEUE_URL");

    const fn fifo(name: &'static str, url_var: &'static str) -> Self {
        Self {
            name,
            url_var,
            fifo: true,
        }
    }

    const fn standard(name: &'static str, url_var: &'static str) -> Self {
        Self {
            name,
            url_var,
            fifo: false,
        }
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}
