//! The web page over HTTP: every route through the router (no socket,
//! except the one test of `serve` itself, on 127.0.0.1), with the guards
//! (Host, Origin, Sec-Fetch-Site, CSRF, token, body size), escaping of
//! hostile content, the forms' effects on the store, the calendar feeds
//! read back by the `icalendar` crate, and the live stream.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use icalendar::{Calendar, Component as _};
use tower::ServiceExt as _;

use common::node::{event, feed_of, new_key, rsvp, unstarted_node};
use common::{now_ms, open_store};
use potluck::app::{App, EventList};
use potluck::content::{KnownContent, RsvpStatus};
use potluck::feed::message::{FeedId, MessageId};
use potluck::proto::handshake::DEFAULT_NETWORK_KEY;
use potluck::store::Store;
use potluck::web::{self, WebSettings, event_key, event_path};

const HOST: &str = "127.0.0.1:7645";

fn addr() -> SocketAddr {
    HOST.parse().unwrap()
}

/// One person's node, store and page.
struct Site {
    app: App,
    store: Arc<Store>,
    router: Router,
    feed: FeedId,
    _dir: tempfile::TempDir,
}

fn site_with(settings: WebSettings) -> Site {
    let (dir, store) = open_store();
    let store = Arc::new(store);
    let key = new_key();
    let feed = feed_of(&key);
    let app = App::new(unstarted_node(store.clone(), key, DEFAULT_NETWORK_KEY));
    let router = web::router(app.clone(), settings, addr());
    Site {
        app,
        store,
        router,
        feed,
        _dir: dir,
    }
}

fn settings() -> WebSettings {
    WebSettings {
        zone: "Europe/Paris".into(),
        ..WebSettings::default()
    }
}

fn site() -> Site {
    site_with(settings())
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    /// The inside of the element with this id, up to its closing tag.
    fn part(&self, id: &str, close: &str) -> &str {
        let at = self
            .body
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no element #{id} in {}", self.body));
        let rest = &self.body[at..];
        &rest[..rest.find(close).expect("closed")]
    }
}

async fn send(router: &Router, req: Request<Body>) -> Answer {
    let resp = tokio::time::timeout(Duration::from_secs(20), router.clone().oneshot(req))
        .await
        .expect("answered in time")
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = tokio::time::timeout(Duration::from_secs(20), resp.into_body().collect())
        .await
        .expect("body in time")
        .unwrap()
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn get(router: &Router, path: &str) -> Answer {
    get_with(router, path, &[("host", HOST)]).await
}

async fn get_with(router: &Router, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = Request::builder().uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(router, req.body(Body::empty()).unwrap()).await
}

fn form(fields: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

/// A POST as a browser on the page sends it.
async fn post(router: &Router, path: &str, fields: &[(&str, &str)]) -> Answer {
    post_with(
        router,
        path,
        form(fields),
        &[
            ("host", HOST),
            ("origin", "http://127.0.0.1:7645"),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await
}

async fn post_with(router: &Router, path: &str, body: String, headers: &[(&str, &str)]) -> Answer {
    let mut req = Request::builder()
        .method("POST")
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(router, req.body(Body::from(body)).unwrap()).await
}

/// What a live stream sends until it names the event with page key
/// `key` (at most 50 frames, each within a bounded wait).
async fn read_until_event(body: &mut Body, key: &str) -> String {
    let mut seen = String::new();
    for _ in 0..50 {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("a change within the wait")
            .expect("stream open")
            .unwrap();
        if let Some(data) = frame.data_ref() {
            seen.push_str(&String::from_utf8_lossy(data));
        }
        if seen.contains(&format!("data: events {key}")) {
            break;
        }
    }
    seen
}

/// The CSRF token the page puts in its forms.
async fn csrf(router: &Router) -> String {
    let page = get(router, "/new").await;
    let at = page
        .body
        .find("name=\"csrf\" value=\"")
        .expect("csrf field")
        + 19;
    page.body[at..at + 64].to_owned()
}

fn event_count(app: &App) -> usize {
    app.events(EventList::All, now_ms(), 0).unwrap().0.len()
}

fn announce(app: &App, title: &str, description: Option<&str>, capacity: Option<u32>) -> MessageId {
    app.announce(
        &event(title, description.map(str::to_owned), capacity),
        potluck::app::Past::Allow,
        now_ms(),
    )
    .unwrap()
    .id()
}

/// Copies every message of `feed` from one store into an app's store, as
/// gossip would.
fn copy_feed(from: &Store, to: &App, feed: &FeedId) {
    let msgs: Vec<_> = from.feed_messages(feed, 1).map(Result::unwrap).collect();
    to.ingest(msgs).unwrap();
}

fn pairs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect()
}

fn new_event_fields<'a>(
    csrf: &'a str,
    title: &'a str,
    date: &'a str,
    start: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("title", title),
        ("date", date),
        ("start", start),
        ("zone", "America/New_York"),
        ("location", "the hall"),
        ("capacity", ""),
    ]
}

// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_page_answers_with_the_security_headers_and_weighs_little() {
    let s = site();
    let id = announce(&s.app, "Soup night", Some("bring bowls"), Some(3));
    let event = event_path(&id);
    let ics = format!("{event}/event.ics");
    let mut weight = 0;
    for path in [
        "/",
        "/past",
        "/new",
        "/agenda",
        "/network",
        "/login",
        &event,
        &ics,
        "/calendar.ics",
        "/static/style.css",
        "/static/live.js",
        "/static/feed.js",
    ] {
        let a = get(&s.router, path).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
        assert_eq!(
            a.headers[header::CONTENT_SECURITY_POLICY],
            web::security::CSP,
            "{path}"
        );
        assert!(
            a.headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .starts_with("default-src 'self'; frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(a.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(a.headers[header::REFERRER_POLICY], "same-origin");
        if ["/", "/static/style.css", "/static/live.js"].contains(&path) {
            weight += a.body.len();
        }
        if a.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
        {
            // No inline script or style: the CSP would block them.
            assert!(!a.body.contains("<script>"), "{path}");
            assert!(!a.body.contains("<style"), "{path}");
            assert!(!a.body.contains(" style="), "{path}");
            assert!(!a.body.contains(" onclick="), "{path}");
        }
    }
    // The first load of the upcoming page, all assets included.
    assert!(weight <= 100 * 1024, "{weight} bytes");
    let new = get(&s.router, "/new").await;
    assert!(
        new.body.len() <= 100 * 1024,
        "/new is {} bytes",
        new.body.len()
    );

    let missing = get(&s.router, "/no/such/page").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_request_for_another_host_is_refused() {
    let s = site();
    for host in [
        "127.0.0.1:7645",
        "localhost:7645",
        "LOCALHOST:7645",
        "[::1]:7645",
    ] {
        let a = get_with(&s.router, "/", &[("host", host)]).await;
        assert_eq!(a.status, StatusCode::OK, "{host}");
    }
    for host in [
        "evil.example:7645",
        "evil.example",
        "127.0.0.1:8080",
        "localhost",
        "10.0.0.1:7645",
        "localhost.evil.example:7645",
        "",
    ] {
        let a = get_with(&s.router, "/", &[("host", host)]).await;
        assert_eq!(a.status, StatusCode::MISDIRECTED_REQUEST, "{host}");
        assert!(a.body.contains("DNS rebinding"), "{}", a.body);
    }
    // No Host header at all.
    let a = get_with(&s.router, "/", &[]).await;
    assert_eq!(a.status, StatusCode::MISDIRECTED_REQUEST);
    // A POST to another host is refused before anything else.
    let token = csrf(&s.router).await;
    let a = post_with(
        &s.router,
        "/new",
        form(&new_event_fields(&token, "x", "2031-05-01", "18:00")),
        &[("host", "evil.example:7645")],
    )
    .await;
    assert_eq!(a.status, StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(event_count(&s.app), 0);
}

#[test]
fn hosts_on_every_interface_are_addresses_with_the_port() {
    let any: SocketAddr = "0.0.0.0:7645".parse().unwrap();
    assert!(web::security::host_allowed("192.168.1.20:7645", any, &[]));
    assert!(!web::security::host_allowed("192.168.1.20:80", any, &[]));
    assert!(!web::security::host_allowed("myhost.lan:7645", any, &[]));
    assert!(web::security::host_allowed(
        "myhost.lan:7645",
        any,
        &["myhost.lan:7645".into()]
    ));
}

#[tokio::test]
async fn posts_without_the_token_or_from_another_site_are_refused_and_publish_nothing() {
    let s = site();
    let token = csrf(&s.router).await;
    let good = new_event_fields(&token, "Picnic", "2031-05-01", "18:00");
    let mut no_token = good.clone();
    no_token.retain(|(k, _)| *k != "csrf");
    let mut wrong_token = good.clone();
    wrong_token[0].1 = "0000000000000000000000000000000000000000000000000000000000000000";

    let a = post(&s.router, "/new", &no_token).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    let a = post(&s.router, "/new", &wrong_token).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("origin", "http://127.0.0.1:8080"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let a = post_with(
            &s.router,
            "/new",
            form(&good),
            &[("host", HOST), (name, value)],
        )
        .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(a.body.contains("another site"), "{}", a.body);
    }
    assert_eq!(event_count(&s.app), 0, "a refused POST published");

    // A GET never changes anything: the form's address does not answer it,
    // and other methods are refused.
    let a = get(&s.router, "/new?title=x&date=2031-05-01&start=18:00").await;
    assert_eq!(a.status, StatusCode::OK);
    let id = announce(&s.app, "Soup", None, None);
    let a = get(&s.router, &format!("{}/rsvp?status=going", event_path(&id))).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(s.app.event(&id).unwrap().summary.mine.is_none());
    let req = Request::builder()
        .method("PUT")
        .uri("/new")
        .header("host", HOST)
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&s.router, req).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );

    // `Origin: null` alone is refused; a browser sends it with the page's
    // own forms under `Referrer-Policy: no-referrer`, together with
    // `Sec-Fetch-Site: same-origin`, which is then accepted (below).
    let a = post_with(
        &s.router,
        "/new",
        form(&good),
        &[("host", HOST), ("origin", "null")],
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = post_with(
        &s.router,
        "/new",
        form(&good),
        &[
            ("host", HOST),
            ("origin", "null"),
            ("sec-fetch-site", "cross-site"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(event_count(&s.app), 1);
    let a = post_with(
        &s.router,
        "/new",
        form(&good),
        &[
            ("host", HOST),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(event_count(&s.app), 2);

    // The same request from the page itself goes through.
    let a = post(&s.router, "/new", &good).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(event_count(&s.app), 3);
    // A request typed by the person (no Origin, Sec-Fetch-Site: none) too.
    let a = post_with(
        &s.router,
        "/new",
        form(&good),
        &[("host", HOST), ("sec-fetch-site", "none")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_oversized_body_is_refused_and_publishes_nothing() {
    let s = site();
    let token = csrf(&s.router).await;
    let big = "a".repeat(web::MAX_BODY_BYTES + 1);
    let mut fields = new_event_fields(&token, "Big", "2031-05-01", "18:00");
    fields.push(("description", &big));
    let a = post(&s.router, "/new", &fields).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(event_count(&s.app), 0);
    // A description over the content limit (but under the body limit)
    // comes back next to its field.
    let long = "b".repeat(9000);
    let mut fields = new_event_fields(&token, "Long", "2031-05-01", "18:00");
    fields.push(("description", &long));
    let a = post(&s.router, "/new", &fields).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        a.part("description-error", "</p>").contains("8192"),
        "{}",
        a.body
    );
    assert_eq!(event_count(&s.app), 0);
}

#[tokio::test]
async fn hostile_titles_and_descriptions_are_escaped_and_only_web_links_are_links() {
    let s = site();
    let title = "<script>alert(1)</script> & \"quotes\" &amp;";
    let description = "javascript:alert(2) <img src=x onerror=alert(3)> see https://ok.example/a?b=1&c=2 or \
         <a href=\"javascript:alert(4)\">x</a> data:text/html,hi";
    let mut e = event(title, Some(description.into()), None);
    e.url = Some("javascript:alert(5)".into());
    e.location = Some("<b>the park</b>".into());
    let id = s
        .app
        .announce(&e, potluck::app::Past::Allow, now_ms())
        .unwrap()
        .id();
    s.app.set_name("<i>Mallory</i>".into(), now_ms()).unwrap();
    for path in ["/", &event_path(&id)] {
        let a = get(&s.router, path).await;
        assert_eq!(a.status, StatusCode::OK);
        let b = &a.body;
        assert!(!b.contains("<script>alert"), "{path}: {b}");
        assert!(
            b.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot; &amp;amp;"),
            "{path}: {b}"
        );
        assert!(!b.contains("<img"), "{path}");
        assert!(!b.contains("<b>the park"), "{path}");
        assert!(!b.contains("<i>Mallory"), "{path}");
        assert!(b.contains("&lt;i&gt;Mallory&lt;/i&gt;"), "{path}");
        assert!(
            !b.to_ascii_lowercase().contains("href=\"javascript"),
            "{path}"
        );
        assert!(!b.contains("href=\"data:"), "{path}");
    }
    let page = get(&s.router, &event_path(&id)).await;
    assert!(
        page.body
            .contains("<a href=\"https://ok.example/a?b=1&amp;c=2\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("&lt;img src=x onerror=alert(3)&gt;"));
    assert!(
        page.body.contains("javascript:alert(5)"),
        "the link is shown as text"
    );
}

#[tokio::test]
async fn an_unknown_event_is_not_found() {
    let s = site();
    let token = csrf(&s.router).await;
    let unknown = event_path(&MessageId([7; 32]));
    for path in [
        unknown.clone(),
        format!("{unknown}/event.ics"),
        "/e/not-a-key".into(),
        "/e/%25abc.blake3".into(),
    ] {
        let a = get(&s.router, &path).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
    }
    let a = post(
        &s.router,
        &format!("{unknown}/rsvp"),
        &[("csrf", &token), ("status", "going")],
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rsvp_through_the_page_sets_and_changes_the_answer() {
    let s = site();
    let id = announce(&s.app, "Soup night", None, None);
    let path = event_path(&id);
    let token = csrf(&s.router).await;
    let page = get(&s.router, &path).await;
    for name in ["Going", "Maybe", "Not going"] {
        assert!(page.body.contains(&format!(">{name}</button>")), "{name}");
    }
    assert!(page.part("my-status", "</p>").contains("not answered"));

    let a = post(
        &s.router,
        &format!("{path}/rsvp"),
        &[
            ("csrf", &token),
            ("status", "going"),
            ("guests", "2"),
            ("note", "I bring bread"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(a.headers[header::LOCATION], format!("{path}#answer"));
    let mine = s.app.event(&id).unwrap().summary.mine.unwrap();
    assert_eq!(mine.rsvp.status, RsvpStatus::Going);
    assert_eq!(mine.rsvp.guests, 2);
    let page = get(&s.router, &path).await;
    let status = page.part("my-status", "</p>");
    assert!(
        status.contains("going") && status.contains("admitted"),
        "{status}"
    );
    assert!(page.body.contains("I bring bread"));

    let a = post(
        &s.router,
        &format!("{path}/rsvp"),
        &[
            ("csrf", &token),
            ("status", "not-going"),
            ("guests", ""),
            ("note", ""),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let mine = s.app.event(&id).unwrap().summary.mine.unwrap();
    assert_eq!(mine.rsvp.status, RsvpStatus::NotGoing);
    assert!(
        get(&s.router, &path)
            .await
            .part("my-status", "</p>")
            .contains("not going")
    );

    // Bad input: the form comes back with the error by the field.
    let a = post(
        &s.router,
        &format!("{path}/rsvp"),
        &[("csrf", &token), ("status", "going"), ("guests", "99")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        a.part("rsvp-guests-error", "</p>").contains("20"),
        "{}",
        a.body
    );
    let a = post(
        &s.router,
        &format!("{path}/rsvp"),
        &[("csrf", &token), ("status", "yes")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.part("rsvp-status-error", "</p>").contains("Going"));
    let mine = s.app.event(&id).unwrap().summary.mine.unwrap();
    assert_eq!(
        mine.rsvp.status,
        RsvpStatus::NotGoing,
        "bad input changed the answer"
    );
}

#[tokio::test]
async fn a_new_event_takes_the_wall_clock_time_in_its_zone_across_dst() {
    let s = site();
    let token = csrf(&s.router).await;
    // New York moves its clocks forward at 02:00 on 2031-03-09: 09:00 the
    // day before is UTC-5, the day itself UTC-4.
    let mut fields = new_event_fields(&token, "Before", "2031-03-08", "09:00");
    fields.push(("end", "11:30"));
    let a = post(&s.router, "/new", &fields).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let mut fields = new_event_fields(&token, "After", "2031-03-09", "09:00");
    fields.push(("duration", "2h"));
    let a = post(&s.router, "/new", &fields).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let location = a.headers[header::LOCATION].to_str().unwrap().to_owned();

    let (events, _) = s.app.events(EventList::All, now_ms(), 0).unwrap();
    let by_title = |t: &str| {
        events
            .iter()
            .find(|e| e.state.event.title == t)
            .unwrap()
            .state
            .event
            .clone()
    };
    let before = by_title("Before");
    assert_eq!(before.start.timestamp().to_string(), "2031-03-08T14:00:00Z");
    assert_eq!(
        before.end.unwrap().timestamp().to_string(),
        "2031-03-08T16:30:00Z"
    );
    assert_eq!(before.tz.as_deref(), Some("America/New_York"));
    let after = by_title("After");
    assert_eq!(after.start.timestamp().to_string(), "2031-03-09T13:00:00Z");
    assert_eq!(
        after.end.unwrap().timestamp().to_string(),
        "2031-03-09T15:00:00Z"
    );
    assert_eq!(after.location.as_deref(), Some("the hall"));

    // The page shows the event's wall clock and the viewer's (Paris).
    let page = get(&s.router, &location).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Sun 9 Mar 2031, 09:00–11:00"),
        "{}",
        page.body
    );
    assert!(page.body.contains("(America/New_York)"));
    assert!(
        page.body.contains("Your time: Sun 9 Mar 2031, 14:00–16:00"),
        "{}",
        page.body
    );

    // A time the clocks skip is refused, next to the start field.
    let fields = new_event_fields(&token, "Gap", "2031-03-09", "02:30");
    let a = post(&s.router, "/new", &fields).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        a.part("start-error", "</p>").contains("does not exist"),
        "{}",
        a.body
    );
    // So is one they repeat.
    let fields = new_event_fields(&token, "Fold", "2031-11-02", "01:30");
    let a = post(&s.router, "/new", &fields).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.part("start-error", "</p>").contains("happens twice"));
    assert_eq!(event_count(&s.app), 2, "a refused form published");
}

#[tokio::test]
async fn bad_input_comes_back_with_the_errors_by_the_fields_and_the_values_kept() {
    let s = site();
    let token = csrf(&s.router).await;
    let a = post(
        &s.router,
        "/new",
        &[
            ("csrf", &token),
            ("title", " "),
            ("date", "2031-02-30"),
            ("start", "25:00"),
            ("zone", "Mars/Olympus"),
            ("capacity", "-3"),
            ("location", "kept <place>"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["title", "date", "start", "zone"] {
        a.part(&format!("{field}-error"), "</p>");
    }
    assert!(a.body.contains("aria-invalid=\"true\""));
    assert!(
        a.body.contains("value=\"kept &lt;place&gt;\""),
        "{}",
        a.body
    );
    let a = post(
        &s.router,
        "/new",
        &[
            ("csrf", &token),
            ("title", "ok"),
            ("date", "2031-02-10"),
            ("start", "10:00"),
            ("zone", "UTC"),
            ("capacity", "lots"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    a.part("capacity-error", "</p>");
    assert_eq!(event_count(&s.app), 0);
}

#[tokio::test]
async fn the_organizer_edits_cancels_and_sees_the_waitlist_move() {
    let org = site();
    let id = announce(&org.app, "Soup night", None, Some(1));
    let path = event_path(&id);
    let key = event_key(&id);
    let event_msg = org.store.message(&id).unwrap().unwrap();

    // Two guests, each with their own store and page.
    let alice = site();
    let bob = site();
    for (guest, name) in [(&alice, "Alice"), (&bob, "Bob")] {
        guest.app.ingest(vec![event_msg.clone()]).unwrap();
        guest.app.set_name(name.into(), now_ms()).unwrap();
        guest
            .app
            .publish(
                &rsvp(id, RsvpStatus::Going, 0, Some(0)).to_content_bytes(),
                now_ms(),
            )
            .unwrap();
        copy_feed(&guest.store, &org.app, &guest.feed);
    }
    copy_feed(&org.store, &bob.app, &org.feed);
    let bob_page = get(&bob.router, &path).await;
    let status = bob_page.part("my-status", "</p>");
    assert!(
        status.contains("waitlisted") && status.contains("number 1 in line"),
        "{status}"
    );

    let page = get(&org.router, &path).await;
    assert!(
        page.part("waitlist", "</ol>").contains("Bob"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("0</strong> places left"),
        "{}",
        page.body
    );

    // Bob's page listens; Alice drops out; the organizer's node admits Bob,
    // and that reaches Bob's page as a change of this event.
    let req = Request::builder()
        .uri("/events")
        .header("host", HOST)
        .body(Body::empty())
        .unwrap();
    let resp = bob.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = resp.into_body();
    alice
        .app
        .publish(
            &rsvp(id, RsvpStatus::NotGoing, 0, Some(0)).to_content_bytes(),
            now_ms(),
        )
        .unwrap();
    copy_feed(&alice.store, &org.app, &alice.feed);
    copy_feed(&org.store, &bob.app, &org.feed);
    let seen = read_until_event(&mut body, &key).await;
    assert!(seen.contains("event: change"), "{seen}");
    assert!(seen.contains(&format!("data: events {key}")), "{seen}");
    let status = get(&bob.router, &path).await;
    assert!(
        status.part("my-status", "</p>").contains("admitted"),
        "{}",
        status.body
    );
    let page = get(&org.router, &path).await;
    assert!(
        page.part("waitlist", "</div>")
            .contains("Nobody is waiting")
    );

    // Only the organizer gets the edit and cancel forms, and only the
    // organizer's node accepts them. The event has no zone of its own, so
    // the form shows it in the viewer's (Paris, UTC+2 in June).
    assert!(!get(&bob.router, &path).await.body.contains("/edit\""));
    let token = csrf(&org.router).await;
    let bob_token = csrf(&bob.router).await;
    let edit = |token: &str, title: &str| {
        vec![
            ("csrf".to_owned(), token.to_owned()),
            ("title".to_owned(), title.to_owned()),
            ("date".to_owned(), "2031-06-01".to_owned()),
            ("start".to_owned(), "20:00".to_owned()),
            ("zone".to_owned(), "Europe/Paris".to_owned()),
            ("location".to_owned(), "the park".to_owned()),
            ("capacity".to_owned(), "1".to_owned()),
        ]
    };
    let fields = edit(&bob_token, "Stolen");
    let a = post(&bob.router, &format!("{path}/edit"), &pairs(&fields)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);

    // Unchanged values are not an update.
    let fields = edit(&token, "Soup night");
    let a = post(&org.router, &format!("{path}/edit"), &pairs(&fields)).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("Nothing to change"));
    assert_eq!(org.app.event_state(&id).unwrap().revision, 0);

    let fields = edit(&token, "Soup & bread night");
    let a = post(&org.router, &format!("{path}/edit"), &pairs(&fields)).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let state = org.app.event_state(&id).unwrap();
    assert_eq!(state.event.title, "Soup & bread night");
    assert_eq!(state.revision, 1);
    assert_eq!(state.plan_revision, 0, "the title alone is not a new plan");

    let a = post(
        &org.router,
        &format!("{path}/cancel"),
        &[("csrf", &token), ("reason", "the soup burnt")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let page = get(&org.router, &path).await;
    assert!(page.body.contains("Cancelled"));
    assert!(page.body.contains("the soup burnt"));
    assert!(!page.body.contains(">Going</button>"), "RSVPs are closed");
    let a = post(
        &org.router,
        &format!("{path}/rsvp"),
        &[("csrf", &token), ("status", "going")],
    )
    .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    let list = get(&org.router, "/").await;
    assert!(list.body.contains("badge cancelled"), "{}", list.body);
}

#[tokio::test]
async fn the_lists_and_the_agenda_show_counts_capacity_and_my_answer() {
    let s = site();
    let id = announce(&s.app, "Soup night", None, Some(10));
    s.app
        .rsvp(&id, RsvpStatus::Going, 2, None, now_ms())
        .unwrap();
    let mut past = event("Old picnic", None, None);
    past.start = potluck::content::EventTime::parse("start", "2020-01-01T10:00:00Z").unwrap();
    s.app
        .announce(&past, potluck::app::Past::Allow, now_ms())
        .unwrap();

    let list = get(&s.router, "/").await;
    let events = list.part("events", "</section>");
    assert!(events.contains("Soup night"));
    assert!(!events.contains("Old picnic"));
    assert!(events.contains("(3 people with guests)"), "{events}");
    assert!(
        events.contains("Capacity 10: <strong>7</strong> places left"),
        "{events}"
    );
    assert!(
        events.contains("Your answer: <strong>going — admitted"),
        "{events}"
    );
    assert!(
        events.contains("data-status=\"going admitted\""),
        "{events}"
    );
    assert!(events.contains("the park"));
    let past_list = get(&s.router, "/past").await;
    assert!(
        past_list
            .part("events", "</section>")
            .contains("Old picnic")
    );
    assert!(
        !past_list
            .part("events", "</section>")
            .contains("Soup night")
    );

    let agenda = get(&s.router, "/agenda").await;
    let part = agenda.part("agenda", "</section>");
    assert!(
        part.contains("Soup night") && part.contains("admitted"),
        "{part}"
    );
}

#[tokio::test]
async fn the_calendar_feeds_parse_with_the_expected_properties() {
    let s = site();
    let id = announce(&s.app, "Soup, night; \\ & more", None, None);
    s.app.set_name("Ann".into(), now_ms()).unwrap();
    s.app
        .rsvp(&id, RsvpStatus::Going, 0, None, now_ms())
        .unwrap();
    for path in [
        "/calendar.ics".to_owned(),
        format!("{}/event.ics", event_path(&id)),
    ] {
        let a = get(&s.router, &path).await;
        assert_eq!(a.status, StatusCode::OK);
        assert!(
            a.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/calendar")
        );
        assert!(a.body.starts_with("BEGIN:VCALENDAR\r\n"));
        let cal: Calendar = a.body.parse().expect("parses");
        assert_eq!(cal.property_value("VERSION"), Some("2.0"));
        assert_eq!(
            cal.property_value("PRODID"),
            Some(potluck::app::ics::PRODID)
        );
        let events: Vec<_> = cal.events().collect();
        assert_eq!(events.len(), 1, "{path}");
        let e = events[0];
        assert_eq!(e.get_uid(), Some(potluck::app::ics::uid(&id).as_str()));
        assert_eq!(e.get_summary(), Some("Soup, night; \\ & more"));
        assert_eq!(e.property_value("DTSTART"), Some("20310601T180000Z"));
        assert!(
            e.property_value("DTSTAMP")
                .is_some_and(|v| v.ends_with('Z'))
        );
        assert_eq!(e.property_value("STATUS"), Some("CONFIRMED"));
        assert_eq!(e.get_sequence(), Some(0));
        let attendees = &e.multi_properties()["ATTENDEE"];
        assert_eq!(attendees.len(), 1);
        assert_eq!(attendees[0].params()["PARTSTAT"].value(), "ACCEPTED");
        assert_eq!(attendees[0].params()["CN"].value(), "Ann");
        // The default alarm (no "reminders" in config.json): an hour
        // before (tests/ics.rs reads every property of it).
        assert_eq!(a.body.matches("BEGIN:VALARM\r\n").count(), 1, "{path}");
        assert!(a.body.contains("\r\nTRIGGER:-PT1H\r\n"), "{path}");
        assert!(a.body.contains("\r\nACTION:DISPLAY\r\n"), "{path}");
    }
}

#[tokio::test]
async fn the_network_page_names_me_and_takes_follows_blocks_and_codes() {
    let s = site_with(WebSettings {
        invite_code: Some("potluck-invite:abc".into()),
        ..settings()
    });
    let token = csrf(&s.router).await;
    let page = get(&s.router, "/network").await;
    assert!(page.body.contains("value=\"potluck-invite:abc\""));
    assert!(page.body.contains("data-copy=\"invite-code\""));
    assert!(
        page.part("peers", "</section>")
            .contains("No peer is connected")
    );

    let a = post(
        &s.router,
        "/network/name",
        &[("csrf", &token), ("name", "Ann & co")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(s.app.name_of(&s.feed).unwrap().as_deref(), Some("Ann & co"));
    assert!(
        get(&s.router, "/network")
            .await
            .part("me", "</p>")
            .contains("Ann &amp; co")
    );
    let a = post(
        &s.router,
        "/network/name",
        &[("csrf", &token), ("name", " ")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    a.part("me-name-error", "</p>");

    let other = feed_of(&new_key()).to_string();
    let a = post(
        &s.router,
        "/network/contact",
        &[("csrf", &token), ("feed", &other), ("action", "follow")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let contacts = s.app.contacts().unwrap();
    assert_eq!(contacts.len(), 1);
    assert!(contacts[0].following);
    let a = post(
        &s.router,
        "/network/contact",
        &[("csrf", &token), ("feed", &other), ("action", "block")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert!(s.app.contacts().unwrap()[0].blocking);
    let a = post(
        &s.router,
        "/network/contact",
        &[("csrf", &token), ("feed", "@nope"), ("action", "follow")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    a.part("contact-feed-error", "</p>");
    let mine = s.feed.to_string();
    let a = post(
        &s.router,
        "/network/contact",
        &[("csrf", &token), ("feed", &mine), ("action", "block")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.part("contact-feed-error", "</p>").contains("your own"));

    let a = post(
        &s.router,
        "/network/join",
        &[("csrf", &token), ("code", "hello")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    a.part("join-code-error", "</p>");
    // A code for this network: follow the inviter, remember the address.
    let inviter = feed_of(&new_key());
    let addr = format!("127.0.0.1:{}", common::free_tcp_port());
    let code = |network| {
        potluck::home::config::Invite {
            peer: potluck::home::config::PeerAddr::parse(&format!("{inviter}@{addr}")).unwrap(),
            network,
            member: None,
            hubs: Vec::new(),
        }
        .to_code()
    };
    let private = code(Some(potluck::proto::handshake::NetworkKey([9; 32])));
    let a = post(
        &s.router,
        "/network/join",
        &[("csrf", &token), ("code", &private)],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        a.part("join-code-error", "</p>").contains("new home"),
        "{}",
        a.body
    );
    assert!(s.store.peer_record(&addr).unwrap().is_none());
    let a = post(
        &s.router,
        "/network/join",
        &[("csrf", &token), ("code", &code(None))],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let record = s.store.peer_record(&addr).unwrap().expect("remembered");
    assert_eq!(record.feed, Some(inviter));
    assert_eq!(record.source, potluck::proto::peerbook::PeerSource::Invite);
    assert!(
        s.app
            .contacts()
            .unwrap()
            .iter()
            .any(|c| c.feed == inviter && c.following)
    );
    let page = get(&s.router, "/network").await;
    assert!(page.part("book", "</section>").contains(&addr));
    assert!(page.part("book", "</section>").contains("from an invite"));
}

#[tokio::test]
async fn with_an_access_token_every_page_needs_it() {
    let s = site_with(WebSettings {
        token: Some("s3cret-token".into()),
        ..settings()
    });
    let a = get(&s.router, "/").await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    assert_eq!(a.headers[header::LOCATION], "/login");
    assert_eq!(
        get(&s.router, "/calendar.ics").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        get(&s.router, "/?token=wrong").await.status,
        StatusCode::SEE_OTHER
    );
    let login = get(&s.router, "/login").await;
    assert_eq!(login.status, StatusCode::OK);
    let at = login.body.find("name=\"csrf\" value=\"").unwrap() + 19;
    let token = login.body[at..at + 64].to_owned();

    // A POST without the cookie is refused even with the CSRF token.
    let a = post(
        &s.router,
        "/network/name",
        &[("csrf", &token), ("name", "x")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(s.app.name_of(&s.feed).unwrap().is_none());

    let a = post(&s.router, "/login", &[("csrf", &token), ("token", "wrong")]).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    a.part("token-error", "</p>");
    let a = post(
        &s.router,
        "/login",
        &[("csrf", &token), ("token", "s3cret-token")],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let cookie = a.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().unwrap().to_owned();
    let a = get_with(&s.router, "/", &[("host", HOST), ("cookie", &pair)]).await;
    assert_eq!(a.status, StatusCode::OK);

    // A calendar app subscribes with the token in the address.
    let a = get(&s.router, "/calendar.ics?token=s3cret-token").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.starts_with("BEGIN:VCALENDAR"));
}

#[tokio::test]
async fn serve_answers_on_its_listener_and_stops_with_a_live_stream_open() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let s = site();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(web::serve(s.app.clone(), listener, settings(), async {
        let _ = stopped.await;
    }));

    // A live stream stays open...
    let mut live = tokio::net::TcpStream::connect(local).await.unwrap();
    live.write_all(format!("GET /events HTTP/1.1\r\nHost: {local}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), live.read(&mut head))
        .await
        .expect("headers in time")
        .unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));

    // ...while a page is served.
    let mut page = tokio::net::TcpStream::connect(local).await.unwrap();
    page.write_all(
        format!(
            "GET / HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
            local.port()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut text = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), page.read_to_end(&mut text))
        .await
        .expect("page in time")
        .unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("Upcoming events"));

    // Stopping ends the live stream and the server.
    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stopped with a live stream open")
        .unwrap();
    assert!(result.is_ok());
}

#[test]
fn listening_beyond_loopback_needs_a_token() {
    let any: SocketAddr = "0.0.0.0:7645".parse().unwrap();
    let lan: SocketAddr = "192.168.1.20:7645".parse().unwrap();
    for exposed in [any, lan] {
        let err = web::check_exposure(exposed, &settings()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("access token"), "{err}");
        let with_token = WebSettings {
            token: Some("t".into()),
            ..settings()
        };
        assert!(web::check_exposure(exposed, &with_token).is_ok());
    }
    assert!(web::check_exposure(addr(), &settings()).is_ok());
    assert!(web::check_exposure("[::1]:7645".parse().unwrap(), &settings()).is_ok());
}

#[tokio::test]
async fn the_live_stream_names_an_event_announced_through_the_page() {
    let s = site();
    let token = csrf(&s.router).await;
    let req = Request::builder()
        .uri("/events")
        .header("host", HOST)
        .body(Body::empty())
        .unwrap();
    let resp = s.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let a = post(
        &s.router,
        "/new",
        &new_event_fields(&token, "Live", "2031-05-01", "18:00"),
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER);
    let key = a.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .strip_prefix("/e/")
        .unwrap()
        .to_owned();
    let seen = read_until_event(&mut body, &key).await;
    assert!(
        seen.contains(&format!("event: change\ndata: events {key}")),
        "{seen}"
    );
}

#[tokio::test]
async fn long_lists_come_in_pages() {
    let s = site();
    for i in 0..101 {
        let mut e = event(&format!("Event {i:03}"), None, None);
        e.start = potluck::content::EventTime::parse(
            "start",
            &format!("2031-06-01T{:02}:{:02}:00Z", i / 60, i % 60),
        )
        .unwrap();
        s.app
            .announce(&e, potluck::app::Past::Allow, now_ms())
            .unwrap();
    }
    let cards = |page: &Answer| {
        page.part("events", "</section>")
            .matches("<article")
            .count()
    };
    let first = get(&s.router, "/").await;
    assert_eq!(cards(&first), 50);
    assert!(first.body.contains("Event 000") && first.body.contains("Event 049"));
    assert!(!first.body.contains("Event 050"));
    assert!(first.body.contains("href=\"/?page=2\""));
    assert!(!first.body.contains("rel=\"prev\""));
    assert!(first.body.len() <= 100 * 1024, "{} bytes", first.body.len());
    let second = get(&s.router, "/?page=2").await;
    assert_eq!(cards(&second), 50);
    assert!(second.body.contains("Event 050") && second.body.contains("Event 099"));
    assert!(!second.body.contains("Event 049") && !second.body.contains("Event 100"));
    assert!(second.body.contains("href=\"/?page=1\""));
    assert!(second.body.contains("href=\"/?page=3\""));
    let third = get(&s.router, "/?page=3").await;
    assert_eq!(cards(&third), 1);
    assert!(third.body.contains("Event 100"));
    assert!(third.body.contains("href=\"/?page=2\""));
    assert!(!third.body.contains("rel=\"next\""));
    for odd in ["/?page=0", "/?page=abc", "/?page=-1"] {
        let a = get(&s.router, odd).await;
        assert_eq!(a.status, StatusCode::OK, "{odd}");
        assert!(a.body.contains("Event 000"), "{odd} is the first page");
    }
}

#[tokio::test]
async fn live_streams_are_bounded_and_a_closed_tab_frees_its_place() {
    let s = site();
    let open = |router: Router| async move {
        let req = Request::builder()
            .uri("/events")
            .header("host", HOST)
            .body(Body::empty())
            .unwrap();
        router.oneshot(req).await.unwrap()
    };
    // Every open stream holds its place for as long as its body lives.
    let mut streams = Vec::new();
    for i in 0..32 {
        let resp = open(s.router.clone()).await;
        assert_eq!(resp.status(), StatusCode::OK, "stream {i}");
        streams.push(resp.into_body());
    }
    let refused = open(s.router.clone()).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The pages themselves still answer.
    assert_eq!(get(&s.router, "/").await.status, StatusCode::OK);
    // A tab closes: its place is free again.
    drop(streams.pop());
    let again = open(s.router.clone()).await;
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_edit_form_gives_long_and_clock_change_events_their_real_length() {
    let s = site();
    let at = |text: &str| potluck::content::EventTime::parse("start", text).unwrap();
    let mut long = event("Weekend camp", None, None);
    long.start = at("2031-06-06T18:00:00-04:00");
    long.end = Some(at("2031-06-07T20:00:00-04:00"));
    long.tz = Some("America/New_York".into());
    // The clocks go forward at 02:00 on 9 March 2031 in New York: 22:00
    // to 04:00 is five hours, not six.
    let mut night = event("Night market", None, None);
    night.start = at("2031-03-08T22:00:00-05:00");
    night.end = Some(at("2031-03-09T04:00:00-04:00"));
    night.tz = Some("America/New_York".into());
    for (e, length) in [(long, "26h0m"), (night, "5h0m")] {
        let id = s
            .app
            .announce(&e, potluck::app::Past::Allow, now_ms())
            .unwrap()
            .id();
        let page = get(&s.router, &event_path(&id)).await;
        assert!(
            page.body.contains(&format!("value=\"{length}\"")),
            "{}: the edit form should say {length}",
            e.title
        );
    }
}

#[tokio::test]
async fn an_event_already_over_is_refused_by_the_form_and_nothing_is_published() {
    let s = site();
    let token = csrf(&s.router).await;
    let a = post(
        &s.router,
        "/new",
        &new_event_fields(&token, "Long gone", "2020-01-01", "18:00"),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(a.body.contains("already over"), "{}", a.body);
    let (all, _) = s.app.events(EventList::All, now_ms(), 0).unwrap();
    assert!(all.is_empty(), "an event was published");
}

/// The app of `home`, started on loopback without LAN discovery (a hub
/// with `hub`), and its page's router.
async fn started(home: &std::path::Path, hub: bool) -> (App, Router) {
    let home = potluck::app::Home::at(home);
    let options = potluck::app::StartOptions {
        listen: Some("127.0.0.1:0".into()),
        discovery: potluck::app::DiscoveryOptions {
            off: true,
            ..Default::default()
        },
        hub,
        ..Default::default()
    };
    let app = App::open(&home, potluck::app::Access::Create).unwrap();
    let port = potluck::app::NodePort::bind(&home, &options).unwrap();
    app.start(port, &options, None).await.unwrap();
    let router = web::router(app.clone(), settings(), addr());
    (app, router)
}

/// Reloads `path` until the part `id` (up to `close`) holds every one of
/// `needles`; returns it. Bounded by [`common::DEADLINE`] twice over (a
/// loaded machine runs three nodes here).
async fn page_part_until(
    router: &Router,
    path: &str,
    id: &str,
    close: &str,
    needles: &[&str],
) -> String {
    let deadline = std::time::Instant::now() + 2 * common::DEADLINE;
    loop {
        let page = get(router, path).await;
        let part = page.part(id, close).to_owned();
        if needles.iter().all(|n| part.contains(n)) {
            return part;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "#{id} of {path} never held {needles:?}: {part}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_page_shows_my_hubs_what_they_hold_and_sessions_through_them() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, hub_router) = started(&dir.path().join("hub"), true).await;
    let (ann, router) = started(&dir.path().join("ann"), false).await;
    let hub_feed = hub.feed_id().unwrap();
    let ann_feed = ann.feed_id().unwrap();
    let hub_listen = hub.serving().expect("the hub serves").listen.to_string();
    let hub_addr = format!("{hub_feed}@{hub_listen}");
    let token = csrf(&router).await;

    // No hub yet.
    let hubs = get(&router, "/network").await;
    assert!(
        hubs.part("hubs", "</div>").contains("You belong to no hub"),
        "{}",
        hubs.body
    );

    // A code that is no code, and an invite that is no member code, come
    // back on the form; nothing is configured.
    let a = post(
        &router,
        "/network/hub",
        &[("csrf", &token), ("code", "hello")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    a.part("hub-code-error", "</p>");
    let plain = potluck::app::Invite {
        peer: potluck::app::PeerAddr::parse(&hub_addr).unwrap(),
        network: None,
        member: None,
        hubs: Vec::new(),
    }
    .to_code();
    let a = post(
        &router,
        "/network/hub",
        &[("csrf", &token), ("code", &plain)],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        a.part("hub-code-error", "</p>").contains("member code"),
        "{}",
        a.body
    );
    assert!(ann.hubs().unwrap().is_empty());

    // Bo has the hub in config.json and follows Ann; Ann follows Bo and
    // announces, then joins with a member code through the page.
    let bo_home = potluck::app::Home::at(dir.path().join("bo"));
    bo_home.create().unwrap();
    let mut config = potluck::home::config::ConfigFile::load(&bo_home).unwrap();
    config.hubs.push(hub_addr.clone());
    config.save(&bo_home).unwrap();
    let bo = App::open(&bo_home, potluck::app::Access::Create).unwrap();
    let bo_feed = bo.feed_id().unwrap();
    bo.contact(ann_feed, potluck::app::ContactChange::Follow, now_ms())
        .unwrap();
    drop(bo);
    ann.contact(bo_feed, potluck::app::ContactChange::Follow, now_ms())
        .unwrap();
    announce(&ann, "Soup night", None, None);
    let code = hub
        .invite_with(
            Some(hub_listen.clone()),
            &potluck::app::MemberCodeOptions::default(),
        )
        .unwrap()
        .code;
    let a = post(
        &router,
        "/network/hub",
        &[("csrf", &token), ("code", &code)],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(ann.hubs().unwrap()[0].feed, Some(hub_feed));

    // The hub is connected, directly, and holds all of Ann's messages.
    let held = ann.clock().unwrap().feeds[&ann_feed];
    assert_eq!(held, 2, "a follow and an event");
    let label = potluck::app::short_feed(&hub_feed);
    let all = format!("holds all your {held} messages");
    let part = page_part_until(
        &router,
        "/network",
        "hubs",
        "</div>",
        &["<span class=\"badge admitted\">connected</span>", &all],
    )
    .await;
    assert!(part.contains(&label), "{part}");
    assert!(!part.contains("not connected"), "{part}");
    let peers = get(&router, "/network").await;
    let peers = peers.part("peers", "</section>");
    assert!(peers.contains("<th scope=\"col\">How</th>"), "{peers}");
    assert!(peers.contains("<td>direct</td>"), "{peers}");

    // The operator admits Bo, whose node then connects to the hub: the
    // hub tells Ann, whose node reaches Bo through the hub's tunnel.
    hub.hub_admit(&bo_feed, None).unwrap();
    let (bo, _bo_router) = started(bo_home.root(), false).await;
    page_part_until(
        &router,
        "/network",
        "peers",
        "</section>",
        &[&format!("through hub {label}"), "<td>direct</td>"],
    )
    .await;
    assert!(
        ann.network()
            .unwrap()
            .connected
            .iter()
            .any(|p| p.info.feed == bo_feed && p.info.via_hub == Some(hub_feed))
    );
    // The hub's own page counts its members.
    page_part_until(
        &hub_router,
        "/network",
        "members",
        "</p>",
        &["This node is a hub: 2 members, 2 connected now"],
    )
    .await;

    // What Ann publishes now goes up in the live session, which says so
    // (the memory of the last session, her join, still says 2).
    announce(&ann, "Tea night", None, None);
    let held = held + 1;
    let all = format!("holds all your {held} messages");
    page_part_until(
        &router,
        "/network",
        "hubs",
        "</div>",
        &["<span class=\"badge admitted\">connected</span>", &all],
    )
    .await;

    // The hub goes away: not connected, and what it held stays known
    // (from the memory of the last session), behind what Ann publishes now.
    hub.shutdown();
    page_part_until(
        &router,
        "/network",
        "hubs",
        "</div>",
        &["not connected", &all],
    )
    .await;
    announce(&ann, "Bread night", None, None);
    let part = page_part_until(
        &router,
        "/network",
        "hubs",
        "</div>",
        &[&format!("holds {held} of your {} messages", held + 1)],
    )
    .await;
    assert!(part.contains("not connected"), "{part}");
    ann.shutdown();
    bo.shutdown();
}

/// The event form's marks for hubs' public pages: `unlisted` and
/// `closed_to_web` everywhere, `public` only on a private network (where
/// nothing is shown without it); a new event takes them, and an edit
/// changes them.
#[tokio::test]
async fn the_event_form_marks_an_event_unlisted_or_on_a_private_network_public() {
    let s = site();
    let new = get(&s.router, "/new").await;
    assert!(
        new.body.contains(r#"name="unlisted" type="checkbox""#),
        "{}",
        new.body
    );
    assert!(!new.body.contains(r#"name="public""#), "{}", new.body);
    let token = csrf(&s.router).await;
    let mut fields = new_event_fields(&token, "Quiet dinner", "2031-03-08", "19:00");
    fields.push(("unlisted", "on"));
    let a = post(&s.router, "/new", &fields).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let path = a.headers[header::LOCATION].to_str().unwrap().to_owned();
    let marks = |app: &App| {
        let (events, _) = app.events(EventList::All, now_ms(), 0).unwrap();
        let e = &events[0].state.event;
        (e.unlisted, e.public)
    };
    assert_eq!(marks(&s.app), (true, false));
    // The event's page holds its edit form, with the box ticked.
    let ticked = |body: &str, name: &str| {
        let box_on = format!(r#"name="{name}" type="checkbox" value="on" checked"#);
        assert!(body.contains(&box_on), "{name}: {body}");
    };
    ticked(&get(&s.router, &path).await.body, "unlisted");
    // Unticked in the edit form: listed again.
    let fields = new_event_fields(&token, "Quiet dinner", "2031-03-08", "19:00");
    let a = post(&s.router, &format!("{path}/edit"), &fields).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(marks(&s.app), (false, false));

    // The box for answers from browsers closes the event to them.
    let mut fields = new_event_fields(&token, "Quiet dinner", "2031-03-08", "19:00");
    fields.push(("closed_to_web", "on"));
    let a = post(&s.router, &format!("{path}/edit"), &fields).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let (events, _) = s.app.events(EventList::All, now_ms(), 0).unwrap();
    assert!(events[0].state.event.closed_to_web);
    ticked(&get(&s.router, &path).await.body, "closed_to_web");

    // On a private network the form asks for `public` too.
    let (_dir, store) = open_store();
    let key = new_key();
    let network = potluck::proto::handshake::NetworkKey([5; 32]);
    let app = App::new(unstarted_node(Arc::new(store), key, network));
    let router = web::router(app.clone(), settings(), addr());
    let new = get(&router, "/new").await;
    assert!(
        new.body.contains(r#"name="public" type="checkbox""#),
        "{}",
        new.body
    );
    let token = csrf(&router).await;
    let mut fields = new_event_fields(&token, "Open supper", "2031-03-08", "19:00");
    fields.push(("public", "on"));
    let a = post(&router, "/new", &fields).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    assert_eq!(marks(&app), (false, true));
}

#[tokio::test]
async fn the_thread_under_an_event_takes_comments_replies_edits_and_the_organizers_hide() {
    let s = site();
    let id = announce(&s.app, "Soup night", None, None);
    let path = event_path(&id);
    let token = csrf(&s.router).await;
    let page = get(&s.router, &path).await;
    assert!(page.part("thread", "</div>").contains("No comments yet."));

    let a = post(
        &s.router,
        &format!("{path}/comment"),
        &[
            ("csrf", &token),
            (
                "text",
                "<script>alert(1)</script> recipe: https://a.test/soup?x=1&y=2.",
            ),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let thread = s
        .app
        .thread(
            &id,
            potluck::app::ThreadPage {
                after: None,
                limit: 50,
            },
        )
        .unwrap();
    let first = thread.comments[0].id;
    let anchor = format!("c-{}", event_key(&first));
    assert_eq!(a.headers[header::LOCATION], format!("{path}#{anchor}"));
    let page = get(&s.router, &path).await;
    let shown = page.part("thread", "</ol>");
    assert!(
        shown.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{shown}"
    );
    assert!(!shown.contains("<script>"), "{shown}");
    assert!(
        shown.contains(
            r#"<a href="https://a.test/soup?x=1&amp;y=2" rel="noopener noreferrer nofollow ugc">"#
        ),
        "{shown}"
    );
    assert!(page.body.contains("Links shared"));

    // A reply, then an edit of the first.
    let first_text = first.to_string();
    let a = post(
        &s.router,
        &format!("{path}/comment"),
        &[("csrf", &token), ("text", "Thanks"), ("reply", &first_text)],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let a = post(
        &s.router,
        &format!("{path}/comment/edit"),
        &[
            ("csrf", &token),
            ("comment", &first_text),
            ("text", "plain soup"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let page = get(&s.router, &path).await;
    let shown = page.part("thread", "</ol>");
    assert!(
        shown.contains("plain soup") && shown.contains("edited"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("href=\"#{anchor}\"")),
        "the reply links to what it answers"
    );

    // An empty comment comes back with the reason; nothing is published.
    let a = post(
        &s.router,
        &format!("{path}/comment"),
        &[("csrf", &token), ("text", "   ")],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
    assert!(a.body.contains("must not be empty"), "{}", a.body);

    // A guest's comment, hidden by the organizer (this page's person).
    let (_dir, guest_store) = open_store();
    let guest_store = Arc::new(guest_store);
    let guest_key = new_key();
    let guest = App::new(unstarted_node(
        guest_store.clone(),
        guest_key.clone(),
        DEFAULT_NETWORK_KEY,
    ));
    copy_feed(&s.store, &guest, &s.feed);
    let rude = guest
        .comment(&id, "rude".into(), None, now_ms())
        .unwrap()
        .id();
    copy_feed(&guest_store, &s.app, &feed_of(&guest_key));
    let page = get(&s.router, &path).await;
    assert!(page.part("thread", "</ol>").contains("rude"));
    let a = post(
        &s.router,
        &format!("{path}/comment/hide"),
        &[
            ("csrf", &token),
            ("comment", &rude.to_string()),
            ("hidden", "true"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let page = get(&s.router, &path).await;
    let shown = page.part("thread", "</ol>");
    assert!(
        !shown.contains("rude") && shown.contains("Hidden by the organizer"),
        "{shown}"
    );
    // The organizer cannot delete a guest's comment.
    let a = post(
        &s.router,
        &format!("{path}/comment/delete"),
        &[("csrf", &token), ("comment", &rude.to_string())],
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    let a = post(
        &s.router,
        &format!("{path}/comment/delete"),
        &[("csrf", &token), ("comment", &first_text)],
    )
    .await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let page = get(&s.router, &path).await;
    assert!(
        page.part("thread", "</ol>")
            .contains("Removed by its author")
    );
}

#[tokio::test]
async fn a_new_event_sets_whose_comments_show_and_an_edit_changes_it() {
    let s = site();
    let token = csrf(&s.router).await;
    let mut fields = new_event_fields(&token, "Quiet supper", "2099-05-01", "18:00");
    fields.push(("comments", "answered"));
    let a = post(&s.router, "/new", &fields).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let path = a.headers[header::LOCATION].to_str().unwrap().to_owned();
    let (events, _) = s.app.events(EventList::All, now_ms(), 0).unwrap();
    let id = events[0].state.id;
    assert_eq!(
        events[0].state.event.comments,
        potluck::content::CommentPolicy::Answered
    );
    let page = get(&s.router, &path).await;
    assert!(
        page.body.contains("comments of people who answered"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"<option value="answered" selected>"#),
        "{}",
        page.body
    );

    let mut fields = new_event_fields(&token, "Quiet supper", "2099-05-01", "18:00");
    fields.push(("comments", "nobody"));
    let a = post(&s.router, &format!("{path}/edit"), &fields).await;
    assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.body);
    let state = s.app.event_state(&id).unwrap();
    assert_eq!(
        state.event.comments,
        potluck::content::CommentPolicy::Nobody
    );
    let mut fields = new_event_fields(&token, "Quiet supper", "2099-05-01", "18:00");
    fields.push(("comments", "friends"));
    let a = post(&s.router, &format!("{path}/edit"), &fields).await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.body);
}
