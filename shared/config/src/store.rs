//! Which object store a worker writes to.

use std::path::PathBuf;

use crate::{Env, FieldError};

/// Where package buckets live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreBackend {
    /// Amazon S3.
    S3,
    /// A local directory with one folder per bucket (the embedded default).
    Directory(PathBuf),
}

impl StoreBackend {
    /// Reads `OBJECT_STORE` (`s3` or `directory`; default `s3` when the service's queues are
    /// SQS, else `directory`) and `OBJECT_STORE_DIR` (default `.local/buckets`).
    pub fn from_env(env: &Env, sqs: bool) -> Self {
        let directory = || {
            Self::Directory(
                env.optional("OBJECT_STORE_DIR")
                    .map_or_else(|| PathBuf::from(".local/buckets"), PathBuf::from),
            )
        };
        match env.optional("OBJECT_STORE").as_deref() {
            Some("s3") => Self::S3,
            Some("directory") => directory(),
            Some(_) => {
                env.record(FieldError::invalid(
                    "OBJECT_STORE",
                    "must be s3 or directory",
                ));
                directory()
            }
            None if sqs => Self::S3,
            None => directory(),
        }
    }
}
