//! The replication state machine for one connection (sans-io).
//!
//! It takes packets and local events, and returns packets to send and
//! messages to ingest; it never touches a socket, a clock or the store.
//! The driver (`crate::node`) moves bytes and timers, reads messages
//! from the store when [`Link::poll_range`] asks for a range, and
//! reports what it ingested. A [`Link`] is the one way in: it joins a
//! connection's session (private to this module) to the node's
//! [`Sources`] and keeps its timers.
//!
//! Protocol in short (details in `docs/protocol.md`, "Replication"):
//! 1. Each side sends `Hello`, its clock (feed → latest sequence held, or
//!    `UNWANTED`) and `ClockEnd` with a digest of its full clock. When both
//!    remember the previous session, the clock is a diff against what the
//!    other side already knows (request skipping); the digest catches any
//!    disagreement, and `Resync` asks for the full clock instead.
//! 2. Each side streams, per feed in sequence order, what the other lacks
//!    and wants, and keeps doing so live as new messages arrive. It tracks
//!    what the peer holds, so no message goes twice to the same peer.
//! 3. As in Scuttlebutt's EBT, each side tells the other, per feed, whether
//!    to push new messages live or only send notes (a clock entry with its
//!    latest sequence), so that a node takes each feed from one peer at a
//!    time. [`Sources`] makes that choice for a whole node: which peer is the
//!    live source of each feed, who falls back when it disconnects, and
//!    when a note shows another peer is ahead for too long.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use crate::feed::message::FeedId;
use crate::proto::wire::{PROTOCOL_VERSION, UNWANTED};

mod link;
mod memory;
mod session;
mod shared;
#[cfg(any(test, feature = "test-utils"))]
pub mod sim;
mod sources;
mod timer;

pub use link::{
    Ingested, Link, LinkError, LinkTiming, NOTES_EVERY, Opening, PROGRESS_EVERY,
    PROGRESS_IDLE_RECHECK, PeerEnd, Progress, SOURCE_CHECK,
};
pub use memory::{Holding, PeerMemory};
pub use shared::{ClockBase, SharedClock};
pub use sources::{DELAY_HALF_LIFE, MAX_GRACE_FACTOR, ModeChange, SourceCounts, Sources};

/// Most feeds a peer's clock may name: bounds the memory a peer can make
/// us spend on its clock.
pub const MAX_PEER_FEEDS: usize = 200_000;
/// Most messages handed out per [`Link::poll_range`] call, so that one
/// long feed cannot starve the others.
pub const RANGE_CHUNK: u64 = 256;

/// A clock: feed → latest sequence held (0 = wanted, none held), or [`UNWANTED`].
pub type Clock = BTreeMap<FeedId, u64>;

/// Which feeds a node replicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Every feed a peer offers, except blocked ones.
    Open,
    /// Our own feed plus feeds within this many follow hops.
    Hops(u8),
}

/// The peer broke the protocol; the connection must close.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// The peer speaks another protocol version.
    #[error("peer speaks replication protocol version {0}, we speak {PROTOCOL_VERSION}")]
    Version(u8),
    /// A packet came at a point where it makes no sense.
    #[error("unexpected {0} packet")]
    Unexpected(&'static str),
    /// The peer's clock names too many feeds.
    #[error("peer's clock names more than {MAX_PEER_FEEDS} feeds")]
    ClockTooLarge,
    /// The clock did not match its digest even after a full resend.
    #[error("peer's clock does not match its digest")]
    ClockMismatch,
    /// The peer asked for a full clock more than once.
    #[error("peer asked for a full clock resend twice")]
    RepeatedResync,
    /// The peer's push modes name too many feeds.
    #[error("peer's push modes name more than {MAX_PEER_FEEDS} feeds")]
    TooManyModes,
}

/// Builds our clock under a policy.
///
/// - `heads`: every feed held, with its latest sequence;
/// - `me`: our own feed (always replicated, even when empty);
/// - `follows(f)`: feeds that `f` follows (for [`Policy::Hops`]);
/// - `blocked`: feeds we block: marked [`UNWANTED`], never stored or sent.
pub fn build_clock(
    policy: &Policy,
    me: FeedId,
    heads: &BTreeMap<FeedId, u64>,
    follows: impl Fn(&FeedId) -> Vec<FeedId>,
    blocked: &BTreeSet<FeedId>,
) -> Clock {
    let mut clock = Clock::new();
    match policy {
        Policy::Open => {
            clock.extend(heads.iter().map(|(f, s)| (*f, *s)));
        }
        Policy::Hops(hops) => {
            let mut frontier = vec![me];
            let mut seen: BTreeSet<FeedId> = BTreeSet::from([me]);
            for _ in 0..*hops {
                let mut next = Vec::new();
                for feed in &frontier {
                    for f in follows(feed) {
                        if !blocked.contains(&f) && seen.insert(f) {
                            next.push(f);
                        }
                    }
                }
                frontier = next;
            }
            for feed in seen {
                clock.insert(feed, heads.get(&feed).copied().unwrap_or(0));
            }
        }
    }
    clock.entry(me).or_insert(0);
    for feed in blocked {
        if *feed != me {
            clock.insert(*feed, UNWANTED);
        }
    }
    clock
}
