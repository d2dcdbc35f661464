//! The message log file: the bytes of every stored message, appended to
//! one file beside the sled index. Only [`crate::store`] uses it.
//!
//! Message bytes are most of a store's size and are written once and never
//! changed, so keeping them out of sled's B-tree saves sled from carrying,
//! rewriting and fragmenting them; sled keeps only where each message is
//! (an 12-byte [`Location`]) together with the indexes.
//!
//! **Format.** A sequence of records, each a 4-byte big-endian length and
//! then that many bytes of an encoded message. A [`Location`] points at the
//! message bytes, after the length, so a read can check the length prefix
//! and catch a location that does not point at a record.
//!
//! **Crash consistency.** The file is the data, sled says how much of it
//! counts: a batch is written to the file and synced *before* the sled
//! batch that points into it (and records the new committed length) is
//! applied. After a crash the file may hold a tail that no sled entry
//! points at; [`MessageLog::open`] cuts it off. A file shorter than the
//! committed length means the file was damaged or replaced, and is refused.
//!
//! **Failed writes.** A write or sync that fails leaves the committed
//! length where it was: the batch is an error to its caller and is never
//! counted, and the next batch is written over the same bytes and synced
//! anew, so nothing counted rests on bytes whose write-back failed (see
//! [`LogFile`] for why a failed sync is never retried). A full disk is
//! [`LogError::DiskFull`]. The file is reached through [`LogFile`], so
//! tests can inject these faults.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use thiserror::Error;

use super::log_file::{LogFile, RealLogFile};
use crate::feed::message::MAX_MESSAGE_LEN;

/// The message log file, inside the store directory.
pub(super) const LOG_FILE: &str = "messages.log";

/// Bytes of a record's length prefix.
pub(super) const LEN_PREFIX: u64 = 4;

/// Most bytes [`MessageLog::read_adjacent`] reads at once.
pub const MAX_ADJACENT_BYTES: usize = 256 * 1024;

/// Where the message at `loc` ends (saturating: an absurd location is
/// refused by the committed length, not wrapped).
fn record_end(loc: Location) -> u64 {
    loc.offset.saturating_add(u64::from(loc.len))
}

/// Whether the record at `next` starts where the one at `loc` ends.
pub fn follows(loc: Location, next: Location) -> bool {
    next.offset == record_end(loc).saturating_add(LEN_PREFIX)
}

/// Where a message's bytes are in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Location {
    /// Offset of the message bytes (after the record's length prefix).
    pub offset: u64,
    /// Length of the message bytes.
    pub len: u32,
}

impl Location {
    /// Encoded size of a location.
    pub const ENCODED_LEN: usize = 12;

    /// Offset ‖ length, big-endian.
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..8].copy_from_slice(&self.offset.to_be_bytes());
        out[8..].copy_from_slice(&self.len.to_be_bytes());
        out
    }

    /// The inverse of [`Location::encode`]; `None` if `bytes` is not one.
    pub fn decode(bytes: &[u8]) -> Option<Location> {
        if bytes.len() != Self::ENCODED_LEN {
            return None;
        }
        Some(Location {
            offset: u64::from_be_bytes(bytes[..8].try_into().ok()?),
            len: u32::from_be_bytes(bytes[8..].try_into().ok()?),
        })
    }
}

/// A failure of the message log.
#[derive(Debug, Error)]
pub enum LogError {
    /// The disk holding the log is full (or the user's quota is used
    /// up): the batch being written was not stored, and nothing stored
    /// before it was harmed.
    #[error(
        "the disk holding message log {path} is full ({source}): the new messages were not stored, and nothing stored before was harmed; free some space and try again"
    )]
    DiskFull {
        /// The log file.
        path: PathBuf,
        /// The I/O error (`ENOSPC` or `EDQUOT`).
        source: io::Error,
    },
    /// Reading or writing the file failed.
    #[error("message log {path}: {source}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The file is shorter than the index says was committed to it.
    #[error(
        "message log {path} holds {actual} bytes but the store committed {committed}: the file was damaged or replaced"
    )]
    Truncated {
        /// The log file.
        path: PathBuf,
        /// Its length on disk.
        actual: u64,
        /// The committed length recorded in the index.
        committed: u64,
    },
    /// The index says less of the log is committed than it said before:
    /// the index (sled) lost writes it had reported durable.
    #[error(
        "the store's index says {committed} bytes of message log {path} count, but it said {durable} before: the index lost data"
    )]
    RolledBack {
        /// The log file.
        path: PathBuf,
        /// The committed length the index holds now.
        committed: u64,
        /// The committed length it had reported durable.
        durable: u64,
    },
    /// A committed record cannot be read as one (its length is
    /// impossible, or the file ends inside it): the file was damaged.
    #[error("message log {path} is damaged: {reason} (run `potluck fsck`)")]
    Unreadable {
        /// The log file.
        path: PathBuf,
        /// What is wrong, and where.
        reason: String,
    },
    /// A location does not point at a whole record within the committed log.
    #[error("message log {path}: no record of {len} bytes at offset {offset}")]
    BadLocation {
        /// The log file.
        path: PathBuf,
        /// The offset asked for.
        offset: u64,
        /// The length asked for.
        len: u32,
    },
}

/// The open message log.
pub struct MessageLog {
    file: Box<dyn LogFile>,
    path: PathBuf,
    /// The committed length last known durable in the index, kept beside
    /// the log (see [`MessageLog::note_durable`]).
    durable_mark: File,
    /// Length of the committed part: every location handed out ends at or
    /// before it.
    committed: AtomicU64,
}

/// Records staged for one append, with the locations they will have.
pub struct PendingAppend {
    start: u64,
    bytes: Vec<u8>,
}

impl PendingAppend {
    /// Adds a message's bytes and returns where they will be.
    pub fn push(&mut self, message: &[u8]) -> Location {
        // A stored message is at most MAX_MESSAGE_LEN, far below u32::MAX.
        let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(&len.to_be_bytes());
        let offset = self.start + self.bytes.len() as u64;
        self.bytes.extend_from_slice(message);
        Location { offset, len }
    }

    /// Whether nothing was staged.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The committed length once this append is in.
    pub fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl MessageLog {
    /// Opens (or creates) the log at `path`, of which `committed` bytes
    /// count; a longer file is cut back to `committed` (the tail of a
    /// batch whose index never landed).
    pub fn open(path: &Path, committed: u64) -> Result<MessageLog, LogError> {
        let file = RealLogFile::open(path).map_err(|source| LogError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        MessageLog::open_file(path, Box::new(file), committed)
    }

    /// [`MessageLog::open`] over `file`, the log's file at `path` opened
    /// already (the real one, or one that injects faults).
    pub fn open_file(
        path: &Path,
        file: Box<dyn LogFile>,
        committed: u64,
    ) -> Result<MessageLog, LogError> {
        let io_err = |source| LogError::Io {
            path: path.to_path_buf(),
            source,
        };
        let actual = file.size().map_err(io_err)?;
        if actual < committed {
            return Err(LogError::Truncated {
                path: path.to_path_buf(),
                actual,
                committed,
            });
        }
        let mark_path = durable_mark_path(path);
        let durable_mark = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&mark_path)
            .map_err(io_err)?;
        let mut mark = [0u8; 8];
        if durable_mark.read_exact_at(&mut mark, 0).is_ok() {
            let durable = u64::from_be_bytes(mark);
            if committed < durable && actual >= durable {
                return Err(LogError::RolledBack {
                    path: path.to_path_buf(),
                    committed,
                    durable,
                });
            }
        }
        if actual > committed {
            tracing::info!(
                path = %path.display(),
                dropped = actual - committed,
                "dropping the uncommitted tail of the message log (left by an interrupted write)"
            );
            // Kept beside the log until the next cut: if sled rolled back
            // further than one interrupted batch (damage), a rebuild from
            // the log still finds these records.
            save_tail(file.as_ref(), committed, actual, &tail_path(path)).map_err(io_err)?;
            file.set_len(committed).map_err(io_err)?;
            file.sync_data().map_err(io_err)?;
        }
        if committed == 0 {
            // Nothing counts yet, so the file may have just been created:
            // its name must be on disk before the first batch counts on it,
            // or a crash could take the file and leave sled pointing into it.
            crate::home::sync_parent(path).map_err(io_err)?;
        }
        Ok(MessageLog {
            file,
            durable_mark,
            path: path.to_path_buf(),
            committed: AtomicU64::new(committed),
        })
    }

    fn io_err(&self, source: io::Error) -> LogError {
        LogError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// A failed write or sync of new records: [`LogError::DiskFull`] when
    /// the disk is full.
    fn write_err(&self, source: io::Error) -> LogError {
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => LogError::DiskFull {
                path: self.path.clone(),
                source,
            },
            _ => self.io_err(source),
        }
    }

    /// The committed length.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }

    /// Starts staging records after the committed end. The caller must be
    /// the store's single writer.
    pub fn begin(&self) -> PendingAppend {
        PendingAppend {
            start: self.committed(),
            bytes: Vec::new(),
        }
    }

    /// Writes staged records and syncs them to disk. They count only once
    /// [`MessageLog::mark_committed`] is called, after the index that points
    /// at them has landed. On an error they never count: the caller must
    /// not point at them, and the next batch starts at the same offset
    /// (see "Failed writes" above).
    pub fn write(&self, pending: &PendingAppend) -> Result<(), LogError> {
        if pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(&pending.bytes, pending.start)
            .map_err(|e| self.write_err(e))?;
        self.file.sync_data().map_err(|e| self.write_err(e))
    }

    /// Empties the file (synced) and counts nothing in it, also in the
    /// durable mark: for an index file that is about to be rebuilt whole.
    /// The caller records the committed length 0 in sled first.
    pub fn reset(&self) -> Result<(), LogError> {
        self.file.set_len(0).map_err(|e| self.write_err(e))?;
        self.file.sync_data().map_err(|e| self.write_err(e))?;
        self.committed.store(0, Ordering::Release);
        self.note_durable()
    }

    /// Notes that the index has durably recorded the committed length (its
    /// flush returned), in a small file beside the log. Not synced: a lost
    /// note only makes the check in [`MessageLog::open`] weaker, never
    /// wrong, because the note is written after the index's flush. The
    /// check catches an index that rolls back further than its last flush
    /// (sled recovering from damage by dropping what followed it), which
    /// would otherwise cut reported-durable messages off the log.
    pub fn note_durable(&self) -> Result<(), LogError> {
        self.durable_mark
            .write_all_at(&self.committed().to_be_bytes(), 0)
            .map_err(|e| self.io_err(e))
    }

    /// Records that the index now points into `pending`'s records.
    pub fn mark_committed(&self, pending: &PendingAppend) {
        self.committed.store(pending.end(), Ordering::Release);
    }

    /// Reads the message at `loc`, checking that it is a whole record
    /// within the committed log.
    pub fn read(&self, loc: Location) -> Result<Vec<u8>, LogError> {
        self.read_prefix(loc, loc.len as usize)
    }

    /// Reads the first `want` bytes (at most the whole message) at `loc`.
    pub fn read_prefix(&self, loc: Location, want: usize) -> Result<Vec<u8>, LogError> {
        self.check_location(loc)?;
        let want = want.min(loc.len as usize);
        let mut buf = vec![0u8; LEN_PREFIX as usize + want];
        self.file
            .read_exact_at(&mut buf, loc.offset - LEN_PREFIX)
            .map_err(|e| self.io_err(e))?;
        if buf[..LEN_PREFIX as usize] != loc.len.to_be_bytes() {
            return Err(self.bad_location(loc));
        }
        buf.drain(..LEN_PREFIX as usize);
        Ok(buf)
    }

    /// Reads the whole records at `locs` with one read, each checked as
    /// [`MessageLog::read`] checks it. They must follow each other in the
    /// file (each starting where the one before ends), and together take
    /// at most [`MAX_ADJACENT_BYTES`]; else, or if one is not a whole
    /// committed record where its location says, it is an error and the
    /// caller reads them one by one to learn which.
    pub fn read_adjacent(&self, locs: &[Location]) -> Result<Vec<Vec<u8>>, LogError> {
        let (Some(first), Some(last)) = (locs.first(), locs.last()) else {
            return Ok(Vec::new());
        };
        for (i, &loc) in locs.iter().enumerate() {
            self.check_location(loc)?;
            if i > 0 && !follows(locs[i - 1], loc) {
                return Err(self.bad_location(loc));
            }
        }
        let start = first.offset - LEN_PREFIX;
        let span = usize::try_from(record_end(*last) - start)
            .ok()
            .filter(|&n| n <= MAX_ADJACENT_BYTES)
            .ok_or_else(|| self.bad_location(*last))?;
        let mut buf = vec![0u8; span];
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(|e| self.io_err(e))?;
        let mut records = Vec::with_capacity(locs.len());
        for &loc in locs {
            let at = (loc.offset - LEN_PREFIX - start) as usize;
            let body = at + LEN_PREFIX as usize;
            if buf[at..body] != loc.len.to_be_bytes() {
                return Err(self.bad_location(loc));
            }
            records.push(buf[body..body + loc.len as usize].to_vec());
        }
        Ok(records)
    }

    /// Whether `loc` can be a committed record: within the committed
    /// log, after a length prefix, no longer than a message.
    fn check_location(&self, loc: Location) -> Result<(), LogError> {
        if loc.len as usize > MAX_MESSAGE_LEN
            || loc.offset < LEN_PREFIX
            || record_end(loc) > self.committed()
        {
            return Err(self.bad_location(loc));
        }
        Ok(())
    }

    fn bad_location(&self, loc: Location) -> LogError {
        LogError::BadLocation {
            path: self.path.clone(),
            offset: loc.offset,
            len: loc.len,
        }
    }

    /// The committed records from offset `from` (the start of a record)
    /// on, each with its location, read in order through a buffer.
    pub fn records(
        &self,
        from: u64,
    ) -> impl Iterator<Item = Result<(Location, Vec<u8>), LogError>> + '_ {
        let end = self.committed();
        let reader = io::BufReader::with_capacity(
            1 << 20,
            FileReader {
                file: self.file.as_ref(),
                at: from.min(end),
                end,
            },
        );
        let mut records = LogRecords::starting_at(reader, from.min(end));
        std::iter::from_fn(move || {
            let start = records.offset();
            let item = records.next()?;
            Some(match item {
                Ok(bytes) => Ok((
                    Location {
                        offset: start + LEN_PREFIX,
                        // At most MAX_MESSAGE_LEN: LogRecords checks.
                        len: bytes.len() as u32,
                    },
                    bytes,
                )),
                Err(reason) => Err(LogError::Unreadable {
                    path: self.path.clone(),
                    reason,
                }),
            })
        })
    }

    /// Bytes the file occupies.
    pub fn size(&self) -> Result<u64, LogError> {
        self.file.size().map_err(|e| self.io_err(e))
    }
}

/// The file beside the log at `log` holding the committed length last
/// known durable in the index.
pub(super) fn durable_mark_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".committed");
    PathBuf::from(name)
}

/// Where [`MessageLog::open`] keeps the last tail it cut off the log at
/// `log`.
pub fn tail_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".tail");
    PathBuf::from(name)
}

/// Copies bytes `from..to` of `file` to a new file at `dest`, synced.
fn save_tail(file: &dyn LogFile, from: u64, to: u64, dest: &Path) -> io::Result<()> {
    use io::Write as _;
    const CHUNK: u64 = 1 << 20;
    let mut out = File::create(dest)?;
    let mut buf = Vec::new();
    let mut at = from;
    while at < to {
        let n = (to - at).min(CHUNK);
        // `n` is at most CHUNK, so it fits a usize.
        buf.resize(n as usize, 0);
        file.read_exact_at(&mut buf, at)?;
        out.write_all(&buf)?;
        at += n;
    }
    out.sync_all()?;
    // The log is cut right after this: the tail's name must be on disk.
    crate::home::sync_parent(dest)
}

/// Reads the records of a log file from its start, one at a time, without
/// an index (to rebuild a store whose index is lost). Stops at the end of
/// the file, or with an error at the first record that cannot be one (a
/// length of 0 or above the message limit, or a record cut short).
pub struct LogRecords<R> {
    input: R,
    offset: u64,
    done: bool,
}

impl<R: io::Read> LogRecords<R> {
    /// Records of `input`, which starts at the start of a log.
    pub fn new(input: R) -> LogRecords<R> {
        LogRecords::starting_at(input, 0)
    }

    /// Records of `input`, which starts at the start of the record at
    /// `offset` of a log.
    pub fn starting_at(input: R, offset: u64) -> LogRecords<R> {
        LogRecords {
            input,
            offset,
            done: false,
        }
    }

    /// The offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }
}

impl<R: io::Read> Iterator for LogRecords<R> {
    type Item = Result<Vec<u8>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut fail = |reason: String| {
            self.done = true;
            Some(Err(reason))
        };
        let mut len = [0u8; LEN_PREFIX as usize];
        match read_full(&mut self.input, &mut len) {
            Ok(0) => {
                self.done = true;
                return None;
            }
            Ok(n) if n < len.len() => {
                return fail(format!(
                    "a record length cut short at offset {}",
                    self.offset
                ));
            }
            Ok(_) => {}
            Err(e) => return fail(e.to_string()),
        }
        let n = u32::from_be_bytes(len) as usize;
        if n == 0 || n > MAX_MESSAGE_LEN {
            return fail(format!(
                "an impossible record length {n} at offset {}",
                self.offset
            ));
        }
        let mut bytes = vec![0u8; n];
        match read_full(&mut self.input, &mut bytes) {
            Ok(got) if got == n => {}
            Ok(_) => return fail(format!("a record cut short at offset {}", self.offset)),
            Err(e) => return fail(e.to_string()),
        }
        self.offset += LEN_PREFIX + n as u64;
        Some(Ok(bytes))
    }
}

/// Reads a log file from `at` up to `end` through positioned reads.
struct FileReader<'a> {
    file: &'a dyn LogFile,
    at: u64,
    end: u64,
}

impl io::Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.at);
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.file.read_exact_at(&mut buf[..n], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_and_bad_locations_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.log");
        let log = MessageLog::open(&path, 0).unwrap();
        let mut pending = log.begin();
        let a = pending.push(b"first");
        let b = pending.push(b"second message");
        log.write(&pending).unwrap();
        // Written but not committed: not readable yet.
        assert!(matches!(log.read(a), Err(LogError::BadLocation { .. })));
        log.mark_committed(&pending);
        assert_eq!(log.read(a).unwrap(), b"first");
        assert_eq!(log.read(b).unwrap(), b"second message");
        assert_eq!(log.read_prefix(b, 6).unwrap(), b"second");
        // A location that does not start at a record.
        let off = Location {
            offset: a.offset + 1,
            len: 4,
        };
        assert!(matches!(log.read(off), Err(LogError::BadLocation { .. })));
        assert_eq!(Location::decode(&b.encode()), Some(b));
        assert_eq!(Location::decode(&[0; 11]), None);
    }

    #[test]
    fn an_uncommitted_tail_is_cut_and_a_short_file_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.log");
        let log = MessageLog::open(&path, 0).unwrap();
        let mut first = log.begin();
        let a = first.push(b"kept");
        log.write(&first).unwrap();
        log.mark_committed(&first);
        let committed = log.committed();
        let mut second = log.begin();
        second.push(b"never indexed");
        log.write(&second).unwrap();
        drop(log);
        // Reopened with the index's committed length: the tail goes.
        let log = MessageLog::open(&path, committed).unwrap();
        assert_eq!(log.size().unwrap(), committed);
        assert_eq!(log.read(a).unwrap(), b"kept");
        drop(log);
        assert!(matches!(
            MessageLog::open(&path, committed + 10),
            Err(LogError::Truncated { .. })
        ));
    }
}
