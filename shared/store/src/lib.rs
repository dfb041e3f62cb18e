//! Object storage for packages: one [`ObjectStore`] trait with an Amazon S3 backend
//! ([`S3Store`]) and a filesystem backend ([`FsStore`], the embedded default), streaming both ways.

mod body;
mod buckets;
mod fs;
mod key;
mod record;
mod s3;

use std::fmt;
use std::io;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

pub use buckets::Buckets;
pub use fs::FsStore;
pub use key::{Key, MAX_KEY_LEN, Prefix};
pub use record::{MAX_RECORD_BYTES, get_record};
pub use s3::{MultipartOptions, S3Store, s3_client};

/// A streaming object body. Read errors surface as `std::io::Error`.
pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

/// The bytes of an object being written by [`ObjectStore::put_stream`], in order: each item a
/// chunk, or the error that abandons the put.
pub type ObjectChunks = mpsc::Receiver<io::Result<Bytes>>;

/// Options for a put.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// The object's media type; `None` derives it from the key's extension with
    /// [`content_type_for`].
    pub content_type: Option<String>,
}

impl PutOptions {
    /// Options with an explicit content type.
    pub fn content_type(content_type: impl Into<String>) -> Self {
        Self {
            content_type: Some(content_type.into()),
        }
    }

    /// Options whose content type is derived from `name`'s extension.
    pub fn for_name(name: &str) -> Self {
        Self::content_type(content_type_for(name))
    }

    /// The content type to store for `key`.
    fn resolve(&self, key: &Key) -> String {
        self.content_type
            .clone()
            .unwrap_or_else(|| content_type_for(key.as_str()).to_owned())
    }
}

/// The media type for a file name or key, from its extension (case-insensitive);
/// `application/octet-stream` when unknown.
pub fn content_type_for(name: &str) -> &'static str {
    let file_name = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let Some((_, extension)) = file_name.rsplit_once('.') else {
        return "application/octet-stream";
    };
    match extension.to_ascii_lowercase().as_str() {
        "pdf" => "application/pdf",
        "json" => "application/json",
        "md" | "markdown" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "tsv" => "text/tab-separated-values; charset=utf-8",
        "txt" | "log" => "text/plain; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "tif" | "tiff" => "image/tiff",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "fasta" | "fa" | "gb" | "gbk" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// What [`ObjectStore::head`] knows about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's key.
    pub key: Key,
    /// Size in bytes.
    pub size: u64,
    /// The backend's version tag (S3 ETag, quotes removed); `None` on the filesystem.
    pub etag: Option<String>,
    /// The stored media type; `None` on the filesystem, which does not keep one.
    pub content_type: Option<String>,
}

/// One entry of [`ObjectStore::list`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedObject {
    /// The object's key.
    pub key: Key,
    /// Size in bytes.
    pub size: u64,
    /// When it was last written, where the backend says (S3's `LastModified`, the file's
    /// modification time).
    pub modified: Option<std::time::SystemTime>,
}

/// A key [`ObjectStore::delete_many`] could not delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteFailure {
    /// The key.
    pub key: Key,
    /// Why, as the backend said it.
    pub message: String,
}

/// Errors from an object store. Messages name the store (bucket or directory) and the key, never
/// credentials.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key (or prefix) breaks a rule; nothing was sent to the backend.
    #[error("invalid key {key:?}: {reason}")]
    Invalid {
        /// The refused key.
        key: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// No object has this key.
    #[error("{location}: not found")]
    NotFound {
        /// Store and key, e.g. `s3://bucket/pkg/a.csv`.
        location: String,
    },
    /// The object is larger than the caller accepts.
    #[error("{location}: larger than {limit} bytes")]
    TooLarge {
        /// Store and key.
        location: String,
        /// The caller's limit.
        limit: u64,
    },
    /// The backend could not be reached or failed in a way that may pass (network, timeout,
    /// 5xx, throttling, disk full); the same request may succeed later.
    #[error("{location}: {operation} failed (transient): {message}")]
    Unavailable {
        /// Store and key.
        location: String,
        /// The operation, e.g. `PutObject`.
        operation: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The backend refused the request (access denied, no such bucket, not a regular file, …);
    /// retrying will not help.
    #[error("{location}: {operation} failed: {message}")]
    Failed {
        /// Store and key.
        location: String,
        /// The operation.
        operation: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl StoreError {
    /// A backend failure, classed as transient (`Unavailable`) or not (`Failed`).
    pub fn backend(
        transient: bool,
        location: String,
        operation: &'static str,
        message: String,
    ) -> Self {
        if transient {
            Self::Unavailable {
                location,
                operation,
                message,
            }
        } else {
            Self::Failed {
                location,
                operation,
                message,
            }
        }
    }

    /// Whether retrying the same request later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// Whether the error says the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// An object store. Implementations are cheap to share behind an `Arc<dyn ObjectStore>`; every
/// method may be called concurrently.
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// Where the store is, for logs: `s3://bucket/root/` or a directory path.
    fn location(&self) -> String;

    /// Stores the `size` bytes that `chunks` delivers under `key`, replacing any object with
    /// that key, holding no more than a few chunks in memory whatever `size` is.
    ///
    /// The object is written only if exactly `size` bytes arrive and the sender then closes the
    /// channel. An error item, a channel closed early, or a byte beyond `size` abandons the put:
    /// nothing is stored, and readers keep seeing the previous object, if any. A producer that
    /// checks its bytes (a CRC at the end, say) therefore holds back its last chunk until the
    /// check passes.
    async fn put_stream(
        &self,
        key: &Key,
        size: u64,
        chunks: ObjectChunks,
        options: PutOptions,
    ) -> Result<(), StoreError>;

    /// Stores `bytes` under `key`, replacing any object with that key.
    async fn put_bytes(
        &self,
        key: &Key,
        bytes: Bytes,
        options: PutOptions,
    ) -> Result<(), StoreError>;

    /// Opens the object for streaming.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when there is no such object.
    async fn get(&self, key: &Key) -> Result<ObjectReader, StoreError>;

    /// The object's metadata, or `None` when there is no such object.
    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError>;

    /// Every object below `prefix` (see [`Prefix`]), sorted by key.
    async fn list(&self, prefix: &Prefix) -> Result<Vec<ListedObject>, StoreError>;

    /// Deletes the object; a missing object is not an error.
    async fn delete(&self, key: &Key) -> Result<(), StoreError>;

    /// Deletes many objects, missing ones included, and returns the keys that could not be
    /// deleted. An `Err` means a whole request failed; keys of earlier requests may already be
    /// gone, which is harmless because deleting is idempotent and the call can be repeated.
    async fn delete_many(&self, keys: &[Key]) -> Result<Vec<DeleteFailure>, StoreError>;

    /// Reads the whole object, refusing one larger than `limit` bytes.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], or [`StoreError::TooLarge`] once more than `limit` bytes came.
    async fn get_bytes(&self, key: &Key, limit: u64) -> Result<Bytes, StoreError> {
        let reader = self.get(key).await?;
        // One byte past the limit is enough to tell "too large" without reading on.
        let mut reader = reader.take(limit.saturating_add(1));
        let mut buffer = Vec::new();
        reader
            .read_to_end(&mut buffer)
            .await
            .map_err(|error| StoreError::Unavailable {
                location: format!("{}{key}", self.location()),
                operation: "read",
                message: error.to_string(),
            })?;
        if buffer.len() as u64 > limit {
            return Err(StoreError::TooLarge {
                location: format!("{}{key}", self.location()),
                limit,
            });
        }
        Ok(Bytes::from(buffer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_comes_from_the_extension() {
        assert_eq!(content_type_for("a/b/report.PDF"), "application/pdf");
        assert_eq!(content_type_for("entry.json"), "application/json");
        assert_eq!(
            content_type_for("README.md"),
            "text/markdown; charset=utf-8"
        );
        assert_eq!(
            content_type_for("x.tsv"),
            "text/tab-separated-values; charset=utf-8"
        );
        assert_eq!(content_type_for("photo.jpeg"), "image/jpeg");
        assert_eq!(content_type_for("archive.zip"), "application/zip");
        assert_eq!(content_type_for("noext"), "application/octet-stream");
        assert_eq!(
            content_type_for("dir.json/noext"),
            "application/octet-stream"
        );
        assert_eq!(content_type_for("x.unknown"), "application/octet-stream");
    }

    #[test]
    fn default_options_derive_the_type_from_the_key() {
        let key = Key::new("p/data.csv").unwrap();
        assert_eq!(
            PutOptions::default().resolve(&key),
            "text/csv; charset=utf-8"
        );
        assert_eq!(PutOptions::content_type("x/y").resolve(&key), "x/y");
        assert_eq!(
            PutOptions::for_name("a.png").content_type.as_deref(),
            Some("image/png")
        );
    }
}
