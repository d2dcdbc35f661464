//! Accepting, dialing and LAN discovery: the loops that make
//! connections, each then run by [`super::connection`].

use super::*;

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
    pub async fn discovery_loop(
        self: Arc<Self>,
        settings: DiscoverySettings,
    ) -> std::io::Result<()> {
        let socket = discovery_socket(settings.bind)?;
        let me = self.feed_id();
        let mut recent = discovery::Recent::default();
        let mut stop = self.shutdown.subscribe();
        let mut tick = tokio::time::interval(settings.every);
        let mut buf = [0u8; discovery::MAX_PACKET];
        tracing::info!(bind = %settings.bind, "LAN discovery on");
        loop {
            tokio::select! {
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
                }
                received = socket.recv_from(&mut buf) => {
                    let Ok((n, from)) = received else { continue };
                    match discovery::open(&buf[..n], &self.config.network) {
                        Ok(a) if a.feed == me => {}
                        Ok(a) => match recent.accept(&a, jiff::Timestamp::now().as_millisecond()) {
                            Ok(()) => self.discovered(a.feed, SocketAddr::new(from.ip(), a.port)),
                            Err(e) => tracing::debug!(%from, error = %e, "dropping an announcement"),
                        },
                        Err(e) => tracing::debug!(%from, error = %e, "dropping a datagram"),
                    }
                }
            }
        }
    }

    /// A peer announced itself: record it, and dial it unless we are
    /// connected already (a dial loop per address, with backoff).
    pub fn discovered(self: &Arc<Self>, feed: FeedId, addr: SocketAddr) {
        let addr_text = addr.to_string();
        let now = jiff::Timestamp::now().as_millisecond();
        let (dialing, busy) = self
            .dialing
            .lock()
            .map(|d| (d.contains(&addr_text), d.len() >= MAX_DIAL_LOOPS))
            .unwrap_or((true, true));
        let known = self.store.peer_record(&addr_text).ok().flatten();
        if known.is_none() && busy {
            // A LAN full of announcements must not grow the book without end.
            tracing::debug!(%addr, "ignoring a new peer: too many dials in progress");
            return;
        }
        let mut record = known.unwrap_or_else(|| {
            PeerRecord::new(addr_text.clone(), Some(feed), PeerSource::Discovered)
        });
        record.feed = Some(feed);
        record.seen(now);
        let _ = self.store.put_peer_record(&record);
        let connected = self
            .peers
            .lock()
            .map(|p| p.contains_key(&feed))
            .unwrap_or(false);
        if !connected && !dialing && !busy {
            tracing::info!(peer = %feed, %addr, "discovered a peer on the LAN");
            let peer = PeerAddr {
                feed: Some(feed),
                addr: addr_text,
            };
            tokio::spawn(self.clone().dial_loop(peer, PeerSource::Discovered));
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
        let addr = stream.peer_addr()?;
        self.connection(stream, addr, Some((peer.feed, peer.addr.as_str())), once)
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
