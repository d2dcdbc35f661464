//! Live gossip in a mesh: N in-process nodes (own key, own temporary sled
//! store, real Noise over TCP on 127.0.0.1), a random connected topology
//! (a ring plus random chords, seeded), RSVPs published at random nodes,
//! paced. Prints the time until every node holds every message, the
//! propagation latency per (message, receiving node), wire bytes, and
//! duplicate deliveries (messages a node received that it already held).
//!
//! A second scenario restarts some nodes (shutdown, reopen the store, same
//! key and port) while messages are published, and reports how long the
//! mesh takes to converge after the last publish.
//!
//! Run: `cargo bench --bench mesh`. Resize with `MESH_NODES` (100),
//! `MESH_DEGREE` (4), `MESH_MESSAGES` (1000), `MESH_SECONDS` (15, the
//! publishing time), `MESH_SEED` (1), `MESH_TIMEOUT` (120, seconds per wait),
//! and for the restart scenario `MESH_RESTART_NODES` (20),
//! `MESH_RESTART_MESSAGES` (300), `MESH_RESTARTS` (6), `MESH_DIR` (where
//! the stores go; `/dev/shm` by default, see `store_root`). A third
//! scenario runs the same mesh (`MESH_NODES`, `MESH_MESSAGES`) in the
//! sans-io simulator, `replicate::sim`. `MESH_SCENARIO` = `live`,
//! `restart` or `sim` runs one scenario only. Under `cargo test
//! --benches` it runs a tiny size as a smoke test. LAN discovery is never
//! started: all traffic stays on loopback.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use potluck::feed::message::{FeedId, MessageId};
use potluck::home::config::PeerAddr;
use potluck::node::{Node, NodeConfig, NodeEvent, NodeStats, Timing};
use potluck::proto::handshake::DEFAULT_NETWORK_KEY;
use potluck::proto::peerbook::PeerSource;
use potluck::proto::replicate::Policy;
use potluck::proto::replicate::sim::{Sim, sim_id};
use potluck::store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpListener;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Short backoffs so that restarted nodes are redialed quickly.
fn timing() -> Timing {
    Timing {
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        ..Timing::default()
    }
}

fn key_of(seed: u64, i: usize) -> SigningKey {
    let mut bytes = [7u8; 32];
    bytes[..8].copy_from_slice(&seed.to_be_bytes());
    bytes[8..16].copy_from_slice(&(i as u64).to_be_bytes());
    SigningKey::from_bytes(&bytes)
}

fn feed_of(key: &SigningKey) -> FeedId {
    FeedId(key.verifying_key().to_bytes())
}

/// Where the stores go: `MESH_DIR`, else `/dev/shm` when it exists, else
/// the system's temporary directory. Every append flushes its store (an
/// fsync); a hundred nodes sharing one disk would mostly measure that
/// disk's fsync queue, which no real deployment (one node per device) has.
fn store_root() -> PathBuf {
    if let Ok(dir) = std::env::var("MESH_DIR") {
        return PathBuf::from(dir);
    }
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A ring plus random chords up to about `degree` links per node; each
/// edge `(a, b)` has `a < b`, and `a` dials `b`.
fn topology(n: usize, degree: usize, rng: &mut StdRng) -> BTreeSet<(usize, usize)> {
    let mut edges = BTreeSet::new();
    if n < 2 {
        return edges;
    }
    for i in 0..n {
        let j = (i + 1) % n;
        if i != j {
            edges.insert((i.min(j), i.max(j)));
        }
    }
    let target = (n * degree / 2).min(n * (n - 1) / 2);
    // Bounded: at most this many draws, even if the graph is nearly full.
    for _ in 0..target * 20 {
        if edges.len() >= target {
            break;
        }
        let a = rng.gen_range(0..n);
        let b = rng.gen_range(0..n);
        if a != b {
            edges.insert((a.min(b), a.max(b)));
        }
    }
    edges
}

fn rsvp_content(event: MessageId, author: usize, k: usize) -> Vec<u8> {
    format!(
        r#"{{"type":"rsvp","event":"{event}","status":"going","guests":{},"note":"Node {author} answers, message {k}: I will bring bread."}}"#,
        k % 3
    )
    .into_bytes()
}

fn event_content() -> Vec<u8> {
    r#"{"type":"event","title":"Mesh potluck","start":"2031-05-01T18:00:00-04:00","tz":"America/New_York","location":"Community hall","description":"Bring a dish to share."}"#.as_bytes().to_vec()
}

fn about_content(i: usize) -> Vec<u8> {
    format!(r#"{{"type":"about","name":"Node {i}"}}"#).into_bytes()
}

/// One node of the mesh, possibly restarted over the same store and port.
struct MeshNode {
    key: SigningKey,
    path: PathBuf,
    addr: SocketAddr,
    node: Option<Arc<Node>>,
    /// Stats of the incarnations that were shut down.
    past: NodeStats,
}

/// When each node's store got each (feed, sequence), from the node's events.
#[derive(Default)]
struct Arrivals {
    at: Mutex<HashMap<(usize, FeedId, u64), Instant>>,
    lagged: AtomicUsize,
}

fn add(a: NodeStats, b: NodeStats) -> NodeStats {
    NodeStats {
        received: a.received + b.received,
        duplicates: a.duplicates + b.duplicates,
        sent: a.sent + b.sent,
        bytes_in: a.bytes_in + b.bytes_in,
        bytes_out: a.bytes_out + b.bytes_out,
        to_notes: a.to_notes + b.to_notes,
        asked_at_once: a.asked_at_once + b.asked_at_once,
        asked_after_grace: a.asked_after_grace + b.asked_after_grace,
    }
}

fn sub(a: NodeStats, b: NodeStats) -> NodeStats {
    NodeStats {
        received: a.received - b.received,
        duplicates: a.duplicates - b.duplicates,
        sent: a.sent - b.sent,
        bytes_in: a.bytes_in - b.bytes_in,
        bytes_out: a.bytes_out - b.bytes_out,
        to_notes: a.to_notes - b.to_notes,
        asked_at_once: a.asked_at_once - b.asked_at_once,
        asked_after_grace: a.asked_after_grace - b.asked_after_grace,
    }
}

struct Mesh {
    nodes: Vec<MeshNode>,
    edges: BTreeSet<(usize, usize)>,
    arrivals: Arc<Arrivals>,
    _dir: tempfile::TempDir,
}

impl Mesh {
    async fn new(n: usize, degree: usize, seed: u64) -> Mesh {
        let dir = tempfile::tempdir_in(store_root()).expect("tempdir");
        let mut rng = StdRng::seed_from_u64(seed);
        let edges = topology(n, degree, &mut rng);
        let mut nodes = Vec::with_capacity(n);
        let mut listeners = Vec::with_capacity(n);
        for i in 0..n {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            nodes.push(MeshNode {
                key: key_of(seed, i),
                path: dir.path().join(format!("node{i}")),
                addr,
                node: None,
                past: NodeStats::default(),
            });
            listeners.push(listener);
        }
        let mut mesh = Mesh {
            nodes,
            edges,
            arrivals: Arc::new(Arrivals::default()),
            _dir: dir,
        };
        for (i, listener) in listeners.into_iter().enumerate() {
            let store = Arc::new(Store::open(&mesh.nodes[i].path).expect("store"));
            mesh.start(i, store, listener);
        }
        mesh
    }

    /// Starts node `i` over `store`: accept loop, a dial loop for each
    /// edge it dials, and a recorder of its events.
    fn start(&mut self, i: usize, store: Arc<Store>, listener: TcpListener) {
        let node = Node::new(
            store,
            NodeConfig {
                identity: self.nodes[i].key.clone(),
                network: DEFAULT_NETWORK_KEY,
                policy: Policy::Open,
                timing: timing(),
            },
        );
        let mut events = node.subscribe();
        let arrivals = self.arrivals.clone();
        let mut stop = node.subscribe_shutdown();
        tokio::spawn(async move {
            // A notice says the node holds a feed up to a sequence (one
            // per feed per commit): every sequence since the last notice
            // arrived now.
            let mut noticed: HashMap<FeedId, u64> = HashMap::new();
            loop {
                let event = tokio::select! {
                    e = events.recv() => e,
                    _ = stop.changed() => return,
                };
                match event {
                    Ok(NodeEvent::Appended(feed, seq)) => {
                        let last = noticed.get(&feed).copied().unwrap_or(0);
                        noticed.insert(feed, last.max(seq));
                        let now = Instant::now();
                        let mut at = arrivals.at.lock().expect("lock");
                        for s in last + 1..=seq {
                            at.entry((i, feed, s)).or_insert(now);
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        arrivals.lagged.fetch_add(n as usize, Ordering::Relaxed);
                    }
                    Err(_) => return,
                }
            }
        });
        tokio::spawn(node.clone().accept_loop(listener));
        for &(a, b) in &self.edges {
            let other = match (a == i, b == i) {
                (true, _) => b,
                _ => continue,
            };
            let peer = PeerAddr {
                feed: Some(feed_of(&self.nodes[other].key)),
                addr: self.nodes[other].addr.to_string(),
            };
            tokio::spawn(node.clone().dial_loop(peer, PeerSource::Configured));
        }
        self.nodes[i].node = Some(node);
    }

    fn node(&self, i: usize) -> Option<&Arc<Node>> {
        self.nodes[i].node.as_ref()
    }

    /// Sum of every node's stats, past incarnations included.
    fn stats(&self) -> NodeStats {
        self.nodes.iter().fold(NodeStats::default(), |acc, n| {
            let live = n.node.as_ref().map(|x| x.stats()).unwrap_or_default();
            add(acc, add(n.past, live))
        })
    }

    /// Nodes that do not (yet) hold every feed up to `expected`.
    fn lagging(&self, expected: &BTreeMap<FeedId, u64>) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let Some(node) = &n.node else {
                out.push((i, u64::MAX));
                continue;
            };
            let heads: HashMap<FeedId, u64> = node
                .store()
                .feeds()
                .expect("feeds")
                .into_iter()
                .map(|(f, h)| (f, h.sequence))
                .collect();
            let missing: u64 = expected
                .iter()
                .map(|(f, &s)| s.saturating_sub(heads.get(f).copied().unwrap_or(0)))
                .sum();
            if missing > 0 {
                out.push((i, missing));
            }
        }
        out
    }

    /// Waits until every node holds `expected`; returns the time waited,
    /// or the nodes still missing messages at the timeout.
    async fn converge(
        &self,
        expected: &BTreeMap<FeedId, u64>,
        timeout: Duration,
    ) -> Result<Duration, Vec<(usize, u64)>> {
        let start = Instant::now();
        loop {
            let lagging = self.lagging(expected);
            if lagging.is_empty() {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                return Err(lagging);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until each node is connected to all its neighbours.
    async fn connected(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        let mut want = vec![0usize; self.nodes.len()];
        for &(a, b) in &self.edges {
            want[a] += 1;
            want[b] += 1;
        }
        while start.elapsed() < timeout {
            let all = self.nodes.iter().enumerate().all(|(i, n)| {
                n.node
                    .as_ref()
                    .is_some_and(|node| node.peers().len() >= want[i])
            });
            if all {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Publishes `content` at node `i`; returns (feed, sequence).
    async fn publish(&self, i: usize, content: Vec<u8>) -> (FeedId, u64) {
        let node = self.node(i).expect("running").clone();
        let msg = tokio::task::spawn_blocking(move || node.publish(&content, now_ms()))
            .await
            .expect("task")
            .expect("publish");
        (msg.author(), msg.sequence())
    }

    /// Shuts node `i` down and waits until its store can be reopened.
    async fn stop(&mut self, i: usize, timeout: Duration) -> Result<(), String> {
        let node = self.nodes[i].node.take().ok_or("not running")?;
        node.shutdown();
        // Connections end (their tasks hold the node), then the last
        // reference to the store goes with the node.
        let start = Instant::now();
        while Arc::strong_count(&node) > 1 {
            if start.elapsed() > timeout {
                return Err(format!("node {i} is still in use"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.nodes[i].past = add(self.nodes[i].past, node.stats());
        drop(node);
        Ok(())
    }

    /// Restarts node `i` over its store, on the same port.
    async fn restart(&mut self, i: usize, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        let store = loop {
            match Store::open(&self.nodes[i].path) {
                Ok(s) => break Arc::new(s),
                Err(e) if start.elapsed() > timeout => return Err(format!("reopen: {e}")),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let listener = loop {
            match TcpListener::bind(self.nodes[i].addr).await {
                Ok(l) => break l,
                Err(e) if start.elapsed() > timeout => return Err(format!("rebind: {e}")),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        self.start(i, store, listener);
        Ok(())
    }

    fn shutdown(&self) {
        for n in &self.nodes {
            if let Some(node) = &n.node {
                node.shutdown();
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn print_traffic(what: &str, stats: NodeStats, messages: u64, deliveries: u64) {
    let dup_pct = 100.0 * stats.duplicates as f64 / stats.received.max(1) as f64;
    println!(
        "{what}: {} messages published, {} deliveries stored, {} duplicate deliveries ({dup_pct:.1} % of deliveries), {} messages sent",
        messages, stats.received, stats.duplicates, stats.sent
    );
    println!(
        "{what}: wire {} bytes out / {} bytes in ({:.0} bytes per delivery); expected deliveries {}",
        stats.bytes_out,
        stats.bytes_in,
        stats.bytes_out as f64 / deliveries.max(1) as f64,
        deliveries
    );
    println!(
        "{what}: source changes: {} peers turned to notes only, {} asked to push an unsourced feed, {} asked after the grace time",
        stats.to_notes, stats.asked_at_once, stats.asked_after_grace
    );
}

/// Sets up the mesh, publishes one `about` per node (and an event), and
/// waits for that to spread: afterwards every node knows every feed.
async fn setup(
    n: usize,
    degree: usize,
    seed: u64,
    timeout: Duration,
) -> Option<(Mesh, BTreeMap<FeedId, u64>, MessageId)> {
    let t0 = Instant::now();
    let mesh = Mesh::new(n, degree, seed).await;
    if !mesh.connected(timeout).await {
        println!("setup: not every node connected to all its neighbours within {timeout:?}");
    }
    println!(
        "setup: {n} nodes, {} links, connected in {:.1} s",
        mesh.edges.len(),
        t0.elapsed().as_secs_f64()
    );
    let mut expected = BTreeMap::new();
    for i in 0..n {
        let (feed, seq) = mesh.publish(i, about_content(i)).await;
        expected.insert(feed, seq);
    }
    let event = {
        let node = mesh.node(0).expect("running").clone();
        let msg = tokio::task::spawn_blocking(move || node.publish(&event_content(), now_ms()))
            .await
            .expect("task")
            .expect("publish");
        expected.insert(msg.author(), msg.sequence());
        msg.id()
    };
    match mesh.converge(&expected, timeout).await {
        Ok(t) => println!(
            "setup: {} first messages everywhere in {:.2} s",
            n + 1,
            t.as_secs_f64()
        ),
        Err(lagging) => {
            println!(
                "setup: did not converge within {timeout:?}; missing (node, messages): {lagging:?}"
            );
            mesh.shutdown();
            return None;
        }
    }
    Some((mesh, expected, event))
}

async fn live(
    n: usize,
    degree: usize,
    messages: usize,
    seconds: f64,
    seed: u64,
    timeout: Duration,
) {
    println!(
        "== live: {n} nodes, degree ~{degree}, {messages} RSVPs over {seconds} s, seed {seed}"
    );
    let Some((mesh, mut expected, event)) = setup(n, degree, seed, timeout).await else {
        return;
    };
    let before = mesh.stats();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let gap = Duration::from_secs_f64(seconds / messages.max(1) as f64);
    let start = Instant::now();
    let mut published: Vec<(usize, FeedId, u64, Instant)> = Vec::with_capacity(messages);
    for k in 0..messages {
        // Paced against the schedule, not the previous publish, so slow
        // publishes do not stretch the run.
        let due = start + gap * k as u32;
        tokio::time::sleep_until(due.into()).await;
        let i = rng.gen_range(0..n);
        let (feed, seq) = mesh.publish(i, rsvp_content(event, i, k)).await;
        published.push((i, feed, seq, Instant::now()));
        expected.insert(feed, seq);
    }
    let publishing = start.elapsed();
    let after_last = mesh.converge(&expected, timeout).await;
    let stats = sub(mesh.stats(), before);
    mesh.shutdown();
    let arrivals = mesh.arrivals.at.lock().expect("lock");
    let mut latencies = Vec::with_capacity(messages * n);
    let mut unseen = 0usize;
    let mut last_arrival = start;
    for &(author, feed, seq, at) in &published {
        for node in (0..n).filter(|&x| x != author) {
            match arrivals.get(&(node, feed, seq)) {
                Some(&t) => {
                    latencies.push(t.saturating_duration_since(at).as_secs_f64() * 1000.0);
                    last_arrival = last_arrival.max(t);
                }
                None => unseen += 1,
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "live: published {messages} in {:.1} s; every node held every message {:.2} s after the first publish ({})",
        publishing.as_secs_f64(),
        last_arrival.saturating_duration_since(start).as_secs_f64(),
        match &after_last {
            Ok(t) => format!("converged {:.2} s after the last publish", t.as_secs_f64()),
            Err(l) => format!("NOT CONVERGED within {timeout:?}; missing (node, messages): {l:?}"),
        }
    );
    println!(
        "live: latency per (message, node), {} samples: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms{}",
        latencies.len(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN),
        if unseen > 0 {
            format!(
                " ({unseen} arrivals not seen in the events; {} events lost to lag)",
                mesh.arrivals.lagged.load(Ordering::Relaxed)
            )
        } else {
            String::new()
        }
    );
    print_traffic("live", stats, messages as u64, (messages * (n - 1)) as u64);
}

async fn restart(
    n: usize,
    degree: usize,
    messages: usize,
    restarts: usize,
    seed: u64,
    timeout: Duration,
) {
    println!(
        "== restart: {n} nodes, degree ~{degree}, {messages} RSVPs, {restarts} restarts, seed {seed}"
    );
    let Some((mut mesh, mut expected, event)) = setup(n, degree, seed, timeout).await else {
        return;
    };
    let before = mesh.stats();
    let mut rng = StdRng::seed_from_u64(seed ^ 0xbad);
    // A restart every `every` messages; each node is down for a while
    // (about 1 s of publishing), so it misses messages and catches up.
    let every = (messages / (restarts + 1)).max(1);
    let mut down: Vec<(usize, usize)> = Vec::new(); // (node, restart at message k)
    let gap = Duration::from_millis(10);
    let start = Instant::now();
    let mut stopped = 0;
    for k in 0..messages {
        if k > 0 && k % every == 0 && stopped < restarts {
            let i = rng.gen_range(1..n.max(2)).min(n - 1);
            if mesh.node(i).is_some() {
                if let Err(e) = mesh.stop(i, timeout).await {
                    println!("restart: {e}");
                } else {
                    stopped += 1;
                    down.push((i, k + 100));
                }
            }
        }
        while let Some(pos) = down.iter().position(|&(_, at)| at <= k) {
            let (i, _) = down.remove(pos);
            if let Err(e) = mesh.restart(i, timeout).await {
                println!("restart: node {i}: {e}");
            }
        }
        let running: Vec<usize> = (0..n).filter(|&i| mesh.node(i).is_some()).collect();
        let i = running[rng.gen_range(0..running.len())];
        let (feed, seq) = mesh.publish(i, rsvp_content(event, i, k)).await;
        expected.insert(feed, seq);
        tokio::time::sleep(gap).await;
    }
    for (i, _) in std::mem::take(&mut down) {
        if let Err(e) = mesh.restart(i, timeout).await {
            println!("restart: node {i}: {e}");
        }
    }
    let publishing = start.elapsed();
    let converged = mesh.converge(&expected, timeout).await;
    let stats = sub(mesh.stats(), before);
    mesh.shutdown();
    match converged {
        Ok(t) => println!(
            "restart: published {messages} in {:.1} s with {stopped} restarts; every node held every message {:.2} s after the last publish",
            publishing.as_secs_f64(),
            t.as_secs_f64()
        ),
        Err(l) => println!(
            "restart: NOT CONVERGED within {timeout:?} after the last publish; missing (node, messages): {l:?}"
        ),
    }
    print_traffic(
        "restart",
        stats,
        messages as u64,
        (messages * (n - 1)) as u64,
    );
}

/// The same mesh without sockets, keys or stores: the sans-io simulator
/// (`replicate::sim`), whose links join sessions to each node's sources
/// exactly as the node's connections do. Each round delivers what was on
/// every link at its start (one hop) and lets 5 ms pass; messages are
/// published `messages / 100` per round. Prints the rounds to converge
/// after the last publish and the duplicate deliveries: what the choice of
/// one live source per feed costs, free of any timing noise.
fn simulated(n: usize, messages: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sim = Sim::ring_with_chords(n, &mut rng);
    let per_round = (messages / 100).max(1);
    let started = Instant::now();
    let mut published = 0;
    let mut rounds_after = None;
    // Bounded: publishing takes messages / per_round rounds, and a mesh
    // converges within a few hundred more.
    for round in 0..(messages / per_round + 2_000) {
        for _ in 0..per_round.min(messages - published) {
            sim.publish(rng.gen_range(0..n));
            published += 1;
        }
        sim.round(Duration::from_millis(5));
        let done = published == messages
            && (0..n).all(|x| {
                let feed = sim_id(x);
                let head = sim.nodes[x].head(&feed);
                sim.nodes.iter().all(|node| node.head(&feed) == head)
            });
        if done {
            rounds_after = Some(round + 1 - messages.div_ceil(per_round));
            break;
        }
    }
    let duplicates: u64 = sim.nodes.iter().map(|node| node.duplicates).sum();
    let deliveries = (messages * (n - 1)) as u64;
    match rounds_after {
        Some(rounds) => println!(
            "sim: {n} nodes, {messages} messages: converged {rounds} rounds after the last publish; {duplicates} duplicates ({:.1} % of {deliveries} deliveries); simulated in {:.2} s",
            100.0 * duplicates as f64 / deliveries as f64,
            started.elapsed().as_secs_f64()
        ),
        None => panic!("sim: {n} nodes did not converge"),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test --benches` run a
    // tiny size, so the bench is also a smoke test.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = env_or("MESH_NODES", if quick { 6 } else { 100 }).max(2) as usize;
    let degree = env_or("MESH_DEGREE", 4) as usize;
    let messages = env_or("MESH_MESSAGES", if quick { 30 } else { 1000 }) as usize;
    let seconds = env_or("MESH_SECONDS", if quick { 1 } else { 15 }) as f64;
    let seed = env_or("MESH_SEED", 1);
    let timeout = Duration::from_secs(env_or("MESH_TIMEOUT", if quick { 30 } else { 120 }));
    let rn = env_or("MESH_RESTART_NODES", if quick { 5 } else { 20 }).max(2) as usize;
    let rmessages = env_or("MESH_RESTART_MESSAGES", if quick { 30 } else { 300 }) as usize;
    let restarts = env_or("MESH_RESTARTS", if quick { 1 } else { 6 }) as usize;
    let scenario = std::env::var("MESH_SCENARIO").unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "cpus: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("stores under {}", store_root().display());
    rt.block_on(async {
        if scenario.is_empty() || scenario == "live" {
            live(n, degree, messages, seconds, seed, timeout).await;
        }
        if scenario.is_empty() || scenario == "restart" {
            restart(rn, degree, rmessages, restarts, seed, timeout).await;
        }
    });
    if scenario.is_empty() || scenario == "sim" {
        simulated(n, messages, seed);
    }
    // Let connection tasks say goodbye before the stores' directories go.
    rt.shutdown_timeout(Duration::from_secs(5));
}
