//! What an append reports: the messages accepted, duplicates, forks and
//! their proofs, the first invalid message, and what the accepted ones
//! changed (events, contacts).

use crate::feed::message::{FeedId, Message, MessageId};
use crate::feed::validate::ValidationError;
use crate::store::index::ContactState;

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

/// The outcome of [`Store::ingest`](crate::store::Store::ingest).
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
    /// The message that [`Store::publish`](crate::store::Store::publish) appended (its report holds
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
