//! The running node: tokio tasks that accept and dial connections, run the
//! handshake, and drive a [`Session`] per peer. Protocol decisions live in
//! `handshake`, `wire` and `replicate`; this module only moves bytes,
//! runs timers and calls the store.
//!
//! Each connection has three tasks joined by small bounded channels, so a
//! slow or stalled peer blocks only its own connection and nothing grows
//! without bound:
//!
//! ```text
//! socket ─► reader (frames, decrypt, decode, check signatures) ─► driver (session, store) ─► writer (encrypt, frames) ─► socket
//! ```
//!
//! The reader checks the signatures of one frame while the driver stores
//! the previous batch, so the two cores work at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use serde::Serialize;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, watch};

use crate::admission;
use crate::config::PeerAddr;
use crate::discovery;
use crate::frame::{FrameDecoder, FrameError, encode_frame};
use crate::handshake::{Handshake, HandshakeError, NetworkKey, Transport};
use crate::limits::{ConnectionId, Connections, Limits, RateLimitedLog, Refusal};
use crate::message::{FeedId, Message, MessageId};
use crate::peerbook::{PeerRecord, PeerSource};
use crate::quota;
use crate::replicate::{
    self, Clock, Incoming, ModeChange, PeerMemory, Policy, ProtocolError, Session, Sources,
};
use crate::store::{IngestReport, Store, StoreError};
use crate::validate::{Checked, ValidationError};
use crate::wire::{FramePacker, MAX_PLAINTEXT, Packet, WireError};

/// Timers and limits of a node.
#[derive(Clone, Debug)]
pub struct Timing {
    /// A handshake must finish within this.
    pub handshake: Duration,
    /// Send a ping when nothing was sent for this long.
    pub keepalive: Duration,
    /// Close a connection that received nothing for this long.
    pub idle: Duration,
    /// First reconnect delay; doubles up to `max_backoff`.
    pub min_backoff: Duration,
    /// Longest reconnect delay.
    pub max_backoff: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            // Short: a stranger's silent socket holds a handshake slot
            // this long at most.
            handshake: Duration::from_secs(5),
            keepalive: Duration::from_secs(15),
            idle: Duration::from_secs(60),
            min_backoff: Duration::from_millis(500),
            max_backoff: crate::peerbook::MAX_BACKOFF,
        }
    }
}

/// Most messages ingested in one store batch.
const INGEST_BATCH: usize = 2_000;
/// Plaintext bytes gathered into one write batch (several frames).
const WRITE_BATCH_BYTES: usize = 4 * MAX_PLAINTEXT;
/// Most busy answers being given at once (each reads the dialer's first
/// handshake message for at most [`BUSY_ANSWER`]); beyond that, refused
/// connections are closed without a word.
const MAX_BUSY_ANSWERS: usize = 64;
/// How long a busy answer may take.
const BUSY_ANSWER: Duration = Duration::from_secs(1);
/// At most one log line per this long about refused connections.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);
/// How long a peer's note may show it holds more of a feed than we do
/// before we ask it to push that feed (the chosen source fell behind).
/// Well above a hop's delay on a busy machine, so that sources do not
/// flap; it bounds the extra latency when a source stalls.
const SOURCE_GRACE: Duration = Duration::from_millis(400);
/// How often a connection checks for feeds past their grace time.
const SOURCE_CHECK: Duration = Duration::from_millis(200);
/// Notes (latest sequences for peers that take a feed as notes only) go
/// out at most this often per connection, together: on a busy node one
/// frame carries many feeds' notes instead of one frame per new message,
/// and a note mostly arrives after the message it announces came from the
/// source, so it costs the receiver nothing. Notes only serve to notice a
/// lagging source, which waits at least the grace time anyway.
const NOTES_EVERY: Duration = Duration::from_millis(200);
/// How often a connection tells front ends how its catch-up goes.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// While nothing moves on a connection, how often its progress is checked
/// anyway: the check walks both clocks (a peer's may hold 200,000
/// entries), so an idle or stalling peer must not make it run every second.
const PROGRESS_IDLE_RECHECK: Duration = Duration::from_secs(10);

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

/// What one connection exchanged.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SessionReport {
    /// The peer's feed.
    pub peer: Option<FeedId>,
    /// Messages from the peer that we stored.
    pub received: u64,
    /// Messages we sent.
    pub sent: u64,
    /// Bytes read from the socket.
    pub bytes_in: u64,
    /// Bytes written to the socket.
    pub bytes_out: u64,
}

/// A connected peer, for `potluck peers`.
#[derive(Clone, Debug, Serialize)]
pub struct PeerInfo {
    /// The peer's feed.
    pub feed: FeedId,
    /// The remote address.
    pub address: String,
    /// Whether we dialed it.
    pub outbound: bool,
    /// Connected since (ms since the Unix epoch).
    pub connected_since_ms: i64,
    /// Messages received so far.
    pub received: u64,
    /// Messages sent so far.
    pub sent: u64,
    /// Whether the two sides hold what each wants of the other.
    pub caught_up: bool,
    /// Messages its clock promises that we want and lack yet (as of the
    /// last progress check, every second or so).
    pub remaining: u64,
}

struct PeerEntry {
    info: PeerInfo,
    progress: Arc<PeerProgress>,
}

/// What a connection's driver reports as it goes, read by [`Node::peers`].
#[derive(Default)]
struct PeerProgress {
    received: AtomicU64,
    sent: AtomicU64,
    caught_up: AtomicBool,
    remaining: AtomicU64,
}

/// Where and how a node announces itself on the LAN.
#[derive(Clone, Debug)]
pub struct DiscoverySettings {
    /// Whether discovery reaches the LAN or only this machine (a node
    /// listening on loopback); decides where the node listens for
    /// announcements and whose it hears.
    pub reach: discovery::Reach,
    /// The discovery UDP port; shared with other nodes on the same
    /// machine.
    pub port: u16,
    /// Where to send announcements (the LAN broadcast address; on one
    /// machine, `127.255.255.255:PORT` reaches every local node).
    pub targets: Vec<SocketAddr>,
    /// The TCP port to announce (our listen port).
    pub announce_port: u16,
    /// Time between announcements.
    pub every: Duration,
}

/// What every connection of a node hears about (and, through
/// [`Node::subscribe`], anyone watching the node, e.g. a benchmark).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum NodeEvent {
    /// The store now holds this feed up to this sequence.
    Appended(FeedId, u64),
    /// We blocked or unblocked a feed.
    Blocking {
        /// The feed.
        feed: FeedId,
        /// Blocked now?
        blocked: bool,
    },
    /// The connection to `change.peer` must ask its peer for new push
    /// modes (which feeds it pushes live, which it only notes).
    Modes(Arc<ModeChange>),
    /// These events' state, RSVPs or admissions changed (for front ends:
    /// a page shows them anew).
    EventsChanged(Arc<[MessageId]>),
    /// A peer connected (after the handshake).
    PeerConnected(FeedId),
    /// A peer's connection ended.
    PeerLeft(FeedId),
    /// How far a connected peer's catch-up is: sent when it starts or
    /// stops being caught up, and every few seconds while messages arrive.
    Progress {
        /// The peer.
        peer: FeedId,
        /// Messages received from it on this connection so far.
        received: u64,
        /// Messages its clock promises that we want and lack yet.
        remaining: u64,
        /// We hold everything it offered that we want, and it holds
        /// everything we can give it.
        caught_up: bool,
    },
}

/// Running totals of a node's gossip, over every connection so far.
#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    duplicates: AtomicU64,
    sent: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

/// A snapshot of a node's gossip totals (see [`Node::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeStats {
    /// Messages from peers that were new and stored.
    pub received: u64,
    /// Messages from peers that we already held (sent to us twice).
    pub duplicates: u64,
    /// Messages we sent to peers.
    pub sent: u64,
    /// Bytes read from peers' sockets, handshakes included.
    pub bytes_in: u64,
    /// Bytes written to peers' sockets, handshakes included.
    pub bytes_out: u64,
    /// Peers told to send only notes of a feed (they sent what we held).
    pub to_notes: u64,
    /// Peers asked to push a feed that nobody known was pushing.
    pub asked_at_once: u64,
    /// Peers asked to push a feed because the source fell behind.
    pub asked_after_grace: u64,
}

/// Everything a node needs to run.
#[derive(Clone)]
pub struct NodeConfig {
    /// Our identity.
    pub identity: SigningKey,
    /// The network we belong to.
    pub network: NetworkKey,
    /// Which feeds we replicate.
    pub policy: Policy,
    /// Timers.
    pub timing: Timing,
}

/// A running node: the store, the connected peers, and the channel that
/// announces every new message to every connection.
pub struct Node {
    store: Arc<Store>,
    config: NodeConfig,
    events: broadcast::Sender<NodeEvent>,
    peers: Mutex<HashMap<FeedId, PeerEntry>>,
    /// Addresses with a running dial loop.
    dialing: Mutex<std::collections::HashSet<String>>,
    /// One admission decision at a time: two connections deciding from
    /// the same snapshot would contradict each other.
    settling: Mutex<()>,
    /// Inbound connections, handshaking and established: bounds what
    /// strangers can make us hold open.
    connections: Mutex<Connections>,
    /// How to close each established inbound connection to make room.
    evictions: Mutex<HashMap<ConnectionId, Arc<tokio::sync::Notify>>>,
    /// Busy answers being given.
    busy_answers: Arc<tokio::sync::Semaphore>,
    /// Refused connections, logged at most once per [`REFUSAL_LOG_EVERY`].
    refusal_log: Mutex<RateLimitedLog>,
    /// Failed inbound handshakes, likewise.
    handshake_log: Mutex<RateLimitedLog>,
    shutdown: watch::Sender<bool>,
    counters: Arc<Counters>,
    /// Which connection each feed comes live from.
    sources: Mutex<Sources>,
    /// What strangers may make us store (see [`crate::quota`]).
    quotas: Mutex<quota::Quotas>,
}

impl Node {
    /// A node over an open store, with the default connection limits.
    pub fn new(store: Arc<Store>, config: NodeConfig) -> Arc<Node> {
        Node::with_limits(store, config, Limits::default())
    }

    /// A node over an open store, with these limits on inbound
    /// connections.
    pub fn with_limits(store: Arc<Store>, config: NodeConfig, limits: Limits) -> Arc<Node> {
        let (events, _) = broadcast::channel(4096);
        let (shutdown, _) = watch::channel(false);
        Arc::new(Node {
            store,
            config,
            events,
            peers: Mutex::new(HashMap::new()),
            connections: Mutex::new(Connections::new(limits)),
            evictions: Mutex::new(HashMap::new()),
            busy_answers: Arc::new(tokio::sync::Semaphore::new(MAX_BUSY_ANSWERS)),
            refusal_log: Mutex::new(RateLimitedLog::new(REFUSAL_LOG_EVERY)),
            handshake_log: Mutex::new(RateLimitedLog::new(REFUSAL_LOG_EVERY)),
            dialing: Mutex::new(std::collections::HashSet::new()),
            settling: Mutex::new(()),
            shutdown,
            counters: Arc::new(Counters::default()),
            sources: Mutex::new(Sources::new(SOURCE_GRACE)),
            quotas: Mutex::new(quota::Quotas::new(quota::QuotaLimits::default())),
        })
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, Sources> {
        self.sources.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn connections(&self) -> std::sync::MutexGuard<'_, Connections> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs a refused connection, at most once per [`REFUSAL_LOG_EVERY`].
    fn log_refusal(&self, addr: SocketAddr, refusal: Refusal) {
        if let Some(earlier) = allow_line(&self.refusal_log) {
            let (handshaking, established) = self.connections().counts();
            tracing::warn!(%addr, reason = refusal.as_str(), refused_since_last_line = earlier, handshaking, established, "refusing a connection: the node is busy");
        }
    }

    /// Hands push-mode changes to the connections they concern, one event
    /// per peer.
    fn announce_modes(&self, changes: Vec<ModeChange>) {
        let mut merged: Vec<ModeChange> = Vec::new();
        for change in changes {
            match merged
                .iter_mut()
                .find(|m| m.peer == change.peer && change.reset.is_none())
            {
                Some(m) => m.feeds.extend(change.feeds),
                None => merged.push(change),
            }
        }
        for change in merged {
            let _ = self.events.send(NodeEvent::Modes(Arc::new(change)));
        }
    }

    /// Totals of what this node's connections exchanged so far.
    pub fn stats(&self) -> NodeStats {
        let c = &self.counters;
        let sources = self.sources().counts();
        NodeStats {
            received: c.received.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            sent: c.sent.load(Ordering::Relaxed),
            bytes_in: c.bytes_in.load(Ordering::Relaxed),
            bytes_out: c.bytes_out.load(Ordering::Relaxed),
            to_notes: sources.to_notes,
            asked_at_once: sources.asked_at_once,
            asked_after_grace: sources.asked_after_grace,
        }
    }

    /// Every event of the node from now on: new messages in the store
    /// (published, imported or received) and block changes. A receiver
    /// that falls behind loses the oldest events (see
    /// [`broadcast::Receiver::recv`]).
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The network we belong to.
    pub fn network_key(&self) -> &NetworkKey {
        &self.config.network
    }

    /// Our feed id.
    pub fn feed_id(&self) -> FeedId {
        FeedId(self.config.identity.verifying_key().to_bytes())
    }

    /// Publishes content (durably) and pushes it to connected peers.
    pub fn publish(&self, content: &[u8], timestamp: i64) -> Result<Message, StoreError> {
        let report = self
            .store
            .publish(&self.config.identity, content, timestamp)?;
        self.after_append(&report)?;
        report
            .message()
            .cloned()
            .ok_or_else(|| StoreError::CorruptLog {
                key: self.feed_id().to_string(),
                reason: "published message was not appended".into(),
            })
    }

    /// The one step after anything was appended (published here, received
    /// from a peer, or imported): tell every connection and front end what
    /// is new, let our own blocks take effect on live sessions, and, as the
    /// organizer, decide on new requests to our events. Blocking.
    pub fn after_append(&self, report: &IngestReport) -> Result<(), StoreError> {
        self.announce(report);
        if !report.touched_events.is_empty() {
            let arrivals: Vec<MessageId> = report.accepted.iter().map(Message::id).collect();
            self.settle(&report.touched_events, &arrivals)?;
        }
        Ok(())
    }

    /// Announces an append on the node's channel (no decisions).
    fn announce(&self, report: &IngestReport) {
        for msg in &report.accepted {
            let _ = self
                .events
                .send(NodeEvent::Appended(msg.author(), msg.sequence()));
        }
        let me = self.feed_id();
        for change in report.contacts.iter().filter(|c| c.author == me) {
            let _ = self.events.send(NodeEvent::Blocking {
                feed: change.contact,
                blocked: change.state.blocking,
            });
        }
        if !report.touched_events.is_empty() {
            let _ = self.events.send(NodeEvent::EventsChanged(Arc::from(
                report.touched_events.as_slice(),
            )));
        }
    }

    /// As the organizer, decides pending requests to `events` (admissions
    /// for events with a capacity), publishes the decisions and pushes
    /// them to peers. Blocking: call from a blocking context.
    pub fn settle(
        &self,
        events: &[MessageId],
        arrivals: &[MessageId],
    ) -> Result<IngestReport, StoreError> {
        let _one_at_a_time = self.settling.lock().unwrap_or_else(|p| p.into_inner());
        let published = admission::settle(
            &self.store,
            &self.config.identity,
            events,
            arrivals,
            jiff::Timestamp::now().as_millisecond(),
        )?;
        // Decisions touch only our own events, which we just settled.
        self.announce(&published);
        Ok(published)
    }

    /// Ingests messages that came by other means than a connection (a
    /// bundle file): the same validation and ingest path, minus feeds we
    /// block; then [`Node::after_append`] as for gossip. Blocking. Returns
    /// the report and how many messages of blocked feeds were dropped.
    pub fn ingest_messages(&self, msgs: Vec<Message>) -> Result<(IngestReport, usize), StoreError> {
        let blocked = self.store.blocked_by(&self.feed_id())?;
        let before = msgs.len();
        let msgs: Vec<Message> = msgs
            .into_iter()
            .filter(|m| !blocked.contains(&m.author()))
            .collect();
        let dropped = before - msgs.len();
        let report = self.store.ingest(msgs)?;
        self.after_append(&report)?;
        Ok((report, dropped))
    }

    /// Settles every event we organize (on start: requests may have
    /// arrived while no node of ours was running).
    pub fn settle_all(&self) -> Result<IngestReport, StoreError> {
        let me = self.feed_id();
        let mine: Vec<MessageId> = self
            .store
            .all_events()?
            .into_iter()
            .filter(|e| e.author == me)
            .map(|e| e.id)
            .collect();
        self.settle(&mine, &[])
    }

    /// Connected peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<PeerInfo> = peers
            .values()
            .map(|e| {
                let mut info = e.info.clone();
                info.received = e.progress.received.load(Ordering::Relaxed);
                info.sent = e.progress.sent.load(Ordering::Relaxed);
                info.caught_up = e.progress.caught_up.load(Ordering::Relaxed);
                info.remaining = e.progress.remaining.load(Ordering::Relaxed);
                info
            })
            .collect();
        out.sort_by_key(|p| p.connected_since_ms);
        out
    }

    /// A receiver that changes when the node shuts down.
    pub fn subscribe_shutdown(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Asks every task to stop; connections say goodbye.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

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
            let admitted = self
                .connections()
                .begin_handshake(addr.ip(), Instant::now());
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
                let _ = node.clone().connection(stream, addr, None, false).await;
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
                let mut events = node.subscribe();
                let session = node.clone().dial(&peer, false);
                tokio::pin!(session);
                // Until the session ends or the peer is connected (the
                // session ends by the handshake deadline at the latest).
                let ended = loop {
                    tokio::select! {
                        r = &mut session => break Some(r),
                        event = events.recv() => match event {
                            Ok(NodeEvent::PeerConnected(f)) if f == feed => break None,
                            Err(broadcast::error::RecvError::Closed) => break None,
                            _ => {}
                        },
                    }
                };
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
        self.connection(stream, addr, Some((peer.feed, peer.addr.as_str())), once)
            .await
    }

    /// Runs one connection: handshake, then replication.
    /// `dial` is `Some((expected feed, dialed address))` when we dialed.
    async fn connection(
        self: Arc<Self>,
        mut stream: TcpStream,
        addr: SocketAddr,
        dial: Option<(Option<FeedId>, &str)>,
        once: bool,
    ) -> Result<SessionReport, ConnectionError> {
        let book_addr = dial.map(|(_, a)| a.to_owned());
        let dial = dial.map(|(feed, _)| feed);
        // An inbound connection holds a handshake slot until the handshake
        // ends, however it ends.
        let mut handshake_slot = dial.is_none().then(|| HandshakeSlot {
            node: &self,
            address: addr.ip(),
            established: false,
        });
        stream.set_nodelay(true)?;
        let mut report = SessionReport::default();
        let shaken = tokio::time::timeout(
            self.config.timing.handshake,
            handshake(&mut stream, &self.config, dial, &mut report),
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
        let (transport, remote, decoder) = match shaken {
            Ok(x) => x,
            Err(e) if dial.is_none() => {
                // Strangers' failed handshakes can come by the thousand.
                tracing::debug!(%addr, error = %e, "handshake failed");
                if let Some(earlier) = allow_line(&self.handshake_log) {
                    tracing::warn!(%addr, error = %e, failed_since_last_line = earlier, "an inbound handshake failed");
                }
                return Err(e);
            }
            Err(e) => {
                tracing::warn!(%addr, error = %e, "handshake failed");
                return Err(e);
            }
        };
        // Past the handshake, an inbound connection needs an established
        // slot (perhaps the idlest peer's).
        let inbound_slot = match handshake_slot.take() {
            Some(mut slot) => {
                slot.established = true;
                drop(slot);
                let established = self.connections().establish(addr.ip(), Instant::now());
                match established {
                    Ok((id, evict)) => {
                        let evicted = Arc::new(tokio::sync::Notify::new());
                        let mut evictions =
                            self.evictions.lock().unwrap_or_else(|p| p.into_inner());
                        if let Some(idlest) = evict.and_then(|old| evictions.remove(&old)) {
                            tracing::info!(%addr, "making room for a new peer: closing the connection idle longest");
                            idlest.notify_one();
                        }
                        evictions.insert(id, evicted.clone());
                        Some(InboundSlot {
                            node: &self,
                            id,
                            evicted,
                        })
                    }
                    Err(refusal) => {
                        self.log_refusal(addr, refusal);
                        return Err(ConnectionError::Busy);
                    }
                }
            }
            None => None,
        };
        report.peer = Some(remote);
        if remote == self.feed_id() {
            return Err(ConnectionError::Duplicate(remote));
        }
        // The address works: note it in the peer book now, not when the
        // (possibly long) session ends.
        if let Some(addr) = book_addr.as_ref().filter(|_| !once) {
            let mut record = self
                .store
                .peer_record(addr)
                .ok()
                .flatten()
                .unwrap_or_else(|| {
                    PeerRecord::new(addr.clone(), Some(remote), PeerSource::Configured)
                });
            record.succeeded(remote, jiff::Timestamp::now().as_millisecond());
            let _ = self.store.put_peer_record(&record);
        }
        let progress = Arc::new(PeerProgress::default());
        // Already connected to this feed? Two cases:
        // - both sides dialed each other at once (common after discovery):
        //   keep the connection dialed by the smaller feed id, on both
        //   sides alike, so exactly one survives;
        // - the peer reconnected while its previous session is still
        //   closing here: give that a moment.
        let outbound = dial.is_some();
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
                    return Err(ConnectionError::Duplicate(remote));
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        {
            let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
            if peers.contains_key(&remote) {
                return Err(ConnectionError::Duplicate(remote));
            }
            peers.insert(
                remote,
                PeerEntry {
                    info: PeerInfo {
                        feed: remote,
                        address: addr.to_string(),
                        outbound: dial.is_some(),
                        connected_since_ms: jiff::Timestamp::now().as_millisecond(),
                        received: 0,
                        sent: 0,
                        caught_up: false,
                        remaining: 0,
                    },
                    progress: progress.clone(),
                },
            );
        }
        tracing::info!(peer = %remote, %addr, "connected");
        let _ = self.events.send(NodeEvent::PeerConnected(remote));
        let result = self
            .clone()
            .replicate(
                stream,
                transport,
                decoder,
                remote,
                once,
                &progress,
                &mut report,
                inbound_slot.as_ref(),
            )
            .await;
        self.peers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&remote);
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

    /// Our clock under the node's policy.
    fn clock(&self) -> Result<Clock, StoreError> {
        let me = self.feed_id();
        let heads: BTreeMap<FeedId, u64> = self
            .store
            .feeds()?
            .into_iter()
            .map(|(f, h)| (f, h.sequence))
            .collect();
        let blocked = self.store.blocked_by(&me)?;
        let follows = |f: &FeedId| {
            self.store
                .contacts(f)
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, c)| c.following && !c.blocking)
                .map(|(f, _)| f)
                .collect()
        };
        Ok(replicate::build_clock(
            &self.config.policy,
            me,
            &heads,
            follows,
            &blocked,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    async fn replicate(
        self: Arc<Self>,
        stream: TcpStream,
        transport: Transport,
        decoder: FrameDecoder,
        remote: FeedId,
        once: bool,
        progress: &PeerProgress,
        report: &mut SessionReport,
        slot: Option<&InboundSlot<'_>>,
    ) -> Result<(), ConnectionError> {
        let transport = Arc::new(Mutex::new(transport));
        let evicted = slot.map(|s| s.evicted.clone());
        let (read_half, write_half) = stream.into_split();
        let bytes_in = Arc::new(AtomicU64::new(0));
        let bytes_out = Arc::new(AtomicU64::new(0));
        let (in_tx, mut in_rx) = mpsc::channel::<Result<Vec<Inbound>, ConnectionError>>(4);
        let (out_tx, out_rx) = mpsc::channel::<Vec<Vec<u8>>>(2);
        let reader = tokio::spawn(read_task(
            read_half,
            decoder,
            transport.clone(),
            in_tx,
            bytes_in.clone(),
            self.counters.clone(),
        ));
        let writer = tokio::spawn(write_task(
            write_half,
            transport,
            out_rx,
            bytes_out.clone(),
            self.counters.clone(),
        ));

        let node = self.clone();
        let memory = {
            let store = self.store.clone();
            let (clock, memory) = tokio::task::spawn_blocking(move || {
                let clock = node.clock();
                let memory = store
                    .peer_memory(&remote)
                    .map(|m| m.and_then(|b| PeerMemory::decode(&b)));
                (clock, memory)
            })
            .await
            .map_err(|e| ConnectionError::Task(e.to_string()))?;
            (clock?, memory?)
        };
        // A one-off sync takes everything from its one peer; a lasting
        // connection takes part in the node's choice of live sources.
        let mut registered = Registration {
            node: &self,
            peer: remote,
            active: !once,
        };
        let modes = registered.active.then(|| self.sources().connect(remote));
        let mut session = Session::start(&self.config.policy, memory.0, memory.1, once, modes);
        let stranger = self.stranger(remote, slot.is_none(), once);
        let mut source_check = tokio::time::interval(SOURCE_CHECK);
        let mut notes_tick = tokio::time::interval(NOTES_EVERY);
        // An idle connection does not wake up for these; after a pause the
        // first tick comes at once, then at the period.
        source_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        notes_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut notes_due = false;
        let mut events = self.events.subscribe();
        let mut stop = self.shutdown.subscribe();
        let timing = self.config.timing.clone();
        let mut last_received = Instant::now();
        let mut last_sent = Instant::now();
        let mut keepalive = tokio::time::interval(timing.keepalive.min(timing.idle) / 2);
        let mut closing = false;
        let mut progress_at: Option<Instant> = None;
        // (received, sent) at the last check.
        let mut progress_moved = (0u64, 0u64);
        // Wakes an otherwise idle connection to notice it caught up.
        let mut progress_tick = tokio::time::interval(PROGRESS_EVERY);
        progress_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reported_received = 0;

        let outcome: Result<(), ConnectionError> = 'session: loop {
            if once && !closing && session.is_caught_up() {
                session.close();
                closing = true;
            }
            // Tell front ends how the catch-up goes, at most once per
            // PROGRESS_EVERY (checking is a walk over both clocks).
            let moved = (
                progress.received.load(Ordering::Relaxed),
                progress.sent.load(Ordering::Relaxed),
            );
            let due = match progress_at {
                None => true,
                Some(at) if moved != progress_moved => at.elapsed() >= PROGRESS_EVERY,
                Some(at) => at.elapsed() >= PROGRESS_IDLE_RECHECK,
            };
            if due {
                progress_at = Some(Instant::now());
                progress_moved = moved;
                let caught_up = session.is_caught_up();
                let received = progress.received.load(Ordering::Relaxed);
                let was = progress.caught_up.swap(caught_up, Ordering::Relaxed);
                let remaining = session.wanted_from_peer();
                progress.remaining.store(remaining, Ordering::Relaxed);
                if was != caught_up || received != reported_received {
                    reported_received = received;
                    let _ = self.events.send(NodeEvent::Progress {
                        peer: remote,
                        received,
                        remaining,
                        caught_up,
                    });
                }
            }
            let lagging = registered.active && self.sources().lagging() > 0;
            let has_work = session.has_outgoing()
                || session.has_pending()
                || (notes_due && session.has_notes());
            // Not `biased`: during a long one-way sync packets are always
            // ready, and a fixed order would starve the sending branch and
            // the keepalive, so the peer, hearing nothing, would hang up.
            tokio::select! {
                _ = stop.changed(), if !closing => {
                    session.close();
                    closing = true;
                }
                () = async { evicted.as_ref().expect("guarded").notified().await }, if evicted.is_some() && !closing => {
                    session.close();
                    closing = true;
                }
                packets = in_rx.recv() => {
                    let Some(packets) = packets else { break Err(ConnectionError::Closed) };
                    last_received = Instant::now();
                    // Anything but pings keeps the slot from being given
                    // to a newcomer.
                    let useful = packets.as_ref().map_or(true, |items| {
                        items.iter().any(|i| !matches!(i, Inbound::Packet(Packet::Ping)))
                    });
                    if let Some(slot) = slot.filter(|_| useful) {
                        self.connections().useful(slot.id, last_received);
                    }
                    let mut batch = Checked::default();
                    let mut goodbye = false;
                    match self.absorb(&mut session, packets, &mut batch, &mut goodbye, stranger) {
                        Ok(()) => {}
                        Err(e) => {
                            // Keep the valid messages that came before.
                            let _ = self.ingest(&mut session, batch, progress, None).await;
                            break Err(e);
                        }
                    }
                    // Gather more frames that are already here into one batch.
                    while batch.len() < INGEST_BATCH && !goodbye && !batch.has_bad() {
                        match in_rx.try_recv() {
                            Ok(more) => {
                                if let Err(e) = self.absorb(&mut session, more, &mut batch, &mut goodbye, stranger) {
                                    let _ = self.ingest(&mut session, batch, progress, None).await;
                                    break 'session Err(e);
                                }
                            }
                            Err(_) => break,
                        }
                    }
                    if registered.active && session.peer_is_once() {
                        // It leaves once caught up: push it everything and
                        // take nothing from it in particular.
                        registered.end();
                        session.set_modes(Some(true), &[]);
                    }
                    let ahead = session.take_ahead();
                    if registered.active && !ahead.is_empty() {
                        let now = Instant::now();
                        let changes: Vec<ModeChange> = {
                            let mut sources = self.sources();
                            ahead
                                .into_iter()
                                .filter_map(|(feed, seq, head)| sources.noted(remote, feed, seq, head, now))
                                .collect()
                        };
                        self.announce_modes(changes);
                    }
                    if let Err(e) = self.ingest(&mut session, batch, progress, registered.active.then_some(remote)).await {
                        break Err(e);
                    }
                    if goodbye {
                        break Ok(());
                    }
                    // While receiving without pause, keep telling the peer
                    // we are here (a sender that hears nothing times out).
                    if last_sent.elapsed() >= timing.keepalive
                        && !closing
                        && !session.has_outgoing()
                    {
                        session.ping();
                    }
                }
                permit = out_tx.reserve(), if has_work => {
                    let Ok(permit) = permit else { break Err(ConnectionError::Closed) };
                    let (frames, count, said_goodbye) = match self.pack(&mut session) {
                        Ok(x) => x,
                        Err(e) => break Err(e),
                    };
                    progress.sent.fetch_add(count, Ordering::Relaxed);
                    self.counters.sent.fetch_add(count, Ordering::Relaxed);
                    notes_due = false;
                    if !frames.is_empty() {
                        permit.send(frames);
                        last_sent = Instant::now();
                    }
                    if said_goodbye {
                        break Ok(());
                    }
                }
                event = events.recv() => match event {
                    Ok(NodeEvent::Appended(feed, seq)) => session.on_local_append(feed, seq),
                    Ok(NodeEvent::Modes(change)) => {
                        if registered.active && change.peer == remote {
                            session.set_modes(change.reset, &change.feeds);
                        }
                    }
                    Ok(NodeEvent::Blocking { feed, blocked }) => {
                        let head = self.store.head(&feed)?.map_or(0, |h| h.sequence);
                        session.set_blocked(feed, blocked, head);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // We missed some notices: re-read the push modes,
                        // blocks and heads.
                        if registered.active {
                            let (default_push, feeds) = self.sources().modes_for(remote);
                            session.set_modes(Some(default_push), &feeds);
                        }
                        for feed in self.store.blocked_by(&self.feed_id())? {
                            session.set_blocked(feed, true, 0);
                        }
                        for (feed, head) in self.store.feeds()? {
                            session.on_local_append(feed, head.sequence);
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break Ok(()),
                    // For front ends.
                    Ok(NodeEvent::EventsChanged(_) | NodeEvent::PeerConnected(_) | NodeEvent::PeerLeft(_) | NodeEvent::Progress { .. }) => {}
                },
                _ = notes_tick.tick(), if !notes_due && session.has_notes() => notes_due = true,
                _ = progress_tick.tick(), if !progress.caught_up.load(Ordering::Relaxed) => {}
                _ = source_check.tick(), if lagging => {
                    let changes = {
                        let store = &self.store;
                        self.sources().poll(Instant::now(), |f| {
                            store.head(f).ok().flatten().map_or(0, |h| h.sequence)
                        })
                    };
                    self.announce_modes(changes);
                }
                _ = keepalive.tick() => {
                    if last_received.elapsed() > timing.idle {
                        break Err(ConnectionError::Idle);
                    }
                    if last_sent.elapsed() >= timing.keepalive && !closing {
                        session.ping();
                    }
                }
            }
        };
        registered.end();
        drop(out_tx);
        finish(
            reader, in_rx, writer, outcome, &self, remote, &session, report, &bytes_in, &bytes_out,
        )
        .await
    }

    /// Feeds what the reader decoded to the session; collects messages to
    /// ingest.
    fn absorb(
        &self,
        session: &mut Session,
        inbound: Result<Vec<Inbound>, ConnectionError>,
        batch: &mut Checked,
        goodbye: &mut bool,
        stranger: Option<FeedId>,
    ) -> Result<(), ConnectionError> {
        for item in inbound? {
            match item {
                Inbound::Packet(packet) => {
                    let clock = matches!(packet, Packet::Clock(_));
                    match session.on_packet(packet)? {
                        Incoming::Goodbye => *goodbye = true,
                        // Messages arrive as `Inbound::Messages`, never here.
                        Incoming::Message(_) | Incoming::Nothing | Incoming::ClockReady => {}
                    }
                    if clock && stranger.is_some() {
                        self.quotas()
                            .check_clock(session.peer_clock_len())
                            .map_err(ConnectionError::Quota)?;
                    }
                }
                Inbound::Malformed(e) => return Err(ConnectionError::InvalidMessage(e.into())),
                Inbound::Messages(mut checked) => {
                    session.check_message_allowed()?;
                    let mut over_quota = BTreeSet::new();
                    let followed = stranger.map(|_| self.followed()).unwrap_or_default();
                    checked.retain(|msg| {
                        let wanted = session.accepts(&msg.author())
                            && !over_quota.contains(&msg.author())
                            && self.within_quota(stranger, &followed, msg, &mut over_quota);
                        if !wanted {
                            tracing::debug!(feed = %msg.author(), "dropping a message of a feed we do not replicate");
                        }
                        wanted
                    });
                    // Not taken from this peer for the rest of the session
                    // (it is told, and stops sending it).
                    for feed in over_quota {
                        let head = self.store.head(&feed)?.map_or(0, |h| h.sequence);
                        session.set_blocked(feed, true, head);
                    }
                    batch.extend(checked);
                }
            }
        }
        Ok(())
    }

    fn quotas(&self) -> std::sync::MutexGuard<'_, quota::Quotas> {
        self.quotas.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the quotas for strangers (from `config.json`).
    pub fn set_quota_limits(&self, limits: quota::QuotaLimits) {
        *self.quotas() = quota::Quotas::new(limits);
    }

    /// `Some(remote)` when the peer is a stranger, held to the quotas:
    /// neither followed by us, nor a configured or invited peer, nor one
    /// we dialed (other than an address heard on the LAN, which anyone
    /// can announce), nor the peer of a one-off sync we were asked for.
    fn stranger(&self, remote: FeedId, outbound: bool, once: bool) -> Option<FeedId> {
        if outbound && once || self.followed().contains(&remote) {
            return None;
        }
        let records = self.store.peer_records().unwrap_or_default();
        let of_remote = || records.iter().filter(|r| r.feed == Some(remote));
        let chosen =
            of_remote().any(|r| matches!(r.source, PeerSource::Configured | PeerSource::Invite));
        let discovered = of_remote().any(|r| r.source == PeerSource::Discovered);
        if chosen || (outbound && !discovered) {
            return None;
        }
        Some(remote)
    }

    /// Whether a stranger's message fits its quotas; a feed over them is
    /// added to `over`. Anything from a trusted peer (`None`) fits.
    fn within_quota(
        &self,
        stranger: Option<FeedId>,
        followed: &BTreeSet<FeedId>,
        msg: &Message,
        over: &mut BTreeSet<FeedId>,
    ) -> bool {
        let Some(peer) = stranger else { return true };
        let feed = msg.author();
        let arrival = quota::Arrival {
            peer,
            feed,
            new_feed: matches!(self.store.head(&feed), Ok(None)),
            followed: followed.contains(&feed),
            bytes: msg.bytes().len() as u64,
        };
        let now = jiff::Timestamp::now().as_millisecond();
        match self.quotas().admit(&arrival, now) {
            Ok(()) => true,
            Err(e) => {
                tracing::info!(%peer, %feed, reason = %e, "not storing a stranger's feed for now");
                over.insert(feed);
                false
            }
        }
    }

    /// Our own feed and the feeds we follow.
    fn followed(&self) -> BTreeSet<FeedId> {
        let me = self.feed_id();
        let mut followed: BTreeSet<FeedId> = self
            .store
            .contacts(&me)
            .map(|c| {
                c.into_iter()
                    .filter(|(_, s)| s.following)
                    .map(|(f, _)| f)
                    .collect()
            })
            .unwrap_or_default();
        followed.insert(me);
        followed
    }

    /// Saves a peer's replication memory within the quotas: a memory
    /// bigger than one peer may keep is dropped instead, and once a
    /// minute memory that expired or does not fit the total is forgotten.
    fn keep_memory(&self, remote: FeedId, memory: &[u8]) {
        let now = jiff::Timestamp::now().as_millisecond();
        let (keeps, limits, trim) = {
            let mut quotas = self.quotas();
            (
                quotas.keeps_memory(memory.len()),
                quotas.limits().clone(),
                quotas.trim_due(now),
            )
        };
        let saved = if keeps {
            self.store.keep_peer_memory(&remote, memory, now)
        } else {
            tracing::debug!(peer = %remote, bytes = memory.len(), "not keeping replication memory this big");
            self.store.forget_peer_memory(&[remote])
        };
        if let Err(e) = saved {
            tracing::warn!(error = %e, "could not save replication memory");
        }
        if trim {
            let forget = self
                .store
                .kept_peer_memory()
                .map(|kept| quota::memory_to_forget(&kept, &limits, now));
            match forget.and_then(|peers| {
                self.store.forget_peer_memory(&peers)?;
                Ok(peers.len())
            }) {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    peers = n,
                    "forgot replication memory of peers (expired, or over the total)"
                ),
                Err(e) => tracing::warn!(error = %e, "could not trim replication memory"),
            }
        }
    }

    /// Ingests a batch through the store's one ingest path and tells the
    /// session and the other connections what is now held.
    async fn ingest(
        self: &Arc<Self>,
        session: &mut Session,
        batch: Checked,
        progress: &PeerProgress,
        source: Option<FeedId>,
    ) -> Result<(), ConnectionError> {
        if batch.is_empty() {
            return Ok(());
        }
        let positions: Vec<(FeedId, u64)> = batch
            .messages()
            .iter()
            .map(|m| (m.author(), m.sequence()))
            .collect();
        let node = self.clone();
        let report = tokio::task::spawn_blocking(move || {
            let report = node.store.ingest_checked(batch)?;
            node.after_append(&report)?;
            Ok::<_, StoreError>(report)
        })
        .await
        .map_err(|e| ConnectionError::Task(e.to_string()))??;
        let held_until = report
            .rejected
            .as_ref()
            .map_or(positions.len(), |r| r.index);
        // A fork is a fact about one feed: stop taking (and giving) that
        // feed on this connection, and go on with every other one.
        let forked: BTreeSet<FeedId> = report.forks.iter().map(|f| f.author).collect();
        for &feed in &forked {
            let head = self.store.head(&feed)?.map_or(0, |h| h.sequence);
            tracing::warn!(%feed, peer = ?source, "this peer holds another history of a forked feed; not exchanging that feed with it (the proof is kept, see `potluck fsck`)");
            session.set_blocked(feed, true, head);
        }
        for &(feed, seq) in &positions[..held_until] {
            if !forked.contains(&feed) {
                session.on_received(feed, seq);
            }
        }
        if let Some(peer) = source {
            // Per feed: did this peer bring anything new, and how far do
            // we hold it now? A peer that only brings what we hold is not
            // the feed's source and should send notes instead.
            let new: BTreeSet<FeedId> = report.accepted.iter().map(Message::author).collect();
            let mut fed: BTreeMap<FeedId, u64> = BTreeMap::new();
            for &(feed, seq) in positions[..held_until]
                .iter()
                .filter(|(feed, _)| !forked.contains(feed))
            {
                let top = fed.entry(feed).or_insert(0);
                *top = (*top).max(seq);
            }
            let now = Instant::now();
            let changes: Vec<ModeChange> = {
                let mut sources = self.sources();
                fed.into_iter()
                    .filter_map(|(feed, head)| {
                        let pushing = session.asks_push(&feed);
                        sources.delivered(peer, feed, pushing, new.contains(&feed), head, now)
                    })
                    .collect()
            };
            self.announce_modes(changes);
        }
        progress
            .received
            .fetch_add(report.accepted.len() as u64, Ordering::Relaxed);
        self.counters
            .received
            .fetch_add(report.accepted.len() as u64, Ordering::Relaxed);
        self.counters
            .duplicates
            .fetch_add(report.duplicates as u64, Ordering::Relaxed);
        match report.rejected {
            Some(r) => {
                tracing::warn!(feed = %r.author, sequence = r.sequence, error = %r.error, "rejected a message from a peer");
                Err(ConnectionError::InvalidMessage(r.error))
            }
            None => Ok(()),
        }
    }

    /// Packs control packets and message ranges into frame plaintexts.
    /// Returns the frames, the number of messages in them, and whether
    /// they end with our goodbye.
    fn pack(&self, session: &mut Session) -> Result<(Vec<Vec<u8>>, u64, bool), ConnectionError> {
        let mut packer = FramePacker::new();
        let mut count = 0;
        let mut goodbye = false;
        while let Some(p) = session.poll_packet() {
            goodbye |= p == Packet::Goodbye;
            packer.push(&p)?;
        }
        while !goodbye && packer.pending_len() < WRITE_BATCH_BYTES {
            let Some((feed, first, last)) = session.next_range() else {
                break;
            };
            let mut sent_until = first - 1;
            for item in self
                .store
                .feed_messages(&feed, first)
                .take((last - first + 1) as usize)
            {
                match item {
                    Ok(msg) => {
                        sent_until = msg.sequence();
                        packer.push(&Packet::Message(msg.into_bytes()))?;
                        count += 1;
                    }
                    // Never send what does not verify: the peer would
                    // refuse it and hang up, every time. The other feeds
                    // go on.
                    Err(StoreError::Damaged {
                        sequence, reason, ..
                    }) => {
                        tracing::error!(%feed, sequence, %reason, "not sending a message that is damaged on disk, nor the rest of its feed; `potluck fsck --repair` cuts it so that peers send it again");
                        session.withhold(feed, sent_until);
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok((packer.take(), count, goodbye))
    }
}

/// Whether a rate-limited log line may be written now (see
/// [`RateLimitedLog::allow`]).
fn allow_line(log: &Mutex<RateLimitedLog>) -> Option<u64> {
    log.lock()
        .unwrap_or_else(|p| p.into_inner())
        .allow(Instant::now())
}

/// An inbound connection's handshake slot; given back when the handshake
/// ends, however it ends.
struct HandshakeSlot<'a> {
    node: &'a Node,
    address: std::net::IpAddr,
    /// The handshake succeeded: the address slot goes on with the
    /// established connection.
    established: bool,
}

impl Drop for HandshakeSlot<'_> {
    fn drop(&mut self) {
        self.node
            .connections()
            .handshake_ended(self.address, self.established);
    }
}

/// An established inbound connection's slot; given back when the
/// connection ends, however it ends. `evicted` fires when the slot is
/// given to a newcomer.
struct InboundSlot<'a> {
    node: &'a Node,
    id: ConnectionId,
    evicted: Arc<tokio::sync::Notify>,
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

/// Tells a dialer this node has no room: reads its first handshake
/// message (so that closing does not reset the connection, which could
/// discard the answer), sends the busy frame and closes; all within
/// [`BUSY_ANSWER`].
async fn answer_busy(mut stream: TcpStream) {
    let _ = tokio::time::timeout(BUSY_ANSWER, async {
        let mut decoder = FrameDecoder::new();
        let mut read = 0;
        let _ = read_frame(&mut stream, &mut decoder, &mut read).await;
        if let Ok(frame) = encode_frame(crate::handshake::BUSY_MESSAGE) {
            let _ = stream.write_all(&frame).await;
        }
        let _ = stream.shutdown().await;
    })
    .await;
}

/// A connection's place in the node's choice of live sources; it is given
/// up when the connection ends, however it ends (an early `?` included),
/// so that its feeds go to another peer.
struct Registration<'a> {
    node: &'a Node,
    peer: FeedId,
    active: bool,
}

impl Registration<'_> {
    /// Leaves the choice now: the peer's feeds fall back to others.
    fn end(&mut self) {
        if std::mem::take(&mut self.active) {
            let changes = self.node.sources().disconnect(self.peer);
            self.node.announce_modes(changes);
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.end();
    }
}

/// Records the session's memory, stops the tasks, and totals the bytes.
#[allow(clippy::too_many_arguments)]
async fn finish(
    reader: tokio::task::JoinHandle<()>,
    mut inbound: mpsc::Receiver<Result<Vec<Inbound>, ConnectionError>>,
    writer: tokio::task::JoinHandle<()>,
    outcome: Result<(), ConnectionError>,
    node: &Node,
    remote: FeedId,
    session: &Session,
    report: &mut SessionReport,
    bytes_in: &AtomicU64,
    bytes_out: &AtomicU64,
) -> Result<(), ConnectionError> {
    if session.is_live() {
        node.keep_memory(remote, &session.memory().encode());
    }
    // Let the writer drain what is queued (the goodbye), briefly; a peer
    // that does not read cannot hold us longer than that.
    let mut writer = writer;
    if tokio::time::timeout(Duration::from_secs(5), &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    // Read on until the peer closes too (briefly): closing a socket with
    // unread data resets the connection, and a reset can make the peer's
    // kernel drop what we sent it last.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while inbound.recv().await.is_some() {}
    })
    .await;
    reader.abort();
    report.bytes_in += bytes_in.load(Ordering::Relaxed);
    report.bytes_out += bytes_out.load(Ordering::Relaxed);
    outcome
}

/// Runs the Noise handshake over length-prefixed frames.
/// Returns the transport, the peer's feed, and the frame decoder, which
/// may already hold the first transport frames (they can arrive in the
/// same read as the last handshake message).
async fn handshake(
    stream: &mut TcpStream,
    config: &NodeConfig,
    dial: Option<Option<FeedId>>,
    report: &mut SessionReport,
) -> Result<(Transport, FeedId, FrameDecoder), ConnectionError> {
    let mut hs = match dial {
        Some(expect) => Handshake::initiator(&config.identity, &config.network, expect)?,
        None => Handshake::responder(&config.identity, &config.network)?,
    };
    let mut decoder = FrameDecoder::new();
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
        if dial.is_some() && frame == crate::handshake::BUSY_MESSAGE {
            return Err(ConnectionError::Busy);
        }
        hs.read_incoming(&frame)?;
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

async fn read_frame(
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

/// Pushes bytes that were read to fit the decoder's room.
fn push_all(decoder: &mut FrameDecoder, bytes: &[u8]) -> Result<(), ConnectionError> {
    if decoder.push(bytes) == bytes.len() {
        Ok(())
    } else {
        Err(ConnectionError::Task("frame buffer overflow".into()))
    }
}

/// What the reader hands to the driver, in the order it arrived.
enum Inbound {
    /// A control packet.
    Packet(Packet),
    /// A run of messages, decoded and signature-checked.
    Messages(Checked),
    /// A message packet that does not decode: the connection must close
    /// after the messages before it are stored.
    Malformed(crate::message::DecodeError),
}

/// Most frames decoded together: frames that have already arrived are
/// checked as one run, because ed25519 batch verification gets cheaper per
/// signature with bigger batches (see `validate::VERIFY_BATCH`).
const MAX_FRAMES_PER_DECODE: usize = 8;

/// Decodes the packets of consecutive frames, in order; runs of messages
/// are decoded and their signatures checked (CPU work, on the blocking
/// pool).
async fn decode_frames(plains: Vec<Vec<u8>>) -> Result<Vec<Inbound>, ConnectionError> {
    let mut packets = Vec::new();
    for plain in &plains {
        packets.extend(Packet::decode_all(plain)?);
    }
    if !packets.iter().any(|p| matches!(p, Packet::Message(_))) {
        return Ok(packets.into_iter().map(Inbound::Packet).collect());
    }
    tokio::task::spawn_blocking(move || {
        let mut items = Vec::new();
        let mut run = Vec::new();
        for packet in packets {
            match packet {
                Packet::Message(bytes) => match Message::decode(bytes) {
                    Ok(msg) => run.push(msg),
                    Err(e) => {
                        // Nothing after a malformed message counts.
                        if !run.is_empty() {
                            items.push(Inbound::Messages(Checked::new(std::mem::take(&mut run))));
                        }
                        items.push(Inbound::Malformed(e));
                        return items;
                    }
                },
                other => {
                    if !run.is_empty() {
                        items.push(Inbound::Messages(Checked::new(std::mem::take(&mut run))));
                    }
                    items.push(Inbound::Packet(other));
                }
            }
        }
        if !run.is_empty() {
            items.push(Inbound::Messages(Checked::new(run)));
        }
        items
    })
    .await
    .map_err(|e| ConnectionError::Task(e.to_string()))
}

/// Reads frames, decrypts and decodes them, and hands them over. The
/// bounded channel makes a slow driver slow down the peer (TCP backpressure).
async fn read_task(
    mut read: tokio::net::tcp::OwnedReadHalf,
    mut decoder: FrameDecoder,
    transport: Arc<Mutex<Transport>>,
    tx: mpsc::Sender<Result<Vec<Inbound>, ConnectionError>>,
    bytes_in: Arc<AtomicU64>,
    totals: Arc<Counters>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    // An error met while gathering extra frames, delivered after them.
    let mut pending_error: Option<ConnectionError> = None;
    loop {
        if let Some(e) = pending_error.take() {
            let _ = tx.send(Err(e)).await;
            return;
        }
        let frame = loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => break Ok(frame),
                Ok(None) => {}
                Err(e) => break Err(ConnectionError::from(e)),
            }
            let want = decoder.room().min(buf.len());
            match read.read(&mut buf[..want]).await {
                Ok(0) => break Err(ConnectionError::Closed),
                Ok(n) => {
                    bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    totals.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    if let Err(e) = push_all(&mut decoder, &buf[..n]) {
                        break Err(e);
                    }
                }
                Err(e) => break Err(e.into()),
            }
        };
        let mut frames = match frame {
            Ok(f) => vec![f],
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        // Add frames that are already here, without waiting for more.
        while frames.len() < MAX_FRAMES_PER_DECODE {
            match decoder.next_frame() {
                Ok(Some(f)) => {
                    frames.push(f);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    pending_error = Some(e.into());
                    break;
                }
            }
            let want = decoder.room().min(buf.len());
            match read.try_read(&mut buf[..want]) {
                Ok(0) => {
                    pending_error = Some(ConnectionError::Closed);
                    break;
                }
                Ok(n) => {
                    bytes_in.fetch_add(n as u64, Ordering::Relaxed);
                    if let Err(e) = push_all(&mut decoder, &buf[..n]) {
                        pending_error = Some(e);
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    pending_error = Some(e.into());
                    break;
                }
            }
        }
        let mut plains = Vec::with_capacity(frames.len());
        {
            let mut transport = transport.lock().unwrap_or_else(|p| p.into_inner());
            for f in &frames {
                match transport.decrypt(f) {
                    Ok(plain) => plains.push(plain),
                    Err(e) => {
                        // The frames before it still count.
                        pending_error = Some(e.into());
                        break;
                    }
                }
            }
        }
        let items = if plains.is_empty() {
            Err(pending_error
                .take()
                .unwrap_or_else(|| ConnectionError::Task("no frame to decode".into())))
        } else {
            decode_frames(plains).await
        };
        let failed = items.is_err();
        if tx.send(items).await.is_err() || failed {
            return;
        }
    }
}

/// Encrypts and writes batches of frame plaintexts.
async fn write_task(
    mut write: tokio::net::tcp::OwnedWriteHalf,
    transport: Arc<Mutex<Transport>>,
    mut rx: mpsc::Receiver<Vec<Vec<u8>>>,
    bytes_out: Arc<AtomicU64>,
    totals: Arc<Counters>,
) {
    while let Some(frames) = rx.recv().await {
        let mut wire = Vec::new();
        for plain in frames {
            let sealed = transport
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .encrypt(&plain);
            let Ok(frame) = sealed
                .map_err(ConnectionError::from)
                .and_then(|c| Ok(encode_frame(&c)?))
            else {
                return;
            };
            wire.extend_from_slice(&frame);
        }
        if write.write_all(&wire).await.is_err() {
            return;
        }
        bytes_out.fetch_add(wire.len() as u64, Ordering::Relaxed);
        totals
            .bytes_out
            .fetch_add(wire.len() as u64, Ordering::Relaxed);
    }
    let _ = write.shutdown().await;
}
