//! Opening the store of a named bucket. The bucket comes from the Benchling secret, which may
//! rotate, so services open it per job rather than once at start-up.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use aws_sdk_s3::Client;

use crate::{FsStore, ObjectStore, S3Store, StoreError};

/// Where buckets live: Amazon S3, or one directory per bucket below a local root (the embedded
/// default).
#[derive(Clone)]
pub enum Buckets {
    /// Real S3 buckets.
    S3(Client),
    /// `{root}/{bucket}/` directories.
    Directory(PathBuf),
}

impl fmt::Debug for Buckets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Buckets {
    /// The buckets of a configured backend; S3 needs `aws`.
    ///
    /// # Panics
    /// When the backend is S3 and `aws` is `None`: services load the AWS configuration whenever
    /// something lives in AWS.
    pub fn for_backend(
        backend: &bw_config::StoreBackend,
        aws: Option<&aws_config::SdkConfig>,
    ) -> Self {
        match backend {
            bw_config::StoreBackend::S3 => Self::S3(crate::s3_client(
                aws.expect("the AWS configuration is loaded for an S3 store"),
            )),
            bw_config::StoreBackend::Directory(root) => Self::Directory(root.clone()),
        }
    }

    /// The backend in words, for start-up logs: `s3` or `directory /path`.
    pub fn describe(&self) -> String {
        match self {
            Self::S3(_) => "s3".to_owned(),
            Self::Directory(root) => format!("directory {}", root.display()),
        }
    }

    /// The store of `bucket`. No I/O happens here.
    ///
    /// # Errors
    ///
    /// [`StoreError::Invalid`] when `bucket` is not a valid S3 bucket name (3–63 lowercase
    /// letters, digits, `.` and `-`, starting and ending with a letter or digit), which also
    /// keeps a directory bucket inside its root.
    pub fn open(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
        check_bucket_name(bucket)?;
        Ok(match self {
            Self::S3(client) => Arc::new(S3Store::new(client.clone(), bucket)),
            Self::Directory(root) => Arc::new(FsStore::new(root.join(bucket))),
        })
    }
}

fn check_bucket_name(bucket: &str) -> Result<(), StoreError> {
    let invalid = |reason| {
        Err(StoreError::Invalid {
            key: bucket.to_owned(),
            reason,
        })
    };
    if !(3..=63).contains(&bucket.len()) {
        return invalid("a bucket name has 3 to 63 characters");
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return invalid("a bucket name has only lowercase letters, digits, '.' and '-'");
    }
    let edge_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !edge_ok(bucket.bytes().next()) || !edge_ok(bucket.bytes().last()) || bucket.contains("..") {
        return invalid("a bucket name starts and ends with a letter or digit, without '..'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_buckets_stay_below_the_root() {
        let buckets = Buckets::Directory(PathBuf::from("/tmp/root"));
        let store = buckets.open("quilt-registry.example").unwrap();
        assert_eq!(store.location(), "/tmp/root/quilt-registry.example/");
        for bad in [
            "..", "../etc", "a/b", "ab", "Bucket", "-ab", "ab-", "a..b", "",
        ] {
            assert!(buckets.open(bad).is_err(), "{bad:?} accepted");
        }
    }
}
