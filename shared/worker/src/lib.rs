//! The runtime every queue consumer shares: long-poll receive, bounded concurrency that keeps
//! FIFO groups in order, a visibility heartbeat while a job runs, delete only after success,
//! permanent failures moved to the dead-letter queue with their reason, transient ones left to
//! redelivery with backoff, and a graceful stop that releases unfinished jobs at once.

mod runtime;

pub use runtime::{Failure, Handler, JobContext, Worker, WorkerOptions, shutdown_on_signals};
