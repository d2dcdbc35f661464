//! Bytes on the wire when two nodes that already hold the same 10,000
//! feeds reconnect (target: at most 2 KB each way, handshake included).
//!
//! Both homes are filled by `potluck fixtures` with the same spec, so they
//! hold byte-identical messages (each has its own identity, with no
//! messages). Node A is `potluck serve --no-discovery` on 127.0.0.1; B
//! runs `potluck sync ADDR --json` three times and each run's
//! `bytes_in`/`bytes_out` are printed: the first is a first contact (no
//! memory of the peer, so full clocks both ways), the second and third are
//! reconnects with the memory saved by the run before.
//!
//! Run: `cargo bench --bench reconnect` (env `RECONNECT_FEEDS`,
//! `RECONNECT_MESSAGES`, `RECONNECT_SEED` to resize; `cargo test --benches`
//! runs a tiny size).

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use common::{Serve, env_or, generate, loadavg, potluck, quick, run};

fn main() {
    let quick = quick();
    let feeds = env_or("RECONNECT_FEEDS", if quick { 30 } else { 10_000 });
    let messages = env_or("RECONNECT_MESSAGES", if quick { 60 } else { 20_000 });
    let seed = env_or("RECONNECT_SEED", 1);
    let limit = Duration::from_secs(60 + messages / 1_000);
    // Fresh homes every run: the nodes write peer memory into them.
    let dir = tempfile::tempdir().expect("tempdir");
    let a = generate(&dir.path().join("a"), feeds, messages, seed, limit);
    let b = generate(&dir.path().join("b"), feeds, messages, seed, limit);
    assert_eq!(
        (a.messages, a.bytes),
        (b.messages, b.bytes),
        "same fixtures"
    );
    println!(
        "reconnect: both nodes hold {} messages from {} feeds; load average {}",
        a.messages,
        a.feeds,
        loadavg()
    );

    let serve = Serve::start(&a.home, Duration::from_secs(30));
    let addr = format!("{}@{}", serve.feed, serve.addr);
    let mut reconnects = Vec::new();
    for round in 1..=3 {
        let sync = run(potluck(&b.home).args(["--json", "sync", &addr]), limit).ok("potluck sync");
        let doc = sync.json();
        let num = |k: &str| doc[k].as_u64().unwrap_or(u64::MAX);
        assert_eq!(
            (num("received"), num("sent")),
            (0, 0),
            "in sync: nothing to exchange"
        );
        let what = if round == 1 {
            "first contact (no memory)"
        } else {
            "reconnect"
        };
        println!(
            "reconnect: round {round}, {what}: {} bytes in, {} bytes out ({:.0} ms)",
            num("bytes_in"),
            num("bytes_out"),
            sync.elapsed.as_secs_f64() * 1e3
        );
        if round > 1 {
            reconnects.push((num("bytes_in"), num("bytes_out")));
        }
    }
    let worst = reconnects.iter().map(|&(i, o)| i.max(o)).max().unwrap_or(0);
    println!(
        "reconnect: worst reconnect direction {worst} bytes (target ≤ 2,048); load average {}",
        loadavg()
    );
    drop(serve);
}
