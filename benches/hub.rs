//! Hubs (issue 20, "Performance"), three parts (env `HUB_PARTS`, default
//! `tunnel,members,catchup`):
//!
//! 1. **tunnel**: a sync of 100,000 messages (1,000 feeds × 100, the
//!    fixture of `benches/sync.rs`) from a sender to a fresh receiver,
//!    directly and through a hub's tunnel, alternating (`HUB_SYNC_ROUNDS`
//!    rounds of each, default 3). Hub, sender and receiver are three
//!    `Node`s in this process on loopback: the hub only copies bytes of a
//!    tunnel, the sender and receiver do the same work either way.
//! 2. **members**: a `potluck serve` hub process (its RSS and CPU time are
//!    its own) and `HUB_MEMBERS` (default 1,000) member sessions held by
//!    this process, each made of the protocol pieces alone (Noise
//!    handshake, `Join` with a member code, an empty open clock, pings),
//!    each from its own loopback address 127.0.x.y. First a probe at the
//!    hub's default connection limits (`HUB_PROBE` sessions, default 200:
//!    how many it holds), then a hub with `"hub": {"connections": …}` in
//!    `config.json`: the time to connect all members, the hub's RSS, one
//!    message published by a member node (and one by the hub, `potluck
//!    announce` against it) until every member session holds it, and the
//!    hub's CPU time over `HUB_IDLE_SECS` (default 30) of idle.
//! 3. **catchup**: a member node that was offline while another member
//!    brought 1,000 new messages (10 feeds × 100) to a `potluck serve`
//!    hub starts (`Node::start` with the hub configured) and holds them
//!    all: time from start (`HUB_CATCHUP_ROUNDS` rounds, default 3).
//!
//! Run: `cargo bench --bench hub`. `cargo test --benches` runs every part
//! at a tiny size. Every wait has a deadline; all traffic is on loopback.

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    CLI_LIMIT, Serve, cpu_time, env_or, fill_sync_fixture, held, hub_config, init_home, loadavg,
    mb, member_code, node_config, potluck, quick, run, runtime,
};
use ed25519_dalek::SigningKey;
use potluck::content::{About, KnownContent};
use potluck::feed::message::{FeedId, Message};
use potluck::home::config::PeerAddr;
use potluck::node::{MemberSettings, Node, SessionReport};
use potluck::proto::frame::{FrameDecoder, encode_frame};
use potluck::proto::handshake::{DEFAULT_NETWORK_KEY, Handshake, HandshakeError, Transport};
use potluck::proto::hub::HubLimits;
use potluck::proto::replicate::sim::opening;
use potluck::proto::replicate::{Clock, Policy};
use potluck::proto::wire::{FramePacker, Packet, TOKEN_LEN};
use potluck::store::Store;
use potluck::store::hub::Member;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

fn main() {
    let quick = quick();
    let parts = std::env::var("HUB_PARTS").unwrap_or_else(|_| "tunnel,members,catchup".into());
    raise_open_files();
    println!("hub bench: load average {}", loadavg());
    if parts.contains("tunnel") {
        tunnel(quick);
    }
    if parts.contains("members") {
        members(quick);
    }
    if parts.contains("catchup") {
        catch_up(quick);
    }
}

/// Lifts this process's soft limit on open files to the hard one: the
/// harness holds a socket per member, and the hub child (which inherits
/// the limit) one per connection.
fn raise_open_files() {
    // SAFETY: plain FFI calls with valid pointers to a local.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn feed_of(key: &SigningKey) -> FeedId {
    FeedId(key.verifying_key().to_bytes())
}

/// The median of a few samples (the upper one of an even count).
fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// Binds a loopback listener for an in-process node.
async fn loopback_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("listener address");
    (listener, addr)
}

fn peer_addr(feed: FeedId, addr: SocketAddr) -> PeerAddr {
    PeerAddr::parse(&format!("{feed}@{addr}")).expect("peer address")
}

/// Polls `done` every 2 ms until it holds or `limit` passes; the time it
/// took, or `None`.
async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    None
}

// ---------------------------------------------------------------------------
// Part 1: a sync through a tunnel against a direct one.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Route {
    Direct,
    Tunnel,
}

fn tunnel(quick: bool) {
    let feeds = env_or("HUB_SYNC_FEEDS", if quick { 10 } else { 1_000 }) as usize;
    let per_feed = env_or("HUB_SYNC_PER_FEED", if quick { 10 } else { 100 }) as usize;
    let rounds = env_or("HUB_SYNC_ROUNDS", if quick { 1 } else { 3 }) as usize;
    let total = (feeds * per_feed) as u64;
    let dir = tempfile::tempdir().expect("tempdir");
    let t0 = Instant::now();
    let sender_store = Arc::new(Store::open(&dir.path().join("sender")).expect("sender store"));
    let bytes = fill_sync_fixture(&sender_store, 1000, feeds, per_feed);
    eprintln!(
        "tunnel: fixture of {total} messages from {feeds} feeds ({bytes} bytes) made in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let hub_store = Arc::new(Store::open(&dir.path().join("hub")).expect("hub store"));
    let hub_key = common::sync_feed_key(900_000);
    let sender_key = common::sync_feed_key(900_001);
    let receiver_keys: Vec<SigningKey> = (0..2 * rounds as u64)
        .map(|i| common::sync_feed_key(900_100 + i))
        .collect();
    for feed in std::iter::once(feed_of(&sender_key)).chain(receiver_keys.iter().map(feed_of)) {
        hub_store
            .add_member(&Member {
                feed,
                since_ms: 0,
                note: Some("hub bench".into()),
                stored_bytes: 0,
                removed_ms: None,
            })
            .expect("add a member");
    }
    let rt = runtime();
    let mut results: Vec<(Route, f64, SessionReport)> = Vec::new();
    rt.block_on(async {
        let hub = Node::new(hub_store.clone(), node_config(hub_key));
        hub.make_hub(HubLimits::default());
        let (listener, addr) = loopback_listener().await;
        let hub_addr = peer_addr(hub.feed_id(), addr);
        let _hub_tasks = hub.start(listener, Vec::new(), None).expect("hub starts");

        let sender = Node::new(sender_store.clone(), node_config(sender_key));
        let sender_feed = sender.feed_id();
        sender.set_member_settings(MemberSettings {
            hubs: vec![hub_addr.clone()],
            tunnels_from_hub_members: true,
        });
        let (listener, addr) = loopback_listener().await;
        let sender_addr = peer_addr(sender_feed, addr);
        let _sender_tasks = sender
            .start(listener, vec![hub_addr.clone()], None)
            .expect("sender starts");
        // The hub stores what its member brings: let that finish first,
        // so the rounds below run beside an idle hub.
        let limit = Duration::from_secs(120 + total / 500);
        let upload = wait_until(limit, || held(&hub_store) == total)
            .await
            .unwrap_or_else(|| panic!("the hub did not store the sender's {total} messages"));
        println!(
            "tunnel: the hub stored its member's {total} messages first, in {:.2} s ({:.0}/s, the member's upload)",
            upload.as_secs_f64(),
            total as f64 / upload.as_secs_f64()
        );
        for round in 0..rounds {
            // Alternate which goes first, so neither always follows the other.
            let order = if round % 2 == 0 {
                [Route::Direct, Route::Tunnel]
            } else {
                [Route::Tunnel, Route::Direct]
            };
            for (i, path) in order.into_iter().enumerate() {
                let key = receiver_keys[2 * round + i].clone();
                let store_dir = dir.path().join(format!("receiver-{round}-{i}"));
                let (elapsed, report) = receive(
                    path,
                    key,
                    &store_dir,
                    &hub_addr,
                    &sender_addr,
                    total,
                )
                .await;
                let rate = report.received as f64 / elapsed;
                println!(
                    "tunnel: round {} {:?}: {} messages in {elapsed:.2} s = {rate:.0} messages/s; {} bytes in to the receiver",
                    round + 1,
                    path,
                    report.received,
                    report.bytes_in
                );
                results.push((path, rate, report));
            }
        }
        sender.shutdown();
        hub.shutdown();
    });
    let rates = |p: Route| -> Vec<f64> {
        results
            .iter()
            .filter(|(path, _, _)| *path == p)
            .map(|(_, r, _)| *r)
            .collect()
    };
    let (direct, through) = (median(&rates(Route::Direct)), median(&rates(Route::Tunnel)));
    println!(
        "tunnel: median direct {direct:.0} messages/s, median through the hub {through:.0} messages/s: tunnel ÷ direct = {:.3} (goal ≥ 0.8); load average {}",
        through / direct,
        loadavg()
    );
}

/// One fresh receiver syncs everything from the sender once, directly or
/// through the hub; the seconds it took and its report.
async fn receive(
    path: Route,
    key: SigningKey,
    store_dir: &Path,
    hub: &PeerAddr,
    sender: &PeerAddr,
    total: u64,
) -> (f64, SessionReport) {
    let store = Arc::new(Store::open(store_dir).expect("receiver store"));
    let node = Node::new(store.clone(), node_config(key));
    let limit = Duration::from_secs(120 + total / 500);
    let start = Instant::now();
    let sync = async {
        match path {
            Route::Direct => node.clone().dial(sender, true).await,
            Route::Tunnel => {
                let target = sender.feed.expect("the sender's feed");
                node.clone().dial_tunnel(hub, target, true).await
            }
        }
    };
    let report = tokio::time::timeout(limit, sync)
        .await
        .unwrap_or_else(|_| panic!("{path:?} sync did not end within {limit:?}"))
        .unwrap_or_else(|e| panic!("{path:?} sync failed: {e}"));
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(held(&store), total, "the receiver holds every message");
    node.shutdown();
    drop(node);
    drop(store);
    common::wait_closed(store_dir, Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(store_dir);
    (elapsed, report)
}

// ---------------------------------------------------------------------------
// Part 2: a hub process with many members.

/// A message one member session received.
struct Receipt {
    member: usize,
    author: FeedId,
    sequence: u64,
    at: Instant,
}

/// Why a member session did not start.
#[derive(Debug)]
enum Failed {
    /// The hub answered `BUSY` in the handshake.
    Busy,
    /// The hub closed, or refused, before the session.
    Refused(String),
    /// Anything else.
    Other(String),
}

/// What member sessions connect to, and what they say.
#[derive(Clone)]
struct HubTarget {
    /// The hub's address.
    addr: SocketAddr,
    /// The hub's feed, which the handshake insists on.
    feed: FeedId,
    /// The member code's secret.
    code: [u8; TOKEN_LEN],
    /// The clock every member sends: empty, or the hub's own (members
    /// in sync with it).
    clock: Arc<Clock>,
}

/// A member session past `Join` and the hub's opening.
struct Session {
    stream: TcpStream,
    transport: Transport,
    decoder: FrameDecoder,
}

fn other(e: impl std::fmt::Display) -> Failed {
    Failed::Other(e.to_string())
}

/// Reads until `decoder` holds a whole frame.
async fn read_frame(
    stream: &mut TcpStream,
    decoder: &mut FrameDecoder,
    buf: &mut [u8],
) -> Result<Vec<u8>, Failed> {
    loop {
        if let Some(frame) = decoder.next_frame().map_err(other)? {
            return Ok(frame);
        }
        let want = decoder.room().min(buf.len());
        let n = stream.read(&mut buf[..want]).await.map_err(other)?;
        if n == 0 {
            return Err(Failed::Refused("the hub closed the connection".into()));
        }
        let taken = decoder.push(&buf[..n]);
        debug_assert_eq!(taken, n);
    }
}

/// Encrypts `packets` into frames and writes them.
async fn send(
    stream: &mut TcpStream,
    transport: &mut Transport,
    packets: &[Packet],
) -> Result<(), Failed> {
    let mut packer = FramePacker::new();
    for p in packets {
        packer.push(p).map_err(other)?;
    }
    let mut wire = Vec::new();
    for plain in packer.take() {
        wire.extend(encode_frame(&transport.encrypt(&plain).map_err(other)?).map_err(other)?);
    }
    stream.write_all(&wire).await.map_err(other)
}

/// Connects from `source`, shakes hands pinned to the hub, joins with
/// the member code and opens a lasting session with an empty open clock;
/// returns once the hub's clock has arrived (messages before it are
/// handed to `receipts`).
async fn open_session(
    member: usize,
    key: &SigningKey,
    source: IpAddr,
    target: &HubTarget,
    receipts: &mpsc::UnboundedSender<Receipt>,
) -> Result<Session, Failed> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(other)?;
    socket.bind(SocketAddr::new(source, 0)).map_err(other)?;
    let mut stream = socket.connect(target.addr).await.map_err(other)?;
    let _ = stream.set_nodelay(true);
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut hs =
        Handshake::initiator(key, &DEFAULT_NETWORK_KEY, Some(target.feed)).map_err(other)?;
    while !hs.is_finished() {
        if let Some(out) = hs.next_outgoing().map_err(other)? {
            let frame = encode_frame(&out).map_err(other)?;
            stream.write_all(&frame).await.map_err(other)?;
            continue;
        }
        let frame = read_frame(&mut stream, &mut decoder, &mut buf).await?;
        match hs.read_incoming(&frame) {
            Ok(()) => {}
            Err(HandshakeError::Busy) => return Err(Failed::Busy),
            Err(e) => return Err(other(e)),
        }
    }
    let (mut transport, _) = hs.finish().map_err(other)?;
    let join = Packet::Join { token: target.code };
    send(&mut stream, &mut transport, &[join]).await?;
    let answer = read_frame(&mut stream, &mut decoder, &mut buf).await?;
    let answer = Packet::decode_all(&transport.decrypt(&answer).map_err(other)?).map_err(other)?;
    match answer.first() {
        Some(Packet::Welcome) => {}
        Some(Packet::Refuse(reason)) => return Err(Failed::Refused(reason.to_string())),
        first => return Err(Failed::Other(format!("{first:?} in answer to Join"))),
    }
    send(
        &mut stream,
        &mut transport,
        &opening(&Policy::Open, (*target.clock).clone()),
    )
    .await?;
    loop {
        let frame = read_frame(&mut stream, &mut decoder, &mut buf).await?;
        let packets =
            Packet::decode_all(&transport.decrypt(&frame).map_err(other)?).map_err(other)?;
        let mut clock_done = false;
        for packet in packets {
            match packet {
                Packet::ClockEnd { .. } => clock_done = true,
                Packet::Refuse(reason) => return Err(Failed::Refused(reason.to_string())),
                packet => note_message(member, packet, receipts),
            }
        }
        if clock_done {
            return Ok(Session {
                stream,
                transport,
                decoder,
            });
        }
    }
}

/// Hands a received message to `receipts`.
fn note_message(member: usize, packet: Packet, receipts: &mpsc::UnboundedSender<Receipt>) {
    if let Packet::Message(bytes) = packet
        && let Ok(message) = Message::decode(bytes)
    {
        let _ = receipts.send(Receipt {
            member,
            author: message.author(),
            sequence: message.sequence(),
            at: Instant::now(),
        });
    }
}

/// Keeps a member session: records every message, pings every 15 s (the
/// hub closes a connection silent for 60 s), and says goodbye on `stop`.
async fn hold_session(
    member: usize,
    mut session: Session,
    receipts: mpsc::UnboundedSender<Receipt>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Failed> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut ping = tokio::time::interval(Duration::from_secs(15));
    ping.tick().await;
    loop {
        tokio::select! {
            frame = read_frame(&mut session.stream, &mut session.decoder, &mut buf) => {
                let frame = frame?;
                let plain = session.transport.decrypt(&frame).map_err(other)?;
                for packet in Packet::decode_all(&plain).map_err(other)? {
                    match packet {
                        Packet::Goodbye => return Err(Failed::Refused("the hub said goodbye".into())),
                        packet => note_message(member, packet, &receipts),
                    }
                }
            }
            _ = ping.tick() => {
                send(&mut session.stream, &mut session.transport, &[Packet::Ping]).await?;
            }
            _ = stop.changed() => {
                let _ = send(&mut session.stream, &mut session.transport, &[Packet::Goodbye]).await;
                let _ = session.stream.shutdown().await;
                return Ok(());
            }
        }
    }
}

/// `count` member sessions, started `at_once` at a time (the hub takes
/// 32 handshakes at once), each retried a few times when the hub is
/// busy.
struct Members {
    /// Per member: how its start ended.
    started: Vec<Result<(), Failed>>,
    /// From the first connect to the last session up.
    elapsed: Duration,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The loopback address member `i` connects from: 127.0.(10 + i / 250).(1 + i % 250).
fn member_source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        10 + (i / 250) as u8,
        1 + (i % 250) as u8,
    ))
}

/// One address for every member: a household or a venue behind one router.
fn shared_source(_: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 9, 1))
}

async fn start_members(
    count: usize,
    first_key: u64,
    source: fn(usize) -> IpAddr,
    target: &HubTarget,
    retries: u32,
    receipts: mpsc::UnboundedSender<Receipt>,
) -> Members {
    let gate = Arc::new(Semaphore::new(16));
    let (stop, stopped) = watch::channel(false);
    let start = Instant::now();
    let mut tasks = Vec::new();
    let mut answers = Vec::new();
    for member in 0..count {
        let (ready, answer) = oneshot::channel::<Result<(), Failed>>();
        answers.push(answer);
        let key = common::sync_feed_key(first_key + member as u64);
        let (gate, receipts, stopped) = (gate.clone(), receipts.clone(), stopped.clone());
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcome = Err(Failed::Other("not tried".into()));
            for attempt in 0..=retries {
                let opened = {
                    let _permit = gate.acquire().await;
                    tokio::time::timeout(
                        Duration::from_secs(20),
                        open_session(member, &key, source(member), &target, &receipts),
                    )
                    .await
                    .unwrap_or_else(|_| Err(Failed::Other("timed out".into())))
                };
                match opened {
                    Ok(session) => {
                        let _ = ready.send(Ok(()));
                        let _ = hold_session(member, session, receipts, stopped).await;
                        return;
                    }
                    Err(Failed::Busy) if attempt < retries => {
                        tokio::time::sleep(Duration::from_millis(200 * (u64::from(attempt) + 1)))
                            .await;
                    }
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
            let _ = ready.send(outcome);
        }));
    }
    let mut started = Vec::new();
    for answer in answers {
        started.push(
            answer
                .await
                .unwrap_or_else(|_| Err(Failed::Other("the task ended".into()))),
        );
    }
    Members {
        started,
        elapsed: start.elapsed(),
        stop,
        tasks,
    }
}

impl Members {
    fn up(&self) -> usize {
        self.started.iter().filter(|s| s.is_ok()).count()
    }

    /// "N up, B told busy, R refused or closed, O other (first: …)".
    fn tally(&self) -> String {
        let (mut busy, mut refused, mut others) = (0, 0, Vec::new());
        for s in &self.started {
            match s {
                Ok(()) => {}
                Err(Failed::Busy) => busy += 1,
                Err(Failed::Refused(_)) => refused += 1,
                Err(Failed::Other(e)) => others.push(e.clone()),
            }
        }
        let first_refusal = self.started.iter().find_map(|s| match s {
            Err(Failed::Refused(r)) => Some(r.clone()),
            _ => None,
        });
        format!(
            "{} up, {busy} told busy, {refused} refused or closed{}, {} other{}",
            self.up(),
            first_refusal.map_or(String::new(), |r| format!(" (first: {r})")),
            others.len(),
            others
                .first()
                .map_or(String::new(), |e| format!(" (first: {e})"))
        )
    }

    /// Says goodbye on every session and waits (bounded) for the tasks.
    async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

/// `VmRSS` and `VmHWM` of a live process, bytes.
fn rss(pid: u32) -> (u64, u64) {
    (common::vm_rss(pid), common::vm_hwm(pid).unwrap_or(0))
}

/// Connected peers of the running node at `home` (`potluck peers`).
fn connected_peers(home: &Path) -> usize {
    let peers = run(potluck(home).args(["--json", "peers"]), CLI_LIMIT).ok("potluck peers");
    peers.json()["connected"].as_array().map_or(0, Vec::len)
}

/// Drains `receipts` until `members` distinct sessions hold
/// `(author, sequence)` or `limit` passes; the time from `t0` to the first
/// and to the last, and how many got it.
async fn fan_out(
    receipts: &mut mpsc::UnboundedReceiver<Receipt>,
    heads: &mut HashMap<FeedId, u64>,
    author: FeedId,
    sequence: u64,
    members: usize,
    t0: Instant,
    limit: Duration,
) -> (Option<Duration>, Option<Duration>, usize) {
    let mut got = std::collections::HashSet::new();
    let mut first = None;
    let mut last = None;
    let deadline = t0 + limit;
    while got.len() < members {
        let Ok(Some(r)) =
            tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), receipts.recv())
                .await
        else {
            break;
        };
        let head = heads.entry(r.author).or_insert(0);
        *head = (*head).max(r.sequence);
        if r.author == author && r.sequence == sequence && got.insert(r.member) {
            let at = r.at.saturating_duration_since(t0);
            first = first.or(Some(at));
            last = Some(at);
        }
    }
    (first, last, got.len())
}

fn members(quick: bool) {
    let count = env_or("HUB_MEMBERS", if quick { 20 } else { 1_000 }) as usize;
    let probe = env_or("HUB_PROBE", if quick { 10 } else { 200 }) as usize;
    let feeds = env_or("HUB_MEMBER_FEEDS", if quick { 20 } else { 1_000 });
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = runtime();
    if probe > 0 {
        probe_defaults(&rt, &dir.path().join("probe"), probe);
    }
    // Light members (they hold nothing), then members in sync with a hub
    // that holds `feeds` feeds: each clock lists them all, as a member's
    // of a community that size would.
    many_members(&rt, &dir.path().join("light"), count, 0, quick);
    if feeds > 0 {
        many_members(&rt, &dir.path().join("feeds"), count, feeds, quick);
    }
}

/// How many members a hub holds at its default connection limits, from
/// `probe` addresses and from one.
fn probe_defaults(rt: &tokio::runtime::Runtime, home: &Path, probe: usize) {
    let behind_one_router = 16;
    init_home(home);
    hub_config(home, json!(true));
    let serve = Serve::start_with(home, &["--no-web"], CLI_LIMIT);
    let (_, code) = member_code(home, serve.addr, probe + behind_one_router);
    let target = HubTarget {
        addr: serve.addr,
        feed: FeedId::parse(&serve.feed).expect("the hub's feed"),
        code,
        clock: Arc::new(Clock::new()),
    };
    let (receipts, _kept) = mpsc::unbounded_channel();
    rt.block_on(async {
        // One try each: a busy answer counts as not held.
        let members =
            start_members(probe, 5_000_000, member_source, &target, 0, receipts.clone()).await;
        println!(
            "members: at the default limits (\"hub\": true), {probe} members from {probe} addresses: {} ({:.1} s)",
            members.tally(),
            members.elapsed.as_secs_f64()
        );
        members.stop().await;
        // The hub sees them leave.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let members = start_members(
            behind_one_router,
            5_100_000,
            shared_source,
            &target,
            0,
            receipts,
        )
        .await;
        println!(
            "members: at the default limits, {behind_one_router} members from one address: {}",
            members.tally(),
        );
        members.stop().await;
    });
}

/// A hub configured for `count` members, and `count` member sessions
/// whose clocks list the hub's `feeds` feeds (none: an empty clock).
fn many_members(rt: &tokio::runtime::Runtime, home: &Path, count: usize, feeds: u64, quick: bool) {
    let idle = Duration::from_secs(env_or("HUB_IDLE_SECS", if quick { 2 } else { 30 }));
    let clock = if feeds == 0 {
        init_home(home);
        Clock::new()
    } else {
        common::generate(home, feeds, feeds * 10, 3, Duration::from_secs(300));
        let path = potluck::home::Home::at(home).store_path();
        let clock = {
            let store = Store::open(&path).expect("the hub's store");
            store
                .feeds()
                .expect("feeds")
                .into_iter()
                .map(|(f, h)| (f, h.sequence))
                .collect()
        };
        common::wait_closed(&path, Duration::from_secs(10));
        clock
    };
    let label = if feeds == 0 {
        "light members (empty clocks)".to_owned()
    } else {
        format!("members in sync with the hub's {feeds} feeds")
    };
    let connections = count + 64;
    hub_config(home, json!({ "connections": connections }));
    // `HUB_WRAP="heaptrack -o FILE"` runs the hub under a profiler.
    let wrap = std::env::var("HUB_WRAP").unwrap_or_default();
    let wrapper: Vec<&str> = wrap.split_whitespace().collect();
    let serve = Serve::start_under(&wrapper, home, &["--no-web"], CLI_LIMIT);
    let pid = serve.pid();
    let hub_feed = FeedId::parse(&serve.feed).expect("the hub's feed");
    let hub = peer_addr(hub_feed, serve.addr);
    let (_, code) = member_code(home, serve.addr, count + 1);
    let target = HubTarget {
        addr: serve.addr,
        feed: hub_feed,
        code,
        clock: Arc::new(clock),
    };
    let (rss_start, _) = rss(pid);
    println!(
        "members, {label}: hub pid {pid} with \"hub\": {{\"connections\": {connections}}}; RSS at start {:.1} MB",
        mb(rss_start)
    );
    let (receipts_tx, mut receipts) = mpsc::unbounded_channel();
    rt.block_on(async {
        let members =
            start_members(count, 6_000_000, member_source, &target, 8, receipts_tx.clone()).await;
        let (now, peak) = rss(pid);
        println!(
            "members, {label}: {count} joined and connected in {:.1} s: {}; hub RSS {:.1} MB (peak {:.1} MB)",
            members.elapsed.as_secs_f64(),
            members.tally(),
            mb(now),
            mb(peak)
        );
        let up = members.up();
        assert!(up > 0, "no member session started: {}", members.tally());

        // A member node that publishes: a real node, joined with the code.
        let pub_dir = home.with_extension("publisher");
        let pub_store = Arc::new(Store::open(&pub_dir).expect("publisher store"));
        let publisher = Node::new(
            pub_store.clone(),
            node_config(common::sync_feed_key(7_000_000)),
        );
        let joined = tokio::spawn({
            let (publisher, hub) = (publisher.clone(), hub.clone());
            async move { publisher.dial_with_code(&hub, code, false).await }
        });
        let connected = wait_until(Duration::from_secs(60), || {
            publisher.peers().iter().any(|p| p.caught_up)
        })
        .await;
        assert!(connected.is_some(), "the publishing member did not catch up");
        println!(
            "members, {label}: the hub counts {} connected peers (`potluck peers`)",
            connected_peers(home)
        );
        let mut heads = HashMap::new();
        let limit = Duration::from_secs(30);
        let rounds = if quick { 1 } else { 3 };
        let mut lasts = Vec::new();
        for round in 0..rounds {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let about = About {
                name: format!("publisher, round {round}"),
                description: None,
            };
            let t0 = Instant::now();
            let message = publisher
                .publish(&about.to_content_bytes(), jiff::Timestamp::now().as_millisecond())
                .expect("publish");
            let (first, last, got) = fan_out(
                &mut receipts,
                &mut heads,
                message.author(),
                message.sequence(),
                up,
                t0,
                limit,
            )
            .await;
            println!(
                "members, {label}: a member's message #{} reached {got} of {up} member sessions; first after {}, last after {}",
                round + 1,
                show(first),
                show(last)
            );
            if let Some(last) = last.filter(|_| got == up) {
                lasts.push(last.as_secs_f64());
            }
        }
        for round in 0..rounds {
            tokio::time::sleep(Duration::from_secs(1)).await;
            // The hub's own messages so far reached every member at its
            // start (the clock, or the first sync): the next is one more.
            let sequence = target
                .clock
                .get(&hub_feed)
                .copied()
                .unwrap_or(0)
                .max(heads.get(&hub_feed).copied().unwrap_or(0))
                + 1;
            let t0 = Instant::now();
            let announce = tokio::task::spawn_blocking({
                let home = home.to_owned();
                move || {
                    run(
                        potluck(&home).args([
                            "--json",
                            "announce",
                            "--title",
                            &format!("Hub supper {round}"),
                            "--start",
                            "2031-06-01T18:00:00Z",
                        ]),
                        CLI_LIMIT,
                    )
                }
            });
            let (first, last, got) =
                fan_out(&mut receipts, &mut heads, hub_feed, sequence, up, t0, limit).await;
            let cli = announce.await.expect("announce task").ok("potluck announce");
            println!(
                "members, {label}: the hub's event #{} (`potluck announce` on the hub, {:.0} ms to exit) reached {got} of {up}; first after {}, last after {}",
                round + 1,
                cli.elapsed.as_secs_f64() * 1e3,
                show(first),
                show(last)
            );
        }
        if !lasts.is_empty() {
            println!(
                "members, {label}: a member's message to all {up} sessions, median {:.3} s (goal ≤ 2 s)",
                median(&lasts)
            );
        }

        // Idle: every session open, nothing published.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = cpu_time(pid);
        let t = Instant::now();
        tokio::time::sleep(idle).await;
        let used = cpu_time(pid).saturating_sub(before);
        let (now, peak) = rss(pid);
        println!(
            "members, {label}: idle with {} sessions for {:.1} s: hub CPU {:.2} s = {:.2} % of a core (goal ≤ 2 %); RSS {:.1} MB, peak {:.1} MB (goal ≤ 150 MB); load average {}",
            up + 1,
            t.elapsed().as_secs_f64(),
            used.as_secs_f64(),
            100.0 * used.as_secs_f64() / t.elapsed().as_secs_f64(),
            mb(now),
            mb(peak),
            loadavg()
        );
        publisher.shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(5), joined).await;
        members.stop().await;
    });
    drop(serve);
}

fn show(d: Option<Duration>) -> String {
    d.map_or_else(
        || "never".into(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1e3),
    )
}

// ---------------------------------------------------------------------------
// Part 3: a member back after being offline.

fn catch_up(quick: bool) {
    let feeds = env_or("HUB_CATCHUP_FEEDS", if quick { 2 } else { 10 }) as usize;
    let per_feed = env_or("HUB_CATCHUP_PER_FEED", if quick { 10 } else { 100 }) as usize;
    let rounds = env_or("HUB_CATCHUP_ROUNDS", if quick { 1 } else { 3 }) as usize;
    let fresh = (feeds * per_feed) as u64;
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("hub");
    init_home(&home);
    hub_config(&home, json!(true));
    let serve = Serve::start_with(&home, &["--no-web"], CLI_LIMIT);
    let hub = peer_addr(
        FeedId::parse(&serve.feed).expect("the hub's feed"),
        serve.addr,
    );
    let (_, code) = member_code(&home, serve.addr, 2);
    let writer_store = Arc::new(Store::open(&dir.path().join("writer")).expect("writer store"));
    let member_store = Arc::new(Store::open(&dir.path().join("member")).expect("member store"));
    let member_key = common::sync_feed_key(8_000_001);
    let rt = runtime();
    let mut times = Vec::new();
    rt.block_on(async {
        let limit = Duration::from_secs(60);
        let writer = Node::new(
            writer_store.clone(),
            node_config(common::sync_feed_key(8_000_000)),
        );
        // Both join with the code, once; the member then goes offline.
        let member = Node::new(member_store.clone(), node_config(member_key.clone()));
        for (node, who) in [(&writer, "writer"), (&member, "member")] {
            tokio::time::timeout(limit, node.clone().dial_with_code(&hub, code, true))
                .await
                .unwrap_or_else(|_| panic!("the {who} did not join in time"))
                .unwrap_or_else(|e| panic!("the {who} did not join: {e}"));
        }
        member.shutdown();
        drop(member);
        for round in 0..rounds {
            // While the member is offline, another brings new messages.
            let first = 8_100_000 + (round * feeds) as u64;
            fill_sync_fixture(&writer_store, first, feeds, per_feed);
            let sent = tokio::time::timeout(limit, writer.clone().dial(&hub, true))
                .await
                .expect("the writer's sync ends")
                .expect("the writer syncs with the hub")
                .sent;
            assert!(sent >= fresh, "the writer sent {sent} of {fresh}");
            let wanted: Vec<FeedId> = (first..first + feeds as u64)
                .map(|f| feed_of(&common::sync_feed_key(f)))
                .collect();
            let holds = |store: &Store| -> u64 {
                store
                    .feeds()
                    .expect("feeds")
                    .iter()
                    .filter(|(f, _)| wanted.contains(f))
                    .map(|(_, h)| h.sequence)
                    .sum()
            };
            assert_eq!(holds(&member_store), 0);
            // The member's node starts, its hub configured.
            let start = Instant::now();
            let member = Node::new(member_store.clone(), node_config(member_key.clone()));
            member.set_member_settings(MemberSettings {
                hubs: vec![hub.clone()],
                tunnels_from_hub_members: false,
            });
            let (listener, _) = loopback_listener().await;
            let tasks = member
                .start(listener, vec![hub.clone()], None)
                .expect("the member starts");
            let caught_up = wait_until(limit, || holds(&member_store) == fresh).await;
            let elapsed = caught_up.map(|_| start.elapsed());
            println!(
                "catchup: round {}: the member node started and held the {fresh} new messages ({feeds} feeds) after {}",
                round + 1,
                show(elapsed)
            );
            times.push(elapsed.map_or(f64::INFINITY, |e| e.as_secs_f64()));
            member.shutdown();
            for task in tasks {
                let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
            }
            // Let the hub see the member gone before the next round.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        writer.shutdown();
    });
    println!(
        "catchup: median {:.3} s from start to holding {fresh} new messages (goal ≤ 1 s); load average {}",
        median(&times),
        loadavg()
    );
    drop(serve);
}
