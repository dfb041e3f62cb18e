//! Publishing a validated export archive into the package prefix, and removing what an earlier
//! export left there.
//!
//! [`upload_members`] streams every member of an [`Archive`] to `{prefix}/{member name}`, up to
//! [`UploadOptions::concurrency`] members at a time. Each member has a blocking thread that
//! decompresses it from its own clone of the archive and a task that streams those bytes into
//! [`ObjectStore::put_stream`] (one PutObject, or parts for the largest members on S3). Nothing
//! is spooled: the bytes go from the decompressor to the store through a channel of a few
//! chunks, so members decompress in parallel and each upload starts with its first chunk, while
//! memory stays at a few chunks per member in flight, however large the archive or its members.
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
//! # Bad members
//!
//! The archive reader checks a member's size and CRC-32 only at its end, after its bytes have
//! streamed. So the last chunk of every member is held back until the reader has passed those
//! checks, and a member that fails them sends an error instead: the store abandons that object
//! (S3 never receives its last bytes; a multipart upload is aborted), and readers keep seeing the
//! object that was there before, if any. The job then fails, with earlier members uploaded. That
//! is safe: those objects lie inside the package prefix, and a later successful export
//! overwrites or prunes them. The upload is idempotent, so a redelivered job converges on the
//! same objects.

use std::collections::HashSet;
use std::io::{self, Read};
use std::sync::Arc;

use bw_store::{Key, ObjectStore, Prefix, PutOptions, StoreError};
use bytes::Bytes;
use tokio::sync::mpsc;
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

/// The largest chunk a decompressor hands to its upload.
const CHUNK: usize = 128 * 1024;

/// Chunks waiting between a member's decompressor and its upload.
const CHUNKS_IN_FLIGHT: usize = 2;

/// How [`upload_members`] works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOptions {
    /// Members decompressed and uploaded at once. Zero is taken as one.
    pub concurrency: usize,
}

impl Default for UploadOptions {
    /// Eight members at a time.
    fn default() -> Self {
        Self { concurrency: 8 }
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
    /// The archive refused a member; permanent unless it was I/O on the spooled archive.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The object store failed; transient when [`StoreError::is_transient`] says so.
    #[error(transparent)]
    Store(#[from] StoreError),
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
            Self::DeleteFailed { .. } | Self::Interrupted(_) => false,
        }
    }
}

/// Uploads every member of `archive` to `prefix.join(member name)` and returns what was written,
/// in archive order.
///
/// Content types come from the member names. At most `options.concurrency` members are in
/// flight at once. Objects already at those keys are replaced, so running the same export twice
/// leaves the same objects.
///
/// # Errors
///
/// [`UploadError::ReservedName`] (before anything is written) when a member would replace a
/// packager file; [`UploadError::Archive`] when a member's bytes fail the archive's checks (that
/// member's object is not written); [`UploadError::Store`] when storage fails. The first failure
/// stops further uploads and cancels those in flight.
pub async fn upload_members(
    archive: Archive,
    store: Arc<dyn ObjectStore>,
    prefix: &Prefix,
    options: &UploadOptions,
) -> Result<Vec<WrittenFile>, UploadError> {
    let planned = plan(archive.members(), prefix)?;
    let slots = options.concurrency.max(1);
    let mut waiting = archive.members().iter().zip(&planned);
    let mut uploads = JoinSet::new();
    loop {
        while uploads.len() < slots {
            let Some((member, file)) = waiting.next() else {
                break;
            };
            uploads.spawn(publish_member(
                archive.clone(),
                member.clone(),
                Arc::clone(&store),
                file.clone(),
            ));
        }
        let Some(done) = uploads.join_next().await else {
            break;
        };
        if let Err(error) = joined(done).and_then(|published| published) {
            // Cancels the uploads in flight: their streams close, which stops their
            // decompressors at the next chunk, and S3 aborts their multipart uploads.
            uploads.shutdown().await;
            return Err(error);
        }
    }
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

/// Decompresses `member` on a blocking thread while its bytes stream into `file.key`.
async fn publish_member(
    archive: Archive,
    member: Member,
    store: Arc<dyn ObjectStore>,
    file: WrittenFile,
) -> Result<(), UploadError> {
    let (chunks, received) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let inflating = tokio::task::spawn_blocking(move || inflate(archive, &member, &chunks));
    let stored = store
        .put_stream(
            &file.key,
            file.size,
            received,
            PutOptions::for_name(&file.name),
        )
        .await;
    // A member that failed its checks also fails its upload; the archive's error says why.
    joined(inflating.await)??;
    stored?;
    Ok(())
}

/// Runs on a blocking thread: sends `member`'s bytes to its upload, or the error that abandons
/// it. Returns early, without error, once the upload gave up.
fn inflate(
    mut archive: Archive,
    member: &Member,
    chunks: &mpsc::Sender<io::Result<Bytes>>,
) -> Result<(), ArchiveError> {
    let sent = send_member(&mut archive, member, chunks);
    if let Err(error) = &sent {
        // An error item, not just a closed channel: an empty member must not be stored either.
        let _ = chunks.blocking_send(Err(io::Error::other(error.to_string())));
    }
    sent
}

fn send_member(
    archive: &mut Archive,
    member: &Member,
    chunks: &mpsc::Sender<io::Result<Bytes>>,
) -> Result<(), ArchiveError> {
    let mut reader = archive.open_member(member.index)?;
    let mut left = member.size;
    // The last chunk waits until the reader has reached its end, where it checks the size and
    // the CRC-32 (see the module's documentation).
    let mut held: Option<Bytes> = None;
    loop {
        // One byte more than the member has left, so that its last chunk also meets the end.
        let length = usize::try_from(left.saturating_add(1)).map_or(CHUNK, |left| left.min(CHUNK));
        let mut buffer = vec![0; length];
        let filled = fill(&mut reader, &mut buffer)?;
        if let Some(chunk) = held.take()
            && chunks.blocking_send(Ok(chunk)).is_err()
        {
            return Ok(());
        }
        if filled > 0 {
            buffer.truncate(filled);
            left = left.saturating_sub(filled as u64);
            held = Some(Bytes::from(buffer));
        }
        if filled < length {
            // The reader ended and passed its checks.
            if let Some(chunk) = held {
                let _ = chunks.blocking_send(Ok(chunk));
            }
            return Ok(());
        }
    }
}

/// Reads until `buffer` is full or the reader ends; returns the bytes read.
fn fill(reader: &mut impl Read, buffer: &mut [u8]) -> Result<usize, ArchiveError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(count) => filled += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(ArchiveError::from(error)),
        }
    }
    Ok(filled)
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
