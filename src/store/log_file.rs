//! The message log's file access, behind a small trait, so that tests can
//! put a file that fails, tears writes or forgets what was not synced in
//! the real file's place (as redb's crash tests do with its
//! `StorageBackend`). [`RealLogFile`] is the real file and the default:
//! [`super::Store::open`] uses it. `tests/storage_faults.rs` holds the
//! fault-injecting one.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What [`super::msglog::MessageLog`] does to its file: positioned reads
/// and writes, its size, cutting it, and syncing it. Every method reports
/// the operating system's error unchanged.
///
/// **What an implementation may do on failure** (and what the log
/// assumes): a failed [`LogFile::write_all_at`] may have written any prefix
/// of its bytes. After a failed [`LogFile::sync_data`] nothing written since
/// the last successful sync may be taken to be on disk, and a later sync
/// that succeeds does not put it there: Linux marks the pages that failed to
/// reach the disk clean, so a retried fsync reports success over lost data
/// (PostgreSQL's "fsyncgate", 2018). The log therefore never retries a
/// failed sync and never counts what it covered.
pub trait LogFile: Send + Sync {
    /// The file's size in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Fills `buf` with the bytes at `offset`; an error if the file ends
    /// first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes all of `data` at `offset`, growing the file if needed.
    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()>;
    /// Cuts (or extends) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file's bytes and size durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
}

/// Opens the message log's file at a path: how a store is given a
/// [`LogFile`] other than the real one.
pub type LogFileOpener = dyn Fn(&Path) -> io::Result<Box<dyn LogFile>>;

/// The real file.
pub struct RealLogFile(File);

impl RealLogFile {
    /// Opens the file at `path` for reading and writing, creating it if it
    /// is missing (never cutting it).
    pub fn open(path: &Path) -> io::Result<RealLogFile> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map(RealLogFile)
    }

    /// [`RealLogFile::open`] as a [`LogFileOpener`].
    pub fn open_boxed(path: &Path) -> io::Result<Box<dyn LogFile>> {
        Ok(Box::new(RealLogFile::open(path)?))
    }
}

impl LogFile for RealLogFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(&self.0, buf, offset)
    }

    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(&self.0, data, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}
