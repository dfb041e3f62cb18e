//! The runtime every queue consumer shares: long-poll receive, bounded concurrency that keeps
//! FIFO groups in order, a visibility heartbeat while a job runs, delete only after success,
//! permanent failures moved to the dead-letter queue with their reason, transient ones left to
//! redelivery with backoff, and a graceful stop that releases unfinished jobs at once; plus the
//! liveness and readiness probes every worker serves.

mod binary;
mod probe;
mod runtime;
mod service;

pub use binary::{Service, main, run};
pub use probe::{Readiness, Warnings, serve_probes};
pub use runtime::{
    Failure, Handler, Incoming, JobContext, Worker, WorkerHealth, WorkerOptions, send_job,
    shutdown_on_signals,
};
pub use service::{Consumer, WorkerConfig, serve};
