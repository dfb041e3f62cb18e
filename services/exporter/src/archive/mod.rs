//! Validating and streaming the members of an export ZIP.
//!
//! Benchling delivers an entry export as a ZIP that the worker spools to a temporary file.
//! [`Archive::open`] reads only the central directory and validates every entry before anything is
//! extracted, so a hostile archive fails the job as a whole and nothing gets written.
//! [`Archive::open_member`] then streams one member at a time and enforces the sizes again while
//! decompressing, because the headers can lie about what the compressed stream holds.
//!
//! # Decisions
//!
//! - **Names** are checked and decoded by [`sanitize`] (the `member_name` module): plain relative
//!   names only, rejected rather than rewritten, CP437 unless the UTF-8 flag is set.
//! - **Duplicates** are compared on the decoded name, exactly and case-sensitively, without Unicode
//!   normalisation, the way S3 compares keys. A member whose name is also another member's directory
//!   (`a` next to `a/b`) is rejected too, because the filesystem backend cannot hold both.
//! - **Directories** (names ending in `/`) are validated like members but not listed, because
//!   object storage has no directories. Symbolic links, devices, FIFOs and sockets (read from the
//!   Unix mode) are rejected. So are encrypted entries and compression methods other than stored and
//!   deflate.
//! - **Limits** ([`ArchiveLimits`]). The member count includes every central-directory entry,
//!   directories too. At open time the total size and the bomb ratio are checked against the
//!   declared sizes. While streaming, a member can never produce more than its declared size, so
//!   both checks still hold for the bytes actually read. The total read across members, and
//!   across the clones of an [`Archive`] that read them in parallel, is also counted, so reading
//!   a member twice counts twice. The zip crate parses the whole central
//!   directory before the count can be checked, so that memory grows with the directory, which the
//!   spooled file's size bounds. The download should cap that size.
//!
//! Every [`ArchiveError`] is permanent except an I/O error on the temporary file: a hostile or
//! broken archive does not get better on retry.

mod file;
mod member_name;

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use zip::read::ZipFile;
use zip::result::ZipError;
use zip::{CompressionMethod, ZipArchive, ZipReadOptions};

pub use self::file::{ArchiveFile, Arrival};

pub use self::member_name::{MAX_NAME_BYTES, MemberName, NameError, sanitize};

/// General purpose flag bit 11: the name and comment are UTF-8 (APPNOTE 4.4.4).
const UTF8_FLAG: u16 = 1 << 11;

/// Unix file-type bits of the mode stored in the external attributes.
const S_IFMT: u32 = 0o170_000;
const S_IFSOCK: u32 = 0o140_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFIFO: u32 = 0o010_000;

/// The limits that an archive must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// The most central-directory entries (files and directories).
    pub max_members: usize,
    /// The most uncompressed bytes, summed over all members.
    pub max_total_bytes: u64,
    /// A member over `bomb_min_bytes` that expands more than this many times is a bomb.
    pub bomb_ratio: u64,
    /// Members up to this size are never bombs. Small files can compress well without harm.
    pub bomb_min_bytes: u64,
}

impl Default for ArchiveLimits {
    fn default() -> Self {
        Self {
            max_members: 20_000,
            max_total_bytes: 4 << 30,
            bomb_ratio: 200,
            bomb_min_bytes: 1 << 20,
        }
    }
}

impl ArchiveLimits {
    fn is_bomb(&self, size: u64, compressed_size: u64) -> bool {
        // u128 so that a huge ratio limit cannot overflow into a pass.
        size > self.bomb_min_bytes
            && u128::from(size) > u128::from(self.bomb_ratio) * u128::from(compressed_size)
    }
}

/// Why an archive or one of its members was refused.
///
/// Member names are shown Debug-formatted, and raw names byte-escaped, so that a hostile name
/// cannot forge log lines.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading the temporary file failed. This is the only transient variant.
    #[error("reading the spooled archive: {0}")]
    Io(#[source] io::Error),
    /// The file is not a ZIP archive, or its central directory is broken.
    #[error("not a readable ZIP archive: {0}")]
    Malformed(#[source] ZipError),
    /// More entries than [`ArchiveLimits::max_members`].
    #[error("the archive has {count} entries, more than the limit of {limit}")]
    TooManyMembers {
        /// Entries in the central directory.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// The central directory lists the same raw name more than once.
    #[error("the central directory lists a name more than once")]
    DuplicateEntries,
    /// A name failed [`sanitize`].
    #[error("member name \"{}\" is unsafe: {reason}", .raw.escape_ascii())]
    UnsafeName {
        /// The name as stored, with the trailing `/` of a directory.
        raw: Vec<u8>,
        /// What is wrong with it.
        reason: NameError,
    },
    /// Two entries decode to the same name.
    #[error("member {name:?} appears more than once")]
    DuplicateName {
        /// The name.
        name: MemberName,
    },
    /// A member's name is also the directory of another entry (`a` and `a/b`).
    #[error("member {name:?} is also the directory of another entry")]
    FileIsDirectory {
        /// The name.
        name: MemberName,
    },
    /// A symbolic link, device, FIFO, socket, or directory without a trailing `/`.
    #[error("member {name:?} is a {kind}, not a regular file")]
    NotRegularFile {
        /// The name.
        name: MemberName,
        /// What the Unix mode says it is.
        kind: &'static str,
    },
    /// The entry is encrypted.
    #[error("member {name:?} is encrypted")]
    Encrypted {
        /// The name.
        name: MemberName,
    },
    /// A compression method other than stored or deflate.
    #[error("member {name:?} uses unsupported compression {method}")]
    UnsupportedCompression {
        /// The name.
        name: MemberName,
        /// The method.
        method: CompressionMethod,
    },
    /// The declared compressed size is larger than the whole archive.
    #[error(
        "member {name:?} declares {compressed_size} compressed bytes, more than the archive holds"
    )]
    CompressedSizeBeyondArchive {
        /// The name.
        name: MemberName,
        /// The declared compressed size.
        compressed_size: u64,
    },
    /// The member expands beyond [`ArchiveLimits::bomb_ratio`].
    #[error(
        "member {name:?} expands {compressed_size} bytes to {size}, more than {ratio} times (a zip bomb)"
    )]
    Bomb {
        /// The name.
        name: MemberName,
        /// Declared uncompressed size.
        size: u64,
        /// Declared compressed size.
        compressed_size: u64,
        /// The ratio limit.
        ratio: u64,
    },
    /// The declared sizes add up to more than [`ArchiveLimits::max_total_bytes`].
    #[error("the members declare more than {limit} bytes in total (passed at member {name:?})")]
    TotalTooLarge {
        /// The member at which the sum passed the limit.
        name: MemberName,
        /// The limit.
        limit: u64,
    },
    /// [`Archive::open_member`] was given an index that is not a validated member.
    #[error("no member at index {index}")]
    NoSuchMember {
        /// The index asked for.
        index: usize,
    },
    /// The stream goes on after the declared size: the headers understate it.
    #[error("member {name:?} holds more than its declared {declared} bytes")]
    LargerThanDeclared {
        /// The name.
        name: MemberName,
        /// The declared uncompressed size.
        declared: u64,
    },
    /// The stream ends before the declared size.
    #[error("member {name:?} ended after {read} of its declared {declared} bytes")]
    SmallerThanDeclared {
        /// The name.
        name: MemberName,
        /// The declared uncompressed size.
        declared: u64,
        /// The bytes it produced.
        read: u64,
    },
    /// The bytes do not match the CRC-32 in the central directory.
    #[error("member {name:?} fails its CRC-32 check")]
    CrcMismatch {
        /// The name.
        name: MemberName,
    },
    /// The member's local header or compressed stream is broken.
    #[error("member {name:?} is corrupt: {detail}")]
    Corrupt {
        /// The name.
        name: MemberName,
        /// What the decoder said.
        detail: String,
    },
    /// More bytes were read across members than [`ArchiveLimits::max_total_bytes`].
    #[error("read more than {limit} bytes from the archive in total")]
    TotalReadExceeded {
        /// The limit.
        limit: u64,
    },
}

impl ArchiveError {
    /// Whether retrying cannot help. Only I/O on the temporary file might succeed next time.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Io(_))
    }
}

/// Recovers the [`ArchiveError`] that a [`MemberReader`] wrapped in an [`io::Error`], so a
/// caller of `io::copy` gets the typed error back. Any other I/O error becomes [`ArchiveError::Io`].
impl From<io::Error> for ArchiveError {
    fn from(error: io::Error) -> Self {
        error.downcast::<Self>().unwrap_or_else(Self::Io)
    }
}

/// Errors that mean the bytes are bad, not that the disk failed.
fn is_corruption(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput | io::ErrorKind::UnexpectedEof
    )
}

fn from_zip(error: ZipError) -> ArchiveError {
    match error {
        ZipError::Io(io) if !is_corruption(&io) => ArchiveError::Io(io),
        other => ArchiveError::Malformed(other),
    }
}

/// A validated member: a regular file to extract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The sanitised name, relative to the package prefix.
    pub name: MemberName,
    /// The declared uncompressed size. Streaming enforces it.
    pub size: u64,
    /// The declared compressed size.
    pub compressed_size: u64,
    /// The entry's position in the central directory, for [`Archive::open_member`].
    pub index: usize,
}

/// A spooled export ZIP whose entries have all passed validation.
///
/// Clones are cheap and share the validated directory, the open file and the count of bytes
/// read, so threads can each decompress a different member from their own clone while the total
/// limit still holds across all of them.
#[derive(Clone)]
pub struct Archive {
    zip: ZipArchive<ArchiveFile>,
    members: Arc<[Member]>,
    limits: ArchiveLimits,
    total_read: Arc<AtomicU64>,
}

impl Archive {
    /// Opens the archive at `path` and validates every entry of its central directory.
    ///
    /// No member data is read. A single bad entry fails the whole archive.
    pub fn open(path: impl AsRef<Path>, limits: ArchiveLimits) -> Result<Self, ArchiveError> {
        let file = File::open(path)
            .and_then(ArchiveFile::new)
            .map_err(ArchiveError::Io)?;
        Self::read(file, limits)
    }

    /// Validates every entry of the central directory of the archive in `file`, which may
    /// still be arriving: only the central directory at its end needs to be there.
    ///
    /// No member data is read. A single bad entry fails the whole archive.
    pub fn read(file: ArchiveFile, limits: ArchiveLimits) -> Result<Self, ArchiveError> {
        let archive_len = file.len();
        let zip = ZipArchive::new(file).map_err(from_zip)?;
        // The zip crate keys entries by raw name, so a repeated name is only visible here.
        if zip.has_duplicate_names() {
            return Err(ArchiveError::DuplicateEntries);
        }
        if zip.len() > limits.max_members {
            return Err(ArchiveError::TooManyMembers {
                count: zip.len(),
                limit: limits.max_members,
            });
        }
        let members = validate(&zip, &limits, archive_len)?;
        Ok(Self {
            zip,
            members: members.into(),
            limits,
            total_read: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The regular files to extract, in central-directory order. Directories are not listed.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Streams the member at central-directory position `index` (see [`Member::index`]).
    ///
    /// The reader fails with a [`ArchiveError`] wrapped in an [`io::Error`] (convert it back with
    /// `ArchiveError::from`) when the data breaks the declared size, the CRC or the total limit.
    pub fn open_member(&mut self, index: usize) -> Result<MemberReader<'_>, ArchiveError> {
        let member = self
            .members
            .binary_search_by_key(&index, |member| member.index)
            .ok()
            .and_then(|position| self.members.get(position))
            .ok_or(ArchiveError::NoSuchMember { index })?;
        let name = member.name.clone();
        let declared = member.size;
        // The CRC is checked here rather than by the zip crate, which reports a mismatch and an
        // overrun as the same kind of untyped io::Error.
        let options = ZipReadOptions::new().ignore_crc32(true);
        let inner = match self.zip.by_index_with_options(index, options) {
            Ok(inner) => inner,
            Err(ZipError::Io(io)) if !is_corruption(&io) => return Err(ArchiveError::Io(io)),
            Err(error) => {
                return Err(ArchiveError::Corrupt {
                    name,
                    detail: error.to_string(),
                });
            }
        };
        let expected_crc = inner.crc32();
        Ok(MemberReader {
            inner,
            name,
            declared,
            read: 0,
            crc: crc32fast::Hasher::new(),
            expected_crc,
            total_read: &self.total_read,
            total_limit: self.limits.max_total_bytes,
        })
    }
}

/// Checks every central-directory entry. Returns the regular files in directory order.
fn validate(
    zip: &ZipArchive<ArchiveFile>,
    limits: &ArchiveLimits,
    archive_len: u64,
) -> Result<Vec<Member>, ArchiveError> {
    let mut members = Vec::new();
    let mut names = HashSet::new();
    // Every directory that an entry declares or lives in, to catch a file `a` next to `a/b`.
    let mut directories = HashSet::new();
    let mut total: u64 = 0;
    for index in 0..zip.len() {
        let entry = zip.by_index_data(index).map_err(from_zip)?;
        let raw = entry.name_raw();
        let (is_dir, raw_name) = match raw.strip_suffix(b"/") {
            Some(stripped) => (true, stripped),
            None => (false, raw),
        };
        let utf8_flag = entry.flags().as_u16() & UTF8_FLAG != 0;
        let name = sanitize(raw_name, utf8_flag).map_err(|reason| ArchiveError::UnsafeName {
            raw: raw.to_vec(),
            reason,
        })?;
        check_file_type(&name, is_dir, entry.unix_mode())?;
        if entry.encrypted() {
            return Err(ArchiveError::Encrypted { name });
        }
        for (end, _) in name.as_str().match_indices('/') {
            directories.insert(name.as_str()[..end].to_owned());
        }
        if is_dir {
            directories.insert(name.as_str().to_owned());
            continue;
        }
        let method = entry.compression();
        if !matches!(
            method,
            CompressionMethod::Stored | CompressionMethod::Deflated
        ) {
            return Err(ArchiveError::UnsupportedCompression { name, method });
        }
        let (size, compressed_size) = (entry.size(), entry.compressed_size());
        // An inflated compressed size would let the ratio check pass a bomb.
        if compressed_size > archive_len {
            return Err(ArchiveError::CompressedSizeBeyondArchive {
                name,
                compressed_size,
            });
        }
        if limits.is_bomb(size, compressed_size) {
            return Err(ArchiveError::Bomb {
                name,
                size,
                compressed_size,
                ratio: limits.bomb_ratio,
            });
        }
        total = total.saturating_add(size);
        if total > limits.max_total_bytes {
            return Err(ArchiveError::TotalTooLarge {
                name,
                limit: limits.max_total_bytes,
            });
        }
        if !names.insert(name.clone()) {
            return Err(ArchiveError::DuplicateName { name });
        }
        members.push(Member {
            name,
            size,
            compressed_size,
            index,
        });
    }
    if let Some(member) = members
        .iter()
        .find(|member| directories.contains(member.name.as_str()))
    {
        return Err(ArchiveError::FileIsDirectory {
            name: member.name.clone(),
        });
    }
    Ok(members)
}

/// Rejects every entry type but regular files and directories. An entry without a Unix mode
/// (made on DOS without attributes, or by a tool that stores none) is taken for what its name says.
fn check_file_type(name: &MemberName, is_dir: bool, mode: Option<u32>) -> Result<(), ArchiveError> {
    let kind = match mode.map_or(0, |mode| mode & S_IFMT) {
        0 | S_IFREG => return Ok(()),
        S_IFDIR if is_dir => return Ok(()),
        // A directory mode on a name without `/` would be uploaded as an empty file.
        S_IFDIR => "directory",
        S_IFLNK => "symbolic link",
        S_IFCHR => "character device",
        S_IFBLK => "block device",
        S_IFIFO => "FIFO",
        S_IFSOCK => "socket",
        _ => "special file",
    };
    Err(ArchiveError::NotRegularFile {
        name: name.clone(),
        kind,
    })
}

/// Reads one member's decompressed bytes, enforcing its declared size, its CRC-32 and the
/// archive's total limit.
///
/// Failures are [`io::Error`]s: [`io::ErrorKind::InvalidData`] wrapping an [`ArchiveError`] for a
/// bad archive, and the original error for I/O on the temporary file.
pub struct MemberReader<'a> {
    inner: ZipFile<'a, ArchiveFile>,
    name: MemberName,
    declared: u64,
    read: u64,
    crc: crc32fast::Hasher,
    expected_crc: u32,
    total_read: &'a AtomicU64,
    total_limit: u64,
}

impl MemberReader<'_> {
    fn read_checked(&mut self, buf: &mut [u8]) -> Result<usize, ArchiveError> {
        let remaining = self.declared - self.read;
        if remaining == 0 {
            return self.finish();
        }
        // Never ask for more than the declared size, so that an overrun shows up in `finish`
        // with a typed error instead of inside the zip crate's own size check.
        let want =
            usize::try_from(remaining).map_or(buf.len(), |remaining| remaining.min(buf.len()));
        let count = self
            .inner
            .read(&mut buf[..want])
            .map_err(|error| self.stream_error(error))?;
        if count == 0 {
            return Err(ArchiveError::SmallerThanDeclared {
                name: self.name.clone(),
                declared: self.declared,
                read: self.read,
            });
        }
        let before = self.total_read.fetch_add(count as u64, Ordering::Relaxed);
        if before.saturating_add(count as u64) > self.total_limit {
            return Err(ArchiveError::TotalReadExceeded {
                limit: self.total_limit,
            });
        }
        self.read += count as u64;
        self.crc.update(&buf[..count]);
        Ok(count)
    }

    /// At the declared size: the stream must end here, and the bytes must match the CRC.
    fn finish(&mut self) -> Result<usize, ArchiveError> {
        let mut probe = [0u8; 1];
        match self.inner.read(&mut probe) {
            Ok(0) if self.crc.clone().finalize() == self.expected_crc => Ok(0),
            Ok(0) => Err(ArchiveError::CrcMismatch {
                name: self.name.clone(),
            }),
            // The zip crate fails with InvalidData as soon as a stream passes its declared size.
            Ok(_) => Err(self.larger_than_declared()),
            Err(error) if error.kind() == io::ErrorKind::InvalidData => {
                Err(self.larger_than_declared())
            }
            Err(error) => Err(self.stream_error(error)),
        }
    }

    fn larger_than_declared(&self) -> ArchiveError {
        ArchiveError::LargerThanDeclared {
            name: self.name.clone(),
            declared: self.declared,
        }
    }

    fn stream_error(&self, error: io::Error) -> ArchiveError {
        if is_corruption(&error) {
            ArchiveError::Corrupt {
                name: self.name.clone(),
                detail: error.to_string(),
            }
        } else {
            ArchiveError::Io(error)
        }
    }
}

impl Read for MemberReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.read_checked(buf).map_err(|error| match error {
            ArchiveError::Io(error) => error,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        })
    }
}
