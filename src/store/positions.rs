//! Where each message of each feed is in the message log: the position
//! index, kept in a file beside the log (`messages.idx`) and in memory, so
//! that sled holds no key per message.
//!
//! **File format.** One 64-byte entry (`Entry`) per record of
//! `messages.log`, in the log's order (entry *i* describes record *i*),
//! all integers big-endian:
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
//! are an array of slots (`Slot`, 24 bytes each), built from the file on
//! first use. Reading entry after entry, an entry at sequence *s* sets the
//! feed's slot *s* and cuts the feed's array after it; at the end each
//! feed is cut to the head sled records. So a feed that a repair cut back
//! (its later records stay in the log) and that peers then sent again
//! reads back as the store holds it. Every message id's first 8 bytes
//! are in its slot: a record whose header or signature changed on disk
//! no longer matches (the check sled's id entries made before).
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

/// The position index's file, inside the store directory.
pub(super) const POSITIONS_FILE: &str = "messages.idx";

/// Bytes of one entry in the file.
pub(super) const ENTRY_LEN: usize = 64;

/// New entries gathered in memory before a commit writes and syncs them
/// (1 MiB of file). After a crash at most this many (and one batch) are
/// made again from the log, reading a few MB of it.
pub(super) const SYNC_EVERY: usize = 16_384;

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

/// Where one message of a feed is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Slot {
    /// Its bytes in the log.
    pub location: Location,
    /// The first 8 bytes of its id.
    pub id_prefix: [u8; 8],
}

/// The position index in memory.
#[derive(Default)]
pub(super) struct Positions {
    /// Feeds by number, each its slots in sequence order (slot *i* holds
    /// sequence *i* + 1).
    feeds: Vec<(FeedId, Vec<Slot>)>,
    /// Feed numbers.
    numbers: HashMap<FeedId, u32>,
    /// Entries the file holds durably (as sled records).
    synced: u64,
    /// Encoded entries after those, not yet written.
    unsynced: Vec<u8>,
    /// Message ids to slots, made on first use (only [`super::Store::message`]
    /// needs it).
    ids: Option<IdIndex>,
}

/// Message id (first 8 bytes, as a number) to feed number ‖ slot index.
#[derive(Default)]
struct IdIndex {
    first: HashMap<u64, u64>,
    /// Ids whose first 8 bytes equal an earlier one's.
    more: Vec<(u64, u64)>,
}

impl IdIndex {
    fn insert(&mut self, prefix: [u8; 8], feed: u32, index: usize) {
        // Slot indexes beyond 2^32 cannot be in memory; never reached.
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

    /// Applies one entry read from the file or the log (see the module
    /// docs); a sequence beyond the feed's next is ignored.
    fn apply(&mut self, entry: &Entry) {
        let Some(index) = entry
            .sequence
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return;
        };
        let number = match self.numbers.get(&entry.author) {
            Some(&n) => n,
            None => {
                let Ok(n) = u32::try_from(self.feeds.len()) else {
                    return;
                };
                self.feeds.push((entry.author, Vec::new()));
                self.numbers.insert(entry.author, n);
                n
            }
        };
        let slots = &mut self.feeds[number as usize].1;
        if index > slots.len() {
            // After a damaged record, or records a repair cut off.
            tracing::debug!(feed = %entry.author, sequence = entry.sequence, "a log record skips sequences of its feed; not indexed");
            return;
        }
        slots.truncate(index);
        slots.push(Slot {
            location: entry.location,
            id_prefix: entry.id_prefix,
        });
        if let Some(ids) = &mut self.ids {
            ids.insert(entry.id_prefix, number, index);
        }
    }

    /// Records entries of a commit that sled now points at: in memory,
    /// and waiting for the file unless `synced` (the commit wrote them
    /// with everything before them, see [`PositionFile::write_and_sync`]).
    pub fn commit(&mut self, entries: &[Entry], synced: bool) {
        for entry in entries {
            self.apply(entry);
            self.unsynced.extend_from_slice(&entry.encode());
        }
        if synced {
            self.note_synced();
        }
    }

    /// Notes that every entry is now durable in the file.
    pub fn note_synced(&mut self) {
        self.synced = self.entries();
        self.unsynced.clear();
    }

    /// The slot of message `sequence` of `author`.
    pub fn slot(&self, author: &FeedId, sequence: u64) -> Option<Slot> {
        let index = usize::try_from(sequence.checked_sub(1)?).ok()?;
        let &number = self.numbers.get(author)?;
        self.feeds.get(number as usize)?.1.get(index).copied()
    }

    /// How many messages of `author` are indexed.
    pub fn feed_len(&self, author: &FeedId) -> u64 {
        self.numbers
            .get(author)
            .and_then(|&n| self.feeds.get(n as usize))
            .map_or(0, |(_, slots)| slots.len() as u64)
    }

    /// Cuts `author`'s feed to its first `len` messages (a repair cut it,
    /// or its head says it holds no more).
    pub fn cut(&mut self, author: &FeedId, len: u64) {
        if let Some(&n) = self.numbers.get(author)
            && let Some((_, slots)) = self.feeds.get_mut(n as usize)
            && let Ok(len) = usize::try_from(len)
            && len < slots.len()
        {
            slots.truncate(len);
            // A cut id would still be found, then refused by the check of
            // its slot; simpler to make the map again when next needed.
            self.ids = None;
        }
    }

    /// Feed number ‖ slot index of messages whose id starts like `id`.
    pub fn find_id(&mut self, id: &MessageId) -> Vec<(FeedId, u64)> {
        let ids = self.ids.get_or_insert_with(|| {
            let mut ids = IdIndex::default();
            for (number, (_, slots)) in self.feeds.iter().enumerate() {
                let Ok(number) = u32::try_from(number) else {
                    break;
                };
                for (index, slot) in slots.iter().enumerate() {
                    ids.insert(slot.id_prefix, number, index);
                }
            }
            ids
        });
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
            if let Some((feed, slots)) = self.feeds.get(number)
                && sequence <= slots.len() as u64
            {
                out.push((*feed, sequence));
            }
        }
        out
    }

    /// Every feed and its slots, for checks.
    pub fn feeds(&self) -> impl Iterator<Item = (&FeedId, &[Slot])> {
        self.feeds.iter().map(|(f, s)| (f, s.as_slice()))
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
}

/// The position index's file.
pub(super) struct PositionFile {
    /// Replaced whole by [`PositionFile::replace`].
    file: std::sync::RwLock<File>,
    path: PathBuf,
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

    /// Reads the first `count` entries; `None` when the file does not hold
    /// that many whole entries (it was damaged, cut or replaced).
    fn read_entries(&self, count: u64) -> Result<Option<Vec<Entry>>, PositionsError> {
        let file = self.file();
        let size = file.metadata().map_err(|e| self.io_err(e))?.len();
        let Some(bytes) = count.checked_mul(ENTRY_LEN as u64) else {
            return Ok(None);
        };
        if size < bytes {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        let mut whole = true;
        self.each_entry(&file, count, |bytes| match Entry::decode(bytes) {
            Some(entry) => {
                out.push(entry);
                true
            }
            None => {
                whole = false;
                false
            }
        })?;
        Ok(whole.then_some(out))
    }

    /// Calls `visit` with each of the first `count` entries' bytes, read a
    /// chunk at a time, until it returns false.
    fn each_entry(
        &self,
        file: &File,
        count: u64,
        mut visit: impl FnMut(&[u8]) -> bool,
    ) -> Result<(), PositionsError> {
        const CHUNK_ENTRIES: u64 = 16_384;
        let mut buf = Vec::new();
        let mut at = 0u64;
        while at < count {
            let n = (count - at).min(CHUNK_ENTRIES);
            // At most CHUNK_ENTRIES × 64 bytes.
            buf.resize(n as usize * ENTRY_LEN, 0);
            file.read_exact_at(&mut buf, at * ENTRY_LEN as u64)
                .map_err(|e| self.io_err(e))?;
            for bytes in buf.chunks_exact(ENTRY_LEN) {
                if !visit(bytes) {
                    return Ok(());
                }
            }
            at += n;
        }
        Ok(())
    }

    /// Offset → length of every well-formed entry the file holds, synced
    /// or not (hints for stepping over a damaged log record).
    fn all_locations(&self) -> Result<HashMap<u64, u32>, PositionsError> {
        let count = self.size()? / ENTRY_LEN as u64;
        let mut out = HashMap::new();
        self.each_entry(&self.file(), count, |bytes| {
            if let Some(entry) = Entry::decode(bytes) {
                out.insert(entry.location.offset, entry.location.len);
            }
            true
        })?;
        Ok(out)
    }

    /// Bytes the file occupies.
    pub fn size(&self) -> Result<u64, PositionsError> {
        Ok(self.file().metadata().map_err(|e| self.io_err(e))?.len())
    }

    /// Replaces the whole file with `entries`, synced, through a new file
    /// renamed over it: a crash leaves the old file or the new one.
    pub fn replace(&self, entries: &[u8]) -> Result<(), PositionsError> {
        let fresh = self.path.with_extension("idx.new");
        let io_err = |source| PositionsError::Io {
            path: fresh.clone(),
            source,
        };
        {
            use io::Write as _;
            let mut file = File::create(&fresh).map_err(io_err)?;
            file.write_all(entries).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
        }
        std::fs::rename(&fresh, &self.path).map_err(io_err)?;
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
/// The file's entries are used only if it holds that many well-formed
/// ones and the last of them describes the record the log holds there
/// (its length prefix, feed, sequence and id); otherwise every entry is
/// made again from the whole log. A log record that cannot be read (a
/// damaged length) is stepped over where the file's own entry for it
/// says how long it is, as a placeholder; without one, the index stops
/// there, and `fsck` reports the feeds whose heads it does not reach.
pub(super) fn load(
    file: &PositionFile,
    synced: u64,
    log: &MessageLog,
    heads: &HashMap<FeedId, u64>,
) -> Result<Positions, StoreError> {
    let entries = match file.read_entries(synced)? {
        Some(entries) if entries.last().is_none_or(|e| describes_its_record(e, log)) => entries,
        _ => {
            tracing::warn!(path = %file.path.display(), "the position index is damaged or missing; making it again from the message log");
            Vec::new()
        }
    };
    let mut positions = Positions::default();
    for entry in &entries {
        positions.apply(entry);
    }
    positions.synced = entries.len() as u64;
    // `describes_its_record` checked that this end is within the log.
    let mut next = entries
        .last()
        .map_or(0, |e| e.location.offset + u64::from(e.location.len));
    let mut made = Vec::new();
    let mut hints: Option<HashMap<u64, u32>> = None;
    'scan: loop {
        for record in log.records(next) {
            match record {
                Ok((location, bytes)) => {
                    next = location.offset + u64::from(location.len);
                    made.push(Entry::of_record(bytes, location));
                }
                Err(LogError::Unreadable { reason, .. }) => {
                    let hints = match &mut hints {
                        Some(h) => h,
                        None => hints.insert(file.all_locations()?),
                    };
                    let offset = next + LEN_PREFIX;
                    match hints.get(&offset) {
                        Some(&len)
                            if len > 0
                                && offset
                                    .checked_add(u64::from(len))
                                    .is_some_and(|end| end <= log.committed()) =>
                        {
                            tracing::warn!(offset = next, %reason, "a record of the message log cannot be read; stepping over it as the position index says");
                            let location = Location { offset, len };
                            made.push(Entry::of_record(Vec::new(), location));
                            next = offset + u64::from(len);
                            continue 'scan;
                        }
                        _ => {
                            tracing::warn!(offset = next, %reason, "the message log cannot be read past a damaged record; the messages after it are not indexed (`potluck fsck` shows which feeds)");
                            break 'scan;
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        break;
    }
    positions.commit(&made, false);
    if !made.is_empty() {
        tracing::info!(
            entries = made.len(),
            "made the position index's latest entries again from the message log"
        );
    }
    let feeds: Vec<FeedId> = positions.feeds.iter().map(|(f, _)| *f).collect();
    for feed in feeds {
        positions.cut(&feed, heads.get(&feed).copied().unwrap_or(0));
    }
    Ok(positions)
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
        assert_eq!(p.slot(&a, 3).unwrap().location.offset, 1300);
        assert_eq!(p.slot(&a, 2).unwrap().location.offset, 200);
        // A sequence past the feed's next is not indexed.
        p.commit(&[entry(1, 9, 5000, 1)], false);
        assert_eq!(p.feed_len(&a), 4);
        assert_eq!(p.entries(), 7);
        p.cut(&a, 1);
        assert_eq!(p.feed_len(&a), 1);
        assert_eq!(p.slot(&a, 2), None);
        assert_eq!(p.slot(&a, 0), None);
    }

    #[test]
    fn ids_are_found_also_when_their_first_bytes_collide() {
        let mut p = Positions::default();
        p.commit(
            &[entry(1, 1, 4, 7), entry(2, 1, 108, 7), entry(2, 2, 212, 8)],
            false,
        );
        let mut id = MessageId([7; 32]);
        let mut found = p.find_id(&id);
        found.sort_by_key(|(f, _)| f.0);
        assert_eq!(found, vec![(FeedId([1; 32]), 1), (FeedId([2; 32]), 1)]);
        // Made once, then kept up to date.
        p.commit(&[entry(3, 1, 316, 7)], false);
        assert_eq!(p.find_id(&id).len(), 3);
        id = MessageId([8; 32]);
        assert_eq!(p.find_id(&id), vec![(FeedId([2; 32]), 2)]);
        id.0[0] = 9;
        assert!(p.find_id(&id).is_empty());
    }

    #[test]
    fn synced_and_waiting_entries_are_counted_apart() {
        let mut p = Positions::default();
        p.commit(&[entry(1, 1, 4, 1), entry(1, 2, 108, 2)], false);
        assert_eq!((p.synced(), p.entries(), p.unsynced().len()), (0, 2, 128));
        p.commit(&[entry(1, 3, 212, 3)], true);
        assert_eq!((p.synced(), p.entries(), p.unsynced().len()), (3, 3, 0));
    }
}
