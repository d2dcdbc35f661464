//! Crash consistency: a writer process is killed with SIGKILL at random
//! points while it publishes, ingests or reindexes; afterwards the store
//! must open, pass fsck (indexes agree with the logs, chains verify) and
//! hold every message the writer had reported as durable, and every batch
//! that was being written must have landed whole or not at all.
//!
//! The tests are black-box: they use only the public [`Store`] API, so they
//! hold for whatever files the store keeps beside `messages.log`.
//!
//! **How.** The writer is this test binary run again as a child
//! (`--exact crash_writer_child --ignored`), told by environment variables
//! which [`Workload`] to run on which store. It prints one line per step
//! (see [`Report`]): `plan` before each write (the heads its feeds will have
//! if the write lands) and `durable` after the write returned. The parent
//! kills it at a random point ([`kill_writers`]: inside a write, between
//! writes, or while the store opens), reads every line the child printed
//! before it died, and checks the store against them ([`Model::check`]).
//! A child that fails (a write or reindex returns an error on a store that
//! recovered from the last kill) reports it, and the test fails.
//!
//! **Replay.** Every random choice (the writers' batches, the kill points)
//! comes from one seed, printed at the start of each test and in every
//! failure; `POTLUCK_CRASH_SEED=<seed> cargo test --test crash` replays the
//! same workloads and kill plans (where a kill lands inside a write also
//! depends on the machine's speed).
//!
//! **Cost.** 126 kills in all. The tests run in debug builds, where
//! verifying one signature takes milliseconds, and fsck re-verifies the
//! whole store after every kill (most of the tests' time); so the stores
//! stay small (a new store every few kills, about a hundred messages for
//! the reindex) and most batches are tens of messages, not hundreds. Each
//! test prints (with `--nocapture`) where its kills landed.

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use potluck::content::{About, Contact, KnownContent, RsvpStatus};
use potluck::feed::message::{FeedId, Message, MessageId};
use potluck::feed::validate::Checked;
use potluck::store::{Store, StoreError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::node::{event_content, rsvp};

/// The store directory the child writes to.
const CHILD_STORE_ENV: &str = "POTLUCK_CRASH_TEST_STORE";
/// The [`Workload`] the child runs.
const CHILD_WORKLOAD_ENV: &str = "POTLUCK_CRASH_TEST_WORKLOAD";
/// The seed of the child's own random choices.
const CHILD_SEED_ENV: &str = "POTLUCK_CRASH_TEST_CHILD_SEED";
/// Overrides the random seed of every test, to replay a failure.
const SEED_ENV: &str = "POTLUCK_CRASH_SEED";

/// Longest a child runs when nobody kills it.
const CHILD_TIME_LIMIT: Duration = Duration::from_secs(30);
/// Longest the parent waits for the lines it kills after; then it kills
/// anyway (a kill is as good a test at any point).
const LINE_WAIT: Duration = Duration::from_secs(30);
/// Longest a child waits for the parent to let go of the store's lock.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// At most this much of a child's stderr is kept, to show if it fails.
const STDERR_LIMIT: u64 = 64 * 1024;

/// What a child process does to its store until it is killed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    /// One writer: publishes to its own feed (feed 0), then ingests a batch
    /// of 20 messages of a foreign feed (feed 1), over and over.
    OwnAndForeign,
    /// One writer ingesting sync-like batches: each mixes, interleaved, a
    /// few messages of each of several of [`MANY_FEEDS`] feeds.
    ManyFeeds,
    /// [`CONCURRENT_WRITERS`] threads sharing one store, each publishing
    /// to its own feed and ingesting batches of two foreign feeds of its
    /// own, all at once (what a group commit batches together).
    Concurrent,
    /// Reindexes the store over and over (the parent filled it).
    Reindex,
    /// Opens an old (format-2 or format-3) store that the parent wrote (opening upgrades it),
    /// then ingests batches as [`Workload::ManyFeeds`] does, to
    /// [`UPGRADE_NEW_FEEDS`] feeds after the [`UPGRADE_OLD_FEEDS`] it held.
    Upgrade,
}

/// Feeds of [`Workload::ManyFeeds`].
const MANY_FEEDS: usize = 50;
/// Writer threads of [`Workload::Concurrent`]; writer `w` publishes to
/// feed `w` and ingests feeds `CONCURRENT_WRITERS + 2w` and `… + 2w + 1`.
const CONCURRENT_WRITERS: usize = 4;
/// Feeds of the store [`Workload::Reindex`] runs on.
const REINDEX_FEEDS: usize = 8;
/// Feeds of the old store [`Workload::Upgrade`] opens.
const UPGRADE_OLD_FEEDS: usize = 24;
/// Feeds [`Workload::Upgrade`] writes once the store is upgraded.
const UPGRADE_NEW_FEEDS: usize = 8;
/// Messages in each foreign batch of [`Workload::OwnAndForeign`].
const FOREIGN_BATCH: u64 = 20;

impl Workload {
    const ALL: [Workload; 5] = [
        Workload::OwnAndForeign,
        Workload::ManyFeeds,
        Workload::Concurrent,
        Workload::Reindex,
        Workload::Upgrade,
    ];

    fn name(self) -> &'static str {
        match self {
            Workload::OwnAndForeign => "own-and-foreign",
            Workload::ManyFeeds => "many-feeds",
            Workload::Concurrent => "concurrent",
            Workload::Reindex => "reindex",
            Workload::Upgrade => "upgrade",
        }
    }

    fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// How many feeds the workload writes (numbered from 0).
    fn feed_count(self) -> usize {
        match self {
            Workload::OwnAndForeign => 2,
            Workload::ManyFeeds => MANY_FEEDS,
            Workload::Concurrent => 3 * CONCURRENT_WRITERS,
            Workload::Reindex => REINDEX_FEEDS,
            Workload::Upgrade => UPGRADE_OLD_FEEDS + UPGRADE_NEW_FEEDS,
        }
    }

    /// The key of feed `index` (distinct per workload).
    fn key(self, index: usize) -> SigningKey {
        if self == Workload::OwnAndForeign {
            // The keys this test has always used.
            return SigningKey::from_bytes(&[index as u8 + 1; 32]);
        }
        let mut bytes = [0x5c; 32];
        bytes[0] = self as u8;
        bytes[1] = u8::try_from(index).expect("fewer than 256 feeds");
        SigningKey::from_bytes(&bytes)
    }

    fn feed(self, index: usize) -> FeedId {
        FeedId(self.key(index).verifying_key().to_bytes())
    }
}

// ---------------------------------------------------------------------------
// The child: writes and reports.
// ---------------------------------------------------------------------------

/// Runs only as the child of the tests below: the writer that gets killed.
#[test]
#[ignore = "run by the crash tests as a child process"]
fn crash_writer_child() {
    let (Ok(path), Ok(workload), Ok(seed)) = (
        std::env::var(CHILD_STORE_ENV),
        std::env::var(CHILD_WORKLOAD_ENV),
        std::env::var(CHILD_SEED_ENV),
    ) else {
        return;
    };
    // Any failure, in any thread, is reported to the parent at once (it
    // may kill the child before the test harness would say so).
    std::panic::set_hook(Box::new(|info| {
        println!("failed {}", info.to_string().replace('\n', " | "));
        // Not abort(): no core file in the working directory.
        std::process::exit(101);
    }));
    let workload = Workload::from_name(&workload).expect("a known workload");
    let seed: u64 = seed.parse().expect("a numeric child seed");
    println!("opening");
    let store = Arc::new(open_when_free(Path::new(&path)));
    println!("opened");
    // Commits write the position index's file every few entries (not
    // every 16,384), so that kills land between and inside those writes.
    let mut rng = StdRng::seed_from_u64(seed);
    store.set_positions_sync_every(if rng.gen_bool(0.25) {
        1
    } else {
        rng.gen_range(2..=40)
    });
    let seed = rng.r#gen();
    let deadline = Instant::now() + CHILD_TIME_LIMIT;
    match workload {
        Workload::OwnAndForeign => own_and_foreign(&store, deadline),
        Workload::ManyFeeds => sync_batches(&store, workload, 0..MANY_FEEDS, seed, deadline),
        Workload::Upgrade => sync_batches(
            &store,
            workload,
            UPGRADE_OLD_FEEDS..UPGRADE_OLD_FEEDS + UPGRADE_NEW_FEEDS,
            seed,
            deadline,
        ),
        Workload::Concurrent => concurrent(&store, seed, deadline),
        Workload::Reindex => reindex_forever(&store, deadline),
    }
}

/// Opens the store, waiting (a bounded time) while the parent's last check
/// still holds its lock: sled lets go of it in its own threads, a little
/// after the parent dropped the store.
fn open_when_free(path: &Path) -> Store {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match Store::open(path) {
            // `Store::open` itself waited a moment before saying so.
            Err(StoreError::Locked { .. }) if Instant::now() < deadline => {}
            opened => return opened.expect("the store opens"),
        }
    }
}

/// One feed as its only writer sees it.
struct ChildFeed {
    index: usize,
    key: SigningKey,
    sequence: u64,
    previous: MessageId,
}

impl ChildFeed {
    /// Feed `index` of `workload`, from where the store holds it.
    fn resume(store: &Store, workload: Workload, index: usize) -> ChildFeed {
        let head = store.head(&workload.feed(index)).expect("the head reads");
        ChildFeed {
            index,
            key: workload.key(index),
            sequence: head.map_or(0, |h| h.sequence),
            previous: head.map_or(MessageId::default(), |h| h.id),
        }
    }

    /// Signs the next message of this feed.
    fn sign_next(&mut self, content: &[u8]) -> Message {
        let msg = Message::sign(
            &self.key,
            self.sequence + 1,
            self.previous,
            self.sequence as i64,
            content,
        )
        .expect("the content fits");
        self.sequence += 1;
        self.previous = msg.id();
        msg
    }
}

/// The first 16 hex digits of a message id: enough to tell messages apart.
fn short_id(id: &MessageId) -> String {
    hex::encode(&id.0[..8])
}

/// Valid content of some kind that the store indexes: an RSVP, a name or a
/// contact, chosen at random.
fn random_content(rng: &mut StdRng, workload: Workload, sequence: u64) -> Vec<u8> {
    match rng.gen_range(0..3) {
        0 => {
            let status =
                [RsvpStatus::Going, RsvpStatus::Maybe, RsvpStatus::NotGoing][rng.gen_range(0..3)];
            let event = MessageId([rng.gen_range(7..10); 32]);
            rsvp(event, status, rng.gen_range(0..4), None).to_content_bytes()
        }
        1 => About {
            name: format!("name {sequence}"),
            description: None,
        }
        .to_content_bytes(),
        _ => Contact {
            contact: workload.feed(rng.gen_range(0..workload.feed_count())),
            following: rng.gen_bool(0.7),
            blocking: rng.gen_bool(0.1),
        }
        .to_content_bytes(),
    }
}

/// `plan <writer> <feed>:<sequence> …`: the heads the feeds will have if
/// the write about to start lands.
fn print_plan(writer: usize, heads: impl Iterator<Item = (usize, u64)>) {
    let heads: Vec<String> = heads.map(|(f, s)| format!("{f}:{s}")).collect();
    println!("plan {writer} {}", heads.join(" "));
}

/// `durable <writer> <feed>:<sequence>:<short id> …`: the write returned,
/// and these are now the feeds' heads.
fn print_durable(writer: usize, feeds: &[&ChildFeed]) {
    let heads: Vec<String> = feeds
        .iter()
        .map(|f| format!("{}:{}:{}", f.index, f.sequence, short_id(&f.previous)))
        .collect();
    println!("durable {writer} {}", heads.join(" "));
}

/// Publishes `content` as the next message of `feed`, reporting it.
fn publish_reported(store: &Store, writer: usize, feed: &mut ChildFeed, content: &[u8]) {
    print_plan(writer, [(feed.index, feed.sequence + 1)].into_iter());
    let report = store
        .publish(&feed.key, content, feed.sequence as i64)
        .expect("publish succeeds");
    let msg = report.message().expect("publish reports its message");
    assert_eq!(
        msg.sequence(),
        feed.sequence + 1,
        "publish chose the next sequence"
    );
    feed.sequence = msg.sequence();
    feed.previous = msg.id();
    print_durable(writer, &[feed]);
}

/// How a batch goes in.
#[derive(Clone, Copy)]
enum IngestPath {
    /// [`Store::ingest`]: signatures checked inside the write.
    Plain,
    /// Signatures checked first ([`Checked::new`]), then
    /// [`Store::ingest_checked`], as a sync connection does: the write is
    /// then almost all storage, so that more kills land in it.
    PreChecked,
}

/// Ingests, in one call, `counts[i]` new messages of `feeds[i]` for every
/// `i`, interleaved across the feeds as a sync delivers them, reporting it
/// (a feed with a count of 0 is not part of the write).
fn ingest_reported(
    store: &Store,
    writer: usize,
    path: IngestPath,
    feeds: &mut [&mut ChildFeed],
    counts: &[u64],
    content: &mut dyn FnMut(u64) -> Vec<u8>,
) {
    let mut batch = Vec::new();
    let longest = counts.iter().copied().max().unwrap_or(0);
    for step in 0..longest {
        for (feed, &count) in feeds.iter_mut().zip(counts) {
            if step < count {
                let body = content(feed.sequence + 1);
                batch.push(feed.sign_next(&body));
            }
        }
    }
    // The feeds now stand where they will if the batch lands.
    let written: Vec<&ChildFeed> = feeds
        .iter()
        .zip(counts)
        .filter(|(_, count)| **count > 0)
        .map(|(f, _)| &**f)
        .collect();
    let total = batch.len();
    let checked = match path {
        IngestPath::Plain => None,
        IngestPath::PreChecked => Some(Checked::new(batch.clone())),
    };
    print_plan(writer, written.iter().map(|f| (f.index, f.sequence)));
    let report = match checked {
        None => store.ingest(batch),
        Some(checked) => store.ingest_checked(checked),
    }
    .expect("ingest succeeds");
    assert!(
        report.rejected.is_none() && report.accepted.len() == total,
        "the batch is taken whole: {total} messages, {} accepted, {} duplicates, rejected {:?}",
        report.accepted.len(),
        report.duplicates,
        report.rejected.map(|r| r.error)
    );
    print_durable(writer, &written);
}

fn own_and_foreign(store: &Store, deadline: Instant) {
    let workload = Workload::OwnAndForeign;
    let mut own = ChildFeed::resume(store, workload, 0);
    let mut foreign = ChildFeed::resume(store, workload, 1);
    for round in 0..2_000u64 {
        if Instant::now() > deadline {
            break;
        }
        let content = format!(
            r#"{{"type":"rsvp","event":"{}","status":"going","guests":{}}}"#,
            MessageId([7; 32]),
            round % 5
        );
        publish_reported(store, 0, &mut own, content.as_bytes());
        ingest_reported(
            store,
            0,
            IngestPath::Plain,
            &mut [&mut foreign],
            &[FOREIGN_BATCH],
            &mut |seq| format!(r#"{{"type":"about","name":"n{round}-{seq}"}}"#).into_bytes(),
        );
    }
}

/// Ingests batches as a sync does to the feeds `written` of `workload`.
fn sync_batches(
    store: &Store,
    workload: Workload,
    written: std::ops::Range<usize>,
    seed: u64,
    deadline: Instant,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut feeds: Vec<ChildFeed> = written
        .map(|i| ChildFeed::resume(store, workload, i))
        .collect();
    let count = feeds.len();
    for _ in 0..1_000 {
        if Instant::now() > deadline {
            break;
        }
        // Mostly several feeds, a few messages each; one batch in four is
        // a message or two of one to three feeds (a sync's last batches),
        // one in ten a hundred or so messages of half the feeds or more (a
        // sync's first batches; fewer, as the parent's fsck re-verifies
        // every message after every kill, slowly in a debug build).
        let (feed_range, most_each) = match rng.gen_range(0..20) {
            0..=1 => (count / 2..=count, 4),
            2..=6 => (1..=3, 2),
            _ => (4..=12, 3),
        };
        let how_many = rng.gen_range(feed_range).min(count);
        let mut chosen = rand::seq::index::sample(&mut rng, count, how_many).into_vec();
        chosen.sort_unstable();
        let counts: Vec<u64> = chosen
            .iter()
            .map(|_| rng.gen_range(1..=most_each))
            .collect();
        let mut picked: Vec<&mut ChildFeed> = feeds
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| chosen.contains(i))
            .map(|(_, f)| f)
            .collect();
        let mut content_rng = StdRng::seed_from_u64(rng.r#gen());
        ingest_reported(
            store,
            0,
            IngestPath::PreChecked,
            &mut picked,
            &counts,
            &mut |seq| random_content(&mut content_rng, workload, seq),
        );
    }
}

fn concurrent(store: &Arc<Store>, seed: u64, deadline: Instant) {
    let workload = Workload::Concurrent;
    let threads: Vec<JoinHandle<()>> = (0..CONCURRENT_WRITERS)
        .map(|writer| {
            let store = Arc::clone(store);
            let mut rng = StdRng::seed_from_u64(seed ^ ((writer as u64) << 32));
            std::thread::spawn(move || {
                let mut own = ChildFeed::resume(&store, workload, writer);
                let first = CONCURRENT_WRITERS + 2 * writer;
                let mut a = ChildFeed::resume(&store, workload, first);
                let mut b = ChildFeed::resume(&store, workload, first + 1);
                for _ in 0..1_000 {
                    if Instant::now() > deadline {
                        break;
                    }
                    if rng.gen_bool(0.5) {
                        let body = random_content(&mut rng, workload, own.sequence + 1);
                        publish_reported(&store, writer, &mut own, &body);
                    } else {
                        let counts = [rng.gen_range(1..=4), rng.gen_range(0..=4)];
                        let mut content_rng = StdRng::seed_from_u64(rng.r#gen());
                        ingest_reported(
                            &store,
                            writer,
                            IngestPath::PreChecked,
                            &mut [&mut a, &mut b],
                            &counts,
                            &mut |seq| random_content(&mut content_rng, workload, seq),
                        );
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a writer thread finishes");
    }
}

fn reindex_forever(store: &Store, deadline: Instant) {
    for _ in 0..100_000 {
        if Instant::now() > deadline {
            break;
        }
        println!("reindex start");
        let entries = store.reindex().expect("reindex succeeds");
        println!("reindex done {entries}");
    }
}

// ---------------------------------------------------------------------------
// The parent: kills and checks.
// ---------------------------------------------------------------------------

/// Where a failure happened, and how to replay it.
#[derive(Clone, Copy)]
struct Ctx {
    test: &'static str,
    seed: u64,
    round: usize,
}

impl fmt::Display for Ctx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} round {} (seed {}; replay with {SEED_ENV}={} cargo test --test crash {})",
            self.test, self.round, self.seed, self.seed, self.test
        )
    }
}

/// The seed of a test: [`SEED_ENV`] if set, else a fresh one (printed, so
/// that a failure's output shows it).
/// What every kill test starts with: its clock, its seed (printed) and
/// the generator seeded from it, and a directory for its stores.
struct Begun {
    started: Instant,
    seed: u64,
    rng: StdRng,
    dir: tempfile::TempDir,
}

fn begin(test: &'static str) -> Begun {
    let seed = test_seed(test);
    Begun {
        started: Instant::now(),
        seed,
        rng: StdRng::seed_from_u64(seed),
        dir: tempfile::tempdir().expect("a temporary directory"),
    }
}

fn test_seed(test: &'static str) -> u64 {
    let seed = match std::env::var(SEED_ENV) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={text} is not a number")),
        Err(_) => rand::random(),
    };
    eprintln!("{test}: seed {seed} (replay with {SEED_ENV}={seed})");
    seed
}

/// One line the child printed.
#[derive(Debug, PartialEq, Eq)]
enum Report {
    /// The child is about to open the store.
    Opening,
    /// The store opened.
    Opened,
    /// Writer `writer` is about to write; if it lands, these feeds have
    /// these heads.
    Plan {
        writer: usize,
        heads: Vec<(usize, u64)>,
    },
    /// Writer `writer`'s write returned: these feeds now have these heads
    /// (with the heads' short ids).
    Durable {
        writer: usize,
        heads: Vec<(usize, u64, String)>,
    },
    ReindexStart,
    ReindexDone,
    /// The child failed (it panicked, with this message).
    Failed(String),
}

impl Report {
    /// The report on a line, if it is one (the test harness prints others).
    fn parse(line: &str) -> Option<Report> {
        let mut words = line.split_whitespace();
        let tag = words.next()?;
        let report = match tag {
            "opening" => Report::Opening,
            "opened" => Report::Opened,
            "failed" => Report::Failed(line["failed".len()..].trim().to_owned()),
            "reindex" => match words.next()? {
                "start" => Report::ReindexStart,
                "done" => Report::ReindexDone,
                _ => return None,
            },
            "plan" | "durable" => {
                let writer = words.next()?.parse().ok()?;
                let mut plan = Vec::new();
                let mut durable = Vec::new();
                for word in words {
                    let mut parts = word.split(':');
                    let feed = parts.next()?.parse().ok()?;
                    let sequence = parts.next()?.parse().ok()?;
                    match parts.next() {
                        Some(id) => durable.push((feed, sequence, id.to_owned())),
                        None => plan.push((feed, sequence)),
                    }
                }
                if tag == "plan" {
                    Report::Plan {
                        writer,
                        heads: plan,
                    }
                } else {
                    Report::Durable {
                        writer,
                        heads: durable,
                    }
                }
            }
            _ => return None,
        };
        Some(report)
    }
}

/// What the store must hold, from what the last check found and what the
/// child reported since.
#[derive(Default)]
struct Model {
    /// Per feed: a sequence the store must hold exactly (unless an
    /// in-flight write of the feed landed), and the id (or its hex prefix)
    /// of the message there.
    heads: BTreeMap<usize, (u64, String)>,
    /// Per writer: the heads its unfinished write would leave.
    in_flight: BTreeMap<usize, Vec<(usize, u64)>>,
}

impl Model {
    fn apply(&mut self, report: &Report, ctx: Ctx) {
        match report {
            Report::Plan { writer, heads } => {
                self.in_flight.insert(*writer, heads.clone());
            }
            Report::Durable { writer, heads } => {
                let planned = self.in_flight.remove(writer);
                let landed: Vec<(usize, u64)> = heads.iter().map(|(f, s, _)| (*f, *s)).collect();
                assert_eq!(
                    planned.as_ref(),
                    Some(&landed),
                    "{ctx}: the child's write {writer} did not do what it planned"
                );
                for (feed, sequence, id) in heads {
                    self.heads.insert(*feed, (*sequence, id.clone()));
                }
            }
            Report::Failed(failure) => panic!("{ctx}: the child failed: {failure}"),
            Report::Opening | Report::Opened | Report::ReindexStart | Report::ReindexDone => {}
        }
    }

    /// Checks the store after a kill: it opens, fsck finds nothing, every
    /// feed holds exactly what was durable or, for a write in flight, what
    /// that whole write adds; every message reads back by feed and by id.
    /// Then the model becomes what the store holds. Returns the store and
    /// how many writes in flight had landed.
    fn check(&mut self, path: &Path, workload: Workload, ctx: Ctx) -> (Store, usize) {
        let store = Store::open(path)
            .unwrap_or_else(|e| panic!("{ctx}: the store does not open after the kill: {e}"));
        let fsck = store
            .fsck()
            .unwrap_or_else(|e| panic!("{ctx}: fsck fails after the kill: {e}"));
        assert!(
            fsck.problems.is_empty() && fsck.damaged.is_empty(),
            "{ctx}: fsck finds {} problems after the kill, first {:?}",
            fsck.problems.len(),
            &fsck.problems[..fsck.problems.len().min(5)]
        );

        let mut actual = BTreeMap::new();
        for index in 0..workload.feed_count() {
            let head = store
                .head(&workload.feed(index))
                .unwrap_or_else(|e| panic!("{ctx}: feed {index}'s head does not read: {e}"));
            actual.insert(index, head.map_or(0, |h| h.sequence));
        }
        let held_feeds = store
            .feeds()
            .unwrap_or_else(|e| panic!("{ctx}: the feed list does not read: {e}"));
        assert_eq!(
            held_feeds.len(),
            actual.values().filter(|&&s| s > 0).count(),
            "{ctx}: the store holds feeds nobody wrote"
        );

        // Each feed: exactly the durable head, or the head of its writer's
        // write in flight; and each write in flight all or nothing.
        let mut writes_landed = 0;
        for (writer, plan) in &self.in_flight {
            let landed: Vec<bool> = plan
                .iter()
                .map(|(feed, sequence)| actual[feed] == *sequence)
                .collect();
            assert!(
                landed.iter().all(|&l| l) || !landed.iter().any(|&l| l),
                "{ctx}: part of writer {writer}'s batch landed: planned {plan:?}, the store holds {:?}",
                plan.iter()
                    .map(|(feed, _)| (feed, actual[feed]))
                    .collect::<Vec<_>>()
            );
            writes_landed += usize::from(landed.iter().all(|&l| l));
        }
        for (&feed, &held) in &actual {
            let durable = self.heads.get(&feed).map_or(0, |(s, _)| *s);
            let in_flight = self
                .in_flight
                .values()
                .flatten()
                .any(|&(f, s)| f == feed && s == held);
            assert!(
                held >= durable,
                "{ctx}: feed {feed} lost durable messages: it holds #{held}, #{durable} was reported durable"
            );
            assert!(
                held == durable || in_flight,
                "{ctx}: feed {feed} holds #{held}, but only #{durable} was written (and no write in flight ends there)"
            );
            if let Some((sequence, id)) = self.heads.get(&feed).filter(|(s, _)| *s > 0) {
                let msg = store
                    .feed_message(&workload.feed(feed), *sequence)
                    .unwrap_or_else(|e| panic!("{ctx}: feed {feed} #{sequence} does not read: {e}"))
                    .unwrap_or_else(|| panic!("{ctx}: feed {feed} #{sequence} is missing"));
                assert!(
                    hex::encode(msg.id().0).starts_with(id.as_str()),
                    "{ctx}: feed {feed} #{sequence} is another message than the one reported"
                );
            }
        }

        // Every message reads back, in order, by feed and by id.
        let mut heads = BTreeMap::new();
        for (&feed, &held) in &actual {
            let author = workload.feed(feed);
            let mut expected_sequence = 1;
            let mut last = None;
            for item in store.feed_messages(&author, 1) {
                let msg = item.unwrap_or_else(|e| {
                    panic!("{ctx}: feed {feed} #{expected_sequence} does not read: {e}")
                });
                assert_eq!(
                    msg.sequence(),
                    expected_sequence,
                    "{ctx}: feed {feed} skips a sequence"
                );
                let by_id = store
                    .message(&msg.id())
                    .unwrap_or_else(|e| {
                        panic!("{ctx}: feed {feed} #{expected_sequence} does not read by id: {e}")
                    })
                    .unwrap_or_else(|| {
                        panic!("{ctx}: feed {feed} #{expected_sequence} is not found by its id")
                    });
                assert!(
                    by_id == msg,
                    "{ctx}: feed {feed} #{expected_sequence}: its id finds another message"
                );
                last = Some(msg.id());
                expected_sequence += 1;
            }
            assert_eq!(
                expected_sequence - 1,
                held,
                "{ctx}: feed {feed}'s messages do not reach its head"
            );
            if let Some(id) = last {
                heads.insert(feed, (held, hex::encode(id.0)));
            }
        }
        self.heads = heads;
        self.in_flight.clear();
        (store, writes_landed)
    }
}

/// Where the parent kills: once `after` reports have come that `counts`
/// picks (0: from the start), and then `delay` later.
struct KillPlan {
    counts: fn(&Report) -> bool,
    after: usize,
    delay: Duration,
}

impl KillPlan {
    /// A kill after the store opened and `writes` writes were reported
    /// durable, `delay` into whatever the writer does next.
    fn after_writes(writes: usize, delay: Duration) -> KillPlan {
        KillPlan {
            counts: |r| matches!(r, Report::Opened | Report::Durable { .. }),
            after: 1 + writes,
            delay,
        }
    }

    /// A kill `delay` after the child announced write number `write` (from
    /// 1) of this run: with a delay shorter than a write, inside it.
    fn inside_write(write: usize, delay: Duration) -> KillPlan {
        KillPlan {
            counts: |r| matches!(r, Report::Plan { .. }),
            after: write,
            delay,
        }
    }

    /// A kill `delay` after the child starts to open the store: with a
    /// delay shorter than opening takes, while it opens (and recovers the
    /// store from the last kill).
    fn while_opening(delay: Duration) -> KillPlan {
        KillPlan {
            counts: |r| *r == Report::Opening,
            after: 1,
            delay,
        }
    }
}

/// What the child printed before it died, and how it ended.
struct Killed {
    /// Every report, with when it came.
    reports: Vec<(Instant, Report)>,
    /// Whether the child was still running when it was killed.
    was_running: bool,
}

impl Killed {
    /// Whether the child had opened the store.
    fn opened(&self) -> bool {
        self.reports.iter().any(|(_, r)| *r == Report::Opened)
    }

    /// How long the child took to open the store, if it got that far.
    fn open_time(&self) -> Option<Duration> {
        let at = |which: Report| {
            self.reports
                .iter()
                .find(|(_, r)| *r == which)
                .map(|(at, _)| *at)
        };
        Some(at(Report::Opened)? - at(Report::Opening)?)
    }

    /// The mean time from a `plan` to its `durable`: how long the store
    /// takes to write (not counting the work before, such as signing).
    fn mean_write_time(&self) -> Option<Duration> {
        let mut planned: BTreeMap<usize, Instant> = BTreeMap::new();
        let mut writes: Vec<Duration> = Vec::new();
        for (at, report) in &self.reports {
            match report {
                Report::Plan { writer, .. } => {
                    planned.insert(*writer, *at);
                }
                Report::Durable { writer, .. } => {
                    writes.extend(planned.remove(writer).map(|start| *at - start));
                }
                _ => {}
            }
        }
        let count = u32::try_from(writes.len()).ok().filter(|&n| n > 0)?;
        Some(writes.iter().sum::<Duration>() / count)
    }

    /// The mean time between two reports that `which` picks (how long one
    /// write or one reindex takes), if there were two.
    fn mean_gap(&self, which: fn(&Report) -> bool) -> Option<Duration> {
        let times: Vec<Instant> = self
            .reports
            .iter()
            .filter(|(_, r)| which(r))
            .map(|(at, _)| *at)
            .collect();
        let (first, last) = (times.first()?, times.last()?);
        let gaps = u32::try_from(times.len() - 1).ok().filter(|&n| n > 0)?;
        Some((*last - *first) / gaps)
    }
}

/// Runs `workload` on the store at `path` in a child process and kills it
/// as `plan` says.
fn run_and_kill(
    workload: Workload,
    path: &Path,
    child_seed: u64,
    plan: &KillPlan,
    ctx: Ctx,
) -> Killed {
    let exe = std::env::current_exe().expect("the test binary's path");
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(["--exact", "crash_writer_child", "--ignored", "--nocapture"])
        .env(CHILD_STORE_ENV, path)
        .env(CHILD_WORKLOAD_ENV, workload.name())
        .env(CHILD_SEED_ENV, child_seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child starts");
    let (incoming, reader) = read_reports(child.stdout.take().expect("piped stdout"));
    let stderr = child.stderr.take().expect("piped stderr");
    let stderr = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut stderr = stderr;
        let _ = (&mut stderr).take(STDERR_LIMIT).read_to_end(&mut kept);
        let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        String::from_utf8_lossy(&kept).into_owned()
    });

    let mut reports = Vec::new();
    let mut counted = 0;
    let wait_until = started + LINE_WAIT;
    while counted < plan.after {
        let left = wait_until.saturating_duration_since(Instant::now());
        match incoming.recv_timeout(left) {
            Ok((at, report)) => {
                counted += usize::from((plan.counts)(&report));
                reports.push((at, report));
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
    std::thread::sleep(plan.delay);
    let exited: Option<ExitStatus> = child.try_wait().expect("the child's state");
    if exited.is_none() {
        // SIGKILL on Unix: no destructors, no flush.
        child.kill().expect("the child can be killed");
    }
    child.wait().expect("the child is reaped");
    // Whatever it printed before it died was reported, and counts.
    reader.join().expect("the report reader ends");
    reports.extend(incoming.try_iter());
    let stderr = stderr.join().unwrap_or_default();
    for (_, report) in &reports {
        if let Report::Failed(failure) = report {
            panic!("{ctx}: the child failed: {failure}\n{stderr}");
        }
    }
    if let Some(status) = exited {
        assert!(
            status.success(),
            "{ctx}: the writer failed before it was killed ({status}):\n{stderr}"
        );
    }
    Killed {
        reports,
        was_running: exited.is_none(),
    }
}

/// Reads the child's reports from `stdout` in a thread, each with when it
/// came, until the end. Only whole lines count: a last line without its
/// newline (the child was killed while printing it) is dropped.
fn read_reports(
    stdout: std::process::ChildStdout,
) -> (Receiver<(Instant, Report)>, JoinHandle<()>) {
    let (send, receive) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match stdout.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if !line.ends_with('\n') => break,
                Ok(_) => {
                    let Some(report) = Report::parse(&line) else {
                        continue; // the test harness's own lines
                    };
                    if send.send((Instant::now(), report)).is_err() {
                        break;
                    }
                }
            }
        }
    });
    (receive, reader)
}

/// A running estimate of how long something takes (a write, opening the
/// store), so that a random delay of up to about that long lands inside it.
struct Estimate(Duration);

impl Estimate {
    fn learn(&mut self, took: Option<Duration>) {
        if let Some(took) = took {
            self.0 =
                ((self.0 * 3 + took) / 4).clamp(Duration::from_millis(2), Duration::from_secs(2));
        }
    }

    /// A random delay of up to a little more than the estimate.
    fn random_delay(&self, rng: &mut StdRng) -> Duration {
        self.0.mul_f64(rng.gen_range(0.0..1.2))
    }
}

/// The length of the store's message log (0 if there is none yet): only
/// for [`KillStats`], the checks do not depend on the store's files.
fn log_len(store: &Path) -> u64 {
    std::fs::metadata(store.join("messages.log")).map_or(0, |m| m.len())
}

/// Where the kills of one test landed.
#[derive(Default)]
struct KillStats {
    kills: usize,
    /// Kills of a child still running (the others had ended by themselves).
    running: usize,
    /// Kills before the child had opened the store.
    before_open: usize,
    /// Kills while a write (or a reindex, or the open) was in flight.
    in_flight: usize,
    /// Writes in flight at a kill that the store holds afterwards.
    landed: usize,
    /// Kills that left `messages.log` longer than what the store kept: the
    /// kill came after a write reached the log and before it counted.
    log_tail_dropped: usize,
    /// Writes reported durable, in all.
    durable_writes: usize,
    /// Time spent checking the store after the kills (fsck most of it).
    checking: Duration,
}

impl KillStats {
    /// Counts one kill; `log_before` and `log_after` are the length of
    /// `messages.log` after the kill and after the store was opened again.
    fn count(
        &mut self,
        killed: &Killed,
        in_flight: bool,
        landed: usize,
        (log_before, log_after): (u64, u64),
    ) {
        self.kills += 1;
        self.landed += landed;
        self.log_tail_dropped += usize::from(log_before > log_after);
        self.running += usize::from(killed.was_running);
        self.before_open += usize::from(!killed.opened());
        self.in_flight += usize::from(in_flight);
        self.durable_writes += killed
            .reports
            .iter()
            .filter(|(_, r)| matches!(r, Report::Durable { .. }))
            .count();
    }

    fn print(&self, test: &str, started: Instant, what: &str, took: &Estimate) {
        eprintln!(
            "{test} ({:.1?}, {:.1?} of it checking): {} kills ({} of a running child): {} before the store opened, {} inside {what}; {} writes reported durable, {} more landed; {} left a log tail that was dropped; {what} takes about {:?}",
            started.elapsed(),
            self.checking,
            self.kills,
            self.running,
            self.before_open,
            self.in_flight,
            self.durable_writes,
            self.landed,
            self.log_tail_dropped,
            took.0
        );
    }
}

/// How many kills, and where.
struct Schedule {
    kills: usize,
    /// A new store after this many kills (fsck re-verifies the whole store
    /// after each, which is slow in debug builds).
    kills_per_store: usize,
    /// At most this many writes are reported durable before a kill.
    max_writes: usize,
}

/// Kills writers of `workload` as `schedule` says, at one of three kinds
/// of random points: half the time inside a write (a random delay shorter
/// than a write after the writer announced it), a third of the time after
/// a random number of durable writes and a random delay of up to one
/// writer's step (signing, checking and writing), one time in six while
/// the store opens (and recovers from the last kill).
fn kill_writers(test: &'static str, workload: Workload, schedule: Schedule) {
    let Schedule {
        kills,
        kills_per_store,
        max_writes,
    } = schedule;
    let Begun {
        started,
        seed,
        mut rng,
        dir,
    } = begin(test);
    let mut step_time = Estimate(Duration::from_millis(50));
    let mut write_time = Estimate(Duration::from_millis(20));
    let mut open_time = Estimate(Duration::from_millis(50));
    let mut model = Model::default();
    let mut path = PathBuf::new();
    let mut stats = KillStats::default();
    for round in 0..kills {
        let ctx = Ctx { test, seed, round };
        if round % kills_per_store == 0 {
            path = dir.path().join(format!("store-{round}"));
            model = Model::default();
        }
        let plan = match rng.gen_range(0..6) {
            0 => KillPlan::while_opening(open_time.random_delay(&mut rng)),
            1..=2 => KillPlan::after_writes(
                rng.gen_range(0..=max_writes),
                step_time.random_delay(&mut rng),
            ),
            _ => KillPlan::inside_write(
                rng.gen_range(1..=max_writes + 1),
                write_time.0.mul_f64(rng.gen_range(0.0..1.0)),
            ),
        };
        let killed = run_and_kill(workload, &path, rng.r#gen(), &plan, ctx);
        step_time.learn(killed.mean_gap(|r| matches!(r, Report::Durable { .. })));
        write_time.learn(killed.mean_write_time());
        open_time.learn(killed.open_time());
        for (_, report) in &killed.reports {
            model.apply(report, ctx);
        }
        let in_flight = !model.in_flight.is_empty();
        let log_before = log_len(&path);
        let checking = Instant::now();
        let (store, landed) = model.check(&path, workload, ctx);
        drop(store);
        stats.checking += checking.elapsed();
        stats.count(&killed, in_flight, landed, (log_before, log_len(&path)));
        if workload == Workload::OwnAndForeign {
            // Batches are atomic: a foreign head is always at a batch
            // boundary.
            let foreign = model.heads.get(&1).map_or(0, |(s, _)| *s);
            assert_eq!(foreign % FOREIGN_BATCH, 0, "{ctx}: half a batch landed");
        }
    }
    stats.print(test, started, "a write", &write_time);
    assert!(
        stats.durable_writes > 0,
        "no write was ever reported durable"
    );
}

#[test]
fn killed_writers_leave_a_consistent_store() {
    kill_writers(
        "killed_writers_leave_a_consistent_store",
        Workload::OwnAndForeign,
        Schedule {
            kills: 8,
            kills_per_store: 4,
            max_writes: 12,
        },
    );
}

#[test]
fn killed_while_ingesting_many_feeds() {
    kill_writers(
        "killed_while_ingesting_many_feeds",
        Workload::ManyFeeds,
        Schedule {
            kills: 36,
            kills_per_store: 3,
            max_writes: 3,
        },
    );
}

#[test]
fn killed_while_writing_concurrently() {
    kill_writers(
        "killed_while_writing_concurrently",
        Workload::Concurrent,
        Schedule {
            kills: 32,
            kills_per_store: 4,
            max_writes: 10,
        },
    );
}

/// What the store's indexes answer about the reindex store's feeds: must
/// not change when a reindex is killed.
fn index_view(store: &Store, ctx: Ctx) -> String {
    use std::fmt::Write as _;
    fn answer<T>(result: Result<T, StoreError>, ctx: Ctx) -> T {
        result.unwrap_or_else(|e| panic!("{ctx}: a query fails: {e}"))
    }
    let mut view = String::new();
    for event in answer(store.all_events(), ctx) {
        let tally = answer(store.tally(&event.id), ctx);
        let rsvps = answer(store.rsvps(&event.id), ctx);
        writeln!(view, "{event:?}\n{tally:?}\n{rsvps:?}").expect("writing to a string");
    }
    for index in 0..REINDEX_FEEDS {
        let feed = Workload::Reindex.feed(index);
        let about = answer(store.about(&feed), ctx);
        let contacts = answer(store.contacts(&feed), ctx);
        writeln!(view, "{about:?}\n{contacts:?}").expect("writing to a string");
    }
    view
}

/// A small community's messages, for feeds `0..feeds` of `workload`
/// starting from nothing: two feeds announce two events each; every feed
/// names itself, answers every event (some twice) and follows two others.
/// Returns the messages (each feed's in order) and the feeds' heads (as
/// [`Model::heads`]).
fn community(
    workload: Workload,
    feeds: usize,
    rng: &mut StdRng,
) -> (Vec<Message>, BTreeMap<usize, (u64, String)>) {
    let mut feeds: Vec<ChildFeed> = (0..feeds)
        .map(|index| ChildFeed {
            index,
            key: workload.key(index),
            sequence: 0,
            previous: MessageId::default(),
        })
        .collect();
    let count = feeds.len();
    let mut messages = Vec::new();
    let mut events = Vec::new();
    for feed in feeds.iter_mut().take(2) {
        for n in 0..2 {
            let msg = feed.sign_next(&event_content(
                &format!("gathering {} {n}", feed.index),
                None,
            ));
            events.push(msg.id());
            messages.push(msg);
        }
    }
    for feed in &mut feeds {
        let name = About {
            name: format!("member {}", feed.index),
            description: None,
        };
        messages.push(feed.sign_next(&name.to_content_bytes()));
        let answers = events.len() + rng.gen_range(0..=2);
        for n in 0..answers {
            let status =
                [RsvpStatus::Going, RsvpStatus::Maybe, RsvpStatus::NotGoing][rng.gen_range(0..3)];
            let answer = rsvp(events[n % events.len()], status, rng.gen_range(0..3), None);
            messages.push(feed.sign_next(&answer.to_content_bytes()));
        }
        for step in [1, 3] {
            let follow = Contact {
                contact: workload.feed((feed.index + step) % count),
                following: true,
                blocking: false,
            };
            messages.push(feed.sign_next(&follow.to_content_bytes()));
        }
    }
    let heads = feeds
        .iter()
        .map(|f| (f.index, (f.sequence, hex::encode(f.previous.0))))
        .collect();
    (messages, heads)
}

#[test]
fn killed_while_reindexing() {
    const TEST: &str = "killed_while_reindexing";
    const KILLS: usize = 26;
    let Begun {
        started,
        seed,
        mut rng,
        dir,
    } = begin(TEST);
    let path = dir.path().join("store");
    let setup = Ctx {
        test: TEST,
        seed,
        round: 0,
    };
    let (held, view, mut reindex_time) = {
        let store = Store::open(&path).expect("the store opens");
        let (messages, held) = community(Workload::Reindex, REINDEX_FEEDS, &mut rng);
        let total = messages.len();
        let report = store.ingest(messages).expect("the reindex store fills");
        assert_eq!(report.accepted.len(), total, "every message is taken");
        let started = Instant::now();
        let entries = store.reindex().expect("reindex succeeds");
        // At least a name and two contacts per feed, and the events.
        assert!(
            entries >= 3 * REINDEX_FEEDS + 4,
            "the store has indexes to rebuild: {entries} entries"
        );
        (held, index_view(&store, setup), Estimate(started.elapsed()))
    };
    let mut model = Model {
        heads: held.clone(),
        in_flight: BTreeMap::new(),
    };
    drop(model.check(&path, Workload::Reindex, setup));

    let mut open_time = Estimate(Duration::from_millis(50));
    let mut stats = KillStats::default();
    for round in 0..KILLS {
        let ctx = Ctx {
            test: TEST,
            seed,
            round,
        };
        // Mostly while it reindexes (it does nothing else once the store
        // is open); one kill in four while the store opens.
        let plan = if rng.gen_bool(0.25) {
            KillPlan::while_opening(open_time.random_delay(&mut rng))
        } else {
            KillPlan::after_writes(0, reindex_time.0.mul_f64(rng.gen_range(0.0..4.0)))
        };
        let killed = run_and_kill(Workload::Reindex, &path, rng.r#gen(), &plan, ctx);
        open_time.learn(killed.open_time());
        reindex_time.learn(killed.mean_gap(|r| *r == Report::ReindexDone));
        let in_reindex = matches!(killed.reports.last(), Some((_, Report::ReindexStart)));
        let log_before = log_len(&path);
        let checking = Instant::now();
        let (store, _) = model.check(&path, Workload::Reindex, ctx);
        stats.checking += checking.elapsed();
        stats.count(&killed, in_reindex, 0, (log_before, log_len(&path)));
        assert_eq!(model.heads, held, "{ctx}: the feeds changed");
        assert_eq!(
            index_view(&store, ctx),
            view,
            "{ctx}: the indexes answer differently after the kill"
        );
    }
    stats.print(TEST, started, "a reindex", &reindex_time);
}

#[test]
fn killed_while_upgrading_a_format_2_store() {
    kill_upgrades(
        "killed_while_upgrading_a_format_2_store",
        |path, messages| {
            common::format2::write_store(path, messages, &[]);
        },
    );
}

#[test]
fn killed_while_upgrading_a_format_3_store() {
    kill_upgrades(
        "killed_while_upgrading_a_format_3_store",
        |path, messages| {
            common::format3::write_store(path, messages);
        },
    );
}

/// Kills a writer 12 times while it opens (and so upgrades) an old store
/// that `write_old` writes, or once it writes to the upgraded store.
/// Index revision 4 moves each event's tally into the head of its
/// answers on open, a chunk at a time (no rebuild): a kill leaves some
/// moved and some not, and the next open moves the rest.
#[test]
fn killed_while_moving_the_tallies_of_index_revision_3() {
    kill_upgrades(
        "killed_while_moving_the_tallies_of_index_revision_3",
        |path, messages| {
            common::format3::write_revision3_store(path, messages);
        },
    );
}

fn kill_upgrades(test: &'static str, write_old: impl Fn(&Path, &[Message])) {
    const KILLS: usize = 12;
    let Begun {
        started,
        seed,
        mut rng,
        dir,
    } = begin(test);
    let mut open_time = Estimate(Duration::from_millis(50));
    let mut step_time = Estimate(Duration::from_millis(50));
    let mut stats = KillStats::default();
    // A store upgrades once, and the check after a kill finishes the
    // upgrade: a new old store for every kill.
    for round in 0..KILLS {
        let ctx = Ctx { test, seed, round };
        let path = dir.path().join(format!("store-{round}"));
        let (messages, heads) = community(Workload::Upgrade, UPGRADE_OLD_FEEDS, &mut rng);
        write_old(&path, &messages);
        let mut model = Model {
            heads,
            in_flight: BTreeMap::new(),
        };
        // Mostly while the store opens, late in it, where it upgrades
        // (first comes opening sled); else once it writes.
        let plan = if rng.gen_bool(0.75) {
            KillPlan::while_opening(open_time.0.mul_f64(rng.gen_range(0.5..1.2)))
        } else {
            KillPlan::after_writes(rng.gen_range(0..=2), step_time.random_delay(&mut rng))
        };
        let killed = run_and_kill(Workload::Upgrade, &path, rng.r#gen(), &plan, ctx);
        open_time.learn(killed.open_time());
        step_time.learn(killed.mean_gap(|r| matches!(r, Report::Durable { .. })));
        for (_, report) in &killed.reports {
            model.apply(report, ctx);
        }
        let opening = killed.reports.iter().any(|(_, r)| *r == Report::Opening);
        let in_open = opening && !killed.opened();
        let log_before = log_len(&path);
        let checking = Instant::now();
        let (store, landed) = model.check(&path, Workload::Upgrade, ctx);
        drop(store);
        stats.checking += checking.elapsed();
        stats.count(&killed, in_open, landed, (log_before, log_len(&path)));
    }
    stats.print(test, started, "the open", &open_time);
}
