//! Crash consistency: a writer process is killed with SIGKILL at arbitrary
//! points while it publishes and ingests; afterwards the store must pass
//! fsck (indexes agree with the logs, chains verify) and hold every message
//! the writer had reported as durable.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use potluck::feed::message::{FeedId, Message, MessageId};
use potluck::store::Store;

const CHILD_ENV: &str = "POTLUCK_CRASH_TEST_STORE";

/// Runs only as the child of `killed_writers_leave_a_consistent_store`.
#[test]
#[ignore = "run by crash test as a child process"]
fn crash_writer_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(std::path::Path::new(&path)).unwrap();
    let own = SigningKey::from_bytes(&[1; 32]);
    let foreign = SigningKey::from_bytes(&[2; 32]);
    let foreign_id = FeedId(foreign.verifying_key().to_bytes());
    let started = Instant::now();
    for round in 0..2_000u64 {
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
        let rsvp = format!(
            r#"{{"type":"rsvp","event":"{}","status":"going","guests":{}}}"#,
            MessageId([7; 32]),
            round % 5
        );
        let m = store.publish(&own, rsvp.as_bytes(), round as i64).unwrap();
        println!("durable own {}", m.accepted[0].sequence());
        // A batch of foreign messages: all of it lands, or none.
        let head = store.head(&foreign_id).unwrap();
        let (mut seq, mut prev) =
            head.map_or((1, MessageId::default()), |h| (h.sequence + 1, h.id));
        let mut batch = Vec::new();
        for i in 0..20 {
            let body = format!(r#"{{"type":"about","name":"n{round}-{i}"}}"#);
            let msg = Message::sign(&foreign, seq, prev, 0, body.as_bytes()).unwrap();
            prev = msg.id();
            seq += 1;
            batch.push(msg);
        }
        let report = store.ingest(batch).unwrap();
        assert!(report.rejected.is_none());
        println!("durable foreign {}", seq - 1);
    }
}

#[test]
fn killed_writers_leave_a_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let exe = std::env::current_exe().unwrap();
    let mut durable_own = 0u64;
    let mut durable_foreign = 0u64;
    // Kill after a different number of reported writes each round.
    for (round, kill_after) in [3usize, 17, 40, 1, 25].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_writer_child", "--ignored", "--nocapture"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let mut parts = line.split_whitespace();
            if parts.next() != Some("durable") {
                continue;
            }
            let which = parts.next().unwrap().to_owned();
            let seq: u64 = parts.next().unwrap().parse().unwrap();
            if which == "own" {
                durable_own = seq;
            } else {
                durable_foreign = seq;
            }
            seen += 1;
            if seen >= kill_after {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix: no destructors, no flush.
        child.wait().unwrap();

        let store = Store::open(&path).unwrap();
        let report = store.fsck().unwrap();
        assert!(
            report.problems.is_empty(),
            "round {round}: {:?}",
            report.problems
        );
        let own = FeedId(SigningKey::from_bytes(&[1; 32]).verifying_key().to_bytes());
        let foreign = FeedId(SigningKey::from_bytes(&[2; 32]).verifying_key().to_bytes());
        let own_head = store.head(&own).unwrap().map_or(0, |h| h.sequence);
        let foreign_head = store.head(&foreign).unwrap().map_or(0, |h| h.sequence);
        assert!(
            own_head >= durable_own,
            "round {round}: lost a published message"
        );
        assert!(
            foreign_head >= durable_foreign,
            "round {round}: lost an ingested batch"
        );
        // Batches are atomic: a foreign head is always at a batch boundary.
        assert_eq!(foreign_head % 20, 0, "round {round}: half a batch landed");
    }
    assert!(durable_own > 0);
}
