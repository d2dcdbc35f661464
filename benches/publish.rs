//! Publish throughput: sign + append + index + flush, one message at a time.
//!
//! Every `Store::publish` call signs an RSVP as the next message of one
//! feed, stages it with its index entries, applies the atomic batch and
//! flushes sled before returning, so each measured iteration is one
//! durable message. The store lives in a temporary directory on the
//! default temp filesystem (`TMPDIR`), so the figure includes a real
//! flush to that disk.
//!
//! Run with `cargo bench --bench publish`; see `docs/performance.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use potluck::content::{Event, EventTime, KnownContent, Rsvp, RsvpStatus};
use potluck::feed::message::MessageId;
use potluck::store::Store;

/// Events the organizer announces before the benchmark, for RSVPs to name.
const EVENTS: usize = 16;
/// Distinct RSVP contents cycled through by the benchmark.
const CONTENTS: usize = 64;
/// A fixed "now" (2026-11-01T00:00:00Z) so runs are reproducible.
const T0_MS: i64 = 1_793_491_200_000;

const NOTES: [&str; 4] = [
    "Bringing a big pot of lentil soup and some bread; will arrive around six if the bus is on time.",
    "Can help set up tables and chairs beforehand. Vegetarian dish for about eight people, no nuts.",
    "Might be a little late because of work, but will bring dessert: apple crumble with custard.",
    "Not sure yet, depends on childcare. If I come I will bring a salad and a couple of folding chairs.",
];

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn event(n: usize) -> Event {
    let day = 1 + n % 28;
    Event {
        title: format!("Neighbourhood potluck #{n}"),
        start: EventTime::parse("start", &format!("2027-03-{day:02}T18:00:00+01:00"))
            .expect("valid start"),
        end: Some(
            EventTime::parse("end", &format!("2027-03-{day:02}T22:00:00+01:00"))
                .expect("valid end"),
        ),
        tz: Some("Europe/Berlin".into()),
        location: Some("Community hall, Lindenstraße 12".into()),
        url: None,
        description: Some("Bring a dish to share and your own plate.".into()),
        capacity: Some(40),
        unlisted: false,
        public: false,
        closed_to_web: false,
        comments: Default::default(),
    }
}

/// RSVP contents of realistic size (about 200-230 bytes of JSON).
fn rsvp_contents(events: &[MessageId]) -> Vec<Vec<u8>> {
    let statuses = [RsvpStatus::Going, RsvpStatus::Maybe, RsvpStatus::NotGoing];
    (0..CONTENTS)
        .map(|i| {
            let bytes = Rsvp {
                event: events[i % events.len()],
                status: statuses[i % statuses.len()],
                guests: (i % 3) as u32,
                note: Some(NOTES[i % NOTES.len()].into()),
                revision: None,
            }
            .to_content_bytes();
            assert!(
                (150..=300).contains(&bytes.len()),
                "rsvp content is {} bytes",
                bytes.len()
            );
            bytes
        })
        .collect()
}

fn publish(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open store");

    // Untimed setup: an organizer announces the events the RSVPs refer to.
    let organizer = key(1);
    let events: Vec<MessageId> = (0..EVENTS)
        .map(|n| {
            store
                .publish(&organizer, &event(n).to_content_bytes(), T0_MS + n as i64)
                .expect("publish event")
                .accepted[0]
                .id()
        })
        .collect();
    let contents = rsvp_contents(&events);

    let guest = key(2);
    let mut n: usize = 0;

    let mut group = c.benchmark_group("publish");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(15))
        .sampling_mode(SamplingMode::Flat);
    group.bench_function("rsvp_durable", |b| {
        b.iter(|| {
            let content = &contents[n % CONTENTS];
            n += 1;
            let msg = store
                .publish(&guest, content, T0_MS + 1_000 + n as i64)
                .expect("publish rsvp");
            black_box(msg)
        })
    });
    group.finish();

    let head = store
        .head(&potluck::feed::message::FeedId(
            guest.verifying_key().to_bytes(),
        ))
        .expect("head")
        .expect("guest feed exists");
    assert_eq!(head.sequence, n as u64, "every publish was appended");
}

criterion_group!(benches, publish);
criterion_main!(benches);
