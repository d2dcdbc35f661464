//! The local store: the only module that touches sled.
//!
//! The message bytes are in the message log file ([`msglog`],
//! `messages.log`), where each message of each feed is in the position
//! index ([`positions`], `messages.idx`, and in memory), and everything
//! queries need (heads, fork proofs, peers, and the indexes of events,
//! RSVPs, names and contacts) in one sled tree, split by a one-byte key
//! prefix (the table is in `keys.rs`). sled holds no key per message, only
//! what a message changes.
//!
//! **Files.** `mod.rs` opens the store (and upgrades an old one) and holds
//! the error type; `keys.rs` is the key layout; `ingest.rs` the one way in
//! (publish and ingest, one atomic batch); `published.rs` how far this
//! home published its own feeds; `query.rs` the reads; `peers.rs` the peer
//! book and replication memory; `check.rs` fsck, repair, reindex and the
//! rebuild from the log; [`msglog`] the message log file, reached through
//! the [`LogFile`] trait (`log_file.rs`; tests put a faulty file in its
//! place); [`positions`] the position index; [`index`] the pure index
//! rules.
//!
//! **Atomicity.** Keeping every sled entry in one tree lets an append use
//! [`sled::Tree::apply_batch`], which sled applies atomically, also across a
//! crash: a message's head, its fork proofs and every index entry it
//! causes are written together or not at all, with the log's new committed
//! length. Writes are staged in memory first (`Staged`), so the indexer
//! reads its own earlier writes in the same batch, and a feed's head or an
//! event's tally is written once per batch however many messages change
//! it. One writer at a time (a mutex) keeps the staged reads true.
//!
//! The log file is written and synced before the batch that points into
//! it, and the batch records the log's new committed length, so after a
//! crash the index never points past what the file holds; an unreferenced
//! tail is cut off at the next open. The position index is derived from
//! the log and synced less often (see [`positions`]).
//!
//! **Durability.** Every append syncs the log file and flushes sled before
//! returning, so a message that `publish` or `ingest` reported as stored
//! survives a crash.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use thiserror::Error;

mod check;
pub mod index;
mod ingest;
mod keys;
mod log_file;
pub mod msglog;
mod peers;
pub mod positions;
mod published;
mod query;

pub use check::{FsckReport, RebuildReport, RepairReport};
pub use ingest::{ContactChange, ForkProof, IngestReport, Rejection};
pub use log_file::{LogFile, LogFileOpener, RealLogFile};

use self::keys::{
    FORMAT_KEY, LOG_END_KEY, OLD_ID, OLD_LOG, POSITIONS_KEY, REINDEXING_KEY, u64_value,
};
use self::positions::{PositionFile, Positions, PositionsError};
use self::published::PublishedMark;

use self::index::{CorruptEntry, Kv};
use self::msglog::{LogError, MessageLog};
use crate::feed::message::FeedId;
use crate::feed::validate::ValidationError;

/// The store layout this code reads and writes: 3 keeps where each
/// message is in the position index; 2 kept it in sled (and is upgraded
/// on open); 1 kept the message bytes in sled too.
const STORE_FORMAT: u8 = 3;
/// The message log file, inside the store directory.
const LOG_FILE: &str = "messages.log";
/// sled's segment size (tools that open the sled files directly must use
/// it too). sled reclaims a segment once half of it is stale,
/// so bigger segments waste less: 100,000 fixture messages took 154 MB of
/// sled files with the default 512 KiB, 105 MB with 8 MiB and 97 MB with
/// 16 MiB (the largest sled allows). The price is that even an empty
/// store occupies one segment.
pub const SLED_SEGMENT_SIZE: usize = 8 * 1024 * 1024;

/// The log target of the long, one-time work an open may do (an upgrade,
/// finishing an interrupted rebuild): front ends show it even when they
/// show no other log, so that a person knows why the command waits.
pub const UPGRADE_LOG: &str = "potluck::upgrade";

/// How long [`Store::open`] waits for a lock that a store just closed in
/// this process may still hold: sled finishes closing in its own threads
/// after the last handle is dropped.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Opens sled in `path` with the store's settings. A held lock is retried
/// for up to [`LOCK_WAIT`] before it is reported as [`StoreError::Locked`].
fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        let result = sled::Config::new()
            .path(path)
            .cache_capacity(64 * 1024 * 1024)
            .segment_size(SLED_SEGMENT_SIZE)
            .open();
        match result {
            Ok(db) => return Ok(db),
            // sled reports a held lock file as an `Other` error.
            Err(sled::Error::Io(ref io))
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("could not acquire lock") =>
            {
                if started.elapsed() >= LOCK_WAIT {
                    return Err(StoreError::Locked {
                        path: path.display().to_string(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(other) => return Err(StoreError::Db(other)),
        }
    }
}

/// The segment size recorded in sled's `conf` file in `dir`, if there is
/// one (a small text file of `key: value` lines).
fn persisted_segment_size(dir: &Path) -> Option<usize> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(dir.join("conf"))
        .ok()?
        .take(4096)
        .read_to_end(&mut bytes)
        .ok()?;
    // The text is followed by a binary checksum.
    String::from_utf8_lossy(&bytes)
        .lines()
        .find_map(|line| line.strip_prefix("segment_size: "))
        .and_then(|v| v.trim().parse().ok())
}

/// Events `potluck events` shows unless told otherwise: a page, not every
/// event a large store knows.
pub const EVENTS_PAGE: usize = 100;

/// Shortest event-id prefix accepted on the command line.
pub const MIN_ID_PREFIX: usize = 6;

/// A store failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// sled reported an error (I/O, or a damaged database file).
    #[error("database error: {0}")]
    Db(#[from] sled::Error),
    /// The store directory is in use by another potluck process.
    #[error(
        "the store at {path} is in use by another potluck process (is `potluck serve` running?)"
    )]
    Locked {
        /// The store directory.
        path: String,
    },
    /// The message log file failed or is damaged.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The position index's file failed.
    #[error(transparent)]
    Positions(#[from] PositionsError),
    /// This batch was committed together with others, and that commit
    /// failed after it reached the index (its flush): the messages may not
    /// be on disk.
    #[error(
        "storing failed while this batch was committed with others ({reason}); its messages may not be on disk"
    )]
    CommitFailed {
        /// The failure, as the first batch of the commit got it.
        reason: String,
    },
    /// The store was written by an incompatible version of potluck.
    #[error(
        "the store at {path} has format {found}, this potluck reads format {STORE_FORMAT}; move it aside (or export its feeds with the potluck that wrote it) and start a new one"
    )]
    Format {
        /// The store directory.
        path: String,
        /// The format found (1 if unmarked).
        found: u8,
    },
    /// An index entry cannot be decoded.
    #[error(transparent)]
    CorruptIndex(#[from] CorruptEntry),
    /// A log entry cannot be decoded.
    #[error("log entry {key} is damaged: {reason} (run `potluck fsck`)")]
    CorruptLog {
        /// The key, in hex.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A message in the log is not the one the index says is there: the
    /// disk changed it.
    #[error(
        "message {author} #{sequence} is damaged in the message log ({reason}); `potluck fsck --repair` cuts the feed back before it, so that peers send it again"
    )]
    Damaged {
        /// The feed.
        author: FeedId,
        /// The damaged message's sequence.
        sequence: u64,
        /// What does not match.
        reason: String,
    },
    /// sled's own files are damaged.
    #[error(
        "the database in {path} is damaged ({reason}); `potluck fsck --repair` rebuilds it from the message log, moving the damaged files aside"
    )]
    DatabaseDamaged {
        /// The store directory.
        path: String,
        /// sled's words.
        reason: String,
    },
    /// The store holds less of our own feed than this home published.
    #[error(
        "this home published {feed} up to #{published}, but its store holds only #{holds}: publishing now would start a second history of your feed, which peers reject. Run `potluck recover` to fetch your feed back from a peer (or `potluck import` a bundle of it); `potluck recover --start-over` publishes on from #{holds} anyway"
    )]
    OwnFeedBehind {
        /// Our feed.
        feed: FeedId,
        /// What the store holds of it.
        holds: u64,
        /// What this home published of it.
        published: u64,
    },
    /// The file recording what this home published cannot be read.
    #[error("cannot read {path}, which records how far this home published its feed: {reason}")]
    PublishedMark {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A message that was to be published did not validate.
    #[error("message rejected: {0}")]
    Rejected(#[from] ValidationError),
    /// No known event matches the given id or prefix.
    #[error("no known event matches `{0}`")]
    UnknownEvent(String),
    /// More than one known event matches the prefix.
    #[error("`{text}` matches {count} events; give more characters of the id")]
    AmbiguousEvent {
        /// The prefix given.
        text: String,
        /// How many events match.
        count: usize,
    },
    /// The prefix is too short to name an event.
    #[error(
        "`{0}` is too short: give the full event id or at least {MIN_ID_PREFIX} characters after `%`"
    )]
    PrefixTooShort(String),
}

/// The node's store.
pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    log: MessageLog,
    /// The position index's file.
    positions_file: PositionFile,
    /// The position index, read from its file on first use (opening a
    /// store to read its indexes never reads it).
    positions: OnceLock<RwLock<Positions>>,
    /// New position entries gathered before a commit writes them
    /// ([`positions::SYNC_EVERY`]; tests lower it).
    positions_sync_every: std::sync::atomic::AtomicUsize,
    writer: Mutex<()>,
    /// Batches waiting for the next group commit (see
    /// [`Store::ingest_checked`]).
    queue: Mutex<Vec<std::sync::Arc<ingest::Queued>>>,
    published: PublishedMark,
}

/// Writes staged for one atomic batch, readable before they are applied.
struct Staged<'a> {
    tree: &'a sled::Tree,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Kv for Staged<'_> {
    type Error = StoreError;
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.tree.get(key)?.map(|v| v.to_vec())),
        }
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }
    fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }
}

impl Staged<'_> {
    fn into_batch(mut self) -> sled::Batch {
        self.take_batch()
    }

    /// The writes staged so far as a batch, leaving none staged.
    fn take_batch(&mut self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (k, v) in std::mem::take(&mut self.writes) {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        batch
    }
}

impl Store {
    /// Opens (or creates) the store in `path`. Damage sled detects in its
    /// own files is [`StoreError::DatabaseDamaged`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with_log_file(path, &RealLogFile::open_boxed)
    }

    /// [`Store::open`], reaching the message log through the file
    /// `open_log` opens (given the log's path) instead of the real one:
    /// how tests inject storage faults.
    pub fn open_with_log_file(path: &Path, open_log: &LogFileOpener) -> Result<Store, StoreError> {
        Store::open_inner(path, open_log).map_err(|e| match e {
            StoreError::Db(sled::Error::Corruption { .. })
            | StoreError::Log(LogError::RolledBack { .. }) => StoreError::DatabaseDamaged {
                path: path.display().to_string(),
                reason: e.to_string(),
            },
            other => other,
        })
    }

    fn open_inner(path: &Path, open_log: &LogFileOpener) -> Result<Store, StoreError> {
        // sled cannot open files written with another segment size, and
        // says so in its own words; every format-2 store uses ours.
        if let Some(size) = persisted_segment_size(path)
            && size != SLED_SEGMENT_SIZE
        {
            return Err(StoreError::Format {
                path: path.display().to_string(),
                found: 1,
            });
        }
        let db = open_sled(path)?;
        let tree = db.open_tree("potluck")?;
        let mut upgrade = false;
        match tree.get(FORMAT_KEY)? {
            Some(v) if v[..] == [STORE_FORMAT] => {}
            Some(v) if v[..] == [2] => upgrade = true,
            Some(v) => {
                return Err(StoreError::Format {
                    path: path.display().to_string(),
                    found: v.first().copied().unwrap_or(0),
                });
            }
            None if tree.scan_prefix([OLD_LOG]).next().is_some() => {
                return Err(StoreError::Format {
                    path: path.display().to_string(),
                    found: 1,
                });
            }
            // sled holds nothing, but a message log is there: sled's files
            // were lost, or sled recovered from damage by dropping what
            // followed it. Opening would cut the log to nothing.
            None if std::fs::metadata(path.join(LOG_FILE)).is_ok_and(|m| m.len() > 0) => {
                return Err(StoreError::DatabaseDamaged {
                    path: path.display().to_string(),
                    reason: "it has lost its contents, but the message log is there".into(),
                });
            }
            None => {
                tree.insert(FORMAT_KEY, &[STORE_FORMAT])?;
                db.flush()?;
            }
        }
        let committed = match tree.get(LOG_END_KEY)? {
            Some(v) => u64_value(LOG_END_KEY, &v)?,
            None => 0,
        };
        let log_path = path.join(LOG_FILE);
        let file = open_log(&log_path).map_err(|source| LogError::Io {
            path: log_path.clone(),
            source,
        })?;
        let log = MessageLog::open_file(&log_path, file, committed)?;
        let store = Store {
            db,
            tree,
            log,
            positions_file: PositionFile::open(path)?,
            positions: OnceLock::new(),
            positions_sync_every: positions::SYNC_EVERY.into(),
            writer: Mutex::new(()),
            queue: Mutex::new(Vec::new()),
            published: PublishedMark::load(path)?,
        };
        if upgrade {
            store.upgrade_from_2(path)?;
        } else if store.tree.contains_key(REINDEXING_KEY)? {
            tracing::warn!(target: UPGRADE_LOG, path = %path.display(), "an index rebuild was interrupted; rebuilding the indexes from the message log (this can take a minute for a large store)");
            store.reindex()?;
        } else if store.tree.scan_prefix([OLD_LOG]).next().is_some()
            || store.tree.scan_prefix([OLD_ID]).next().is_some()
        {
            // An upgrade stopped while removing the old keys.
            store.remove_old_keys()?;
        }
        Ok(store)
    }

    /// Upgrades a format-2 store: makes the position index from the log,
    /// rebuilds every index (their values changed encoding), switches the
    /// format, and then removes the per-message keys of format 2. Until
    /// the switch, a crash leaves a format-2 store that upgrades again.
    fn upgrade_from_2(&self, path: &Path) -> Result<(), StoreError> {
        tracing::warn!(target: UPGRADE_LOG, path = %path.display(), "upgrading the store from format 2 to 3: making its position index and indexes again from the message log (once; this can take a minute for a large store)");
        let entries = self.reindex()?;
        let count = self.positions_read()?.entries();
        let mut batch = sled::Batch::default();
        batch.insert(FORMAT_KEY, &[STORE_FORMAT]);
        batch.insert(POSITIONS_KEY, &count.to_be_bytes());
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        self.remove_old_keys()?;
        tracing::info!(
            target: UPGRADE_LOG,
            index_entries = entries,
            messages = count,
            "store upgraded to format 3"
        );
        Ok(())
    }

    /// Removes format 2's per-message keys, a batch at a time.
    fn remove_old_keys(&self) -> Result<(), StoreError> {
        self.remove_prefixes(&[OLD_LOG, OLD_ID])?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes every key under the one-byte `prefixes`, in batches of
    /// 50,000 keys, so that memory stays bounded however many there are.
    /// Not atomic: callers make an interrupted removal safe to repeat.
    fn remove_prefixes(&self, prefixes: &[u8]) -> Result<(), StoreError> {
        const CHUNK: usize = 50_000;
        for &prefix in prefixes {
            loop {
                let mut batch = sled::Batch::default();
                let mut n = 0;
                for item in self.tree.scan_prefix([prefix]).take(CHUNK) {
                    batch.remove(item?.0);
                    n += 1;
                }
                if n == 0 {
                    break;
                }
                self.tree.apply_batch(batch)?;
            }
        }
        Ok(())
    }

    /// The position index, read on first use.
    fn positions(&self) -> Result<&RwLock<Positions>, StoreError> {
        if let Some(p) = self.positions.get() {
            return Ok(p);
        }
        let synced = match self.tree.get(POSITIONS_KEY)? {
            Some(v) => u64_value(POSITIONS_KEY, &v)?,
            None => 0,
        };
        let loaded = positions::load(
            &self.positions_file,
            synced,
            &self.log,
            &self.head_sequences()?,
        )?;
        Ok(self.positions.get_or_init(|| RwLock::new(loaded)))
    }

    /// The position index, read on first use, for reading.
    fn positions_read(&self) -> Result<RwLockReadGuard<'_, Positions>, StoreError> {
        // A panic while holding the lock leaves the index whole: every
        // change to it is one call on a value in a consistent state.
        Ok(self.positions()?.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The position index, read on first use, for changing.
    fn positions_write(&self) -> Result<RwLockWriteGuard<'_, Positions>, StoreError> {
        Ok(self.positions()?.write().unwrap_or_else(|e| e.into_inner()))
    }

    /// Makes the position index again from the whole log, replaces its
    /// file (synced) and records it in sled.
    fn rebuild_positions(&self) -> Result<(), StoreError> {
        let mut positions =
            positions::load(&self.positions_file, 0, &self.log, &self.head_sequences()?)?;
        self.positions_file.replace(positions.unsynced())?;
        positions.note_synced();
        let count = positions.entries();
        // A reader may read the index in between; whichever is set, this
        // one replaces it.
        if let Err(fresh) = self.positions.set(RwLock::new(positions))
            && let Some(lock) = self.positions.get()
        {
            *lock.write().unwrap_or_else(|e| e.into_inner()) =
                fresh.into_inner().unwrap_or_else(|e| e.into_inner());
        }
        self.tree.insert(POSITIONS_KEY, &count.to_be_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// Writes the position entries still in memory to their file and
    /// records them (at close, so that the next open reads no log).
    fn sync_positions(&self) -> Result<(), StoreError> {
        let Some(lock) = self.positions.get() else {
            return Ok(());
        };
        let mut positions = lock.write().unwrap_or_else(|e| e.into_inner());
        if positions.unsynced().is_empty() {
            return Ok(());
        }
        self.positions_file
            .write_and_sync(positions.synced(), positions.unsynced())?;
        self.tree
            .insert(POSITIONS_KEY, &positions.entries().to_be_bytes())?;
        self.db.flush()?;
        positions.note_synced();
        Ok(())
    }

    /// Makes commits write the position index's new entries to its file
    /// once `entries` have gathered instead of [`positions::SYNC_EVERY`]:
    /// for tests that crash a store between such writes.
    #[doc(hidden)]
    pub fn set_positions_sync_every(&self, entries: usize) {
        self.positions_sync_every
            .store(entries.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Every feed's head sequence.
    fn head_sequences(&self) -> Result<std::collections::HashMap<FeedId, u64>, StoreError> {
        Ok(self
            .feeds()?
            .into_iter()
            .map(|(feed, head)| (feed, head.sequence))
            .collect())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // A panic while holding the lock leaves no partial state behind
        // (nothing is applied until the batch), so a poisoned lock is safe.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn reader(&self) -> Staged<'_> {
        Staged {
            tree: &self.tree,
            writes: BTreeMap::new(),
        }
    }

    /// Flushes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Bytes the store occupies on disk: sled's files, the message log
    /// and the position index.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()? + self.log.size()? + self.positions_file.size()?)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.sync_positions() {
            tracing::warn!(error = %e, "could not save the position index at close; the next open makes its latest entries again from the message log");
        }
    }
}
