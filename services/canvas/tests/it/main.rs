//! The canvas worker's integration tests, one binary (each test binary relinks the AWS SDK):
//! Athena queries, golden views, the worker in process and the release binary.

mod athena;
mod binary;
mod views;
mod worker;
