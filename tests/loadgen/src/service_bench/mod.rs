//! What the service benchmarks share: running a release service binary as a child process,
//! reading its CPU and memory from `/proc`, and local bucket directories.

pub mod buckets;
pub mod process;
pub mod procfs;
