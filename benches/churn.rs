//! Churn: peers connect to one node, sync, and drop, for ten minutes; the
//! node's memory is printed at the start and at the end (issue 14, "Load").
//! It measures memory, not speed.
//!
//! The node is a real `potluck serve` child (its home filled by `potluck
//! fixtures`, so every peer has something to fetch), so that its resident
//! set (`VmRSS`, `VmHWM` from `/proc`) is the node's alone. The peers are
//! in-process `Node`s: `CHURN_PEERS` tasks at once, each again and again
//! making a fresh identity and store, publishing `CHURN_OWN` messages,
//! dialing the node from its own loopback source address (127.0.2.1,
//! 127.0.3.1 …, as the node takes at most 8 connections per address and
//! 8 handshakes at once from the unknown addresses of one /24), syncing once and
//! dropping everything. Every peer is a stranger, so the node's store grows
//! by one feed and one peer memory per session: the end of the run shows
//! what that growth costs in memory and on disk.
//!
//! Run: `cargo bench --bench churn` (env `CHURN_SECS`, default 600;
//! `CHURN_PEERS`, default 16; `CHURN_OWN`, default 1; `CHURN_FEEDS` and
//! `CHURN_MESSAGES`, the node's fixture, default 20 and 400).
//! `cargo test --benches` runs it for 5 s.

#[path = "common/mod.rs"]
mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Serve, disk_usage, env_or, generate, loadavg, mb, quick, vm_rss};
use ed25519_dalek::SigningKey;
use potluck::content::{About, KnownContent};
use potluck::home::config::PeerAddr;
use potluck::node::{Node, NodeConfig, Timing};
use potluck::proto::handshake::DEFAULT_NETWORK_KEY;
use potluck::proto::replicate::Policy;
use potluck::store::Store;

/// Sessions that ended well, and ones that did not (busy, refused …).
#[derive(Default)]
struct Tally {
    served: AtomicU64,
    failed: AtomicU64,
    received: AtomicU64,
}

/// One peer's life: a fresh identity and store, `own` messages of its
/// own, one sync with `hub` from `source`, then everything dropped.
async fn one_peer(
    hub: &PeerAddr,
    hub_addr: SocketAddr,
    source: IpAddr,
    own: u64,
    tally: &Tally,
) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = Arc::new(Store::open(&dir.path().join("store")).map_err(|e| e.to_string())?);
    let node = Node::new(
        store,
        NodeConfig {
            identity: SigningKey::generate(&mut rand::rngs::OsRng),
            network: DEFAULT_NETWORK_KEY,
            policy: Policy::Open,
            timing: Timing::default(),
        },
    );
    let now = jiff::Timestamp::now().as_millisecond();
    for i in 0..own {
        let about = About {
            name: format!("churn peer {i}"),
            description: None,
        };
        node.publish(&about.to_content_bytes(), now)
            .map_err(|e| e.to_string())?;
    }
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| e.to_string())?;
    let stream = tokio::time::timeout(Duration::from_secs(10), socket.connect(hub_addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        node.clone().dial_over(stream, hub, true),
    )
    .await
    .map_err(|_| "sync timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    tally.received.fetch_add(report.received, Ordering::Relaxed);
    node.shutdown();
    Ok(())
}

fn main() {
    let quick = quick();
    let secs = env_or("CHURN_SECS", if quick { 5 } else { 600 });
    let peers = env_or("CHURN_PEERS", if quick { 4 } else { 16 });
    let own = env_or("CHURN_OWN", 1);
    let feeds = env_or("CHURN_FEEDS", if quick { 5 } else { 20 });
    let messages = env_or("CHURN_MESSAGES", if quick { 50 } else { 400 });
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = generate(
        &dir.path().join("hub"),
        feeds,
        messages,
        1,
        Duration::from_secs(120),
    );
    let mut serve = Serve::start(&fixture.home, Duration::from_secs(30));
    let hub = PeerAddr::parse(&format!("{}@{}", serve.feed, serve.addr)).expect("hub address");
    let hub_addr = serve.addr;
    let pid = serve.pid();
    let rss_start = vm_rss(pid);
    let disk_start = disk_usage(&fixture.home);
    println!(
        "churn: {secs} s, {peers} peers at once, {own} messages each; the node holds {} messages of {} feeds; load average {}",
        fixture.messages,
        fixture.feeds,
        loadavg()
    );
    println!(
        "start: node RSS {:.1} MB, home {:.1} MB on disk",
        mb(rss_start),
        mb(disk_start)
    );

    let tally = Arc::new(Tally::default());
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let started = Instant::now();
    let end = started + Duration::from_secs(secs);
    runtime.block_on(async {
        let mut tasks = Vec::new();
        for p in 0..peers {
            let hub = hub.clone();
            let tally = tally.clone();
            // 127.0.0.2 … 127.0.0.(2 + peers/4): at most 4 peers per address.
            let source = IpAddr::V4(Ipv4Addr::new(127, 0, 2 + (p / 4) as u8, 1));
            tasks.push(tokio::spawn(async move {
                while Instant::now() < end {
                    match one_peer(&hub, hub_addr, source, own, &tally).await {
                        Ok(()) => tally.served.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            eprintln!("churn: a session failed: {e}");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            tally.failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            }));
        }
        let mut minute = 1;
        while Instant::now() < end {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if started.elapsed() >= Duration::from_secs(60 * minute) {
                println!(
                    "after {minute} min: node RSS {:.1} MB, {} sessions served, {} failed",
                    mb(vm_rss(pid)),
                    tally.served.load(Ordering::Relaxed),
                    tally.failed.load(Ordering::Relaxed)
                );
                minute += 1;
            }
        }
        for task in tasks {
            let _ = task.await;
        }
    });
    let rss_end = vm_rss(pid);
    let peak = serve.peak_rss().unwrap_or(0);
    let disk_end = disk_usage(&fixture.home);
    let served = tally.served.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    println!(
        "end: node RSS {:.1} MB (peak {:.1} MB), home {:.1} MB on disk",
        mb(rss_end),
        mb(peak),
        mb(disk_end)
    );
    println!(
        "sessions: {served} served, {failed} failed; messages fetched by peers: {}",
        tally.received.load(Ordering::Relaxed)
    );
    serve.stop();
    assert!(served > 0, "no session was served");
    let expected = fixture.messages;
    assert!(
        tally.received.load(Ordering::Relaxed) >= served * expected,
        "every served peer fetched the node's {expected} messages"
    );
}
