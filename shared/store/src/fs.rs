//! The filesystem backend: keys are paths below a root directory.
//!
//! Writes are atomic: the bytes go to a temporary file in the object's own directory (same
//! filesystem, so `rename` is atomic), which is then renamed over the object. A process killed
//! mid-write leaves at most a temporary file, never a partial object; temporary files are named
//! with [`TEMP_MARKER`], which `list` skips and keys may not use. Nothing is fsynced: this store
//! backs the one-process local pipeline, whose in-process queues do not survive a machine crash
//! either, so durability per object would buy nothing.
//!
//! The content type is not stored (no sidecar files, whose names could collide with keys, and
//! no extended attributes, which not every filesystem has): `head` reports `content_type: None`
//! and local consumers derive it from the extension with [`crate::content_type_for`].
//!
//! A file and a directory cannot share a path, so unlike S3 the store cannot hold both `a/b` and
//! `a/b/c`; such a put fails. Deleting the last object of a directory removes the empty
//! directories above it, so a later put of `a/b` works again.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use crate::body::SizedChunks;
use crate::{
    DeleteFailure, Key, ListedObject, ObjectChunks, ObjectMeta, ObjectReader, ObjectStore, Prefix,
    PutOptions, StoreError,
};

/// Start of every temporary file name; keys with a segment starting with it are refused.
pub const TEMP_MARKER: &str = ".bw-store-tmp-";

/// An object store in a local directory.
#[derive(Clone, Debug)]
pub struct FsStore {
    root: PathBuf,
}

/// What to write into a new object.
enum Source {
    Bytes(Bytes),
    /// Chunks received on the blocking thread that writes them.
    Chunks(SizedChunks),
}

impl FsStore {
    /// A store rooted at `root`, which is created on the first put if missing. No I/O happens
    /// here.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of `key`, refusing keys that name a temporary file.
    fn path(&self, key: &Key) -> Result<PathBuf, StoreError> {
        if key
            .segments()
            .any(|segment| segment.starts_with(TEMP_MARKER))
        {
            return Err(StoreError::Invalid {
                key: key.to_string(),
                reason: "segment uses the filesystem store's temporary-file marker",
            });
        }
        // `Key` guarantees relative, `/`-separated segments without `.`/`..`, so joining them
        // stays below the root.
        Ok(key
            .segments()
            .fold(self.root.clone(), |path, segment| path.join(segment)))
    }

    fn error(&self, operation: &'static str, key: &str, error: &io::Error) -> StoreError {
        let location = self.root.join(key).display().to_string();
        if error.kind() == ErrorKind::NotFound {
            return StoreError::NotFound { location };
        }
        let message = error.to_string();
        StoreError::backend(is_transient(error), location, operation, message)
    }

    /// Writes `source` to `path`, the path of `key`.
    async fn put(&self, key: &Key, path: PathBuf, source: Source) -> Result<(), StoreError> {
        blocking(move || write_atomically(&path, source))
            .await
            .map_err(|error| self.error("put", key.as_str(), &error))
    }
}

#[async_trait]
impl ObjectStore for FsStore {
    fn location(&self) -> String {
        format!("{}/", self.root.display())
    }

    async fn put_stream(
        &self,
        key: &Key,
        size: u64,
        chunks: ObjectChunks,
        _options: PutOptions,
    ) -> Result<(), StoreError> {
        let target = self.path(key)?;
        self.put(key, target, Source::Chunks(SizedChunks::new(chunks, size)))
            .await
    }

    async fn put_bytes(
        &self,
        key: &Key,
        bytes: Bytes,
        _options: PutOptions,
    ) -> Result<(), StoreError> {
        let target = self.path(key)?;
        self.put(key, target, Source::Bytes(bytes)).await
    }

    async fn get(&self, key: &Key) -> Result<ObjectReader, StoreError> {
        let path = self.path(key)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|error| self.error("get", key.as_str(), &error))?;
        let metadata = file
            .metadata()
            .await
            .map_err(|error| self.error("get", key.as_str(), &error))?;
        // A directory is where keys *below* this one live, not an object.
        if !metadata.is_file() {
            return Err(StoreError::NotFound {
                location: path.display().to_string(),
            });
        }
        Ok(Box::pin(file))
    }

    async fn head(&self, key: &Key) -> Result<Option<ObjectMeta>, StoreError> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(metadata) if metadata.is_file() => Ok(Some(ObjectMeta {
                key: key.clone(),
                size: metadata.len(),
                etag: None,
                content_type: None,
            })),
            Ok(_) => Ok(None),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            // "a/b/c" below a file "a/b".
            Err(error) if error.kind() == ErrorKind::NotADirectory => Ok(None),
            Err(error) => Err(self.error("head", key.as_str(), &error)),
        }
    }

    async fn list(&self, prefix: &Prefix) -> Result<Vec<ListedObject>, StoreError> {
        let start = match prefix.as_key() {
            None => self.root.clone(),
            Some(key) => self.path(key)?,
        };
        let root = self.root.clone();
        blocking(move || walk(&root, &start))
            .await
            .map_err(|error| self.error("list", &prefix.with_slash(), &error))
    }

    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let root = self.root.clone();
        blocking(move || remove(&root, &path))
            .await
            .map_err(|error| self.error("delete", key.as_str(), &error))
    }

    async fn delete_many(&self, keys: &[Key]) -> Result<Vec<DeleteFailure>, StoreError> {
        let mut failures = Vec::new();
        for key in keys {
            if let Err(error) = self.delete(key).await {
                failures.push(DeleteFailure {
                    key: key.clone(),
                    message: error.to_string(),
                });
            }
        }
        Ok(failures)
    }
}

/// Runs blocking filesystem work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|join| io::Error::other(format!("filesystem task failed: {join}")))?
}

/// Writes `source` to a temporary file next to `path` and renames it over `path`.
fn write_atomically(path: &Path, source: Source) -> io::Result<()> {
    let directory = path
        .parent()
        .ok_or_else(|| io::Error::other("object path has no parent"))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::other("object path has no file name"))?;
    let temp = directory.join(format!(
        "{TEMP_MARKER}{}-{}",
        uuid::Uuid::new_v4().simple(),
        file_name.to_string_lossy()
    ));
    fs::create_dir_all(directory)?;
    let mut file = match File::create_new(&temp) {
        // A concurrent delete may have pruned the directory we just created; once more.
        Err(error) if error.kind() == ErrorKind::NotFound => {
            fs::create_dir_all(directory)?;
            File::create_new(&temp)?
        }
        other => other?,
    };
    let written = (|| {
        match source {
            Source::Bytes(bytes) => file.write_all(&bytes)?,
            Source::Chunks(mut chunks) => {
                while let Some(chunk) = chunks.blocking_next() {
                    file.write_all(&chunk?)?;
                }
            }
        }
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = fs::remove_file(&temp);
    }
    written
}

/// Removes the object at `path` (missing is fine) and then every directory above it that became
/// empty, up to but excluding `root`.
fn remove(root: &Path, path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_file() => match fs::remove_file(path) {
            Err(error) if error.kind() != ErrorKind::NotFound => return Err(error),
            _ => {}
        },
        // A directory (keys below this one) or nothing at all: no object to delete.
        Ok(_) => return Ok(()),
        Err(error) if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(());
        }
        Err(error) => return Err(error),
    }
    let mut directory = path.parent();
    while let Some(current) = directory {
        if current == root || !current.starts_with(root) {
            break;
        }
        // Fails (and stops) as soon as a directory still holds something.
        if fs::remove_dir(current).is_err() {
            break;
        }
        directory = current.parent();
    }
    Ok(())
}

/// Every regular file below `start`, as keys relative to `root`, sorted. Temporary files and
/// names that are not valid keys (not UTF-8, say) are skipped; symbolic links are not followed.
fn walk(root: &Path, start: &Path) -> io::Result<Vec<ListedObject>> {
    let mut listed = Vec::new();
    let mut pending = vec![start.to_owned()];
    while let Some(directory) = pending.pop() {
        let entries = match fs::read_dir(&directory) {
            Ok(entries) => entries,
            // No such prefix, or the prefix names a file: nothing below it.
            Err(error)
                if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) =>
            {
                continue;
            }
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            let file_type = entry.file_type()?;
            let path = entry.path();
            if file_type.is_dir() {
                pending.push(path);
                continue;
            }
            if !file_type.is_file() || entry.file_name().to_string_lossy().starts_with(TEMP_MARKER)
            {
                continue;
            }
            let Some(key) = relative_key(root, &path) else {
                tracing::warn!(path = %path.display(), "skipping a file whose name is not a valid key");
                continue;
            };
            let (size, modified) = match entry.metadata() {
                Ok(metadata) => (metadata.len(), metadata.modified().ok()),
                // Deleted while we walked: it is not there any more.
                Err(error) if error.kind() == ErrorKind::NotFound => continue,
                Err(error) => return Err(error),
            };
            listed.push(ListedObject {
                key,
                size,
                modified,
            });
        }
    }
    listed.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(listed)
}

/// The key of the file at `path` below `root`, if its name makes a valid key.
fn relative_key(root: &Path, path: &Path) -> Option<Key> {
    let relative = path.strip_prefix(root).ok()?;
    let segments: Option<Vec<&str>> = relative
        .components()
        .map(|component| component.as_os_str().to_str())
        .collect();
    Key::new(segments?.join("/")).ok()
}

/// I/O errors that may pass by themselves.
fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Interrupted
            | ErrorKind::TimedOut
            | ErrorKind::WouldBlock
            | ErrorKind::ResourceBusy
            | ErrorKind::StorageFull
            | ErrorKind::QuotaExceeded
    )
}
