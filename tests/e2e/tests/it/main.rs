//! One test binary for every end-to-end suite (each `tests/*.rs` file would link the whole
//! AWS SDK again).

mod degraded;
mod fixtures;
mod harness;
mod http;
mod pipeline;
mod signature;
mod sqs;
