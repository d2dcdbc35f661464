//! One connection: the handshake, the admission of the peer (an inbound
//! slot, one connection per feed), then replication, a short loop that
//! waits for what happens next and hands it to the connection's
//! [`Driver`]. The socket tasks are in [`super::io`].

use std::net::{IpAddr, SocketAddr};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::driver::Driver;
use super::io::{Socket, push_all};
use super::limits::ConnectionId;
use super::{
    ConnectionError, Node, NodeConfig, NodeEvent, PeerEntry, PeerInfo, PeerProgress, SessionReport,
    allow_line,
};
use crate::feed::message::FeedId;
use crate::proto::frame::{FrameDecoder, encode_frame};
use crate::proto::handshake::{Handshake, HandshakeError, Transport};
use crate::proto::hub::Intake;
use crate::proto::peerbook::{PeerRecord, PeerSource};
use crate::proto::wire::{FramePacker, Packet, RefuseReason};

/// How long a hub waits after a member connected before it tells the
/// members that follow it.
const MEMBER_ANNOUNCE_DELAY: Duration = Duration::from_millis(300);

/// How long a refused peer may take to read why and close, before we
/// close anyway.
const REFUSAL_WAIT: Duration = Duration::from_secs(2);

/// How a session starts: who dialed, whether it is a one-off sync, and the
/// node's events, subscribed before the peer was registered.
struct SessionStart {
    outbound: bool,
    once: bool,
    events: tokio::sync::broadcast::Receiver<NodeEvent>,
}

/// A connection past the handshake.
pub(super) struct Established {
    pub(super) stream: TcpStream,
    pub(super) transport: Transport,
    /// May already hold the first transport frames (they can arrive in the
    /// same read as the last handshake message).
    pub(super) decoder: FrameDecoder,
    /// The peer's feed.
    pub(super) remote: FeedId,
    /// The peer's first packets, already read (see [`Node::intake`]).
    pub(super) first: Vec<Packet>,
    /// The hub whose tunnel carries this connection, if any.
    pub(super) via_hub: Option<FeedId>,
}

impl Node {
    /// Runs one connection: handshake, then replication.
    /// `dial` is `Some((expected feed, dialed address))` when we dialed;
    /// `request`, a hub request to send first (a member code's `Join`).
    pub(super) async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        addr: SocketAddr,
        dial: Option<(Option<FeedId>, &str)>,
        once: bool,
        request: Option<Packet>,
    ) -> Result<SessionReport, ConnectionError> {
        let book_addr = dial.map(|(_, a)| a.to_owned());
        let dial = dial.map(|(feed, _)| feed);
        // An inbound connection holds a handshake slot until the handshake
        // ends, however it ends.
        let handshake_slot = dial.is_none().then(|| HandshakeSlot {
            node: &self,
            remote: addr,
            established: false,
        });
        let mut report = SessionReport::default();
        let mut conn = self
            .shake(stream, FrameDecoder::new(), addr, dial, &mut report)
            .await?;
        self.remember_if_trusted(conn.remote, addr.ip());
        // Past the handshake, an inbound connection needs an established
        // slot (perhaps the idlest peer's).
        let inbound_slot = match handshake_slot {
            Some(slot) => Some(self.establish(slot, addr)?),
            None => None,
        };
        let remote = conn.remote;
        report.peer = Some(remote);
        if remote == self.feed_id() {
            return Err(ConnectionError::Duplicate(remote));
        }
        match (dial, request) {
            (Some(_), Some(request)) => self.ask_hub(&mut conn, &request).await?,
            (Some(_), None) => {}
            (None, _) if self.was_removed(&remote) => {
                tracing::info!(peer = %remote, %addr, "refusing a removed member");
                self.refuse(conn, RefuseReason::Removed).await;
                return Err(ConnectionError::RefusedThem(RefuseReason::Removed));
            }
            (None, _) => match self.intake(&mut conn).await? {
                Intake::Session(first) => conn.first = first,
                Intake::Join(token) => self.handle_join(&mut conn, token).await?,
                // One end of a tunnel: bounded by the hub's tunnel limits
                // rather than by connection slots (a tunnel is busy, not
                // idle, and must not be taken for the idlest peer).
                Intake::Tunnel(target) => {
                    drop(inbound_slot);
                    return self.relay_tunnel(conn, target, report).await;
                }
                Intake::TunnelAccept(token) => {
                    drop(inbound_slot);
                    return self.tunnel_end_arrived(conn, token, report).await;
                }
            },
        }
        if let Some(addr) = book_addr.as_deref().filter(|_| !once) {
            self.note_reached(addr, remote);
        }
        self.session(
            conn,
            addr,
            dial.is_some(),
            once,
            inbound_slot.as_ref(),
            report,
        )
        .await
    }

    /// The session of a connection past the handshake (and any hub
    /// request): one connection per peer, then replication until either
    /// side ends it.
    pub(super) async fn session(
        self: &Arc<Self>,
        conn: Established,
        addr: SocketAddr,
        outbound: bool,
        once: bool,
        inbound_slot: Option<&InboundSlot<'_>>,
        mut report: SessionReport,
    ) -> Result<SessionReport, ConnectionError> {
        let remote = conn.remote;
        report.peer = Some(remote);
        let progress = Arc::new(PeerProgress::default());
        // Subscribed before the peer is registered: what is sent to this
        // session from then on (a hub's `TunnelCall`, `Members`) waits
        // here while the driver opens.
        let events = self.events.subscribe();
        let via_hub = conn.via_hub;
        if let Err(reason) = self
            .register(remote, addr, outbound, via_hub, &progress)
            .await
        {
            // Say why: the person behind the other node (say, a second
            // node with the same identity) learns what happened.
            tracing::info!(peer = %remote, %addr, %reason, "closing a second connection of a peer that is already connected, and telling it why");
            self.refuse(conn, reason).await;
            return Err(ConnectionError::Duplicate(remote));
        }
        match via_hub {
            Some(hub) => tracing::info!(peer = %remote, %hub, "connected through a hub's tunnel"),
            None => tracing::info!(peer = %remote, %addr, "connected"),
        }
        let _ = self.events.send(NodeEvent::PeerConnected(remote));
        if self.is_member(&remote) {
            // A moment for the member's own word on where it can be dialed
            // directly (sent right after its Hello), so that the others
            // are told that at once.
            let hub = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(MEMBER_ANNOUNCE_DELAY).await;
                if hub
                    .peers
                    .lock()
                    .map(|p| p.contains_key(&remote))
                    .unwrap_or(false)
                {
                    hub.member_came_online(remote);
                }
            });
        }
        let result = self
            .replicate(
                conn,
                SessionStart {
                    outbound,
                    once,
                    events,
                },
                inbound_slot,
                &progress,
                &mut report,
            )
            .await;
        self.peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&remote);
        self.save_member_bytes(&remote);
        let _ = self.events.send(NodeEvent::PeerLeft(remote));
        report.received = progress.received.load(Ordering::Relaxed);
        report.sent = progress.sent.load(Ordering::Relaxed);
        match &result {
            Ok(()) => tracing::info!(
                peer = %remote,
                %addr,
                received = report.received,
                sent = report.sent,
                "disconnected"
            ),
            Err(e) => tracing::warn!(
                peer = %remote,
                %addr,
                received = report.received,
                sent = report.sent,
                error = %e,
                "disconnected"
            ),
        }
        result.map(|()| report)
    }

    /// Replicates over an established connection until either side ends
    /// it: waits for the next thing to happen and hands it to the
    /// [`Driver`].
    async fn replicate(
        self: &Arc<Self>,
        conn: Established,
        start: SessionStart,
        slot: Option<&InboundSlot<'_>>,
        progress: &PeerProgress,
        report: &mut SessionReport,
    ) -> Result<(), ConnectionError> {
        let SessionStart {
            outbound,
            once,
            mut events,
        } = start;
        let mut socket = Socket::open(
            conn.stream,
            conn.transport,
            conn.decoder,
            conn.first,
            &self.counters,
        );
        let mut driver = Driver::open(self, conn.remote, outbound, once, slot, progress).await?;
        let evicted = slot.map(|s| &*s.evicted);
        let mut stop = self.shutdown.subscribe();
        let timer = tokio::time::sleep_until(driver.deadline());
        tokio::pin!(timer);
        let outcome = loop {
            driver.poll(timer.as_mut());
            let closing = driver.is_closing();
            // Not `biased`: during a long one-way sync packets are always
            // ready, and a fixed order would starve the sending branch and
            // the keepalive, so the peer, hearing nothing, would hang up.
            let step = tokio::select! {
                _ = stop.changed(), if !closing => driver.close(),
                () = notified(evicted), if !closing => driver.close(),
                first = socket.inbound.recv() => {
                    driver.handle_inbound(first, &mut socket.inbound).await
                }
                room = socket.outbound.reserve(), if driver.wants_to_send() => {
                    driver.handle_writable(room)
                }
                event = events.recv() => driver.handle_event(event),
                () = &mut timer => driver.handle_timeout(timer.as_mut()),
            };
            match step {
                Ok(ControlFlow::Continue(())) => {}
                Ok(ControlFlow::Break(())) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        driver.finish(socket, outcome, report).await
    }

    /// Runs the handshake within the node's deadline, counting its bytes;
    /// logs how it failed (a stranger's failures rate-limited).
    pub(super) async fn shake(
        &self,
        mut stream: TcpStream,
        decoder: FrameDecoder,
        addr: SocketAddr,
        dial: Option<Option<FeedId>>,
        report: &mut SessionReport,
    ) -> Result<Established, ConnectionError> {
        stream.set_nodelay(true)?;
        let shaken = tokio::time::timeout(
            self.config.timing.handshake,
            handshake(&mut stream, decoder, &self.config, dial, report),
        )
        .await
        .map_err(|_| ConnectionError::HandshakeTimeout)
        .and_then(|r| r);
        self.counters
            .bytes_in
            .fetch_add(report.bytes_in, Ordering::Relaxed);
        self.counters
            .bytes_out
            .fetch_add(report.bytes_out, Ordering::Relaxed);
        match shaken {
            Ok((transport, remote, decoder)) => Ok(Established {
                stream,
                transport,
                decoder,
                remote,
                first: Vec::new(),
                via_hub: None,
            }),
            Err(e) if dial.is_none() => {
                // Strangers' failed handshakes can come by the thousand.
                tracing::debug!(%addr, error = %e, "handshake failed");
                if let Some(earlier) = allow_line(&self.handshake_log) {
                    tracing::warn!(%addr, error = %e, failed_since_last_line = earlier, "an inbound handshake failed");
                }
                Err(e)
            }
            Err(e) => {
                tracing::warn!(%addr, error = %e, "handshake failed");
                Err(e)
            }
        }
    }

    /// Trades an inbound connection's handshake slot for an established
    /// one, closing the idlest peer's connection to make room if needed.
    fn establish(
        &self,
        mut handshake: HandshakeSlot<'_>,
        addr: SocketAddr,
    ) -> Result<InboundSlot<'_>, ConnectionError> {
        handshake.established = true;
        drop(handshake);
        // Its own statement: `log_refusal` takes the lock again.
        let established = self.connections().establish(addr.ip(), Instant::now());
        let (id, evict) = established.map_err(|refusal| {
            self.log_refusal(addr, refusal);
            ConnectionError::Busy
        })?;
        let evicted = Arc::new(Notify::new());
        let mut evictions = self.evictions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(idlest) = evict.and_then(|old| evictions.remove(&old)) {
            tracing::info!(%addr, "making room for a new peer: closing the connection idle longest");
            idlest.notify_one();
        }
        evictions.insert(id, evicted.clone());
        Ok(InboundSlot {
            node: self,
            id,
            evicted,
        })
    }

    /// A handshake with `remote` from `address` succeeded: if the peer
    /// is trusted, `address` is known from now on and gets a reserved
    /// handshake slot (issue 20), whichever side dialed.
    fn remember_if_trusted(&self, remote: FeedId, address: IpAddr) {
        if remote != self.feed_id() && self.is_trusted_peer(remote) {
            self.connections().remember_known(address, Instant::now());
        }
    }

    /// The dialed address works: note it in the peer book now, not when
    /// the (possibly long) session ends.
    fn note_reached(&self, addr: &str, remote: FeedId) {
        let mut record = self
            .store
            .peer_record(addr)
            .ok()
            .flatten()
            .unwrap_or_else(|| {
                PeerRecord::new(addr.to_owned(), Some(remote), PeerSource::Configured)
            });
        record.succeeded(remote, jiff::Timestamp::now().as_millisecond());
        let _ = self.store.put_peer_record(&record);
    }

    /// Makes this connection the one of `remote`, unless another one is
    /// (then returns what to tell the peer). Already connected to this
    /// feed? Two cases:
    /// - both sides dialed each other at once (common after discovery):
    ///   keep the connection dialed by the smaller feed id, on both sides
    ///   alike, so exactly one survives;
    /// - the peer reconnected while its previous session is still closing
    ///   here: give that a moment (a second node with the same identity
    ///   is still connected after it).
    async fn register(
        &self,
        remote: FeedId,
        addr: SocketAddr,
        outbound: bool,
        via_hub: Option<FeedId>,
        progress: &Arc<PeerProgress>,
    ) -> Result<(), RefuseReason> {
        let dialer = if outbound { self.feed_id() } else { remote };
        let smaller = self.feed_id().min(remote);
        for _ in 0..30 {
            let existing = self
                .peers
                .lock()
                .map(|p| p.get(&remote).map(|e| e.info.outbound))
                .unwrap_or(None);
            match existing {
                None => break,
                Some(existing_outbound) if existing_outbound != outbound && dialer != smaller => {
                    return Err(RefuseReason::Crossed);
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if peers.contains_key(&remote) {
            return Err(RefuseReason::AlreadyConnected);
        }
        peers.insert(
            remote,
            PeerEntry {
                info: PeerInfo {
                    feed: remote,
                    address: addr.to_string(),
                    outbound,
                    connected_since_ms: jiff::Timestamp::now().as_millisecond(),
                    received: 0,
                    sent: 0,
                    caught_up: false,
                    remaining: 0,
                    via_hub,
                    holds_mine: None,
                },
                progress: progress.clone(),
            },
        );
        Ok(())
    }

    /// Ends an established connection at once, telling the peer why (a
    /// `Refuse` packet instead of our `Hello`), and closes it once the
    /// peer has read that (or after [`REFUSAL_WAIT`]).
    async fn refuse(&self, conn: Established, reason: RefuseReason) {
        let socket = Socket::open(
            conn.stream,
            conn.transport,
            conn.decoder,
            Vec::new(),
            &self.counters,
        );
        let mut packer = FramePacker::new();
        if packer.push(&Packet::Refuse(reason)).is_ok() {
            let _ = socket.outbound.send(packer.take()).await;
        }
        socket.close(REFUSAL_WAIT).await;
    }
}

/// Waits until the connection's slot is given to a newcomer, if it has
/// one (an outbound connection has none: never).
async fn notified(evicted: Option<&Notify>) {
    match evicted {
        Some(evicted) => evicted.notified().await,
        None => std::future::pending().await,
    }
}

/// An inbound connection's handshake slot; given back when the handshake
/// ends, however it ends.
pub(super) struct HandshakeSlot<'a> {
    node: &'a Node,
    remote: SocketAddr,
    /// The handshake succeeded: the address slot goes on with the
    /// established connection.
    established: bool,
}

impl Drop for HandshakeSlot<'_> {
    fn drop(&mut self) {
        self.node
            .connections()
            .handshake_ended(self.remote, self.established);
    }
}

/// An established inbound connection's slot; given back when the
/// connection ends, however it ends. `evicted` fires when the slot is
/// given to a newcomer.
pub(super) struct InboundSlot<'a> {
    node: &'a Node,
    pub(super) id: ConnectionId,
    evicted: Arc<Notify>,
}

impl Drop for InboundSlot<'_> {
    fn drop(&mut self) {
        self.node.connections().end(self.id);
        self.node
            .evictions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

/// Runs the Noise handshake over length-prefixed frames.
/// Returns the transport, the peer's feed, and the frame decoder, which
/// may already hold the first transport frames (they can arrive in the
/// same read as the last handshake message).
async fn handshake(
    stream: &mut TcpStream,
    mut decoder: FrameDecoder,
    config: &NodeConfig,
    dial: Option<Option<FeedId>>,
    report: &mut SessionReport,
) -> Result<(Transport, FeedId, FrameDecoder), ConnectionError> {
    let mut hs = match dial {
        Some(expect) => Handshake::initiator(&config.identity, &config.network, expect)?,
        None => Handshake::responder(&config.identity, &config.network)?,
    };
    while !hs.is_finished() {
        if let Some(out) = hs.next_outgoing()? {
            let frame = encode_frame(&out)?;
            stream.write_all(&frame).await?;
            report.bytes_out += frame.len() as u64;
            continue;
        }
        let frame = match read_frame(stream, &mut decoder, &mut report.bytes_in).await {
            Err(ConnectionError::Closed) => return Err(ConnectionError::HandshakeRejected),
            Err(ConnectionError::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(ConnectionError::HandshakeRejected);
            }
            other => other?,
        };
        hs.read_incoming(&frame).map_err(|e| match e {
            HandshakeError::Busy => ConnectionError::Busy,
            e => e.into(),
        })?;
    }
    // The initiator still owes its last message after reading message 2.
    if let Some(out) = hs.next_outgoing()? {
        let frame = encode_frame(&out)?;
        stream.write_all(&frame).await?;
        report.bytes_out += frame.len() as u64;
    }
    let (transport, remote) = hs.finish()?;
    Ok((transport, remote, decoder))
}

/// Reads one frame (the handshake's, or a busy answer's).
pub(super) async fn read_frame(
    stream: &mut TcpStream,
    decoder: &mut FrameDecoder,
    bytes_in: &mut u64,
) -> Result<Vec<u8>, ConnectionError> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = decoder.next_frame()? {
            return Ok(frame);
        }
        let want = decoder.room().min(buf.len());
        let n = stream.read(&mut buf[..want]).await?;
        if n == 0 {
            return Err(ConnectionError::Closed);
        }
        *bytes_in += n as u64;
        push_all(decoder, &buf[..n])?;
    }
}
