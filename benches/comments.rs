//! Comments (issue 22): the event page of a long thread, and a comment
//! reaching another node's open page.
//!
//! - **First page of a 10,000-comment thread** (target p99 ≤ 50 ms server
//!   time): a home made by `potluck init`, opened in this process, whose
//!   store holds an event with 10,000 comments from 300 feeds (each named
//!   by an `about`), signed here and ingested in batches: a third are
//!   replies, one in twenty has a link, each names the latest comments its
//!   author had seen; then 3 % are edited and 1 % deleted by their
//!   authors, and 1 % hidden by the organizer. Its page is served by
//!   `potluck::web::serve` on a loopback port and `GET /e/{key}` is timed
//!   by a client here, from connect to the last byte (so the figure is
//!   client-observed on 127.0.0.1: server time plus a loopback round
//!   trip). The same for an event without comments in the same store (the
//!   ratio), and for the 100th page of the thread (`?after=`, the page
//!   cursor). `App::thread` and `App::links_shared` are timed on their own
//!   too, and `potluck comments EVENT` (spawn to exit) once the page is
//!   closed.
//! - **A comment on another node's open page** (target p99 ≤ 1 s): two
//!   `potluck serve` nodes on 127.0.0.1, B with `--peer A`, both holding
//!   A's events (a new event every 40 samples, so that each comment lands
//!   on the thread's first page, the one an open page shows). A client holds B's live stream (`GET /events`, what the
//!   page's script listens to); each sample spawns `potluck comment EVENT
//!   TEXT` on A's home (handed to A's node through its control socket, the
//!   path a person's command takes) and ends when the stream has named
//!   the event *and* a fresh `GET /e/…` of B's page (what the script
//!   fetches then) contains the comment's text. The script's fixed 100 ms
//!   pause before fetching is added to every sample. The CLI's spawn to
//!   exit and `potluck whoami` (spawn and the control round trip, no
//!   publish) are printed for reference.
//!
//! Run: `cargo bench --bench comments` (env `COMMENTS_THREAD`,
//! `COMMENTS_FEEDS`, `COMMENTS_REQUESTS`, `COMMENTS_LIVE` to resize;
//! `cargo test --benches` runs a tiny size).

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use potluck::app::{Access, App, Past, ThreadPage};
use potluck::content::{
    About, Comment, CommentDelete, CommentEdit, CommentHide, Event, EventTime, KnownContent,
    MAX_SEEN,
};
use potluck::feed::message::{Message, MessageId};
use potluck::home::Home;
use potluck::web::{WebSettings, event_key, event_path};

use common::{Serve, env_or, loadavg, potluck, quick, run, summary, sync_feed_key, wait_closed};

/// The page script's pause between hearing of a change and fetching.
const SCRIPT_DELAY: Duration = Duration::from_millis(100);
/// Longest wait for one comment to show on the other node's page.
const REACH: Duration = Duration::from_secs(10);
/// Longest run of one CLI command, and of a node's start.
const CLI_LIMIT: Duration = Duration::from_secs(60);
/// Comments per event in the live samples (a thread page holds 50).
const PER_EVENT: usize = 40;
/// Longest wait for one HTTP answer.
const HTTP_LIMIT: Duration = Duration::from_secs(10);

fn main() {
    let quick = quick();
    println!("comments: load average {}", loadavg());
    long_thread(quick);
    live_comment(quick);
    println!("comments: load average {}", loadavg());
}

/// `GET path` from the page at `addr` over a new connection (HTTP/1.0,
/// so the body comes whole, not chunked): the status and the body.
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_LIMIT).expect("connect to the page");
    stream
        .set_read_timeout(Some(HTTP_LIMIT))
        .expect("a timeout");
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: text/html\r\n\r\n"
    )
    .expect("send the request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read the answer");
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `count` GETs of `path`, each asserted 200; their times.
fn time_gets(addr: SocketAddr, path: &str, count: usize) -> Vec<Duration> {
    (0..count)
        .map(|_| {
            let started = Instant::now();
            let (status, _) = http_get(addr, path);
            let took = started.elapsed();
            assert_eq!(status, 200, "GET {path}");
            took
        })
        .collect()
}

/// A free loopback port for a page (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Deterministic choices.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// A feed signing its messages in order.
struct Writer {
    key: SigningKey,
    sequence: u64,
    previous: MessageId,
}

impl Writer {
    fn sign(&mut self, at: i64, content: &[u8]) -> Message {
        self.sequence += 1;
        let msg =
            Message::sign(&self.key, self.sequence, self.previous, at, content).expect("sign");
        self.previous = msg.id();
        msg
    }
}

/// Counts of what [`fill_thread`] wrote.
struct Thread {
    comments: usize,
    replies: usize,
    links: usize,
    edits: usize,
    deletes: usize,
    hides: usize,
}

/// What a thread is made of.
enum Mix {
    /// A neighbourhood's: one comment in twenty with a link, 3 % edited,
    /// 1 % deleted, 1 % hidden by the organizer (this node).
    Usual,
    /// Link spam cleaned up: every comment has a link and 99 % are hidden
    /// by the event's organizer, this feed (hidden link comments stay in
    /// the thread's index of comments with links; deleted ones leave it).
    Spam(Box<Writer>),
}

/// Signs `comments` comments on `event` from `feeds` new feeds (numbered
/// from `first_feed`), with their names, replies, links, edits and
/// deletions as `mix` says, ingests them into `app`'s store, and hides
/// some as the organizer.
fn fill_thread(
    app: &App,
    event: MessageId,
    (first_feed, feeds): (u64, usize),
    comments: usize,
    mut mix: Mix,
    now: i64,
) -> Thread {
    let mut rng = Lcg(22);
    let mut writers: Vec<Writer> = (0..feeds)
        .map(|f| Writer {
            key: sync_feed_key(first_feed + f as u64),
            sequence: 0,
            previous: MessageId::default(),
        })
        .collect();
    let start = now - 30 * 86_400_000;
    let mut batch = Vec::new();
    for (f, w) in writers.iter_mut().enumerate() {
        let about = About {
            name: format!("Neighbour {f}"),
            description: None,
        };
        batch.push(w.sign(start, &about.to_content_bytes()));
    }
    let ingest = |batch: &mut Vec<Message>| {
        let (report, _) = app.ingest(std::mem::take(batch)).expect("ingest");
        assert!(report.rejected.is_none(), "a message was rejected");
    };
    let mut ids: Vec<(MessageId, usize)> = Vec::with_capacity(comments);
    let mut thread = Thread {
        comments,
        replies: 0,
        links: 0,
        edits: 0,
        deletes: 0,
        hides: 0,
    };
    for n in 0..comments {
        let author = rng.below(feeds);
        // A third answer one of the last 200 comments.
        let reply = (!ids.is_empty() && rng.below(3) == 0)
            .then(|| ids[ids.len() - 1 - rng.below(ids.len().min(200))].0);
        thread.replies += usize::from(reply.is_some());
        // What its author had seen: the thread up to a few comments ago.
        let seen_to = ids.len().saturating_sub(rng.below(4));
        let seen = ids[seen_to.saturating_sub(MAX_SEEN)..seen_to]
            .iter()
            .map(|(id, _)| *id)
            .collect();
        let mut text = format!(
            "Comment {n}: I can bring {} for {} people, and a few chairs if anyone needs them.",
            ["soup", "bread", "a salad", "dessert", "lemonade"][rng.below(5)],
            2 + rng.below(6)
        );
        if matches!(mix, Mix::Spam(_)) || rng.below(20) == 0 {
            thread.links += 1;
            text.push_str(&format!(" Recipe: https://recipes.example/{n}"));
        }
        let comment = Comment {
            event,
            reply,
            seen,
            text,
        };
        // Ten minutes of claimed time each, give or take a few.
        let at = start + 60_000 + n as i64 * 250_000 + rng.below(300_000) as i64;
        let msg = writers[author].sign(at, &comment.to_content_bytes());
        ids.push((msg.id(), author));
        batch.push(msg);
        if batch.len() >= 1_000 {
            ingest(&mut batch);
        }
    }
    let later = start + 60_000 + comments as i64 * 250_000 + 600_000;
    for (n, (id, author)) in ids.iter().enumerate() {
        let pick = match &mut mix {
            Mix::Usual => rng.below(100),
            Mix::Spam(_) if n % 100 == 0 => 100,
            Mix::Spam(organizer) => {
                let hide = CommentHide {
                    event,
                    comment: *id,
                    hidden: true,
                };
                batch.push(organizer.sign(later + n as i64, &hide.to_content_bytes()));
                thread.hides += 1;
                100
            }
        };
        if pick < 3 {
            let edit = CommentEdit {
                comment: *id,
                text: format!("Comment {n}, edited: plans changed, I bring bread instead."),
            };
            batch.push(writers[*author].sign(later + n as i64, &edit.to_content_bytes()));
            thread.edits += 1;
        } else if pick < 4 {
            let delete = CommentDelete { comment: *id };
            batch.push(writers[*author].sign(later + n as i64, &delete.to_content_bytes()));
            thread.deletes += 1;
        }
    }
    ingest(&mut batch);
    for (n, (id, _)) in ids.iter().enumerate() {
        if matches!(mix, Mix::Usual) && n % 100 == 50 {
            app.hide_comment(&event, id, true, now)
                .expect("hide a comment");
            thread.hides += 1;
        }
    }
    thread
}

/// A new home with an identity named `name`.
fn init(home: &Path, name: &str) {
    run(potluck(home).args(["init", "--name", name]), CLI_LIMIT).ok("potluck init");
}

fn settings() -> WebSettings {
    WebSettings {
        zone: "UTC".into(),
        ..WebSettings::default()
    }
}

fn announce(app: &App, title: &str, now: i64) -> MessageId {
    let start = EventTime::parse("start", "2031-06-01T18:00:00Z").expect("a time");
    app.announce(&Event::new(title, start), Past::Allow, now)
        .expect("announce")
        .id()
}

fn long_thread(quick: bool) {
    let comments = env_or("COMMENTS_THREAD", if quick { 300 } else { 10_000 }) as usize;
    let feeds = env_or("COMMENTS_FEEDS", if quick { 10 } else { 300 }) as usize;
    let requests = env_or("COMMENTS_REQUESTS", if quick { 5 } else { 500 }) as usize;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let home_dir = dir.path().join("home");
    init(&home_dir, "Organizer");
    let home = Home::at(&home_dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (event, empty) = rt.block_on(async {
        let app = App::open(&home, Access::Write).expect("open the home");
        let now = jiff::Timestamp::now().as_millisecond();
        let event = announce(&app, "Street party", now);
        let empty = announce(&app, "Quiet evening", now);
        // Another organizer's event, whose hides the bench signs.
        let mut organizer = Writer {
            key: sync_feed_key(66_000),
            sequence: 0,
            previous: MessageId::default(),
        };
        let start = EventTime::parse("start", "2031-06-01T18:00:00Z").expect("a time");
        let open_mic = organizer.sign(now, &Event::new("Open mic", start).to_content_bytes());
        let spam = open_mic.id();
        app.ingest(vec![open_mic]).expect("ingest the event");
        let s = fill_thread(
            &app,
            spam,
            (44_000, feeds),
            comments,
            Mix::Spam(Box::new(organizer)),
            now,
        );
        println!(
            "spammed thread: {} comments, all with a link, {} hidden by the organizer",
            s.comments, s.hides
        );
        let made = Instant::now();
        let t = fill_thread(&app, event, (22_000, feeds), comments, Mix::Usual, now);
        println!(
            "long thread: {} comments from {feeds} feeds ({} replies, {} with a link), {} edited, {} deleted, {} hidden; signed and ingested in {:.1} s",
            t.comments,
            t.replies,
            t.links,
            t.edits,
            t.deletes,
            t.hides,
            made.elapsed().as_secs_f64()
        );

        // The 100th page's cursor (or the last page's, for a short thread).
        let mut page = ThreadPage {
            after: None,
            limit: potluck::app::THREAD_PAGE,
        };
        let mut cursor = None;
        for _ in 1..100 {
            match app.thread(&event, page).expect("a page").next_after {
                Some(next) => {
                    cursor = Some(next);
                    page.after = Some(next);
                }
                None => break,
            }
        }
        let cursor = cursor.expect("a thread of more than one page");

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("an address");
        let server = tokio::spawn(potluck::web::serve(
            app.clone(),
            listener,
            settings(),
            std::future::pending::<()>(),
        ));
        let first_path = event_path(&event);
        let later_path = format!("{first_path}?after={}", event_key(&cursor));
        let empty_path = event_path(&empty);
        let spam_path = event_path(&spam);
        let (status, first) = http_get(addr, &first_path);
        assert_eq!(status, 200);
        let (_, later) = http_get(addr, &later_path);
        let (_, quiet) = http_get(addr, &empty_path);
        let shown = |body: &str| body.matches("<li class=\"comment\"").count();
        println!(
            "event page: {} bytes with the thread's first page ({} comments shown), the 100th page {} bytes, the event without comments {} bytes",
            first.len(),
            shown(&first),
            later.len(),
            quiet.len()
        );
        let (mut first_t, mut later_t, mut empty_t, mut spam_t) = tokio::task::spawn_blocking(move || {
            // Interleaved, so that the machine's load falls on all three alike.
            let (mut a, mut b, mut c, mut d) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..requests {
                a.extend(time_gets(addr, &first_path, 1));
                b.extend(time_gets(addr, &later_path, 1));
                c.extend(time_gets(addr, &empty_path, 1));
                d.extend(time_gets(addr, &spam_path, 1));
            }
            (a, b, c, d)
        })
        .await
        .expect("the timing task");
        let p99 = |v: &mut Vec<Duration>| {
            v.sort_unstable();
            common::percentile(v, 99.0)
        };
        let ratio = p99(&mut first_t).as_secs_f64() / p99(&mut empty_t).as_secs_f64().max(1e-9);
        println!(
            "GET /e/{{event with {comments} comments}} (first page): {}",
            summary(&mut first_t)
        );
        println!(
            "GET /e/{{event with {comments} comments}}?after= (100th page): {}",
            summary(&mut later_t)
        );
        println!(
            "GET /e/{{event without comments}}: {}",
            summary(&mut empty_t)
        );
        println!(
            "GET /e/{{event with {comments} link comments, 99 % hidden}}: {}",
            summary(&mut spam_t)
        );
        println!("p99 ratio, {comments} comments : none = {ratio:.2}");

        // The page's two thread reads on their own.
        let first_page = ThreadPage {
            after: None,
            limit: potluck::app::THREAD_PAGE,
        };
        let mut thread_t = Vec::new();
        let mut links_t = Vec::new();
        let mut links = 0;
        let mut spam_links = 0;
        let mut spam_links_t = Vec::new();
        for _ in 0..requests.min(200) {
            let started = Instant::now();
            app.thread(&event, first_page).expect("a page");
            thread_t.push(started.elapsed());
            let started = Instant::now();
            links = app.links_shared(&event).expect("links").len();
            links_t.push(started.elapsed());
            let started = Instant::now();
            spam_links = app.links_shared(&spam).expect("links").len();
            spam_links_t.push(started.elapsed());
        }
        println!("App::thread, first page: {}", summary(&mut thread_t));
        println!(
            "App::links_shared ({links} links): {}",
            summary(&mut links_t)
        );
        println!(
            "App::links_shared, spammed thread ({spam_links} links): {}",
            summary(&mut spam_links_t)
        );
        server.abort();
        let _ = server.await;
        app.shutdown();
        (event, empty)
    });
    drop(rt);
    wait_closed(&home.store_path(), Duration::from_secs(10));

    for (what, id) in [("with comments", event), ("without comments", empty)] {
        let id = id.to_string();
        let mut times = Vec::new();
        for _ in 0..if quick { 2 } else { 20 } {
            let r =
                run(potluck(&home_dir).args(["comments", &id]), CLI_LIMIT).ok("potluck comments");
            times.push(r.elapsed);
        }
        println!(
            "`potluck comments EVENT` ({what}, spawn to exit): {}",
            summary(&mut times)
        );
    }
}

/// Starts `potluck serve` on `home` with its page on a free loopback port;
/// the node and the page's address.
fn serve(home: &Path, extra: &[&str]) -> (Serve, SocketAddr) {
    let page: SocketAddr = format!("127.0.0.1:{}", free_port())
        .parse()
        .expect("an address");
    let page_arg = page.to_string();
    let mut args = vec!["--web", page_arg.as_str()];
    args.extend_from_slice(extra);
    (Serve::start_with(home, &args, CLI_LIMIT), page)
}

fn live_comment(quick: bool) {
    let samples_wanted = env_or("COMMENTS_LIVE", if quick { 3 } else { 100 }) as usize;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (a_home, b_home) = (dir.path().join("a"), dir.path().join("b"));
    init(&a_home, "Ana");
    init(&b_home, "Ben");
    // A thread's first page holds 50 comments: a new event every 40
    // samples keeps each new comment on the page the client looks at.
    let events: Vec<MessageId> = (0..samples_wanted.div_ceil(PER_EVENT))
        .map(|n| {
            let title = format!("Soup night {n}");
            let announced = run(
                potluck(&a_home).args([
                    "--json",
                    "announce",
                    "--title",
                    &title,
                    "--start",
                    "2031-06-01T18:00:00Z",
                ]),
                CLI_LIMIT,
            )
            .ok("potluck announce");
            let id = announced.json()["id"]
                .as_str()
                .expect("announce prints the event id")
                .to_owned();
            MessageId::parse(&id).expect("an event id")
        })
        .collect();
    let (a, _a_page) = serve(&a_home, &[]);
    let peer = format!("{}@{}", a.feed, a.addr);
    let (b, b_page) = serve(&b_home, &["--peer", &peer]);

    // B holds the events once it has synced with A.
    let deadline = Instant::now() + CLI_LIMIT;
    for event in &events {
        while http_get(b_page, &event_path(event)).0 != 200 {
            assert!(Instant::now() < deadline, "B never got the events");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // The live stream, as the page's script holds it: each `data:` line
    // with the time it arrived.
    let mut stream = TcpStream::connect(b_page).expect("connect to B's page");
    write!(
        stream,
        "GET /events HTTP/1.1\r\nHost: {b_page}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("request the stream");
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("data:") && tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });

    let mut whoami = Vec::new();
    for _ in 0..samples_wanted.min(20) {
        let r = run(potluck(&a_home).args(["--json", "whoami"]), CLI_LIMIT).ok("potluck whoami");
        whoami.push(r.elapsed);
    }

    let budget = Instant::now() + Duration::from_secs(600);
    let mut shown = Vec::new();
    let mut heard = Vec::new();
    let mut cli = Vec::new();
    for i in 0..samples_wanted {
        while rx.try_recv().is_ok() {}
        let event = events[i / PER_EVENT];
        let (event_text, path, key) = (event.to_string(), event_path(&event), event_key(&event));
        let text = format!("Comment {i} from Ana: who brings the bread?");
        let started = Instant::now();
        let publish = {
            let (home, event, text) = (a_home.clone(), event_text, text.clone());
            std::thread::spawn(move || {
                run(
                    potluck(&home).args(["--json", "comment", &event, &text]),
                    CLI_LIMIT,
                )
                .ok("potluck comment")
            })
        };
        let mut first_heard = None;
        let done = loop {
            let left = REACH.saturating_sub(started.elapsed());
            let Ok((at, line)) = rx.recv_timeout(left) else {
                panic!("B's page never showed comment {i} within {REACH:?}");
            };
            if !line.split_whitespace().any(|w| w == key) {
                continue;
            }
            first_heard.get_or_insert(at.duration_since(started));
            let (status, body) = http_get(b_page, &path);
            assert_eq!(status, 200);
            if body.contains(&text) {
                break started.elapsed();
            }
        };
        shown.push(done + SCRIPT_DELAY);
        heard.extend(first_heard);
        cli.push(publish.join().expect("the CLI thread").elapsed);
        if Instant::now() > budget {
            break;
        }
    }
    println!(
        "comment on another node's open page (spawn `potluck comment` on A → B's live stream → B's page fetched with it, + {} ms script delay): {}",
        SCRIPT_DELAY.as_millis(),
        summary(&mut shown)
    );
    println!(
        "spawn `potluck comment` on A → B's stream names the event: {}",
        summary(&mut heard)
    );
    println!(
        "spawn `potluck comment` → CLI exits (durable on A): {}",
        summary(&mut cli)
    );
    println!(
        "spawn `potluck whoami` → exits (forwarded to A, no publish): {}",
        summary(&mut whoami)
    );
    drop(b);
    drop(a);
}
