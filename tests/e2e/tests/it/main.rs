//! One test binary for every end-to-end suite (each `tests/*.rs` file would link the whole
//! AWS SDK again).

mod compose;
mod degraded;
mod fixtures;
mod harness;
mod hostile;
mod http;
mod pipeline;
mod processes;
mod signature;
mod soak;
mod sqs;
mod system;
