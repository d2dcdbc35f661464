//! Ingest throughput of foreign messages, compared with the signature
//! verification it contains.
//!
//! 100 feeds × 50 messages = 5,000 messages are signed once, outside the
//! timed code, interleaved feed-wise (round `r` holds message `r` of every
//! feed) so that each feed stays in sequence order. Every 5th message of a
//! feed announces an event; the others are RSVPs to events announced by
//! other feeds in earlier rounds. Content is about 300 bytes.
//!
//! - `ingest`: a fresh empty store per iteration (opened in untimed
//!   setup), then 5 `Store::ingest` calls of 1,000 messages each; each
//!   call checks chains, batch-verifies signatures on all cores, stages
//!   log, id, head and index entries, applies one atomic sled batch and
//!   flushes.
//! - `ingest_pipelined`: the same store work, but the signatures of batch
//!   `i + 1` are checked (`validate::Checked::new`) on another thread
//!   while batch `i` is stored with `Store::ingest_checked`, as a node
//!   does per connection.
//! - `verify_only`: `validate::verify_signatures_parallel` on the same
//!   5 batches of 1,000, exactly the verification `ingest` does: the
//!   ceiling for ingest with this batch shape.
//! - `verify_single`: `validate::verify_signatures` (one thread) on all
//!   5,000.
//!
//! All four report throughput in messages per second, so the ratios can
//! be read from one run. Run with `cargo bench --bench ingest`; see
//! `docs/performance.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use potluck::content::{Event, EventTime, KnownContent, Rsvp, RsvpStatus};
use potluck::feed::message::{Message, MessageId};
use potluck::feed::validate;
use potluck::store::Store;

const FEEDS: usize = 100;
const PER_FEED: usize = 50;
const TOTAL: usize = FEEDS * PER_FEED;
const BATCH: usize = 1_000;
/// A fixed "now" (2026-11-01T00:00:00Z) so runs are reproducible.
const T0_MS: i64 = 1_793_491_200_000;

const NOTES: [&str; 4] = [
    "Bringing a big pot of lentil soup and some bread; will arrive around six if the bus is on time. Can stay to clean up afterwards.",
    "Can help set up tables and chairs beforehand. Vegetarian dish for about eight people, no nuts, and a jug of homemade lemonade.",
    "Might be a little late because of work, but will bring dessert: apple crumble with custard, enough for the whole table.",
    "Not sure yet, depends on childcare. If I come I will bring a salad and a couple of folding chairs from the garage.",
];

fn key(feed: usize) -> SigningKey {
    let seed = blake3::hash(format!("potluck-bench-feed-{feed}").as_bytes());
    SigningKey::from_bytes(seed.as_bytes())
}

fn event_content(feed: usize, round: usize) -> Vec<u8> {
    let day = 1 + (feed + round) % 28;
    Event {
        title: format!("Potluck dinner {feed}-{round} at the community garden"),
        start: EventTime::parse("start", &format!("2027-04-{day:02}T18:30:00+02:00"))
            .expect("valid start"),
        end: Some(
            EventTime::parse("end", &format!("2027-04-{day:02}T22:00:00+02:00"))
                .expect("valid end"),
        ),
        tz: Some("Europe/Berlin".into()),
        location: Some("Community garden shed, Lindenstraße 12, back entrance".into()),
        url: None,
        description: Some(
            "Bring a dish to share, your own plate and cutlery. Tables, drinks and music provided."
                .into(),
        ),
        capacity: Some(30 + (feed % 20) as u32),
        unlisted: false,
        public: false,
        closed_to_web: false,
        comments: Default::default(),
    }
    .to_content_bytes()
}

fn rsvp_content(event: MessageId, i: usize) -> Vec<u8> {
    let statuses = [RsvpStatus::Going, RsvpStatus::Maybe, RsvpStatus::NotGoing];
    Rsvp {
        event,
        status: statuses[i % statuses.len()],
        guests: (i % 3) as u32,
        note: Some(NOTES[i % NOTES.len()].into()),
        revision: None,
    }
    .to_content_bytes()
}

/// The 5,000 messages in ingest order, split into batches of [`BATCH`].
fn messages() -> Vec<Vec<Message>> {
    let keys: Vec<SigningKey> = (0..FEEDS).map(key).collect();
    let mut previous = vec![MessageId::default(); FEEDS];
    let mut events: Vec<MessageId> = Vec::new();
    let mut all = Vec::with_capacity(TOTAL);
    let mut content_bytes = 0usize;
    for round in 0..PER_FEED {
        // Events of this round become RSVP targets only from the next round on.
        let known = events.len();
        for feed in 0..FEEDS {
            let n = round * FEEDS + feed;
            let content = if round % 5 == 0 {
                event_content(feed, round)
            } else {
                // An event of another feed, spread evenly over everything
                // known (event `i` belongs to feed `i % FEEDS`).
                let spread = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
                let mut target = (spread % known as u64) as usize;
                if target % FEEDS == feed {
                    target = (target + 1) % known;
                }
                rsvp_content(events[target], n)
            };
            content_bytes += content.len();
            let msg = Message::sign(
                &keys[feed],
                round as u64 + 1,
                previous[feed],
                T0_MS + (round * 60_000 + feed) as i64,
                &content,
            )
            .expect("sign");
            previous[feed] = msg.id();
            if round % 5 == 0 {
                events.push(msg.id());
            }
            all.push(msg);
        }
    }
    let mean = content_bytes / TOTAL;
    assert!((250..=350).contains(&mean), "mean content is {mean} bytes");
    all.chunks(BATCH).map(<[Message]>::to_vec).collect()
}

fn ingest(c: &mut Criterion) {
    let batches = messages();
    let all: Vec<Message> = batches.concat();

    let mut group = c.benchmark_group("ingest_5000");
    group
        .throughput(Throughput::Elements(TOTAL as u64))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .sampling_mode(SamplingMode::Flat);

    group.bench_function("ingest", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = Store::open(dir.path()).expect("open store");
                (store, dir, batches.clone())
            },
            |(store, dir, input)| {
                for batch in input {
                    let report = store.ingest(batch).expect("ingest");
                    assert!(report.rejected.is_none(), "{:?}", report.rejected);
                    assert_eq!(report.accepted.len(), BATCH);
                    black_box(report);
                }
                // Returned so that closing the store and deleting the
                // directory happen outside the timed section.
                (store, dir)
            },
            BatchSize::PerIteration,
        )
    });

    group.bench_function("ingest_pipelined", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = Store::open(dir.path()).expect("open store");
                (store, dir, batches.clone())
            },
            |(store, dir, input)| {
                let mut input = input.into_iter();
                let mut current = input.next().map(validate::Checked::new);
                while let Some(checked) = current.take() {
                    let next = input.next();
                    let report = std::thread::scope(|s| {
                        let verifier = next.map(|batch| s.spawn(|| validate::Checked::new(batch)));
                        let report = store.ingest_checked(checked).expect("ingest");
                        current = verifier.map(|v| v.join().expect("verifier thread"));
                        report
                    });
                    assert!(report.rejected.is_none(), "{:?}", report.rejected);
                    assert_eq!(report.accepted.len(), BATCH);
                    black_box(report);
                }
                (store, dir)
            },
            BatchSize::PerIteration,
        )
    });

    group.bench_function("verify_only", |b| {
        b.iter(|| {
            for batch in &batches {
                validate::verify_signatures_parallel(black_box(batch)).expect("valid");
            }
        })
    });

    group.bench_function("verify_single", |b| {
        b.iter(|| validate::verify_signatures(black_box(&all)).expect("valid"))
    });

    group.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
