//! Checks and repairs: [`Store::fsck`], [`Store::repair`],
//! [`Store::reindex`] and [`Store::rebuild_from_log`].

use std::collections::BTreeMap;
use std::path::Path;

use super::Store;
use super::error::StoreError;
use super::groups::{self, Groups};
use super::index;
use super::keys::{
    GROUP, GROUPS_END_KEY, HEAD, REFETCH, REINDEXING_KEY, encode_head, feed_key, feed_of_key,
    u64_value,
};
use super::msglog::{self, LOG_FILE, LogError};
use super::positions;
use super::staged::Staged;
use crate::feed::message::{FeedId, Message};
use crate::feed::validate::{self, FeedHead};

/// The directory, in the store directory, of the sled database that
/// `fsck` and `repair` rebuild the indexes into, to compare them with the
/// stored ones; removed when done.
///
/// A database of its own, not a tree in the store's: a scratch tree left
/// the store's sled file with as many free segments as it had taken, and
/// sled 0.34 overwrites every free segment at each open, so every open
/// after a check was slower (docs/performance.md). Its own cache is
/// smaller, too ([`SCRATCH_CACHE`]): it is written once, then read once in
/// key order.
const SCRATCH_DIR: &str = "fsck-scratch";

/// The tree inside the store's own sled that checks used as their scratch
/// before [`SCRATCH_DIR`] (the same name): one left by an interrupted
/// check is dropped.
const EARLIER_SCRATCH_TREE: &str = "fsck-scratch";

/// Bytes of sled's cache for the scratch database while the check
/// rebuilds the indexes into it (inserts in log order, so at random
/// places in its trees).
const SCRATCH_CACHE: u64 = 16 << 20;

/// Bytes of sled's cache for the scratch database while the check walks
/// it, once, in key order: the database is opened again with this much,
/// because a walk fills a cache whatever its reads' order, and a page in
/// memory takes more than its size on disk.
const SCRATCH_WALK_CACHE: u64 = 1 << 20;

/// Where a check rebuilds the indexes: a sled database and a grouped
/// entries file of its own.
struct Scratch {
    db: sled::Db,
    groups: Groups,
}

/// The file, in the store directory, that `fsck` rebuilds the grouped
/// entries into; removed when done.
const SCRATCH_GROUPS: &str = "groups-scratch.log";

/// One index's entries in key order, from sled or from `groups.log`.
type IndexEntries<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + 'a>;

/// The entries of index `prefix` held in `tree` and `groups` (grouped
/// entries in `groups.log`, groups' summaries in their chain heads).
fn index_entries<'a>(tree: &'a sled::Tree, groups: &'a Groups, prefix: u8) -> IndexEntries<'a> {
    if groups::is_grouped(prefix) {
        Box::new(groups.entries(tree, prefix))
    } else if groups::is_summary(prefix) {
        Box::new(groups.summary_entries(tree, prefix))
    } else {
        Box::new(tree.scan_prefix([prefix]).map(|item| {
            let (k, v) = item?;
            Ok((k.to_vec(), v.to_vec()))
        }))
    }
}

/// Opens (or creates) the scratch database in `dir` with a cache of
/// `cache` bytes; the threads of the one just closed may hold its lock
/// for a moment.
fn open_scratch_db(dir: &Path, cache: u64) -> Result<sled::Db, StoreError> {
    super::sled_files::open_waiting_for_lock(dir, super::SLED_SEGMENT_SIZE, cache).map_err(|e| {
        match e {
            // Not another potluck process, as for the store itself: the
            // store's lock keeps a second check out.
            StoreError::Locked { .. } => StoreError::ScratchLocked {
                path: dir.to_path_buf(),
            },
            other => other,
        }
    })
}

/// Removes the scratch database's directory, if there is one.
fn remove_scratch_dir(dir: &Path) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Scratch {
            path: dir.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Messages whose signatures a check verifies at a time (in parallel).
const VERIFY_CHUNK: usize = 20_000;

/// Messages replayed per sled batch when a check rebuilds the indexes
/// into its scratch: what bounds the memory of a check. sled holds each
/// batch's pages and their changes until it writes them out, whatever its
/// cache size: a `fsck` of a 1M store peaked at 212 MB with batches of
/// 20,000 messages and at 149 MB with 5,000, in the same time
/// (docs/performance.md).
const SCRATCH_CHUNK: usize = 5_000;

/// Messages replayed per sled batch when the store's own indexes are
/// rebuilt in place (`reindex`, `repair`, upgrades). Larger than
/// [`SCRATCH_CHUNK`]: each batch adds a record to `groups.log` for every
/// group it touches, and those stay in the store (a 1M reindex left
/// `groups.log` 9 % larger with batches of 5,000).
const IN_PLACE_CHUNK: usize = 20_000;

/// The result of [`Store::fsck`].
#[derive(Debug, Default)]
pub struct FsckReport {
    /// Feeds checked.
    pub feeds: u64,
    /// Messages re-verified.
    pub messages: u64,
    /// Index entries compared.
    pub index_entries: u64,
    /// Everything found wrong; empty means healthy.
    pub problems: Vec<String>,
    /// Per damaged feed, the first sequence that is damaged or does not
    /// verify: [`Store::repair`] cuts the feed back before it.
    pub damaged: BTreeMap<FeedId, u64>,
    /// Feeds a repair cut back, still short of what they held before
    /// (peers send the rest): feed, held now, held before.
    pub refetching: Vec<(FeedId, u64, u64)>,
}

/// What [`Store::repair`] did.
#[derive(Debug, Default)]
pub struct RepairReport {
    /// Feeds cut back: feed, first sequence removed, the head before.
    pub cut: Vec<(FeedId, u64, u64)>,
    /// Index entries written (every index is rebuilt).
    pub index_entries: usize,
}

/// What [`Store::rebuild_from_log`] did.
#[derive(Debug, Default)]
pub struct RebuildReport {
    /// Where the damaged store was moved.
    pub moved_to: std::path::PathBuf,
    /// Messages restored.
    pub restored: u64,
    /// Records not restored: damaged, or after damage in their feed.
    pub skipped: u64,
    /// Why reading the old log stopped early, if it did.
    pub log_problem: Option<String>,
}

impl Store {
    /// Re-verifies every message of every feed (signatures and chains) and
    /// checks the stored indexes against indexes rebuilt from the logs.
    ///
    /// The rebuilt indexes go to a scratch sled tree, a chunk at a time,
    /// and are compared with the stored ones by walking both in key order,
    /// so memory stays bounded however large the store.
    pub fn fsck(&self) -> Result<FsckReport, StoreError> {
        let mut report = FsckReport::default();
        self.check_positions(&mut report)?;
        let scratch = self.scratch()?;
        let result = self.check_against(scratch, &mut report);
        self.remove_scratch()?;
        result?;
        report.refetching = self
            .refetch_markers()?
            .into_iter()
            .filter(|&(_, now, before)| now < before)
            .collect();
        Ok(report)
    }

    /// A new, empty scratch database and grouped-entries file (left over
    /// from an interrupted check, they are removed first).
    fn scratch(&self) -> Result<Scratch, StoreError> {
        self.db.drop_tree(EARLIER_SCRATCH_TREE)?;
        let dir = self.dir.join(SCRATCH_DIR);
        remove_scratch_dir(&dir)?;
        let db = open_scratch_db(&dir, SCRATCH_CACHE)?;
        let groups = Groups::open_at(
            &self.dir.join(SCRATCH_GROUPS),
            &super::RealLogFile::open_boxed,
            0,
            true,
        )?;
        Ok(Scratch { db, groups })
    }

    /// Rebuilds the indexes into `scratch` and compares them with the
    /// stored ones; `scratch` is closed when done.
    fn check_against(
        &self,
        mut scratch: Scratch,
        report: &mut FsckReport,
    ) -> Result<(), StoreError> {
        self.rebuild_index(
            &scratch.db,
            &scratch.groups,
            Some(report),
            &BTreeMap::new(),
            SCRATCH_CHUNK,
        )?;
        // The walk reads the rebuilt groups uncached, and the scratch
        // database through a small cache: what the rebuild held in memory
        // for them is let go first (docs/performance.md).
        scratch.groups.forget_cached();
        scratch.db.flush()?;
        // sled lets go of its files, and their lock, when the last handle
        // is dropped.
        drop(scratch.db);
        scratch.db = open_scratch_db(&self.dir.join(SCRATCH_DIR), SCRATCH_WALK_CACHE)?;
        self.compare_indexes(&scratch.db, &scratch.groups, report)
    }

    /// Closes the scratch database and file and removes them.
    fn drop_scratch(&self, scratch: Scratch) -> Result<(), StoreError> {
        let Scratch { db, groups } = scratch;
        drop(groups);
        // sled joins its flusher thread and closes its files on drop.
        drop(db);
        self.remove_scratch()
    }

    /// Removes the scratch database and file, once closed.
    fn remove_scratch(&self) -> Result<(), StoreError> {
        remove_scratch_dir(&self.dir.join(SCRATCH_DIR))?;
        let path = self.dir.join(SCRATCH_GROUPS);
        for file in [path.clone(), super::msglog::durable_mark_path(&path)] {
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(StoreError::Log(super::msglog::LogError::Io {
                        path: file,
                        source: e,
                    }));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Notes every difference between the stored index entries and those
    /// in `rebuilt`, walking both in key order.
    fn compare_indexes(
        &self,
        rebuilt: &sled::Tree,
        rebuilt_groups: &Groups,
        report: &mut FsckReport,
    ) -> Result<(), StoreError> {
        use std::cmp::Ordering;
        for p in index::prefix::ALL {
            let mut stored = index_entries(&self.tree, &self.groups, p).peekable();
            let mut fresh = index_entries(rebuilt, rebuilt_groups, p).peekable();
            loop {
                let order = match (stored.peek(), fresh.peek()) {
                    (None, None) => break,
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (Some(Ok((a, _))), Some(Ok((b, _)))) => a.cmp(b),
                    (Some(Err(_)), _) => {
                        stored.next().transpose()?;
                        continue;
                    }
                    (_, Some(Err(_))) => {
                        fresh.next().transpose()?;
                        continue;
                    }
                };
                match order {
                    Ordering::Less => {
                        if let Some((k, _)) = stored.next().transpose()? {
                            report.index_entries += 1;
                            report.problems.push(format!(
                                "index entry {} has no source in the logs",
                                hex::encode(k)
                            ));
                        }
                    }
                    Ordering::Greater => {
                        if let Some((k, _)) = fresh.next().transpose()? {
                            report
                                .problems
                                .push(format!("index entry {} is missing", hex::encode(k)));
                        }
                    }
                    Ordering::Equal => {
                        let (Some((k, a)), Some((_, b))) =
                            (stored.next().transpose()?, fresh.next().transpose()?)
                        else {
                            break;
                        };
                        report.index_entries += 1;
                        if a != b {
                            report.problems.push(format!(
                                "index entry {} differs from the logs",
                                hex::encode(k)
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Repairs what [`Store::fsck`] finds: the position index is made
    /// again from the log; every feed with a damaged or invalid message is
    /// cut back to the message before it (its head), in one atomic batch
    /// that also remembers the head it had, so that `fsck` shows the feed
    /// as being fetched again; then every index is rebuilt (an interrupted
    /// rebuild is finished at the next open). The damaged bytes stay in
    /// the log file (it is append-only), but the head ends the feed before
    /// them. Peers send the cut messages again, as for any feed that is
    /// behind: our clock now says less.
    pub fn repair(&self) -> Result<RepairReport, StoreError> {
        let _writer = self.lock();
        // Damage is looked for through positions made from the log as it is.
        self.rebuild_positions()?;
        let mut found = FsckReport::default();
        let scratch = self.scratch()?;
        let found_all = self.rebuild_index(
            &scratch.db,
            &scratch.groups,
            Some(&mut found),
            &BTreeMap::new(),
            SCRATCH_CHUNK,
        );
        self.drop_scratch(scratch)?;
        found_all?;
        let mut batch = sled::Batch::default();
        // The indexes are rebuilt after this batch; until they are, the
        // mark makes an interrupted repair finish the rebuild at the next
        // open.
        batch.insert(REINDEXING_KEY, &[1]);
        let mut report = RepairReport::default();
        for (&author, &from) in &found.damaged {
            let old_head = self.head(&author)?.map_or(0, |h| h.sequence);
            match from.checked_sub(1).filter(|&s| s > 0) {
                Some(kept) => {
                    // Everything before the cut verified.
                    let msg =
                        self.feed_message(&author, kept)?
                            .ok_or(StoreError::MissingMessage {
                                author,
                                sequence: kept,
                            })?;
                    let head = FeedHead {
                        sequence: kept,
                        id: msg.id(),
                    };
                    batch.insert(feed_key(HEAD, &author), encode_head(&head));
                }
                None => batch.remove(feed_key(HEAD, &author)),
            }
            let before = self.refetch_marker(&author)?.unwrap_or(0).max(old_head);
            batch.insert(feed_key(REFETCH, &author), before.to_be_bytes().to_vec());
            report.cut.push((author, from, old_head));
        }
        // Feeds that have caught up since an earlier repair are done.
        for (feed, _, _) in self.refetch_markers()? {
            if !found.damaged.contains_key(&feed) && self.refetching(&feed)?.is_none() {
                batch.remove(feed_key(REFETCH, &feed));
            }
        }
        self.tree.apply_batch(batch)?;
        {
            // The cut messages' records stay in the log and their entries
            // in the position file; the head now ends the feed.
            let mut positions = self.positions_write()?;
            for (author, from, _) in &report.cut {
                positions.cut(author, from.saturating_sub(1));
            }
        }
        self.db.flush()?;
        report.index_entries = self.rebuild_index_in_place(&found.damaged)?;
        Ok(report)
    }

    /// Compares the position index with one made again from the whole
    /// log, a chunk at a time (see [`positions::compare_with_log`]).
    fn check_positions(&self, report: &mut FsckReport) -> Result<(), StoreError> {
        let heads = self.head_sequences()?;
        let held = self.positions_read()?;
        let found = positions::compare_with_log(&held, &self.positions_file, &self.log, &heads)?;
        for (feed, difference) in found {
            report.problems.push(match difference {
                positions::Difference::Differs => format!(
                    "{feed}: the position index differs from the message log (`potluck reindex` makes it again)"
                ),
                positions::Difference::Lacks => format!(
                    "{feed}: the message log holds messages the position index lacks (`potluck reindex` makes it again)"
                ),
            });
        }
        Ok(())
    }

    /// The head a repair cut `feed` back from, if it was cut.
    fn refetch_marker(&self, feed: &FeedId) -> Result<Option<u64>, StoreError> {
        let key = feed_key(REFETCH, feed);
        match self.tree.get(&key)? {
            Some(v) => u64_value(&key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// For a feed a repair cut back and that is still short of what it
    /// held: `(held now, held before)`.
    pub fn refetching(&self, feed: &FeedId) -> Result<Option<(u64, u64)>, StoreError> {
        let Some(before) = self.refetch_marker(feed)? else {
            return Ok(None);
        };
        let now = self.head(feed)?.map_or(0, |h| h.sequence);
        Ok((now < before).then_some((now, before)))
    }

    /// Every feed a repair cut back: feed, held now, held before (caught up
    /// when now ≥ before).
    fn refetch_markers(&self) -> Result<Vec<(FeedId, u64, u64)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([REFETCH]) {
            let (k, v) = item?;
            let Some(feed) = feed_of_key(&k) else {
                continue;
            };
            let before = u64_value(&k, &v)?;
            let now = self.head(&feed)?.map_or(0, |h| h.sequence);
            out.push((feed, now, before));
        }
        Ok(out)
    }

    /// Rebuilds a store whose sled files are damaged, from its message log:
    /// moves the store directory aside (to `NAME.damaged-MS` beside it),
    /// creates a new store in its place, and ingests every record of the
    /// old log, in log order, through the one ingest path, so every
    /// message is validated again. A record that does not validate is
    /// skipped with the rest of its feed (they could not chain on it), and
    /// reading stops at a record that cannot be one. Fork proofs, peer
    /// memory and the peer book lived only in sled and are lost: they are
    /// advice, found again by running.
    pub fn rebuild_from_log(path: &Path, now_ms: i64) -> Result<RebuildReport, StoreError> {
        const BATCH: usize = 1_000;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "store".into());
        let aside = path.with_file_name(format!("{name}.damaged-{now_ms}"));
        let io = |source| {
            StoreError::Log(LogError::Io {
                path: path.to_path_buf(),
                source,
            })
        };
        // Built beside the damaged store and swapped in only when whole: a
        // rebuild cut short leaves the damaged store in place (which
        // refuses to open, so the repair runs again), never a partial one
        // that looks healthy.
        let building = path.with_file_name(format!("{name}.rebuilding"));
        if building.exists() {
            std::fs::remove_dir_all(&building).map_err(io)?;
        }
        let store = Store::open(&building)?;
        // A store damaged before it wrote its first message may have no
        // log yet: nothing to restore.
        let old_log = file_or_nothing(&path.join(LOG_FILE)).map_err(io)?;
        // A tail an earlier open cut off (see `MessageLog::open`) follows
        // the log: it may hold messages sled forgot when it rolled back.
        let tail = file_or_nothing(&msglog::tail_path(&path.join(LOG_FILE)))
            .unwrap_or_else(|_| Box::new(std::io::empty()));
        let mut records =
            msglog::LogRecords::new(std::io::BufReader::new(std::io::Read::chain(old_log, tail)));
        let mut report = RebuildReport {
            moved_to: aside,
            ..RebuildReport::default()
        };
        let mut broken: std::collections::HashSet<FeedId> = Default::default();
        loop {
            let mut batch = Vec::with_capacity(BATCH);
            for record in records.by_ref().take(BATCH) {
                match record.map(Message::decode) {
                    Ok(Ok(msg)) => batch.push(msg),
                    Ok(Err(_)) => report.skipped += 1,
                    Err(reason) => report.log_problem = Some(reason),
                }
            }
            if batch.is_empty() {
                break;
            }
            let mut rest: Vec<Message> = batch;
            while !rest.is_empty() {
                let before = rest.len();
                rest.retain(|m| !broken.contains(&m.author()));
                report.skipped += (before - rest.len()) as u64;
                let ingested = store.ingest(rest.clone())?;
                report.restored += ingested.accepted.len() as u64;
                let Some(rejected) = ingested.rejected else {
                    break;
                };
                tracing::warn!(feed = %rejected.author, sequence = rejected.sequence, error = %rejected.error, "not restoring a damaged message and the rest of its feed");
                broken.insert(rejected.author);
                report.skipped += 1;
                rest.drain(..=rejected.index);
            }
        }
        store.flush()?;
        drop(store);
        std::fs::rename(path, &report.moved_to).map_err(io)?;
        std::fs::rename(&building, path).map_err(io)?;
        crate::home::sync_parent(path).map_err(io)?;
        // The mark that `Store::open` made beside the building directory;
        // the home's own mark (beside `path`) is the one that counts.
        let mut stray = building.into_os_string();
        stray.push(".published");
        let _ = std::fs::remove_file(stray);
        Ok(report)
    }

    /// Every stored index entry (not the logs), for checks and tests.
    pub fn index_snapshot(&self) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
        let mut stored = BTreeMap::new();
        for p in index::prefix::ALL {
            for item in index_entries(&self.tree, &self.groups, p) {
                let (k, v) = item?;
                stored.insert(k, v);
            }
        }
        Ok(stored)
    }

    /// Makes the position index again from the message log, then rebuilds
    /// every index from the logs. Returns the number of index entries.
    ///
    /// The rebuild replaces the indexes in place, a chunk at a time, so
    /// memory stays bounded however large the store; a mark in sled
    /// (`M reindexing`) says it is under way, and a store opened with the
    /// mark set (the rebuild was interrupted) rebuilds again before
    /// anything reads it.
    pub fn reindex(&self) -> Result<usize, StoreError> {
        let _writer = self.lock();
        self.rebuild_positions()?;
        self.tree.insert(REINDEXING_KEY, &[1])?;
        self.db.flush()?;
        self.rebuild_index_in_place(&BTreeMap::new())
    }

    /// Removes every index entry and replays every feed (each cut at its
    /// sequence in `cuts`) into the store's own tree, a chunk at a time,
    /// then clears the reindexing mark. The caller has set the mark.
    pub(super) fn rebuild_index_in_place(
        &self,
        cuts: &BTreeMap<FeedId, u64>,
    ) -> Result<usize, StoreError> {
        // Safe to repeat: the mark makes an interrupted rebuild start over
        // (and the next open empties `groups.log` whatever it holds).
        self.remove_prefixes(&index::prefix::ALL)?;
        self.remove_prefixes(&[GROUP])?;
        self.tree.insert(GROUPS_END_KEY, &0u64.to_be_bytes())?;
        self.db.flush()?;
        self.groups.clear()?;
        self.rebuild_index(&self.tree, &self.groups, None, cuts, IN_PLACE_CHUNK)?;
        self.tree.remove(REINDEXING_KEY)?;
        self.db.flush()?;
        self.groups.note_durable()?;
        let mut count = 0;
        for p in index::prefix::ALL {
            count += index_entries(&self.tree, &self.groups, p).count();
        }
        Ok(count)
    }

    /// Replays every feed through the index rules into `target`, each
    /// feed up to (not including) its sequence in `cuts`, if any, applying
    /// the entries `chunk` messages at a time (the rules read what
    /// earlier chunks wrote). With a report, also re-verifies chains and
    /// signatures and the head entries, and notes in `report.damaged`
    /// where each damaged feed must be cut.
    fn rebuild_index(
        &self,
        target: &sled::Tree,
        target_groups: &Groups,
        mut report: Option<&mut FsckReport>,
        cuts: &BTreeMap<FeedId, u64>,
        chunk: usize,
    ) -> Result<(), StoreError> {
        let mut staged = Staged::over(target, target_groups);
        let mut staged_messages = 0;
        for (author, head) in self.feeds()? {
            let cut = cuts.get(&author).copied().unwrap_or(u64::MAX);
            let mut prev: Option<FeedHead> = None;
            let mut unverified = Vec::new();
            // The first sequence found damaged or invalid in this feed.
            let mut first_bad: Option<u64> = None;
            for item in self.feed_messages(&author, 1) {
                let msg = match item {
                    Err(StoreError::Damaged { sequence, .. }) if sequence >= cut => break,
                    Err(StoreError::Damaged {
                        sequence, reason, ..
                    }) => {
                        match report.as_deref_mut() {
                            Some(r) => r
                                .problems
                                .push(format!("{author} #{sequence}: damaged: {reason}")),
                            // A rebuild indexes what can be read; fsck
                            // shows the damage and repair cuts it.
                            None => {
                                tracing::warn!(feed = %author, sequence, %reason, "a damaged message and the rest of its feed are not indexed; `potluck fsck --repair` cuts the feed so that peers send it again");
                            }
                        }
                        first_bad = Some(sequence);
                        break;
                    }
                    other => other?,
                };
                if msg.sequence() >= cut {
                    break;
                }
                if let Some(r) = report.as_deref_mut() {
                    r.messages += 1;
                    if let Err(e) = validate::check_standalone(&msg)
                        .and_then(|()| validate::check_chain(prev.as_ref(), &msg))
                    {
                        r.problems
                            .push(format!("{author} #{}: {e}", msg.sequence()));
                        first_bad = Some(msg.sequence());
                        break;
                    }
                }
                prev = Some(FeedHead {
                    sequence: msg.sequence(),
                    id: msg.id(),
                });
                index::apply(&mut staged, &msg)?;
                staged_messages += 1;
                if staged_messages >= chunk {
                    staged.apply()?;
                    staged_messages = 0;
                }
                if report.is_some() {
                    unverified.push(msg);
                    if unverified.len() >= VERIFY_CHUNK
                        && let Some(bad) =
                            first_bad_signature(&mut unverified, report.as_deref_mut())
                    {
                        first_bad = Some(bad);
                    }
                }
            }
            if let Some(r) = report.as_deref_mut() {
                r.feeds += 1;
                if let Some(bad) = first_bad_signature(&mut unverified, Some(r)) {
                    first_bad = Some(first_bad.map_or(bad, |b| b.min(bad)));
                }
                let held = prev.map_or(0, |p| p.sequence);
                if first_bad.is_none() && prev != Some(head) {
                    r.problems.push(format!(
                        "{author}: head entry says #{} but the log ends at #{held}",
                        head.sequence,
                    ));
                    first_bad = Some(held.min(head.sequence) + 1);
                }
                if let Some(sequence) = first_bad {
                    r.damaged.insert(author, sequence);
                }
            }
        }
        staged.apply()?;
        Ok(())
    }
}

/// The file at `path` to read, or nothing if there is none.
fn file_or_nothing(path: &Path) -> std::io::Result<Box<dyn std::io::Read>> {
    match std::fs::File::open(path) {
        Ok(file) => Ok(Box::new(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Box::new(std::io::empty())),
        Err(e) => Err(e),
    }
}

/// Checks the signatures of `msgs` (one feed's, in order), empties it, and
/// returns the sequence of the first bad one, noting it in the report.
fn first_bad_signature(msgs: &mut Vec<Message>, report: Option<&mut FsckReport>) -> Option<u64> {
    let result = validate::verify_signatures_parallel(msgs);
    let bad = result.err().map(|(i, e)| {
        let msg = &msgs[i];
        if let Some(r) = report {
            r.problems
                .push(format!("{} #{}: {e}", msg.author(), msg.sequence()));
        }
        msg.sequence()
    });
    msgs.clear();
    bad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_database_still_locked_is_named_as_the_checks_own() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = dir.path().join(SCRATCH_DIR);
        let held = open_scratch_db(&scratch, SCRATCH_WALK_CACHE).unwrap();
        // Waits for the lock as long as a reopen would, then gives up.
        let err = open_scratch_db(&scratch, SCRATCH_WALK_CACHE).unwrap_err();
        assert!(
            matches!(&err, StoreError::ScratchLocked { path } if *path == scratch),
            "{err:?}"
        );
        assert!(err.to_string().contains("run the check again"), "{err}");
        drop(held);
        // Once closed, it opens.
        assert!(open_scratch_db(&scratch, SCRATCH_WALK_CACHE).is_ok());
    }
}
