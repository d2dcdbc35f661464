//! One connection: the handshake, then the replication driver, which
//! moves bytes and timers between the socket tasks ([`super::io`]), the
//! connection's [`Link`] and the store.

use super::io::{Inbound, push_all, read_task, write_task};
use super::*;

impl Node {
    /// Runs one connection: handshake, then replication.
    /// `dial` is `Some((expected feed, dialed address))` when we dialed.
    pub(super) async fn connection(
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
        let link = Link::open(
            Opening {
                peer: remote,
                policy: &self.config.policy,
                mine: memory.0,
                memory: memory.1,
                once,
                timing: LinkTiming::new(self.config.timing.keepalive, self.config.timing.idle),
            },
            &mut self.sources(),
            Instant::now(),
        );
        let mut link = Registered { node: &self, link };
        let stranger = self.stranger(remote, slot.is_none(), once);
        let mut events = self.events.subscribe();
        let mut stop = self.shutdown.subscribe();
        // One timer for the link's deadlines. It is moved only when the
        // link needs waking earlier: most deadlines only move later (each
        // packet pushes the idle time back), and waking early is cheap
        // (`handle_timeout` does what is due and nothing else), while
        // re-arming a timer at every batch is not.
        let idle = self.config.timing.idle;
        let timer = tokio::time::sleep_until(deadline(&link, idle));
        tokio::pin!(timer);

        let outcome: Result<(), ConnectionError> = 'session: loop {
            link.poll_finish();
            if let Some(p) = link.poll_progress(Instant::now()) {
                progress.caught_up.store(p.caught_up, Ordering::Relaxed);
                progress.remaining.store(p.remaining, Ordering::Relaxed);
                if p.changed {
                    let _ = self.events.send(NodeEvent::Progress(CatchUp {
                        peer: remote,
                        received: p.received,
                        remaining: p.remaining,
                        caught_up: p.caught_up,
                    }));
                }
            }
            let closing = link.is_closing();
            let wants_to_send = link.wants_to_send();
            let due = deadline(&link, idle);
            if due < timer.deadline() {
                timer.as_mut().reset(due);
            }
            // Not `biased`: during a long one-way sync packets are always
            // ready, and a fixed order would starve the sending branch and
            // the keepalive, so the peer, hearing nothing, would hang up.
            tokio::select! {
                _ = stop.changed(), if !closing => link.close(),
                () = async { evicted.as_ref().expect("guarded").notified().await }, if evicted.is_some() && !closing => {
                    link.close();
                }
                packets = in_rx.recv() => {
                    let Some(packets) = packets else { break Err(ConnectionError::Closed) };
                    let now = Instant::now();
                    // Anything but pings keeps the slot from being given
                    // to a newcomer.
                    let useful = packets.as_ref().map_or(true, |items| {
                        items.iter().any(|i| !matches!(i, Inbound::Packet(Packet::Ping)))
                    });
                    if let Some(slot) = slot.filter(|_| useful) {
                        self.connections().useful(slot.id, now);
                    }
                    let mut batch = Checked::default();
                    let mut goodbye = false;
                    if let Err(e) = absorb(&self, &mut link, packets, &mut batch, &mut goodbye, now, stranger) {
                        // Keep the valid messages that came before.
                        let _ = self.ingest(&mut link, batch, progress).await;
                        break Err(e);
                    }
                    // Gather more frames that are already here into one batch.
                    while batch.len() < INGEST_BATCH && !goodbye && !batch.has_bad() {
                        match in_rx.try_recv() {
                            Ok(more) => {
                                if let Err(e) = absorb(&self, &mut link, more, &mut batch, &mut goodbye, now, stranger) {
                                    let _ = self.ingest(&mut link, batch, progress).await;
                                    break 'session Err(e);
                                }
                            }
                            Err(_) => break,
                        }
                    }
                    let changes = link.handle_batch_end(&mut self.sources(), now);
                    self.announce_modes(changes);
                    if let Err(e) = self.ingest(&mut link, batch, progress).await {
                        break Err(e);
                    }
                    if goodbye {
                        break Ok(());
                    }
                }
                permit = out_tx.reserve(), if wants_to_send => {
                    let Ok(permit) = permit else { break Err(ConnectionError::Closed) };
                    let (frames, count, said_goodbye) = match self.pack(&mut link) {
                        Ok(x) => x,
                        Err(e) => break Err(e),
                    };
                    progress.sent.fetch_add(count, Ordering::Relaxed);
                    self.counters.sent.fetch_add(count, Ordering::Relaxed);
                    let wrote = !frames.is_empty();
                    if wrote {
                        permit.send(frames);
                    }
                    link.handle_sent(count, wrote, Instant::now());
                    if said_goodbye {
                        break Ok(());
                    }
                }
                event = events.recv() => match event {
                    Ok(NodeEvent::Appended(feed, seq)) => link.handle_local_append(feed, seq),
                    Ok(NodeEvent::Modes(change)) => link.handle_modes(&change),
                    Ok(NodeEvent::Blocking { feed, blocked }) => {
                        let head = self.store.head(&feed)?.map_or(0, |h| h.sequence);
                        link.handle_blocking(feed, blocked, head);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // We missed some notices: re-read the push modes,
                        // blocks and heads.
                        let blocked = self.store.blocked_by(&self.feed_id())?;
                        let heads = self.store.feeds()?;
                        let sources = self.sources();
                        link.handle_missed(&sources, blocked, heads.into_iter().map(|(f, h)| (f, h.sequence)));
                    }
                    Err(broadcast::error::RecvError::Closed) => break Ok(()),
                    // For front ends.
                    Ok(NodeEvent::EventsChanged(_) | NodeEvent::PeerConnected(_) | NodeEvent::PeerLeft(_) | NodeEvent::Progress(_)) => {}
                },
                () = &mut timer => {
                    let changes = {
                        let store = &self.store;
                        link.handle_timeout(Instant::now(), &mut self.sources(), |f| {
                            store.head(f).ok().flatten().map_or(0, |h| h.sequence)
                        })
                    };
                    match changes {
                        Ok(changes) => self.announce_modes(changes),
                        Err(LinkError::Idle) => break Err(ConnectionError::Idle),
                    }
                    timer.as_mut().reset(deadline(&link, idle));
                }
            }
        };
        link.leave();
        drop(out_tx);
        // A stranger's one-off sync leaves no replication memory: it
        // would be written at every such session (and grow with every
        // feed we hold) for a peer that may never come back.
        let remember = !(stranger.is_some() && link.peer_is_once());
        finish(
            reader,
            in_rx,
            writer,
            outcome,
            &self,
            remember.then_some(remote),
            &link,
            report,
            &bytes_in,
            &bytes_out,
        )
        .await
    }

    /// Ingests a batch through the store's one ingest path and tells the
    /// link (and through it the node's choice of sources) what is now held.
    async fn ingest(
        self: &Arc<Self>,
        link: &mut Link,
        batch: Checked,
        progress: &PeerProgress,
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
        // A fork is a fact about one feed: stop taking (and giving) that
        // feed on this connection, and go on with every other one.
        let mut forked: Vec<(FeedId, u64)> = Vec::new();
        for feed in report
            .forks
            .iter()
            .map(|f| f.author)
            .collect::<BTreeSet<_>>()
        {
            let head = self.store.head(&feed)?.map_or(0, |h| h.sequence);
            tracing::warn!(%feed, peer = %link.peer(), "this peer holds another history of a forked feed; not exchanging that feed with it (the proof is kept, see `potluck fsck`)");
            forked.push((feed, head));
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
        let changes = link.handle_ingested(&mut self.sources(), &ingested, Instant::now());
        self.announce_modes(changes);
        progress.received.fetch_add(accepted, Ordering::Relaxed);
        self.counters
            .received
            .fetch_add(accepted, Ordering::Relaxed);
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
    fn pack(&self, link: &mut Link) -> Result<(Vec<Vec<u8>>, u64, bool), ConnectionError> {
        let mut packer = FramePacker::new();
        let mut count = 0;
        let mut goodbye = false;
        while let Some(p) = link.poll_packet() {
            goodbye |= p == Packet::Goodbye;
            packer.push(&p)?;
        }
        while !goodbye && packer.pending_len() < WRITE_BATCH_BYTES {
            let Some((feed, first, last)) = link.poll_range() else {
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
                        link.handle_damaged(feed, sent_until);
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok((packer.take(), count, goodbye))
    }
}

/// Feeds what the reader decoded to the link; collects the messages to
/// ingest (those of feeds the link accepts and, from a `stranger`, within
/// its quotas).
#[allow(clippy::too_many_arguments)]
fn absorb(
    node: &Node,
    link: &mut Link,
    inbound: Result<Vec<Inbound>, ConnectionError>,
    batch: &mut Checked,
    goodbye: &mut bool,
    now: Instant,
    stranger: Option<FeedId>,
) -> Result<(), ConnectionError> {
    for item in inbound? {
        match item {
            Inbound::Packet(packet) => {
                let clock = matches!(packet, Packet::Clock(_));
                *goodbye |= link.handle_packet(packet, now)?;
                if clock && stranger.is_some() {
                    node.quotas()
                        .check_clock(link.peer_clock_len())
                        .map_err(ConnectionError::Quota)?;
                }
            }
            Inbound::Malformed(e) => return Err(ConnectionError::InvalidMessage(e.into())),
            Inbound::Messages(mut checked) => {
                link.handle_messages(now)?;
                let mut over_quota = BTreeSet::new();
                let followed = stranger.map(|_| node.followed()).unwrap_or_default();
                checked.retain(|msg| {
                    let wanted = link.accepts(&msg.author())
                        && !over_quota.contains(&msg.author())
                        && node.within_quota(stranger, &followed, msg, &mut over_quota);
                    if !wanted {
                        tracing::debug!(feed = %msg.author(), "dropping a message of a feed we do not replicate");
                    }
                    wanted
                });
                // Not taken from this peer for the rest of the session
                // (it is told, and stops sending it).
                for feed in over_quota {
                    let head = node.store.head(&feed)?.map_or(0, |h| h.sequence);
                    link.handle_blocking(feed, true, head);
                }
                batch.extend(checked);
            }
        }
    }
    Ok(())
}

/// When the link must be woken next (at the latest after the idle time).
fn deadline(link: &Link, idle: Duration) -> tokio::time::Instant {
    link.poll_timeout().map_or_else(
        || tokio::time::Instant::now() + idle,
        tokio::time::Instant::from_std,
    )
}

/// An inbound connection's handshake slot; given back when the handshake
/// ends, however it ends.
pub(super) struct HandshakeSlot<'a> {
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
pub(super) struct InboundSlot<'a> {
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

/// Records the session's memory of `remember` (when given), stops the tasks,
/// and totals the bytes.
#[allow(clippy::too_many_arguments)]
async fn finish(
    reader: tokio::task::JoinHandle<()>,
    mut inbound: mpsc::Receiver<Result<Vec<Inbound>, ConnectionError>>,
    writer: tokio::task::JoinHandle<()>,
    outcome: Result<(), ConnectionError>,
    node: &Node,
    remember: Option<FeedId>,
    link: &Link,
    report: &mut SessionReport,
    bytes_in: &AtomicU64,
    bytes_out: &AtomicU64,
) -> Result<(), ConnectionError> {
    if let Some(remote) = remember
        && link.is_live()
    {
        node.keep_memory(remote, &link.memory().encode());
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
    // Read on until the peer closes too: closing a socket with unread
    // data resets the connection, and a reset makes the peer's kernel drop
    // what it received but its node has not read yet, our last messages
    // included. After our goodbye the peer closes once it has read and
    // stored everything before it, which on a busy node takes a while: a
    // one-off sync must not end before that, or the node it synced with
    // may never store what it was sent. Otherwise (an error, the peer's
    // goodbye, a lasting connection closed at shutdown or for a newcomer)
    // briefly, so that a silent peer cannot hold up a shutdown. Bounded by
    // the idle time, as any silence is.
    let wait = if outcome.is_ok() && link.is_one_off() && link.is_closing() {
        node.config.timing.idle
    } else {
        Duration::from_secs(2)
    };
    let _ = tokio::time::timeout(wait, async { while inbound.recv().await.is_some() {} }).await;
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
