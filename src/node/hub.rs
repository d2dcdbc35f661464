//! Hub mode and hub membership: the glue between a connection and the
//! hub's decisions ([`crate::proto::hub`]) and records
//! ([`crate::store::hub`]).
//!
//! Every responder reads the dialer's first frame before it sends its own
//! `Hello` ([`Node::intake`]): a dialer sends its `Hello` right after the
//! last handshake message, so this costs no round trip, and a hub request
//! (`Join`, `Tunnel`, `TunnelAccept`) is answered before any session
//! starts. A node that is not a hub answers those with `Refuse(NotAHub)`.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use tokio::io::AsyncWriteExt;

use super::connection::{Established, read_frame};
use super::{ConnectionError, Node, NodeEvent};
use crate::feed::message::{FeedId, Message};
use crate::home::config::PeerAddr;
use crate::proto::frame::encode_frame;
use crate::proto::hub::{HubLimits, Intake, Tunnels, intake};
use crate::proto::wire::{FramePacker, Packet, RefuseReason, TOKEN_LEN};
use crate::store::hub::Redeemed;

/// A member's stored bytes are added to its record at least every this
/// many bytes.
const SAVE_MEMBER_BYTES_EVERY: u64 = 1024 * 1024;

/// A hub's running state.
pub(super) struct HubRuntime {
    pub(super) limits: HubLimits,
    pub(super) tunnels: Mutex<Tunnels>,
}

/// What a member node knows of its hubs.
#[derive(Clone, Debug, Default)]
pub struct MemberSettings {
    /// The hubs we are a member of (each with its feed).
    pub hubs: Vec<PeerAddr>,
    /// Take tunnels from any member of our hubs, not only from feeds we
    /// follow.
    pub tunnels_from_hub_members: bool,
}

/// The hub part of a [`Node`]: set once, when the node starts as a hub.
#[derive(Default)]
pub(super) struct HubParts {
    pub(super) hub: OnceLock<HubRuntime>,
    pub(super) member: Mutex<MemberSettings>,
    /// What each member's connections stored since it connected, not yet
    /// added to its record.
    pub(super) unsaved_bytes: Mutex<HashMap<FeedId, u64>>,
    /// On a hub: where each member says it can be dialed directly, and
    /// when that was last taken.
    pub(super) directs: Mutex<HashMap<FeedId, (std::net::SocketAddr, std::time::Instant)>>,
    /// Feeds with a live tunnel session we dial being kept (on a member).
    pub(super) tunneling: Mutex<std::collections::HashSet<FeedId>>,
    /// Feeds whose tunnel calls we declined lately, newest last, at most
    /// [`DECLINED_KEPT`](super::tunnel::DECLINED_KEPT) (on a member): if we
    /// follow one later, we dial it, since its hub keeps it from calling.
    pub(super) declined: Mutex<std::collections::VecDeque<FeedId>>,
    /// Feeds whose tunnel call we are answering (on a member): one call
    /// per feed at a time.
    pub(super) answering: Mutex<std::collections::HashSet<FeedId>>,
    /// Tunnel calls waiting for the called member's connection.
    pub(super) calls:
        Mutex<HashMap<[u8; TOKEN_LEN], tokio::sync::oneshot::Sender<super::tunnel::CalledEnd>>>,
}

impl Node {
    /// Makes this node a hub with these limits (once; later calls change
    /// nothing).
    pub fn make_hub(&self, limits: HubLimits) {
        let tunnels = Mutex::new(Tunnels::new(limits.tunnels()));
        let (established, per_address) = (limits.connections, limits.connections_per_address);
        if self
            .hub_parts
            .hub
            .set(HubRuntime { limits, tunnels })
            .is_ok()
        {
            // A hub may hold more connections than an ordinary node.
            let mut connections = self.connections();
            let mut raised = connections.limits().clone();
            raised.established = established;
            raised.per_address = per_address;
            connections.set_limits(raised);
        }
    }

    /// The hub's limits, when this node is a hub.
    pub fn hub_limits(&self) -> Option<&HubLimits> {
        self.hub_parts.hub.get().map(|h| &h.limits)
    }

    /// Sets the hubs we are a member of.
    pub fn set_member_settings(&self, settings: MemberSettings) {
        *self
            .hub_parts
            .member
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = settings;
    }

    /// The hubs we are a member of.
    pub fn member_settings(&self) -> MemberSettings {
        self.hub_parts
            .member
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Ends the hub's removed member's live session (it says goodbye);
    /// its next connection is refused.
    pub fn end_session_of(&self, feed: FeedId) {
        let _ = self.events.send(NodeEvent::Close(feed));
    }

    /// Whether the hub's operator removed `feed` from its members (false
    /// when not a hub).
    pub(super) fn was_removed(&self, feed: &FeedId) -> bool {
        self.hub_parts.hub.get().is_some() && matches!(self.store.was_removed(feed), Ok(true))
    }

    /// Whether `feed` is a member of this hub (false when not a hub).
    pub fn is_member(&self, feed: &FeedId) -> bool {
        self.hub_parts.hub.get().is_some() && matches!(self.store.member(feed), Ok(Some(_)))
    }

    /// Reads the dialer's first frame and says what it asks for. Bounded
    /// by the handshake's deadline: a dialer that shook hands and then
    /// says nothing does not hold the connection long.
    pub(super) async fn intake(&self, conn: &mut Established) -> Result<Intake, ConnectionError> {
        let packets = tokio::time::timeout(self.config.timing.handshake, read_packets(conn))
            .await
            .map_err(|_| ConnectionError::HandshakeTimeout)??;
        intake(packets).map_err(|e| ConnectionError::Hub(e.to_string()))
    }

    /// A dialer's `Join`: on a hub, takes the member code and answers
    /// `Welcome`; otherwise answers why not (`Refuse`) and fails.
    pub(super) async fn handle_join(
        &self,
        conn: &mut Established,
        token: [u8; TOKEN_LEN],
    ) -> Result<(), ConnectionError> {
        let answer = if self.hub_parts.hub.get().is_none() {
            Err(RefuseReason::NotAHub)
        } else {
            let store = self.store.clone();
            let remote = conn.remote;
            let now = jiff::Timestamp::now().as_millisecond();
            let redeemed =
                tokio::task::spawn_blocking(move || store.redeem_member_code(&token, remote, now))
                    .await
                    .map_err(|e| ConnectionError::Task(e.to_string()))??;
            match redeemed {
                Redeemed::Member => {
                    tracing::info!(member = %remote, "a new member joined with a member code");
                    Ok(())
                }
                Redeemed::Refused => Err(RefuseReason::BadCode),
            }
        };
        match answer {
            Ok(()) => write_packet(conn, &Packet::Welcome).await,
            Err(reason) => {
                write_packet(conn, &Packet::Refuse(reason)).await?;
                Err(ConnectionError::RefusedThem(reason))
            }
        }
    }

    /// A dialer asks for a hub's service (`request`): sends it alone and
    /// reads the answer. `Welcome` and `TunnelReady` go on; `Refuse` is
    /// the error it names; anything else means the peer is no hub.
    pub(super) async fn ask_hub(
        &self,
        conn: &mut Established,
        request: &Packet,
    ) -> Result<(), ConnectionError> {
        write_packet(conn, request).await?;
        // A tunnel waits for the called member's answer (at most the
        // hub's call time) on top of the usual.
        let wait = match request {
            Packet::Tunnel { .. } => {
                self.config.timing.handshake
                    + crate::proto::hub::TunnelLimits::default().answer_within
            }
            _ => self.config.timing.handshake,
        };
        let answer = tokio::time::timeout(wait, read_packets(conn))
            .await
            .map_err(|_| ConnectionError::HandshakeTimeout)??;
        match (request, answer.as_slice()) {
            (Packet::Join { .. }, [Packet::Welcome]) => Ok(()),
            (Packet::Tunnel { .. } | Packet::TunnelAccept { .. }, [Packet::TunnelReady]) => Ok(()),
            (_, [Packet::Refuse(reason), ..]) => Err(ConnectionError::Refused(*reason)),
            _ => Err(ConnectionError::Refused(RefuseReason::NotAHub)),
        }
    }

    /// Whether a member's message fits its storage quota (counting it if
    /// so); a feed over it is added to `over`. Anything from a peer that
    /// is not a member (`None`) fits here.
    pub(super) fn within_member_quota(
        &self,
        member: Option<FeedId>,
        msg: &Message,
        over: &mut BTreeSet<FeedId>,
    ) -> bool {
        let bytes = msg.bytes().len() as u64;
        let Some(member) = member else {
            // Anyone else: the hub's total still holds.
            let fits = self.hub_parts.hub.get().is_none_or(|hub| {
                self.store.log_bytes().saturating_add(bytes) <= hub.limits.total_bytes
            });
            if !fits {
                tracing::info!(feed = %msg.author(), "not storing: the hub's store is full (`hub.total_bytes`)");
                over.insert(msg.author());
            }
            return fits;
        };
        let fits = self.member_may_store(&member, bytes);
        if !fits {
            tracing::info!(%member, feed = %msg.author(), "not storing more from this member: it is over its storage quota (`hub.member_bytes`, or the hub's `hub.total_bytes`)");
            over.insert(msg.author());
        }
        fits
    }

    /// Whether a member's connection may make the hub store `bytes` more,
    /// counting them if so. Always true on a node that is not a hub, and
    /// for peers that are not members (the stranger quotas hold them).
    fn member_may_store(&self, member: &FeedId, bytes: u64) -> bool {
        let Some(hub) = self.hub_parts.hub.get() else {
            return true;
        };
        // Removed while connected: nothing more.
        let Ok(Some(record)) = self.store.member(member) else {
            return false;
        };
        let mut unsaved = self
            .hub_parts
            .unsaved_bytes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let pending = unsaved.entry(*member).or_insert(0);
        let used = record.stored_bytes.saturating_add(*pending);
        if crate::proto::hub::fits(&hub.limits, used, self.store.log_bytes(), bytes) {
            *pending += bytes;
            // Counted on disk as it goes, not only when the session ends:
            // a long session on a hub that crashes keeps most of its count.
            if *pending >= SAVE_MEMBER_BYTES_EVERY {
                let saving = std::mem::take(pending);
                drop(unsaved);
                if let Err(e) = self.store.add_member_bytes(member, saving) {
                    tracing::warn!(%member, error = %e, "could not count what a member stored");
                }
            }
            true
        } else {
            false
        }
    }

    /// Bytes a member's connections stored that are not yet in its record.
    pub fn unsaved_member_bytes(&self, member: &FeedId) -> u64 {
        self.hub_parts
            .unsaved_bytes
            .lock()
            .map(|u| u.get(member).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Adds what a member's connection stored to its record (at the end
    /// of its session).
    pub(super) fn save_member_bytes(&self, member: &FeedId) {
        let bytes = self
            .hub_parts
            .unsaved_bytes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(member)
            .unwrap_or(0);
        if bytes > 0
            && let Err(e) = self.store.add_member_bytes(member, bytes)
        {
            tracing::warn!(%member, error = %e, "could not count what a member stored");
        }
    }

    /// A hub packet that came in a session with `peer`: a hub's
    /// `TunnelCall` (we answer, or decline), a member's `TunnelDecline`.
    /// Returns a packet to send back in that session.
    pub(super) fn handle_hub_packet(
        self: &std::sync::Arc<Self>,
        peer: FeedId,
        packet: Packet,
    ) -> Option<Packet> {
        match packet {
            Packet::TunnelCall { token, from } => self.tunnel_called(peer, token, from),
            Packet::TunnelDecline { token } => {
                self.tunnel_declined(peer, token);
                None
            }
            // From a member to its hub: where it can be dialed directly.
            Packet::Members(entries) if self.is_member(&peer) => {
                let from = self
                    .peers
                    .lock()
                    .ok()
                    .and_then(|p| p.get(&peer).map(|e| e.info.address.clone()))
                    .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
                    .map(|a| a.ip());
                self.member_says_direct(peer, from, &entries);
                None
            }
            Packet::Members(entries) => {
                self.members_online(peer, entries);
                None
            }
            _ => None,
        }
    }

    /// Members whose feeds a hub's replication starts from, as the
    /// hub's own feed "follows" them (for a `hops` policy).
    pub(super) fn member_roots(&self) -> Vec<FeedId> {
        if self.hub_parts.hub.get().is_none() {
            return Vec::new();
        }
        self.store
            .members()
            .map(|m| m.into_iter().map(|m| m.feed).collect())
            .unwrap_or_default()
    }
}

/// Writes one packet as one encrypted frame, before the socket tasks
/// start.
pub(super) async fn write_packet(
    conn: &mut Established,
    packet: &Packet,
) -> Result<(), ConnectionError> {
    let mut packer = FramePacker::new();
    packer.push(packet)?;
    for plain in packer.take() {
        let sealed = conn.transport.encrypt(&plain)?;
        conn.stream.write_all(&encode_frame(&sealed)?).await?;
    }
    Ok(())
}

/// Reads one encrypted frame's packets, before the socket tasks start.
async fn read_packets(conn: &mut Established) -> Result<Vec<Packet>, ConnectionError> {
    let mut bytes_in = 0;
    let frame = read_frame(&mut conn.stream, &mut conn.decoder, &mut bytes_in).await?;
    let plain = conn.transport.decrypt(&frame)?;
    Ok(Packet::decode_all(&plain)?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::node::{NodeConfig, Timing};
    use crate::proto::handshake::DEFAULT_NETWORK_KEY;
    use crate::proto::replicate::Policy;
    use crate::store::Store;

    #[test]
    fn a_hub_holds_as_many_connections_as_its_limits_say() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let node = Node::new(
            store,
            NodeConfig {
                identity: ed25519_dalek::SigningKey::from_bytes(&[9; 32]),
                network: DEFAULT_NETWORK_KEY,
                policy: Policy::Open,
                timing: Timing::default(),
            },
        );
        let before = node.connections().limits().clone();
        node.make_hub(HubLimits {
            connections: 1_200,
            ..HubLimits::default()
        });
        let after = node.connections().limits().clone();
        assert_eq!(after.established, 1_200);
        assert!(after.established > before.established);
        assert_eq!(
            after.per_address,
            crate::proto::hub::HUB_CONNECTIONS_PER_ADDRESS
        );
        // A second call changes nothing, as for the rest of hub mode.
        node.make_hub(HubLimits {
            connections: 5,
            connections_per_address: 1,
            ..HubLimits::default()
        });
        assert_eq!(node.connections().limits().established, 1_200);
    }
}
