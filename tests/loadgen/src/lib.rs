//! Benchmark tooling for the services. The binaries are the benchmarks (`webhook-bench`,
//! `archive-bench`, `render-bench`, `canvas-bench`); this library holds what the three service
//! benchmarks share.

pub mod service_bench;
