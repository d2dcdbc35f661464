//! The local store: the only module that touches sled.
//!
//! The message bytes are in the message log file ([`msglog`],
//! `messages.log`), where each message of each feed is in the position
//! index ([`positions`], `messages.idx`, and in memory), the index entries
//! that come one per message (RSVPs, admissions, contacts) in the grouped
//! entries (`groups/`, `groups.log`: append-only records chained per
//! event or author), and everything else queries need (heads, fork
//! proofs, peers, events, tallies, names, comments, and each group's
//! chain head) in one sled tree, split by a one-byte key prefix (the
//! table is in `keys.rs`). sled holds no key per message, only per-feed
//! and per-event state (comments aside: each has its keys).
//!
//! **Files.** `mod.rs` opens the store (and upgrades an old one);
//! [`StoreError`] (`error.rs`) is how it fails; `sled_files.rs` opens
//! sled's files and tells damage to them from another layout; `keys.rs`
//! is the key layout; `staged.rs` the writes of one atomic batch;
//! `ingest/` the one way in (publish and ingest, one atomic batch);
//! `published.rs` how far this home published its own feeds; `query.rs`
//! the reads; [`admission`] the admission state of an event's answers,
//! read from the organizer's decisions; `peers.rs` the peer book and
//! replication memory; `check.rs` fsck, repair, reindex and the rebuild
//! from the log; [`msglog`] the message log file, reached through the
//! [`LogFile`] trait (`log_file.rs`; tests put a faulty file in its
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
//! The log file (and `groups.log`) is written and synced before the batch
//! that points into it, and the batch records its new committed length, so after a
//! crash the index never points past what the file holds; an unreferenced
//! tail is cut off at the next open. The position index is derived from
//! the log and synced less often (see [`positions`]).
//!
//! **Durability.** Every append syncs the log file and flushes sled before
//! returning, so a message that `publish` or `ingest` reported as stored
//! survives a crash.

use std::path::Path;
use std::sync::{Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub mod admission;
mod check;
mod error;
mod groups;
pub mod hub;
pub mod index;
mod ingest;
mod keys;
mod log_file;
pub mod msglog;
mod peers;
pub mod positions;
mod published;
mod query;
mod sled_files;
mod staged;

pub use check::{FsckReport, RebuildReport, RepairReport};
pub use error::StoreError;
pub use ingest::{ContactChange, ForkProof, IngestReport, Rejection};
pub use log_file::{LogFile, LogFileOpener, RealLogFile};
pub use sled_files::{EARLIER_SLED_SEGMENT_SIZE, SLED_SEGMENT_SIZE, segment_size_of};

use self::groups::Groups;
use self::keys::{
    FORMAT_KEY, GROUPS_END_KEY, INDEX_REVISION, INDEX_REVISION_KEY, LOG_END_KEY, OLD_ID, OLD_LOG,
    POSITIONS_KEY, REINDEXING_KEY, STORE_FORMAT, u64_value,
};
use self::msglog::{LOG_FILE, LogError, MessageLog};
use self::positions::{PositionFile, Positions};
use self::published::PublishedMark;
use self::staged::Staged;
use crate::feed::message::FeedId;

/// The log target of the long, one-time work an open may do (an upgrade,
/// finishing an interrupted rebuild): front ends show it even when they
/// show no other log, so that a person knows why the command waits.
pub const UPGRADE_LOG: &str = "potluck::upgrade";

/// Tallies moved per atomic sled batch when a store of index revision 3
/// opens: bounds the memory of the move.
const SUMMARY_MOVE_CHUNK: usize = 10_000;

/// The node's store.
pub struct Store {
    /// The store directory.
    dir: std::path::PathBuf,
    db: sled::Db,
    tree: sled::Tree,
    log: MessageLog,
    /// The grouped index entries (RSVPs, admissions, contacts).
    groups: Groups,
    /// The position index's file.
    positions_file: PositionFile,
    /// The position index, read from its file on first use (opening a
    /// store to read its indexes never reads it).
    positions: OnceLock<RwLock<Positions>>,
    /// Held while the position index is read on first use.
    positions_loading: Mutex<()>,
    /// New position entries gathered before a commit writes them
    /// ([`positions::SYNC_EVERY`]; tests lower it).
    positions_sync_every: std::sync::atomic::AtomicUsize,
    writer: Mutex<()>,
    /// Batches waiting for the next group commit (see
    /// [`Store::ingest_checked`]).
    queue: Mutex<Vec<std::sync::Arc<ingest::Queued>>>,
    published: PublishedMark,
    /// One member-code redemption at a time (see [`hub`]).
    hub_lock: Mutex<()>,
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
        Store::open_with(path, open_log, sled_files::SLED_CACHE)
    }

    /// [`Store::open`] for a check of the whole store (`fsck`): with a
    /// small page cache for sled, since the check reads each of its pages
    /// once, in order, and a cache only fills up with them (a check of
    /// the 10M fixture peaked at 289 MB with 4 MiB, 331 MB with 32 MiB).
    pub fn open_to_check(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, &RealLogFile::open_boxed, sled_files::SLED_CHECK_CACHE)
    }

    /// Opens the store with `open_log` and a sled cache of `cache` bytes.
    fn open_with(path: &Path, open_log: &LogFileOpener, cache: u64) -> Result<Store, StoreError> {
        Store::open_inner(path, open_log, cache).map_err(|e| match e {
            // sled's own words (file offsets, a backtrace) help nobody
            // reading the error; they are in the log for whoever asks.
            StoreError::Db(sled::Error::Corruption { .. }) => {
                tracing::debug!(error = %e, "the index database is corrupt");
                StoreError::DatabaseDamaged {
                    path: path.display().to_string(),
                    reason: "its index files are corrupt".into(),
                }
            }
            StoreError::Log(LogError::RolledBack { .. }) => StoreError::DatabaseDamaged {
                path: path.display().to_string(),
                reason: e.to_string(),
            },
            other => other,
        })
    }

    fn open_inner(path: &Path, open_log: &LogFileOpener, cache: u64) -> Result<Store, StoreError> {
        let db = sled_files::open(path, cache)?;
        let tree = db.open_tree("potluck")?;
        let mut upgrade = false;
        let mut upgrade_from_3 = false;
        match tree.get(FORMAT_KEY)? {
            Some(v) if v[..] == [STORE_FORMAT] => {}
            Some(v) if v[..] == [2] => upgrade = true,
            Some(v) if v[..] == [3] => {
                // Format 4 moves the RSVP, admission and contact entries
                // out of sled: the indexes are rebuilt in place (below,
                // under the reindexing mark, so that an interrupted
                // upgrade starts over), which removes the old entries a
                // chunk at a time.
                tracing::warn!(target: UPGRADE_LOG, path = %path.display(), "upgrading the store from format 3 to 4: rebuilding its indexes from the message log (once; this can take a minute for a large store)");
                let mut batch = sled::Batch::default();
                batch.insert(FORMAT_KEY, &[STORE_FORMAT]);
                batch.insert(REINDEXING_KEY, &[1]);
                tree.apply_batch(batch)?;
                db.flush()?;
                upgrade_from_3 = true;
            }
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
                tree.insert(INDEX_REVISION_KEY, &[INDEX_REVISION])?;
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
        // During a rebuild the grouped entries are made again from
        // nothing, whatever the file holds.
        let rebuilding = tree.contains_key(REINDEXING_KEY)? || upgrade;
        let groups_end = match tree.get(GROUPS_END_KEY)? {
            Some(v) if !rebuilding => u64_value(GROUPS_END_KEY, &v)?,
            _ => 0,
        };
        let groups = Groups::open(path, open_log, groups_end, rebuilding)?;
        let store = Store {
            dir: path.to_path_buf(),
            db,
            tree,
            log,
            groups,
            positions_file: PositionFile::open(path)?,
            positions: OnceLock::new(),
            positions_loading: Mutex::new(()),
            positions_sync_every: positions::SYNC_EVERY.into(),
            writer: Mutex::new(()),
            queue: Mutex::new(Vec::new()),
            published: PublishedMark::load(path)?,
            hub_lock: Mutex::new(()),
        };
        let revision = store.tree.get(INDEX_REVISION_KEY)?.map_or(0, |v| v[0]);
        // Whether the indexes were just made again from the log.
        let rebuilt = if upgrade {
            store.upgrade_from_2(path)?;
            true
        } else if store.tree.contains_key(REINDEXING_KEY)? {
            if !upgrade_from_3 {
                tracing::warn!(target: UPGRADE_LOG, path = %path.display(), "an index rebuild was interrupted; rebuilding the indexes from the message log (this can take a minute for a large store)");
            }
            store.reindex()?;
            if upgrade_from_3 {
                tracing::info!(target: UPGRADE_LOG, "store upgraded to format 4");
            }
            true
        } else {
            if store.tree.scan_prefix([OLD_LOG]).next().is_some()
                || store.tree.scan_prefix([OLD_ID]).next().is_some()
            {
                // An upgrade stopped while removing the old keys.
                store.remove_old_keys()?;
            }
            false
        };
        if revision < INDEX_REVISION {
            if revision == 3 && !rebuilt && committed > 0 {
                // Revision 4 only moves the tallies: no rebuild.
                let moved = store
                    .groups
                    .move_summaries_into_heads(&store.tree, SUMMARY_MOVE_CHUNK)?;
                tracing::info!(target: UPGRADE_LOG, path = %path.display(), moved, "moved the events' tallies into the heads of their answers (index revision 3 to 4)");
            } else if !rebuilt && committed > 0 {
                tracing::warn!(target: UPGRADE_LOG, path = %path.display(), from = revision, to = INDEX_REVISION, "the indexes lack what this potluck keeps (events' unlisted, public and closed-to-web marks, comments and their threads); rebuilding them from the message log once (this can take a minute for a large store)");
                store.reindex()?;
            }
            store.tree.insert(INDEX_REVISION_KEY, &[INDEX_REVISION])?;
            store.db.flush()?;
        }
        Ok(store)
    }

    /// Upgrades a format-2 store: makes the position index from the log,
    /// rebuilds every index (their values changed encoding), switches the
    /// format, and then removes the per-message keys of format 2. Until
    /// the switch, a crash leaves a format-2 store that upgrades again.
    fn upgrade_from_2(&self, path: &Path) -> Result<(), StoreError> {
        tracing::warn!(target: UPGRADE_LOG, path = %path.display(), "upgrading the store from format 2 to 4: making its position index and indexes again from the message log (once; this can take a minute for a large store)");
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
            "store upgraded to format 4"
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
        // One load at a time: a load may make the file again (through
        // `messages.idx.new`), which two at once would both write.
        let _loading = self
            .positions_loading
            .lock()
            .unwrap_or_else(|e| e.into_inner());
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
    /// file (written a chunk at a time, synced) and records it in sled.
    fn rebuild_positions(&self) -> Result<(), StoreError> {
        let positions =
            positions::rebuild(&self.positions_file, &self.log, &self.head_sequences()?)?;
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
        Staged::over(&self.tree, &self.groups)
    }

    /// Flushes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Saves what dropping the store saves (the position index's latest
    /// entries, and sled's dirty pages), for a process that exits next
    /// without dropping it: freeing sled's page table and segment sets
    /// costs a one-shot command on a large store more than a tenth of its
    /// run (docs/performance.md), and the system takes the memory back
    /// anyway. Everything a command acknowledged is on disk before this.
    pub fn save_before_exit(&self) -> Result<(), StoreError> {
        self.sync_positions()?;
        self.db.flush()?;
        Ok(())
    }

    /// Bytes the store occupies on disk: sled's files, the message log,
    /// the position index and the grouped entries.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?
            + self.log.size()?
            + self.positions_file.size()?
            + self.groups.size()?)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.sync_positions() {
            tracing::warn!(error = %e, "could not save the position index at close; the next open makes its latest entries again from the message log");
        }
    }
}
