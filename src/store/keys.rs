//! The store's key layout in its one sled tree, and how keys and the
//! small values (heads, locations, numbers) are encoded:
//!
//! | prefix | key                   | value                              |
//! |--------|-----------------------|------------------------------------|
//! | `H`    | author                | head sequence ‖ head id            |
//! | `K`    | author ‖ sequence     | fork proof (two signed headers)    |
//! | `P`    | peer feed             | replication memory of that peer    |
//! | `Q`    | peer feed             | size ‖ when its memory was saved   |
//! | `B`    | peer address          | peer book record (JSON)            |
//! | `R`    | author                | head before a repair cut the feed  |
//! | `G`    | member feed           | a hub's member (JSON, [`super::hub`]) |
//! | `C`    | member code id        | a hub's member code (JSON)         |
//! | `J`    | index prefix ‖ group  | the head of a group's chain in `groups.log`, and the group's summary (an event's tally) ([`super::groups`]) |
//! | `M`    | `format`, `log_end`, `groups_end`, `positions`, `reindexing` | store format, committed log length, committed length of `groups.log`, entries the position file holds durably, an index rebuild under way |
//! | lower  | see [`super::index`]  | index entries, rebuildable         |
//!
//! Format 2 also kept `L` (author ‖ sequence → location) and `I` (message
//! id → location) for every message; format 3 keeps those in the position
//! index ([`super::positions`]) and removes them when it upgrades a store.

use super::error::StoreError;
use super::index::compose_key;
use crate::feed::message::{FeedId, MessageId};
use crate::feed::validate::FeedHead;

/// Format 2 (and 1): author ‖ sequence → location of the message in the
/// log. Only to recognize and upgrade an old store.
pub(super) const OLD_LOG: u8 = b'L';
/// Format 2: message id → location of the message in the log. Only to
/// upgrade an old store.
pub(super) const OLD_ID: u8 = b'I';
/// author → head sequence ‖ head id
pub(super) const HEAD: u8 = b'H';
/// author ‖ sequence → fork proof (two signed headers)
pub(super) const FORK: u8 = b'K';
/// peer feed → replication memory of that peer
pub(super) const PEER: u8 = b'P';
/// peer address → peer book record (JSON)
pub(super) const BOOK: u8 = b'B';
/// author → head before a repair cut the feed
pub(super) const REFETCH: u8 = b'R';
/// member feed → a hub's member record (JSON)
pub(super) const MEMBER: u8 = b'G';
/// member code id → a hub's member code record (JSON)
pub(super) const MEMBER_CODE: u8 = b'C';
/// index prefix ‖ group → the head of the group's chain of records in
/// `groups.log` (see [`super::groups`]); rebuildable, like the indexes
pub(super) const GROUP: u8 = b'J';

/// The key of a group's chain head.
pub(super) fn group_key(prefix: u8, group: &[u8; 32]) -> Vec<u8> {
    compose_key(GROUP, &[&[prefix], group])
}

/// The store layout this code reads and writes (under [`FORMAT_KEY`]): 4
/// keeps the RSVP, admission and contact entries in `groups.log` instead
/// of a sled key each (3 is upgraded on open by rebuilding the indexes);
/// 3 keeps where each message is in the position index; 2 kept it in sled
/// (and is upgraded on open); 1 kept the message bytes in sled too.
pub(super) const STORE_FORMAT: u8 = 4;

/// Meta key of the store format.
pub(super) const FORMAT_KEY: &[u8] = b"Mformat";
/// Meta key of the message log's committed length.
pub(super) const LOG_END_KEY: &[u8] = b"Mlog_end";
/// Meta key present while the indexes are being rebuilt in place: a
/// store opened with it set was interrupted, and rebuilds them again.
pub(super) const REINDEXING_KEY: &[u8] = b"Mreindexing";
/// Meta key of the committed length of `groups.log`.
pub(super) const GROUPS_END_KEY: &[u8] = b"Mgroups_end";
/// Meta key of the number of entries the position file holds durably.
pub(super) const POSITIONS_KEY: &[u8] = b"Mpositions";
/// Meta key of the indexes' revision within the format (see
/// [`INDEX_REVISION`]).
pub(super) const INDEX_REVISION_KEY: &[u8] = b"Mindex_revision";
/// What the indexes hold, within [`STORE_FORMAT`]; a store whose indexes
/// are of an older revision rebuilds them once on open. 1: events keep
/// their `unlisted`, `public` and `closed_to_web` marks (an older potluck
/// indexed such an event without them: a hub's public pages would list
/// it, and take answers its organizer closed). 2: comments, their threads
/// and the organizer's hiding, and events' comment setting (an older
/// potluck stored comments without indexing them). 3: what each person
/// last answered to each event, by person (`q`), which indexing an RSVP
/// reads instead of the event's answers. 4: an event's tally is kept in
/// the chain head of its answers (`J ‖ r ‖ event`), not under a key of its
/// own (`t ‖ event`); a store of revision 3 moves its tallies there on
/// open, without a rebuild.
pub(super) const INDEX_REVISION: u8 = 4;

/// The key of the fork proof at `sequence` of `author`'s feed.
pub(super) fn fork_key(author: &FeedId, sequence: u64) -> Vec<u8> {
    compose_key(FORK, &[&author.0, &sequence.to_be_bytes()])
}

/// The key `prefix ‖ author` (a head, peer memory, a refetch marker).
pub(super) fn feed_key(prefix: u8, author: &FeedId) -> Vec<u8> {
    compose_key(prefix, &[&author.0])
}

/// The key of an address's peer book record.
pub(super) fn book_key(addr: &str) -> Vec<u8> {
    compose_key(BOOK, &[addr.as_bytes()])
}

pub(super) fn encode_head(head: &FeedHead) -> Vec<u8> {
    let mut v = Vec::with_capacity(40);
    v.extend_from_slice(&head.sequence.to_be_bytes());
    v.extend_from_slice(&head.id.0);
    v
}

pub(super) fn decode_head(key: &[u8], v: &[u8]) -> Result<FeedHead, StoreError> {
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

pub(super) fn u64_value(key: &[u8], v: &[u8]) -> Result<u64, StoreError> {
    let bytes: [u8; 8] = v.try_into().map_err(|_| StoreError::CorruptLog {
        key: hex::encode(key),
        reason: "not an 8-byte number".into(),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

pub(super) fn feed_of_key(key: &[u8]) -> Option<FeedId> {
    Some(FeedId(key.get(1..33)?.try_into().ok()?))
}

/// The sequence in a `prefix ‖ feed ‖ sequence` key.
pub(super) fn sequence_of_key(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.get(33..41)?.try_into().ok()?))
}

/// Key prefix: when each peer's replication memory was saved, and its
/// size (`size u64 BE ‖ saved ms i64 BE`).
pub(super) const PEER_KEPT: u8 = b'Q';

pub(super) fn kept_value(bytes: u64, saved_ms: i64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&bytes.to_be_bytes());
    v[8..].copy_from_slice(&saved_ms.to_be_bytes());
    v
}
