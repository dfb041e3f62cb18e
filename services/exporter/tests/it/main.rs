//! The exporter's integration tests, one binary (each test binary relinks the AWS SDK): archive
//! validation, export and download, publishing, the worker in process and the release binary.

mod archive;
mod arrival;
mod binary;
mod common;
mod export;
mod publish;
mod worker;
