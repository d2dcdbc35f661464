//! [`StoreError`]: every way a store operation fails, each variant one
//! kind of failure with what a person can do about it.

use thiserror::Error;

use super::index::CorruptEntry;
use super::keys::STORE_FORMAT;
use super::msglog::LogError;
use super::positions::PositionsError;
use crate::feed::message::FeedId;
use crate::feed::validate::ValidationError;

/// A store failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// sled reported an error while the store was open: an I/O error on
    /// its files, or damage it found while reading them. (Damage found
    /// while opening is [`StoreError::DatabaseDamaged`].)
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
    /// The scratch database that `fsck` and `repair` rebuild the indexes
    /// into, beside the store's own, could not be cleared or removed.
    #[error(
        "cannot remove the scratch database {path} of a store check ({source}); remove that directory and run the check again"
    )]
    Scratch {
        /// The scratch directory.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The scratch database of a store check, closed a moment before to
    /// be opened again, was still locked after the wait for its lock:
    /// only this process uses it, so its own closing had not finished.
    #[error(
        "the scratch database {path} of a store check is still locked by the check itself; run the check again"
    )]
    ScratchLocked {
        /// The scratch directory.
        path: std::path::PathBuf,
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
    /// An index entry cannot be decoded (the indexes are rebuilt from the
    /// logs, so `potluck reindex` mends it).
    #[error(transparent)]
    CorruptIndex(#[from] CorruptEntry),
    /// An entry the store keeps in sled beside the indexes (a feed's head,
    /// a fork proof, a peer record, one of the store's own numbers) cannot
    /// be decoded.
    #[error("stored entry {key} is damaged: {reason} (run `potluck fsck`)")]
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
    /// A message that the feed's head says the store holds has no place
    /// in the position index: the head and the message log disagree.
    #[error(
        "message {author} #{sequence} is missing from the message log although its feed's head covers it (run `potluck reindex`)"
    )]
    MissingMessage {
        /// The feed.
        author: FeedId,
        /// The missing message's sequence.
        sequence: u64,
    },
    /// sled's own files are damaged: sled refuses to open them, or they
    /// lost what the message log shows was written.
    #[error(
        "the database in {path} is damaged ({reason}); `potluck fsck --repair` rebuilds it from the message log, moving the damaged files aside"
    )]
    DatabaseDamaged {
        /// The store directory.
        path: String,
        /// What is damaged, in sled's words or ours.
        reason: String,
    },
    /// The store holds less of our own feed than was published of it
    /// (by this home before its store was lost, or with a key imported).
    #[error(
        "{feed} was published at least up to #{published}, but this home's store holds only #{holds} of it (the store was lost, or the key came from elsewhere): publishing now would start a second history of your feed, which peers reject. Fetch your feed back first: `potluck recover HOST:PORT` from a peer or hub that holds it, `potluck hub add CODE` or `potluck join CODE` (then `potluck serve` fetches it from them), or `potluck import` a bundle of it; `potluck recover --start-over` publishes on from #{holds} anyway"
    )]
    OwnFeedBehind {
        /// Our feed.
        feed: FeedId,
        /// What the store holds of it.
        holds: u64,
        /// How far it was published, at least.
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
    /// The store broke a rule it keeps itself (say, a batch it queued was
    /// never committed): a bug in potluck, not damage on disk.
    #[error("the store broke its own rule: {0} (a bug in potluck; please report it)")]
    Bug(&'static str),
}
