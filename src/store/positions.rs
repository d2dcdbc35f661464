//! Where each message of each feed is in the message log: the position
//! index, kept in a file beside the log (`messages.idx`), with only each
//! feed's entry numbers in memory, so that sled holds no key per message
//! and memory holds about 4 bytes a message at most (beyond a few runs
//! per feed), and much less for messages that came in runs, as a sync
//! brings them.
//!
//! **File format.** One 64-byte entry (`Entry`) per record of
//! `messages.log`, in the log's order (entry *i* describes record *i*
//! and is at byte *i* × 64), all integers big-endian:
//!
//! | bytes  | field                                                    |
//! |--------|----------------------------------------------------------|
//! | 0..8   | offset of the message bytes in the log (after the length) |
//! | 8..12  | length of the message bytes                              |
//! | 12..16 | zero (reserved)                                          |
//! | 16..24 | the message's sequence; 0 for a record that is not a message |
//! | 24..56 | the message's author (feed id)                           |
//! | 56..64 | the first 8 bytes of the message id                      |
//!
//! **In memory** (`Positions`), each feed's messages in sequence order
//! have entry numbers (`u32`), held as runs of consecutive numbers or, for
//! a feed whose messages came between other feeds' ones, as a list of 4
//! bytes a message (the `numbers` module), built by streaming the file a
//! chunk at a time on first use. Looking a message up
//! (`Positions::slot`) reads its entry: from the entries not yet
//! written (in memory) or with one 64-byte read of the file. An entry
//! that does not decode, or that names another feed or sequence than the
//! one looked up, is [`PositionsError::Damaged`], never used. Reading
//! entry after entry, an entry at sequence *s* sets the feed's *s*-th
//! number and cuts the feed's array after it; at the end each feed is
//! cut to the head sled records. So a feed that a repair cut back (its
//! later records stay in the log) and that peers then sent again reads
//! back as the store holds it. Every message id's first 8 bytes are in
//! its entry: a record whose header or signature changed on disk no
//! longer matches (the check sled's id entries made before).
//!
//! Finding a message by id (`Positions::find_id`, only for
//! [`super::Store::message`], which the node never calls) makes a map of
//! every id's first 8 bytes on first use by reading the whole file once
//! (about 20 bytes a message, kept while the store is open).
//!
//! Making the index again from the log (a reindex, an upgrade, a repair,
//! a damaged file at open) writes the new file a chunk at a time to
//! `messages.idx.new` and renames it over the old one, so a crash leaves
//! the old file or the new; `fsck` compares the index with the log a
//! chunk at a time. Both hold only the entry numbers and one chunk.
//!
//! **Crash consistency.** The file is derived from the log, so it is not
//! synced at every commit: new entries wait in memory and are written and
//! synced when `SYNC_EVERY` have gathered (and when the store closes),
//! and the sled batch of that commit records how many entries the file
//! holds durably (`Mpositions`). After a crash the file is read up to that
//! count and the entries of the log records after it (at most
//! `SYNC_EVERY` and one batch) are made again from the log. Only whole
//! unsynced runs are ever written, each time from the last durable entry
//! on, so a failed sync (whose pages the kernel may have dropped) is
//! written again in full before the next sync counts it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::error::StoreError;
use super::msglog::{Location, LogError, MessageLog};
use crate::feed::message::{FeedId, Message, MessageId};

mod numbers;

use numbers::EntryNumbers;

/// The position index's file, inside the store directory.
pub(super) const POSITIONS_FILE: &str = "messages.idx";

/// Bytes of one entry in the file.
pub(super) const ENTRY_LEN: usize = 64;

/// New entries gathered in memory before a commit writes and syncs them
/// (1 MiB of file). After a crash at most this many (and one batch) are
/// made again from the log, reading a few MB of it.
pub(super) const SYNC_EVERY: usize = 16_384;

/// Entries read or written at once when the file is streamed (1 MiB):
/// what bounds the memory of loading, rebuilding and checking beyond the
/// entry numbers.
const CHUNK_ENTRIES: usize = 16_384;

/// Entries made again from the log at open that are kept in memory; a
/// longer tail (the file was lost or never synced) makes the whole file
/// again instead, a chunk at a time.
const MAX_TAIL: usize = 4 * SYNC_EVERY;

/// The first 8 bytes of a message id.
pub(super) fn id_prefix(id: &MessageId) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&id.0[..8]);
    out
}

/// One record of the log as the file describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    /// Where the record's message bytes are.
    pub location: Location,
    /// The message's sequence; 0 for a record that is not a message.
    pub sequence: u64,
    /// The message's author.
    pub author: FeedId,
    /// The first 8 bytes of its id.
    pub id_prefix: [u8; 8],
}

impl Entry {
    /// The entry of a message appended at `location`.
    pub fn of_message(msg: &Message, location: Location) -> Entry {
        Entry {
            location,
            sequence: msg.sequence(),
            author: msg.author(),
            id_prefix: id_prefix(&msg.id()),
        }
    }

    /// The entry of the log record `bytes` at `location`: a placeholder
    /// (sequence 0) when the record is not a message, so that entry *i*
    /// still describes record *i*.
    pub fn of_record(bytes: Vec<u8>, location: Location) -> Entry {
        match Message::decode(bytes) {
            Ok(msg) => Entry::of_message(&msg, location),
            Err(_) => Entry {
                location,
                sequence: 0,
                author: FeedId([0; 32]),
                id_prefix: [0; 8],
            },
        }
    }

    /// The entry's 64 bytes.
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[..12].copy_from_slice(&self.location.encode());
        out[16..24].copy_from_slice(&self.sequence.to_be_bytes());
        out[24..56].copy_from_slice(&self.author.0);
        out[56..64].copy_from_slice(&self.id_prefix);
        out
    }

    /// The inverse of [`Entry::encode`]; `None` if `bytes` is not an entry.
    pub fn decode(bytes: &[u8]) -> Option<Entry> {
        if bytes.len() != ENTRY_LEN || bytes[12..16] != [0; 4] {
            return None;
        }
        Some(Entry {
            location: Location::decode(&bytes[..12])?,
            sequence: u64::from_be_bytes(bytes[16..24].try_into().ok()?),
            author: FeedId(bytes[24..56].try_into().ok()?),
            id_prefix: bytes[56..64].try_into().ok()?,
        })
    }
}

/// Where one message of a feed is, as its entry says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Slot {
    /// Its bytes in the log.
    pub location: Location,
    /// The first 8 bytes of its id.
    pub id_prefix: [u8; 8],
}

/// The position index in memory: entry numbers, not entries.
#[derive(Default)]
pub(super) struct Positions {
    /// Feeds by number, each the entry numbers of its messages in
    /// sequence order (the *i*-th holds sequence *i* + 1).
    feeds: Vec<(FeedId, EntryNumbers)>,
    /// Feed numbers.
    numbers: HashMap<FeedId, u32>,
    /// Entries the file holds durably (as sled records).
    synced: u64,
    /// Encoded entries after those, not yet written.
    unsynced: Vec<u8>,
    /// Message ids to feeds and sequences, made on first use (only
    /// [`super::Store::message`] needs it).
    ids: Option<IdIndex>,
}

/// Message id (first 8 bytes, as a number) to feed number ‖ index in
/// the feed's array.
#[derive(Default)]
struct IdIndex {
    first: HashMap<u64, u64>,
    /// Ids whose first 8 bytes equal an earlier one's.
    more: Vec<(u64, u64)>,
}

impl IdIndex {
    fn insert(&mut self, prefix: [u8; 8], feed: u32, index: usize) {
        // Indexes beyond 2^32 cannot be in memory; never reached.
        let Ok(index) = u32::try_from(index) else {
            return;
        };
        let key = u64::from_be_bytes(prefix);
        let value = (u64::from(feed) << 32) | u64::from(index);
        if let Some(&held) = self.first.get(&key) {
            if held != value {
                self.more.push((key, value));
            }
        } else {
            self.first.insert(key, value);
        }
    }
}

/// How a feed's messages in the index differ from the message log (see
/// [`compare_with_log`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Difference {
    /// The feed's entries are not those the log makes.
    Differs,
    /// The log holds messages of the feed that the index lacks.
    Lacks,
}

impl Positions {
    /// The number of entries described (durable or not).
    pub fn entries(&self) -> u64 {
        self.synced + (self.unsynced.len() / ENTRY_LEN) as u64
    }

    /// Entries the file holds durably.
    pub fn synced(&self) -> u64 {
        self.synced
    }

    /// Entries waiting to be written.
    pub fn unsynced(&self) -> &[u8] {
        &self.unsynced
    }

    /// Applies entry `number`, read from the file or made from the log
    /// (see the module docs); a sequence beyond the feed's next is
    /// ignored.
    fn apply(&mut self, number: u64, entry: &Entry) {
        let Some(index) = entry
            .sequence
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return;
        };
        let Ok(number) = u32::try_from(number) else {
            // 2^32 entries are a 256 GiB file; far beyond what a node holds.
            tracing::warn!(
                entry = number,
                "the position index holds 2^32 entries; later messages are not indexed"
            );
            return;
        };
        let Some(feed) = self.feed_number(&entry.author) else {
            return;
        };
        let numbers = &mut self.feeds[feed as usize].1;
        if index > numbers.len() {
            // After a damaged record, or records a repair cut off.
            tracing::debug!(feed = %entry.author, sequence = entry.sequence, "a log record skips sequences of its feed; not indexed");
            return;
        }
        numbers.truncate(index);
        numbers.push(number);
        if let Some(ids) = &mut self.ids {
            ids.insert(entry.id_prefix, feed, index);
        }
    }

    /// Records entries of a commit that sled now points at: in memory,
    /// and waiting for the file unless `synced` (the commit wrote them
    /// with everything before them, see [`PositionFile::write_and_sync`]).
    ///
    /// Each listed feed's numbers grow by exactly what the commit adds to
    /// them (one that turns into a list during the commit grows by
    /// doubling until the next): a sync grows them a batch at a time, and
    /// growing them by doubling left up to half of each unused (the index
    /// took 21 MB for 12 MB of entry numbers in a heap profile of a 3M
    /// sync).
    pub fn commit(&mut self, entries: &[Entry], synced: bool) {
        let mut added: HashMap<FeedId, usize> = HashMap::new();
        for entry in entries {
            *added.entry(entry.author).or_default() += 1;
        }
        for (author, count) in added {
            if let Some(feed) = self.feed_number(&author) {
                self.feeds[feed as usize].1.reserve_exact(count);
            }
        }
        for entry in entries {
            self.add(entry);
        }
        if synced {
            self.note_synced();
        }
    }

    /// Records one entry, in memory and waiting for the file. Loading and
    /// rebuilding add entries one at a time through this, letting the
    /// arrays grow by doubling (an exact reservation per entry would copy
    /// each array at every push), and trim them at the end.
    fn add(&mut self, entry: &Entry) {
        self.apply(self.entries(), entry);
        self.unsynced.extend_from_slice(&entry.encode());
    }

    /// The number of `author`'s feed, given one if it has none yet;
    /// `None` once 2^32 feeds are numbered.
    fn feed_number(&mut self, author: &FeedId) -> Option<u32> {
        if let Some(&n) = self.numbers.get(author) {
            return Some(n);
        }
        let n = u32::try_from(self.feeds.len()).ok()?;
        self.feeds.push((*author, EntryNumbers::default()));
        self.numbers.insert(*author, n);
        Some(n)
    }

    /// Notes that every entry is now durable in the file.
    pub fn note_synced(&mut self) {
        self.synced = self.entries();
        self.unsynced.clear();
    }

    /// The entry numbers of `author`'s messages.
    fn numbers_of(&self, author: &FeedId) -> &EntryNumbers {
        self.numbers
            .get(author)
            .and_then(|&n| self.feeds.get(n as usize))
            .map_or(&numbers::EMPTY, |(_, numbers)| numbers)
    }

    /// The slot of message `sequence` of `author`, read from its entry in
    /// `file` (or in memory, not yet written). An entry that cannot be
    /// read, does not decode, or describes another message is an error.
    pub fn slot(
        &self,
        file: &PositionFile,
        author: &FeedId,
        sequence: u64,
    ) -> Result<Option<Slot>, PositionsError> {
        let Some(number) = sequence
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.numbers_of(author).get(i))
        else {
            return Ok(None);
        };
        let number = u64::from(number);
        let entry = self.entry(file, number)?;
        if entry.author != *author || entry.sequence != sequence {
            return Err(file.damaged(number, "it describes another message"));
        }
        Ok(Some(Slot {
            location: entry.location,
            id_prefix: entry.id_prefix,
        }))
    }

    /// The slots of up to `max` of `author`'s messages from `sequence` on
    /// (fewer where the feed ends), each checked as [`Positions::slot`]
    /// checks it. A run of entries that follow each other is read with
    /// one read of `file` (or copied from memory, not yet written).
    pub fn slots(
        &self,
        file: &PositionFile,
        author: &FeedId,
        sequence: u64,
        max: usize,
    ) -> Result<Vec<Slot>, PositionsError> {
        let numbers = self.numbers_of(author);
        let first = sequence
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .unwrap_or(usize::MAX);
        let wanted: Vec<u64> = (0..max)
            .map_while(|k| numbers.get(first.checked_add(k)?))
            .map(u64::from)
            .collect();
        let mut slots = Vec::with_capacity(wanted.len());
        let mut bytes = Vec::new();
        let mut at = 0;
        while let Some(&start) = wanted.get(at) {
            // A run: consecutive numbers, all in the file or all waiting.
            let in_file = start < self.synced;
            let len = wanted[at..]
                .iter()
                .enumerate()
                .take_while(|&(k, &n)| n == start + k as u64 && (n < self.synced) == in_file)
                .count();
            let n_bytes = len * ENTRY_LEN;
            bytes.clear();
            if in_file {
                bytes.resize(n_bytes, 0);
                file.read_at(start, &mut bytes)?;
            } else {
                let from = usize::try_from(start - self.synced)
                    .ok()
                    .and_then(|i| i.checked_mul(ENTRY_LEN));
                let held = from
                    .and_then(|from| self.unsynced.get(from..from.checked_add(n_bytes)?))
                    .ok_or_else(|| file.damaged(start, "the index holds no such entry"))?;
                bytes.extend_from_slice(held);
            }
            for (k, raw) in bytes.chunks_exact(ENTRY_LEN).enumerate() {
                let number = start + k as u64;
                let entry = Entry::decode(raw)
                    .ok_or_else(|| file.damaged(number, "its bytes are not an entry"))?;
                let wanted_sequence = sequence + (at + k) as u64;
                if entry.author != *author || entry.sequence != wanted_sequence {
                    return Err(file.damaged(number, "it describes another message"));
                }
                slots.push(Slot {
                    location: entry.location,
                    id_prefix: entry.id_prefix,
                });
            }
            at += len;
        }
        Ok(slots)
    }

    /// Entry `number`: from memory if it is not written yet, else read
    /// from `file`.
    fn entry(&self, file: &PositionFile, number: u64) -> Result<Entry, PositionsError> {
        let mut bytes = [0u8; ENTRY_LEN];
        match number.checked_sub(self.synced) {
            Some(waiting) => {
                let held = usize::try_from(waiting)
                    .ok()
                    .and_then(|i| i.checked_mul(ENTRY_LEN))
                    .and_then(|at| self.unsynced.get(at..at + ENTRY_LEN))
                    .ok_or_else(|| file.damaged(number, "the index holds no such entry"))?;
                bytes.copy_from_slice(held);
            }
            None => file.read_at(number, &mut bytes)?,
        }
        Entry::decode(&bytes).ok_or_else(|| file.damaged(number, "its bytes are not an entry"))
    }

    /// How many messages of `author` are indexed.
    pub fn feed_len(&self, author: &FeedId) -> u64 {
        self.numbers_of(author).len() as u64
    }

    /// Cuts `author`'s feed to its first `len` messages (a repair cut it,
    /// or its head says it holds no more).
    pub fn cut(&mut self, author: &FeedId, len: u64) {
        if let Some(&n) = self.numbers.get(author)
            && let Some((_, numbers)) = self.feeds.get_mut(n as usize)
            && let Ok(len) = usize::try_from(len)
            && len < numbers.len()
        {
            numbers.truncate(len);
            // A cut id would still be found, then refused by the check of
            // its slot; simpler to make the map again when next needed.
            self.ids = None;
        }
    }

    /// Cuts every feed to its head sequence in `heads` (a feed missing
    /// from it holds nothing), and lets each array hold no more than its
    /// numbers: grown one push at a time, it may hold twice as many.
    fn cut_to_heads(&mut self, heads: &HashMap<FeedId, u64>) {
        let feeds: Vec<FeedId> = self.feeds.iter().map(|(f, _)| *f).collect();
        for feed in feeds {
            self.cut(&feed, heads.get(&feed).copied().unwrap_or(0));
        }
        for (_, numbers) in &mut self.feeds {
            numbers.shrink_to_fit();
        }
    }

    /// Feeds and sequences of the messages whose id starts like `id`.
    ///
    /// The first call reads every entry of `file` once, a chunk at a
    /// time, and keeps a map of every indexed id's first 8 bytes (about
    /// 20 bytes a message, while the store is open; commits keep it up
    /// to date). Only [`super::Store::message`] asks; syncing and serving
    /// never do. A damaged entry is left out of the map (`fsck` shows it).
    pub fn find_id(
        &mut self,
        file: &PositionFile,
        id: &MessageId,
    ) -> Result<Vec<(FeedId, u64)>, PositionsError> {
        if self.ids.is_none() {
            let mut ids = IdIndex::default();
            let mut reader = Sequential::new(self, file)?;
            for number in 0..self.entries() {
                let entry = match reader.get(number) {
                    Ok(bytes) => bytes.and_then(Entry::decode),
                    Err(PositionsError::Damaged { .. }) => None,
                    Err(e) => return Err(e),
                };
                let Some(entry) = entry else {
                    continue;
                };
                let (Some(&feed), Some(index)) = (
                    self.numbers.get(&entry.author),
                    entry
                        .sequence
                        .checked_sub(1)
                        .and_then(|i| usize::try_from(i).ok()),
                ) else {
                    continue;
                };
                // Only the entry the feed uses at that sequence.
                let used = self
                    .feeds
                    .get(feed as usize)
                    .and_then(|(_, numbers)| numbers.get(index))
                    .is_some_and(|n| u64::from(n) == number);
                if used {
                    ids.insert(entry.id_prefix, feed, index);
                }
            }
            self.ids = Some(ids);
        }
        let Some(ids) = &self.ids else {
            return Ok(Vec::new());
        };
        let key = u64::from_be_bytes(id_prefix(id));
        let mut out = Vec::new();
        let hits = ids
            .first
            .get(&key)
            .into_iter()
            .copied()
            .chain(ids.more.iter().filter(|(k, _)| *k == key).map(|&(_, v)| v));
        for value in hits {
            let number = (value >> 32) as usize;
            let sequence = (value & 0xffff_ffff) + 1;
            if let Some((feed, numbers)) = self.feeds.get(number)
                && sequence <= numbers.len() as u64
            {
                out.push((*feed, sequence));
            }
        }
        Ok(out)
    }
}

/// Reads the entries of a [`Positions`] in order, a chunk at a time: from
/// its file up to what is durable, then from memory.
struct Sequential<'a> {
    positions: &'a Positions,
    file: &'a PositionFile,
    /// Whole entries the file held when reading began: those the index
    /// counts as written beyond them are damaged, without reading.
    in_file: u64,
    /// The number of the first entry in `buf`.
    start: u64,
    /// At most [`CHUNK_ENTRIES`] entries.
    buf: Vec<u8>,
}

impl<'a> Sequential<'a> {
    fn new(
        positions: &'a Positions,
        file: &'a PositionFile,
    ) -> Result<Sequential<'a>, PositionsError> {
        Ok(Sequential {
            positions,
            file,
            in_file: file.size()? / ENTRY_LEN as u64,
            start: 0,
            buf: Vec::new(),
        })
    }

    /// The bytes of entry `number`, or `None` past the last entry.
    fn get(&mut self, number: u64) -> Result<Option<&[u8]>, PositionsError> {
        let total = self.positions.entries();
        if number >= total {
            return Ok(None);
        }
        let held = (self.buf.len() / ENTRY_LEN) as u64;
        if number < self.start || number >= self.start + held {
            // A chunk from `number` on, not crossing from file to memory.
            let synced = self.positions.synced;
            if number < synced && number >= self.in_file {
                return Err(self
                    .file
                    .damaged(number, "the file is shorter than the index says"));
            }
            let end = if number < synced {
                synced.min(self.in_file).min(number + CHUNK_ENTRIES as u64)
            } else {
                total.min(number + CHUNK_ENTRIES as u64)
            };
            let len = (end - number) as usize * ENTRY_LEN;
            self.buf.clear();
            if number < synced {
                self.buf.resize(len, 0);
                if let Err(e) = self.file.read_at(number, &mut self.buf) {
                    // Never read back as if it held these entries.
                    self.buf.clear();
                    return Err(e);
                }
            } else {
                let at = (number - synced) as usize * ENTRY_LEN;
                let waiting =
                    self.positions.unsynced.get(at..at + len).ok_or_else(|| {
                        self.file.damaged(number, "the index holds no such entry")
                    })?;
                self.buf.extend_from_slice(waiting);
            }
            self.start = number;
        }
        let at = (number - self.start) as usize * ENTRY_LEN;
        Ok(self.buf.get(at..at + ENTRY_LEN))
    }
}

/// Why the position index could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    /// Reading or writing the file failed.
    #[error("position index {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// An entry the index uses cannot be read back as it was written:
    /// the file was cut or changed on disk.
    #[error(
        "position index {path}: entry {entry} is damaged ({reason}); `potluck reindex` makes the index again from the message log"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The entry's number (its byte offset over 64).
        entry: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The position index's file.
pub(super) struct PositionFile {
    /// Replaced whole by [`PositionFile::replace`].
    file: std::sync::RwLock<File>,
    path: PathBuf,
}

/// A new position file being written beside the old one (see
/// [`PositionFile::begin_replace`]).
struct Replacement {
    file: File,
    path: PathBuf,
}

impl Replacement {
    fn io_err(&self, source: io::Error) -> PositionsError {
        PositionsError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Writes `bytes` (whole entries) from entry `first` on, unsynced.
    fn write(&self, first: u64, bytes: &[u8]) -> Result<(), PositionsError> {
        self.file
            .write_all_at(bytes, first * ENTRY_LEN as u64)
            .map_err(|e| self.io_err(e))
    }
}

impl PositionFile {
    /// Opens (or creates) the file in the store directory `dir`.
    pub fn open(dir: &Path) -> Result<PositionFile, PositionsError> {
        let path = dir.join(POSITIONS_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| PositionsError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(PositionFile {
            file: std::sync::RwLock::new(file),
            path,
        })
    }

    fn file(&self) -> std::sync::RwLockReadGuard<'_, File> {
        // Nothing is left half-done under the lock: it only swaps a handle.
        self.file.read().unwrap_or_else(|e| e.into_inner())
    }

    fn io_err(&self, source: io::Error) -> PositionsError {
        PositionsError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn damaged(&self, entry: u64, reason: &'static str) -> PositionsError {
        PositionsError::Damaged {
            path: self.path.clone(),
            entry,
            reason,
        }
    }

    /// Writes `bytes` (whole entries) after the first `synced` entries,
    /// cuts whatever followed, and syncs the file.
    pub fn write_and_sync(&self, synced: u64, bytes: &[u8]) -> Result<(), PositionsError> {
        let at = synced * ENTRY_LEN as u64;
        let file = self.file();
        file.write_all_at(bytes, at)
            .and_then(|()| file.set_len(at + bytes.len() as u64))
            .and_then(|()| file.sync_data())
            .map_err(|e| self.io_err(e))
    }

    /// Reads whole entries from entry `first` on into `out`; a file too
    /// short to hold them is damaged (the index counts them as written).
    fn read_at(&self, first: u64, out: &mut [u8]) -> Result<(), PositionsError> {
        let at = first
            .checked_mul(ENTRY_LEN as u64)
            .ok_or_else(|| self.damaged(first, "beyond any file"))?;
        match self.file().read_exact_at(out, at) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(self.damaged(first, "the file is shorter than the index says"))
            }
            Err(e) => Err(self.io_err(e)),
        }
    }

    /// Calls `visit` with the number and bytes of each of the first
    /// `count` entries, read a chunk at a time, until it returns false.
    fn each_entry(
        &self,
        count: u64,
        mut visit: impl FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), PositionsError> {
        let mut buf = Vec::new();
        let mut at = 0u64;
        while at < count {
            let n = (count - at).min(CHUNK_ENTRIES as u64);
            buf.resize(n as usize * ENTRY_LEN, 0);
            self.file()
                .read_exact_at(&mut buf, at * ENTRY_LEN as u64)
                .map_err(|e| self.io_err(e))?;
            for (i, bytes) in buf.chunks_exact(ENTRY_LEN).enumerate() {
                if !visit(at + i as u64, bytes) {
                    return Ok(());
                }
            }
            at += n;
        }
        Ok(())
    }

    /// The length of the log record whose message bytes start at
    /// `offset`, as a well-formed entry of the file says (synced or not):
    /// a hint for stepping over a damaged record. Entry `number` should
    /// be the one; otherwise the whole file is searched, a chunk at a
    /// time (only for a damaged record, so rarely).
    fn length_at(&self, number: u64, offset: u64) -> Result<Option<u32>, PositionsError> {
        let count = self.size()? / ENTRY_LEN as u64;
        if number < count {
            let mut bytes = [0u8; ENTRY_LEN];
            self.read_at(number, &mut bytes)?;
            if let Some(entry) = Entry::decode(&bytes)
                && entry.location.offset == offset
            {
                return Ok(Some(entry.location.len));
            }
        }
        let mut found = None;
        self.each_entry(count, |_, bytes| match Entry::decode(bytes) {
            Some(entry) if entry.location.offset == offset => {
                found = Some(entry.location.len);
                false
            }
            _ => true,
        })?;
        Ok(found)
    }

    /// Bytes the file occupies.
    pub fn size(&self) -> Result<u64, PositionsError> {
        Ok(self.file().metadata().map_err(|e| self.io_err(e))?.len())
    }

    /// Starts a new file beside this one (`messages.idx.new`), to be
    /// written a chunk at a time and then put in its place by
    /// [`PositionFile::replace`].
    fn begin_replace(&self) -> Result<Replacement, PositionsError> {
        let path = self.path.with_extension("idx.new");
        let file = File::create(&path).map_err(|source| PositionsError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(Replacement { file, path })
    }

    /// Syncs `fresh` and renames it over this file: a crash leaves the
    /// old file or the new one.
    fn replace(&self, fresh: Replacement) -> Result<(), PositionsError> {
        fresh.file.sync_all().map_err(|e| fresh.io_err(e))?;
        std::fs::rename(&fresh.path, &self.path).map_err(|e| fresh.io_err(e))?;
        crate::home::sync_parent(&self.path).map_err(|e| self.io_err(e))?;
        // The handle still reads the old file; open the new one.
        let reopened = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| self.io_err(e))?;
        *self.file.write().unwrap_or_else(|e| e.into_inner()) = reopened;
        Ok(())
    }
}

/// Builds the position index from the first `synced` entries of `file`,
/// then from the log records after them, cut to `heads` (every feed's
/// head sequence; a feed missing from it holds nothing). A head beyond
/// what the log holds is left for `fsck` to find.
///
/// The file is streamed a chunk at a time; only entry numbers are kept.
/// Its entries are used only if it holds that many well-formed ones and
/// the last of them describes the record the log holds there (its length
/// prefix, feed, sequence and id); otherwise (or when more than
/// `MAX_TAIL` records follow them) the whole file is made again from the
/// log by [`rebuild`]. A log record that cannot be read (a damaged
/// length) is stepped over where the file's own entry for it says how
/// long it is, as a placeholder; without one, the index stops there, and
/// `fsck` reports the feeds whose heads it does not reach.
pub(super) fn load(
    file: &PositionFile,
    synced: u64,
    log: &MessageLog,
    heads: &HashMap<FeedId, u64>,
) -> Result<Positions, StoreError> {
    let Some((mut positions, next)) = from_file(file, synced, log)? else {
        tracing::warn!(path = %file.path.display(), "the position index is damaged or missing; making it again from the message log");
        return rebuild(file, log, heads);
    };
    let first = positions.entries();
    let whole = scan_log(log, file, next, first, |entry| {
        positions.add(&entry);
        Ok(positions.unsynced.len() < MAX_TAIL * ENTRY_LEN)
    })?;
    if !whole {
        tracing::warn!(path = %file.path.display(), "the position index lacks many of the message log's records; making it again from the log");
        return rebuild(file, log, heads);
    }
    let made = positions.entries() - first;
    if made > 0 {
        tracing::info!(
            entries = made,
            "made the position index's latest entries again from the message log"
        );
    }
    positions.cut_to_heads(heads);
    Ok(positions)
}

/// The index of the first `synced` entries of `file`, and the log offset
/// after the last one's record; `None` if the file does not hold that
/// many well-formed entries or the last one does not describe its record
/// (the file was damaged, cut or replaced).
fn from_file(
    file: &PositionFile,
    synced: u64,
    log: &MessageLog,
) -> Result<Option<(Positions, u64)>, PositionsError> {
    let Some(bytes) = synced.checked_mul(ENTRY_LEN as u64) else {
        return Ok(None);
    };
    if file.size()? < bytes {
        return Ok(None);
    }
    let mut positions = Positions::default();
    let mut last = None;
    let mut whole = true;
    file.each_entry(synced, |number, bytes| match Entry::decode(bytes) {
        Some(entry) => {
            positions.apply(number, &entry);
            last = Some(entry);
            true
        }
        None => {
            whole = false;
            false
        }
    })?;
    if !whole || last.is_some_and(|e| !describes_its_record(&e, log)) {
        return Ok(None);
    }
    positions.synced = synced;
    // `describes_its_record` checked that this end is within the log.
    let next = last.map_or(0, |e| e.location.offset + u64::from(e.location.len));
    Ok(Some((positions, next)))
}

/// Makes the position index again from the whole log, cut to `heads`:
/// writes the new file a chunk at a time beside `file` and renames it
/// over it (a crash leaves the old file or the new one). Memory holds the
/// entry numbers and one chunk. The old file's entries are only hints
/// for stepping over a damaged record (see [`load`]).
pub(super) fn rebuild(
    file: &PositionFile,
    log: &MessageLog,
    heads: &HashMap<FeedId, u64>,
) -> Result<Positions, StoreError> {
    let fresh = file.begin_replace()?;
    let mut positions = Positions::default();
    let write_chunk = |positions: &mut Positions| -> Result<(), PositionsError> {
        fresh.write(positions.synced, &positions.unsynced)?;
        positions.note_synced();
        Ok(())
    };
    scan_log(log, file, 0, 0, |entry| {
        positions.add(&entry);
        if positions.unsynced.len() >= CHUNK_ENTRIES * ENTRY_LEN {
            write_chunk(&mut positions)?;
        }
        Ok(true)
    })?;
    write_chunk(&mut positions)?;
    file.replace(fresh)?;
    positions.cut_to_heads(heads);
    Ok(positions)
}

/// Compares `held` (whose file is `file`) with the index the whole log
/// makes, cut to `heads`, reading both a chunk at a time: each feed whose
/// entry numbers differ or whose entries differ from what the log makes,
/// and each feed the log holds messages of that `held` lacks. Memory
/// holds the fresh entry numbers, one chunk and a bit per entry.
pub(super) fn compare_with_log(
    held: &Positions,
    file: &PositionFile,
    log: &MessageLog,
    heads: &HashMap<FeedId, u64>,
) -> Result<Vec<(FeedId, Difference)>, StoreError> {
    let mut fresh = Positions::default();
    let mut reader = Sequential::new(held, file)?;
    // Entries of `held` unlike the log's, a bit each, made when needed.
    let mut differs: Vec<u64> = Vec::new();
    let mut made = 0u64;
    scan_log(log, file, 0, 0, |entry| {
        fresh.apply(made, &entry);
        let same = match reader.get(made) {
            Ok(bytes) => bytes.is_some_and(|b| b == entry.encode()),
            // An entry that cannot be read differs; the feeds using it
            // are reported.
            Err(PositionsError::Damaged { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        if !same {
            let word = (made / 64) as usize;
            if differs.len() <= word {
                differs.resize(word + 1, 0);
            }
            differs[word] |= 1 << (made % 64);
        }
        made += 1;
        Ok(true)
    })?;
    fresh.cut_to_heads(heads);
    let differing = |number: u32| {
        let number = u64::from(number);
        number >= made
            || differs
                .get((number / 64) as usize)
                .is_some_and(|w| w & (1 << (number % 64)) != 0)
    };
    let mut out = Vec::new();
    for (feed, numbers) in &held.feeds {
        if numbers != fresh.numbers_of(feed) || numbers.iter().any(differing) {
            out.push((*feed, Difference::Differs));
        }
    }
    for (feed, numbers) in &fresh.feeds {
        if !numbers.is_empty() && held.feed_len(feed) == 0 {
            out.push((*feed, Difference::Lacks));
        }
    }
    Ok(out)
}

/// Makes the entry of each log record from byte `next` on (the first is
/// entry `number`) and passes it to `made`, until that returns false.
/// Returns whether every record was passed. A record that cannot be read
/// is stepped over as `file`'s own entry for it says (see [`load`]).
fn scan_log(
    log: &MessageLog,
    file: &PositionFile,
    mut next: u64,
    mut number: u64,
    mut made: impl FnMut(Entry) -> Result<bool, StoreError>,
) -> Result<bool, StoreError> {
    'scan: loop {
        for record in log.records(next) {
            let entry = match record {
                Ok((location, bytes)) => Entry::of_record(bytes, location),
                Err(LogError::Unreadable { reason, .. }) => {
                    let offset = next + LEN_PREFIX;
                    match file.length_at(number, offset)? {
                        Some(len)
                            if len > 0
                                && offset
                                    .checked_add(u64::from(len))
                                    .is_some_and(|end| end <= log.committed()) =>
                        {
                            tracing::warn!(offset = next, %reason, "a record of the message log cannot be read; stepping over it as the position index says");
                            let location = Location { offset, len };
                            next = offset + u64::from(len);
                            number += 1;
                            if !made(Entry::of_record(Vec::new(), location))? {
                                return Ok(false);
                            }
                            continue 'scan;
                        }
                        _ => {
                            tracing::warn!(offset = next, %reason, "the message log cannot be read past a damaged record; the messages after it are not indexed (`potluck fsck` shows which feeds)");
                            break 'scan;
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            };
            next = entry.location.offset + u64::from(entry.location.len);
            number += 1;
            if !made(entry)? {
                return Ok(false);
            }
        }
        break;
    }
    Ok(true)
}

/// Bytes of a log record's length prefix.
const LEN_PREFIX: u64 = 4;

/// Whether `entry` describes the record the log holds where it points:
/// within the committed log, the length prefix before it matching, and,
/// for a message, the same feed, sequence and id.
fn describes_its_record(entry: &Entry, log: &MessageLog) -> bool {
    let Some(end) = entry
        .location
        .offset
        .checked_add(u64::from(entry.location.len))
    else {
        return false;
    };
    if end > log.committed() {
        return false;
    }
    let Ok(bytes) = log.read(entry.location) else {
        return false;
    };
    if entry.sequence == 0 {
        return true;
    }
    Message::decode(bytes).is_ok_and(|m| Entry::of_message(&m, entry.location) == *entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(author: u8, sequence: u64, offset: u64, id: u8) -> Entry {
        Entry {
            location: Location { offset, len: 100 },
            sequence,
            author: FeedId([author; 32]),
            id_prefix: [id; 8],
        }
    }

    /// A position file in a new directory (kept alive by the guard).
    fn file() -> (tempfile::TempDir, PositionFile) {
        let dir = tempfile::tempdir().unwrap();
        let file = PositionFile::open(dir.path()).unwrap();
        (dir, file)
    }

    /// An index of `entries`, all waiting for the file.
    fn waiting(entries: &[Entry]) -> Positions {
        let mut p = Positions::default();
        p.commit(entries, false);
        p
    }

    /// Writes every waiting entry to `file`, as a commit does.
    fn sync(p: &mut Positions, file: &PositionFile) {
        file.write_and_sync(p.synced(), p.unsynced()).unwrap();
        p.note_synced();
    }

    fn offset(p: &Positions, file: &PositionFile, author: u8, sequence: u64) -> Option<u64> {
        p.slot(file, &FeedId([author; 32]), sequence)
            .unwrap()
            .map(|s| s.location.offset)
    }

    #[test]
    fn entries_round_trip_and_bad_ones_are_refused() {
        let e = entry(7, 42, 1234, 9);
        let bytes = e.encode();
        assert_eq!(Entry::decode(&bytes), Some(e));
        assert_eq!(Entry::decode(&bytes[..63]), None);
        let mut reserved = bytes;
        reserved[13] = 1;
        assert_eq!(Entry::decode(&reserved), None);
    }

    #[test]
    fn a_cut_feed_sent_again_reads_back_as_held() {
        let (_dir, file) = file();
        let mut p = Positions::default();
        let a = FeedId([1; 32]);
        // #1..#4, then a repair cut it to #2 and peers sent #3 and #4 anew
        // (new records later in the log).
        let entries: Vec<Entry> = (1..=4)
            .map(|s| entry(1, s, s * 100, s as u8))
            .chain((3..=4).map(|s| entry(1, s, 1000 + s * 100, 50 + s as u8)))
            .collect();
        p.commit(&entries, false);
        assert_eq!(p.feed_len(&a), 4);
        assert_eq!(offset(&p, &file, 1, 3), Some(1300));
        assert_eq!(offset(&p, &file, 1, 2), Some(200));
        // A sequence past the feed's next is not indexed.
        p.commit(&[entry(1, 9, 5000, 1)], false);
        assert_eq!(p.feed_len(&a), 4);
        assert_eq!(p.entries(), 7);
        p.cut(&a, 1);
        assert_eq!(p.feed_len(&a), 1);
        assert_eq!(offset(&p, &file, 1, 2), None);
        assert_eq!(offset(&p, &file, 1, 0), None);
    }

    #[test]
    fn memory_holds_entry_numbers_and_slots_are_read_from_the_buffer_then_the_file() {
        let (_dir, file) = file();
        let mut p = waiting(&[entry(1, 1, 4, 1), entry(2, 1, 108, 2), entry(1, 2, 212, 3)]);
        // Each feed holds u32 entry numbers (see `numbers`), and only the
        // entries not yet written are bytes in memory.
        let numbers: Vec<u32> = p.numbers_of(&FeedId([1; 32])).iter().collect();
        assert_eq!(numbers, [0, 2]);
        assert_eq!(
            p.numbers_of(&FeedId([2; 32])).iter().collect::<Vec<_>>(),
            [1]
        );
        // Before the file holds them, from the buffer (the file is empty).
        assert_eq!(file.size().unwrap(), 0);
        assert_eq!(offset(&p, &file, 1, 2), Some(212));
        sync(&mut p, &file);
        assert!(p.unsynced().is_empty());
        assert_eq!(file.size().unwrap(), 3 * ENTRY_LEN as u64);
        // Now from the file: change entry 2 there and the slot follows.
        let moved = entry(1, 2, 999, 3).encode();
        file.file()
            .write_all_at(&moved, 2 * ENTRY_LEN as u64)
            .unwrap();
        assert_eq!(offset(&p, &file, 1, 2), Some(999));
        let slot = p.slot(&file, &FeedId([2; 32]), 1).unwrap().unwrap();
        assert_eq!(slot.id_prefix, [2; 8]);
        // A new entry waits in memory again while the others are read
        // from the file.
        p.commit(&[entry(2, 2, 316, 4)], false);
        assert_eq!(offset(&p, &file, 2, 2), Some(316));
        assert_eq!(offset(&p, &file, 2, 1), Some(108));
    }

    #[test]
    fn a_commit_grows_each_feeds_numbers_by_what_it_adds_and_no_more() {
        let mut p = Positions::default();
        // Feeds in runs, as a sync brings them, over several commits: a
        // run of 100 and one of 3 per feed and commit, 8 bytes a run.
        // Feeds 3 and 4 take turns, 50 messages each a commit, so their
        // numbers are listed (4 bytes a message), and each commit after
        // the one that listed them makes room for exactly what it adds
        // (growing by doubling, the last would leave 106 of 256 unused).
        for round in 0..3u64 {
            let mut entries: Vec<Entry> = (1..=100)
                .map(|i| entry(1, round * 100 + i, (round * 100 + i) * 100, 1))
                .collect();
            for i in 1..=50 {
                entries.push(entry(3, round * 50 + i, 0, 3));
                entries.push(entry(4, round * 50 + i, 0, 4));
            }
            entries.extend((1..=3).map(|i| entry(2, round * 3 + i, 0, 2)));
            p.commit(&entries, false);
            let [one, two, three, four] = [1, 2, 3, 4].map(|f| p.numbers_of(&FeedId([f; 32])));
            // Feeds 1 and 2: one run a commit; runs grow by doubling.
            assert!(one.is_runs() && one.heap_bytes() <= 4 * 8, "{one:?}");
            assert!(two.is_runs() && two.heap_bytes() <= 4 * 8, "{two:?}");
            assert!(!three.is_runs() && !four.is_runs());
            if round > 0 {
                assert_eq!(three.heap_bytes(), (round as usize + 1) * 50 * 4);
            }
        }
        assert_eq!(p.feed_len(&FeedId([1; 32])), 300);
        assert_eq!(p.feed_len(&FeedId([2; 32])), 9);
        assert_eq!(p.feed_len(&FeedId([3; 32])), 150);
        assert_eq!(p.entries(), 609);
        // The numbers are the entries' places in the commit order: the
        // second commit's first entry of feed 2 follows the 203 entries of
        // the first commit and the 200 of feeds 1, 3 and 4 in the second.
        assert_eq!(p.numbers_of(&FeedId([2; 32])).get(3), Some(203 + 200));
        assert_eq!(p.numbers_of(&FeedId([4; 32])).get(50), Some(203 + 100 + 1));
    }

    #[test]
    fn a_damaged_entry_in_the_file_is_an_error_not_a_panic() {
        let (_dir, file) = file();
        let mut p = waiting(&[entry(1, 1, 4, 1), entry(1, 2, 108, 2), entry(1, 3, 212, 3)]);
        sync(&mut p, &file);
        let a = FeedId([1; 32]);
        // Reserved bytes set: not an entry.
        file.file().write_all_at(&[0xff], 13).unwrap();
        let err = p.slot(&file, &a, 1).unwrap_err();
        assert!(
            matches!(err, PositionsError::Damaged { entry: 0, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("potluck reindex"), "{err}");
        // Another feed's or sequence's entry where this one should be.
        let other = entry(1, 7, 108, 2).encode();
        file.file().write_all_at(&other, ENTRY_LEN as u64).unwrap();
        assert!(matches!(
            p.slot(&file, &a, 2),
            Err(PositionsError::Damaged { entry: 1, .. })
        ));
        // The file cut short of an entry the index uses.
        file.file().set_len(2 * ENTRY_LEN as u64 + 10).unwrap();
        assert!(matches!(
            p.slot(&file, &a, 3),
            Err(PositionsError::Damaged { entry: 2, .. })
        ));
        // Finding ids leaves damaged entries out; it does not fail.
        for id in 1..=3 {
            assert!(p.find_id(&file, &MessageId([id; 32])).unwrap().is_empty());
        }
        // Nor does comparing with a log: every feed using them differs.
        let dir = tempfile::tempdir().unwrap();
        let log = MessageLog::open(&dir.path().join("log"), 0).unwrap();
        let found = compare_with_log(&p, &file, &log, &HashMap::new()).unwrap();
        assert_eq!(found, vec![(a, Difference::Differs)]);
    }

    #[test]
    fn ids_are_found_also_when_their_first_bytes_collide() {
        let (_dir, file) = file();
        let mut p = Positions::default();
        p.commit(&[entry(1, 1, 4, 7), entry(2, 1, 108, 7)], false);
        sync(&mut p, &file);
        p.commit(&[entry(2, 2, 212, 8)], false);
        let mut id = MessageId([7; 32]);
        let mut found = p.find_id(&file, &id).unwrap();
        found.sort_by_key(|(f, _)| f.0);
        assert_eq!(found, vec![(FeedId([1; 32]), 1), (FeedId([2; 32]), 1)]);
        // Made once, then kept up to date.
        p.commit(&[entry(3, 1, 316, 7)], false);
        assert_eq!(p.find_id(&file, &id).unwrap().len(), 3);
        id = MessageId([8; 32]);
        assert_eq!(p.find_id(&file, &id).unwrap(), vec![(FeedId([2; 32]), 2)]);
        id.0[0] = 9;
        assert!(p.find_id(&file, &id).unwrap().is_empty());
    }

    #[test]
    fn synced_and_waiting_entries_are_counted_apart() {
        let mut p = Positions::default();
        p.commit(&[entry(1, 1, 4, 1), entry(1, 2, 108, 2)], false);
        assert_eq!((p.synced(), p.entries(), p.unsynced().len()), (0, 2, 128));
        p.commit(&[entry(1, 3, 212, 3)], true);
        assert_eq!((p.synced(), p.entries(), p.unsynced().len()), (3, 3, 0));
    }

    #[test]
    fn entries_are_read_in_chunks_across_the_file_and_memory() {
        let (_dir, file) = file();
        let mut p = Positions::default();
        let count = CHUNK_ENTRIES as u64 + 10;
        let all: Vec<Entry> = (1..=count).map(|s| entry(1, s, s * 100, 0)).collect();
        p.commit(&all, false);
        sync(&mut p, &file);
        p.commit(&[entry(2, 1, 1, 0)], false);
        let mut reader = Sequential::new(&p, &file).unwrap();
        for number in 0..p.entries() {
            let bytes = reader.get(number).unwrap().unwrap();
            let e = Entry::decode(bytes).unwrap();
            let want = all
                .get(number as usize)
                .copied()
                .unwrap_or(entry(2, 1, 1, 0));
            assert_eq!(e, want, "entry {number}");
        }
        assert!(reader.get(p.entries()).unwrap().is_none());
        assert!(reader.buf.len() <= CHUNK_ENTRIES * ENTRY_LEN);
    }

    #[test]
    fn slots_read_ahead_are_the_slots_read_one_by_one_across_file_and_memory() {
        let (_dir, file) = file();
        let mut p = Positions::default();
        // Feed 1: #1..#7 in the file, interleaved with feed 2 from #4 to
        // #6; #8..#10 waiting in memory, so that a run of its numbers
        // goes on from the file into memory; feed 2 ends in memory too.
        let mut entries: Vec<Entry> = (1..=3).map(|s| entry(1, s, s * 100, s as u8)).collect();
        for s in 4..=6 {
            entries.push(entry(1, s, s * 100, s as u8));
            entries.push(entry(2, s - 3, 5000 + s * 100, 0));
        }
        entries.push(entry(1, 7, 700, 7));
        p.commit(&entries, false);
        sync(&mut p, &file);
        let waiting: Vec<Entry> = (8..=10)
            .map(|s| entry(1, s, s * 100, s as u8))
            .chain([entry(2, 4, 9000, 0)])
            .collect();
        p.commit(&waiting, false);
        for author in [1u8, 2] {
            let feed = FeedId([author; 32]);
            let len = p.feed_len(&feed);
            for first in 0..=len + 1 {
                for max in [0, 1, 2, 5, 64] {
                    let ahead = p.slots(&file, &feed, first, max).unwrap();
                    let one_by_one: Vec<Slot> = (first.max(1)..)
                        .take(if first == 0 { 0 } else { max })
                        .map_while(|s| p.slot(&file, &feed, s).unwrap())
                        .collect();
                    assert_eq!(ahead, one_by_one, "feed {author}, {max} from #{first}");
                }
            }
        }
        // An entry changed on disk is an error, as one by one.
        file.write_and_sync(1, &entry(9, 2, 200, 2).encode())
            .unwrap();
        assert!(p.slot(&file, &FeedId([1; 32]), 2).is_err());
        assert!(p.slots(&file, &FeedId([1; 32]), 1, 4).is_err());
    }
}
