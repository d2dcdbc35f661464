//! Publish latency end to end: `potluck rsvp` (a new CLI process) → the
//! running node it forwards to over the control socket → signed, stored,
//! indexed and flushed there → pushed live to a connected peer, which
//! validates, stores and flushes it. Target: p99 ≤ 50 ms.
//!
//! Node A is `potluck serve --no-discovery --listen 127.0.0.1:0` on a new
//! home with one event. Peer B is a library `Node` in this process with its
//! own store, kept connected to A by `Node::dial_loop`. Each sample spawns
//! `potluck rsvp EVENT …` against A's home and polls B's store (every
//! 0.2 ms) for A's new head: the sample is the time from spawn until B
//! holds the message. The time until the CLI process exits (the message
//! is durable on A) is printed too, and `potluck whoami` forwarded to A
//! (process start and the control round trip, no publish) as a baseline.
//!
//! Run: `cargo bench --bench latency` (env `LATENCY_PUBLISHES`, default
//! 200; `cargo test --benches` runs 5).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use potluck::feed::message::FeedId;
use potluck::home::config::PeerAddr;
use potluck::node::{Node, NodeConfig, Timing};
use potluck::proto::handshake::DEFAULT_NETWORK_KEY;
use potluck::proto::peerbook::PeerSource;
use potluck::proto::replicate::Policy;
use potluck::store::Store;

use common::{Serve, env_or, loadavg, potluck, quick, run, run_polling, summary};

/// Longest wait for one message to reach B after the CLI exited.
const REACH: Duration = Duration::from_secs(10);
/// How often B's store is polled.
const POLL: Duration = Duration::from_micros(200);

fn head(store: &Store, feed: &FeedId) -> u64 {
    store
        .head(feed)
        .expect("read B's head of A")
        .map_or(0, |h| h.sequence)
}

/// Waits until B holds `feed` up to `sequence`; the time waited, or
/// `None` after `limit`.
fn wait_for(store: &Store, feed: &FeedId, sequence: u64, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while head(store, feed) < sequence {
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(POLL);
    }
    Some(start.elapsed())
}

fn main() {
    let count = env_or("LATENCY_PUBLISHES", if quick() { 5 } else { 200 });
    let limit = Duration::from_secs(30);
    let dir = tempfile::tempdir().expect("tempdir");
    let a_home = dir.path().join("a");
    run(
        potluck(&a_home).args(["init", "--name", "Latency host"]),
        limit,
    )
    .ok("potluck init");
    let announced = run(
        potluck(&a_home).args([
            "--json",
            "announce",
            "--title",
            "Latency potluck",
            "--start",
            "2031-06-01T18:00:00Z",
        ]),
        limit,
    )
    .ok("potluck announce");
    let event = announced.json()["id"]
        .as_str()
        .expect("announce prints the event id")
        .to_owned();

    let serve = Serve::start(&a_home, limit);
    let a_feed = FeedId::parse(&serve.feed).expect("serve prints its feed id");
    let store = Arc::new(Store::open(&dir.path().join("b")).expect("B's store"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let node = Node::new(
        store.clone(),
        NodeConfig {
            identity: SigningKey::from_bytes(&[7; 32]),
            network: DEFAULT_NETWORK_KEY,
            policy: Policy::Open,
            timing: Timing::default(),
        },
    );
    let peer =
        PeerAddr::parse(&format!("{}@{}", serve.feed, serve.addr)).expect("A's peer address");
    rt.spawn(node.clone().dial_loop(peer, PeerSource::Configured));
    // A's name and event.
    let mut sequence = 2;
    wait_for(&store, &a_feed, sequence, limit).expect("B catches up with A");
    println!(
        "latency: A is potluck serve (pid {}), B is connected; load average {}",
        serve.pid(),
        loadavg()
    );

    let mut whoami = Vec::new();
    for _ in 0..count.min(20) {
        let r = run(potluck(&a_home).args(["--json", "whoami"]), limit).ok("potluck whoami");
        whoami.push(r.elapsed);
    }

    let statuses = ["going", "maybe", "no"];
    let budget = Instant::now() + Duration::from_secs(600);
    let mut reached = Vec::new();
    let mut durable = Vec::new();
    for i in 0..count as usize {
        sequence += 1;
        let guests = (i % 3).to_string();
        let mut seen = None;
        let cli = run_polling(
            potluck(&a_home).args([
                "--json",
                "rsvp",
                &event,
                statuses[i % 3],
                "--guests",
                &guests,
            ]),
            limit,
            POLL,
            |t| {
                if seen.is_none() && head(&store, &a_feed) >= sequence {
                    seen = Some(t);
                }
            },
        )
        .ok("potluck rsvp");
        let seen = seen.unwrap_or_else(|| {
            let waited = wait_for(&store, &a_feed, sequence, REACH)
                .unwrap_or_else(|| panic!("B did not get RSVP {i} within {REACH:?}"));
            cli.elapsed + waited
        });
        reached.push(seen);
        durable.push(cli.elapsed);
        if Instant::now() > budget {
            break;
        }
    }
    println!(
        "latency: spawn `potluck rsvp` → B holds it: {}",
        summary(&mut reached)
    );
    println!(
        "latency: spawn `potluck rsvp` → CLI exits (durable on A): {}",
        summary(&mut durable)
    );
    println!(
        "latency: spawn `potluck whoami` → exits (forwarded to A, no publish): {}",
        summary(&mut whoami)
    );
    println!("latency: load average {}", loadavg());
    node.shutdown();
    drop(serve);
}
