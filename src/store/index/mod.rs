//! The indexes: what a message means for events, RSVPs, names and
//! contacts, derived purely from the messages themselves.
//!
//! This module owns the index part of the key space and the rules of
//! indexing, but touches no database: it reads and writes through the
//! [`Kv`] trait, which the store implements over a staged sled batch (so
//! that indexing is atomic with the append) and tests implement over a
//! `BTreeMap`. Every index entry is a function of the logs alone, so
//! `reindex` can rebuild it and `fsck` can check it.
//!
//! Indexing is order-independent across feeds: everything an entry depends
//! on comes from one feed (an event and its updates share the author's
//! feed; an RSVP entry depends only on the RSVP author's feed), and each
//! feed is always indexed in sequence order. Comments are the exception:
//! a comment's place in its thread depends on the comments it names, from
//! other feeds, and `comments.rs` keeps it independent of arrival order by
//! moving later comments when an earlier one arrives.
//!
//! **Files.** `state.rs` holds the states the indexes keep ([`EventState`],
//! [`RsvpState`], [`Tally`] …); `keys.rs` the index [`prefix`]es and key
//! builders; `codec.rs` how each state is stored (the layouts are in
//! [`IndexValue`]'s docs); `kv.rs` the [`Kv`] view; `rules.rs` the
//! indexing rules ([`apply`]), and `comments.rs` those of comments. Each uses only its siblings; this file only
//! ties them together.

mod codec;
mod comments;
mod keys;
mod kv;
mod rules;
mod state;

pub use codec::{BadValue, IndexValue, MAX_NOTE_BYTES, decode_entry, read};
pub(super) use keys::compose_key;
pub use keys::{
    about_key, admission_key, admission_prefix, answered_key, comment_key, contact_key, event_key,
    event_of_time_key, hidden_key, instant_bytes, instant_of_bytes, place_of_thread_key, prefix,
    rsvp_key, rsvp_prefix, tally_key, thread_key, thread_prefix, time_key,
};
pub use kv::{CorruptEntry, Kv, MemKv};
pub use rules::{Indexed, LONG_EVENT_MS, apply, apply_parsed};
pub use state::{
    AboutState, AdmissionState, AnsweredState, CommentState, ContactState, EventState, EventStatus,
    RsvpState, Tally,
};
