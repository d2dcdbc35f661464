//! `potluck serve` and its web page from the command line: the page's
//! address is printed, a second node on this computer takes the next free
//! port, an explicit address that is taken is an error that creates
//! nothing, listening beyond loopback needs the access token, `potluck
//! open` finds the running node's page, and `invite` carries the address
//! the node really listens on.
//!
//! Every server listens on 127.0.0.1 (or, for the refused cases, is never
//! started); every wait is bounded.

mod common;

use std::net::TcpListener;

use common::http::{http_status, page_addr};
use common::sandbox::{Discovery, Sandbox, discovery_port};

#[test]
fn serve_prints_its_page_and_a_second_node_takes_another_port() {
    let sandbox = Sandbox::new();
    let port = discovery_port();
    let a = sandbox.serve_with(&sandbox.home("a"), Discovery::Off(port));
    let b = sandbox.serve_with(&sandbox.home("b"), Discovery::Off(port));
    let (page_a, page_b) = (a.page.clone().unwrap(), b.page.clone().unwrap());
    let (addr_a, addr_b) = (page_addr(&page_a), page_addr(&page_b));
    assert!(addr_a.ip().is_loopback() && addr_b.ip().is_loopback());
    assert_ne!(addr_a.port(), addr_b.port(), "{page_a} {page_b}");
    for addr in [addr_a, addr_b] {
        assert_eq!(http_status(addr, &addr.to_string(), "/"), 200);
        // Another name for this address: DNS rebinding, refused.
        assert_ne!(http_status(addr, "attacker.example", "/"), 200);
    }

    // `open --print` asks the running node where its page is.
    let run = sandbox.run(&sandbox.home("a"), &["open", "--print"]);
    assert!(run.status.success(), "{run:?}");
    assert_eq!(run.stdout.trim(), page_a);
    // `open` starts the browser named by $BROWSER, here a harmless one.
    let run = sandbox.run_with(&sandbox.home("b"), &["open"], &[("BROWSER", "true")]);
    assert!(run.status.success(), "{run:?}");
    assert_eq!(run.stdout.trim(), page_b);
}

#[test]
fn an_explicit_page_address_that_is_taken_is_an_error_that_creates_nothing() {
    let sandbox = Sandbox::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let home = sandbox.home("c");
    let run = sandbox.run(
        &home,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-discovery",
            "--web",
            &addr,
        ],
    );
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("port is in use"), "{run:?}");
    assert!(run.stderr.contains("--no-web"), "{run:?}");
    assert!(
        !home.exists(),
        "the refused serve created {}",
        home.display()
    );
}

#[test]
fn a_page_beyond_loopback_needs_the_access_token() {
    let sandbox = Sandbox::new();
    let home = sandbox.home("d");
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--no-discovery",
        "--web",
        "0.0.0.0:0",
    ];
    let run = sandbox.run(&home, &args);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("potluck page-token"), "{run:?}");
    assert!(
        !home.exists(),
        "the refused serve created {}",
        home.display()
    );

    let made = sandbox.json(&home, &["page-token"]);
    let token = made["token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 32, "{made}");
    let file = home.join("page-token");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Shown once: asking again neither shows nor replaces it.
    let again = sandbox.run(&home, &["page-token"]);
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(!again.stdout.contains(&token) && !again.stderr.contains(&token));

    // With the token, the page listens on every interface; it is opened
    // here through loopback, and without the token nothing but the login
    // page is served.
    let server = sandbox
        .spawn_serve(&home, &args[1..])
        .unwrap_or_else(|e| panic!("{e}"));
    let page = server.page.clone().unwrap();
    assert!(page.ends_with(&format!("/?token={token}")), "{page}");
    let addr = page_addr(&page);
    let host = addr.to_string();
    let without = http_status(addr, &host, "/");
    assert_ne!(without, 200, "the page answered without the token");
    assert_eq!(
        http_status(addr, &host, &format!("/?token={token}")),
        200,
        "{page}"
    );
}

#[test]
fn open_without_a_running_node_says_how_to_start_one() {
    let sandbox = Sandbox::new();
    let home = sandbox.home("e");
    sandbox.json(&home, &["init", "--name", "Eve"]);
    let run = sandbox.run(&home, &["open"]);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("potluck serve"), "{run:?}");
}

#[test]
fn invite_during_serve_carries_the_port_the_node_listens_on() {
    let sandbox = Sandbox::new();
    let home = sandbox.home("f");
    let server = sandbox.serve_with(&home, Discovery::Off(discovery_port()));
    let doc = sandbox.json(&home, &["invite"]);
    assert_eq!(doc["addr"], server.addr.to_string(), "{doc}");
    let run = sandbox.run(&home, &["invite"]);
    assert!(run.status.success(), "{run:?}");
    assert!(
        run.stderr.contains("works only on this computer"),
        "a loopback address is only good here: {run:?}"
    );
}

#[test]
fn a_computer_zone_without_a_name_is_never_replaced_by_utc() {
    let sandbox = Sandbox::new();
    let posix = [("TZ", "XYZ-3")];
    // Without a node, the command reads the time in the computer's zone.
    let alone = sandbox.home("alone");
    let run = sandbox.run_with(
        &alone,
        &[
            "announce",
            "--title",
            "Here",
            "--start",
            "2030-01-01 10:00",
            "--json",
        ],
        &posix,
    );
    assert!(run.status.success(), "{run:?}");
    let id = run.json()["id"].as_str().unwrap().to_owned();
    let shown = sandbox.json(&alone, &["event", &id]);
    assert!(
        shown["start"]
            .as_str()
            .unwrap()
            .starts_with("2030-01-01T10:00:00+03:00"),
        "{shown}"
    );
    // A running node cannot be told an unnamed zone: refused, with the
    // way out, instead of a time three hours off.
    let home = sandbox.home("served");
    let _server = sandbox.serve_with(&home, Discovery::Off(discovery_port()));
    let run = sandbox.run_with(
        &home,
        &[
            "announce",
            "--title",
            "There",
            "--start",
            "2030-01-01 10:00",
        ],
        &posix,
    );
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("--tz ZONE"), "{run:?}");
    let listed = sandbox.json(&home, &["events", "--all"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
    // Naming the zone works.
    let run = sandbox.run_with(
        &home,
        &[
            "announce",
            "--title",
            "There",
            "--start",
            "2030-01-01 10:00",
            "--tz",
            "Europe/Moscow",
            "--json",
        ],
        &posix,
    );
    assert!(run.status.success(), "{run:?}");
}
