//! Building a revision from a packager message and writing it where Quilt keeps revisions:
//! `.quilt/packages/{top hash}` (the manifest), `.quilt/named_packages/{name}/{unix time}` and
//! `.quilt/named_packages/{name}/latest` (the top hash as text).

use std::sync::Arc;

use bw_contracts::PackagerMessage;
use bw_store::{Buckets, Key, ObjectStore, Prefix, PutOptions, StoreError};
use bytes::Bytes;
use serde_json::Value;
use tokio::io::AsyncReadExt as _;

use crate::manifest::{ChunkedHasher, Manifest, ManifestEntry, physical_key};

/// Largest package metadata file read.
const MAX_METADATA_BYTES: u64 = 16 * 1024 * 1024;

/// A revision written to a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revision {
    /// The registry bucket.
    pub bucket: String,
    /// The package name.
    pub name: String,
    /// Its top hash.
    pub top_hash: String,
    /// How many files it holds.
    pub files: usize,
}

/// Why a message could not become a revision.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The message names a source outside its registry, or an invalid one.
    #[error("source {source_prefix:?} is not a prefix of registry {registry:?}")]
    Source {
        /// The message's `source_prefix`.
        source_prefix: String,
        /// The message's `registry`.
        registry: String,
    },
    /// The source prefix holds no object.
    #[error("nothing under {0}")]
    Empty(String),
    /// The metadata file is not a JSON object.
    #[error("metadata {key}: {reason}")]
    Metadata {
        /// The metadata file's key.
        key: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PackageError {
    /// Whether the same message can never succeed.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Source { .. } | Self::Metadata { .. } => true,
            Self::Empty(_) => false,
            Self::Store(e) => !e.is_transient(),
        }
    }
}

/// Builds the revision `message` asks for, as Quilt's packager does: every object under the
/// source prefix, keyed by its path below it, with the metadata file as the package metadata.
pub async fn push(buckets: &Buckets, message: &PackagerMessage) -> Result<Revision, PackageError> {
    let source_error = || PackageError::Source {
        source_prefix: message.source_prefix.clone(),
        registry: message.registry.clone(),
    };
    let store = buckets.open(&message.registry)?;
    let prefix = message
        .source_key_prefix()
        .and_then(|prefix| Prefix::new(prefix).ok())
        .ok_or_else(source_error)?;
    let below = prefix
        .as_key()
        .map_or(String::new(), |key| format!("{key}/"));
    let mut entries = Vec::new();
    for object in store.list(&prefix).await? {
        let Some(logical_key) = object.key.as_str().strip_prefix(&below) else {
            continue;
        };
        entries.push(ManifestEntry {
            logical_key: logical_key.to_owned(),
            physical_key: physical_key(&message.registry, object.key.as_str()),
            size: object.size,
            hash: hash(store.as_ref(), &object.key, object.size).await?,
        });
    }
    if entries.is_empty() {
        return Err(PackageError::Empty(message.source_prefix.clone()));
    }
    let metadata_key = prefix
        .join(&message.metadata_uri)
        .map_err(|_| source_error())?;
    let manifest = Manifest {
        message: message.commit_message.clone(),
        user_meta: Some(metadata(store.as_ref(), &metadata_key).await?),
        entries,
    };
    let top_hash = manifest.top_hash();
    let put = |key: String, body: String| {
        let store = Arc::clone(&store);
        async move {
            store
                .put_bytes(
                    &Key::new(key)?,
                    Bytes::from(body),
                    PutOptions::content_type("text/plain"),
                )
                .await
        }
    };
    // The manifest first and `latest` last: a reader never follows a pointer to nothing.
    put(bw_registry::manifest_key(&top_hash), manifest.to_jsonl()).await?;
    let package = &message.package_name;
    let now = chrono::Utc::now().timestamp().to_string();
    put(bw_registry::pointer_key(package, &now), top_hash.clone()).await?;
    put(
        bw_registry::pointer_key(package, "latest"),
        top_hash.clone(),
    )
    .await?;
    Ok(Revision {
        bucket: message.registry.clone(),
        name: message.package_name.clone(),
        top_hash,
        files: manifest.entries.len(),
    })
}

/// Streams an object through the hasher.
async fn hash(store: &dyn ObjectStore, key: &Key, size: u64) -> Result<String, StoreError> {
    let mut reader = store.get(key).await?;
    let mut hasher = ChunkedHasher::new(size);
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let read = reader
            .read(&mut buffer)
            .await
            .map_err(|e| StoreError::backend(true, key.to_string(), "GetObject", e.to_string()))?;
        if read == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buffer[..read]);
    }
}

/// The package metadata: the metadata file's JSON object.
async fn metadata(store: &dyn ObjectStore, key: &Key) -> Result<Value, PackageError> {
    let invalid = |reason: String| PackageError::Metadata {
        key: key.to_string(),
        reason,
    };
    let bytes = store.get_bytes(key, MAX_METADATA_BYTES).await?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(Value::Object(map)),
        Ok(_) => Err(invalid("not a JSON object".to_owned())),
        Err(e) => Err(invalid(e.to_string())),
    }
}
