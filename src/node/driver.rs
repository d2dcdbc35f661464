//! One connection's replication driver: what the reader decoded goes to
//! the connection's [`Link`] and the store, what the link wants sent goes
//! to the writer, and the node's news and the link's timers go to the link
//! in between. The driver holds no protocol decision of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::time::Sleep;

use super::connection::InboundSlot;
use super::io::{Decoded, Inbound, Socket};
use super::{
    CatchUp, ConnectionError, INGEST_BATCH, Node, NodeEvent, PeerProgress, SessionReport,
    WRITE_BATCH_BYTES,
};
use crate::feed::message::{FeedId, Message};
use crate::feed::validate::Checked;
use crate::proto::replicate::{
    self, Clock, Ingested, Link, LinkError, LinkTiming, Opening, PeerEnd, PeerMemory,
};
use crate::proto::wire::{FramePacker, Packet};
use crate::store::StoreError;

/// What one step of the driver leaves: go on, or the session ended well
/// (`Break`), or badly (`Err`).
pub(super) type Step = Result<ControlFlow<()>, ConnectionError>;

/// How long a connection that ends otherwise than a one-off sync's
/// goodbye waits for the peer to close (see [`Socket::close`]).
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// The replication of one connection past the handshake (see the module
/// docs). The socket tasks are the caller's ([`Socket`]), so that it can
/// wait on them and call the driver in turn.
pub(super) struct Driver<'a> {
    node: &'a Arc<Node>,
    link: Registered<'a>,
    /// `Some(peer)` when the peer is held to the quotas of strangers.
    stranger: Option<FeedId>,
    /// `Some(peer)` when we are a hub and the peer is a member, held to
    /// the member's storage quota.
    member: Option<FeedId>,
    /// The connection's slot, when the peer dialed us.
    slot: Option<&'a InboundSlot<'a>>,
    /// What [`Node::peers`] shows of this connection.
    progress: &'a PeerProgress,
}

/// What the reader delivered that goes to the store as one batch.
#[derive(Default)]
struct Batch {
    /// Messages of feeds the link accepts, within the stranger's quotas.
    messages: Checked,
    /// The peer said goodbye after them.
    goodbye: bool,
}

impl<'a> Driver<'a> {
    /// Opens the link to `remote` from our clock and what we remember of
    /// the peer. `outbound`: we dialed (a tunnel's called end did not);
    /// `once`: our side is a one-off sync. `slot`: the connection's slot
    /// when the peer dialed us.
    pub(super) async fn open(
        node: &'a Arc<Node>,
        remote: FeedId,
        outbound: bool,
        once: bool,
        slot: Option<&'a InboundSlot<'a>>,
        progress: &'a PeerProgress,
    ) -> Result<Driver<'a>, ConnectionError> {
        let reading = node.clone();
        let (clock, memory) = tokio::task::spawn_blocking(move || {
            let clock = reading.clock();
            let memory = reading
                .store
                .peer_memory(&remote)
                .map(|m| m.and_then(|b| PeerMemory::decode(&b)));
            (clock, memory)
        })
        .await
        .map_err(|e| ConnectionError::Task(e.to_string()))?;
        // A one-off sync takes everything from its one peer; a lasting
        // connection takes part in the node's choice of live sources.
        let timing = &node.config.timing;
        let opening = Opening {
            peer: remote,
            policy: &node.config.policy,
            mine: clock?,
            base: node.clock_base().current(),
            memory: memory?,
            once,
            timing: LinkTiming::new(timing.keepalive, timing.idle),
        };
        let mut link = Link::open(opening, &mut node.sources(), Instant::now());
        // A member tells its hub where it can be dialed directly.
        if let Some(word) = node.direct_word_for(remote) {
            link.handle_hub_send(word);
        }
        Ok(Driver {
            node,
            link: Registered { node, link },
            stranger: node.stranger(remote, outbound, once),
            member: node.is_member(&remote).then_some(remote),
            slot,
            progress,
        })
    }

    /// Our goodbye is queued.
    pub(super) fn is_closing(&self) -> bool {
        self.link.is_closing()
    }

    /// Something waits to be sent.
    pub(super) fn wants_to_send(&self) -> bool {
        self.link.wants_to_send()
    }

    /// Queues our goodbye (shutdown, or our slot goes to a newcomer).
    pub(super) fn close(&mut self) -> Step {
        self.link.close();
        Ok(ControlFlow::Continue(()))
    }

    /// When the link must be woken next (at the latest after the idle
    /// time).
    pub(super) fn deadline(&self) -> tokio::time::Instant {
        match self.link.poll_timeout() {
            Some(at) => tokio::time::Instant::from_std(at),
            None => tokio::time::Instant::now() + self.node.config.timing.idle,
        }
    }

    /// Before waiting: a one-off sync that is done says goodbye, front ends
    /// hear how the catch-up goes, and `timer` is moved if the link needs
    /// waking earlier. Most deadlines only move later (each packet pushes
    /// the idle time back), and waking early is cheap (`handle_timeout`
    /// does what is due and nothing else), while re-arming a timer at
    /// every batch is not.
    pub(super) fn poll(&mut self, timer: Pin<&mut Sleep>) {
        self.link.poll_finish();
        if self.link.wants_new_base() {
            let base = self.node.clock_base().newer_for(&self.link);
            self.link.rebase(&base);
        }
        if let Some(p) = self.link.poll_progress(Instant::now()) {
            self.progress
                .caught_up
                .store(p.caught_up, Ordering::Relaxed);
            self.progress
                .remaining
                .store(p.remaining, Ordering::Relaxed);
            if p.changed {
                let _ = self.node.events.send(NodeEvent::Progress(CatchUp {
                    peer: self.link.peer(),
                    received: p.received,
                    remaining: p.remaining,
                    caught_up: p.caught_up,
                }));
            }
        }
        // Cheap (one clock lookup), so kept exact rather than with the
        // progress: a caught-up link reports progress rarely.
        let holding = self.link.peer_holding(&self.node.feed_id());
        let mut holds_mine = self
            .progress
            .holds_mine
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *holds_mine = holding;
        drop(holds_mine);
        let due = self.deadline();
        if due < timer.deadline() {
            timer.reset(due);
        }
    }

    /// The reader delivered `first` (`None`: it stopped): hands it, and
    /// whatever else is already here up to one batch, to the link, and
    /// the messages to the store.
    pub(super) async fn handle_inbound(
        &mut self,
        first: Option<Decoded>,
        more: &mut mpsc::Receiver<Decoded>,
    ) -> Step {
        let Some(first) = first else {
            return Err(ConnectionError::Closed);
        };
        let now = Instant::now();
        // Anything but pings keeps the slot from being given to a newcomer.
        let useful = first.as_ref().map_or(true, |items| {
            items
                .iter()
                .any(|i| !matches!(i, Inbound::Packet(Packet::Ping)))
        });
        if let Some(slot) = self.slot.filter(|_| useful) {
            self.node.connections().useful(slot.id, now);
        }
        let mut batch = Batch::default();
        let mut next = Some(first);
        while let Some(items) = next.take() {
            if let Err(e) = self.absorb(items, &mut batch, now) {
                // Keep the valid messages that came before.
                let _ = self.ingest(batch.messages).await;
                return Err(e);
            }
            // Gather more frames that are already here into one batch.
            if batch.messages.len() < INGEST_BATCH && !batch.goodbye && !batch.messages.has_bad() {
                next = more.try_recv().ok();
            }
        }
        let changes = self.link.handle_batch_end(&mut self.node.sources(), now);
        self.node.announce_modes(changes);
        self.ingest(batch.messages).await?;
        Ok(if batch.goodbye {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    }

    /// The writer has room: packs what the link wants sent into `room`.
    pub(super) fn handle_writable(
        &mut self,
        room: Result<mpsc::Permit<'_, Vec<Vec<u8>>>, mpsc::error::SendError<()>>,
    ) -> Step {
        let room = room.map_err(|_| ConnectionError::Closed)?;
        let (frames, count, said_goodbye) = self.pack()?;
        self.progress.sent.fetch_add(count, Ordering::Relaxed);
        self.node.counters.sent.fetch_add(count, Ordering::Relaxed);
        let wrote = !frames.is_empty();
        if wrote {
            room.send(frames);
        }
        self.link.handle_sent(count, wrote, Instant::now());
        Ok(if said_goodbye {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    }

    /// News from the node: appends, push modes and blocks go to the link.
    pub(super) fn handle_event(&mut self, event: Result<NodeEvent, RecvError>) -> Step {
        match event {
            Ok(NodeEvent::Appended(feed, seq)) => self.link.handle_local_append(feed, seq),
            Ok(NodeEvent::Modes(change)) => self.link.handle_modes(&change),
            Ok(NodeEvent::Blocking { feed, blocked }) => {
                let head = self.head(&feed)?;
                self.link.handle_blocking(feed, blocked, head);
            }
            Ok(NodeEvent::HubPacket { to, packet }) => {
                if to == self.link.peer() {
                    self.link.handle_hub_send((*packet).clone());
                }
            }
            Ok(NodeEvent::Close(peer)) if peer == self.link.peer() => return self.close(),
            Ok(NodeEvent::Close(_)) => {}
            Err(RecvError::Lagged(_)) => {
                // We missed some notices: re-read the push modes, blocks
                // and heads.
                let store = &self.node.store;
                let blocked = store.blocked_by(&self.node.feed_id())?;
                let heads = store.feeds()?.into_iter().map(|(f, h)| (f, h.sequence));
                self.link
                    .handle_missed(&self.node.sources(), blocked, heads);
            }
            Err(RecvError::Closed) => return Ok(ControlFlow::Break(())),
            // For front ends.
            Ok(
                NodeEvent::EventsChanged(_)
                | NodeEvent::ManyEventsChanged
                | NodeEvent::PeerConnected(_)
                | NodeEvent::PeerLeft(_)
                | NodeEvent::Progress(_),
            ) => {}
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The timer went off: the link does what is due; `timer` is set to
    /// its next deadline.
    pub(super) fn handle_timeout(&mut self, timer: Pin<&mut Sleep>) -> Step {
        let store = &self.node.store;
        let changes = self
            .link
            .handle_timeout(Instant::now(), &mut self.node.sources(), |f| {
                store.head(f).ok().flatten().map_or(0, |h| h.sequence)
            });
        match changes {
            Ok(changes) => self.node.announce_modes(changes),
            Err(LinkError::Idle) => return Err(ConnectionError::Idle),
        }
        timer.reset(self.deadline());
        Ok(ControlFlow::Continue(()))
    }

    /// Ends the session: leaves the choice of sources, keeps what we
    /// learned of the peer, closes the socket and totals the bytes.
    pub(super) async fn finish(
        mut self,
        socket: Socket,
        outcome: Result<(), ConnectionError>,
        report: &mut SessionReport,
    ) -> Result<(), ConnectionError> {
        self.link.leave();
        // A stranger's one-off sync leaves no replication memory: it
        // would be written at every such session (and grow with every
        // feed we hold) for a peer that may never come back.
        let remember = !(self.stranger.is_some() && self.link.peer_is_once());
        if remember && self.link.is_live() {
            self.node
                .keep_memory(self.link.peer(), &self.link.memory().encode());
        }
        // After our goodbye the peer closes once it has read and stored
        // everything before it, which on a busy node takes a while: a
        // one-off sync must not end before that, or the node it synced with
        // may never store what it was sent. Otherwise (an error, the peer's
        // goodbye, a lasting connection closed at shutdown or for a
        // newcomer) briefly, so that a silent peer cannot hold up a
        // shutdown. Bounded by the idle time, as any silence is.
        let wait = if outcome.is_ok() && self.link.is_one_off() && self.link.is_closing() {
            self.node.config.timing.idle
        } else {
            CLOSE_WAIT
        };
        let (bytes_in, bytes_out) = socket.close(wait).await;
        report.bytes_in += bytes_in;
        report.bytes_out += bytes_out;
        outcome
    }

    /// What we hold of `feed`.
    fn head(&self, feed: &FeedId) -> Result<u64, StoreError> {
        Ok(self.node.store.head(feed)?.map_or(0, |h| h.sequence))
    }

    /// Feeds what the reader decoded to the link; adds the messages to
    /// ingest to `batch` (those of feeds the link accepts and, from a
    /// stranger, within its quotas).
    fn absorb(
        &mut self,
        inbound: Decoded,
        batch: &mut Batch,
        now: Instant,
    ) -> Result<(), ConnectionError> {
        for item in inbound? {
            match item {
                Inbound::Packet(packet) => {
                    let clock = matches!(packet, Packet::Clock(_));
                    match self.link.handle_packet(packet, now)? {
                        Some(PeerEnd::Goodbye) => batch.goodbye = true,
                        Some(PeerEnd::Refused(reason)) => {
                            return Err(ConnectionError::Refused(reason));
                        }
                        None => {}
                    }
                    while let Some(hub_packet) = self.link.poll_hub_packet() {
                        let peer = self.link.peer();
                        if let Some(reply) = self.node.handle_hub_packet(peer, hub_packet) {
                            self.link.handle_hub_send(reply);
                        }
                    }
                    if clock && self.stranger.is_some() {
                        self.node
                            .quotas()
                            .check_clock(self.link.peer_clock_len())
                            .map_err(ConnectionError::Quota)?;
                    }
                }
                Inbound::Malformed(e) => return Err(ConnectionError::InvalidMessage(e.into())),
                Inbound::Messages(mut checked) => {
                    self.link.handle_messages(now)?;
                    let node = self.node;
                    let (link, stranger, member) = (&self.link, self.stranger, self.member);
                    let mut over_quota = BTreeSet::new();
                    let followed = stranger.map(|_| node.followed()).unwrap_or_default();
                    checked.retain(|msg| {
                        let wanted = link.accepts(&msg.author())
                            && !over_quota.contains(&msg.author())
                            && node.within_quota(stranger, &followed, msg, &mut over_quota)
                            && node.within_member_quota(member, msg, &mut over_quota);
                        if !wanted {
                            tracing::debug!(feed = %msg.author(), "dropping a message of a feed we do not replicate");
                        }
                        wanted
                    });
                    // Not taken from this peer for the rest of the session
                    // (it is told, and stops sending it).
                    for feed in over_quota {
                        let head = self.head(&feed)?;
                        self.link.handle_blocking(feed, true, head);
                    }
                    batch.messages.extend(checked);
                }
            }
        }
        Ok(())
    }

    /// Ingests a batch through the store's one ingest path and tells the
    /// link (and through it the node's choice of sources) what is now held.
    async fn ingest(&mut self, batch: Checked) -> Result<(), ConnectionError> {
        if batch.is_empty() {
            return Ok(());
        }
        let positions: Vec<(FeedId, u64)> = batch
            .messages()
            .iter()
            .map(|m| (m.author(), m.sequence()))
            .collect();
        let node = self.node.clone();
        let report = tokio::task::spawn_blocking(move || {
            let report = node.store.ingest_checked(batch)?;
            node.after_append(&report)?;
            Ok::<_, StoreError>(report)
        })
        .await
        .map_err(|e| ConnectionError::Task(e.to_string()))??;
        // A fork is a fact about one feed: stop taking (and giving) that
        // feed on this connection, and go on with every other one.
        let mut forked: Vec<(FeedId, u64)> = Vec::new();
        for feed in report
            .forks
            .iter()
            .map(|f| f.author)
            .collect::<BTreeSet<_>>()
        {
            tracing::warn!(%feed, peer = %self.link.peer(), "this peer holds another history of a forked feed; not exchanging that feed with it (the proof is kept, see `potluck fsck`)");
            forked.push((feed, self.head(&feed)?));
        }
        let new: BTreeSet<FeedId> = report.accepted.iter().map(Message::author).collect();
        let accepted = report.accepted.len() as u64;
        let ingested = Ingested {
            positions: &positions,
            held: report
                .rejected
                .as_ref()
                .map_or(positions.len(), |r| r.index),
            new: &new,
            forked: &forked,
            accepted,
        };
        let changes =
            self.link
                .handle_ingested(&mut self.node.sources(), &ingested, Instant::now());
        self.node.announce_modes(changes);
        self.progress
            .received
            .fetch_add(accepted, Ordering::Relaxed);
        let counters = &self.node.counters;
        counters.received.fetch_add(accepted, Ordering::Relaxed);
        counters
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
    fn pack(&mut self) -> Result<(Vec<Vec<u8>>, u64, bool), ConnectionError> {
        let mut packer = FramePacker::new();
        let mut count = 0;
        let mut goodbye = false;
        while let Some(p) = self.link.poll_packet() {
            goodbye |= p == Packet::Goodbye;
            packer.push(&p)?;
        }
        while !goodbye && packer.pending_len() < WRITE_BATCH_BYTES {
            let Some((feed, first, last)) = self.link.poll_range() else {
                break;
            };
            let mut sent_until = first - 1;
            for item in self.node.store.feed_range(&feed, first, last) {
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
                        self.link.handle_damaged(feed, sent_until);
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok((packer.take(), count, goodbye))
    }
}

impl Node {
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
        // A hub's replication starts from its members, as if its own
        // feed followed them.
        let members = self.member_roots();
        let follows = |f: &FeedId| {
            let mut out: Vec<FeedId> = self
                .store
                .contacts(f)
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, c)| c.following && !c.blocking)
                .map(|(f, _)| f)
                .collect();
            if *f == me {
                out.extend(members.iter().copied());
            }
            out
        };
        // On a hub, `hops N` counts from its members.
        let policy = match self.config.policy {
            replicate::Policy::Hops(hops) if self.hub_limits().is_some() => {
                replicate::Policy::Hops(hops.saturating_add(1))
            }
            ref policy => policy.clone(),
        };
        Ok(replicate::build_clock(
            &policy, me, &heads, follows, &blocked,
        ))
    }
}

/// A connection's link, registered in the node's choice of live sources;
/// it leaves the choice when the connection ends, however it ends (an
/// early `?` included), so that its feeds go to another peer.
struct Registered<'a> {
    node: &'a Node,
    link: Link,
}

impl Registered<'_> {
    /// Leaves the choice now: the peer's feeds fall back to others.
    fn leave(&mut self) {
        let changes = self.link.leave(&mut self.node.sources());
        self.node.announce_modes(changes);
    }
}

impl std::ops::Deref for Registered<'_> {
    type Target = Link;
    fn deref(&self) -> &Link {
        &self.link
    }
}

impl std::ops::DerefMut for Registered<'_> {
    fn deref_mut(&mut self) -> &mut Link {
        &mut self.link
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}
