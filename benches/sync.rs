//! Replication throughput between two nodes on loopback: 100,000 messages
//! across 1,000 feeds, real Noise over TCP, validation, storage and
//! indexing on the receiver. Prints messages/s, wire bytes against the
//! messages' own encoded bytes, and the rate ÷ this machine's all-core
//! signature verification rate measured right after.
//!
//! Run: `cargo bench --bench sync` (env `SYNC_FEEDS`, `SYNC_PER_FEED` to resize).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use potluck::home::config::PeerAddr;
use potluck::node::{Node, NodeConfig, Timing};
use potluck::proto::handshake::DEFAULT_NETWORK_KEY;
use potluck::proto::replicate::Policy;
use potluck::store::Store;

fn config(seed: u8) -> NodeConfig {
    NodeConfig {
        identity: SigningKey::from_bytes(&[seed; 32]),
        network: DEFAULT_NETWORK_KEY,
        policy: Policy::Open,
        timing: Timing::default(),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // useful either: run a tiny size then, so the bench is also a smoke test.
    let quick = !std::env::args().any(|a| a == "--bench");
    let feeds = common::env_or("SYNC_FEEDS", if quick { 10 } else { 1_000 }) as usize;
    let per_feed = common::env_or("SYNC_PER_FEED", if quick { 10 } else { 100 }) as usize;
    let dir = tempfile::tempdir().expect("tempdir");

    // Fixtures: signed outside the timed part, ingested into the sender.
    let t0 = Instant::now();
    let sender_store = Arc::new(Store::open(&dir.path().join("a")).expect("store a"));
    let total_bytes = common::fill_sync_fixture(&sender_store, 1000, feeds, per_feed);
    let total = feeds * per_feed;
    eprintln!(
        "fixtures: {total} messages, {feeds} feeds, {total_bytes} bytes, made in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    let receiver_store = Arc::new(Store::open(&dir.path().join("b")).expect("store b"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let report = rt.block_on(async {
        let sender = Node::new(sender_store.clone(), config(1));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(sender.clone().accept_loop(listener));
        let receiver = Node::new(receiver_store.clone(), config(2));
        let peer = PeerAddr::parse(&addr.to_string()).expect("addr");
        let start = Instant::now();
        let report = receiver.dial(&peer, true).await.expect("sync");
        let elapsed = start.elapsed();
        sender.shutdown();
        (report, elapsed)
    });
    let (report, elapsed) = report;
    let held = common::held(&receiver_store);
    assert_eq!(held as usize, total, "receiver holds every message");
    let rate = report.received as f64 / elapsed.as_secs_f64();
    println!(
        "sync: {} messages in {:.2} s = {:.0} messages/s",
        report.received,
        elapsed.as_secs_f64(),
        rate
    );
    println!(
        "wire: {} bytes in to the receiver, {} bytes out; messages' own bytes {} (ratio {:.3})",
        report.bytes_in,
        report.bytes_out,
        total_bytes,
        report.bytes_in as f64 / total_bytes as f64
    );
    println!(
        "receiver store on disk: {} bytes",
        receiver_store.size_on_disk().unwrap_or(0)
    );
    let verify = common::verification_rate(feeds.min(1_000), if quick { 2_000 } else { 100_000 });
    println!(
        "this machine verifies {verify:.0} signatures/s on all cores (same run); sync rate ÷ that = {:.3}",
        rate / verify
    );
}
