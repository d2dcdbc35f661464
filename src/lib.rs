//! potluck: a peer-to-peer node for community events.
//!
//! Each person keeps a signed append-only feed of event announcements,
//! RSVPs, names and follows. The crate is layered so that protocol logic
//! stays free of I/O:
//!
//! - [`message`]: the wire format (header, signature, ids);
//! - [`validate`]: pure validation of a message against its feed's head;
//! - [`content`]: the typed content of version 1 (events, RSVPs, ...);
//! - [`store::index`]: pure derivation of index entries from messages;
//! - [`store`]: the only owner of sled; atomic, durable appends;
//! - [`identity`] and [`home`]: the key file and the home directory;
//! - [`when`]: times and text for people (wall-clock times, spans, short
//!   ids, terminal-safe text).

#![warn(missing_docs)]

pub mod admission;
pub mod app;
pub mod bundle;
pub mod config;
pub mod content;
pub mod control;
pub mod discovery;
pub mod fixtures;
pub mod frame;
pub mod handshake;
pub mod home;
pub mod ics;
pub mod identity;
pub mod limits;
pub mod message;
pub mod node;
pub mod peerbook;
pub mod replicate;
pub mod store;
/// The indexes kept their old path too (`crate::index`), for code written
/// before they moved into the store's folder.
pub use store::index;
pub mod validate;
pub mod web;
pub mod when;
pub mod wire;
