//! The signed log format: what a message is, byte for byte
//! ([`message`]), when it may follow its feed's head ([`validate`]), and
//! feeds carried in a file ([`bundle`]). Pure: no I/O.

pub mod bundle;
pub mod message;
pub mod validate;
