//! The crate's integration tests, in one test binary (each `tests/*.rs` would link its own).

mod backfill;
mod config;
mod deploy;
mod image;
mod init;
mod manifest;
mod profiles;
mod redrive;
mod secret;
mod status;
