//! Accepting, dialing and LAN discovery: the loops that make
//! connections, each then run by [`super::connection`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

use super::connection::read_frame;
use super::{BUSY_ANSWER, ConnectionError, DiscoverySettings, Node, NodeEvent, SessionReport};
use crate::feed::message::FeedId;
use crate::home::config::PeerAddr;
use crate::proto::discovery;
use crate::proto::frame::{FrameDecoder, encode_frame};
use crate::proto::peerbook::{PeerRecord, PeerSource};
use crate::proto::wire::RefuseReason;

impl Node {
    /// Accepts connections on `listener` until shutdown.
    pub async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        let mut stop = self.shutdown.subscribe();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.changed() => return,
            };
            let (stream, addr) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let admitted = self.connections().begin_handshake(addr, Instant::now());
            if let Err(refusal) = admitted {
                self.log_refusal(addr, refusal);
                // Say so, if not too many are being told already.
                if let Ok(permit) = self.busy_answers.clone().try_acquire_owned() {
                    tokio::spawn(async move {
                        let _permit = permit;
                        answer_busy(stream).await;
                    });
                }
                continue;
            }
            let node = self.clone();
            tokio::spawn(async move {
                // `connection` logs how it ended.
                let _ = node
                    .clone()
                    .connection(stream, addr, None, false, None)
                    .await;
            });
        }
    }

    /// Announces this node on the LAN and dials the nodes it hears, until
    /// shutdown. Only nodes with our network key can read announcements.
    /// Discovered addresses are dialed within a small budget of their own
    /// (see [`discovery::DialPlan`]), one attempt at a time per address:
    /// a node is dialed again when it is heard again.
    pub async fn discovery_loop(
        self: Arc<Self>,
        settings: DiscoverySettings,
    ) -> std::io::Result<()> {
        let binds = settings.reach.binds(settings.port);
        let socket = discovery_socket(binds[0])?;
        // On loopback, a second socket hears the loopback broadcasts.
        let second = match binds.get(1) {
            Some(bind) => Some(discovery_socket(*bind)?),
            None => None,
        };
        let me = self.feed_id();
        let mut recent = discovery::Recent::default();
        let mut plan = discovery::DialPlan::default();
        let (done_tx, mut done_rx) =
            tokio::sync::mpsc::channel::<(SocketAddr, bool)>(discovery::DISCOVERY_DIALS);
        let mut stop = self.shutdown.subscribe();
        let mut tick = tokio::time::interval(settings.every);
        let mut buf = [0u8; discovery::MAX_PACKET];
        let mut buf2 = [0u8; discovery::MAX_PACKET];
        tracing::info!(binds = ?binds, "LAN discovery on");
        loop {
            let received = tokio::select! {
                _ = stop.changed() => return Ok(()),
                _ = tick.tick() => {
                    let packet = discovery::seal(
                        &self.config.identity,
                        &self.config.network,
                        settings.announce_port,
                        jiff::Timestamp::now().as_millisecond(),
                        rand::random(),
                        rand::random(),
                    );
                    for target in &settings.targets {
                        if let Err(e) = socket.send_to(&packet, target).await {
                            tracing::debug!(%target, error = %e, "cannot send an announcement");
                        }
                    }
                    None
                }
                Some((addr, reached)) = done_rx.recv() => {
                    self.discovery_dial_ended(&mut plan, addr, reached);
                    None
                }
                r = socket.recv_from(&mut buf) => r.ok().map(|(n, from)| (buf[..n].to_vec(), from)),
                r = recv_maybe(second.as_ref(), &mut buf2) => r.ok().map(|(n, from)| (buf2[..n].to_vec(), from)),
            };
            if let Some((packet, from)) = received {
                if !settings.reach.hears(from.ip()) {
                    tracing::debug!(%from, "dropping an announcement from off this machine");
                    continue;
                }
                match discovery::open(&packet, &self.config.network) {
                    Ok(a) if a.feed == me => {}
                    Ok(a) => match recent.accept(&a, jiff::Timestamp::now().as_millisecond()) {
                        Ok(()) => {
                            self.discovered(&mut plan, a.feed, SocketAddr::new(from.ip(), a.port))
                        }
                        Err(e) => tracing::debug!(%from, error = %e, "dropping an announcement"),
                    },
                    Err(e) => tracing::debug!(%from, error = %e, "dropping a datagram"),
                }
            }
            self.start_discovery_dials(&mut plan, &done_tx);
        }
    }

    /// A peer announced itself: record the sighting in the plan and the
    /// peer book (an address the plan has no room for is dropped, so a
    /// flood of announcements cannot grow the book without end).
    fn discovered(&self, plan: &mut discovery::DialPlan, feed: FeedId, addr: SocketAddr) {
        let now = jiff::Timestamp::now().as_millisecond();
        let addr_text = addr.to_string();
        let known = self.store.peer_record(&addr_text).ok().flatten();
        let Some((record, evicted)) = plan.heard(feed, addr, known, now) else {
            tracing::debug!(%addr, "ignoring a new peer: too many candidates");
            return;
        };
        if let Some(gone) = evicted {
            let gone = gone.to_string();
            let never_worked = self
                .store
                .peer_record(&gone)
                .ok()
                .flatten()
                .is_some_and(|r| r.source == PeerSource::Discovered && r.last_success_ms.is_none());
            if never_worked && let Err(e) = self.store.remove_peer_record(&gone) {
                tracing::warn!(error = %e, "cannot update the peer book");
            }
        }
        if let Err(e) = self.store.put_peer_record(&record) {
            tracing::warn!(error = %e, "cannot update the peer book");
        }
    }

    /// Starts the dials the plan has room for. Each runs a session; its
    /// slot is given back as soon as the peer is connected (or the dial
    /// failed), so that connected peers do not use up the budget.
    fn start_discovery_dials(
        self: &Arc<Self>,
        plan: &mut discovery::DialPlan,
        done: &tokio::sync::mpsc::Sender<(SocketAddr, bool)>,
    ) {
        let now = jiff::Timestamp::now().as_millisecond();
        // At most one dial per free slot: bounded by the budget.
        for _ in 0..discovery::DISCOVERY_DIALS {
            let connected =
                |f: &FeedId| self.peers.lock().map(|p| p.contains_key(f)).unwrap_or(true);
            let Some((feed, addr)) = plan.next(now, connected) else {
                return;
            };
            tracing::info!(peer = %feed, %addr, "dialing a peer discovered on the LAN");
            let node = self.clone();
            let done = done.clone();
            tokio::spawn(async move {
                let peer = PeerAddr {
                    feed: Some(feed),
                    addr: addr.to_string(),
                };
                let events = node.subscribe();
                let session = node.clone().dial(&peer, false);
                tokio::pin!(session);
                let ended = until_connected(events, session.as_mut(), feed).await;
                let reached = ended.as_ref().is_none_or(|r| match r {
                    Ok(_) => true,
                    Err(e) => e.reached_peer(),
                });
                if let Some(Err(e)) = &ended {
                    tracing::debug!(peer = %peer, error = %e, "dial of a discovered peer ended");
                }
                let _ = done.send((addr, reached)).await;
                if ended.is_none() {
                    let _ = session.await;
                }
            });
        }
    }

    /// A dial started by discovery ended (or its peer is connected).
    fn discovery_dial_ended(
        &self,
        plan: &mut discovery::DialPlan,
        addr: SocketAddr,
        reached: bool,
    ) {
        let now = jiff::Timestamp::now().as_millisecond();
        if let Some(record) = plan.finished(addr, reached, now, rand::random::<f64>())
            && let Err(e) = self.store.put_peer_record(&record)
        {
            tracing::warn!(error = %e, "cannot update the peer book");
        }
    }

    /// Keeps a connection to `peer` up, reconnecting with exponential
    /// backoff and jitter, until shutdown. Every attempt is recorded in the
    /// peer book; an address that keeps failing is dialed less and less
    /// often, and given up on after a week of failures.
    pub async fn dial_loop(self: Arc<Self>, peer: PeerAddr, source: PeerSource) {
        {
            let mut dialing = self.dialing.lock().unwrap_or_else(|p| p.into_inner());
            if !dialing.insert(peer.addr.clone()) {
                return; // Another loop already keeps this address.
            }
        }
        self.clone().dial_loop_inner(&peer, source).await;
        self.dialing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&peer.addr);
    }

    async fn dial_loop_inner(self: Arc<Self>, peer: &PeerAddr, source: PeerSource) {
        let timing = self.config.timing.clone();
        let mut stop = self.shutdown.subscribe();
        loop {
            if *stop.borrow() {
                return;
            }
            let mut record = self
                .store
                .peer_record(&peer.addr)
                .ok()
                .flatten()
                .unwrap_or_else(|| PeerRecord::new(peer.addr.clone(), peer.feed, source));
            let now = jiff::Timestamp::now().as_millisecond();
            if record.given_up(now) {
                tracing::info!(peer = %peer, failures = record.failures, "giving up on this address until it is seen again");
                return;
            }
            let already = peer.feed.is_some_and(|f| {
                self.peers
                    .lock()
                    .map(|p| p.contains_key(&f))
                    .unwrap_or(false)
            });
            if !already {
                match self.clone().dial(peer, false).await {
                    Ok(report) => {
                        if let Some(feed) = report.peer {
                            record.succeeded(feed, jiff::Timestamp::now().as_millisecond());
                        }
                    }
                    // A person must see this one (their second node with
                    // the same identity, say); dialing on at the usual
                    // pace would only be refused again, so back off. (A
                    // crossed dial is not news: the other connection
                    // goes on.)
                    Err(e @ ConnectionError::Refused(reason))
                        if reason != RefuseReason::Crossed =>
                    {
                        record.failed();
                        tracing::warn!(peer = %peer, error = %e, "the peer refused the session; trying again later");
                    }
                    Err(e) if e.reached_peer() => {
                        if let Some(feed) = peer.feed {
                            record.succeeded(feed, jiff::Timestamp::now().as_millisecond());
                        }
                        tracing::debug!(peer = %peer, error = %e, "session ended");
                    }
                    Err(e) => {
                        record.failed();
                        tracing::debug!(peer = %peer, error = %e, failures = record.failures, "dial failed");
                    }
                }
                if let Err(e) = self.store.put_peer_record(&record) {
                    tracing::warn!(error = %e, "cannot update the peer book");
                }
            }
            let wait = record.backoff(rand::random::<f64>()).clamp(
                timing.min_backoff,
                timing.max_backoff.max(timing.min_backoff),
            );
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Dials `peer` once and runs a session. With `once`, the session ends
    /// as soon as both sides have everything (for `potluck sync`).
    pub async fn dial(
        self: Arc<Self>,
        peer: &PeerAddr,
        once: bool,
    ) -> Result<SessionReport, ConnectionError> {
        let stream =
            tokio::time::timeout(self.config.timing.handshake, TcpStream::connect(&peer.addr))
                .await
                .map_err(|_| ConnectionError::HandshakeTimeout)??;
        self.dial_over(stream, peer, once).await
    }

    /// Runs a session as the dialer over `stream`, already connected to
    /// `peer` (a caller that must choose the local address, such as a load
    /// test with many loopback sources, connects the socket itself).
    pub async fn dial_over(
        self: Arc<Self>,
        stream: TcpStream,
        peer: &PeerAddr,
        once: bool,
    ) -> Result<SessionReport, ConnectionError> {
        let addr = stream.peer_addr()?;
        self.connection(
            stream,
            addr,
            Some((peer.feed, peer.addr.as_str())),
            once,
            None,
        )
        .await
    }

    /// Dials a hub once with a member code, then runs a session (`once`:
    /// a one-off sync).
    pub async fn dial_with_code(
        self: Arc<Self>,
        hub: &PeerAddr,
        code: [u8; crate::proto::wire::TOKEN_LEN],
        once: bool,
    ) -> Result<SessionReport, ConnectionError> {
        let stream =
            tokio::time::timeout(self.config.timing.handshake, TcpStream::connect(&hub.addr))
                .await
                .map_err(|_| ConnectionError::HandshakeTimeout)??;
        let addr = stream.peer_addr()?;
        let join = crate::proto::wire::Packet::Join { token: code };
        self.connection(
            stream,
            addr,
            Some((hub.feed, hub.addr.as_str())),
            once,
            Some(join),
        )
        .await
    }
}

/// Tells a dialer this node has no room: reads its first handshake
/// message (so that closing does not reset the connection, which could
/// discard the answer), sends the busy frame and closes; all within
/// [`BUSY_ANSWER`].
async fn answer_busy(mut stream: TcpStream) {
    let _ = tokio::time::timeout(BUSY_ANSWER, async {
        let mut decoder = FrameDecoder::new();
        let mut read = 0;
        let _ = read_frame(&mut stream, &mut decoder, &mut read).await;
        if let Ok(frame) = encode_frame(crate::proto::handshake::BUSY_MESSAGE) {
            let _ = stream.write_all(&frame).await;
        }
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Runs a discovered peer's `session` until it ends (its result) or
/// `peer` is connected (`None`; the session goes on). It takes `events`
/// and drops it on return: a subscriber left unread for the rest of the
/// session would keep every notice the node sends, up to the channel's
/// 4,096, alive (a bulk sync's notices name thousands of events each).
async fn until_connected<F: std::future::Future>(
    mut events: broadcast::Receiver<NodeEvent>,
    mut session: std::pin::Pin<&mut F>,
    peer: FeedId,
) -> Option<F::Output> {
    // The session ends by the handshake deadline at the latest.
    loop {
        tokio::select! {
            r = &mut session => return Some(r),
            event = events.recv() => match event {
                Ok(NodeEvent::PeerConnected(f)) if f == peer => return None,
                Err(broadcast::error::RecvError::Closed) => return None,
                _ => {}
            },
        }
    }
}

/// Receives on `socket` if there is one; else never.
async fn recv_maybe(
    socket: Option<&tokio::net::UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// A UDP socket for discovery: shared with other local nodes
/// (`SO_REUSEADDR`, `SO_REUSEPORT`), allowed to broadcast.
fn discovery_socket(bind: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_broadcast(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&bind.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_for_a_discovered_peer_keeps_no_notices_once_it_is_connected() {
        let (events, _) = broadcast::channel(64);
        let peer = FeedId([7; 32]);
        let session = std::future::pending::<()>();
        tokio::pin!(session);
        let waiting = events.subscribe();
        events
            .send(NodeEvent::Appended(FeedId([1; 32]), 3))
            .unwrap();
        events.send(NodeEvent::PeerConnected(peer)).unwrap();
        assert!(
            until_connected(waiting, session.as_mut(), peer)
                .await
                .is_none()
        );
        // The session goes on; the wait subscribes no more, so the node's
        // later notices wait for no one.
        assert_eq!(events.receiver_count(), 0);
        assert_eq!(events.len(), 0, "no notice is held");
    }

    #[tokio::test]
    async fn a_session_that_ends_first_gives_its_result() {
        let (events, _) = broadcast::channel::<NodeEvent>(4);
        let session = std::future::ready(5);
        tokio::pin!(session);
        let waiting = events.subscribe();
        assert_eq!(
            until_connected(waiting, session.as_mut(), FeedId([7; 32])).await,
            Some(5)
        );
        assert_eq!(events.receiver_count(), 0);
    }
}
