//! Initial sync at scale, between two `potluck` processes on loopback:
//! 1,000,000 messages from 5,000 feeds (the deterministic fixtures of
//! `potluck fixtures`), real Noise over TCP, validation, storage and
//! indexing on the receiver.
//!
//! - the sender serves a cached fixture home (`target/tmp/bench-fixtures`,
//!   see `common::cached_fixture`) on 127.0.0.1: by default a `potluck
//!   serve --no-discovery --listen 127.0.0.1:0` child with the default
//!   timings; with `SYNC1M_SENDER=library`, a library `Node` in this
//!   process whose idle timeout is an hour (a workaround, kept for
//!   comparison, for a bug fixed since: a receiver that sent no keepalive
//!   while frames kept arriving, so a sender cut a one-way sync after 60 s);
//! - the receiver is `potluck sync ADDR --json` on a new home: it exits
//!   once both sides have everything, so its wall time from spawn to exit
//!   (process start, store open and final flush included) is the sync
//!   time, and its peak RSS is read from `wait4` (`ru_maxrss`, the same as
//!   `VmHWM`).
//!
//! Prints messages/s (target ≥ 50,000), the receiver's peak RSS (target
//! ≤ 300 MB), its CPU time per message, wire bytes to the receiver ÷
//! the messages' own encoded bytes, the receiver's store on disk ÷ those
//! bytes, and the sync rate ÷ this machine's all-core signature
//! verification rate measured right after (`common::verification_rate`).
//!
//! Run: `cargo bench --bench sync_1m` (env `SYNC1M_FEEDS`,
//! `SYNC1M_MESSAGES`, `SYNC1M_SEED` to resize, `SYNC1M_SENDER=library` for an
//! in-process sender, `SYNC1M_WRAP` to run the receiver under a
//! profiler, e.g. `SYNC1M_WRAP="heaptrack -o /tmp/receiver"`, which then
//! slows it down; `cargo test --benches` runs
//! a tiny size).

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use potluck::home::Home;
use potluck::node::{Node, NodeConfig, Timing};
use potluck::proto::handshake::DEFAULT_NETWORK_KEY;
use potluck::proto::replicate::Policy;
use potluck::store::Store;

use common::{
    Serve, cached_fixture, env_or, held_messages, loadavg, mb, potluck, potluck_under, quick, run,
};

/// The node that holds the fixture and sends it.
enum Sender {
    /// A `potluck serve` child.
    Serve(Serve),
    /// A library node in this process.
    Library {
        rt: tokio::runtime::Runtime,
        node: Arc<Node>,
        addr: SocketAddr,
    },
}

impl Sender {
    /// A library node over the store of `home`, listening on 127.0.0.1,
    /// with an idle timeout of an hour.
    fn library(home: &Path) -> Sender {
        let store = Store::open(&Home::at(home).store_path()).expect("open the fixture store");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let node = Node::new(
            Arc::new(store),
            NodeConfig {
                identity: SigningKey::from_bytes(&[1; 32]),
                network: DEFAULT_NETWORK_KEY,
                policy: Policy::Open,
                timing: Timing {
                    idle: Duration::from_secs(3_600),
                    ..Timing::default()
                },
            },
        );
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        rt.spawn(node.clone().accept_loop(listener));
        Sender::Library { rt, node, addr }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Sender::Serve(s) => s.addr,
            Sender::Library { addr, .. } => *addr,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Sender::Serve(_) => "potluck serve child",
            Sender::Library { .. } => "this process, with the fixture store open",
        }
    }

    fn peak_rss(&self) -> Option<u64> {
        match self {
            Sender::Serve(s) => s.peak_rss(),
            Sender::Library { .. } => common::vm_hwm(std::process::id()),
        }
    }

    fn stop(&mut self) {
        match self {
            Sender::Serve(s) => {
                s.stop();
            }
            Sender::Library { rt, node, .. } => {
                node.shutdown();
                // Let the accept loop and the session save their state.
                rt.block_on(async { tokio::time::sleep(Duration::from_millis(200)).await });
            }
        }
    }
}

fn main() {
    let quick = quick();
    let feeds = env_or("SYNC1M_FEEDS", if quick { 20 } else { 5_000 });
    let messages = env_or("SYNC1M_MESSAGES", if quick { 500 } else { 1_000_000 });
    let seed = env_or("SYNC1M_SEED", 1);
    let fixture = cached_fixture(feeds, messages, seed);
    println!(
        "sync_1m: {} messages from {} feeds, {} bytes encoded (seed {seed}); load average {}",
        fixture.messages,
        fixture.feeds,
        fixture.bytes,
        loadavg()
    );

    let limit = Duration::from_secs(60 + messages / 2_000);
    let mut sender = if std::env::var("SYNC1M_SENDER").as_deref() != Ok("library") {
        Sender::Serve(Serve::start(&fixture.home, Duration::from_secs(60)))
    } else {
        Sender::library(&fixture.home)
    };
    let dir = tempfile::tempdir_in(common::cache_root()).expect("tempdir");
    let receiver = dir.path().join("receiver");
    run(potluck(&receiver).args(["init"]), Duration::from_secs(30)).ok("potluck init");

    let wrap = std::env::var("SYNC1M_WRAP").unwrap_or_default();
    let wrapper: Vec<&str> = wrap.split_whitespace().collect();
    let sync = run(
        potluck_under(&wrapper, &receiver).args(["--json", "sync", &sender.addr().to_string()]),
        limit,
    )
    .ok("potluck sync");
    let sender_rss = sender.peak_rss();
    let sender_kind = sender.kind();
    sender.stop();
    drop(sender);
    let report = sync.json();
    let num = |k: &str| report[k].as_u64().unwrap_or(0);
    let received = num("received");
    let held = held_messages(&receiver).expect("open the receiver's store");
    assert_eq!(held, fixture.messages, "the receiver holds every message");
    assert_eq!(
        received, fixture.messages,
        "the receiver received each once"
    );

    let secs = sync.elapsed.as_secs_f64();
    println!(
        "sync_1m: {received} messages in {secs:.2} s = {:.0} messages/s (receiver process, spawn to exit)",
        received as f64 / secs
    );
    println!(
        "sync_1m: receiver peak RSS {:.1} MB; receiver CPU {:.2} s = {:.1} µs/message; sender peak RSS {} ({})",
        mb(sync.max_rss),
        sync.cpu.as_secs_f64(),
        sync.cpu.as_secs_f64() * 1e6 / received.max(1) as f64,
        sender_rss.map_or("unknown".into(), |b| format!("{:.1} MB", mb(b))),
        sender_kind
    );
    println!(
        "sync_1m: wire {} bytes in to the receiver, {} bytes out; messages' own bytes {} (ratio {:.4})",
        num("bytes_in"),
        num("bytes_out"),
        fixture.bytes,
        num("bytes_in") as f64 / fixture.bytes as f64
    );
    let on_disk = common::disk_usage(&receiver);
    println!(
        "sync_1m: receiver store {:.1} MB on disk (du) = {:.2}× the messages' encoded bytes; load average {}",
        mb(on_disk),
        on_disk as f64 / fixture.bytes.max(1) as f64,
        loadavg()
    );
    let verify = common::verification_rate(
        (feeds as usize).min(1_000),
        if quick { 2_000 } else { 100_000 },
    );
    println!(
        "sync_1m: this machine verifies {verify:.0} signatures/s on all cores (same run); sync rate ÷ that = {:.3}",
        received as f64 / secs / verify
    );
}
