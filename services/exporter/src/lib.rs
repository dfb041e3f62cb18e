//! The export worker: turns a Benchling entry export into the package's files in object storage.

pub mod archive;
pub mod download;
pub mod export;
pub mod publish;
