//! A profiling target: signs 5,000 messages (100 feeds × 50: events and
//! RSVPs to them, about 300 bytes of content) and ingests them into a new
//! store in 5 `Store::ingest` calls, once. Meant to run under a profiler,
//! where a criterion bench's many iterations would take too long:
//!
//! ```sh
//! cargo build --release --example ingest_profile
//! valgrind --tool=callgrind target/release/examples/ingest_profile
//! callgrind_annotate --inclusive=yes callgrind.out.*
//! ```
//!
//! `INGEST_PROFILE_BATCH` sets the messages per `Store::ingest` call
//! (1,000 by default); 1 to 5 is the shape of live gossip, where a node
//! commits a few messages at a time (see the mesh bench).
//!
//! With `--verify-batches` it instead times ed25519 batch verification of
//! the same messages at several batch sizes, on one thread (the figures
//! behind `validate::VERIFY_BATCH`). See `docs/performance.md`.

use std::time::Instant;

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use potluck::feed::message::{HEADER_LEN, Message, MessageId, SIGNATURE_DOMAIN, SIGNATURE_LEN};
use potluck::store::Store;

const FEEDS: usize = 100;
const PER_FEED: usize = 50;
const BATCH: usize = 1_000;

fn main() {
    let messages = sign_all();
    if std::env::args().any(|a| a == "--verify-batches") {
        verify_batches(&messages);
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(&dir.path().join("store")).expect("a new store");
    let batch = std::env::var("INGEST_PROFILE_BATCH")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&b| b > 0)
        .unwrap_or(BATCH);
    let started = Instant::now();
    let mut stored = 0;
    for chunk in messages.chunks(batch) {
        let report = store.ingest(chunk.to_vec()).expect("ingest");
        assert!(report.rejected.is_none(), "{:?}", report.rejected);
        stored += report.accepted.len();
    }
    let elapsed = started.elapsed();
    println!(
        "{stored} messages ingested in {elapsed:?} ({:.0}/s); store {} bytes on disk",
        stored as f64 / elapsed.as_secs_f64(),
        store.size_on_disk().expect("size on disk")
    );
}

/// Round `r` holds message `r` of every feed; every 5th message of a feed
/// announces an event, the others answer events announced earlier.
fn sign_all() -> Vec<Message> {
    let keys: Vec<SigningKey> = (0..FEEDS)
        .map(|f| SigningKey::from_bytes(blake3::hash(format!("k{f}").as_bytes()).as_bytes()))
        .collect();
    let mut previous = vec![MessageId::default(); FEEDS];
    let mut events: Vec<MessageId> = Vec::new();
    let mut out = Vec::with_capacity(FEEDS * PER_FEED);
    for round in 0..PER_FEED {
        for (feed, key) in keys.iter().enumerate() {
            let is_event = round % 5 == 0 || events.is_empty();
            let body = if is_event {
                format!(
                    r#"{{"type":"event","title":"Potluck {feed}-{round}","start":"2027-0{}-1{}T18:00:00+01:00","location":"Community garden shed, 12 Elm Street","description":"Bring a dish to share; plates and cutlery provided. Kids welcome, dogs on a lead."}}"#,
                    1 + feed % 9,
                    round % 10
                )
            } else {
                let event = events[(feed * 7 + round * 13) % events.len()];
                format!(
                    r#"{{"type":"rsvp","event":"{event}","status":"going","guests":{},"note":"Bringing a big pot of lentil soup and some bread; will arrive around six if the bus is on time."}}"#,
                    round % 3
                )
            };
            let timestamp = 1_793_491_200_000 + round as i64;
            let msg = Message::sign(
                key,
                round as u64 + 1,
                previous[feed],
                timestamp,
                body.as_bytes(),
            )
            .expect("sign");
            previous[feed] = msg.id();
            if is_event {
                events.push(msg.id());
            }
            out.push(msg);
        }
    }
    out
}

/// Batch verification rate at several batch sizes, one thread.
fn verify_batches(messages: &[Message]) {
    let inputs: Vec<Vec<u8>> = messages
        .iter()
        .map(|m| [SIGNATURE_DOMAIN, &m.signed_bytes()[..HEADER_LEN]].concat())
        .collect();
    let signatures: Vec<Signature> = messages
        .iter()
        .map(|m| {
            Signature::from_slice(&m.signed_bytes()[HEADER_LEN..HEADER_LEN + SIGNATURE_LEN])
                .expect("a signature")
        })
        .collect();
    let keys: Vec<VerifyingKey> = messages
        .iter()
        .map(|m| VerifyingKey::from_bytes(&m.author().0).expect("an author key"))
        .collect();
    for size in [32usize, 64, 128, 256, 512, 1024] {
        let started = Instant::now();
        for start in (0..messages.len()).step_by(size) {
            let end = (start + size).min(messages.len());
            let refs: Vec<&[u8]> = inputs[start..end].iter().map(Vec::as_slice).collect();
            ed25519_dalek::verify_batch(&refs, &signatures[start..end], &keys[start..end])
                .expect("valid signatures");
        }
        println!(
            "batches of {size}: {:.0} signatures/s",
            messages.len() as f64 / started.elapsed().as_secs_f64()
        );
    }
}
