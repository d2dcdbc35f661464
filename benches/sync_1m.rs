//! Initial sync at scale, between two `potluck` processes on loopback:
//! 1,000,000 messages from 5,000 feeds (the deterministic fixtures of
//! `potluck fixtures`), real Noise over TCP, validation, storage and
//! indexing on the receiver.
//!
//! - the sender is `potluck serve --no-discovery --listen 127.0.0.1:0` on a
//!   cached fixture home (`target/tmp/bench-fixtures`, see
//!   `common::cached_fixture`);
//! - the receiver is `potluck sync ADDR --json` on a new home: it exits
//!   once both sides have everything, so its wall time from spawn to exit
//!   (process start, store open and final flush included) is the sync
//!   time, and its peak RSS is read from `wait4` (`ru_maxrss`, the same as
//!   `VmHWM`).
//!
//! Prints messages/s (target ≥ 50,000), the receiver's peak RSS (target
//! ≤ 300 MB), its CPU time per message, and wire bytes to the receiver ÷
//! the messages' own encoded bytes.
//!
//! Run: `cargo bench --bench sync_1m` (env `SYNC1M_FEEDS`,
//! `SYNC1M_MESSAGES`, `SYNC1M_SEED` to resize; `cargo test --benches` runs
//! a tiny size).

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use common::{Serve, cached_fixture, env_or, held_messages, loadavg, mb, potluck, quick, run};

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
    let mut sender = Serve::start(&fixture.home, Duration::from_secs(60));
    let dir = tempfile::tempdir_in(common::cache_root()).expect("tempdir");
    let receiver = dir.path().join("receiver");
    run(potluck(&receiver).args(["init"]), Duration::from_secs(30)).ok("potluck init");

    let sync = run(
        potluck(&receiver).args(["--json", "sync", &sender.addr.to_string()]),
        limit,
    )
    .ok("potluck sync");
    let sender_rss = sender.peak_rss();
    sender.stop();
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
        "sync_1m: receiver peak RSS {:.1} MB; receiver CPU {:.2} s = {:.1} µs/message; sender peak RSS {}",
        mb(sync.max_rss),
        sync.cpu.as_secs_f64(),
        sync.cpu.as_secs_f64() * 1e6 / received.max(1) as f64,
        sender_rss.map_or("unknown".into(), |b| format!("{:.1} MB", mb(b)))
    );
    println!(
        "sync_1m: wire {} bytes in to the receiver, {} bytes out; messages' own bytes {} (ratio {:.4})",
        num("bytes_in"),
        num("bytes_out"),
        fixture.bytes,
        num("bytes_in") as f64 / fixture.bytes as f64
    );
    println!(
        "sync_1m: receiver store {:.1} MB on disk (du); load average {}",
        mb(common::disk_usage(&receiver)),
        loadavg()
    );
}
