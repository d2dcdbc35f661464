//! Tunnels through a hub: live sessions between two members that cannot
//! dial each other, end to end (docs/protocol.md, "Hubs").
//!
//! The hub joins two connections it shook hands with (the asking
//! member's `Tunnel`, the called member's `TunnelAccept`), answers both
//! `TunnelReady`, and from then on only copies bytes between them. The
//! two members run the ordinary Noise XXpsk0 handshake over those bytes,
//! each pinned to the other's feed, so the hub relays ciphertext it can
//! neither read nor alter: a changed byte fails the Noise tag and ends the
//! session at both ends. The decisions (who may, how many, refusals
//! remembered) are [`crate::proto::hub::Tunnels`]'.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::connection::Established;
use super::hub::write_packet;
use super::{ConnectionError, Node, NodeEvent, SessionReport};
use crate::feed::message::FeedId;
use crate::home::config::PeerAddr;
use crate::proto::frame::FrameDecoder;
use crate::proto::hub::{Ends, dials_first, is_global, takes_call};
use crate::proto::wire::{MemberEntry, Packet, RefuseReason, TOKEN_LEN};

/// A tunnel carrying nothing either way for this long is closed (a live
/// session inside sends a ping every 15 s).
const TUNNEL_IDLE: Duration = Duration::from_secs(120);

/// Most tunnels a member node has open or opening at once (either end).
const MAX_TUNNELS: usize = 64;
/// Feeds whose declined calls a member remembers (see `HubParts::declined`).
pub(super) const DECLINED_KEPT: usize = 64;

/// Tries of a lasting tunnel that cannot open yet (1 s, 2 s, 4 s… apart).
const TUNNEL_TRIES: u32 = 5;

/// A member's direct address changes at most this often at a hub.
const DIRECT_CHANGE_EVERY: Duration = Duration::from_secs(60);

/// Entries of a hub's `Members` packet: each at most 97 bytes, so that a
/// packet stays well inside a frame.
const MEMBERS_PER_PACKET: usize = 500;

/// What the called member's connection brings to the waiting one.
pub(super) type CalledEnd = Result<Established, RefuseReason>;

impl Node {
    /// On a hub, a member's `Tunnel { target }`: calls the target through
    /// its session, waits for its connection, and relays between the two
    /// until either closes. Refuses (and says why) otherwise.
    pub(super) async fn relay_tunnel(
        self: &Arc<Self>,
        mut conn: Established,
        target: FeedId,
        mut report: SessionReport,
    ) -> Result<SessionReport, ConnectionError> {
        let from = conn.remote;
        let Some(hub) = self.hub_parts.hub.get() else {
            return self.refuse_request(conn, RefuseReason::NotAHub).await;
        };
        let ends = Ends {
            from_member: self.is_member(&from),
            to_member: self.is_member(&target),
            to_online: self
                .peers
                .lock()
                .map(|p| p.contains_key(&target))
                .unwrap_or(false),
        };
        let token: [u8; TOKEN_LEN] = rand::random();
        let asked = hub
            .tunnels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .request(from, target, ends, token, Instant::now());
        if let Err(reason) = asked {
            tracing::debug!(%from, %target, %reason, "refusing a tunnel");
            return self.refuse_request(conn, reason).await;
        }
        let (answer, called) = oneshot::channel::<CalledEnd>();
        self.hub_parts
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token, answer);
        let _ = self.events.send(NodeEvent::HubPacket {
            to: target,
            packet: Arc::new(Packet::TunnelCall { token, from }),
        });
        let within = hub.limits.tunnels().answer_within;
        let other = match tokio::time::timeout(within, called).await {
            Ok(Ok(Ok(other))) => Ok(other),
            Ok(Ok(Err(reason))) => Err(reason),
            // The call lapsed, or its session ended before it answered.
            Ok(Err(_)) | Err(_) => Err(RefuseReason::Offline),
        };
        self.hub_parts
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&token);
        let result = match other {
            Ok(mut other) => {
                let ready = write_packet(&mut conn, &Packet::TunnelReady).await;
                let ready = ready.and(write_packet(&mut other, &Packet::TunnelReady).await);
                match ready {
                    Ok(()) => {
                        tracing::info!(%from, to = %target, "tunnel open");
                        let (a_to_b, b_to_a) = splice(conn, other, TUNNEL_IDLE).await;
                        tracing::info!(%from, to = %target, bytes_there = a_to_b, bytes_back = b_to_a, "tunnel closed");
                        report.bytes_in += a_to_b + b_to_a;
                        report.bytes_out += a_to_b + b_to_a;
                        Ok(report)
                    }
                    Err(e) => Err(e),
                }
            }
            Err(reason) => {
                tracing::debug!(%from, %target, %reason, "tunnel not opened");
                self.refuse_request(conn, reason).await
            }
        };
        hub.tunnels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .closed(from);
        result
    }

    /// On a hub, the called member's `TunnelAccept { token }`: hands this
    /// connection to the waiting side, which relays.
    pub(super) async fn tunnel_end_arrived(
        self: &Arc<Self>,
        conn: Established,
        token: [u8; TOKEN_LEN],
        report: SessionReport,
    ) -> Result<SessionReport, ConnectionError> {
        let Some(hub) = self.hub_parts.hub.get() else {
            return self.refuse_request(conn, RefuseReason::NotAHub).await;
        };
        let accepted = hub
            .tunnels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .accept(&token, conn.remote, Instant::now());
        if let Err(reason) = accepted {
            return self.refuse_request(conn, reason).await;
        }
        let waiting = self
            .hub_parts
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&token);
        match waiting {
            // The waiting side relays from now on.
            Some(waiting) => match waiting.send(Ok(conn)) {
                Ok(()) => Ok(report),
                Err(Ok(conn)) => self.refuse_request(conn, RefuseReason::Offline).await,
                Err(Err(_)) => Ok(report),
            },
            None => self.refuse_request(conn, RefuseReason::Offline).await,
        }
    }

    /// On a hub, a member declined a tunnel (`TunnelDecline` in its
    /// session): the asking side is told, and the pair is not asked again
    /// for a while.
    pub(super) fn tunnel_declined(&self, by: FeedId, token: [u8; TOKEN_LEN]) {
        let Some(hub) = self.hub_parts.hub.get() else {
            return;
        };
        let declined = hub
            .tunnels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .decline(&token, by, Instant::now());
        if declined.is_some() {
            // The waiting side counts the tunnel closed (`relay_tunnel`).
            if let Some(waiting) = self
                .hub_parts
                .calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&token)
            {
                let _ = waiting.send(Err(RefuseReason::Declined));
            }
        }
    }

    /// On a member, a hub's `TunnelCall`: answers it with a new connection
    /// if we take tunnels from `from` (a feed we follow, or any member
    /// when `config.json` says so); otherwise returns the `TunnelDecline`
    /// to send in the hub's session.
    pub(super) fn tunnel_called(
        self: &Arc<Self>,
        hub: FeedId,
        token: [u8; TOKEN_LEN],
        from: FeedId,
    ) -> Option<Packet> {
        let settings = self.member_settings();
        let Some(hub_addr) = settings.hubs.iter().find(|h| h.feed == Some(hub)).cloned() else {
            // Only our hubs may call us.
            return Some(Packet::TunnelDecline { token });
        };
        let follows = self.followed().contains(&from);
        if !takes_call(from, hub, follows, settings.tunnels_from_hub_members) {
            tracing::info!(%from, %hub, "declining a tunnel from a feed we do not follow");
            let mut declined = self
                .hub_parts
                .declined
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            declined.retain(|f| *f != from);
            if declined.len() >= DECLINED_KEPT {
                declined.pop_front();
            }
            declined.push_back(from);
            return Some(Packet::TunnelDecline { token });
        }
        // One answered call per feed at a time, and a few tunnels at once
        // in all: a hub cannot make us open connection after connection.
        // A call from a feed we are still trying to reach ourselves (our
        // calls refused, waiting to try again) is taken: it is the session
        // we want, and if both open, the node keeps one
        // (`AlreadyConnected`, `Crossed`).
        let taken = {
            let dialing = self
                .hub_parts
                .tunneling
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .len();
            let connected = self
                .peers
                .lock()
                .map(|p| p.contains_key(&from))
                .unwrap_or(true);
            let mut answering = self
                .hub_parts
                .answering
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            !connected && answering.len() + dialing < MAX_TUNNELS && answering.insert(from)
        };
        if !taken {
            tracing::debug!(%from, %hub, "declining a tunnel: one is open or being answered already, or too many are");
            return Some(Packet::TunnelDecline { token });
        }
        let node = self.clone();
        tokio::spawn(async move {
            let ended = node.clone().answer_tunnel(&hub_addr, token, from).await;
            node.hub_parts
                .answering
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&from);
            match ended {
                Ok(report) => {
                    tracing::debug!(peer = %from, received = report.received, "tunnel session ended")
                }
                Err(e) => {
                    tracing::info!(peer = %from, hub = %hub_addr, error = %e, "tunnel session ended")
                }
            }
        });
        None
    }

    /// Dials `target` through `hub`: a tunnel, then an ordinary session
    /// over it, end to end (`once`: a one-off sync).
    pub async fn dial_tunnel(
        self: Arc<Self>,
        hub: &PeerAddr,
        target: FeedId,
        once: bool,
    ) -> Result<SessionReport, ConnectionError> {
        let (conn, addr, mut report) = self.hub_request(hub, Packet::Tunnel { target }).await?;
        // The hub now relays: the inner handshake runs over the same
        // bytes, pinned to the target's feed.
        let Established {
            stream, decoder, ..
        } = conn;
        let mut inner = self
            .shake(stream, decoder, addr, Some(Some(target)), &mut report)
            .await?;
        inner.via_hub = hub.feed;
        self.session(inner, addr, true, once, None, report).await
    }

    /// On a member, a hub's `Members`: keeps a live session, through that
    /// hub's tunnel, with each member it names that we follow and are not
    /// connected to (one at a time per feed; a session that ends is
    /// opened again at the hub's next word).
    pub(super) fn members_online(self: &Arc<Self>, hub: FeedId, entries: Vec<MemberEntry>) {
        let settings = self.member_settings();
        let Some(hub_addr) = settings.hubs.iter().find(|h| h.feed == Some(hub)).cloned() else {
            return;
        };
        let followed = self.followed();
        let me = self.feed_id();
        for entry in entries {
            let feed = entry.feed;
            let connected = self
                .peers
                .lock()
                .map(|p| p.contains_key(&feed))
                .unwrap_or(true);
            let answering = self
                .hub_parts
                .answering
                .lock()
                .map(|a| a.contains(&feed))
                .unwrap_or(true);
            if feed == me || feed == hub || connected || answering || !followed.contains(&feed) {
                continue;
            }
            // Two members who follow each other are both told: only the
            // smaller feed dials, the other waits for it.
            let follows_us = self
                .store
                .contacts(&feed)
                .is_ok_and(|c| c.iter().any(|(f, c)| *f == me && c.following));
            let we_declined_it = self
                .hub_parts
                .declined
                .lock()
                .is_ok_and(|d| d.contains(&feed));
            if !dials_first(me, feed, follows_us, we_declined_it) {
                continue;
            }
            if we_declined_it {
                // Our turn this once; after it the usual rule holds again.
                if let Ok(mut declined) = self.hub_parts.declined.lock() {
                    declined.retain(|f| *f != feed);
                }
            }
            {
                let mut tunneling = self
                    .hub_parts
                    .tunneling
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if tunneling.len() >= MAX_TUNNELS || !tunneling.insert(feed) {
                    continue;
                }
            }
            let node = self.clone();
            let hub_addr = hub_addr.clone();
            let direct = entry
                .direct
                .and_then(|d| d.parse::<std::net::SocketAddr>().ok())
                .filter(|a| is_global(a.ip()))
                .map(|a| a.to_string());
            tokio::spawn(async move {
                // A direct path first, where the member's router maps a
                // port; a tunnel through the hub otherwise.
                let direct_ended = match direct {
                    Some(addr) => {
                        let peer = PeerAddr {
                            feed: Some(feed),
                            addr,
                        };
                        node.remember_hub_address(&peer);
                        let ended = node.clone().dial(&peer, false).await;
                        match &ended {
                            Err(e) if !e.reached_peer() => {
                                tracing::info!(peer = %feed, addr = %peer.addr, error = %e, "cannot dial this member directly; going through the hub");
                                false
                            }
                            _ => true,
                        }
                    }
                    None => false,
                };
                if !direct_ended {
                    node.keep_tunnel(&hub_addr, feed).await;
                }
                node.hub_parts
                    .tunneling
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&feed);
            });
        }
    }

    /// A lasting tunnel session with `feed` through `hub`, tried again a
    /// few times with growing pauses when it cannot open for a reason
    /// that may pass (the other end is still connecting, busy); ends when
    /// a session ran, the other end refused for good, or it is connected
    /// otherwise.
    async fn keep_tunnel(self: &Arc<Self>, hub: &PeerAddr, feed: FeedId) {
        let mut pause = Duration::from_secs(1);
        for _ in 0..TUNNEL_TRIES {
            match self.clone().dial_tunnel(hub, feed, false).await {
                Ok(_) => return,
                Err(ConnectionError::Refused(
                    RefuseReason::Declined
                    | RefuseReason::NotAMember
                    | RefuseReason::Removed
                    | RefuseReason::NotAHub,
                )) => return,
                Err(e) if e.reached_peer() && !matches!(e, ConnectionError::Refused(_)) => {
                    tracing::debug!(peer = %feed, %hub, error = %e, "tunnel session ended");
                    return;
                }
                Err(e) => tracing::debug!(peer = %feed, %hub, error = %e, "no tunnel yet"),
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
            let connected = self
                .peers
                .lock()
                .map(|p| p.contains_key(&feed))
                .unwrap_or(true);
            if connected || *self.shutdown.borrow() {
                return;
            }
        }
    }

    /// On a hub, a member's `Members` naming itself: the address where it
    /// can be dialed directly (a port mapped on its router). Taken only
    /// when it is a global unicast address at the IP the member connects
    /// from (a port mapped on its own router), at most once a minute per
    /// member; kept while the hub runs and told to the members that follow
    /// it.
    pub(super) fn member_says_direct(
        self: &Arc<Self>,
        member: FeedId,
        from: Option<std::net::IpAddr>,
        entries: &[MemberEntry],
    ) {
        let Some(addr) = entries
            .iter()
            .find(|e| e.feed == member)
            .and_then(|e| e.direct.as_deref())
            .and_then(|d| d.parse::<std::net::SocketAddr>().ok())
            .filter(|a| is_global(a.ip()) && Some(a.ip()) == from)
        else {
            return;
        };
        let now = Instant::now();
        let changed = self
            .hub_parts
            .directs
            .lock()
            .map(|mut d| match d.get(&member) {
                Some((old, _)) if *old == addr => false,
                Some((_, at)) if now.duration_since(*at) < DIRECT_CHANGE_EVERY => false,
                _ => {
                    d.insert(member, (addr, now));
                    true
                }
            })
            .unwrap_or(false);
        if changed {
            tracing::debug!(%member, %addr, "a member can be dialed directly");
            // Store reads for every member online: off the driver.
            let hub = self.clone();
            tokio::task::spawn_blocking(move || hub.member_came_online(member));
        }
    }

    /// On a member, for a session with one of our hubs: the `Members`
    /// naming where we can be dialed directly, when a port is mapped on
    /// our router.
    pub(super) fn direct_word_for(&self, peer: FeedId) -> Option<Packet> {
        let mapped = self.mapped_address()?;
        let ours = self
            .member_settings()
            .hubs
            .iter()
            .any(|h| h.feed == Some(peer));
        ours.then(|| {
            Packet::Members(vec![MemberEntry {
                feed: self.feed_id(),
                direct: Some(mapped.to_string()),
            }])
        })
    }

    /// On a member: tells each connected hub of ours where we can be
    /// dialed directly (the mapped address changed).
    fn tell_hubs_direct(&self) {
        let connected: Vec<FeedId> = self
            .peers
            .lock()
            .map(|p| p.keys().copied().collect())
            .unwrap_or_default();
        for hub in connected {
            if let Some(packet) = self.direct_word_for(hub) {
                let _ = self.events.send(NodeEvent::HubPacket {
                    to: hub,
                    packet: Arc::new(packet),
                });
            }
        }
    }

    /// Keeps our hubs told of our mapped address as it changes; ends with
    /// the node.
    pub async fn tell_hubs_direct_loop(self: Arc<Self>) {
        let mut mapped = self.watch_mapped_address();
        let mut stop = self.shutdown.subscribe();
        loop {
            tokio::select! {
                changed = mapped.changed() => if changed.is_err() { return },
                _ = stop.changed() => return,
            }
            self.tell_hubs_direct();
        }
    }

    /// On a hub, follows just stored: a member that now follows another
    /// member who is connected is told so (`Members`), so that it can open
    /// a tunnel at once rather than at the next connect.
    pub(super) fn follows_stored(&self, report: &crate::store::IngestReport) {
        if self.hub_parts.hub.get().is_none() {
            return;
        }
        for change in report.contacts.iter().filter(|c| c.state.following) {
            let online = self
                .peers
                .lock()
                .map(|p| p.contains_key(&change.author) && p.contains_key(&change.contact))
                .unwrap_or(false);
            if online && self.is_member(&change.author) && self.is_member(&change.contact) {
                let direct = self
                    .hub_parts
                    .directs
                    .lock()
                    .ok()
                    .and_then(|d| d.get(&change.contact).map(|(a, _)| a.to_string()));
                let _ = self.events.send(NodeEvent::HubPacket {
                    to: change.author,
                    packet: Arc::new(Packet::Members(vec![MemberEntry {
                        feed: change.contact,
                        direct,
                    }])),
                });
            }
        }
    }

    /// On a hub, a member connected: tells it which connected members it
    /// follows, and tells each connected member that follows it that it
    /// is here (`Members`), so that they can open tunnels.
    pub(super) fn member_came_online(&self, member: FeedId) {
        if self.hub_parts.hub.get().is_none() || !self.is_member(&member) {
            return;
        }
        let online: Vec<FeedId> = self
            .peers
            .lock()
            .map(|p| p.keys().copied().collect())
            .unwrap_or_default();
        let follows = |who: &FeedId, whom: &FeedId| {
            self.store
                .contacts(who)
                .is_ok_and(|c| c.iter().any(|(f, s)| f == whom && s.following))
        };
        let entry = |feed| MemberEntry {
            feed,
            direct: self
                .hub_parts
                .directs
                .lock()
                .ok()
                .and_then(|d| d.get(&feed).map(|(a, _)| a.to_string())),
        };
        let mut theirs = Vec::new();
        for other in online
            .into_iter()
            .filter(|o| *o != member && self.is_member(o))
        {
            if follows(&member, &other) {
                theirs.push(entry(other));
            }
            if follows(&other, &member) {
                let _ = self.events.send(NodeEvent::HubPacket {
                    to: other,
                    packet: Arc::new(Packet::Members(vec![entry(member)])),
                });
            }
        }
        // In pieces that fit a frame whatever their addresses.
        for piece in theirs.chunks(MEMBERS_PER_PACKET) {
            let _ = self.events.send(NodeEvent::HubPacket {
                to: member,
                packet: Arc::new(Packet::Members(piece.to_vec())),
            });
        }
    }

    /// Notes in the peer book an address a hub gave for a member (dialed
    /// again at the next start only once it worked).
    fn remember_hub_address(&self, peer: &PeerAddr) {
        if matches!(self.store.peer_record(&peer.addr), Ok(Some(_))) {
            return;
        }
        let record = crate::proto::peerbook::PeerRecord::new(
            peer.addr.clone(),
            peer.feed,
            crate::proto::peerbook::PeerSource::Hub,
        );
        if let Err(e) = self.store.put_peer_record(&record) {
            tracing::warn!(error = %e, "cannot update the peer book");
        }
    }

    /// Dials `target` through each of our hubs in turn until one tunnel
    /// works (`once`: a one-off sync). The last hub's refusal is the
    /// error when none does.
    pub async fn dial_through_hubs(
        self: Arc<Self>,
        target: Option<FeedId>,
        once: bool,
    ) -> Result<SessionReport, ConnectionError> {
        let target = target.ok_or(ConnectionError::Refused(RefuseReason::NotAMember))?;
        let hubs = self.member_settings().hubs;
        let mut last = ConnectionError::Hub(
            "this node belongs to no hub: add one with `potluck hub add CODE`".into(),
        );
        for hub in &hubs {
            match self.clone().dial_tunnel(hub, target, once).await {
                Ok(report) => return Ok(report),
                Err(e) => {
                    tracing::info!(%hub, %target, error = %e, "no tunnel through this hub");
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// The called side: connects to the hub with `TunnelAccept`, then
    /// runs an ordinary session as the responder, pinned to `from`.
    async fn answer_tunnel(
        self: Arc<Self>,
        hub: &PeerAddr,
        token: [u8; TOKEN_LEN],
        from: FeedId,
    ) -> Result<SessionReport, ConnectionError> {
        let (conn, addr, mut report) = self
            .hub_request(hub, Packet::TunnelAccept { token })
            .await?;
        let Established {
            stream, decoder, ..
        } = conn;
        let mut inner = self.shake(stream, decoder, addr, None, &mut report).await?;
        inner.via_hub = hub.feed;
        if inner.remote != from {
            return Err(ConnectionError::Hub(format!(
                "the tunnel brought {} instead of {from}",
                inner.remote
            )));
        }
        match self.intake(&mut inner).await? {
            crate::proto::hub::Intake::Session(first) => inner.first = first,
            _ => {
                return Err(ConnectionError::Hub("a hub request inside a tunnel".into()));
            }
        }
        self.session(inner, addr, false, false, None, report).await
    }

    /// Connects to `hub`, shakes hands pinned to its feed, sends
    /// `request` and reads `TunnelReady` (or the refusal, as an error).
    async fn hub_request(
        &self,
        hub: &PeerAddr,
        request: Packet,
    ) -> Result<(Established, std::net::SocketAddr, SessionReport), ConnectionError> {
        let stream =
            tokio::time::timeout(self.config.timing.handshake, TcpStream::connect(&hub.addr))
                .await
                .map_err(|_| ConnectionError::HandshakeTimeout)??;
        let addr = stream.peer_addr()?;
        let mut report = SessionReport::default();
        let mut conn = self
            .shake(
                stream,
                FrameDecoder::new(),
                addr,
                Some(hub.feed),
                &mut report,
            )
            .await?;
        self.ask_hub(&mut conn, &request).await?;
        Ok((conn, addr, report))
    }

    /// Refuses a hub request: says why, and closes.
    async fn refuse_request(
        &self,
        mut conn: Established,
        reason: RefuseReason,
    ) -> Result<SessionReport, ConnectionError> {
        let _ = write_packet(&mut conn, &Packet::Refuse(reason)).await;
        let _ = conn.stream.shutdown().await;
        Err(ConnectionError::RefusedThem(reason))
    }
}

/// Copies bytes both ways between two connections until either closes,
/// or nothing moves for `idle`. Bytes that arrived after a side's request
/// (still in its decoder) go first. Returns the bytes each way.
async fn splice(mut a: Established, mut b: Established, idle: Duration) -> (u64, u64) {
    let a_early = a.decoder.take_unread();
    let b_early = b.decoder.take_unread();
    let early = async {
        b.stream.write_all(&a_early).await?;
        a.stream.write_all(&b_early).await
    };
    if !matches!(tokio::time::timeout(idle, early).await, Ok(Ok(()))) {
        return (0, 0);
    }
    let (mut a_read, mut a_write) = a.stream.split();
    let (mut b_read, mut b_write) = b.stream.split();
    let mut a_buf = vec![0u8; 16 * 1024];
    let mut b_buf = vec![0u8; 16 * 1024];
    let (mut there, mut back) = (a_early.len() as u64, b_early.len() as u64);
    loop {
        let step = tokio::time::timeout(idle, async {
            tokio::select! {
                n = a_read.read(&mut a_buf) => match n {
                    Ok(0) | Err(_) => None,
                    Ok(n) => b_write.write_all(&a_buf[..n]).await.ok().map(|()| (n as u64, 0)),
                },
                n = b_read.read(&mut b_buf) => match n {
                    Ok(0) | Err(_) => None,
                    Ok(n) => a_write.write_all(&b_buf[..n]).await.ok().map(|()| (0, n as u64)),
                },
            }
        })
        .await;
        match step {
            Ok(Some((x, y))) => {
                there += x;
                back += y;
            }
            Ok(None) | Err(_) => break,
        }
    }
    let _ = a_write.shutdown().await;
    let _ = b_write.shutdown().await;
    (there, back)
}
