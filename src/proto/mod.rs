//! The network protocol, sans-io: each module takes bytes or events and
//! returns bytes or actions; the node moves them.
//!
//! - [`handshake`]: the Noise handshake with its identity checks;
//! - [`frame`]: length-prefixed frames on the stream;
//! - [`wire`]: replication packets inside the frames;
//! - [`replicate`]: the replication state machine of a connection and the
//!   node's choice of live sources;
//! - [`discovery`]: LAN announcements;
//! - [`peerbook`]: which addresses to dial, and when;
//! - [`quota`]: what strangers may make a node store;
//! - [`guests`]: what guests answering from a browser may make a hub store;
//! - [`portmap`]: when to map, renew and retry the node's port on the
//!   home router.

pub mod discovery;
pub mod frame;
pub mod guests;
pub mod handshake;
pub mod hub;
pub mod peerbook;
pub mod portmap;
pub mod quota;
pub mod replicate;
pub mod wire;
