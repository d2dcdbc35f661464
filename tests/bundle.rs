//! Sync by file, end to end: `potluck export`, `clock` and `import` between
//! homes that never talk over the network (no `serve`, no `sync`: not one
//! packet is sent). Every test runs the real binary in temporary homes with
//! a clean environment, and every wait is bounded.

mod common;

use std::path::{Path, PathBuf};

use common::sandbox::{Sandbox, announce};
use potluck::feed::bundle::{MAGIC, read_bundle};
use potluck::feed::message::FeedId;
use serde_json::Value;

/// Bytes before the first record of a bundle: magic and version.
const BUNDLE_HEADER: usize = MAGIC.len() + 1;
/// Bytes of a message before its content: header and signature.
const CONTENT_OFFSET: usize = potluck::feed::message::SIGNED_LEN;

impl Sandbox {
    /// A new home with a name; returns its path and feed id.
    fn init(&self, name: &str) -> (PathBuf, String) {
        let home = self.path(name);
        let doc = self.json(&home, &["init", "--name", name]);
        let feed = doc["id"].as_str().expect("a feed id").to_owned();
        (home, feed)
    }

    /// The raw output of `log [FEED] --json` (one JSON object per line).
    fn log(&self, home: &Path, feed: &str) -> String {
        let run = self.run(home, &["log", feed, "--json"]);
        assert!(run.status.success(), "{run:?}");
        run.stdout
    }

    /// The number of messages of `feed` held by `home`.
    fn count(&self, home: &Path, feed: &str) -> usize {
        self.log(home, feed).lines().count()
    }

    /// Asserts that `fsck` finds nothing wrong; returns its report.
    fn fsck_ok(&self, home: &Path) -> Value {
        let doc = self.json(home, &["fsck"]);
        assert_eq!(doc["ok"], true, "{doc}");
        doc
    }
}

/// The byte offset of each record (its length prefix) in a bundle, and
/// the offset of the end marker.
fn record_offsets(bundle: &[u8]) -> (Vec<usize>, usize) {
    assert_eq!(&bundle[..MAGIC.len()], MAGIC);
    let mut at = BUNDLE_HEADER;
    let mut records = Vec::new();
    for _ in 0..10_000 {
        let len = u32::from_be_bytes(bundle[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            return (records, at);
        }
        records.push(at);
        at += 4 + len;
    }
    panic!("no end marker in the bundle");
}

/// The authors of a bundle's messages, in order (and checks it is whole).
fn bundle_authors(path: &Path) -> Vec<FeedId> {
    let bytes = std::fs::read(path).unwrap();
    let (messages, problem) = read_bundle(&mut bytes.as_slice());
    assert!(problem.is_none(), "{problem:?}");
    messages.iter().map(|m| m.author()).collect()
}

// ---------------------------------------------------------------------------

#[test]
fn an_event_and_an_rsvp_travel_by_bundle_both_ways() {
    let sandbox = Sandbox::new();
    let (home_a, a_feed) = sandbox.init("ana");
    let event = announce(&sandbox, &home_a, "Soup night");
    let (home_b, b_feed) = sandbox.init("bea");
    let a_bundle = sandbox.path("a.bundle");
    let a_bundle_text = a_bundle.to_str().unwrap();

    // A → B: everything A holds (A's name and event).
    let export = sandbox.json(&home_a, &["export", "--out", a_bundle_text]);
    assert_eq!(export["messages"], 2, "{export}");
    assert_eq!(export["feeds"], 1, "{export}");
    assert!(
        !sandbox.path("a.partial").exists(),
        "no temporary file is left"
    );
    let import = sandbox.json(&home_b, &["import", a_bundle_text]);
    assert_eq!(import["new"], 2, "{import}");
    assert_eq!(import["present"], 0, "{import}");
    assert_eq!(import["rejected"], 0, "{import}");
    assert_eq!(import["problem"], Value::Null, "{import}");
    let events = sandbox.json(&home_b, &["events"]);
    assert!(
        events
            .as_array()
            .is_some_and(|l| l.len() == 1 && l[0]["id"] == event.as_str()),
        "{events}"
    );
    assert_eq!(events[0]["organizer_name"], "ana");

    // B answers, offline.
    let answer = sandbox.json(&home_b, &["rsvp", &event, "going", "--guests", "1"]);
    assert_eq!(answer["status"], "going");

    // A says what it holds; B exports only what A lacks: B's own two
    // messages (its name and its RSVP), none of A's.
    let a_clock = sandbox.path("a.clock");
    let clock = sandbox.json(&home_a, &["clock", "--out", a_clock.to_str().unwrap()]);
    assert_eq!(clock["feeds"], 1, "{clock}");
    let b_bundle = sandbox.path("b.bundle");
    let export = sandbox.json(
        &home_b,
        &[
            "export",
            "--for",
            a_clock.to_str().unwrap(),
            "--out",
            b_bundle.to_str().unwrap(),
        ],
    );
    let b_own = sandbox.count(&home_b, &b_feed);
    assert_eq!(b_own, 2);
    assert_eq!(export["messages"], b_own as u64, "{export}");
    let b = FeedId::parse(&b_feed).unwrap();
    assert_eq!(bundle_authors(&b_bundle), vec![b; b_own]);

    let import = sandbox.json(&home_a, &["import", b_bundle.to_str().unwrap()]);
    assert_eq!(import["new"], 2, "{import}");
    assert_eq!(import["present"], 0, "{import}");
    let doc = sandbox.json(&home_a, &["event", &event]);
    assert_eq!(doc["tally"]["going"], 1, "{doc}");
    assert_eq!(doc["tally"]["headcount"], 2, "{doc}");
    let rsvps = doc["rsvps"].as_array().unwrap();
    assert_eq!(rsvps.len(), 1, "{doc}");
    assert_eq!(rsvps[0]["author"], b_feed.as_str());
    assert_eq!(rsvps[0]["name"], "bea");
    assert_eq!(rsvps[0]["status"], "going");
    assert_eq!(doc["author"], a_feed.as_str());

    // Both stores are sound, and hold the same thing.
    for home in [&home_a, &home_b] {
        let fsck = sandbox.fsck_ok(home);
        assert_eq!(fsck["feeds"], 2, "{fsck}");
        assert_eq!(fsck["messages"], 4, "{fsck}");
    }
    // Nothing left to send either way: A's clock now covers all of B's.
    let clock = sandbox.json(&home_a, &["clock", "--out", a_clock.to_str().unwrap()]);
    assert_eq!(clock["feeds"], 2, "{clock}");
    let again = sandbox.json(
        &home_b,
        &[
            "export",
            "--for",
            a_clock.to_str().unwrap(),
            "--out",
            b_bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(again["messages"], 0, "{again}");
}

#[test]
fn importing_the_same_bundle_twice_changes_nothing() {
    let sandbox = Sandbox::new();
    let (home_a, a_feed) = sandbox.init("ana");
    let event = announce(&sandbox, &home_a, "Quiz night");
    sandbox.json(&home_a, &["update", &event, "--location", "Library"]);
    let bundle = sandbox.path("a.bundle");
    let bundle_text = bundle.to_str().unwrap();
    let n = sandbox.json(&home_a, &["export", "--out", bundle_text])["messages"]
        .as_u64()
        .unwrap();
    assert_eq!(n, 3, "name, event, update");

    let (home_b, b_feed) = sandbox.init("bea");
    let first = sandbox.json(&home_b, &["import", bundle_text]);
    assert_eq!(first["new"], n, "{first}");
    assert_eq!(first["present"], 0, "{first}");
    let a_log = sandbox.log(&home_b, &a_feed);
    let b_log = sandbox.log(&home_b, &b_feed);
    let own_log = sandbox.run(&home_b, &["log", "--json"]).stdout;
    let event_doc = sandbox.json(&home_b, &["event", &event]);
    let fsck = sandbox.fsck_ok(&home_b);
    assert_eq!(a_log.lines().count() as u64, n);

    let second = sandbox.json(&home_b, &["import", bundle_text]);
    assert_eq!(second["new"], 0, "{second}");
    assert_eq!(second["present"], n, "{second}");
    assert_eq!(second["rejected"], 0, "{second}");
    assert_eq!(second["problem"], Value::Null, "{second}");
    assert_eq!(sandbox.log(&home_b, &a_feed), a_log);
    assert_eq!(sandbox.log(&home_b, &b_feed), b_log);
    assert_eq!(sandbox.run(&home_b, &["log", "--json"]).stdout, own_log);
    assert_eq!(sandbox.json(&home_b, &["event", &event]), event_doc);
    assert_eq!(sandbox.fsck_ok(&home_b), fsck);

    // The text form says the same.
    let text = sandbox.run(&home_b, &["import", bundle_text]);
    assert!(text.status.success(), "{text:?}");
    assert!(
        text.stdout
            .contains("imported 0 new messages; 3 already present"),
        "{text:?}"
    );
    // And the author importing their own bundle gets nothing new either.
    let own = sandbox.json(&home_a, &["import", bundle_text]);
    assert_eq!(own["new"], 0, "{own}");
    assert_eq!(own["present"], n, "{own}");
}

/// Four messages of A's: name, event, and two updates.
fn four_message_bundle(sandbox: &Sandbox) -> (String, PathBuf, Vec<u8>) {
    let (home_a, a_feed) = sandbox.init("ana");
    let event = announce(sandbox, &home_a, "Picnic");
    sandbox.json(&home_a, &["update", &event, "--location", "Park"]);
    sandbox.json(&home_a, &["update", &event, "--title", "Big picnic"]);
    let bundle = sandbox.path("a.bundle");
    let export = sandbox.json(&home_a, &["export", "--out", bundle.to_str().unwrap()]);
    assert_eq!(export["messages"], 4, "{export}");
    let bytes = std::fs::read(&bundle).unwrap();
    (a_feed, bundle, bytes)
}

#[test]
fn a_truncated_bundle_imports_its_valid_prefix_and_says_so() {
    let sandbox = Sandbox::new();
    let (a_feed, _, bytes) = four_message_bundle(&sandbox);
    let (records, _) = record_offsets(&bytes);
    assert_eq!(records.len(), 4);

    // Cut in the middle of the third record: two whole messages remain.
    let cut = records[2] + 4 + 50;
    let truncated = sandbox.path("cut.bundle");
    std::fs::write(&truncated, &bytes[..cut]).unwrap();
    let (home_b, _) = sandbox.init("bea");
    let run = sandbox.run(&home_b, &["import", truncated.to_str().unwrap(), "--json"]);
    let error = run.one_line_error();
    assert!(error.contains("truncated"), "{run:?}");
    assert!(error.contains("after 2 messages"), "{run:?}");
    assert!(
        error.contains("the valid messages before it were imported"),
        "{run:?}"
    );
    let doc = run.json();
    assert_eq!(doc["error"]["kind"], "invalid_file", "{run:?}");
    let report = &doc["error"]["report"];
    assert_eq!(report["new"], 2, "{report}");
    assert_eq!(report["present"], 0, "{report}");
    assert!(report["problem"].as_str().is_some(), "{report}");
    assert_eq!(sandbox.count(&home_b, &a_feed), 2);
    let fsck = sandbox.fsck_ok(&home_b);
    assert_eq!(fsck["messages"], 3, "B's name and A's first two: {fsck}");

    // Cut inside a record's length prefix, and right before the end marker.
    for (cut, held) in [(records[3] + 2, 3), (bytes.len() - 12, 4)] {
        let file = sandbox.path("cut2.bundle");
        std::fs::write(&file, &bytes[..cut]).unwrap();
        let run = sandbox.run(&home_b, &["import", file.to_str().unwrap()]);
        let error = run.one_line_error();
        assert!(error.contains("truncated"), "{run:?}");
        assert_eq!(sandbox.count(&home_b, &a_feed), held, "cut at {cut}");
        sandbox.fsck_ok(&home_b);
    }

    // The whole bundle completes the feed; nothing was damaged.
    let whole = sandbox.path("whole.bundle");
    std::fs::write(&whole, &bytes).unwrap();
    let report = sandbox.json(&home_b, &["import", whole.to_str().unwrap()]);
    assert_eq!(report["new"], 0, "{report}");
    assert_eq!(report["present"], 4, "{report}");
    let doc = sandbox.json(&home_b, &["events"]);
    assert_eq!(doc[0]["title"], "Big picnic", "{doc}");
    assert_eq!(doc[0]["location"], "Park", "{doc}");
}

/// A bundle that holds a record twice imports whole: the repeat is a
/// message already present, not a reason to drop what follows it (issue
/// 14, defect 8).
#[test]
fn a_repeated_record_in_a_bundle_is_a_duplicate() {
    let sandbox = Sandbox::new();
    let (a_feed, _, bytes) = four_message_bundle(&sandbox);
    let (records, end) = record_offsets(&bytes);
    // Records 1, 2, 2, 3, 4, then an end marker counting five.
    let mut twice = bytes[..records[2]].to_vec();
    twice.extend_from_slice(&bytes[records[1]..records[2]]);
    twice.extend_from_slice(&bytes[records[2]..end]);
    twice.extend_from_slice(&0u32.to_be_bytes());
    twice.extend_from_slice(&5u64.to_be_bytes());
    let file = sandbox.path("twice.bundle");
    std::fs::write(&file, &twice).unwrap();

    let (home_b, _) = sandbox.init("bea");
    let report = sandbox.json(&home_b, &["import", file.to_str().unwrap()]);
    assert_eq!(report["new"], 4, "{report}");
    assert_eq!(report["present"], 1, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
    assert_eq!(report["problem"], Value::Null, "{report}");
    assert_eq!(sandbox.count(&home_b, &a_feed), 4);
    sandbox.fsck_ok(&home_b);
}

#[test]
fn a_corrupted_message_stops_the_import_at_that_message() {
    let sandbox = Sandbox::new();
    let (a_feed, _, bytes) = four_message_bundle(&sandbox);
    let (records, _) = record_offsets(&bytes);

    // Flip a byte inside the content of the third message (its title text).
    let mut bad = bytes.clone();
    let content_at = records[2] + 4 + CONTENT_OFFSET;
    assert!(
        content_at + 10 < records[3],
        "the third message has content"
    );
    bad[content_at + 10] ^= 0x01;
    let file = sandbox.path("bad.bundle");
    std::fs::write(&file, &bad).unwrap();

    let (home_b, b_feed) = sandbox.init("bea");
    let run = sandbox.run(&home_b, &["import", file.to_str().unwrap(), "--json"]);
    let error = run.one_line_error();
    assert!(
        error.contains(&format!("{a_feed} #3 is invalid")),
        "{run:?}"
    );
    let doc = run.json();
    assert_eq!(doc["error"]["kind"], "invalid_file", "{run:?}");
    let report = &doc["error"]["report"];
    assert_eq!(report["new"], 2, "{report}");
    assert_eq!(
        report["rejected"], 2,
        "the bad one and the one after: {report}"
    );
    assert_eq!(sandbox.count(&home_b, &a_feed), 2);
    assert_eq!(sandbox.count(&home_b, &b_feed), 1);
    let fsck = sandbox.fsck_ok(&home_b);
    assert_eq!(fsck["messages"], 3, "{fsck}");
    // The event is there, without the rejected update.
    let events = sandbox.json(&home_b, &["events"]);
    assert_eq!(events[0]["title"], "Picnic", "{events}");
    assert_eq!(events[0]["location"], Value::Null, "{events}");

    // A damaged signature is rejected the same way.
    let mut bad = bytes.clone();
    bad[records[3] + 4 + potluck::feed::message::HEADER_LEN + 5] ^= 0x80;
    std::fs::write(&file, &bad).unwrap();
    let run = sandbox.run(&home_b, &["import", file.to_str().unwrap(), "--json"]);
    run.one_line_error();
    let report = &run.json()["error"]["report"];
    assert_eq!(report["new"], 1, "the third message, now intact: {report}");
    assert_eq!(report["present"], 2, "{report}");
    assert_eq!(report["rejected"], 1, "{report}");
    assert_eq!(sandbox.count(&home_b, &a_feed), 3);
    sandbox.fsck_ok(&home_b);

    // Not a bundle at all: nothing happens.
    std::fs::write(&file, b"hello, this is not a bundle").unwrap();
    let run = sandbox.run(&home_b, &["import", file.to_str().unwrap()]);
    let error = run.one_line_error();
    assert!(error.contains("not a potluck bundle"), "{run:?}");
    assert_eq!(sandbox.count(&home_b, &a_feed), 3);
    sandbox.fsck_ok(&home_b);
}

#[test]
fn export_of_one_feed_holds_just_that_feed() {
    let sandbox = Sandbox::new();
    let (home_a, a_feed) = sandbox.init("ana");
    let event = announce(&sandbox, &home_a, "Choir");
    let (home_b, b_feed) = sandbox.init("bea");
    let a_bundle = sandbox.path("a.bundle");
    sandbox.json(&home_a, &["export", "--out", a_bundle.to_str().unwrap()]);
    sandbox.json(&home_b, &["import", a_bundle.to_str().unwrap()]);
    sandbox.json(&home_b, &["rsvp", &event, "maybe"]);
    // B holds two feeds: A's (2 messages) and its own (2 messages).
    assert_eq!(sandbox.count(&home_b, &a_feed), 2);
    assert_eq!(sandbox.count(&home_b, &b_feed), 2);

    for (feed, other) in [(&a_feed, &b_feed), (&b_feed, &a_feed)] {
        let file = sandbox.path("one.bundle");
        let export = sandbox.json(
            &home_b,
            &["export", feed.as_str(), "--out", file.to_str().unwrap()],
        );
        assert_eq!(export["messages"], 2, "{export}");
        assert_eq!(export["feeds"], 1, "{export}");
        let id = FeedId::parse(feed).unwrap();
        assert_eq!(bundle_authors(&file), vec![id; 2]);

        // A fresh home that imports it holds that feed and nothing else
        // of B's store.
        let home_c = sandbox.path(&format!("c-{}", &feed[1..9].replace('/', "_")));
        sandbox.json(&home_c, &["init"]);
        let import = sandbox.json(&home_c, &["import", file.to_str().unwrap()]);
        assert_eq!(import["new"], 2, "{import}");
        assert_eq!(sandbox.count(&home_c, feed), 2);
        assert_eq!(sandbox.count(&home_c, other), 0);
    }

    // Both feeds by name: the same as exporting everything.
    let both = sandbox.path("both.bundle");
    let export = sandbox.json(
        &home_b,
        &["export", &a_feed, &b_feed, "--out", both.to_str().unwrap()],
    );
    assert_eq!(export["messages"], 4, "{export}");
    assert_eq!(export["feeds"], 2, "{export}");

    // A bad feed id fails before anything is written.
    let nothing = sandbox.path("nothing.bundle");
    let run = sandbox.run(
        &home_b,
        &[
            "export",
            "@nope.ed25519",
            "--out",
            nothing.to_str().unwrap(),
        ],
    );
    run.one_line_error();
    assert!(!nothing.exists());
}
