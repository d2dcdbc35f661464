//! The local store: the only module that touches sled.
//!
//! Everything lives in one sled tree, split by a one-byte key prefix:
//!
//! | prefix | key                   | value                              |
//! |--------|-----------------------|------------------------------------|
//! | `L`    | author ‖ sequence     | where the message is in the log    |
//! | `I`    | message id            | where the message is in the log    |
//! | `H`    | author                | head sequence ‖ head id            |
//! | `K`    | author ‖ sequence     | fork proof (two signed headers)    |
//! | `P`    | peer feed             | replication memory of that peer    |
//! | `B`    | peer address          | peer book record (JSON)            |
//! | `R`    | author                | head before a repair cut the feed  |
//! | `M`    | `format`, `log_end`   | store format, committed log length |
//! | lower  | see [`index`]         | index entries, rebuildable         |
//!
//! The message bytes themselves are in the message log file beside sled
//! ([`msglog`]); sled holds where each one is.
//!
//! **Atomicity.** Keeping every entry in one tree lets an append use
//! [`sled::Tree::apply_batch`], which sled applies atomically, also across a
//! crash: a message, its id entry, its feed head and every index entry it
//! causes are written together or not at all. Writes are staged in memory
//! first ([`Staged`]), so the indexer reads its own earlier writes in the
//! same batch. One writer at a time (a mutex) keeps the staged reads true.
//!
//! The log file is written and synced before the batch that points into
//! it, and the batch records the log's new committed length, so after a
//! crash the index never points past what the file holds; an unreferenced
//! tail is cut off at the next open.
//!
//! **Durability.** Every append syncs the log file and flushes sled before
//! returning, so a message that `publish` or `ingest` reported as stored
//! survives a crash.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Mutex;

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use thiserror::Error;

pub mod index;
pub mod msglog;

use self::index::{
    AboutState, ContactState, CorruptEntry, EventState, Kv, MemKv, RsvpState, Tally,
};
use self::msglog::{Location, LogError, MessageLog, PendingAppend};
use crate::message::{FeedId, Message, MessageId, SIGNED_LEN};
use crate::peerbook::PeerRecord;
use crate::validate::{self, Checked, FeedHead, ValidationError};

const LOG: u8 = b'L';
const ID: u8 = b'I';
const HEAD: u8 = b'H';
const FORK: u8 = b'K';
const PEER: u8 = b'P';
const BOOK: u8 = b'B';
const REFETCH: u8 = b'R';

/// Meta key of the store format.
const FORMAT_KEY: &[u8] = b"Mformat";
/// Meta key of the message log's committed length.
const LOG_END_KEY: &[u8] = b"Mlog_end";
/// The store layout this code reads and writes: 2 keeps message bytes in
/// the log file (1 kept them in sled).
const STORE_FORMAT: u8 = 2;
/// The message log file, inside the store directory.
const LOG_FILE: &str = "messages.log";
/// sled's segment size (tools that open the sled files directly must use
/// it too). sled reclaims a segment once half of it is stale,
/// so bigger segments waste less: 100,000 fixture messages took 154 MB of
/// sled files with the default 512 KiB, 105 MB with 8 MiB and 97 MB with
/// 16 MiB (the largest sled allows). The price is that even an empty
/// store occupies one segment.
pub const SLED_SEGMENT_SIZE: usize = 8 * 1024 * 1024;

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

/// A proof that an author wrote two histories of one feed: two messages
/// signed by the author, either at one sequence, or at consecutive
/// sequences where the later one's `previous` is not the earlier one's id
/// (where a peer's history meets ours). The headers say which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkProof {
    /// The forked feed.
    pub author: FeedId,
    /// The rival's sequence.
    pub sequence: u64,
    /// Header and signature of our message: at the same sequence (the
    /// first seen), or at the sequence before (our head then).
    pub kept: Vec<u8>,
    /// Header and signature of the rejected rival.
    pub rival: Vec<u8>,
}

/// Why ingest stopped before the end of its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Position of the offending message in the input.
    pub index: usize,
    /// Its claimed author.
    pub author: FeedId,
    /// Its claimed sequence.
    pub sequence: u64,
    /// What was wrong.
    pub error: ValidationError,
}

/// The outcome of [`Store::ingest`].
#[derive(Debug, Default)]
pub struct IngestReport {
    /// Messages appended, in input order.
    pub accepted: Vec<Message>,
    /// Messages already held (same id), skipped.
    pub duplicates: usize,
    /// Forks detected (the rival was rejected, the proof recorded).
    pub forks: Vec<ForkProof>,
    /// Messages after a fork in the same batch, of the other history:
    /// dropped, not stored.
    pub rivals: usize,
    /// The first invalid message; nothing after it was stored.
    pub rejected: Option<Rejection>,
    /// Events whose state, RSVPs or admissions changed, in first-touched order.
    pub touched_events: Vec<MessageId>,
    /// Follows and blocks among the accepted messages, in input order.
    pub contacts: Vec<ContactChange>,
}

/// A contact message that was appended: `author` now follows and/or
/// blocks `contact` as `state` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContactChange {
    /// Who wrote the contact message.
    pub author: FeedId,
    /// The feed it is about.
    pub contact: FeedId,
    /// The author's stance now.
    pub state: ContactState,
}

impl IngestReport {
    /// The message that [`Store::publish`] appended (its report holds
    /// exactly one accepted message).
    pub fn message(&self) -> Option<&Message> {
        self.accepted.last()
    }

    /// Adds what a later append reported (several appends, one report).
    pub fn merge(&mut self, later: IngestReport) {
        self.accepted.extend(later.accepted);
        self.duplicates += later.duplicates;
        self.forks.extend(later.forks);
        self.rivals += later.rivals;
        if self.rejected.is_none() {
            self.rejected = later.rejected;
        }
        for event in later.touched_events {
            if !self.touched_events.contains(&event) {
                self.touched_events.push(event);
            }
        }
        self.contacts.extend(later.contacts);
    }
}

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

/// How far this home has published each of its own feeds, kept in a small
/// JSON file beside the store directory (`NAME.published`, e.g.
/// `HOME/store.published`: `{"@….ed25519": 12}`), so that it survives the
/// store's loss. A store that holds less of a feed than was published
/// from it refuses to publish more to it: the next message would start a
/// second history that every peer holding the first rejects as a fork.
struct PublishedMark {
    path: std::path::PathBuf,
    heads: Mutex<BTreeMap<FeedId, u64>>,
}

impl PublishedMark {
    /// The mark of the store at `store_dir`.
    fn path_for(store_dir: &Path) -> std::path::PathBuf {
        let mut name = store_dir
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "store".into());
        name.push(".published");
        store_dir.with_file_name(name)
    }

    fn load(store_dir: &Path) -> Result<PublishedMark, StoreError> {
        let path = PublishedMark::path_for(store_dir);
        let bad = |reason: String| StoreError::PublishedMark {
            path: path.display().to_string(),
            reason,
        };
        let heads = match std::fs::read(&path) {
            Ok(bytes) if bytes.len() > 1024 * 1024 => return Err(bad("larger than 1 MiB".into())),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Every store has one from its first open: a key and a
                // missing store without it is a home from before the mark.
                let mark = PublishedMark {
                    path: path.clone(),
                    heads: Mutex::new(BTreeMap::new()),
                };
                mark.write(&BTreeMap::new())
                    .map_err(|e| bad(e.to_string()))?;
                return Ok(mark);
            }
            Err(e) => return Err(bad(e.to_string())),
        };
        Ok(PublishedMark {
            path,
            heads: Mutex::new(heads),
        })
    }

    /// Whether the store at `store_dir` has a mark file.
    fn exists_for(store_dir: &Path) -> bool {
        PublishedMark::path_for(store_dir).exists()
    }

    fn get(&self, feed: &FeedId) -> Option<u64> {
        self.heads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(feed)
            .copied()
    }

    /// Sets `feed`'s mark and writes the file (whole, synced, renamed into
    /// place, so it is never half written).
    fn set(&self, feed: FeedId, sequence: u64) -> std::io::Result<()> {
        let mut heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        heads.insert(feed, sequence);
        self.write(&heads)
    }

    fn write(&self, heads: &BTreeMap<FeedId, u64>) -> std::io::Result<()> {
        let text = serde_json::to_vec(heads).map_err(std::io::Error::other)?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&text)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        crate::home::sync_parent(&self.path)
    }
}

/// The node's store.
pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    log: MessageLog,
    writer: Mutex<()>,
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
    fn into_batch(self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (k, v) in self.writes {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        batch
    }
}

fn log_key(author: &FeedId, sequence: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(41);
    k.push(LOG);
    k.extend_from_slice(&author.0);
    k.extend_from_slice(&sequence.to_be_bytes());
    k
}

fn feed_key(prefix: u8, author: &FeedId) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(prefix);
    k.extend_from_slice(&author.0);
    k
}

fn book_key(addr: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + addr.len());
    k.push(BOOK);
    k.extend_from_slice(addr.as_bytes());
    k
}

fn id_key(id: &MessageId) -> Vec<u8> {
    let mut k = Vec::with_capacity(33);
    k.push(ID);
    k.extend_from_slice(&id.0);
    k
}

fn encode_head(head: &FeedHead) -> Vec<u8> {
    let mut v = Vec::with_capacity(40);
    v.extend_from_slice(&head.sequence.to_be_bytes());
    v.extend_from_slice(&head.id.0);
    v
}

fn decode_head(key: &[u8], v: &[u8]) -> Result<FeedHead, StoreError> {
    let corrupt = || StoreError::CorruptLog {
        key: hex::encode(key),
        reason: "feed head is not 40 bytes".into(),
    };
    let seq: [u8; 8] = v
        .get(..8)
        .ok_or_else(corrupt)?
        .try_into()
        .map_err(|_| corrupt())?;
    let id: [u8; 32] = v
        .get(8..40)
        .ok_or_else(corrupt)?
        .try_into()
        .map_err(|_| corrupt())?;
    Ok(FeedHead {
        sequence: u64::from_be_bytes(seq),
        id: MessageId(id),
    })
}

fn decode_location(key: &[u8], v: &[u8]) -> Result<Location, StoreError> {
    Location::decode(v).ok_or_else(|| StoreError::CorruptLog {
        key: hex::encode(key),
        reason: "log entry is not a location".into(),
    })
}

fn u64_value(key: &[u8], v: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = v.try_into().map_err(|_| StoreError::CorruptLog {
        key: hex::encode(key),
        reason: "not an 8-byte number".into(),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

fn feed_of_key(key: &[u8]) -> Option<FeedId> {
    Some(FeedId(key.get(1..33)?.try_into().ok()?))
}

/// The sequence in a `prefix ‖ feed ‖ sequence` key.
fn sequence_of_key(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(33..41)?.try_into().ok()?))
}

/// Where a message stands relative to what the store holds of its feed.
enum Position {
    /// The next message of the feed.
    Next,
    /// Already held.
    Duplicate,
    /// A different message at a held sequence, or the next sequence with
    /// a `previous` that is not our head: another history of the feed.
    /// `kept` is our message (at the same sequence, or our head).
    Fork { kept: Vec<u8> },
    /// A later message of a history that forked from ours earlier in this
    /// batch: not stored, not an error.
    Rival,
}

impl Position {
    /// `msg` against the header and signature of the message already held
    /// (or being appended) at its sequence.
    fn against(held_signed: &[u8], msg: &Message) -> Position {
        if held_signed == msg.signed_bytes() {
            Position::Duplicate
        } else {
            Position::Fork {
                kept: held_signed.to_vec(),
            }
        }
    }
}

impl Store {
    /// Opens (or creates) the store in `path`. Damage sled detects in its
    /// own files is [`StoreError::DatabaseDamaged`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_inner(path).map_err(|e| match e {
            StoreError::Db(sled::Error::Corruption { .. })
            | StoreError::Log(LogError::RolledBack { .. }) => StoreError::DatabaseDamaged {
                path: path.display().to_string(),
                reason: e.to_string(),
            },
            other => other,
        })
    }

    fn open_inner(path: &Path) -> Result<Store, StoreError> {
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
        match tree.get(FORMAT_KEY)? {
            Some(v) if v[..] == [STORE_FORMAT] => {}
            Some(v) => {
                return Err(StoreError::Format {
                    path: path.display().to_string(),
                    found: v.first().copied().unwrap_or(0),
                });
            }
            None if tree.scan_prefix([LOG]).next().is_some() => {
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
        let log = MessageLog::open(&path.join(LOG_FILE), committed)?;
        Ok(Store {
            db,
            tree,
            log,
            writer: Mutex::new(()),
            published: PublishedMark::load(path)?,
        })
    }

    /// Reads the message a log entry points at.
    fn logged_message(&self, key: &[u8], location: &[u8]) -> Result<Message, StoreError> {
        let bytes = self.log.read(decode_location(key, location)?)?;
        Message::decode(bytes).map_err(|e| StoreError::CorruptLog {
            key: hex::encode(key),
            reason: e.to_string(),
        })
    }

    /// Reads message `sequence` of `author` from where its log entry
    /// (`location`) points, and checks that it is the message that was
    /// stored: a whole record that decodes, naming this feed and sequence,
    /// with content (if present) matching the content hash, and whose id
    /// entry points at the same record (so a changed header or signature
    /// shows). Anything else is [`StoreError::Damaged`]: what is read for
    /// sending or export is never something a peer would refuse.
    fn feed_record(
        &self,
        author: &FeedId,
        sequence: u64,
        location: &[u8],
    ) -> Result<Message, StoreError> {
        let damaged = |reason: &str| StoreError::Damaged {
            author: *author,
            sequence,
            reason: reason.to_owned(),
        };
        let key = log_key(author, sequence);
        let bytes = match self.log.read(decode_location(&key, location)?) {
            Ok(bytes) => bytes,
            Err(LogError::BadLocation { .. }) => {
                return Err(damaged("no whole record where the index points"));
            }
            Err(e) => return Err(e.into()),
        };
        let msg = Message::decode(bytes).map_err(|_| damaged("the record is not a message"))?;
        if msg.author() != *author || msg.sequence() != sequence {
            return Err(damaged("the record holds another message"));
        }
        if let Some(content) = msg.content()
            && blake3::hash(content).as_bytes() != &msg.header().content_hash
        {
            return Err(damaged("its content does not match its hash"));
        }
        if self.tree.get(id_key(&msg.id()))?.as_deref() != Some(location) {
            return Err(damaged("its header or signature changed"));
        }
        Ok(msg)
    }

    /// The head of a feed, if the store holds any of it.
    pub fn head(&self, author: &FeedId) -> Result<Option<FeedHead>, StoreError> {
        let key = feed_key(HEAD, author);
        match self.tree.get(&key)? {
            Some(v) => decode_head(&key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Every feed held, with its head.
    pub fn feeds(&self) -> Result<Vec<(FeedId, FeedHead)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([HEAD]) {
            let (k, v) = item?;
            let author = feed_of_key(&k).ok_or_else(|| StoreError::CorruptLog {
                key: hex::encode(&k),
                reason: "short head key".into(),
            })?;
            out.push((author, decode_head(&k, &v)?));
        }
        Ok(out)
    }

    /// Signs `content` as the next message of `key`'s feed, appends and
    /// indexes it, and returns once it is durable. The report holds the
    /// message ([`IngestReport::message`]) and what it touched.
    pub fn publish(
        &self,
        key: &SigningKey,
        content: &[u8],
        timestamp: i64,
    ) -> Result<IngestReport, StoreError> {
        let _writer = self.lock();
        let author = FeedId(key.verifying_key().to_bytes());
        let head = self.head(&author)?;
        if let Some((holds, published)) = self.behind_published(&author, head.as_ref()) {
            return Err(StoreError::OwnFeedBehind {
                feed: author,
                holds,
                published,
            });
        }
        let (sequence, previous) = match head {
            Some(h) => (h.sequence + 1, h.id),
            None => (1, MessageId::default()),
        };
        let msg = Message::sign(key, sequence, previous, timestamp, content)
            .map_err(ValidationError::from)?;
        let report = self.ingest_locked(Checked::new(vec![msg]))?;
        if let Some(rejection) = report.rejected {
            return Err(StoreError::Rejected(rejection.error));
        }
        if report.accepted.len() != 1 {
            return Err(StoreError::CorruptLog {
                key: hex::encode(author.0),
                reason: "published message was not appended".into(),
            });
        }
        // The message is durable whatever happens to the mark; a mark
        // left behind only makes the check above weaker.
        if let Err(e) = self.published.set(author, report.accepted[0].sequence()) {
            tracing::warn!(path = %self.published.path.display(), error = %e, "cannot record how far this home published its feed");
        }
        Ok(report)
    }

    /// `(held, published)` when the store holds less of `feed` than this
    /// home published of it.
    fn behind_published(&self, feed: &FeedId, head: Option<&FeedHead>) -> Option<(u64, u64)> {
        let holds = head.map_or(0, |h| h.sequence);
        let published = self.published.get(feed)?;
        (holds < published).then_some((holds, published))
    }

    /// When the store holds less of our own `feed` than this home
    /// published: `(held, published)`. Publishing is refused until then.
    pub fn own_feed_behind(&self, feed: &FeedId) -> Result<Option<(u64, u64)>, StoreError> {
        Ok(self.behind_published(feed, self.head(feed)?.as_ref()))
    }

    /// True when the store at `path` was opened before by a potluck that
    /// records how far its home published (every store since this one).
    pub fn has_published_mark(path: &Path) -> bool {
        PublishedMark::exists_for(path)
    }

    /// Records that this home published `feed` at least up to `sequence`
    /// (for a home whose store is gone and whose record of it predates
    /// this file: at least one message).
    pub fn mark_published_at_least(&self, feed: FeedId, sequence: u64) -> Result<(), StoreError> {
        if self.published.get(&feed).unwrap_or(0) >= sequence {
            return Ok(());
        }
        self.set_published(feed, sequence)
    }

    /// Records the published mark of `feed`, or says which file failed.
    fn set_published(&self, feed: FeedId, sequence: u64) -> Result<(), StoreError> {
        self.published
            .set(feed, sequence)
            .map_err(|e| StoreError::PublishedMark {
                path: self.published.path.display().to_string(),
                reason: e.to_string(),
            })
    }

    /// Accepts that `feed`'s messages after what the store holds are lost:
    /// publishing goes on from the store's head (peers that hold the lost
    /// messages will see a fork).
    pub fn accept_published_loss(&self, feed: &FeedId) -> Result<u64, StoreError> {
        let holds = self.head(feed)?.map_or(0, |h| h.sequence);
        self.set_published(*feed, holds)?;
        Ok(holds)
    }

    /// The one ingest path: validates messages (signatures in batches),
    /// appends the valid ones with their index entries in one atomic
    /// batch, and flushes.
    ///
    /// Messages of one feed must come in sequence order; feeds may be
    /// interleaved. Ingest stops at the first invalid message: the valid
    /// ones before it are stored, nothing after it is.
    pub fn ingest(&self, msgs: Vec<Message>) -> Result<IngestReport, StoreError> {
        self.ingest_checked(Checked::new(msgs))
    }

    /// [`Store::ingest`] for messages whose signatures were already checked
    /// (so that checking the next batch can overlap storing this one).
    pub fn ingest_checked(&self, batch: Checked) -> Result<IngestReport, StoreError> {
        let _writer = self.lock();
        self.ingest_locked(batch)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // A panic while holding the lock leaves no partial state behind
        // (nothing is applied until the batch), so a poisoned lock is safe.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ingest_locked(&self, batch: Checked) -> Result<IngestReport, StoreError> {
        let (msgs, bad_signature) = batch.into_parts();
        let mut report = IngestReport::default();
        // Pass 1: everything but signatures, against heads staged in memory.
        let mut heads: HashMap<FeedId, Option<FeedHead>> = HashMap::new();
        // Where each message this batch appends sits in `msgs`: a message
        // repeated later in the same batch (a bundle may hold a record
        // twice) is a duplicate of it, not a break in the chain.
        let mut appending: HashMap<(FeedId, u64), usize> = HashMap::new();
        let mut positions = Vec::with_capacity(msgs.len());
        let mut limit = msgs.len();
        // Feeds that forked in this batch: the rest of the other history
        // is dropped (it can never chain onto ours), not a reason to stop.
        let mut forked: std::collections::HashSet<FeedId> = Default::default();
        for (i, msg) in msgs.iter().enumerate() {
            let author = msg.author();
            let reject = |report: &mut IngestReport, error| {
                report.rejected = Some(Rejection {
                    index: i,
                    author,
                    sequence: msg.sequence(),
                    error,
                });
            };
            let head = match heads.get(&author) {
                Some(h) => *h,
                None => {
                    let h = self.head(&author)?;
                    heads.insert(author, h);
                    h
                }
            };
            let earlier = appending
                .get(&(author, msg.sequence()))
                .map(|&j| msgs[j].signed_bytes());
            let position = match self.position(head.as_ref(), earlier, msg)? {
                Ok(p) => p,
                // After a fork in this batch, a message that does not chain
                // onto our history belongs to the other one.
                Err(
                    ValidationError::BadSequence { .. } | ValidationError::WrongPrevious { .. },
                ) if forked.contains(&author) => Position::Rival,
                Err(error) => {
                    // The next sequence, chained to something other than
                    // our head: the peer holds another history. Our head
                    // message and this one prove it (once the signature
                    // checks, in pass 2).
                    let diverges = matches!(error, ValidationError::WrongPrevious { .. })
                        && head.is_some_and(|h| h.sequence.checked_add(1) == Some(msg.sequence()));
                    let kept = match head {
                        Some(h) if diverges => match appending.get(&(author, h.sequence)) {
                            Some(&j) => Some(msgs[j].signed_bytes().to_vec()),
                            None => self.verified_signed(&author, h.sequence)?,
                        },
                        _ => None,
                    };
                    match kept {
                        Some(kept) => Position::Fork { kept },
                        None => {
                            reject(&mut report, error);
                            limit = i;
                            break;
                        }
                    }
                }
            };
            let position = match position {
                // One proof per feed and batch is enough.
                Position::Fork { .. } if !forked.insert(author) => Position::Rival,
                other => other,
            };
            if let Position::Next = position {
                appending.insert((author, msg.sequence()), i);
                heads.insert(
                    author,
                    Some(FeedHead {
                        sequence: msg.sequence(),
                        id: msg.id(),
                    }),
                );
            }
            positions.push(position);
        }
        // Pass 2: the signatures, checked already; the earliest failure of
        // either pass wins.
        if let Some((i, error)) = bad_signature
            && i < limit
        {
            let msg = &msgs[i];
            report.rejected = Some(Rejection {
                index: i,
                author: msg.author(),
                sequence: msg.sequence(),
                error,
            });
            limit = i;
        }
        // Pass 3: stage the valid prefix and apply it atomically.
        let mut touched = std::collections::HashSet::new();
        let mut staged = Staged {
            tree: &self.tree,
            writes: BTreeMap::new(),
        };
        let mut pending = self.log.begin();
        for (msg, position) in msgs.into_iter().take(limit).zip(positions) {
            match position {
                Position::Duplicate => report.duplicates += 1,
                Position::Rival => report.rivals += 1,
                Position::Fork { kept } => {
                    let proof = ForkProof {
                        author: msg.author(),
                        sequence: msg.sequence(),
                        kept,
                        rival: msg.signed_bytes().to_vec(),
                    };
                    let key = log_key(&proof.author, proof.sequence);
                    let mut fork_key = key;
                    fork_key[0] = FORK;
                    if staged.get(&fork_key)?.is_none() {
                        let mut value = proof.kept.clone();
                        value.extend_from_slice(&proof.rival);
                        staged.put(fork_key, value);
                        tracing::warn!(feed = %proof.author, sequence = proof.sequence, "fork detected; keeping the first message");
                    }
                    report.forks.push(proof);
                }
                Position::Next => {
                    stage_append(&mut staged, &mut pending, &msg, &mut report, &mut touched)?;
                    report.accepted.push(msg);
                }
            }
        }
        if !pending.is_empty() {
            // The records must be on disk before any entry points at them.
            self.log.write(&pending)?;
            staged.put(LOG_END_KEY.to_vec(), pending.end().to_be_bytes().to_vec());
        }
        if !staged.writes.is_empty() {
            self.tree.apply_batch(staged.into_batch())?;
            // sled now points into the records, whether or not the flush
            // below succeeds, so they must never be overwritten.
            self.log.mark_committed(&pending);
            self.db.flush()?;
            self.log.note_durable()?;
        }
        Ok(report)
    }

    /// Classifies a message against the feed's head without checking its
    /// signature (pass 2 does that for every position). `earlier` is the
    /// header and signature of the message at the same sequence that this
    /// batch appends, if any. The outer error is the database's; the inner
    /// one is the message's.
    fn position(
        &self,
        head: Option<&FeedHead>,
        earlier: Option<&[u8]>,
        msg: &Message,
    ) -> Result<Result<Position, ValidationError>, StoreError> {
        if let Err(e) = validate::check_standalone(msg) {
            return Ok(Err(e));
        }
        if let Some(held_signed) = earlier {
            return Ok(Ok(Position::against(held_signed, msg)));
        }
        if let Some(h) = head
            && (1..=h.sequence).contains(&msg.sequence())
            && let Some(location) = self.tree.get(log_key(&msg.author(), msg.sequence()))?
        {
            let key = log_key(&msg.author(), msg.sequence());
            let held = self
                .log
                .read_prefix(decode_location(&key, &location)?, SIGNED_LEN)?;
            let position = Position::against(&held, msg);
            if let Position::Fork { .. } = position {
                // Only a held message that verifies proves a fork: a copy
                // the disk damaged differs from the genuine one too.
                match self.feed_record(&msg.author(), msg.sequence(), &location) {
                    Err(StoreError::Damaged { reason, .. }) => {
                        tracing::warn!(feed = %msg.author(), sequence = msg.sequence(), %reason, "our copy of this message is damaged; `potluck fsck --repair` cuts it so that it is fetched again");
                        return Ok(Ok(Position::Duplicate));
                    }
                    other => {
                        other?;
                    }
                }
            }
            return Ok(Ok(position));
        }
        Ok(validate::check_chain(head, msg).map(|()| Position::Next))
    }

    /// Header and signature of message `sequence` of `author`, when it is
    /// held and verifies against the index (a damaged copy proves nothing).
    fn verified_signed(
        &self,
        author: &FeedId,
        sequence: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(location) = self.tree.get(log_key(author, sequence))? else {
            return Ok(None);
        };
        match self.feed_record(author, sequence, &location) {
            Ok(msg) => Ok(Some(msg.signed_bytes().to_vec())),
            Err(StoreError::Damaged { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Feeds with a recorded fork proof, with the sequence of the first.
    pub fn forked_feeds(&self) -> Result<Vec<(FeedId, u64)>, StoreError> {
        let mut out: Vec<(FeedId, u64)> = Vec::new();
        for item in self.tree.scan_prefix([FORK]) {
            let (k, _) = item?;
            let (Some(feed), Some(sequence)) = (feed_of_key(&k), sequence_of_key(&k)) else {
                continue;
            };
            if out.last().is_none_or(|(f, _)| *f != feed) {
                out.push((feed, sequence));
            }
        }
        Ok(out)
    }

    /// The message with this id.
    pub fn message(&self, id: &MessageId) -> Result<Option<Message>, StoreError> {
        let key = id_key(id);
        let Some(location) = self.tree.get(&key)? else {
            return Ok(None);
        };
        let msg = self.logged_message(&key, &location)?;
        if msg.id() != *id {
            return Err(StoreError::CorruptLog {
                key: hex::encode(&key),
                reason: "id entry points at another message".into(),
            });
        }
        Ok(Some(msg))
    }

    /// The message at `sequence` of `author`'s feed, checked as
    /// [`Store::feed_messages`] checks it.
    pub fn feed_message(
        &self,
        author: &FeedId,
        sequence: u64,
    ) -> Result<Option<Message>, StoreError> {
        let key = log_key(author, sequence);
        match self.tree.get(&key)? {
            Some(v) => self.feed_record(author, sequence, &v).map(Some),
            None => Ok(None),
        }
    }

    /// The messages of a feed from `from_sequence` on, in order. Each is
    /// checked against the index as it is read: a message the disk damaged
    /// is an [`StoreError::Damaged`] item, never returned as if whole.
    pub fn feed_messages(
        &self,
        author: &FeedId,
        from_sequence: u64,
    ) -> impl Iterator<Item = Result<Message, StoreError>> + '_ {
        let start = log_key(author, from_sequence);
        let end = log_key(author, u64::MAX);
        let author = *author;
        self.tree.range(start..=end).map(move |item| {
            let (k, v) = item?;
            let sequence = sequence_of_key(&k).ok_or_else(|| StoreError::CorruptLog {
                key: hex::encode(&k),
                reason: "short log key".into(),
            })?;
            self.feed_record(&author, sequence, &v)
        })
    }

    /// Fork proofs recorded against a feed.
    pub fn forks(&self, author: &FeedId) -> Result<Vec<ForkProof>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(feed_key(FORK, author)) {
            let (k, v) = item?;
            let sequence = sequence_of_key(&k).ok_or_else(|| StoreError::CorruptLog {
                key: hex::encode(&k),
                reason: "short fork key".into(),
            })?;
            if v.len() != 2 * SIGNED_LEN {
                return Err(StoreError::CorruptLog {
                    key: hex::encode(&k),
                    reason: "fork proof is not two signed headers".into(),
                });
            }
            out.push(ForkProof {
                author: *author,
                sequence,
                kept: v[..SIGNED_LEN].to_vec(),
                rival: v[SIGNED_LEN..].to_vec(),
            });
        }
        Ok(out)
    }

    /// The current state of an event.
    pub fn event(&self, id: &MessageId) -> Result<Option<EventState>, StoreError> {
        index::read(&self.reader(), &index::event_key(id))
    }

    /// The current RSVPs of an event, one per person.
    pub fn rsvps(&self, event: &MessageId) -> Result<Vec<(FeedId, RsvpState)>, StoreError> {
        self.entries_by_feed(&index::rsvp_prefix(event))
    }

    /// One person's current answer to an event.
    pub fn rsvp(
        &self,
        event: &MessageId,
        author: &FeedId,
    ) -> Result<Option<RsvpState>, StoreError> {
        index::read(&self.reader(), &index::rsvp_key(event, author))
    }

    /// Index entries under `prefix` whose key ends in a feed id, decoded.
    fn entries_by_feed<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<(FeedId, T)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(prefix) {
            let (k, v) = item?;
            let corrupt = |reason: String| CorruptEntry {
                key: hex::encode(&k),
                reason,
            };
            let feed: [u8; 32] = k
                .get(prefix.len()..prefix.len() + 32)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| corrupt("key does not end in a feed id".into()))?;
            let state = serde_json::from_slice(&v).map_err(|e| corrupt(e.to_string()))?;
            out.push((FeedId(feed), state));
        }
        Ok(out)
    }

    /// The organizer's latest decision per person, for an event.
    pub fn admissions(
        &self,
        event: &MessageId,
    ) -> Result<Vec<(FeedId, index::AdmissionState)>, StoreError> {
        self.entries_by_feed(&index::admission_prefix(event))
    }

    /// The tally of an event's current RSVPs.
    pub fn tally(&self, event: &MessageId) -> Result<Tally, StoreError> {
        Ok(index::read(&self.reader(), &index::tally_key(event))?.unwrap_or_default())
    }

    /// What a person says about themselves.
    pub fn about(&self, feed: &FeedId) -> Result<Option<AboutState>, StoreError> {
        index::read(&self.reader(), &index::about_key(feed))
    }

    /// Events that have not finished by `now_ms` (end, or start when there
    /// is no end, at or after now), sorted by start; with a `limit`, the
    /// first `limit` of them.
    ///
    /// With a limit the work does not grow with the number of upcoming
    /// events: the ones going on now started within the last
    /// [`index::LONG_EVENT_MS`] or are long events, and the rest are the
    /// first entries of the by-start index from now on.
    pub fn upcoming_events(
        &self,
        now_ms: i64,
        limit: Option<usize>,
    ) -> Result<Vec<EventState>, StoreError> {
        let Some(limit) = limit else {
            let from = time_bound(index::prefix::EVENT_BY_FINISH, now_ms);
            return self
                .states_of(self.time_entries(from, vec![index::prefix::EVENT_BY_FINISH + 1])?);
        };
        let recent = now_ms.saturating_sub(index::LONG_EVENT_MS);
        let started_recently = self.time_entries(
            time_bound(index::prefix::EVENT_BY_START, recent),
            time_bound(index::prefix::EVENT_BY_START, now_ms),
        )?;
        let long = self.time_entries(
            vec![index::prefix::LONG_EVENT],
            time_bound(index::prefix::LONG_EVENT, recent),
        )?;
        // Going on now: started before now, not finished yet.
        let mut found: Vec<_> = started_recently
            .into_iter()
            .chain(long)
            .filter(|&(_, _, finish)| finish >= now_ms)
            .collect();
        found.sort_unstable();
        found.truncate(limit);
        // Everything starting from now on comes after what is going on.
        let mut later = self.tree.range(
            time_bound(index::prefix::EVENT_BY_START, now_ms)
                ..vec![index::prefix::EVENT_BY_START + 1],
        );
        while found.len() < limit {
            let Some(item) = later.next() else { break };
            let (k, v) = item?;
            found.push(decode_time_entry(&k, &v)?);
        }
        self.states_of(found)
    }

    /// Events that finished before `now_ms`, sorted by start; with a
    /// `limit`, the last (most recent) `limit` of them.
    pub fn past_events(
        &self,
        now_ms: i64,
        limit: Option<usize>,
    ) -> Result<Vec<EventState>, StoreError> {
        let Some(limit) = limit else {
            let to = time_bound(index::prefix::EVENT_BY_FINISH, now_ms);
            return self.states_of(self.time_entries(vec![index::prefix::EVENT_BY_FINISH], to)?);
        };
        // Walk back from now by start, skipping what is still going on.
        let mut found = Vec::new();
        let earlier = self.tree.range(
            vec![index::prefix::EVENT_BY_START]..time_bound(index::prefix::EVENT_BY_START, now_ms),
        );
        for item in earlier.rev() {
            if found.len() == limit {
                break;
            }
            let (k, v) = item?;
            let entry = decode_time_entry(&k, &v)?;
            if entry.2 < now_ms {
                found.push(entry);
            }
        }
        found.reverse();
        self.states_of(found)
    }

    /// Every known event, sorted by start.
    pub fn all_events(&self) -> Result<Vec<EventState>, StoreError> {
        self.states_of(self.time_entries(
            vec![index::prefix::EVENT_BY_START],
            vec![index::prefix::EVENT_BY_START + 1],
        )?)
    }

    /// The time-index entries in `from..to` as `(start, event, finish)`,
    /// sorted by start.
    fn time_entries(
        &self,
        from: Vec<u8>,
        to: Vec<u8>,
    ) -> Result<Vec<(i64, MessageId, i64)>, StoreError> {
        let mut found = Vec::new();
        for item in self.tree.range(from..to) {
            let (k, v) = item?;
            found.push(decode_time_entry(&k, &v)?);
        }
        found.sort_unstable();
        Ok(found)
    }

    /// The states of events named by a time index, in the given order.
    fn states_of(&self, events: Vec<(i64, MessageId, i64)>) -> Result<Vec<EventState>, StoreError> {
        events
            .into_iter()
            .map(|(_, id, _)| {
                Ok(self.event(&id)?.ok_or_else(|| CorruptEntry {
                    key: hex::encode(index::event_key(&id)),
                    reason: "a time index names a missing event".into(),
                })?)
            })
            .collect()
    }

    /// Resolves a full event id or a unique prefix of at least
    /// [`MIN_ID_PREFIX`] characters after `%`, among known events.
    pub fn resolve_event(&self, text: &str) -> Result<MessageId, StoreError> {
        let trimmed = text.trim();
        if let Ok(id) = MessageId::parse(trimmed) {
            return match self.event(&id)? {
                Some(_) => Ok(id),
                None => Err(StoreError::UnknownEvent(trimmed.into())),
            };
        }
        let body = trimmed.strip_prefix('%').unwrap_or(trimmed);
        let body = body.strip_suffix(".blake3").unwrap_or(body);
        if body.chars().count() < MIN_ID_PREFIX {
            return Err(StoreError::PrefixTooShort(trimmed.into()));
        }
        let is_base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
        if !body.chars().all(is_base64) {
            return Err(StoreError::UnknownEvent(trimmed.into()));
        }
        // Whole 4-character groups of base64 decode to a byte prefix to
        // scan; the remaining characters are matched on the text form.
        let whole = body.len() / 4 * 4;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&body[..whole])
            .map_err(|_| StoreError::UnknownEvent(trimmed.into()))?;
        let mut scan = vec![index::prefix::EVENT];
        scan.extend_from_slice(&bytes);
        let mut found = Vec::new();
        for item in self.tree.scan_prefix(scan) {
            let (k, _) = item?;
            let Some(raw) = k.get(1..33).and_then(|s| <[u8; 32]>::try_from(s).ok()) else {
                continue;
            };
            let id = MessageId(raw);
            if id.base64().starts_with(body) {
                found.push(id);
                if found.len() > 20 {
                    break;
                }
            }
        }
        match found.len() {
            0 => Err(StoreError::UnknownEvent(trimmed.into())),
            1 => Ok(found[0]),
            count => Err(StoreError::AmbiguousEvent {
                text: trimmed.into(),
                count,
            }),
        }
    }

    /// Re-verifies every message of every feed (signatures and chains) and
    /// checks the stored indexes against indexes rebuilt from the logs.
    pub fn fsck(&self) -> Result<FsckReport, StoreError> {
        let mut report = FsckReport::default();
        let rebuilt = self.rebuild_index(Some(&mut report), &BTreeMap::new())?;
        let stored = self.index_snapshot()?;
        report.index_entries = stored.len() as u64;
        for (k, v) in &rebuilt.0 {
            match stored.get(k) {
                None => report
                    .problems
                    .push(format!("index entry {} is missing", hex::encode(k))),
                Some(s) if s != v => report.problems.push(format!(
                    "index entry {} differs from the logs",
                    hex::encode(k)
                )),
                Some(_) => {}
            }
        }
        for k in stored.keys() {
            if !rebuilt.0.contains_key(k) {
                report.problems.push(format!(
                    "index entry {} has no source in the logs",
                    hex::encode(k)
                ));
            }
        }
        report.refetching = self
            .refetch_markers()?
            .into_iter()
            .filter(|&(_, now, before)| now < before)
            .collect();
        Ok(report)
    }

    /// Repairs what [`Store::fsck`] finds, in one atomic batch: every feed
    /// with a damaged or invalid message is cut back to the message before
    /// it (its log and id entries from there on, and its head), the head it
    /// had is remembered so that `fsck` shows the feed as being fetched
    /// again, and every index is rebuilt. The damaged bytes stay in the log
    /// file (it is append-only), but nothing points at them any more. Peers
    /// send the cut messages again, as for any feed that is behind: our
    /// clock now says less.
    pub fn repair(&self) -> Result<RepairReport, StoreError> {
        let _writer = self.lock();
        let mut found = FsckReport::default();
        self.rebuild_index(Some(&mut found), &BTreeMap::new())?;
        let rebuilt = self.rebuild_index(None, &found.damaged)?;
        let mut batch = sled::Batch::default();
        for p in index::prefix::ALL {
            for item in self.tree.scan_prefix([p]) {
                let (k, _) = item?;
                batch.remove(k);
            }
        }
        let mut report = RepairReport {
            index_entries: rebuilt.0.len(),
            ..RepairReport::default()
        };
        for (k, v) in rebuilt.0 {
            batch.insert(k, v);
        }
        let mut dropped = std::collections::HashSet::new();
        for (&author, &from) in &found.damaged {
            let old_head = self.head(&author)?.map_or(0, |h| h.sequence);
            for item in self
                .tree
                .range(log_key(&author, from)..=log_key(&author, u64::MAX))
            {
                let (k, v) = item?;
                dropped.insert(v.to_vec());
                batch.remove(k);
            }
            match from.checked_sub(1).filter(|&s| s > 0) {
                Some(kept) => {
                    // Everything before the cut verified.
                    let msg = self.feed_message(&author, kept)?.ok_or_else(|| {
                        StoreError::CorruptLog {
                            key: hex::encode(log_key(&author, kept)),
                            reason: "the message before a damaged one is missing".into(),
                        }
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
        if !dropped.is_empty() {
            for item in self.tree.scan_prefix([ID]) {
                let (k, v) = item?;
                if dropped.contains(&v[..]) {
                    batch.remove(k);
                }
            }
        }
        // Feeds that have caught up since an earlier repair are done.
        for (feed, _, _) in self.refetch_markers()? {
            if !found.damaged.contains_key(&feed) && self.refetching(&feed)?.is_none() {
                batch.remove(feed_key(REFETCH, &feed));
            }
        }
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(report)
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
        let old_log = std::fs::File::open(path.join(LOG_FILE)).map_err(io)?;
        // A tail an earlier open cut off (see `MessageLog::open`) follows
        // the log: it may hold messages sled forgot when it rolled back.
        let tail: Box<dyn std::io::Read> =
            match std::fs::File::open(msglog::tail_path(&path.join(LOG_FILE))) {
                Ok(file) => Box::new(file),
                Err(_) => Box::new(std::io::empty()),
            };
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

    /// The feeds `me` blocks: never stored, sent or shown.
    pub fn blocked_by(&self, me: &FeedId) -> Result<BTreeSet<FeedId>, StoreError> {
        Ok(self
            .contacts(me)?
            .into_iter()
            .filter(|(_, c)| c.blocking)
            .map(|(f, _)| f)
            .collect())
    }

    /// The feeds `author` follows or blocks, per its latest contact messages.
    pub fn contacts(&self, author: &FeedId) -> Result<Vec<(FeedId, ContactState)>, StoreError> {
        let key = index::contact_key(author, &FeedId([0; 32]));
        self.entries_by_feed(&key[..33])
    }

    /// What replication remembers about a peer (opaque bytes owned by
    /// `replicate::PeerMemory`).
    pub fn peer_memory(&self, peer: &FeedId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(feed_key(PEER, peer))?.map(|v| v.to_vec()))
    }

    /// Saves replication memory of a peer. Not flushed: losing it only
    /// costs a full clock exchange next time.
    pub fn set_peer_memory(&self, peer: &FeedId, memory: &[u8]) -> Result<(), StoreError> {
        self.tree.insert(feed_key(PEER, peer), memory)?;
        Ok(())
    }

    /// The peer book record of an address.
    pub fn peer_record(&self, addr: &str) -> Result<Option<PeerRecord>, StoreError> {
        let key = book_key(addr);
        match self.tree.get(&key)? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::CorruptLog {
                    key: hex::encode(&key),
                    reason: e.to_string(),
                }),
            None => Ok(None),
        }
    }

    /// Saves a peer book record. Not flushed: it is advice, not data.
    pub fn put_peer_record(&self, record: &PeerRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(record).unwrap_or_default();
        self.tree.insert(book_key(&record.addr), bytes)?;
        Ok(())
    }

    /// Every peer book record, peers that worked most recently first.
    pub fn peer_records(&self) -> Result<Vec<PeerRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([BOOK]) {
            let (k, v) = item?;
            match serde_json::from_slice(&v) {
                Ok(record) => out.push(record),
                // A damaged record is only advice lost: skip it.
                Err(e) => {
                    tracing::warn!(key = %hex::encode(&k), error = %e, "skipping a damaged peer record")
                }
            }
        }
        crate::peerbook::preferred_order(&mut out);
        Ok(out)
    }

    /// Peers with replication memory.
    pub fn remembered_peers(&self) -> Result<Vec<FeedId>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([PEER]) {
            let (k, _) = item?;
            if let Some(feed) = feed_of_key(&k) {
                out.push(feed);
            }
        }
        Ok(out)
    }

    /// Every stored index entry (not the logs), for checks and tests.
    pub fn index_snapshot(&self) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
        let mut stored = BTreeMap::new();
        for p in index::prefix::ALL {
            for item in self.tree.scan_prefix([p]) {
                let (k, v) = item?;
                stored.insert(k.to_vec(), v.to_vec());
            }
        }
        Ok(stored)
    }

    /// Rebuilds every index from the logs and replaces the stored indexes
    /// in one atomic batch. Returns the number of index entries written.
    pub fn reindex(&self) -> Result<usize, StoreError> {
        let _writer = self.lock();
        let rebuilt = self.rebuild_index(None, &BTreeMap::new())?;
        let mut batch = sled::Batch::default();
        for p in index::prefix::ALL {
            for item in self.tree.scan_prefix([p]) {
                let (k, _) = item?;
                batch.remove(k);
            }
        }
        let count = rebuilt.0.len();
        for (k, v) in rebuilt.0 {
            batch.insert(k, v);
        }
        self.tree.apply_batch(batch)?;
        self.db.flush()?;
        Ok(count)
    }

    /// Replays every feed into an in-memory index, each feed up to (not
    /// including) its sequence in `cuts`, if any. With a report, also
    /// re-verifies chains, signatures and the id and head entries, and
    /// notes in `report.damaged` where each damaged feed must be cut.
    fn rebuild_index(
        &self,
        mut report: Option<&mut FsckReport>,
        cuts: &BTreeMap<FeedId, u64>,
    ) -> Result<MemKv, StoreError> {
        let mut kv = MemKv::default();
        for (author, head) in self.feeds()? {
            let cut = cuts.get(&author).copied().unwrap_or(u64::MAX);
            let mut prev: Option<FeedHead> = None;
            let mut batch = Vec::new();
            // The first sequence found damaged or invalid in this feed.
            let mut first_bad: Option<u64> = None;
            for item in self.feed_messages(&author, 1) {
                let msg = match item {
                    Err(StoreError::Damaged { sequence, .. }) if sequence >= cut => break,
                    Err(StoreError::Damaged {
                        sequence, reason, ..
                    }) if report.is_some() => {
                        if let Some(r) = report.as_deref_mut() {
                            r.problems
                                .push(format!("{author} #{sequence}: damaged: {reason}"));
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
                    let logged = self.tree.get(log_key(&author, msg.sequence()))?;
                    match self.tree.get(id_key(&msg.id()))? {
                        Some(loc) if Some(&loc) == logged.as_ref() => {}
                        _ => r.problems.push(format!(
                            "{author} #{}: id entry missing or wrong",
                            msg.sequence()
                        )),
                    }
                }
                prev = Some(FeedHead {
                    sequence: msg.sequence(),
                    id: msg.id(),
                });
                index::apply(&mut kv, &msg)?;
                if report.is_some() {
                    batch.push(msg);
                }
            }
            if let Some(r) = report.as_deref_mut() {
                r.feeds += 1;
                if let Err((i, e)) = validate::verify_signatures_parallel(&batch) {
                    let sequence = batch[i].sequence();
                    r.problems.push(format!("{author} #{sequence}: {e}"));
                    first_bad = Some(first_bad.map_or(sequence, |b| b.min(sequence)));
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
        Ok(kv)
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

    /// Bytes the store occupies on disk: sled's files and the message log.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()? + self.log.size()?)
    }
}

/// The first key of time index `prefix` at or after `instant_ms`.
fn time_bound(prefix: u8, instant_ms: i64) -> Vec<u8> {
    [&[prefix][..], &index::instant_bytes(instant_ms)].concat()
}

/// A time-index entry as `(start, event, finish)`: by-start and long-event
/// entries have the start in the key and the finish as value, by-finish
/// entries the other way round.
fn decode_time_entry(key: &[u8], value: &[u8]) -> Result<(i64, MessageId, i64), StoreError> {
    let corrupt = || CorruptEntry {
        key: hex::encode(key),
        reason: "time entry is not an instant, an event id and an instant".into(),
    };
    let in_key = key
        .get(1..9)
        .and_then(index::instant_of_bytes)
        .ok_or_else(corrupt)?;
    let id = index::event_of_time_key(key).ok_or_else(corrupt)?;
    let in_value = index::instant_of_bytes(value).ok_or_else(corrupt)?;
    Ok(if key.first() == Some(&index::prefix::EVENT_BY_FINISH) {
        (in_value, id, in_key)
    } else {
        (in_key, id, in_value)
    })
}

/// Stages a validated next message: log, id, head, and index entries.
fn stage_append(
    staged: &mut Staged<'_>,
    pending: &mut PendingAppend,
    msg: &Message,
    report: &mut IngestReport,
    touched: &mut std::collections::HashSet<MessageId>,
) -> Result<(), StoreError> {
    let author = msg.author();
    let location = pending.push(msg.bytes()).encode().to_vec();
    staged.put(id_key(&msg.id()), location.clone());
    staged.put(log_key(&author, msg.sequence()), location);
    staged.put(
        feed_key(HEAD, &author),
        encode_head(&FeedHead {
            sequence: msg.sequence(),
            id: msg.id(),
        }),
    );
    match index::apply(staged, msg)? {
        index::Indexed::Applied { event, contact } => {
            if let Some(event) = event
                && touched.insert(event)
            {
                report.touched_events.push(event);
            }
            if let Some((contact, state)) = contact {
                report.contacts.push(ContactChange {
                    author,
                    contact,
                    state,
                });
            }
        }
        index::Indexed::Ignored(why) => {
            tracing::debug!(id = %msg.id(), why, "message stored, not indexed");
        }
        index::Indexed::Invalid(e) => {
            tracing::info!(id = %msg.id(), error = %e, "message stored, but its content is invalid; not indexed");
        }
    }
    Ok(())
}
