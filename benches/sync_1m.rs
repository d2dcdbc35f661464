//! Initial sync at scale, between two `potluck` processes on loopback:
//! by default 1,000,000 messages from 5,000 feeds (the deterministic
//! fixtures of `potluck fixtures`), real Noise over TCP, validation,
//! storage and indexing on the receiver; or several sizes in turn, from
//! 100k to 10M messages, in one run.
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
//!   `VmHWM`);
//! - then `potluck --home RECEIVER whoami` is timed five times (spawn to
//!   exit: process start and store open), with `SYNC1M_FSCK=1` `potluck
//!   fsck` on the receiver's home too (wall time, peak RSS from `wait4`;
//!   the bench fails if it reports a problem), and the receiver's home is
//!   deleted before the next size (the fixtures stay cached).
//!
//! Prints, per size, messages/s (target ≥ 50,000), the receiver's peak RSS
//! (target ≤ 300 MB), its CPU time per message, wire bytes to the
//! receiver ÷ the messages' own encoded bytes, the receiver's store on
//! disk ÷ its `messages.log` and ÷ those bytes, the open time; then this
//! machine's all-core signature verification rate, measured once at the
//! end (`common::verification_rate`), each sync rate ÷ it, and a markdown
//! summary table (one row a size: also the fixture's generation time,
//! "cached" when it was reused, with the time its marker recorded, and
//! the rate ÷ the first size's) to paste into `docs/performance.md`.
//! Before making a fixture, and before each sync, it checks that the disk
//! has about 1.5 KB a message free (`FIXTURE_BYTES_PER_MESSAGE`; twice
//! that to make a fixture), and fails saying so otherwise: a 10M fixture
//! takes about 6 GB, its receiver as much.
//!
//! Run: `cargo bench --bench sync_1m`. Environment:
//! - `SYNC1M_SIZES=messages:feeds,…` for several sizes in one run, in
//!   order; else `SYNC1M_MESSAGES` and `SYNC1M_FEEDS` for one size;
//! - `SYNC1M_SEED` the fixtures' seed (1);
//! - `SYNC1M_FSCK=1` to run `potluck fsck` on each receiver's home;
//! - `SYNC1M_SENDER=library` for an in-process sender;
//! - `SYNC1M_WRAP` to run the receiver under a profiler, e.g.
//!   `SYNC1M_WRAP="heaptrack -o /tmp/receiver"`, which then slows it down.
//!
//! The full scale run (10M: about 12 GB of disk, fixtures made once):
//! `SYNC1M_SIZES=100000:1000,1000000:5000,10000000:50000 SYNC1M_FSCK=1 cargo bench --bench sync_1m`.
//! `cargo test --benches` runs a tiny size.

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
    FIXTURE_BYTES_PER_MESSAGE, Serve, cached_fixture, ensure_free_space, env_or, held_messages,
    loadavg, mb, potluck, potluck_under, quick, run,
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

/// One size of the run: the fixture `potluck fixtures` makes for it.
#[derive(Clone, Copy, Debug)]
struct Size {
    messages: u64,
    feeds: u64,
}

/// The sizes to run, in order: `SYNC1M_SIZES` (`messages:feeds,…`), else
/// the one size of `SYNC1M_MESSAGES` and `SYNC1M_FEEDS`.
fn sizes(quick: bool) -> Vec<Size> {
    let Some(list) = std::env::var("SYNC1M_SIZES")
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        return vec![Size {
            messages: env_or("SYNC1M_MESSAGES", if quick { 500 } else { 1_000_000 }),
            feeds: env_or("SYNC1M_FEEDS", if quick { 20 } else { 5_000 }),
        }];
    };
    let number = |part: &str, what: &str, item: &str| -> u64 {
        part.trim()
            .replace('_', "")
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| {
                panic!("SYNC1M_SIZES: {what} {part:?} of {item:?} is not a positive number")
            })
    };
    list.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let (messages, feeds) = item.split_once(':').unwrap_or_else(|| {
                panic!("SYNC1M_SIZES: {item:?} is not messages:feeds (e.g. 100000:1000)")
            });
            let size = Size {
                messages: number(messages, "messages", item),
                feeds: number(feeds, "feeds", item),
            };
            assert!(
                size.feeds <= size.messages,
                "SYNC1M_SIZES: {item:?} has more feeds than messages"
            );
            size
        })
        .collect()
}

/// What `potluck fsck` on the receiver's home took.
struct FsckRun {
    elapsed: Duration,
    max_rss: u64,
}

/// What one size measured, for the summary.
struct Row {
    size: Size,
    /// Seconds `potluck fixtures` took, and whether that was in this run.
    fixture_seconds: f64,
    generated: bool,
    /// Messages per second, receiver spawn to exit.
    rate: f64,
    max_rss: u64,
    /// Receiver CPU time per message, µs.
    cpu_per_message: f64,
    /// The receiver's home on disk ÷ its `messages.log`, ÷ the messages'
    /// encoded bytes.
    over_log: f64,
    over_encoded: f64,
    /// `potluck whoami` on the receiver's home: best of the first 3
    /// runs, median of 5.
    open_best: Duration,
    open_median: Duration,
    fsck: Option<FsckRun>,
}

fn main() {
    let quick = quick();
    let sizes = sizes(quick);
    let seed = env_or("SYNC1M_SEED", 1);
    let fsck = std::env::var("SYNC1M_FSCK").as_deref() == Ok("1");
    let load_start = loadavg();
    println!(
        "sync_1m: {} size(s) {}, seed {seed}{}; load average {load_start}",
        sizes.len(),
        sizes
            .iter()
            .map(|s| format!("{}:{}", s.messages, s.feeds))
            .collect::<Vec<_>>()
            .join(","),
        if fsck { ", with fsck" } else { "" }
    );
    let rows: Vec<Row> = sizes
        .iter()
        .map(|size| measure(*size, seed, fsck))
        .collect();

    let feeds = sizes.iter().map(|s| s.feeds).max().unwrap_or(1);
    let verify = common::verification_rate(
        (feeds as usize).min(1_000),
        if quick { 2_000 } else { 100_000 },
    );
    println!("sync_1m: this machine verifies {verify:.0} signatures/s on all cores (same run)");
    for row in &rows {
        println!(
            "sync_1m: {} messages: sync rate ÷ that = {:.3}",
            row.size.messages,
            row.rate / verify
        );
    }
    let load_end = loadavg();
    println!(
        "\n{}",
        summary(&rows, verify, fsck, seed, &load_start, &load_end)
    );
}

/// Syncs the fixture of `size` from a sender to a new receiver home,
/// measures that home (open time, size, and with `fsck` a `potluck
/// fsck`), then deletes it (the fixture stays cached).
fn measure(size: Size, seed: u64, fsck: bool) -> Row {
    let Size { messages, feeds } = size;
    let fixture = cached_fixture(feeds, messages, seed);
    println!(
        "sync_1m: {} messages from {} feeds, {} bytes encoded (seed {seed}); fixture {}; load average {}",
        fixture.messages,
        fixture.feeds,
        fixture.bytes,
        if fixture.generated {
            format!("made in {:.1} s", fixture.seconds)
        } else {
            "cached".to_owned()
        },
        loadavg()
    );
    ensure_free_space(
        &common::cache_root(),
        FIXTURE_BYTES_PER_MESSAGE * messages,
        &format!("the receiver's home of {messages} messages"),
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
    let held = held_messages(&receiver)
        .unwrap_or_else(|e| panic!("open the receiver's store {}: {e}", receiver.display()));
    assert_eq!(held, fixture.messages, "the receiver holds every message");
    assert_eq!(
        received, fixture.messages,
        "the receiver received each once"
    );

    let secs = sync.elapsed.as_secs_f64();
    let rate = received as f64 / secs;
    println!(
        "sync_1m: {received} messages in {secs:.2} s = {rate:.0} messages/s (receiver process, spawn to exit)"
    );
    let cpu_per_message = sync.cpu.as_secs_f64() * 1e6 / received.max(1) as f64;
    println!(
        "sync_1m: receiver peak RSS {:.1} MB; receiver CPU {:.2} s = {:.1} µs/message; sender peak RSS {} ({})",
        mb(sync.max_rss),
        sync.cpu.as_secs_f64(),
        cpu_per_message,
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
    let log_path = Home::at(&receiver).store_path().join("messages.log");
    let log = std::fs::metadata(&log_path)
        .unwrap_or_else(|e| panic!("the receiver's log {}: {e}", log_path.display()))
        .len();
    let over_log = on_disk as f64 / log.max(1) as f64;
    let over_encoded = on_disk as f64 / fixture.bytes.max(1) as f64;
    println!(
        "sync_1m: receiver store {:.1} MB on disk (du) = {over_log:.2}× its messages.log ({:.1} MB) = {over_encoded:.2}× the messages' encoded bytes; load average {}",
        mb(on_disk),
        mb(log),
        loadavg()
    );
    // What each file of the store takes, to see which one grows.
    let store_dir = Home::at(&receiver).store_path();
    let mut parts: Vec<(String, u64)> = std::fs::read_dir(&store_dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        common::disk_usage(&e.path()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    parts.sort_by_key(|p| std::cmp::Reverse(p.1));
    let parts: Vec<String> = parts
        .iter()
        .filter(|(_, bytes)| *bytes >= 1 << 20)
        .map(|(name, bytes)| format!("{name} {:.1} MB", mb(*bytes)))
        .collect();
    println!("sync_1m: receiver store by file: {}", parts.join(", "));

    // Opening the store: `potluck whoami`, spawn to exit.
    let mut opens: Vec<Duration> = (0..5)
        .map(|_| {
            run(potluck(&receiver).arg("whoami"), Duration::from_secs(30))
                .ok("potluck whoami")
                .elapsed
        })
        .collect();
    let open_best = opens[..3].iter().copied().min().unwrap_or_default();
    opens.sort_unstable();
    let open_median = common::percentile(&opens, 50.0);
    println!(
        "sync_1m: potluck whoami on the receiver's home: best of 3 {:.1} ms, median of 5 {:.1} ms",
        millis(open_best),
        millis(open_median)
    );

    let fsck = fsck.then(|| fsck_run(&receiver, messages));
    dir.close()
        .unwrap_or_else(|e| panic!("remove the receiver's home {}: {e}", receiver.display()));
    Row {
        size,
        fixture_seconds: fixture.seconds,
        generated: fixture.generated,
        rate,
        max_rss: sync.max_rss,
        cpu_per_message,
        over_log,
        over_encoded,
        open_best,
        open_median,
        fsck,
    }
}

/// `potluck fsck` on `home` (which holds `messages`), timed from spawn to
/// exit; panics unless it finds every message and no problem.
fn fsck_run(home: &Path, messages: u64) -> FsckRun {
    let check = run(
        potluck(home).args(["--json", "fsck"]),
        Duration::from_secs(60 + messages / 2_000),
    );
    let doc: serde_json::Value = serde_json::from_str(check.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "potluck fsck printed no JSON ({e}), exit code {:?}:\nstdout: {}\nstderr: {}",
            check.code, check.stdout, check.stderr
        )
    });
    assert!(
        check.code == Some(0) && doc["ok"] == true,
        "potluck fsck on the receiver's home reported problems (exit code {:?}): {}\nstderr: {}",
        check.code,
        doc,
        check.stderr
    );
    assert_eq!(
        doc["messages"].as_u64(),
        Some(messages),
        "potluck fsck checked every message: {doc}"
    );
    println!(
        "sync_1m: potluck fsck on the receiver's home: {:.2} s, peak RSS {:.1} MB, no problems",
        check.elapsed.as_secs_f64(),
        mb(check.max_rss)
    );
    FsckRun {
        elapsed: check.elapsed,
        max_rss: check.max_rss,
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The run's results as a markdown table, for `docs/performance.md`.
fn summary(
    rows: &[Row],
    verify: f64,
    fsck: bool,
    seed: u64,
    load_start: &str,
    load_end: &str,
) -> String {
    let mut header = vec![
        "messages",
        "feeds",
        "fixture made in",
        "sync msgs/s",
        "÷ first size",
        "÷ verification",
        "receiver peak RSS",
        "receiver CPU µs/msg",
        "store ÷ log",
        "store ÷ encoded",
        "open (whoami) best of 3 / median of 5",
    ];
    if fsck {
        header.extend(["fsck", "fsck peak RSS", "fsck problems"]);
    }
    let first = rows.first().map_or(1.0, |r| r.rate);
    let mut out = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        "---|".repeat(header.len())
    );
    for row in rows {
        let made = match (row.generated, row.fixture_seconds > 0.0) {
            (true, _) => format!("{:.1} s", row.fixture_seconds),
            (false, true) => format!("cached (made in {:.1} s)", row.fixture_seconds),
            (false, false) => "cached".to_owned(),
        };
        let mut cells = vec![
            thousands(row.size.messages),
            thousands(row.size.feeds),
            made,
            thousands(row.rate.round() as u64),
            format!("{:.2}", row.rate / first),
            format!("{:.3}", row.rate / verify),
            format!("{:.1} MB", mb(row.max_rss)),
            format!("{:.1}", row.cpu_per_message),
            format!("{:.2}×", row.over_log),
            format!("{:.2}×", row.over_encoded),
            format!(
                "{:.1} / {:.1} ms",
                millis(row.open_best),
                millis(row.open_median)
            ),
        ];
        if let Some(f) = &row.fsck {
            cells.extend([
                format!("{:.1} s", f.elapsed.as_secs_f64()),
                format!("{:.1} MB", mb(f.max_rss)),
                "none".to_owned(),
            ]);
        }
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out.push_str(&format!(
        "\nSeed {seed}; all-core signature verification {} /s (same run, at the end); load average {load_start} at the start, {load_end} at the end.",
        thousands(verify.round() as u64)
    ));
    out
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
