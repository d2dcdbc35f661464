//! Answers from a link (issue 21, "Performance"): a hub's public pages
//! and answers from browsers. Four parts (env `PUBLIC_PARTS`, default
//! `page,decision,rate,weight`):
//!
//! 1. **page** (goal: p99 ≤ 50 ms server time): the `sync_1m` fixture
//!    (1,000,000 messages, 5,000 feeds, seed 1; `PUBLIC_FEEDS`,
//!    `PUBLIC_MESSAGES`, `PUBLIC_SEED`), copied so that the cache stays
//!    untouched. First in this process: the public pages' router
//!    (`potluck::web::public_router`) answers `GET /` and `GET
//!    /e/{busiest upcoming event}` through `tower::ServiceExt::oneshot`
//!    (routing, guards, queries, rendering; no socket), as
//!    `benches/page.rs` times the local page: once while no organizer of
//!    the fixture is a member of the hub (nothing is listed: `/` reads its
//!    whole bound of the upcoming-events index), then with every organizer
//!    of an upcoming event a member. Then the same home served by `potluck
//!    serve --hub` with `"public_web": "127.0.0.1:0"`, timed by the client
//!    on loopback (one connection per request), asking for gzip as a
//!    browser does and, alternating, without: the server sends no timing
//!    of its own. `PUBLIC_REQUESTS` requests per path.
//! 2. **decision** (goal: p99 ≤ 1 s from the click on Going to the
//!    organizer's node holding the RSVP): a `potluck serve` hub with
//!    public pages; the organizer is a node in this process, a member of
//!    the hub connected to it, with an event of capacity 10,000. Each
//!    sample is a new guest whose `about` and `rsvp` are signed here (as
//!    `feed.js` signs them, `tests/common/guest.rs`) before the clock
//!    starts, then posted to `/e/{key}/answer`; the time runs until the
//!    organizer's store holds the RSVP (polled every 0.5 ms), and on until
//!    the hub's status for the guest says "admitted" (the organizer's
//!    decision back at the hub, polled every 5 ms). `PUBLIC_DECISIONS`
//!    samples.
//! 3. **rate** (goal: ≥ 200 browser RSVPs a second on 2 cores): a
//!    `potluck serve` hub with public pages and an event whose organizer
//!    synced it and went offline. `PUBLIC_RATE_GUESTS` distinct guests'
//!    `about` + `rsvp` are signed first (that rate is printed apart), then
//!    posted by `PUBLIC_RATE_CLIENTS` threads at once, one connection per
//!    post, as many browsers would. The hub's `web_answers` limits are
//!    raised for this (every post comes from 127.0.0.1, and the default
//!    is 10 new guests per address and 1,000 in all per hour). For scale,
//!    the same clients then fetch the hub's icon as fast as they can (the
//!    HTTP cost alone).
//! 4. **weight** (goal: first load ≤ 100 KB): the bytes of an event's
//!    public page and of every file it loads, as sent to a browser that
//!    takes gzip, and decoded. `tests/web_answer.rs` asserts the same
//!    budget.
//!
//! Run: `cargo bench --bench public_web`; `PUBLIC_WRAP="perf record -g
//! -o FILE"` runs the hubs of parts 2 to 4 under a profiler. `cargo test --benches` runs
//! every part at a tiny size. Every loop is bounded in count and time;
//! all traffic is on 127.0.0.1.

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/common/guest.rs"]
#[allow(dead_code)]
mod guest;
#[path = "../tests/common/http.rs"]
#[allow(dead_code)]
mod http;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use ed25519_dalek::SigningKey;
use potluck::app::{App, EventList, GuestLimits, Past, PublicNetwork};
use potluck::content::{Event, EventTime, RsvpStatus};
use potluck::feed::message::{FeedId, MessageId};
use potluck::home::config::PeerAddr;
use potluck::node::{MemberSettings, Node};
use potluck::proto::wire::TOKEN_LEN;
use potluck::store::Store;
use potluck::store::hub::Member;
use potluck::web::{PublicSettings, event_path, public_router};
use serde_json::{Value, json};

use common::{
    CLI_LIMIT, Serve, cached_fixture, cpu_time, env_or, hub_config, init_home, loadavg,
    member_code, node_config, quick, runtime, set_config, show, summary, wait_closed, work_copy,
};
use guest::{Guest, answer_body};

/// The `Host` the clients send (the public pages answer any).
const HOST: &str = "events.example.org";
/// Longest wait for one answer to reach the organizer, or its decision
/// the hub.
const SAMPLE_LIMIT: Duration = Duration::from_secs(10);
/// `web_answers` for the parts that post many new guests from one
/// address.
fn raised_limits() -> Value {
    json!({ "new_guests_per_ip_per_hour": 1_000_000, "new_guests_per_hour": 1_000_000 })
}

fn main() {
    let quick = quick();
    let parts =
        std::env::var("PUBLIC_PARTS").unwrap_or_else(|_| "page,decision,rate,weight".into());
    println!(
        "public_web bench: load average {} ({} cores)",
        loadavg(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if parts.contains("page") {
        page(quick);
    }
    if parts.contains("decision") || parts.contains("weight") {
        decision(quick, parts.contains("decision"), parts.contains("weight"));
    }
    if parts.contains("rate") {
        rate(quick);
    }
    println!("public_web bench: done, load average {}", loadavg());
}

fn new_key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// `GET path` on the public pages at `addr`, one connection; panics
/// unless it is a 200.
fn get_ok(addr: SocketAddr, path: &str) -> http::Answer {
    let answer = http::request(addr, "GET", HOST, path);
    assert_eq!(answer.status, 200, "GET {path}: {answer:?}");
    answer
}

/// Polls `done` every `every` until it holds or `limit` passes; the time
/// it took, or `None`.
fn poll_until(
    limit: Duration,
    every: Duration,
    mut done: impl FnMut() -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return Some(start.elapsed());
        }
        std::thread::sleep(every);
    }
    None
}

// ---------------------------------------------------------------------------
// Part 1: the public pages on the 1M store.

/// Times `requests` GETs of each path through the router.
async fn time_router(router: &axum::Router, paths: &[(&str, String)], requests: usize, what: &str) {
    for (label, path) in paths {
        let mut samples = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            let (status, _) = common::router_get(router, HOST, path).await;
            samples.push(started.elapsed());
            assert_eq!(status, StatusCode::OK, "{path}");
        }
        println!(
            "page: server time {label} ({what}): {}",
            summary(&mut samples)
        );
    }
}

fn page(quick: bool) {
    let feeds = env_or("PUBLIC_FEEDS", if quick { 20 } else { 5_000 });
    let messages = env_or("PUBLIC_MESSAGES", if quick { 500 } else { 1_000_000 });
    let seed = env_or("PUBLIC_SEED", 1);
    let requests = env_or("PUBLIC_REQUESTS", if quick { 5 } else { 500 }) as usize;
    let base = cached_fixture(feeds, messages, seed);
    let copying = Instant::now();
    let work = work_copy(&base, &format!("public-work-f{feeds}-m{messages}-s{seed}"));
    println!(
        "page: fixture of {} messages copied in {:.1} s",
        base.messages,
        copying.elapsed().as_secs_f64()
    );
    let store_path = potluck::home::Home::at(&work).store_path();

    let rt = runtime();
    let busiest = rt.block_on(async {
        let store = Arc::new(Store::open(&store_path).expect("open the fixture's store"));
        let node = Node::new(store.clone(), node_config(new_key()));
        let app = App::new(node.clone());
        let router = public_router(
            app.clone(),
            PublicSettings {
                network: PublicNetwork::Open,
                base_url: None,
                answers: GuestLimits::default(),
            },
        );
        let now = now_ms();
        // Nobody is a member yet: the list shows nothing, after reading
        // its whole bound of the index.
        time_router(
            &router,
            &[("/", "/".to_owned())],
            requests,
            "no organizer a member",
        )
        .await;

        // Every organizer of an upcoming event becomes a member.
        let mut organizers = HashSet::new();
        let mut upcoming = 0;
        for id in store.upcoming_event_ids(now).expect("the index") {
            let id = id.expect("an index entry");
            if let Some(state) = store.event(&id).expect("an event") {
                organizers.insert(state.author);
                upcoming += 1;
            }
        }
        let admitting = Instant::now();
        for feed in &organizers {
            store
                .add_member(&Member {
                    feed: *feed,
                    since_ms: now,
                    note: None,
                    stored_bytes: 0,
                    removed_ms: None,
                })
                .expect("admit a member");
        }
        println!(
            "page: {upcoming} upcoming events by {} organizers, admitted as members in {:.1} s",
            organizers.len(),
            admitting.elapsed().as_secs_f64()
        );
        let (listed, _) = app
            .events(EventList::Upcoming, now, 1_000)
            .expect("upcoming events");
        let busiest = listed
            .iter()
            .max_by_key(|s| s.tally.going + s.tally.maybe + s.tally.not_going)
            .expect("an upcoming event");
        println!(
            "page: the busiest of the next {} events: {} going, {} maybe, {} not going",
            listed.len(),
            busiest.tally.going,
            busiest.tally.maybe,
            busiest.tally.not_going
        );
        let busiest = event_path(&busiest.state.id);
        time_router(
            &router,
            &[
                ("/", "/".to_owned()),
                ("/e/{busiest upcoming event}", busiest.clone()),
            ],
            requests,
            "every organizer a member",
        )
        .await;
        node.shutdown();
        busiest
    });
    drop(rt);
    wait_closed(&store_path, Duration::from_secs(20));

    // The same home as a hub process, timed by the client.
    hub_config(&work, json!(true));
    set_config(&work, json!({ "public_web": "127.0.0.1:0" }));
    let started = Instant::now();
    let mut serve = Serve::start_with(&work, &["--no-web"], Duration::from_secs(300));
    let public = serve.public_pages(CLI_LIMIT);
    println!(
        "page: potluck serve --hub started on the copy in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for (label, path) in [
        ("/", "/".to_owned()),
        ("/e/{busiest upcoming event}", busiest),
    ] {
        let first = http::fetch_as_browser(public, HOST, &path);
        println!(
            "page: {label} is {} B ({} B as sent to a browser, Content-Encoding {:?})",
            first.body.len(),
            first.body_bytes,
            first.encoding
        );
        // Asked as a browser asks (gzip), so the time includes the
        // compression; and as a client that does not, for the ratio.
        let mut gzipped = Vec::with_capacity(requests);
        let mut plain = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            http::fetch_as_browser(public, HOST, &path);
            gzipped.push(started.elapsed());
            let started = Instant::now();
            get_ok(public, &path);
            plain.push(started.elapsed());
        }
        println!(
            "page: client time on loopback, hub process {label}, gzip: {}",
            summary(&mut gzipped)
        );
        println!(
            "page: client time on loopback, hub process {label}, no gzip: {}",
            summary(&mut plain)
        );
    }
    drop(serve);
    let _ = std::fs::remove_dir_all(&work);
}

// ---------------------------------------------------------------------------
// A hub with public pages and an organizer.

/// A `potluck serve` hub with public pages in a new home under `dir`,
/// `web_answers` raised; the hub, its public pages' address and a member
/// code good for `uses` joins.
fn public_hub(dir: &Path, uses: usize) -> (Serve, SocketAddr, PeerAddr, [u8; TOKEN_LEN]) {
    let home = dir.join("hub");
    init_home(&home);
    hub_config(&home, json!(true));
    set_config(
        &home,
        json!({ "public_web": "127.0.0.1:0", "web_answers": raised_limits() }),
    );
    // `PUBLIC_WRAP="perf record -g -o FILE"` runs the hub under a
    // profiler (its CPU time is then the wrapper's).
    let wrap = std::env::var("PUBLIC_WRAP").unwrap_or_default();
    let wrapper: Vec<&str> = wrap.split_whitespace().collect();
    let mut serve = Serve::start_under(&wrapper, &home, &["--no-web"], CLI_LIMIT);
    let public = serve.public_pages(CLI_LIMIT);
    let hub = PeerAddr::parse(&format!("{}@{}", serve.feed, serve.addr)).expect("hub address");
    let (_, code) = member_code(&home, serve.addr, uses);
    (serve, public, hub, code)
}

/// An organizer node in `rt`, a member of `hub` (joined with `code`),
/// and its event (capacity `capacity`), which the hub's public pages
/// show once this returns. With `stay`, the node keeps a session with
/// the hub; otherwise it syncs once and stops.
fn organizer(
    rt: &tokio::runtime::Runtime,
    store: Arc<Store>,
    hub: &PeerAddr,
    code: [u8; TOKEN_LEN],
    public: SocketAddr,
    capacity: u32,
    stay: bool,
) -> (Arc<Node>, MessageId) {
    let node = Node::new(store, node_config(new_key()));
    let event = rt.block_on(async {
        tokio::time::timeout(CLI_LIMIT, node.clone().dial_with_code(hub, code, true))
            .await
            .expect("the organizer joins in time")
            .expect("the organizer joins");
        let start = EventTime::parse("start", "2031-06-01T18:00:00Z").expect("a time");
        let event = Event {
            capacity: Some(capacity),
            ..Event::new("Soup night", start)
        };
        let id = App::new(node.clone())
            .announce(&event, Past::Allow, now_ms())
            .expect("announce")
            .id();
        if stay {
            node.set_member_settings(MemberSettings {
                hubs: vec![hub.clone()],
                tunnels_from_hub_members: false,
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            node.start(listener, vec![hub.clone()], None)
                .expect("the organizer starts");
        } else {
            tokio::time::timeout(CLI_LIMIT, node.clone().dial(hub, true))
                .await
                .expect("the organizer's sync ends")
                .expect("the organizer syncs");
        }
        id
    });
    let path = event_path(&event);
    let shown = poll_until(CLI_LIMIT, Duration::from_millis(20), || {
        http::request(public, "GET", HOST, &path).status == 200
    });
    assert!(shown.is_some(), "the hub never showed the event");
    if !stay {
        node.shutdown();
    }
    (node, event)
}

/// A new guest's `about` and `rsvp` (Going) to `event`, as the body
/// `feed.js` posts; the guest's feed.
fn signed_answer(n: u64, event: &MessageId) -> (FeedId, String) {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&n.to_be_bytes());
    seed[8] = 21;
    let mut guest = Guest::from_seed(seed);
    let about = guest.about(&format!("Guest {n}"));
    let rsvp = guest.rsvp(&event.to_string(), RsvpStatus::Going);
    (guest.feed_id(), answer_body(&[&about, &rsvp]))
}

/// POSTs an answer body to the event's endpoint.
fn post(public: SocketAddr, answer_path: &str, body: &str) -> http::Answer {
    http::request_with(
        public,
        "POST",
        HOST,
        answer_path,
        Some(("application/json", body.as_bytes())),
    )
}

// ---------------------------------------------------------------------------
// Part 2: from the click to the organizer's node; part 4: the weight.

fn decision(quick: bool, timed: bool, weigh: bool) {
    let samples = env_or("PUBLIC_DECISIONS", if quick { 3 } else { 200 }) as usize;
    let dir = tempfile::tempdir().expect("tempdir");
    let (serve, public, hub, code) = public_hub(dir.path(), 2);
    let rt = runtime();
    let store = Arc::new(Store::open(&dir.path().join("organizer")).expect("organizer store"));
    let (node, event) = organizer(&rt, store.clone(), &hub, code, public, 10_000, true);
    let page = event_path(&event);
    let answer_path = format!("{page}/answer");

    if weigh {
        let files = http::first_load(public, HOST, &page);
        let mut total_body = 0;
        let mut total_head = 0;
        let mut total_plain = 0;
        for f in &files {
            println!(
                "weight: {} {} B as sent ({:?}; {} B decoded) + {} B status line and headers",
                f.path,
                f.body_bytes,
                f.encoding,
                f.body.len(),
                f.head_bytes
            );
            total_body += f.body_bytes;
            total_head += f.head_bytes;
            total_plain += f.body.len();
        }
        println!(
            "weight: first load of an event's public page: {} files, {total_body} B of bodies as sent, {} B with headers (goal ≤ 100 KB); {total_plain} B of bodies decoded",
            files.len(),
            total_body + total_head
        );
    }

    if timed {
        let mut held = Vec::with_capacity(samples);
        let mut decided = Vec::with_capacity(samples);
        let mut posted = Vec::with_capacity(samples);
        let run_limit = Duration::from_secs(env_or("PUBLIC_DECISION_SECS", 600));
        let run = Instant::now();
        for n in 0..samples as u64 {
            if run.elapsed() > run_limit {
                println!("decision: stopped after {n} samples ({run_limit:?})");
                break;
            }
            let (feed, body) = signed_answer(n, &event);
            let started = Instant::now();
            let answer = post(public, &answer_path, &body);
            posted.push(started.elapsed());
            assert_eq!(answer.status, 200, "{answer:?}");
            let holds = poll_until(SAMPLE_LIMIT, Duration::from_micros(500), || {
                store
                    .head(&feed)
                    .expect("the organizer's store")
                    .is_some_and(|h| h.sequence >= 2)
            });
            let Some(_) = holds else {
                panic!("answer {n}: the organizer never held it");
            };
            held.push(started.elapsed());
            let status_path = format!(
                "{answer_path}?feed={}",
                form_urlencoded::byte_serialize(feed.to_string().as_bytes()).collect::<String>()
            );
            let admitted = poll_until(SAMPLE_LIMIT, Duration::from_millis(5), || {
                let status = get_ok(public, &status_path);
                let status: Value = serde_json::from_str(&status.body).expect("JSON");
                status["answer"]["admission"] == "admitted"
            });
            match admitted {
                Some(_) => decided.push(started.elapsed()),
                None => println!("decision: answer {n} was never shown admitted"),
            }
        }
        println!(
            "decision: the POST alone (hub stored it, answered 200): {}",
            summary(&mut posted)
        );
        println!(
            "decision: click → the organizer's node holds the RSVP (goal p99 ≤ 1 s): {}",
            summary(&mut held)
        );
        println!(
            "decision: click → the hub shows the guest admitted (the organizer's decision back at the hub): {}",
            summary(&mut decided)
        );
    }
    node.shutdown();
    drop(rt);
    drop(serve);
}

// ---------------------------------------------------------------------------
// Part 3: browser RSVPs a second.

/// This process's user plus system CPU time.
fn own_cpu() -> Duration {
    // SAFETY: plain FFI call with a valid pointer to a local.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    Duration::from_secs_f64(secs(usage.ru_utime) + secs(usage.ru_stime))
}

/// What `clients` threads doing `one(i)` for `i` in `0..count` (each
/// once, at most `limit` in all) got: statuses, latencies, elapsed
/// time, this process's and the hub's CPU time.
struct Burst {
    statuses: BTreeMap<u16, usize>,
    latencies: Vec<Duration>,
    /// When the 200s came, from the start.
    finished: Vec<Duration>,
    elapsed: Duration,
    own_cpu: Duration,
    hub_cpu: Duration,
}

fn burst(
    clients: usize,
    count: usize,
    limit: Duration,
    hub_pid: u32,
    one: impl Fn(usize) -> u16 + Sync,
) -> Burst {
    let next = AtomicUsize::new(0);
    let (own0, hub0) = (own_cpu(), cpu_time(hub_pid));
    let started = Instant::now();
    let results: Vec<Vec<(u16, Duration, Duration)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count || started.elapsed() > limit {
                            break mine;
                        }
                        let t = Instant::now();
                        let status = one(i);
                        mine.push((status, t.elapsed(), started.elapsed()));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a client thread"))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut statuses = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut finished = Vec::new();
    for (status, latency, at) in results.into_iter().flatten() {
        *statuses.entry(status).or_insert(0) += 1;
        latencies.push(latency);
        if status == 200 {
            finished.push(at);
        }
    }
    finished.sort_unstable();
    Burst {
        statuses,
        latencies,
        finished,
        elapsed,
        own_cpu: own_cpu().saturating_sub(own0),
        hub_cpu: cpu_time(hub_pid).saturating_sub(hub0),
    }
}

impl Burst {
    fn report(&mut self, what: &str) -> f64 {
        let ok = self.statuses.get(&200).copied().unwrap_or(0);
        let rate = ok as f64 / self.elapsed.as_secs_f64().max(1e-9);
        println!(
            "rate: {what}: {ok} answered 200 in {:.2} s = {rate:.0}/s; statuses {:?}; hub CPU {:.2} s ({:.0} % of a core), harness CPU {:.2} s; latency {}",
            self.elapsed.as_secs_f64(),
            self.statuses,
            self.hub_cpu.as_secs_f64(),
            100.0 * self.hub_cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9),
            self.own_cpu.as_secs_f64(),
            summary(&mut self.latencies)
        );
        // The first half of the 200s against the second: whether the
        // pace holds as the event gathers answers.
        let half = self.finished.len() / 2;
        if let (Some(mid), Some(end)) = (self.finished.get(half), self.finished.last()) {
            println!(
                "rate: {what}: first {half} at {:.0}/s, last {} at {:.0}/s",
                half as f64 / mid.as_secs_f64().max(1e-9),
                self.finished.len() - half,
                (self.finished.len() - half) as f64 / (*end - *mid).as_secs_f64().max(1e-9)
            );
        }
        rate
    }
}

fn rate(quick: bool) {
    let guests = env_or("PUBLIC_RATE_GUESTS", if quick { 20 } else { 3_000 }) as usize;
    let clients = env_or("PUBLIC_RATE_CLIENTS", if quick { 4 } else { 32 }) as usize;
    let limit = Duration::from_secs(env_or("PUBLIC_RATE_SECS", 120));
    let dir = tempfile::tempdir().expect("tempdir");
    let (serve, public, hub, code) = public_hub(dir.path(), 2);
    let rt = runtime();
    let store = Arc::new(Store::open(&dir.path().join("organizer")).expect("organizer store"));
    let (_node, event) = organizer(&rt, store, &hub, code, public, 10_000, false);
    let answer_path = format!("{}/answer", event_path(&event));

    // The harness signs first, on one thread, and is timed apart.
    let signing = Instant::now();
    let bodies: Vec<(FeedId, String)> = (0..guests as u64)
        .map(|n| signed_answer(1_000_000 + n, &event))
        .collect();
    let signing = signing.elapsed();
    println!(
        "rate: the harness signed {guests} guests' about + rsvp in {} = {:.0} guests/s on one thread",
        show(signing),
        guests as f64 / signing.as_secs_f64().max(1e-9)
    );

    let mut answers = burst(clients, guests, limit, serve.pid(), |i| {
        post(public, &answer_path, &bodies[i].1).status
    });
    let rate = answers.report(&format!(
        "{guests} new guests' answers posted by {clients} clients at once"
    ));
    // Each acknowledged answer is held: the hub's status says so.
    let step = (guests / 20).max(1);
    for (feed, _) in bodies.iter().step_by(step) {
        let feed: String = form_urlencoded::byte_serialize(feed.to_string().as_bytes()).collect();
        let status = get_ok(public, &format!("{answer_path}?feed={feed}"));
        let status: Value = serde_json::from_str(&status.body).expect("JSON");
        assert_eq!(status["held"], 2, "{status}");
    }
    let mut icons = burst(clients, guests, limit, serve.pid(), |_| {
        http::request(public, "GET", HOST, "/static/icon.svg").status
    });
    icons.report(&format!(
        "for scale, GET /static/icon.svg ×{guests} by the same {clients} clients"
    ));
    println!(
        "rate: {rate:.0} browser RSVPs a second (goal ≥ 200); load average {}",
        loadavg()
    );
    drop(rt);
    drop(serve);
}
