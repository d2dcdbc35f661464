//! A hub's public pages (`serve --hub --public-web ADDR`) through the
//! real binary: which events they show on the public network and on a
//! private one, the 404s, the 405s, the headers, the link previews and
//! their escaping; `--public-web` without a hub is a clear error; and the
//! organizer's marks round-trip through `potluck event --json`.
//!
//! Every server listens on 127.0.0.1; every wait is bounded.

mod common;

use std::path::{Path, PathBuf};

use common::http::{Answer, page_addr, request};
use common::sandbox::{Node, Sandbox, Server};
use potluck::feed::message::MessageId;

/// A hub serving public pages, with a member code for `uses` people.
/// `config` is its config.json (`None`: none).
fn hub(sandbox: &Sandbox, init: &[&str], config: Option<&str>) -> (PathBuf, Server, String) {
    let home = sandbox.home("hub");
    let mut args = vec!["init", "--name", "Riverside hub"];
    args.extend_from_slice(init);
    sandbox.json(&home, &args);
    if let Some(config) = config {
        std::fs::write(home.join("config.json"), config).unwrap();
    }
    let server = serve_hub(sandbox, &home, config.is_none());
    let code = sandbox.json(
        &home,
        &["invite", "--addr", &server.addr.to_string(), "--uses", "5"],
    )["code"]
        .as_str()
        .expect("a member code")
        .to_owned();
    (home, server, code)
}

/// `serve --hub`, with `--public-web 127.0.0.1:0` when `flag` (else
/// config.json must ask for the pages).
fn serve_hub(sandbox: &Sandbox, home: &Path, flag: bool) -> Server {
    let mut args = vec![
        "--hub",
        "--listen",
        "127.0.0.1:0",
        "--no-web",
        "--no-discovery",
    ];
    if flag {
        args.extend_from_slice(&["--public-web", "127.0.0.1:0"]);
    }
    let server = sandbox
        .spawn_serve(home, &args)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(server.public.is_some(), "no public pages line");
    server
}

/// A person with their own home: `init` (with `init` flags) and a name.
fn person(sandbox: &Sandbox, name: &str, init: &[&str]) -> PathBuf {
    let home = sandbox.home(&name.to_lowercase());
    let mut args = vec!["init", "--name", name];
    args.extend_from_slice(init);
    sandbox.json(&home, &args);
    home
}

fn announce(sandbox: &Sandbox, home: &Path, args: &[&str]) -> String {
    let mut all = vec!["announce", "--start", common::START, "--end", common::END];
    all.extend_from_slice(args);
    sandbox.json(home, &all)["id"]
        .as_str()
        .expect("an event id")
        .to_owned()
}

fn sync_with(sandbox: &Sandbox, home: &Path, hub: &Server) {
    sandbox.json(home, &["sync", &format!("{}@{}", hub.feed, hub.addr)]);
}

/// The public page path of event `id`.
fn path_of(id: &str) -> String {
    potluck::web::event_path(&MessageId::parse(id).expect("an event id"))
}

fn get(hub: &Server, path: &str) -> Answer {
    public(hub, "GET", path)
}

fn public(hub: &Server, method: &str, path: &str) -> Answer {
    let url = hub.public.as_deref().expect("public pages");
    // Any name: the pages are public under whatever name people use.
    request(page_addr(url), method, "events.example.org", path)
}

/// What every answer of the public pages carries, and what none does.
fn assert_guarded(answer: &Answer) {
    let csp = answer.header("content-security-policy").unwrap_or("");
    assert!(csp.contains("default-src 'self'"), "{}", answer.head);
    assert!(!csp.contains("unsafe-inline"), "{}", answer.head);
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    assert!(
        answer.header("referrer-policy").is_some(),
        "{}",
        answer.head
    );
    assert_eq!(answer.header("set-cookie"), None, "{}", answer.head);
    // HSTS only over TLS (tests/public_tls.rs): over plain HTTP a browser
    // would then refuse these very pages.
    assert_eq!(
        answer.header("strict-transport-security"),
        None,
        "{}",
        answer.head
    );
    // No inline script (only the server's own files, for answering), and
    // nothing from another site.
    for script in answer.body.split("<script").skip(1) {
        assert!(
            script.starts_with(" src=\"/static/") && script.contains("></script>"),
            "{}",
            answer.body
        );
    }
    assert!(!answer.body.contains("src=\"http"), "{}", answer.body);
}

#[test]
fn a_hub_shows_its_members_events_by_the_organizers_marks() {
    let sandbox = Sandbox::new();
    let (hub_home, hub, code) = hub(&sandbox, &[], None);
    let ana = person(&sandbox, "Ana", &[]);
    let bea = person(&sandbox, "Bea", &[]);
    for member in [&ana, &bea] {
        sandbox.json(member, &["hub", "add", &code]);
    }
    let soup = announce(
        &sandbox,
        &ana,
        &["--title", "Soup night", "--location", "Community hall"],
    );
    let script_title = r#"Pie <script>alert("x")</script>"#;
    let pie = announce(
        &sandbox,
        &ana,
        &["--title", script_title, "--location", "Hall \"A\" & B"],
    );
    let quiet = announce(&sandbox, &bea, &["--title", "Quiet dinner", "--unlisted"]);
    // Replication from the members' nodes brings them to the hub; Bea
    // answers Ana's event on the way.
    sync_with(&sandbox, &ana, &hub);
    sync_with(&sandbox, &bea, &hub);
    sandbox.json(&bea, &["rsvp", &soup, "going", "--guests", "1"]);
    sandbox.json(
        &bea,
        &["comment", &soup, "<b>Yum</b> recipe: https://a.test/r"],
    );
    sync_with(&sandbox, &bea, &hub);
    // A stranger's event reaches the hub too, but is no member's.
    let cy = person(&sandbox, "Cy", &[]);
    let stray = announce(&sandbox, &cy, &["--title", "Stranger's party"]);
    sync_with(&sandbox, &cy, &hub);
    for id in [&soup, &pie, &quiet, &stray] {
        sandbox.json(&hub_home, &["event", id]);
    }

    let list = get(&hub, "/");
    assert_eq!(list.status, 200, "{list:?}");
    assert_guarded(&list);
    assert!(list.body.contains("Soup night"), "{}", list.body);
    assert!(list.body.contains(&path_of(&soup)), "{}", list.body);
    assert!(
        !list.body.contains("Quiet dinner"),
        "unlisted: {}",
        list.body
    );
    assert!(
        !list.body.contains("Stranger"),
        "no member's: {}",
        list.body
    );

    // Both members' events are reachable by their links.
    let page = get(&hub, &path_of(&soup));
    assert_eq!(page.status, 200, "{page:?}");
    assert_guarded(&page);
    assert!(
        !page.body.contains("/comment\""),
        "no comment forms: {}",
        page.body
    );
    for text in [
        "Soup night",
        "Community hall",
        "Organized by <strong>Ana</strong>",
        "<strong>Bea</strong> +1 guest",
        "Going (1)",
        "What is public here",
        "the name its author gives, the number of guests",
        r#"<meta property="og:title" content="Soup night">"#,
        r#"<meta property="og:type" content="website">"#,
        // The thread, read only, escaped, its links marked as the guests'.
        "&lt;b&gt;Yum&lt;/b&gt;",
        r#"<a href="https://a.test/r" rel="noopener noreferrer nofollow ugc">"#,
        "Links shared",
    ] {
        assert!(page.body.contains(text), "{text:?} in {}", page.body);
    }
    // The preview's description: the date and the place.
    let description = page
        .body
        .split(r#"<meta property="og:description" content=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no og:description: {}", page.body));
    assert!(description.contains("2031"), "{description}");
    assert!(description.contains("Community hall"), "{description}");
    // Without "public_url" the pages do not guess their own address.
    assert!(!page.body.contains("og:url"), "{}", page.body);

    let unlisted = get(&hub, &path_of(&quiet));
    assert_eq!(unlisted.status, 200, "{unlisted:?}");
    assert!(unlisted.body.contains("Quiet dinner"));
    assert!(unlisted.body.contains("This event is unlisted"));
    assert!(
        unlisted
            .body
            .contains(r#"<meta name="robots" content="noindex">"#)
    );

    // Titles and places are escaped in the page and in the tags.
    let escaped = get(&hub, &path_of(&pie));
    assert_eq!(escaped.status, 200, "{escaped:?}");
    assert_guarded(&escaped);
    assert!(
        escaped.body.contains(
            r#"<meta property="og:title" content="Pie &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;">"#
        ),
        "{}",
        escaped.body
    );
    assert!(
        escaped.body.contains("Hall &quot;A&quot; &amp; B"),
        "{}",
        escaped.body
    );

    // Unknown, not a member's, and not an event address at all: 404,
    // all alike, as a page.
    let unknown = potluck::web::event_path(&MessageId([7; 32]));
    for path in [path_of(&stray), unknown, "/e/nonsense".into(), "/x".into()] {
        let answer = get(&hub, &path);
        assert_eq!(answer.status, 404, "{path}: {answer:?}");
        assert_guarded(&answer);
        assert!(answer.body.contains("Not found"), "{}", answer.body);
    }
    let head = public(&hub, "HEAD", &path_of(&soup));
    assert_eq!(head.status, 200, "{head:?}");
    // Nothing changes here: every other method is refused.
    for (method, path) in [
        ("POST", "/".to_owned()),
        ("POST", format!("{}/rsvp", path_of(&soup))),
        ("PUT", path_of(&soup)),
        ("DELETE", "/".to_owned()),
    ] {
        let answer = public(&hub, method, &path);
        assert_eq!(answer.status, 405, "{method} {path}: {answer:?}");
        assert_eq!(answer.header("allow"), Some("GET, HEAD"));
        assert_guarded(&answer);
    }
    // The style sheet is the local page's.
    let style = get(&hub, "/static/style.css");
    assert_eq!(style.status, 200);
    assert!(style.body.contains("--accent"));
}

#[test]
fn a_private_network_shows_nothing_without_both_the_operator_and_the_organizer() {
    let key = "5a".repeat(32);
    let sandbox = Sandbox::new();
    let closed = serde_json::json!({
        "network_key": key,
        "hub": true,
        "public_web": "127.0.0.1:0",
    })
    .to_string();
    let network = ["--network-key", key.as_str()];
    let (hub_home, hub, code) = hub(&sandbox, &network, Some(&closed));
    let ana = person(&sandbox, "Ana", &network);
    sandbox.json(&ana, &["hub", "add", &code]);
    let private = announce(&sandbox, &ana, &["--title", "Members' supper"]);
    let open = announce(&sandbox, &ana, &["--title", "Open supper", "--public"]);
    let quiet = announce(
        &sandbox,
        &ana,
        &["--title", "Quiet supper", "--public", "--unlisted"],
    );
    sync_with(&sandbox, &ana, &hub);
    sandbox.json(&hub_home, &["event", &quiet]);

    // The operator has not turned the pages on for this network.
    let list = get(&hub, "/");
    assert_eq!(list.status, 200);
    for title in ["Members", "Open supper", "Quiet supper"] {
        assert!(!list.body.contains(title), "{title}: {}", list.body);
    }
    assert!(list.body.contains("No upcoming events to show."));
    for id in [&private, &open, &quiet] {
        assert_eq!(get(&hub, &path_of(id)).status, 404, "{id}");
    }
    drop(hub);

    // Now they are on: the public event shows, the other does not.
    let allowed = serde_json::json!({
        "network_key": key,
        "hub": true,
        "public_web": "127.0.0.1:0",
        "public_web_private_network": true,
        "public_url": "https://events.example.org/",
    });
    std::fs::write(hub_home.join("config.json"), allowed.to_string()).unwrap();
    let hub = serve_hub(&sandbox, &hub_home, false);
    let list = get(&hub, "/");
    assert!(list.body.contains("Open supper"), "{}", list.body);
    assert!(!list.body.contains("Members"), "{}", list.body);
    assert!(!list.body.contains("Quiet supper"), "{}", list.body);
    assert!(
        list.body
            .contains(r#"<meta property="og:url" content="https://events.example.org/">"#),
        "{}",
        list.body
    );
    assert_eq!(get(&hub, &path_of(&private)).status, 404);
    assert_eq!(get(&hub, &path_of(&quiet)).status, 200);
    let page = get(&hub, &path_of(&open));
    assert_eq!(page.status, 200);
    let url = format!("https://events.example.org{}", path_of(&open));
    assert!(
        page.body
            .contains(&format!(r#"<meta property="og:url" content="{url}">"#)),
        "{}",
        page.body
    );
}

#[test]
fn public_pages_need_a_hub() {
    let sandbox = Sandbox::new();
    let home = person(&sandbox, "Ana", &[]);
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--no-web",
        "--no-discovery",
        "--public-web",
        "127.0.0.1:0",
    ];
    let error = sandbox
        .spawn_serve(&home, &args)
        .err()
        .expect("refused without --hub");
    assert!(error.contains("--hub"), "{error}");
    assert_eq!(
        error.matches("error:").count(),
        1,
        "one line says why: {error}"
    );
    // The same from config.json.
    std::fs::write(home.join("config.json"), r#"{"public_web": "127.0.0.1:0"}"#).unwrap();
    let run = sandbox.run(
        &home,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-web",
            "--no-discovery",
        ],
    );
    let line = run.one_line_error();
    assert!(line.contains("\"hub\": true"), "{line}");
}

#[test]
fn the_organizers_marks_round_trip_through_event_json() {
    let ana = Node::init("Ana");
    let plain = ana.announce(&["--title", "Soup", "--start", common::START]);
    let doc = ana.event(&plain);
    assert_eq!(
        (doc["unlisted"].as_bool(), doc["public"].as_bool()),
        (Some(false), Some(false))
    );
    let id = ana.announce(&[
        "--title",
        "Quiet dinner",
        "--start",
        common::START,
        "--unlisted",
    ]);
    let doc = ana.event(&id);
    assert_eq!(doc["unlisted"], true, "{doc}");
    assert_eq!(doc["public"], false, "{doc}");
    // As published: the mark is part of the signed content.
    let content = ana
        .log_contents()
        .into_iter()
        .find(|c| c["title"] == "Quiet dinner")
        .expect("the event in the log");
    assert_eq!(content["unlisted"], true, "{content}");
    assert_eq!(content.get("public"), None, "{content}");
    // Updates change them.
    ana.ok(&["update", &id, "--unlisted", "false", "--public"]);
    let doc = ana.event(&id);
    assert_eq!(
        (doc["unlisted"].as_bool(), doc["public"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(doc["revision"], 1, "{doc}");
    ana.ok(&["update", &id, "--unlisted"]);
    assert_eq!(ana.event(&id)["unlisted"], true);
    let line = ana.fails(&["update", &id, "--unlisted", "true"]);
    assert!(line.contains("nothing to change"), "{line}");
}
