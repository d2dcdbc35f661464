//! Why a connection ended badly.

use thiserror::Error;

use crate::feed::message::FeedId;
use crate::feed::validate::ValidationError;
use crate::proto::frame::FrameError;
use crate::proto::handshake::HandshakeError;
use crate::proto::quota;
use crate::proto::replicate::ProtocolError;
use crate::proto::wire::{RefuseReason, WireError};
use crate::store::StoreError;

/// Why a connection ended badly.
#[derive(Debug, Error)]
pub enum ConnectionError {
    /// TCP failed.
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    /// The handshake failed (wrong network key, wrong peer, garbage).
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// The peer hung up during the handshake: as the dialer, this is what
    /// a wrong network key looks like (the responder learns it from our
    /// first message and closes without a word).
    #[error(
        "the peer closed the connection during the handshake: it is on another network (a different network key), or it is not a potluck node"
    )]
    HandshakeRejected,
    /// The handshake took too long.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// The peer answered that it has no room for another connection.
    #[error("the node is busy (it has no free connection slot); try again later")]
    Busy,
    /// A frame broke the framing rules.
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// A packet could not be decoded.
    #[error("bad packet: {0}")]
    Wire(#[from] WireError),
    /// The peer broke the replication protocol.
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    /// The peer sent an invalid message; the valid ones before it stay.
    #[error("peer sent an invalid message: {0}")]
    InvalidMessage(ValidationError),
    /// The store failed.
    #[error("store error: {0}")]
    Store(#[from] StoreError),
    /// Nothing arrived for too long.
    #[error("peer went silent")]
    Idle,
    /// The peer closed the connection in the middle of the session.
    #[error("peer closed the connection")]
    Closed,
    /// We are already connected to this feed.
    #[error("already connected to {0}")]
    Duplicate(FeedId),
    /// The peer refused the session right after the handshake, and said
    /// why (for instance, it is already connected to our feed).
    #[error("the peer refused the session: {0}")]
    Refused(RefuseReason),
    /// We refused the peer's request (a member code, a tunnel) and told it
    /// why.
    #[error("refused the peer's request: {0}")]
    RefusedThem(RefuseReason),
    /// The peer's first frame was not a session's start or one hub request.
    #[error("bad first frame: {0}")]
    Hub(String),
    /// A stranger went over a quota that ends the session.
    #[error("{0}")]
    Quota(quota::QuotaError),
    /// A background task died.
    #[error("internal task failed: {0}")]
    Task(String),
}

impl ConnectionError {
    /// True when the handshake completed: the address works, whatever
    /// ended the session afterwards.
    pub fn reached_peer(&self) -> bool {
        !matches!(
            self,
            ConnectionError::Io(_)
                | ConnectionError::Handshake(_)
                | ConnectionError::HandshakeTimeout
                | ConnectionError::HandshakeRejected
                | ConnectionError::Busy
        )
    }
}
