//! The grouped index entries: every index entry whose key is
//! `prefix ‖ group ‖ member` with a 32-byte group and member (an event's
//! RSVPs and admissions, grouped by event; a person's answers and
//! contacts, grouped by author) lives in an append-only file beside the message log,
//! `groups.log`, not in sled. sled keeps one key per *group* (its chain's
//! head), so no sled key is written per message.
//!
//! **Why.** These entries are one per message: in a sled tree far larger
//! than its cache, each was an insert at a random place, paging leaves in
//! and rewriting them, and leaving garbage behind; the sync rate fell as
//! the store grew. Here a batch appends one record per group it touched,
//! written in order at the end of one file.
//!
//! **File format.** The file is a [`MessageLog`] (records of a 4-byte
//! length and a body), so it shares the log's crash rules and storage
//! fault seam. A record's body, integers big-endian:
//!
//! | bytes | field |
//! |-------|-------|
//! | 0 | format of the record, 1 |
//! | 1 | flags: bit 0 set when the record starts its group's chain (a *base*) |
//! | 2 | the index prefix (`r`, `q`, `a` or `c`) |
//! | 3..11 | the first 8 bytes of the group (event id or author): a check |
//! | 11..23 | the previous record of the group (offset u64, length u32); zero in a base |
//! | 23..25 | number of entries |
//! | 25.. | entries: member (32 bytes), value length (u16; `0xFFFF`: the entry was removed), value |
//!
//! A group's entries are its chain read from the head back to a base, the
//! newest record naming a member winning. sled holds, under
//! `J ‖ prefix ‖ group` ([`super::keys::GROUP`]), the head record's
//! location, the bytes of the chain and of its base, and the group's
//! *summary*: for an event's answers, the event's tally, which every
//! answer changes with them (so a batch writes one sled key per event,
//! not two).
//!
//! **Bounded reads and garbage.** A batch's writes to a group are a delta
//! record after the group's head, unless the deltas since the group's
//! base would then outweigh twice the base (plus 4 KiB): then the whole
//! live group is written again as a new base (split into records of at
//! most [`RECORD_LIMIT`] bytes). So reading a group reads at most about
//! three times its base, and a batch never reads a group it only writes to, except at
//! a new base, which the deltas before it pay for. The records no chain
//! reaches any more (old deltas and bases) are never more than the
//! records written since: the file stays within a small multiple of the
//! deltas, themselves smaller than the messages. No compaction runs.
//!
//! **Crash consistency.** As for the message log: a commit writes and syncs
//! its records before the sled batch that moves the heads and records the
//! file's committed length (`Mgroups_end`); a tail no head points into is
//! cut at the next open.
//!
//! **Memory.** Groups read are kept in a cache of at most
//! [`CACHE_BUDGET`] bytes, least recently used first out; a cached group
//! is brought up to date by reading only the records after the head it
//! was read at. Beside it, a filter of the answers (`q`) ever given
//! ([`filter`]) lets most lookups of an answer skip reading the group.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

mod filter;

use self::filter::{AnswerFilter, Pair};
use super::error::StoreError;
use super::index::{CorruptEntry, compose_key, prefix};
use super::keys::{GROUP, group_key};
use super::log_file::LogFileOpener;
use super::msglog::{Location, LogError, MessageLog, PendingAppend};

/// The file, inside the store directory.
pub(super) const GROUPS_FILE: &str = "groups.log";

/// The index prefixes kept here.
pub(super) const GROUPED: [u8; 4] = [
    prefix::RSVP,
    prefix::ANSWERED,
    prefix::ADMISSION,
    prefix::CONTACT,
];

/// Whether a key of this prefix is a grouped entry.
pub(super) fn is_grouped(prefix: u8) -> bool {
    GROUPED.contains(&prefix)
}

/// Bytes of a grouped entry's key: prefix, group, member.
pub(super) const KEY_LEN: usize = 65;

/// Largest record body written (a base of a large group is split): below
/// the message log's own record limit.
pub(super) const RECORD_LIMIT: usize = 16 * 1024;

/// Bytes of groups kept in memory, at most (as counted by the cache: the
/// process holds somewhat more).
///
/// 16 MiB: 3M syncs with 16 and 32 MiB (a sled cache of 32 MiB) peaked at
/// 180 and 198-208 MB with no more CPU a message at 16 (docs/performance.md);
/// what a lookup of a cold group costs, the answers' filter mostly saves.
pub(super) const CACHE_BUDGET: usize = 16 << 20;

const RECORD_FORMAT: u8 = 1;
const BASE: u8 = 1;
const HEADER_LEN: usize = 25;
const REMOVED: u16 = u16::MAX;
/// A chain is written again whole once its deltas outweigh this many times
/// its base (plus [`CHAIN_SLACK`]): reads of a group cost at most this
/// plus one times its base, and the bases written over a group's life
/// about 1 / this of its deltas.
const DELTAS_PER_BASE: u64 = 2;
/// Bytes of deltas a chain may always have before it is written again.
const CHAIN_SLACK: u64 = 4096;
/// Estimated bytes of memory per cached entry beyond its value.
const ENTRY_OVERHEAD: usize = 32 + 48;

/// A group: its index prefix and its 32-byte group id.
pub(super) type GroupId = (u8, [u8; 32]);

/// An index entry: its key and value.
pub(super) type Entry = (Vec<u8>, Vec<u8>);

/// A group's live entries, member → value.
pub(super) type Members = BTreeMap<[u8; 32], Vec<u8>>;

/// Writes to grouped entries staged in one batch: per group, member →
/// new value (`None`: removed).
pub(super) type GroupWrites = BTreeMap<GroupId, BTreeMap<[u8; 32], Option<Vec<u8>>>>;

/// Splits a grouped entry's key into its group and member.
pub(super) fn split_key(key: &[u8]) -> Option<(GroupId, [u8; 32])> {
    if key.len() != KEY_LEN || !is_grouped(key[0]) {
        return None;
    }
    let group: [u8; 32] = key[1..33].try_into().ok()?;
    let member: [u8; 32] = key[33..65].try_into().ok()?;
    Some(((key[0], group), member))
}

/// New summaries of groups staged in one batch (see [`summarized_group`]).
pub(super) type Summaries = BTreeMap<GroupId, Vec<u8>>;

/// Index prefixes whose entries are kept as the summary of a group, in
/// its chain head, not as a sled key of their own: an event's tally
/// (`t ‖ event`) in the head of the event's answers (`r ‖ event`). Both
/// change together, at every answer; one sled key written and read per
/// event instead of two halves what a batch of answers costs sled.
const SUMMARIZED: [(u8, u8); 1] = [(prefix::TALLY, prefix::RSVP)];

/// Whether a key of this prefix is kept as a group's summary.
pub(super) fn is_summary(prefix: u8) -> bool {
    SUMMARIZED.iter().any(|&(p, _)| p == prefix)
}

/// The group whose summary the entry at `key` is (`prefix ‖ group`), if
/// its prefix is kept that way.
pub(super) fn summarized_group(key: &[u8]) -> Option<GroupId> {
    let (&p, id) = key.split_first()?;
    let (_, group_prefix) = SUMMARIZED.iter().find(|&&(s, _)| s == p)?;
    Some((*group_prefix, id.try_into().ok()?))
}

/// The group id of a chain head's key (`J ‖ prefix ‖ group`).
fn group_of_head_key(key: &[u8]) -> Result<[u8; 32], CorruptEntry> {
    key.get(2..)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| CorruptEntry {
            key: hex::encode(key),
            reason: "a group key is not 34 bytes".into(),
        })
}

/// The first 8 bytes of a group's id: what its records carry as a check.
fn check(group: &GroupId) -> [u8; 8] {
    let mut c = [0; 8];
    c.copy_from_slice(&group.1[..8]);
    c
}

/// The key `prefix ‖ group ‖ member`.
pub(super) fn entry_key(group: &GroupId, member: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(KEY_LEN);
    k.push(group.0);
    k.extend_from_slice(&group.1);
    k.extend_from_slice(member);
    k
}

/// What sled holds for a group.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ChainHead {
    /// The newest record.
    head: Location,
    /// Bytes of the records from the head back to the base.
    chain_bytes: u64,
    /// Bytes of the base's records (the chain's oldest).
    base_bytes: u64,
    /// The group's summary (an event's tally, for its answers), empty for
    /// none: see [`summarized_group`].
    summary: Vec<u8>,
}

/// Bytes of a [`ChainHead`] in sled, without its summary.
const CHAIN_HEAD_LEN: usize = 28;

impl ChainHead {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(CHAIN_HEAD_LEN + self.summary.len());
        v.extend_from_slice(&self.head.encode());
        v.extend_from_slice(&self.chain_bytes.to_be_bytes());
        v.extend_from_slice(&self.base_bytes.to_be_bytes());
        v.extend_from_slice(&self.summary);
        v
    }

    fn decode(key: &[u8], v: &[u8]) -> Result<ChainHead, CorruptEntry> {
        let bad = || CorruptEntry {
            key: hex::encode(key),
            reason: format!("a group's chain head is shorter than {CHAIN_HEAD_LEN} bytes"),
        };
        if v.len() < CHAIN_HEAD_LEN {
            return Err(bad());
        }
        let number = |at: usize| -> Result<u64, CorruptEntry> {
            Ok(u64::from_be_bytes(
                v[at..at + 8].try_into().map_err(|_| bad())?,
            ))
        };
        Ok(ChainHead {
            head: Location::decode(&v[..12]).ok_or_else(bad)?,
            chain_bytes: number(12)?,
            base_bytes: number(20)?,
            summary: v[CHAIN_HEAD_LEN..].to_vec(),
        })
    }

    /// Bytes of the deltas after the base.
    fn delta_bytes(&self) -> u64 {
        self.chain_bytes.saturating_sub(self.base_bytes)
    }
}

/// One decoded record.
struct Record {
    base: bool,
    /// The index prefix and the first 8 bytes of the group.
    group: (u8, [u8; 8]),
    previous: Location,
    entries: Vec<([u8; 32], Option<Vec<u8>>)>,
}

impl Record {
    fn decode(bytes: &[u8]) -> Result<Record, String> {
        if bytes.len() < HEADER_LEN {
            return Err(format!("a record of {} bytes is too short", bytes.len()));
        }
        if bytes[0] != RECORD_FORMAT {
            return Err(format!("unknown record format {}", bytes[0]));
        }
        let base = bytes[1] & BASE != 0;
        let group: [u8; 8] = bytes[3..11].try_into().map_err(|_| "group")?;
        let previous = Location::decode(&bytes[11..23]).ok_or("previous")?;
        let count = u16::from_be_bytes([bytes[23], bytes[24]]);
        let mut entries = Vec::with_capacity(usize::from(count));
        let mut at = HEADER_LEN;
        for _ in 0..count {
            let head = bytes
                .get(at..at + 34)
                .ok_or("an entry runs past the record")?;
            let member: [u8; 32] = head[..32].try_into().map_err(|_| "member")?;
            let len = u16::from_be_bytes([head[32], head[33]]);
            at += 34;
            if len == REMOVED {
                entries.push((member, None));
                continue;
            }
            let value = bytes
                .get(at..at + usize::from(len))
                .ok_or("a value runs past the record")?;
            at += usize::from(len);
            entries.push((member, Some(value.to_vec())));
        }
        if at != bytes.len() {
            return Err("bytes after the last entry".into());
        }
        Ok(Record {
            base,
            group: (bytes[2], group),
            previous,
            entries,
        })
    }
}

/// Encodes records of `group`, each at most [`RECORD_LIMIT`] bytes, into
/// `pending`, chained after `previous` (a base when `None`); returns the
/// last record's location and the bytes written.
fn push_records<'a>(
    pending: &mut PendingAppend,
    group: &GroupId,
    mut previous: Option<Location>,
    entries: impl Iterator<Item = (&'a [u8; 32], Option<&'a [u8]>)>,
) -> Result<(Option<Location>, u64), StoreError> {
    let mut written = 0u64;
    let mut body = Vec::new();
    let mut count = 0u16;
    let mut flush = |body: &mut Vec<u8>, count: &mut u16, previous: &mut Option<Location>| {
        if *count == 0 {
            return;
        }
        body[23..25].copy_from_slice(&count.to_be_bytes());
        if let Some(p) = previous {
            body[1] = 0;
            body[11..23].copy_from_slice(&p.encode());
        }
        let at = pending.push(body);
        written += 4 + body.len() as u64;
        *previous = Some(at);
        body.clear();
        *count = 0;
    };
    for (member, value) in entries {
        let len = value.map_or(0, <[u8]>::len);
        if len >= usize::from(REMOVED) || HEADER_LEN + 34 + len > RECORD_LIMIT {
            return Err(StoreError::Bug("a grouped index value is too long"));
        }
        if !body.is_empty() && body.len() + 34 + len > RECORD_LIMIT || count == u16::MAX {
            flush(&mut body, &mut count, &mut previous);
        }
        if body.is_empty() {
            body.push(RECORD_FORMAT);
            body.push(BASE);
            body.push(group.0);
            body.extend_from_slice(&group.1[..8]);
            body.extend_from_slice(&[0; 12]);
            body.extend_from_slice(&[0; 2]);
        }
        body.extend_from_slice(member);
        match value {
            Some(v) => {
                body.extend_from_slice(&(v.len() as u16).to_be_bytes());
                body.extend_from_slice(v);
            }
            None => body.extend_from_slice(&REMOVED.to_be_bytes()),
        }
        count += 1;
    }
    flush(&mut body, &mut count, &mut previous);
    Ok((previous, written))
}

/// A group's live entries in memory, with the memory they take
/// (estimated), kept up to date as entries change so that nothing ever
/// counts a whole group again just to cache it.
struct Held {
    members: Members,
    bytes: usize,
}

impl Held {
    fn of(members: Members) -> Held {
        let bytes = members.values().map(|v| v.len() + ENTRY_OVERHEAD).sum();
        Held { members, bytes }
    }

    /// Sets (or removes) each changed member.
    fn apply(&mut self, changes: &BTreeMap<[u8; 32], Option<Vec<u8>>>) {
        for (member, value) in changes {
            let old = match value {
                Some(v) => {
                    self.bytes += v.len() + ENTRY_OVERHEAD;
                    self.members.insert(*member, v.clone())
                }
                None => self.members.remove(member),
            };
            if let Some(old) = old {
                self.bytes = self.bytes.saturating_sub(old.len() + ENTRY_OVERHEAD);
            }
        }
    }
}

/// A group held in memory.
struct Cached {
    /// The head record it was read at.
    head: Location,
    held: Held,
    /// Recency, for eviction.
    used: u64,
}

impl Cached {
    /// Memory it takes, estimated.
    fn bytes(&self) -> usize {
        self.held.bytes + 64
    }
}

#[derive(Default)]
struct Cache {
    groups: HashMap<GroupId, Cached>,
    bytes: usize,
    clock: u64,
}

impl Cache {
    fn take(&mut self, group: &GroupId) -> Option<Cached> {
        let c = self.groups.remove(group)?;
        self.bytes = self.bytes.saturating_sub(c.bytes());
        Some(c)
    }

    fn put(&mut self, group: GroupId, head: Location, held: Held) {
        self.clock += 1;
        let cached = Cached {
            head,
            held,
            used: self.clock,
        };
        self.bytes += cached.bytes();
        if let Some(old) = self.groups.insert(group, cached) {
            self.bytes = self.bytes.saturating_sub(old.bytes());
        }
        if self.bytes > CACHE_BUDGET {
            // Evict the least recently used down to half the budget, so
            // that the sort is paid rarely.
            let mut by_age: Vec<(u64, GroupId)> =
                self.groups.iter().map(|(g, c)| (c.used, *g)).collect();
            by_age.sort_unstable();
            for (_, g) in by_age {
                if self.bytes <= CACHE_BUDGET / 2 {
                    break;
                }
                if let Some(c) = self.groups.remove(&g) {
                    self.bytes = self.bytes.saturating_sub(c.bytes());
                }
            }
        }
    }
}

/// The chain heads one batch has read, so that it reads each group's head
/// from sled once: a sync's batch reads an event's head for its tally,
/// then again to write the answers' records, and at 10M messages many
/// such reads miss sled's cache. Valid while the batch is staged: chain
/// heads are written only by applying a staged batch, under the store's
/// writer lock (or at open and in a rebuild, when no batch is staged),
/// and the batch's owner empties it when it applies the batch
/// ([`HeadsRead::forget`]).
#[derive(Default)]
pub(super) struct HeadsRead {
    read: RefCell<HashMap<GroupId, Option<ChainHead>>>,
}

impl HeadsRead {
    /// Forgets every head read (the batch was applied).
    pub fn forget(&self) {
        self.read.borrow_mut().clear();
    }
}

/// The grouped entries' file and cache.
pub(super) struct Groups {
    log: MessageLog,
    cache: Mutex<Cache>,
    /// Which answers (`q`) were ever written: most lookups of an answer
    /// are of one never given, and need not read the author's group.
    answered: Mutex<AnswerFilter>,
}

/// Records of one commit, ready to be written, and what the commit then
/// changes in sled and in the cache.
#[derive(Default)]
pub(super) struct Prepared {
    pending: Option<PendingAppend>,
    /// sled writes: the groups' chain heads (`None`: the group is empty
    /// and has none).
    pub sled: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Each changed group that was cached, as it is after the commit.
    fresh: Vec<(GroupId, Location, Held)>,
    /// The answers (`q`) the records name, for the filter.
    answered: Vec<Pair>,
}

impl Prepared {
    /// The file's committed length after the commit, if it writes any
    /// record.
    pub fn end(&self) -> Option<u64> {
        self.pending
            .as_ref()
            .filter(|p| !p.is_empty())
            .map(PendingAppend::end)
    }
}

impl Groups {
    /// Opens the file in store directory `dir`, of which `committed` bytes
    /// count (the rest, left by an interrupted commit, is cut). With
    /// `discard`, when every index is about to be rebuilt, it is emptied
    /// first, whatever it holds.
    pub fn open(
        dir: &Path,
        open: &LogFileOpener,
        committed: u64,
        discard: bool,
    ) -> Result<Groups, StoreError> {
        Groups::open_at(&dir.join(GROUPS_FILE), open, committed, discard)
    }

    /// [`Groups::open`] for the file at `path`.
    pub fn open_at(
        path: &Path,
        open: &LogFileOpener,
        committed: u64,
        discard: bool,
    ) -> Result<Groups, StoreError> {
        let path = path.to_path_buf();
        let io = |source| LogError::Io {
            path: path.clone(),
            source,
        };
        let file = open(&path).map_err(io)?;
        if discard {
            file.set_len(0).map_err(io)?;
            file.sync_data().map_err(io)?;
            // The mark of how far it was durable no longer applies.
            match std::fs::remove_file(super::msglog::durable_mark_path(&path)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e).into()),
                _ => {}
            }
        }
        Ok(Groups {
            log: MessageLog::open_file(&path, file, if discard { 0 } else { committed })?,
            cache: Mutex::new(Cache::default()),
            answered: Mutex::new(AnswerFilter::new()),
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // Every change to the cache is whole under the lock.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The group's chain head, as sled holds it.
    fn chain(&self, tree: &sled::Tree, group: &GroupId) -> Result<Option<ChainHead>, StoreError> {
        let key = group_key(group.0, &group.1);
        match tree.get(&key)? {
            Some(v) => Ok(Some(ChainHead::decode(&key, &v)?)),
            None => Ok(None),
        }
    }

    /// [`Groups::chain`], read once per batch through `heads`.
    fn chain_once(
        &self,
        tree: &sled::Tree,
        heads: &HeadsRead,
        group: &GroupId,
    ) -> Result<Option<ChainHead>, StoreError> {
        if let Some(known) = heads.read.borrow().get(group) {
            return Ok(known.clone());
        }
        let chain = self.chain(tree, group)?;
        heads.read.borrow_mut().insert(*group, chain.clone());
        Ok(chain)
    }

    /// Reads the chain from `head` back to a base, or to `stop` (a record
    /// already applied to `onto`), and returns the group's live entries.
    fn walk(
        &self,
        group: &GroupId,
        head: Location,
        stop: Option<Location>,
        onto: Option<Members>,
    ) -> Result<Members, StoreError> {
        let corrupt = |reason: String| CorruptEntry {
            key: hex::encode(group_key(group.0, &group.1)),
            reason,
        };
        let mut newer: BTreeMap<[u8; 32], Option<Vec<u8>>> = BTreeMap::new();
        let mut at = head;
        let mut base_reached = false;
        loop {
            if Some(at) == stop {
                break;
            }
            let bytes = self.log.read(at)?;
            let record = Record::decode(&bytes)
                .map_err(|r| corrupt(format!("record at {}: {r}", at.offset)))?;
            if record.group.0 != group.0 || record.group.1[..] != group.1[..8] {
                return Err(corrupt(format!("record at {} is another group's", at.offset)).into());
            }
            for (member, value) in record.entries {
                newer.entry(member).or_insert(value);
            }
            if record.base {
                base_reached = true;
                break;
            }
            // Chains only point back: a damaged pointer cannot loop.
            if record.previous.offset >= at.offset {
                return Err(corrupt(format!(
                    "record at {} points forward to {}",
                    at.offset, record.previous.offset
                ))
                .into());
            }
            at = record.previous;
        }
        let mut members = match onto {
            Some(m) if !base_reached => m,
            _ => Members::new(),
        };
        for (member, value) in newer {
            match value {
                Some(v) => members.insert(member, v),
                None => members.remove(&member),
            };
        }
        Ok(members)
    }

    /// Runs `read` on the group's committed live entries, read through
    /// the cache.
    fn with_members<T>(
        &self,
        tree: &sled::Tree,
        heads: &HeadsRead,
        group: &GroupId,
        read: impl FnOnce(&Members) -> T,
    ) -> Result<T, StoreError> {
        let Some(chain) = self.chain_once(tree, heads, group)? else {
            return Ok(read(&Members::new()));
        };
        let cached = self.cache().take(group);
        let held = match cached {
            Some(c) if c.head == chain.head => c.held,
            Some(c) => {
                Held::of(self.walk(group, chain.head, Some(c.head), Some(c.held.members))?)
            }
            None => Held::of(self.walk(group, chain.head, None, None)?),
        };
        let out = read(&held.members);
        self.cache().put(*group, chain.head, held);
        Ok(out)
    }

    fn answered(&self) -> std::sync::MutexGuard<'_, AnswerFilter> {
        // The filter is whole under the lock.
        self.answered.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The committed value of one entry. An answer (`q`) that the filter
    /// knows was never given is not looked up.
    pub fn get(
        &self,
        tree: &sled::Tree,
        heads: &HeadsRead,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((group, member)) = split_key(key) else {
            return Err(StoreError::Bug("a grouped entry's key has the wrong shape"));
        };
        if group.0 == prefix::ANSWERED
            && !self
                .answered()
                .may_hold(&self.log, &(check(&group), member))
        {
            return Ok(None);
        }
        self.with_members(tree, heads, &group, |m| m.get(&member).cloned())
    }

    /// The committed entries of a group, in member order.
    pub fn members(
        &self,
        tree: &sled::Tree,
        heads: &HeadsRead,
        group: &GroupId,
    ) -> Result<Members, StoreError> {
        self.with_members(tree, heads, group, Members::clone)
    }

    /// The committed summary of a group (see [`summarized_group`]), if it
    /// has one.
    pub fn summary(
        &self,
        tree: &sled::Tree,
        heads: &HeadsRead,
        group: &GroupId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .chain_once(tree, heads, group)?
            .map(|c| c.summary)
            .filter(|s| !s.is_empty()))
    }

    /// Every committed entry of summary prefix `prefix` as `(key, value)`,
    /// in key order, from the chain heads of the groups it summarizes.
    pub fn summary_entries<'a>(
        &'a self,
        tree: &'a sled::Tree,
        prefix: u8,
    ) -> impl Iterator<Item = Result<Entry, StoreError>> + 'a {
        let groups_prefix = SUMMARIZED
            .iter()
            .find(|&&(s, _)| s == prefix)
            .map(|&(_, g)| g);
        let scan = groups_prefix.map(|g| tree.scan_prefix([GROUP, g]));
        scan.into_iter().flatten().filter_map(move |item| {
            let entry = item.map_err(StoreError::from).and_then(|(k, v)| {
                let head = ChainHead::decode(&k, &v)?;
                let group = group_of_head_key(&k)?;
                Ok((compose_key(prefix, &[&group]), head.summary))
            });
            match entry {
                Ok((_, summary)) if summary.is_empty() => None,
                other => Some(other),
            }
        })
    }

    /// Moves summaries kept as sled keys of their own (index revision 3
    /// and before: `t ‖ event`) into their groups' chain heads, at most
    /// `chunk` keys per atomic sled batch, so that memory stays bounded
    /// and an interrupted move goes on where it stopped (a key still there
    /// is one not yet moved). A key whose group has no chain (which the
    /// index rules never write: a tally with no answers) is dropped, with
    /// a warning. Returns the keys moved.
    pub fn move_summaries_into_heads(
        &self,
        tree: &sled::Tree,
        chunk: usize,
    ) -> Result<u64, StoreError> {
        let mut moved = 0;
        let mut dropped = 0u64;
        for &(summary_prefix, _) in &SUMMARIZED {
            loop {
                let mut batch = sled::Batch::default();
                let mut n = 0;
                for item in tree.scan_prefix([summary_prefix]).take(chunk.max(1)) {
                    let (key, value) = item?;
                    match summarized_group(&key) {
                        Some(group) => match self.chain(tree, &group)? {
                            Some(chain) => {
                                let head = ChainHead {
                                    summary: value.to_vec(),
                                    ..chain
                                };
                                batch.insert(group_key(group.0, &group.1), head.encode());
                                moved += 1;
                            }
                            None => dropped += 1,
                        },
                        None => dropped += 1,
                    }
                    batch.remove(key);
                    n += 1;
                }
                if n == 0 {
                    break;
                }
                tree.apply_batch(batch)?;
            }
        }
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "dropped tallies of events without answers while moving tallies into their heads (`potluck fsck` checks the rest)"
            );
        }
        Ok(moved)
    }

    /// Every group of `prefix` with a chain, in order.
    pub fn groups(
        &self,
        tree: &sled::Tree,
        prefix: u8,
    ) -> impl Iterator<Item = Result<GroupId, StoreError>> {
        tree.scan_prefix([GROUP, prefix]).map(move |item| {
            let (k, _) = item?;
            Ok((prefix, group_of_head_key(&k)?))
        })
    }

    /// Every committed entry of `prefix` as `(key, value)`, in key order,
    /// one group in memory at a time.
    ///
    /// A group's entries are handed out from its members as they are
    /// consumed, not listed again with their keys first: a 10M check,
    /// which walks the stored and the rebuilt group side by side, rose
    /// 27 MB in one second when it reached the busiest events' answers
    /// (docs/performance.md).
    pub fn entries<'a>(
        &'a self,
        tree: &'a sled::Tree,
        prefix: u8,
    ) -> impl Iterator<Item = Result<Entry, StoreError>> + 'a {
        self.groups(tree, prefix).flat_map(move |group| {
            let (read, failed) = match group.and_then(|g| Ok((g, self.read_uncached(tree, &g)?))) {
                Ok(read) => (Some(read), None),
                Err(e) => (None, Some(Err(e))),
            };
            read.into_iter()
                .flat_map(|(g, members)| {
                    members
                        .into_iter()
                        .map(move |(m, v)| Ok((entry_key(&g, &m), v)))
                })
                .chain(failed)
        })
    }

    /// A group's entries read from the file, leaving the cache alone (a
    /// scan of every group would only churn it).
    fn read_uncached(&self, tree: &sled::Tree, group: &GroupId) -> Result<Members, StoreError> {
        match self.chain(tree, group)? {
            Some(chain) => self.walk(group, chain.head, None, None),
            None => Ok(Members::new()),
        }
    }

    /// Makes the records of a batch's writes: per group a delta after its
    /// head, or, once the deltas since the base would outweigh the base
    /// (plus [`CHAIN_SLACK`]), the whole group again as a new base. Only a
    /// new base reads the group; a group that is only written (an event's
    /// answers during a sync) is never read whole but at those moments,
    /// whose cost the deltas before them pay for. A cached group is kept
    /// up to date (taken out of the cache here; [`Groups::committed`] puts
    /// it back). `summaries` are new summaries of groups (see
    /// [`summarized_group`]); a group written without one keeps its own.
    pub fn prepare(
        &self,
        tree: &sled::Tree,
        heads: &HeadsRead,
        mut writes: GroupWrites,
        mut summaries: Summaries,
    ) -> Result<Prepared, StoreError> {
        let mut prepared = Prepared::default();
        if writes.is_empty() && summaries.is_empty() {
            return Ok(prepared);
        }
        // A summary changes with its group's entries (an answer and the
        // tally it changes); one alone rewrites only the chain head.
        for (group, summary) in std::mem::take(&mut summaries) {
            if writes.contains_key(&group) {
                summaries.insert(group, summary);
                continue;
            }
            let Some(chain) = self.chain_once(tree, heads, &group)? else {
                return Err(StoreError::Bug("a summary of a group without entries"));
            };
            let head = ChainHead { summary, ..chain };
            prepared
                .sled
                .push((group_key(group.0, &group.1), Some(head.encode())));
        }
        let mut pending = self.log.begin();
        for (group, changes) in std::mem::take(&mut writes) {
            if group.0 == prefix::ANSWERED {
                let author = check(&group);
                prepared
                    .answered
                    .extend(changes.keys().map(|member| (author, *member)));
            }
            let chain = self.chain_once(tree, heads, &group)?;
            let summary = match (summaries.remove(&group), &chain) {
                (Some(new), _) => new,
                (None, Some(c)) => c.summary.clone(),
                (None, None) => Vec::new(),
            };
            let cached = self.cache().take(&group);
            // The group's live entries, when known without reading it.
            let known = match (&chain, cached) {
                (None, _) => Some(Held::of(Members::new())),
                (Some(c), Some(k)) if k.head == c.head => Some(k.held),
                (Some(c), Some(k)) => Some(Held::of(self.walk(
                    &group,
                    c.head,
                    Some(k.head),
                    Some(k.held.members),
                )?)),
                (Some(_), None) => None,
            };
            let was_cached = known.is_some() && chain.is_some();
            let delta: u64 = changes
                .values()
                .map(|v| 34 + v.as_ref().map_or(0, |v| v.len() as u64))
                .sum::<u64>()
                + HEADER_LEN as u64
                + 4;
            let key = group_key(group.0, &group.1);
            let rebase = match &chain {
                None => true,
                Some(c) => c.delta_bytes() + delta > DELTAS_PER_BASE * c.base_bytes + CHAIN_SLACK,
            };
            if rebase {
                let mut held = match (known, &chain) {
                    (Some(h), _) => h,
                    (None, Some(c)) => Held::of(self.walk(&group, c.head, None, None)?),
                    (None, None) => Held::of(Members::new()),
                };
                held.apply(&changes);
                let (head, written) = push_records(
                    &mut pending,
                    &group,
                    None,
                    held.members.iter().map(|(m, v)| (m, Some(v.as_slice()))),
                )?;
                match head {
                    Some(head) => {
                        let chain = ChainHead {
                            head,
                            chain_bytes: written,
                            base_bytes: written,
                            summary,
                        };
                        prepared.sled.push((key, Some(chain.encode())));
                        if was_cached {
                            prepared.fresh.push((group, head, held));
                        }
                    }
                    // Every entry removed: no chain, and nothing to
                    // summarize.
                    None if summary.is_empty() => prepared.sled.push((key, None)),
                    None => return Err(StoreError::Bug("a summary of a group without entries")),
                }
            } else if let Some(c) = chain {
                let (head, written) = push_records(
                    &mut pending,
                    &group,
                    Some(c.head),
                    changes.iter().map(|(m, v)| (m, v.as_deref())),
                )?;
                if let Some(head) = head {
                    let next = ChainHead {
                        head,
                        chain_bytes: c.chain_bytes + written,
                        base_bytes: c.base_bytes,
                        summary,
                    };
                    prepared.sled.push((key, Some(next.encode())));
                    if let Some(mut held) = known {
                        held.apply(&changes);
                        prepared.fresh.push((group, head, held));
                    }
                }
            }
        }
        prepared.pending = Some(pending);
        Ok(prepared)
    }

    /// Writes and syncs the prepared records (before the sled batch that
    /// points at them).
    pub fn write(&self, prepared: &Prepared) -> Result<(), StoreError> {
        if let Some(p) = &prepared.pending {
            self.log.write(p)?;
        }
        Ok(())
    }

    /// The sled batch pointing at the records was applied: they count,
    /// and the groups are cached as they now are.
    pub fn committed(&self, prepared: Prepared) {
        if let Some(p) = &prepared.pending {
            self.log.mark_committed(p);
        }
        self.answered()
            .committed(&prepared.answered, self.log.committed());
        let mut cache = self.cache();
        for (group, head, held) in prepared.fresh {
            cache.put(group, head, held);
        }
    }

    /// Records, after a flush, how far the file is durable.
    pub fn note_durable(&self) -> Result<(), StoreError> {
        Ok(self.log.note_durable()?)
    }

    /// Empties the file and the cache, for a rebuild of every index (the
    /// caller removes the chain heads from sled and records the length 0).
    pub fn clear(&self) -> Result<(), StoreError> {
        self.log.reset()?;
        self.answered().reset();
        let mut cache = self.cache();
        cache.groups.clear();
        cache.bytes = 0;
        Ok(())
    }

    /// Lets go of every cached group (the file is unchanged): for a
    /// check whose rebuilt groups are next read only once, in order,
    /// which does not use the cache.
    pub fn forget_cached(&self) {
        *self.cache() = Cache::default();
    }

    /// Bytes the file occupies.
    pub fn size(&self) -> Result<u64, StoreError> {
        Ok(self.log.size()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RealLogFile;

    struct Fixture {
        _dir: tempfile::TempDir,
        db: sled::Db,
        tree: sled::Tree,
        groups: Groups,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().temporary(true).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        let groups = Groups::open(dir.path(), &RealLogFile::open_boxed, 0, false).unwrap();
        Fixture {
            _dir: dir,
            db,
            tree,
            groups,
        }
    }

    /// Commits `writes` as one batch, as the store does.
    fn commit(f: &Fixture, writes: GroupWrites) {
        commit_with(f, writes, Summaries::new());
    }

    /// Commits `writes` and `summaries` as one batch, as the store does.
    fn commit_with(f: &Fixture, writes: GroupWrites, summaries: Summaries) {
        let prepared = f
            .groups
            .prepare(&f.tree, &HeadsRead::default(), writes, summaries)
            .unwrap();
        f.groups.write(&prepared).unwrap();
        let mut batch = sled::Batch::default();
        for (k, v) in &prepared.sled {
            match v {
                Some(v) => batch.insert(k.clone(), v.clone()),
                None => batch.remove(k.clone()),
            }
        }
        f.tree.apply_batch(batch).unwrap();
        f.groups.committed(prepared);
    }

    fn writes(group: GroupId, members: &[(u8, Option<&[u8]>)]) -> GroupWrites {
        let mut w = GroupWrites::new();
        for (m, v) in members {
            w.entry(group)
                .or_default()
                .insert([*m; 32], v.map(<[u8]>::to_vec));
        }
        w
    }

    fn chain(f: &Fixture, group: &GroupId) -> ChainHead {
        let key = group_key(group.0, &group.1);
        ChainHead::decode(&key, &f.tree.get(&key).unwrap().unwrap()).unwrap()
    }

    #[test]
    fn a_summary_is_kept_through_deltas_and_new_bases_until_it_is_replaced() {
        let f = fixture();
        let event: GroupId = (prefix::RSVP, [7; 32]);
        let other: GroupId = (prefix::RSVP, [8; 32]);
        let mut expected: Option<Vec<u8>> = None;
        let mut bases = 0;
        for round in 0..300u32 {
            // Answers from 40 people over and over (deltas, and a new base
            // whenever they outweigh the last); the summary changes in two
            // commits of three and is left alone in the third.
            let member = (round % 40) as u8;
            let value = round.to_be_bytes();
            let mut summaries = Summaries::new();
            if round % 3 != 2 {
                let summary = format!("tally {round}").into_bytes();
                summaries.insert(event, summary.clone());
                expected = Some(summary);
            }
            let mut w = writes(event, &[(member, Some(&value))]);
            w.extend(writes(other, &[(member, Some(&value))]));
            let before = f.tree.get(group_key(event.0, &event.1)).unwrap();
            commit_with(&f, w, summaries);
            let head = chain(&f, &event);
            if before.is_some() && head.chain_bytes == head.base_bytes {
                bases += 1;
            }
            assert_eq!(
                f.groups
                    .summary(&f.tree, &HeadsRead::default(), &event)
                    .unwrap(),
                expected,
                "{round}"
            );
            assert_eq!(
                f.groups
                    .summary(&f.tree, &HeadsRead::default(), &other)
                    .unwrap(),
                None,
                "{round}"
            );
        }
        assert!(
            bases >= 3,
            "the group was written again whole {bases} times"
        );

        // A summary alone moves no record: only the chain head changes.
        let head = chain(&f, &event);
        let mut summaries = Summaries::new();
        summaries.insert(event, b"alone".to_vec());
        commit_with(&f, GroupWrites::new(), summaries);
        let after = chain(&f, &event);
        assert_eq!(
            (after.head, after.chain_bytes),
            (head.head, head.chain_bytes)
        );
        assert_eq!(
            f.groups
                .summary(&f.tree, &HeadsRead::default(), &event)
                .unwrap()
                .as_deref(),
            Some(&b"alone"[..])
        );
        // Listed as entries of the summary's prefix, by group.
        let listed: Vec<Entry> = f
            .groups
            .summary_entries(&f.tree, prefix::TALLY)
            .map(Result::unwrap)
            .collect();
        let mut key = vec![prefix::TALLY];
        key.extend_from_slice(&event.1);
        assert_eq!(listed, vec![(key, b"alone".to_vec())]);
        // A summary of a group that has no entries is a bug, not a write.
        let mut summaries = Summaries::new();
        summaries.insert((prefix::RSVP, [9; 32]), b"orphan".to_vec());
        assert!(matches!(
            f.groups.prepare(
                &f.tree,
                &HeadsRead::default(),
                GroupWrites::new(),
                summaries
            ),
            Err(StoreError::Bug(_))
        ));
    }

    #[test]
    fn the_newest_record_wins_and_removals_hide_older_values() {
        let f = fixture();
        let g = (prefix::RSVP, [7; 32]);
        commit(&f, writes(g, &[(1, Some(b"a1")), (2, Some(b"b1"))]));
        commit(&f, writes(g, &[(1, Some(b"a2")), (3, Some(b"c1"))]));
        commit(&f, writes(g, &[(2, None)]));
        let expect: Members = [([1; 32], b"a2".to_vec()), ([3; 32], b"c1".to_vec())].into();
        assert_eq!(
            f.groups
                .members(&f.tree, &HeadsRead::default(), &g)
                .unwrap(),
            expect
        );
        // The same read from the file alone, without the cache.
        assert_eq!(f.groups.read_uncached(&f.tree, &g).unwrap(), expect);
        let key = entry_key(&g, &[1; 32]);
        assert_eq!(
            f.groups.get(&f.tree, &HeadsRead::default(), &key).unwrap(),
            Some(b"a2".to_vec())
        );
        assert_eq!(
            f.groups
                .get(&f.tree, &HeadsRead::default(), &entry_key(&g, &[2; 32]))
                .unwrap(),
            None
        );
        // Other groups are apart.
        let other = (prefix::ADMISSION, [7; 32]);
        assert!(
            f.groups
                .members(&f.tree, &HeadsRead::default(), &other)
                .unwrap()
                .is_empty()
        );
        let listed: Vec<Vec<u8>> = f
            .groups
            .entries(&f.tree, prefix::RSVP)
            .map(|e| e.unwrap().0)
            .collect();
        assert_eq!(listed, vec![key, entry_key(&g, &[3; 32])]);
        drop(f.db);
    }

    #[test]
    fn a_chain_never_reads_more_than_three_times_its_base_and_a_rebase_splits_records() {
        let f = fixture();
        let g = (prefix::RSVP, [1; 32]);
        // 400 members of 100 bytes: a base of about 53 KB, so several
        // records.
        let value = vec![9u8; 100];
        let mut w = GroupWrites::new();
        for i in 0..400u32 {
            let mut m = [0u8; 32];
            m[..4].copy_from_slice(&i.to_be_bytes());
            w.entry(g).or_default().insert(m, Some(value.clone()));
        }
        commit(&f, w);
        let first = chain(&f, &g);
        assert!(first.chain_bytes > 3 * RECORD_LIMIT as u64);
        let live = 400 * (34 + 100);
        // Change one member again and again: deltas, until they would
        // outweigh twice the base and a new base is written.
        let mut rebased = false;
        for round in 0..1000u32 {
            let mut m = [0u8; 32];
            m[..4].copy_from_slice(&(round % 400).to_be_bytes());
            let mut w = GroupWrites::new();
            w.entry(g)
                .or_default()
                .insert(m, Some(vec![(round % 250) as u8; 100]));
            commit(&f, w);
            let c = chain(&f, &g);
            assert!(
                c.chain_bytes <= (DELTAS_PER_BASE + 1) * c.base_bytes + CHAIN_SLACK + 300,
                "{c:?}"
            );
            assert!(c.base_bytes <= live + 30 * (HEADER_LEN as u64 + 4), "{c:?}");
            if c.chain_bytes < first.chain_bytes + 200 && round > 0 {
                rebased = true;
            }
        }
        assert!(rebased, "the chain was never written again whole");
        // Cached and uncached reads agree.
        assert_eq!(
            f.groups
                .members(&f.tree, &HeadsRead::default(), &g)
                .unwrap(),
            f.groups.read_uncached(&f.tree, &g).unwrap()
        );
        assert_eq!(
            f.groups
                .members(&f.tree, &HeadsRead::default(), &g)
                .unwrap()
                .len(),
            400
        );
    }

    #[test]
    fn a_stale_cache_is_brought_up_to_date_from_the_file() {
        let f = fixture();
        let g = (prefix::CONTACT, [3; 32]);
        commit(&f, writes(g, &[(1, Some(b"x")), (3, Some(b"z"))]));
        let first_head = chain(&f, &g).head;
        let first = f
            .groups
            .members(&f.tree, &HeadsRead::default(), &g)
            .unwrap();
        commit(&f, writes(g, &[(2, Some(b"y")), (3, None)]));
        // As if a reader had cached the group at the first head.
        f.groups.cache().put(g, first_head, Held::of(first));
        let m = f
            .groups
            .members(&f.tree, &HeadsRead::default(), &g)
            .unwrap();
        let expect: Members = [([1; 32], b"x".to_vec()), ([2; 32], b"y".to_vec())].into();
        assert_eq!(m, expect);
        assert_eq!(f.groups.cache().groups[&g].head, chain(&f, &g).head);
    }

    #[test]
    fn a_group_whose_entries_are_all_removed_reads_empty() {
        let f = fixture();
        let g = (prefix::ADMISSION, [5; 32]);
        commit(&f, writes(g, &[(1, Some(b"x")), (2, Some(b"y"))]));
        commit(&f, writes(g, &[(1, None), (2, None)]));
        // (A delta of removals; the chain goes at the next base.)
        assert!(
            f.groups
                .members(&f.tree, &HeadsRead::default(), &g)
                .unwrap()
                .is_empty()
        );
        assert_eq!(f.groups.entries(&f.tree, g.0).count(), 0);
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        for bytes in [
            &[][..],
            &[1u8; 10][..],
            &[2u8; HEADER_LEN][..],
            &{
                let mut b = vec![1u8, 1, b'r'];
                b.extend_from_slice(&[0; 20]);
                b.extend_from_slice(&5u16.to_be_bytes());
                b
            }[..],
        ] {
            assert!(Record::decode(bytes).is_err());
        }
        // A record whose pointer goes forward is refused.
        let f = fixture();
        let g = (prefix::RSVP, [4; 32]);
        let mut pending = f.groups.log.begin();
        let fake = Location {
            offset: 1 << 40,
            len: 10,
        };
        let (head, _) = push_records(
            &mut pending,
            &g,
            Some(fake),
            [(&[1u8; 32], Some(&b"v"[..]))].into_iter(),
        )
        .unwrap();
        f.groups.log.write(&pending).unwrap();
        f.groups.log.mark_committed(&pending);
        let err = f.groups.walk(&g, head.unwrap(), None, None).unwrap_err();
        assert!(err.to_string().contains("points forward"), "{err}");
    }

    /// The key of author `author`'s answer to event `event`.
    fn answer_key(author: u8, event: u32) -> Vec<u8> {
        let mut e = [0u8; 32];
        e[..4].copy_from_slice(&event.to_be_bytes());
        e[4..8].copy_from_slice(&event.wrapping_mul(2_654_435_761).to_le_bytes());
        entry_key(&(prefix::ANSWERED, [author; 32]), &e)
    }

    #[test]
    fn answers_never_given_are_known_without_reading_and_given_ones_always_read_back() {
        let f = fixture();
        // 200 commits of 10 answers from 20 authors: the filter is built
        // (after 16 lookups, 512 bytes a step) and outgrows its smallest
        // size (about 100 pairs) several times.
        let mut given: Vec<(Vec<u8>, u8)> = Vec::new();
        for batch in 0..200u32 {
            let mut w = GroupWrites::new();
            for i in 0..10u32 {
                let k = answer_key(((batch * 7 + i) % 20) as u8, batch * 10 + i);
                assert_eq!(
                    f.groups.get(&f.tree, &HeadsRead::default(), &k).unwrap(),
                    None,
                    "never answered"
                );
                let (g, m) = split_key(&k).unwrap();
                let status = (batch % 3) as u8 + 1;
                w.entry(g)
                    .or_default()
                    .insert(m, Some(vec![status, 0, 0, 0, 1]));
                given.push((k, status));
            }
            commit(&f, w);
            if batch % 25 == 24 {
                for (k, status) in &given {
                    let v = f
                        .groups
                        .get(&f.tree, &HeadsRead::default(), k)
                        .unwrap()
                        .expect("answered");
                    assert_eq!(v[0], *status);
                }
            }
        }
        assert!(f.groups.answered().is_built());

        // With its group unreadable (its head points past the file), an
        // answer never given is still known absent, without reading it;
        // one given is read, and the damage reported.
        let author = 3u8;
        let head_key = group_key(prefix::ANSWERED, &[author; 32]);
        let bogus = ChainHead {
            head: Location {
                offset: 1 << 40,
                len: 40,
            },
            chain_bytes: 44,
            base_bytes: 44,
            summary: Vec::new(),
        };
        f.tree.insert(&head_key, bogus.encode()).unwrap();
        *f.groups.cache() = Cache::default();
        let never: Vec<Vec<u8>> = (5_000..5_200).map(|e| answer_key(author, e)).collect();
        let known_absent = never
            .iter()
            .filter(|k| matches!(f.groups.get(&f.tree, &HeadsRead::default(), k), Ok(None)))
            .count();
        // About 1 % are a false "maybe" (and then fail on the damage).
        assert!(known_absent >= 180, "{known_absent} of 200 known absent");
        let (answered, _) = given
            .iter()
            .find(|(k, _)| k[1] == author)
            .expect("author 3 answered");
        assert!(
            f.groups
                .get(&f.tree, &HeadsRead::default(), answered)
                .is_err()
        );

        // Emptied, the file's filter starts over, and is built again from
        // the new records alone: answers given since read back.
        f.groups.clear().unwrap();
        assert!(!f.groups.answered().is_built());
        let mut again = Vec::new();
        for batch in 0..10u32 {
            let mut w = GroupWrites::new();
            for i in 0..5u32 {
                let k = answer_key(50 + (i as u8), 9_000 + batch * 5 + i);
                assert_eq!(
                    f.groups.get(&f.tree, &HeadsRead::default(), &k).unwrap(),
                    None
                );
                let (g, m) = split_key(&k).unwrap();
                w.entry(g).or_default().insert(m, Some(vec![1, 0, 0, 0, 2]));
                again.push(k);
            }
            commit(&f, w);
        }
        for k in &again {
            assert!(
                f.groups
                    .get(&f.tree, &HeadsRead::default(), k)
                    .unwrap()
                    .is_some()
            );
        }
        assert!(f.groups.answered().is_built());
    }

    #[test]
    fn a_batch_reads_a_head_once_and_the_next_batch_reads_it_anew() {
        use crate::store::index::Kv;
        use crate::store::staged::Staged;
        let f = fixture();
        let group: GroupId = (prefix::RSVP, [5; 32]);
        let tally = compose_key(prefix::TALLY, &[&group.1]);
        let answer = |n: u8| entry_key(&group, &[n; 32]);
        let mut staged = Staged::over(&f.tree, &f.groups);
        // Read before the group has a chain (so the batch remembers "no
        // head"), then written and applied.
        assert_eq!(staged.get(&tally).unwrap(), None);
        staged.put(answer(1), b"going".to_vec());
        staged.put(tally.clone(), b"1 going".to_vec());
        staged.apply().unwrap();
        // The same staging goes on (a rebuild's next chunk): the applied
        // head is read, not the one remembered before it.
        assert_eq!(staged.get(&tally).unwrap(), Some(b"1 going".to_vec()));
        assert_eq!(staged.get(&answer(1)).unwrap(), Some(b"going".to_vec()));
        staged.put(answer(2), b"maybe".to_vec());
        staged.put(tally.clone(), b"1 going 1 maybe".to_vec());
        staged.apply().unwrap();
        let members = f
            .groups
            .members(&f.tree, &HeadsRead::default(), &group)
            .unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(
            f.groups
                .summary(&f.tree, &HeadsRead::default(), &group)
                .unwrap(),
            Some(b"1 going 1 maybe".to_vec())
        );
    }
}
