//! Publishing a validated export archive into the package prefix, and removing what an earlier
//! export left there.
//!
//! [`upload_members`] streams every member of an [`Archive`] to `{prefix}/{member name}`. The
//! archive reader is synchronous, so one blocking thread decompresses each member into a
//! temporary file, and [`ObjectStore::put_file`] streams that file to the store (in parts on S3)
//! while the thread goes on with the next member. A semaphore with
//! [`UploadOptions::concurrency`] permits is taken before a temporary file is created and given
//! back only after it is deleted, so memory stays at one copy buffer and the temporary disk use at
//! `concurrency` members, however large the archive or its members.
//!
//! [`prune_stale`] then deletes every object under the prefix that this export did not write,
//! except the packager's metadata files, so attachments deleted in Benchling leave the package.
//!
//! # Reserved names
//!
//! The packager owns [`PACKAGER_FILES`] at the top level of the package prefix. A member with one
//! of those names (exactly, case-sensitively, as S3 compares keys) would overwrite the entry's
//! metadata, so the whole archive is refused with the permanent [`UploadError::ReservedName`].
//! Every name is checked before the first upload, so such an archive writes nothing. The same
//! names deeper in the tree (`docs/README.md`) are ordinary attachments.
//!
//! # Partial uploads
//!
//! A member whose bytes break the archive's checks while streaming (a CRC mismatch, a size the
//! header understated) fails the job after earlier members were uploaded. That is safe: those
//! objects lie inside the package prefix, and a later successful export overwrites or prunes
//! them. The upload is idempotent, so a redelivered job converges on the same objects.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use bw_store::{Key, ObjectStore, Prefix, PutOptions, StoreError};
use tempfile::{NamedTempFile, TempDir};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::{JoinError, JoinSet};

use crate::archive::{Archive, ArchiveError, Member, MemberName};

/// The metadata files the packager writes at the top of the package prefix. No attachment may
/// replace them, and [`prune_stale`] callers pass them as `protected`.
pub const PACKAGER_FILES: [&str; 5] = [
    "entry.json",
    "entry_data.json",
    "links.json",
    "README.md",
    "input.json",
];

/// Bytes moved from the decompressor to the temporary file per write.
const COPY_BUFFER: usize = 256 * 1024;

/// How [`upload_members`] works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOptions {
    /// Uploads in flight at once, which is also the most members spooled to disk at once. Zero
    /// is taken as one.
    pub concurrency: usize,
    /// Where the per-job directory of temporary member files is created.
    pub temp_dir: PathBuf,
}

impl Default for UploadOptions {
    /// Eight uploads at a time, spooled under the system's temporary directory.
    fn default() -> Self {
        Self {
            concurrency: 8,
            temp_dir: std::env::temp_dir(),
        }
    }
}

/// One object an export wrote, for the render job and for [`prune_stale`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// The member name, relative to the package prefix.
    pub name: String,
    /// The object's key: the package prefix joined with the name.
    pub key: Key,
    /// Size in bytes.
    pub size: u64,
}

/// Why publishing an export failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// A top-level member has the name of a packager metadata file (see [`PACKAGER_FILES`]).
    #[error("member {name:?} would overwrite a metadata file that the packager owns")]
    ReservedName {
        /// The member name.
        name: MemberName,
    },
    /// The archive refused a member; permanent unless it was I/O on the spooled file.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The object store failed; transient when [`StoreError::is_transient`] says so.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing a member to its temporary file failed (disk full, for example).
    #[error("spooling a member to a temporary file: {0}")]
    Spool(#[source] io::Error),
    /// The store refused to delete some stale objects.
    #[error("{count} stale object(s) could not be deleted, {key} first: {message}")]
    DeleteFailed {
        /// How many keys failed.
        count: usize,
        /// The first key that failed.
        key: Key,
        /// What the backend said about it.
        message: String,
    },
    /// [`prune_stale`] was asked to prune the whole store rather than one package.
    #[error("refusing to prune the root of the store")]
    RootPrefix,
    /// The runtime cancelled a task of the upload, as it does while shutting down.
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
}

impl UploadError {
    /// Whether retrying the job cannot help.
    ///
    /// A failed delete counts as transient: S3 reports per-key failures without a class, and
    /// deleting is idempotent, so redelivery is cheap and the dead-letter queue catches one that
    /// never passes.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::ReservedName { .. } | Self::RootPrefix => true,
            Self::Archive(error) => error.is_permanent(),
            Self::Store(error) => !error.is_transient(),
            Self::Spool(_) | Self::DeleteFailed { .. } | Self::Interrupted(_) => false,
        }
    }
}

/// A member spooled to disk, waiting for its upload.
///
/// Fields drop in declaration order: the file is deleted before the permit lets the next member
/// be spooled, which keeps the number of temporary files at `concurrency`.
struct Spooled {
    file: NamedTempFile,
    _permit: OwnedSemaphorePermit,
    /// The member's position in [`Archive::members`].
    position: usize,
}

/// Uploads every member of `archive` to `prefix.join(member name)` and returns what was written,
/// in archive order.
///
/// Content types come from the member names. At most `options.concurrency` uploads run at once.
/// Objects already at those keys are replaced, so running the same export twice leaves the same
/// objects.
///
/// # Errors
///
/// [`UploadError::ReservedName`] (before anything is written) when a member would replace a
/// packager file; [`UploadError::Archive`] when a member's bytes fail the archive's checks;
/// [`UploadError::Store`] and [`UploadError::Spool`] when storage fails. The first failure stops
/// further uploads.
pub async fn upload_members(
    archive: Archive,
    store: Arc<dyn ObjectStore>,
    prefix: &Prefix,
    options: &UploadOptions,
) -> Result<Vec<WrittenFile>, UploadError> {
    let planned = plan(archive.members(), prefix)?;
    let slots = options.concurrency.max(1);
    // Shared with the spooling thread, which may still be finishing a member after this function
    // returned early; the directory goes when both are done with it.
    let spool_dir = Arc::new(
        tempfile::Builder::new()
            .prefix("bw-export-")
            .tempdir_in(&options.temp_dir)
            .map_err(UploadError::Spool)?,
    );
    let permits = Arc::new(Semaphore::new(slots));
    let (sender, mut receiver) = mpsc::channel(slots);
    let spooling = tokio::task::spawn_blocking({
        let spool_dir = Arc::clone(&spool_dir);
        let permits = Arc::clone(&permits);
        let runtime = Handle::current();
        move || spool_members(archive, &spool_dir, &permits, &runtime, &sender)
    });

    let mut uploads = JoinSet::new();
    let failure = loop {
        tokio::select! {
            Some(done) = uploads.join_next() => {
                if let Err(error) = joined(done).and_then(|uploaded| uploaded) {
                    break Some(error);
                }
            }
            next = receiver.recv() => match next {
                Some(spooled) => {
                    let file: &WrittenFile = &planned[spooled.position];
                    uploads.spawn(upload(Arc::clone(&store), file.key.clone(), file.name.clone(), spooled));
                }
                // The spooling thread is done, successfully or not.
                None => break None,
            }
        }
    };
    if let Some(error) = failure {
        // Stop the spooling thread at its next member (whether it waits for a permit or for room
        // in the channel) and cancel the uploads in flight; S3 aborts their multipart uploads.
        permits.close();
        drop(receiver);
        uploads.shutdown().await;
        return Err(error);
    }
    while let Some(done) = uploads.join_next().await {
        joined(done).and_then(|uploaded| uploaded)?;
    }
    joined(spooling.await).and_then(|spooled| spooled)?;
    Ok(planned)
}

/// Checks every member against the reserved names and computes its key, so a bad archive is
/// refused before anything is uploaded.
fn plan(members: &[Member], prefix: &Prefix) -> Result<Vec<WrittenFile>, UploadError> {
    members
        .iter()
        .map(|member| {
            if PACKAGER_FILES.contains(&member.name.as_str()) {
                return Err(UploadError::ReservedName {
                    name: member.name.clone(),
                });
            }
            Ok(WrittenFile {
                name: member.name.as_str().to_owned(),
                key: prefix.join(member.name.as_str())?,
                // The member reader fails on any other length, so the declared size is the size
                // of every object that gets written.
                size: member.size,
            })
        })
        .collect()
}

/// Runs on a blocking thread: decompresses each member into its own temporary file and hands it
/// to the uploads. Returns early, without error, once the uploads gave up.
fn spool_members(
    mut archive: Archive,
    spool_dir: &TempDir,
    permits: &Arc<Semaphore>,
    runtime: &Handle,
    uploads: &mpsc::Sender<Spooled>,
) -> Result<(), UploadError> {
    let indexes: Vec<usize> = archive
        .members()
        .iter()
        .map(|member| member.index)
        .collect();
    let mut buffer = vec![0; COPY_BUFFER];
    for (position, index) in indexes.into_iter().enumerate() {
        let Ok(permit) = runtime.block_on(Arc::clone(permits).acquire_owned()) else {
            return Ok(());
        };
        let mut file = NamedTempFile::new_in(spool_dir.path()).map_err(UploadError::Spool)?;
        let mut reader = archive.open_member(index)?;
        loop {
            let count = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(count) => count,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(ArchiveError::from(error).into()),
            };
            file.write_all(&buffer[..count])
                .map_err(UploadError::Spool)?;
        }
        let spooled = Spooled {
            file,
            _permit: permit,
            position,
        };
        if uploads.blocking_send(spooled).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Uploads one spooled member; the temporary file is deleted and its slot freed when `spooled`
/// drops, whether or not the upload succeeded.
async fn upload(
    store: Arc<dyn ObjectStore>,
    key: Key,
    name: String,
    spooled: Spooled,
) -> Result<(), UploadError> {
    store
        .put_file(&key, spooled.file.path(), PutOptions::for_name(&name))
        .await?;
    Ok(())
}

/// A task's result, re-raising its panic here rather than turning a bug into a retryable error.
pub(crate) fn joined<T>(result: Result<T, JoinError>) -> Result<T, UploadError> {
    result.map_err(|error| match error.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(cancelled) => UploadError::Interrupted(cancelled.to_string()),
    })
}

/// Deletes every object under `prefix` that is neither in `keep` nor one of the `protected` names
/// directly under `prefix`, and returns the deleted keys.
///
/// `prefix` covers whole segments only: pruning `benchling/EXP1` never touches
/// `benchling/EXP10/…`.
///
/// # Errors
///
/// [`UploadError::RootPrefix`] for the store's root, which holds other packages and the
/// bookkeeping; [`UploadError::Store`] when listing or a delete request fails;
/// [`UploadError::DeleteFailed`] when the store refused some keys.
pub async fn prune_stale(
    store: &dyn ObjectStore,
    prefix: &Prefix,
    keep: &[WrittenFile],
    protected: &[&str],
) -> Result<Vec<Key>, UploadError> {
    if prefix.as_key().is_none() {
        return Err(UploadError::RootPrefix);
    }
    let protected_keys = protected
        .iter()
        .map(|name| prefix.join(name))
        .collect::<Result<Vec<_>, _>>()?;
    let kept: HashSet<&str> = keep
        .iter()
        .map(|file| file.key.as_str())
        .chain(protected_keys.iter().map(Key::as_str))
        .collect();
    let stale: Vec<Key> = store
        .list(prefix)
        .await?
        .into_iter()
        .map(|listed| listed.key)
        // The listing already stays below the prefix; checking again means a backend bug cannot
        // delete another package's files.
        .filter(|key| prefix.contains(key) && !kept.contains(key.as_str()))
        .collect();
    if stale.is_empty() {
        return Ok(stale);
    }
    let failures = store.delete_many(&stale).await?;
    if let Some(first) = failures.first() {
        return Err(UploadError::DeleteFailed {
            count: failures.len(),
            key: first.key.clone(),
            message: first.message.clone(),
        });
    }
    Ok(stale)
}
