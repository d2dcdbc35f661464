//! The web page: server time of the upcoming page on the million-message
//! store, how long a peer's RSVP takes to reach an open page, and what the
//! first load weighs.
//!
//! - **Upcoming page, server time** (target p99 ≤ 50 ms): the `sync_1m`
//!   fixture (1,000,000 messages, 5,000 feeds, seed 1), copied so that the
//!   cache stays untouched, opened by an in-process node, and `GET /`
//!   answered by the page's router (`potluck::web::router`) through
//!   `tower::ServiceExt::oneshot`: routing, the guards, the queries and
//!   rendering, with no socket. `GET /past` and an event's page are timed
//!   alongside.
//! - **A peer's RSVP on an open page** (target p99 ≤ 1 s): two nodes on
//!   127.0.0.1 (the organizer O, serving its page on a loopback port, and
//!   a guest G connected to it). A client holds O's live stream
//!   (`GET /events`, what the page's script listens to) open; G publishes
//!   an RSVP to O's event; the time runs from G's publish call to the
//!   moment the stream names the event *and* a fresh `GET /e/…` (what the
//!   script fetches then) has returned the page with the new answer. The
//!   script waits a fixed 100 ms before fetching (it gathers bursts); that
//!   constant is added to every sample, so the figure is what a person
//!   sees.
//! - **Page weight**: bytes of `/`, `/static/style.css` and
//!   `/static/live.js` (the whole first load: there is nothing else), and
//!   of an event's page.
//!
//! Run: `cargo bench --bench page` (env `PAGE_FEEDS`, `PAGE_MESSAGES`,
//! `PAGE_SEED`, `PAGE_REQUESTS`, `PAGE_RSVPS` to resize; `cargo test
//! --benches` runs a tiny size).

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use ed25519_dalek::SigningKey;
use potluck::app::App;
use potluck::content::{Event, EventTime, KnownContent, Rsvp, RsvpStatus};
use potluck::node::Node;
use potluck::store::Store;
use potluck::web::{WebSettings, event_path, router};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use common::{cached_fixture, env_or, loadavg, quick, summary, work_copy};

/// The page script's pause between hearing of a change and fetching.
const SCRIPT_DELAY: Duration = Duration::from_millis(100);
/// Longest wait for one RSVP to show up.
const RSVP_LIMIT: Duration = Duration::from_secs(10);

fn node(store: Arc<Store>, key: SigningKey) -> Arc<Node> {
    Node::new(store, common::node_config(key))
}

fn key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

fn settings() -> WebSettings {
    WebSettings {
        zone: "UTC".into(),
        ..WebSettings::default()
    }
}

/// One GET through the router; returns the status and the body.
async fn get(router: &axum::Router, addr: SocketAddr, path: &str) -> (StatusCode, Vec<u8>) {
    common::router_get(router, &addr.to_string(), path).await
}

fn main() {
    let quick = quick();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        println!("page: load average {}", loadavg());
        upcoming_on_big_store(quick).await;
        live_rsvp(quick).await;
    });
}

async fn upcoming_on_big_store(quick: bool) {
    let feeds = env_or("PAGE_FEEDS", if quick { 20 } else { 5_000 });
    let messages = env_or("PAGE_MESSAGES", if quick { 500 } else { 1_000_000 });
    let seed = env_or("PAGE_SEED", 1);
    let requests = env_or("PAGE_REQUESTS", if quick { 5 } else { 300 }) as usize;
    let base = cached_fixture(feeds, messages, seed);
    let work = work_copy(&base, &format!("page-work-f{feeds}-m{messages}-s{seed}"));
    let store = Arc::new(Store::open(&work.join("store")).expect("open the fixture's store"));
    let app = App::new(node(store.clone(), key()));
    let addr: SocketAddr = "127.0.0.1:7645".parse().expect("an address");
    let router = router(app.clone(), settings(), addr);

    let (status, first) = get(&router, addr, "/").await;
    assert_eq!(status, StatusCode::OK);
    let (_, past) = get(&router, addr, "/past").await;
    let cards = |body: &[u8]| String::from_utf8_lossy(body).matches("<article").count();
    let (upcoming, _) = app
        .events(
            potluck::app::EventList::Upcoming,
            jiff::Timestamp::now().as_millisecond(),
            100,
        )
        .expect("upcoming events");
    println!(
        "store: {} messages; / shows {} events in {} bytes, /past {} events in {} bytes",
        base.messages,
        cards(&first),
        first.len(),
        cards(&past),
        past.len()
    );
    let busiest = upcoming
        .iter()
        .max_by_key(|s| s.tally.going + s.tally.maybe + s.tally.not_going)
        .map(|s| s.state.id);
    let mut paths = vec!["/".to_owned(), "/past".to_owned()];
    if let Some(id) = busiest {
        paths.push(event_path(&id));
    }
    for path in paths {
        let mut samples = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            let (status, _) = get(&router, addr, &path).await;
            samples.push(started.elapsed());
            assert_eq!(status, StatusCode::OK, "{path}");
        }
        let label = if path.starts_with("/e/") {
            "/e/{busiest upcoming event}"
        } else {
            &path
        };
        println!("server time {label}: {}", summary(&mut samples));
    }
    drop(router);
    drop(app);
    drop(store);
    let _ = std::fs::remove_dir_all(&work);
}

async fn live_rsvp(quick: bool) {
    let rsvps = env_or("PAGE_RSVPS", if quick { 3 } else { 100 }) as usize;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let organizer_store = Arc::new(Store::open(&dir.path().join("o")).expect("a store"));
    let organizer = node(organizer_store, key());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let peer_addr = listener.local_addr().expect("an address");
    tokio::spawn(organizer.clone().accept_loop(listener));
    let page_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let page_addr = page_listener.local_addr().expect("an address");
    let organizer_app = App::new(organizer.clone());
    tokio::spawn(potluck::web::serve(
        organizer_app.clone(),
        page_listener,
        settings(),
        std::future::pending::<()>(),
    ));
    let start = EventTime::parse("start", "2031-06-01T18:00:00Z").expect("a time");
    let event = organizer_app
        .announce(
            &Event::new("Soup night", start),
            potluck::app::Past::Allow,
            jiff::Timestamp::now().as_millisecond(),
        )
        .expect("announce")
        .id();

    let guest_store = Arc::new(Store::open(&dir.path().join("g")).expect("a store"));
    let guest = node(guest_store.clone(), key());
    let guest_app = App::new(guest.clone());
    let target =
        potluck::home::config::PeerAddr::parse(&peer_addr.to_string()).expect("an address");
    tokio::spawn(
        guest
            .clone()
            .dial_loop(target, potluck::proto::peerbook::PeerSource::Configured),
    );
    // The guest holds the event once it has synced.
    let deadline = Instant::now() + RSVP_LIMIT;
    while guest_store.event(&event).expect("a query").is_none() {
        assert!(Instant::now() < deadline, "the guest never got the event");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The live stream, as the page's script holds it.
    let mut stream = TcpStream::connect(page_addr).await.expect("connect");
    stream
        .write_all(
            format!(
                "GET /events HTTP/1.1\r\nHost: {page_addr}\r\nAccept: text/event-stream\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .expect("request the stream");
    let mut lines = BufReader::new(stream).lines();
    let key_text = potluck::web::event_key(&event);
    let page_router = router(organizer_app.clone(), settings(), page_addr);
    let path = event_path(&event);

    let mut samples = Vec::with_capacity(rsvps);
    for i in 0..rsvps {
        let status = if i % 2 == 0 {
            RsvpStatus::Going
        } else {
            RsvpStatus::Maybe
        };
        let note = format!("answer {i}");
        let rsvp = Rsvp {
            event,
            status,
            guests: 0,
            note: Some(note.clone()),
            revision: None,
        };
        let started = Instant::now();
        let publisher = guest_app.clone();
        tokio::task::spawn_blocking(move || {
            publisher.publish(
                &rsvp.to_content_bytes(),
                jiff::Timestamp::now().as_millisecond(),
            )
        })
        .await
        .expect("the publish task")
        .expect("publish");
        // Wait for the stream to name the event.
        let heard = tokio::time::timeout(RSVP_LIMIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("data:") && line.contains(&key_text) {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        assert!(heard, "the live stream never named the event (RSVP {i})");
        let (code, body) = get(&page_router, page_addr, &path).await;
        assert_eq!(code, StatusCode::OK);
        assert!(
            String::from_utf8_lossy(&body).contains(&note),
            "the page does not show RSVP {i} yet"
        );
        samples.push(started.elapsed() + SCRIPT_DELAY);
    }
    println!(
        "peer's RSVP on an open page (publish on G → O's live stream → page fetched, + {} ms script delay): {}",
        SCRIPT_DELAY.as_millis(),
        summary(&mut samples)
    );

    let (_, root) = get(&page_router, page_addr, "/").await;
    let (_, css) = get(&page_router, page_addr, "/static/style.css").await;
    let (_, js) = get(&page_router, page_addr, "/static/live.js").await;
    let (_, event_page) = get(&page_router, page_addr, &path).await;
    println!(
        "page weight: / {} B + style.css {} B + live.js {} B = {} B first load; an event's page with {} answers {} B",
        root.len(),
        css.len(),
        js.len(),
        root.len() + css.len() + js.len(),
        1,
        event_page.len()
    );
    organizer.shutdown();
    guest.shutdown();
}
