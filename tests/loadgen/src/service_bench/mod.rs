//! What the service benchmarks share: their command lines, running a release service binary as
//! a child process, reading its CPU and memory from `/proc`, and local bucket directories.

pub mod buckets;
pub mod cli;
pub mod process;
pub mod procfs;
