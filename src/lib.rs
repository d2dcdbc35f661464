//! potluck: a peer-to-peer node for community events.
//!
//! Each person keeps a signed append-only feed of event announcements,
//! RSVPs, names and follows; nodes gossip those feeds over an encrypted,
//! authenticated handshake and index them for people.
//!
//! # Layout
//!
//! The modules are layers; each uses only those listed above it, and the
//! protocol layers do no I/O of their own (sans-io: bytes and events in,
//! bytes and actions out; the caller owns sockets, clocks and disk).
//!
//! - [`feed`]: the signed log format: a message's bytes, its ids, its
//!   validation against its feed's head, and bundles of feeds in a file;
//! - [`content`]: the typed content of version 1 (events, RSVPs, names,
//!   follows, blocks);
//! - [`proto`]: the network protocol, sans-io: the Noise handshake,
//!   frames, replication packets, the replication state machine
//!   ([`proto::replicate`]), LAN discovery, the peer book and the quotas for strangers;
//! - [`home`]: the home directory, its key file and its settings;
//! - [`store`] (with [`store::msglog`] and [`store::index`]): the only
//!   owner of the disk: the message log, sled and the indexes derived
//!   from messages; atomic, durable appends;
//! - [`node`]: the running node: tokio tasks that move bytes between
//!   sockets, the protocol types and the store; connection limits; the
//!   organizer's admissions; the control socket;
//! - [`app`]: the application layer every front end goes through:
//!   publish, query and hear about changes, with or without a running
//!   node; times and text for people; calendar files;
//! - [`web`]: the page in the browser, a front end over [`app`].
//!
//! The `potluck` binary (`src/main.rs`, `src/cli/`) is the other front end.
//! `docs/architecture.md` draws the path of a message through the layers.

#![warn(missing_docs)]

pub mod app;
pub mod content;
pub mod feed;
pub mod fixtures;
pub mod home;
pub mod node;
pub mod proto;
pub mod store;
pub mod web;

pub use feed::message::{FeedId, Message, MessageId};
pub use node::Node;
pub use store::{Store, StoreError};
