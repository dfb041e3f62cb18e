//! The packager's integration tests, one binary (each test binary relinks the AWS SDK): golden
//! metadata files, the worker in process and the release binary.

mod binary;
mod golden;
mod worker;
