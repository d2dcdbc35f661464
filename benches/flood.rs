//! Handshake flood (issue 20): how long a peer takes to get in while
//! hundreds of loopback addresses keep opening handshakes and never finish
//! them (the flood of `tests/common/flood.rs`, shared with
//! `tests/flood.rs`).
//!
//! The node is in-process, with the default limits and timings (a 5 s
//! handshake deadline), listening on 127.0.0.1; the flood and the peers
//! run in the same process and runtime, so they share its two cores with
//! the node, as an attacker on the same machine would. Three cases, each
//! measured `FLOOD_ROUNDS` times while the flood runs:
//!
//! - `member`: a configured peer of the node, which synced once from
//!   127.0.0.5 before the flood, syncs again from 127.0.0.5; the flood
//!   comes from `FLOOD_ADDRESSES` addresses in 150 /24s (127.0.S.H);
//! - `newcomer, many subnets`: a peer the node never saw, from
//!   127.0.200.1, under the same flood;
//! - `newcomer, one subnet`: a new peer from 127.0.2.1 while 200
//!   addresses of 127.0.1.0/24 flood.
//!
//! A peer that is refused (busy, or closed during the handshake) tries
//! again after 250 ms; the time is from its first try to a finished sync
//! (one message each way), given up after 60 s (10 s in a smoke run).
//!
//! Run: `cargo bench --bench flood` (env `FLOOD_ROUNDS`, default 5;
//! `FLOOD_ADDRESSES`, default 300). `cargo test --benches` runs one round
//! of each with 60 addresses.

#[path = "common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../tests/common/flood.rs"]
mod flood;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{env_or, loadavg, quick, show};
use ed25519_dalek::SigningKey;
use flood::{Flood, sources};
use potluck::content::{About, KnownContent};
use potluck::home::config::PeerAddr;
use potluck::node::{Node, NodeConfig, Timing};
use potluck::proto::handshake::DEFAULT_NETWORK_KEY;
use potluck::proto::peerbook::{PeerRecord, PeerSource};
use potluck::proto::replicate::Policy;
use potluck::store::Store;
use tokio::net::TcpSocket;

/// Pause of a flooder after a refusal.
const FLOOD_PAUSE: Duration = Duration::from_millis(50);
/// Pause of a peer after a refusal.
const RETRY: Duration = Duration::from_millis(250);
/// A peer gives up after this long (10 s in a smoke run).
fn give_up() -> Duration {
    Duration::from_secs(if quick() { 10 } else { 60 })
}

/// A node with a new key over a new store in `dir`, default timings and
/// limits, and one message of its own.
fn node_in(dir: &std::path::Path) -> Arc<Node> {
    let store = Arc::new(Store::open(&dir.join("store")).expect("a store"));
    let node = Node::new(
        store,
        NodeConfig {
            identity: SigningKey::generate(&mut rand::rngs::OsRng),
            network: DEFAULT_NETWORK_KEY,
            policy: Policy::Open,
            timing: Timing::default(),
        },
    );
    let about = About {
        name: "a peer".into(),
        description: None,
    };
    node.publish(
        &about.to_content_bytes(),
        jiff::Timestamp::now().as_millisecond(),
    )
    .expect("publish");
    node
}

/// `peer` syncs once with `target` from `source`, retrying every
/// [`RETRY`] while refused: the time from the first try to a finished
/// sync and the tries, or `None` after [`give_up`].
async fn get_in(
    peer: &Arc<Node>,
    source: IpAddr,
    target: &PeerAddr,
    addr: SocketAddr,
) -> (Option<Duration>, u32) {
    let start = Instant::now();
    let mut tries = 0;
    while start.elapsed() < give_up() {
        tries += 1;
        let attempt = async {
            let socket = TcpSocket::new_v4().ok()?;
            socket.bind(SocketAddr::new(source, 0)).ok()?;
            let stream = socket.connect(addr).await.ok()?;
            peer.clone().dial_over(stream, target, true).await.ok()
        };
        if let Ok(Some(_)) = tokio::time::timeout(give_up(), attempt).await {
            return (Some(start.elapsed()), tries);
        }
        tokio::time::sleep(RETRY).await;
    }
    (None, tries)
}

/// Starts a flood from `sources` against `addr` for `limit` at most, and
/// waits (at most 30 s) until it holds what it can: refused 50 times.
async fn flood_of(addr: SocketAddr, sources: &[IpAddr], limit: Duration) -> Flood {
    let flood = Flood::start(addr, sources, DEFAULT_NETWORK_KEY, FLOOD_PAUSE, limit);
    let start = Instant::now();
    while flood.counts().1 < 50 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    flood
}

/// Prints what the flood saw, and stops it.
fn ended(flood: &mut Flood) {
    let (admitted, refused) = flood.counts();
    println!("  flood connections admitted {admitted}, refused {refused}");
    flood.stop();
}

/// `rounds` new peers (in directories under `dir`) get in to `node`
/// (`target`, at `addr`) from `from`, one after the other.
async fn newcomers(
    node: &Node,
    (target, addr): (&PeerAddr, SocketAddr),
    dir: &std::path::Path,
    from: IpAddr,
    rounds: u64,
) -> Vec<(Option<Duration>, u32)> {
    let mut times = Vec::new();
    for i in 0..rounds {
        let newcomer = node_in(&dir.join(format!("newcomer-{from}-{i}")));
        times.push(get_in(&newcomer, from, target, addr).await);
        let_go(node, newcomer.feed_id()).await;
    }
    times
}

/// Waits (at most 10 s) until `node` has let go of `feed`.
async fn let_go(node: &Node, feed: potluck::feed::message::FeedId) {
    let start = Instant::now();
    while node.peers().iter().any(|p| p.feed == feed) && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Prints one case's times.
fn report(case: &str, times: &[(Option<Duration>, u32)]) {
    let shown: Vec<String> = times
        .iter()
        .map(|(t, tries)| match t {
            Some(t) => format!("{} ({tries} tries)", show(*t)),
            None => format!("> {} s ({tries} tries)", give_up().as_secs()),
        })
        .collect();
    println!("{case}: {}", shown.join(", "));
}

fn main() {
    let quick = quick();
    let rounds = env_or("FLOOD_ROUNDS", if quick { 1 } else { 5 });
    let addresses = env_or("FLOOD_ADDRESSES", if quick { 60 } else { 300 }) as usize;
    println!(
        "flood: {addresses} addresses, {rounds} rounds per case, load average {}",
        loadavg()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = node_in(&dir.path().join("node"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("listen");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(node.clone().accept_loop(listener));
        let target = PeerAddr::parse(&format!("{}@{addr}", node.feed_id())).expect("address");

        // The member: configured, synced once before the flood.
        let member = node_in(&dir.path().join("member"));
        let home = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5));
        node.store()
            .put_peer_record(&PeerRecord::new(
                "member.example:8008".into(),
                Some(member.feed_id()),
                PeerSource::Configured,
            ))
            .expect("peer book");
        let (first, _) = get_in(&member, home, &target, addr).await;
        assert!(first.is_some(), "the member's first sync failed");
        let_go(&node, member.feed_id()).await;

        let limit = give_up() * (rounds as u32 + 1) * 2;
        let mut many = flood_of(addr, &sources(addresses, 150), limit).await;
        let mut times = Vec::new();
        for _ in 0..rounds {
            times.push(get_in(&member, home, &target, addr).await);
            let_go(&node, member.feed_id()).await;
        }
        report("member, flood from 150 /24s", &times);
        let far = IpAddr::V4(Ipv4Addr::new(127, 0, 200, 1));
        let times = newcomers(&node, (&target, addr), dir.path(), far, rounds).await;
        report("newcomer, flood from 150 /24s", &times);
        ended(&mut many);
        // Let the flood's slots go (the handshake deadline) before the
        // next case.
        tokio::time::sleep(Duration::from_secs(6)).await;

        let mut one = flood_of(addr, &sources(addresses.min(200), 1), limit).await;
        let near = IpAddr::V4(Ipv4Addr::new(127, 0, 2, 1));
        let times = newcomers(&node, (&target, addr), dir.path(), near, rounds).await;
        report("newcomer, flood from one /24", &times);
        ended(&mut one);
        node.shutdown();
    });
}
