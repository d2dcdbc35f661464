//! The running node: tokio tasks that accept and dial connections, run the
//! handshake, and drive a [`Link`](crate::proto::replicate::Link) (a
//! session joined to the node's `Sources`) per peer. Protocol decisions
//! live in `handshake`, `wire` and `replicate`; this module only moves
//! bytes, runs timers and calls the store.
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

pub mod admission;
mod connection;
pub mod control;
mod driver;
mod error;
mod hub;
mod io;
pub mod limits;
mod listen;
mod portmap;
mod start;
mod strangers;
mod tunnel;

pub use error::ConnectionError;
pub use hub::MemberSettings;
pub use portmap::PortMapError;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use serde::Serialize;
use tokio::sync::{broadcast, watch};

use crate::feed::message::{FeedId, Message, MessageId};
use crate::node::limits::{ConnectionId, Connections, Limits, RateLimitedLog, Refusal};
use crate::proto::discovery;
use crate::proto::handshake::NetworkKey;
use crate::proto::quota;
use crate::proto::replicate::{ClockBase, Holding, ModeChange, Policy, Sources};
use crate::proto::wire::MAX_PLAINTEXT;
use crate::store::{IngestReport, Store, StoreError};

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
            max_backoff: crate::proto::peerbook::MAX_BACKOFF,
        }
    }
}

/// Most events one [`NodeEvent::EventsChanged`] names (the page names no
/// more in one live update either). The channel keeps each notice until
/// every subscriber has read it, up to its 4,096 slots, and one commit of
/// a bulk sync touches thousands of events: named, a lagging subscriber
/// would keep up to 64 KB a notice alive; this bounds it to 2 KB.
pub const MAX_NAMED_EVENTS: usize = 64;
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
    /// The hub this session runs through (a tunnel), if not direct.
    pub via_hub: Option<FeedId>,
    /// How far the peer holds our own feed, as this session knows its
    /// clock (`None` until the clock names it). What the page shows of a
    /// hub; not in `potluck peers --json`.
    #[serde(skip)]
    pub holds_mine: Option<Holding>,
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
    holds_mine: Mutex<Option<Holding>>,
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
    /// a page shows them anew). At most [`MAX_NAMED_EVENTS`].
    EventsChanged(Arc<[MessageId]>),
    /// More than [`MAX_NAMED_EVENTS`] events changed in one commit (a
    /// bulk sync): front ends show everything anew.
    ManyEventsChanged,
    /// A peer connected (after the handshake).
    PeerConnected(FeedId),
    /// A peer's connection ended.
    PeerLeft(FeedId),
    /// How far a connected peer's catch-up is: sent when it starts or
    /// stops being caught up, and every few seconds while messages arrive.
    Progress(CatchUp),
    /// The session with this peer must end (a hub removed the member).
    Close(FeedId),
    /// A hub packet for the session with `to` to send (a hub's
    /// `TunnelCall`).
    HubPacket {
        /// The peer whose session sends it.
        to: FeedId,
        /// The packet.
        packet: Arc<crate::proto::wire::Packet>,
    },
}

/// How far a connected peer's catch-up is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatchUp {
    /// The peer.
    pub peer: FeedId,
    /// Messages received from it on this connection so far.
    pub received: u64,
    /// Messages its clock promises that we want and lack yet.
    pub remaining: u64,
    /// We hold everything it offered that we want, and it holds
    /// everything we can give it.
    pub caught_up: bool,
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
    /// One admission decision at a time (two connections deciding from
    /// the same snapshot would contradict each other), with the events
    /// ours to decide.
    settling: Mutex<admission::OwnEvents>,
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
    /// The clock base the sessions share (memory only: a hub's thousand
    /// member sessions each keep three clocks of its size).
    clock_base: Mutex<ClockBase>,
    /// What strangers may make us store (see [`quota`]).
    quotas: Mutex<quota::Quotas>,
    /// Hub mode, and the hubs we are a member of.
    hub_parts: hub::HubParts,
    /// The router's address for our port, while mapped (`portmap.rs`).
    mapped: watch::Sender<Option<SocketAddr>>,
}

/// Each feed of `accepted` once, with the highest sequence it has there, in
/// the order the feeds first appear: what an append announces. A commit
/// of a sync holds thousands of messages of a few feeds; one notice per
/// message overran the node's channel, and a connection that falls behind
/// reads every feed's head again.
fn latest_per_feed(accepted: &[Message]) -> Vec<(FeedId, u64)> {
    let mut order: Vec<(FeedId, u64)> = Vec::new();
    let mut at: HashMap<FeedId, usize> = HashMap::new();
    for msg in accepted {
        let author = msg.author();
        match at.get(&author) {
            Some(&i) => order[i].1 = order[i].1.max(msg.sequence()),
            None => {
                at.insert(author, order.len());
                order.push((author, msg.sequence()));
            }
        }
    }
    order
}

/// The notice for the events a commit touched: none for none, their ids
/// up to [`MAX_NAMED_EVENTS`], else [`NodeEvent::ManyEventsChanged`].
fn events_notice(touched: &[MessageId]) -> Option<NodeEvent> {
    match touched.len() {
        0 => None,
        n if n <= MAX_NAMED_EVENTS => Some(NodeEvent::EventsChanged(Arc::from(touched))),
        _ => Some(NodeEvent::ManyEventsChanged),
    }
}

/// Whether a rate-limited log line may be written now (see
/// [`RateLimitedLog::allow`]).
fn allow_line(log: &Mutex<RateLimitedLog>) -> Option<u64> {
    log.lock()
        .unwrap_or_else(|p| p.into_inner())
        .allow(Instant::now())
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
            settling: Mutex::new(admission::OwnEvents::default()),
            shutdown,
            counters: Arc::new(Counters::default()),
            sources: Mutex::new(Sources::new(SOURCE_GRACE)),
            clock_base: Mutex::new(ClockBase::default()),
            quotas: Mutex::new(quota::Quotas::new(quota::QuotaLimits::default())),
            hub_parts: hub::HubParts::default(),
            mapped: portmap::mapped_channel(),
        })
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, Sources> {
        self.sources.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn clock_base(&self) -> std::sync::MutexGuard<'_, ClockBase> {
        self.clock_base.lock().unwrap_or_else(|p| p.into_inner())
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
            .ok_or(StoreError::Bug("a published message was not appended"))
    }

    /// The one step after anything was appended (published here, received
    /// from a peer, or imported): tell every connection and front end what
    /// is new, let our own blocks take effect on live sessions, and, as the
    /// organizer, decide on new requests to our events. Blocking.
    pub fn after_append(&self, report: &IngestReport) -> Result<(), StoreError> {
        self.announce(report);
        self.follows_stored(report);
        if !report.touched_events.is_empty() {
            let arrivals: Vec<MessageId> = report.accepted.iter().map(Message::id).collect();
            self.settle(&report.touched_events, &arrivals)?;
        }
        Ok(())
    }

    /// Announces an append on the node's channel (no decisions).
    fn announce(&self, report: &IngestReport) {
        for (feed, sequence) in latest_per_feed(&report.accepted) {
            let _ = self.events.send(NodeEvent::Appended(feed, sequence));
        }
        let me = self.feed_id();
        for change in report.contacts.iter().filter(|c| c.author == me) {
            let _ = self.events.send(NodeEvent::Blocking {
                feed: change.contact,
                blocked: change.state.blocking,
            });
        }
        if let Some(notice) = events_notice(&report.touched_events) {
            let _ = self.events.send(notice);
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
        let mut own_events = self.settling.lock().unwrap_or_else(|p| p.into_inner());
        let mine = own_events.mine(&self.store, &self.feed_id(), events);
        if mine.is_empty() {
            return Ok(IngestReport::default());
        }
        let published = admission::settle(
            &self.store,
            &self.config.identity,
            &mine,
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
                info.holds_mine = *e
                    .progress
                    .holds_mine
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
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
}
