//! Queries on the million-message store.
//!
//! The store is the `sync_1m` fixture (1,000,000 messages from 5,000
//! feeds, seed 1) plus a "crowd": 10,000 more feeds with one RSVP each to
//! the fixture's most answered event, so that one event has more than
//! 10,000 RSVPs (5,000 feeds alone cannot give one). The crowd's keys are
//! `fixtures::feed_key(seed, MAX_FEEDS + i)`, its messages are
//! deterministic, and the result is cached next to the fixture
//! (`target/tmp/bench-fixtures/…-crowd10000`).
//!
//! Measured:
//! - `potluck events` from a cold start (target ≤ 1 s): a new process of
//!   the release binary with the store not open anywhere, wall time from
//!   spawn to exit. The OS page cache is *not* dropped (that needs root
//!   and would disturb others on the machine), so the store's files may be
//!   in memory from earlier runs; "cold" means process start, store open,
//!   query and output. `potluck whoami` (same start and store open, no
//!   query) is timed alongside as a baseline;
//! - `Store::upcoming_events` through the library, store already open
//!   (target ≤ 10 ms): the next `app::EVENTS_PAGE` events, what
//!   `potluck events` shows, and for comparison all upcoming events;
//! - `Store::tally` of the crowded event (target ≤ 5 ms), and, for
//!   comparison, `Store::rsvps` of it (what `potluck events` and `show`
//!   read per event);
//! - size on disk ÷ the messages' own encoded bytes (target ≤ 2×), both
//!   sled's `size_on_disk` and the blocks allocated (`du`).
//!
//! Run: `cargo bench --bench query` (env `QUERY_FEEDS`, `QUERY_MESSAGES`,
//! `QUERY_SEED`, `QUERY_CROWD` to resize; `cargo test --benches` runs a
//! tiny size).

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use potluck::content::{KnownContent, Rsvp, RsvpStatus};
use potluck::feed::message::{Message, MessageId};
use potluck::fixtures::{MAX_FEEDS, feed_key};
use potluck::home::Home;
use potluck::store::Store;
use serde_json::{Value, json};

use common::{
    Fixture, cache_root, cached_fixture, copy_tree, disk_usage, env_or, loadavg, mb, potluck,
    quick, run, summary,
};

/// Timestamp of the crowd's RSVPs (2026-06-01T00:00:00Z), fixed.
const CROWD_MS: i64 = 1_780_272_000_000;
/// Messages per `Store::ingest` call when adding the crowd.
const BATCH: usize = 5_000;

/// The fixture home with the crowd added.
struct Crowded {
    home: PathBuf,
    event: MessageId,
    messages: u64,
    bytes: u64,
}

fn main() {
    let quick = quick();
    let feeds = env_or("QUERY_FEEDS", if quick { 20 } else { 5_000 });
    let messages = env_or("QUERY_MESSAGES", if quick { 500 } else { 1_000_000 });
    let seed = env_or("QUERY_SEED", 1);
    let crowd = env_or("QUERY_CROWD", if quick { 30 } else { 10_000 });
    let base = cached_fixture(feeds, messages, seed);
    let crowded = crowded(&base, crowd, seed);
    println!(
        "query: {} messages ({} fixture + {crowd} crowd RSVPs), {} bytes encoded; load average {}",
        crowded.messages,
        base.messages,
        crowded.bytes,
        loadavg()
    );

    cold_cli(&crowded.home, if quick { 1 } else { 5 });

    let started = Instant::now();
    let store = Store::open(&Home::at(&crowded.home).store_path()).expect("open the store");
    println!(
        "query: Store::open in this process {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let now = jiff::Timestamp::now().as_millisecond();
    let page = potluck::app::EVENTS_PAGE;
    let mut count = 0;
    let upcoming = repeat(if quick { 3 } else { 50 }, Duration::from_secs(30), || {
        count = store
            .upcoming_events(now, Some(page))
            .expect("upcoming")
            .len();
    });
    println!(
        "query: upcoming_events, the next {page} as `potluck events` shows ({count} events): {upcoming}"
    );
    let upcoming = repeat(if quick { 3 } else { 20 }, Duration::from_secs(30), || {
        count = store.upcoming_events(now, None).expect("upcoming").len();
    });
    println!("query: upcoming_events, all of them ({count} events): {upcoming}");
    let tally = store.tally(&crowded.event).expect("tally");
    let answers = tally.going + tally.maybe + tally.not_going;
    let timing = repeat(
        if quick { 10 } else { 10_000 },
        Duration::from_secs(10),
        || {
            std::hint::black_box(store.tally(&crowded.event).expect("tally"));
        },
    );
    println!("query: tally of an event with {answers} RSVPs: {timing}");
    let timing = repeat(if quick { 3 } else { 20 }, Duration::from_secs(20), || {
        std::hint::black_box(store.rsvps(&crowded.event).expect("rsvps"));
    });
    println!("query: rsvps of the same event (all {answers} read): {timing}");

    let sled_size = store.size_on_disk().expect("size on disk");
    drop(store);
    let du = disk_usage(&Home::at(&crowded.home).store_path());
    println!(
        "query: on disk {:.1} MB (sled size_on_disk) = {:.2}× the encoded messages, {:.1} MB allocated (du) = {:.2}×",
        mb(sled_size),
        sled_size as f64 / crowded.bytes as f64,
        mb(du),
        du as f64 / crowded.bytes as f64
    );
    println!(
        "query: the fixture alone, right after `potluck fixtures`: {:.1} MB (sled) = {:.2}× its {:.1} MB of messages; load average {}",
        mb(base.size_on_disk),
        base.size_on_disk as f64 / base.bytes as f64,
        mb(base.bytes),
        loadavg()
    );
}

/// Runs `f` up to `count` times or until `budget` is spent (at least
/// once), and summarises the times.
fn repeat(count: u32, budget: Duration, mut f: impl FnMut()) -> String {
    let started = Instant::now();
    let mut samples = Vec::new();
    for _ in 0..count {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
        if started.elapsed() > budget {
            break;
        }
    }
    summary(&mut samples)
}

/// `potluck events` and `potluck whoami` in new processes, alternately.
fn cold_cli(home: &Path, runs: u32) {
    let limit = Duration::from_secs(300);
    let budget = Instant::now() + Duration::from_secs(180);
    let mut events = Vec::new();
    let mut whoami = Vec::new();
    let mut lines = 0;
    for _ in 0..runs {
        let r = run(potluck(home).arg("whoami"), limit).ok("potluck whoami");
        whoami.push(r.elapsed);
        let r = run(potluck(home).arg("events"), limit).ok("potluck events");
        events.push(r.elapsed);
        lines = r.stdout.lines().count();
        if Instant::now() > budget {
            break;
        }
    }
    println!(
        "query: `potluck events` cold ({lines} lines of output): {}",
        summary(&mut events)
    );
    println!(
        "query: `potluck whoami` cold (start + store open only): {}",
        summary(&mut whoami)
    );
}

/// The fixture home plus `people` one-RSVP feeds answering its most
/// answered event; cached, and made again when the fixture changes.
fn crowded(base: &Fixture, people: u64, seed: u64) -> Crowded {
    let Some(name) = base.home.parent().and_then(Path::file_name) else {
        panic!("fixture home has no parent directory");
    };
    let dir = cache_root().join(format!("{}-crowd{people}", name.to_string_lossy()));
    let home = dir.join("home");
    let marker = dir.join("crowd.json");
    let expected = base.messages + people;
    let cached: Option<Value> = std::fs::read(&marker)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(doc) = cached
        && doc["base"] == json!(base.key)
        && common::held_messages(&home) == Ok(expected)
        && let Some(event) = doc["event"].as_str().and_then(|s| MessageId::parse(s).ok())
    {
        eprintln!("crowd: reusing {}", home.display());
        return Crowded {
            home,
            event,
            messages: expected,
            bytes: base.bytes + doc["bytes"].as_u64().unwrap_or(0),
        };
    }
    eprintln!("crowd: copying the fixture and adding {people} RSVPs");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove stale crowd home");
    }
    copy_tree(&base.home, &home);
    let store = Store::open(&Home::at(&home).store_path()).expect("open the copy");
    let event = store
        .all_events()
        .expect("events")
        .into_iter()
        .max_by_key(|e| {
            let t = store.tally(&e.id).unwrap_or_default();
            (t.going + t.maybe + t.not_going, e.id)
        })
        .expect("the fixture has events");
    let statuses = [RsvpStatus::Going, RsvpStatus::Maybe, RsvpStatus::NotGoing];
    let mut bytes = 0u64;
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..people as usize {
        let content = Rsvp {
            event: event.id,
            status: statuses[i % 3],
            guests: (i % 4) as u32,
            note: None,
            revision: Some(event.revision),
        }
        .to_content_bytes();
        let key = feed_key(seed, MAX_FEEDS + i);
        let msg = Message::sign(&key, 1, MessageId::default(), CROWD_MS, &content)
            .expect("sign a crowd RSVP");
        bytes += msg.bytes().len() as u64;
        batch.push(msg);
        if batch.len() == BATCH || i + 1 == people as usize {
            let report = store.ingest(std::mem::take(&mut batch)).expect("ingest");
            assert!(report.rejected.is_none(), "crowd RSVP rejected");
        }
    }
    store.flush().expect("flush");
    drop(store);
    common::wait_closed(&Home::at(&home).store_path(), Duration::from_secs(10));
    let doc = json!({ "base": base.key, "event": event.id.to_string(), "bytes": bytes });
    std::fs::write(&marker, doc.to_string()).expect("write crowd marker");
    Crowded {
        home,
        event: event.id,
        messages: expected,
        bytes: base.bytes + bytes,
    }
}
