//! The spooled ZIP file as a reader that many threads can use at once, while it may still be
//! arriving.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// A handle on the spooled archive with its own read position. Clones share the open file but
/// not the position: reads are positioned (`pread`), so threads decompressing different members
/// never move each other's cursor, which `File::try_clone` handles would.
///
/// A file that is still being downloaded comes with its [`Arrival`]: a read of bytes that have
/// not arrived waits for them, and fails if the download does.
#[derive(Debug, Clone)]
pub struct ArchiveFile {
    file: Arc<File>,
    len: u64,
    position: u64,
    arrival: Option<Arc<Arrival>>,
}

impl ArchiveFile {
    /// A handle on a complete `file`, positioned at its start.
    ///
    /// # Errors
    ///
    /// When the file's length cannot be read.
    pub fn new(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Self {
            file: Arc::new(file),
            len,
            position: 0,
            arrival: None,
        })
    }

    /// A handle on `file`, already at its full length, whose bytes are readable as `arrival`
    /// reports them.
    ///
    /// # Errors
    ///
    /// When the file's length cannot be read.
    pub fn arriving(file: File, arrival: Arc<Arrival>) -> io::Result<Self> {
        Ok(Self {
            arrival: Some(arrival),
            ..Self::new(file)?
        })
    }

    /// The file's length; the spooled archive does not change size.
    pub(super) fn len(&self) -> u64 {
        self.len
    }
}

impl Read for ArchiveFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let wanted = buf
            .len()
            .min(usize::try_from(self.len.saturating_sub(self.position)).unwrap_or(usize::MAX));
        let readable = match &self.arrival {
            Some(arrival) => arrival.wait_for(self.position, wanted)?,
            None => wanted,
        };
        let count = self.file.read_at(&mut buf[..readable], self.position)?;
        self.position += count as u64;
        Ok(count)
    }
}

impl Seek for ArchiveFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(offset) => Some(offset),
            SeekFrom::End(delta) => self.len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.position.checked_add_signed(delta),
        };
        self.position = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the archive",
            )
        })?;
        Ok(self.position)
    }
}

/// Which bytes of a file being downloaded have arrived: its tail, fetched first, and a prefix
/// that grows until it meets the tail. The download reports progress here; readers wait here.
#[derive(Debug)]
pub struct Arrival {
    state: Mutex<Arrived>,
    changed: Condvar,
}

#[derive(Debug)]
struct Arrived {
    /// Bytes `0..prefix` have arrived.
    prefix: u64,
    /// Bytes from here to the end arrived first.
    tail: u64,
    /// Why the rest will never arrive.
    failed: Option<String>,
}

impl Arrival {
    /// Nothing has arrived before `tail`; everything from `tail` on has.
    pub fn new(tail: u64) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(Arrived {
                prefix: 0,
                tail,
                failed: None,
            }),
            changed: Condvar::new(),
        })
    }

    /// Bytes `0..prefix` have arrived.
    pub fn arrived(&self, prefix: u64) {
        self.lock().prefix = prefix;
        self.changed.notify_all();
    }

    /// The rest will never arrive; waiting readers fail with `why`. The first reason stays.
    pub fn failed(&self, why: impl Into<String>) {
        self.lock().failed.get_or_insert_with(|| why.into());
        self.changed.notify_all();
    }

    /// Whether [`Arrival::failed`] was called.
    pub fn has_failed(&self) -> bool {
        self.lock().failed.is_some()
    }

    /// How many of the `wanted` bytes at `position` can be read, waiting until at least one
    /// can (or `wanted` is zero).
    fn wait_for(&self, position: u64, wanted: usize) -> io::Result<usize> {
        let mut state = self.lock();
        loop {
            if wanted == 0 || position >= state.tail {
                return Ok(wanted);
            }
            if position < state.prefix {
                let ready = state.prefix.min(state.tail) - position;
                return Ok(usize::try_from(ready).map_or(wanted, |ready| ready.min(wanted)));
            }
            if let Some(why) = &state.failed {
                return Err(io::Error::other(format!(
                    "the archive's download failed: {why}"
                )));
            }
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Arrived> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::thread;
    use std::time::Duration;

    use super::*;

    fn ten_bytes() -> File {
        let mut spooled = tempfile::tempfile().unwrap();
        spooled.write_all(b"0123456789").unwrap();
        spooled
    }

    #[test]
    fn clones_keep_their_own_position() {
        let mut first = ArchiveFile::new(ten_bytes()).unwrap();
        let mut second = first.clone();
        let mut buf = [0; 3];
        first.seek(SeekFrom::Start(2)).unwrap();
        first.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"234");
        second.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"012");
        assert_eq!(second.seek(SeekFrom::End(-1)).unwrap(), 9);
        assert_eq!(first.seek(SeekFrom::Current(-5)).unwrap(), 0);
        assert!(first.seek(SeekFrom::Current(-1)).is_err());
        assert_eq!(first.len(), 10);
    }

    #[test]
    fn reads_wait_for_the_bytes_to_arrive() {
        let arrival = Arrival::new(8);
        let mut file = ArchiveFile::arriving(ten_bytes(), Arc::clone(&arrival)).unwrap();
        let mut buf = [0; 4];
        // The tail is there from the start.
        file.seek(SeekFrom::Start(8)).unwrap();
        assert_eq!(file.read(&mut buf).unwrap(), 2);
        assert_eq!(&buf[..2], b"89");

        file.seek(SeekFrom::Start(2)).unwrap();
        let reader = thread::spawn(move || {
            let mut buf = [0; 4];
            let count = file.read(&mut buf).unwrap();
            (count, buf)
        });
        thread::sleep(Duration::from_millis(50));
        assert!(!reader.is_finished(), "read bytes that had not arrived");
        arrival.arrived(5);
        let (count, buf) = reader.join().unwrap();
        assert_eq!(&buf[..count], b"234");
    }

    #[test]
    fn a_failed_download_fails_the_waiting_reads() {
        let arrival = Arrival::new(10);
        arrival.arrived(3);
        let mut file = ArchiveFile::arriving(ten_bytes(), Arc::clone(&arrival)).unwrap();
        let mut buf = [0; 8];
        assert_eq!(file.read(&mut buf).unwrap(), 3);
        let reader = thread::spawn(move || file.read(&mut buf));
        arrival.failed("connection reset");
        let error = reader.join().unwrap().unwrap_err();
        assert!(error.to_string().contains("connection reset"), "{error}");
    }
}
