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
    /// Which kind of SQS queue it must be.
    pub kind: QueueKind,
}

/// The kind of SQS queue a [`QueueName`] must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueKind {
    /// FIFO (a URL ending in `.fifo`): jobs of one group run one at a time, in order, deduplicated.
    Fifo,
    /// Standard (a URL not ending in `.fifo`), as EventBridge targets are.
    Standard,
    /// Either: a queue another stack owns, which the services adapt to.
    Either,
}

impl QueueName {
    /// Export jobs: from the ingress and the canvas worker to the exporter.
    pub const EXPORT: Self = Self::new("export.fifo", "EXPORT_QUEUE_URL", QueueKind::Fifo);
    /// Render jobs: from the exporter to the packager.
    pub const RENDER: Self = Self::new("render.fifo", "RENDER_QUEUE_URL", QueueKind::Fifo);
    /// Canvas jobs: from the ingress, the exporter and the packager to the canvas worker.
    pub const CANVAS: Self = Self::new("canvas.fifo", "CANVAS_QUEUE_URL", QueueKind::Fifo);
    /// Quilt's packager queue, which the packager announces each package version to (standard,
    /// or FIFO when Quilt's stack made it so).
    pub const QUILT_PACKAGER: Self =
        Self::new("quilt-packager", "PACKAGER_SQS_URL", QueueKind::Either);
    /// Quilt's package events (EventBridge `package-revision`), read by the canvas worker.
    pub const PACKAGE_EVENTS: Self = Self::new(
        "package-events",
        "PACKAGE_EVENT_QUEUE_URL",
        QueueKind::Standard,
    );

    const fn new(name: &'static str, url_var: &'static str, kind: QueueKind) -> Self {
        Self {
            name,
            url_var,
            kind,
        }
    }

    /// Whether it is a FIFO queue.
    pub fn is_fifo(&self) -> bool {
        self.kind == QueueKind::Fifo
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}
