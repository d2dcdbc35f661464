//! A community hub between two home networks behind real NATs, all in
//! network namespaces this test makes (`tests/common/nat.rs` draws them):
//! the hub (`potluck serve --hub`) at 203.0.113.10 on the "internet", and
//! two homes, each behind a router that masquerades, with two laptops in
//! each. Every node is a real `potluck serve` in its own namespace
//! (docs/hub.md).
//!
//! A laptop can dial the hub but never a laptop of the other home. The
//! test shows that first, then that events and RSVPs flow both ways through
//! the hub, that an RSVP published while its reader is offline reaches it
//! when it comes back (store and forward), that members reconnect after the
//! hub restarts and nothing is lost, and that a member the operator removed
//! can no longer store anything on the hub. (`tests/hub_hostile.rs` puts a
//! hub written to record and alter what it relays in the same place.)
//!
//! Commands other than `serve` run in the test's own namespace and reach
//! each node through its control socket (a file). Needs root, `ip` and
//! `nft`; where namespaces cannot be made the test says so on stderr and
//! passes without running (`.ci/run` runs as root and installs both, so
//! there it runs).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::nat::{HUB_ADDR, NatNet, assert_no_direct_path, serve_in};
use common::sandbox::{Sandbox, Server};
use serde_json::Value;

/// Longest wait for something to cross the hub.
const CROSS: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// The hub's home, its node in its namespace, and a member code for
/// `uses` people; `config` is written to its config.json first.
fn start_hub(
    net: &NatNet,
    sandbox: &Sandbox,
    config: &str,
    uses: &str,
) -> (PathBuf, Server, String) {
    let home = sandbox.home("hub");
    sandbox.json(&home, &["init", "--name", "Co-op hub"]);
    std::fs::write(home.join("config.json"), config).unwrap();
    let listen = format!("{HUB_ADDR}:7643");
    let server = serve_in(&net.ns("hub"), sandbox, &home, &listen, true);
    let code = sandbox.json(&home, &["invite", "--addr", &listen, "--uses", uses])["code"]
        .as_str()
        .expect("a member code")
        .to_owned();
    (home, server, code)
}

/// Polls `potluck --json ARGS` on `home` until `cond` holds; returns how
/// long it took. Panics after [`CROSS`].
fn wait_for(
    sandbox: &Sandbox,
    home: &Path,
    args: &[&str],
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let mut all = args.to_vec();
        all.push("--json");
        let run = sandbox.run(home, &all);
        if run.status.success() && cond(&run.json()) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < CROSS,
            "timed out after {CROSS:?} waiting for {what}; last: {run:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// The statuses of the RSVPs of an event document, by author.
fn rsvp_of(doc: &Value, author: &str) -> Option<String> {
    doc["rsvps"]
        .as_array()?
        .iter()
        .find(|r| r["author"] == author)
        .and_then(|r| r["status"].as_str().map(str::to_owned))
}

fn feed_of(sandbox: &Sandbox, home: &Path) -> String {
    sandbox.json(home, &["whoami"])["id"]
        .as_str()
        .expect("whoami id")
        .to_owned()
}

/// How far `home`'s store holds `feed` (0: none).
fn held(sandbox: &Sandbox, home: &Path, feed: &str) -> u64 {
    let run = sandbox.run(home, &["log", feed, "--json"]);
    run.json_lines()
        .iter()
        .filter_map(|m| m["sequence"].as_u64())
        .max()
        .unwrap_or(0)
}

#[test]
fn two_homes_behind_nats_meet_through_a_hub() {
    let (net, laptops) = match NatNet::build("ph", "m") {
        Ok(built) => built,
        Err(e) => {
            eprintln!(
                "SKIPPED: two_homes_behind_nats_meet_through_a_hub: cannot make network namespaces here ({e}); run as root with iproute2 and nftables"
            );
            return;
        }
    };
    let sandbox = Sandbox::new();
    // The hub stores its members' own feeds and nothing else.
    let (hub_home, mut hub, code) =
        start_hub(&net, &sandbox, r#"{"replication": {"hops": 0}}"#, "4");
    let hub_listen = format!("{HUB_ADDR}:7643");
    let names = ["Ana", "Abe", "Bea", "Bo"];
    let homes: Vec<PathBuf> = names.iter().map(|n| sandbox.home(n)).collect();
    let mut servers: Vec<Option<Server>> = Vec::new();
    for (i, home) in homes.iter().enumerate() {
        sandbox.json(home, &["init", "--name", names[i]]);
        let listen = format!("{}:7643", laptops[i].addr);
        servers.push(Some(serve_in(
            &laptops[i].ns,
            &sandbox,
            home,
            &listen,
            false,
        )));
        // Handed to the running node, so it dials from its namespace.
        let joined = sandbox.json(home, &["hub", "add", &code]);
        assert_eq!(
            joined["hub"].as_str().map(|h| h.ends_with(&hub_listen)),
            Some(true)
        );
    }
    let feeds: Vec<String> = homes.iter().map(|h| feed_of(&sandbox, h)).collect();
    let members = sandbox.json(&hub_home, &["hub", "members"]);
    assert_eq!(
        members["members"].as_array().map(Vec::len),
        Some(4),
        "{members}"
    );

    // First: no laptop reaches a laptop of the other home, neither at its
    // own address nor at its router's public one.
    assert_no_direct_path(&sandbox, &homes[0], &laptops[0], &laptops[2], 7643);

    // Events and RSVPs flow both ways through the hub.
    let event = common::sandbox::announce(&sandbox, &homes[0], "Soup night");
    wait_for(
        &sandbox,
        &homes[2],
        &["event", &event],
        "Bea sees Ana's event",
        |d| d["title"] == "Soup night",
    );
    sandbox.json(&homes[2], &["rsvp", &event, "going"]);
    let crossed = wait_for(
        &sandbox,
        &homes[0],
        &["event", &event],
        "Ana sees Bea's RSVP",
        |d| rsvp_of(d, &feeds[2]).as_deref() == Some("going"),
    );
    eprintln!("an RSVP crossed both NATs through the hub in {crossed:?} (polled every {POLL:?})");
    let other = common::sandbox::announce(&sandbox, &homes[3], "Repair café");
    wait_for(
        &sandbox,
        &homes[1],
        &["event", &other],
        "Abe sees Bo's event",
        |d| d["title"] == "Repair café",
    );

    // Store and forward: Bo goes offline, Abe answers Ana, Bo comes back
    // and finds the answer without ever reaching Abe.
    servers[3] = None;
    sandbox.json(&homes[1], &["rsvp", &event, "maybe"]);
    wait_for(
        &sandbox,
        &hub_home,
        &["event", &event],
        "the hub holds Abe's RSVP",
        |d| rsvp_of(d, &feeds[1]).as_deref() == Some("maybe"),
    );
    servers[3] = Some(serve_in(
        &laptops[3].ns,
        &sandbox,
        &homes[3],
        &format!("{}:7643", laptops[3].addr),
        false,
    ));
    let back = wait_for(
        &sandbox,
        &homes[3],
        &["event", &event],
        "Bo gets Abe's RSVP",
        |d| rsvp_of(d, &feeds[1]).as_deref() == Some("maybe"),
    );
    eprintln!("Bo held the RSVP made while it was offline {back:?} after its node listened");

    // The hub restarts: members reconnect and nothing is lost.
    drop(hub);
    hub = serve_in(&net.ns("hub"), &sandbox, &hub_home, &hub_listen, true);
    let after = common::sandbox::announce(&sandbox, &homes[2], "After the restart");
    wait_for(
        &sandbox,
        &homes[1],
        &["event", &after],
        "Abe sees Bea's event after the hub restarted",
        |d| d["title"] == "After the restart",
    );
    for (i, home) in homes.iter().enumerate() {
        let doc = sandbox.json(home, &["event", &event]);
        assert_eq!(
            rsvp_of(&doc, &feeds[2]).as_deref(),
            Some("going"),
            "{}",
            names[i]
        );
    }

    // Ana and Bea follow each other: their nodes open a live session
    // through the hub's tunnel, and a feed the hub does not store (Cy's,
    // who is no member and whom Ana has from a file) reaches Bea over it.
    let hub_feed = feed_of(&sandbox, &hub_home);
    sandbox.json(&homes[0], &["follow", &feeds[2]]);
    sandbox.json(&homes[2], &["follow", &feeds[0]]);
    let through = wait_for(
        &sandbox,
        &homes[0],
        &["peers"],
        "Ana's tunnel to Bea",
        |d| {
            d["connected"].as_array().is_some_and(|peers| {
                peers
                    .iter()
                    .any(|p| p["feed"] == feeds[2].as_str() && p["via_hub"] == hub_feed.as_str())
            })
        },
    );
    eprintln!("a live tunnel opened {through:?} after the follows");
    let cy = sandbox.home("cy");
    sandbox.json(&cy, &["init", "--name", "Cy"]);
    let cy_feed = feed_of(&sandbox, &cy);
    let private = common::sandbox::announce(&sandbox, &cy, "Cy's supper");
    let bundle = sandbox.dir().join("cy.bundle");
    let bundle_text = bundle.to_str().expect("a UTF-8 path");
    sandbox.json(&cy, &["export", &cy_feed, "--out", bundle_text]);
    sandbox.json(&homes[0], &["import", bundle_text]);
    wait_for(
        &sandbox,
        &homes[2],
        &["event", &private],
        "Bea gets Cy's event through the tunnel",
        |d| d["title"] == "Cy's supper",
    );
    assert_eq!(
        held(&sandbox, &hub_home, &cy_feed),
        0,
        "the hub stored a feed it does not keep"
    );

    // The operator removes Bo: Bo's session with the hub ends, and the hub
    // stores nothing more of Bo's.
    sandbox.json(&hub_home, &["hub", "remove", &feeds[3]]);
    wait_for(
        &sandbox,
        &homes[3],
        &["peers"],
        "Bo's session with the hub ends",
        |d| {
            d["connected"]
                .as_array()
                .is_some_and(|p| !p.iter().any(|p| p["feed"] == hub_feed.as_str()))
        },
    );
    let before = held(&sandbox, &hub_home, &feeds[3]);
    let sent_to_hub = |doc: &Value| {
        doc["connected"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["feed"] == hub_feed.as_str()))
            .and_then(|p| p["sent"].as_u64())
    };
    let sent_before = sent_to_hub(&sandbox.json(&homes[3], &["peers"]));
    sandbox.json(&homes[3], &["rsvp", &event, "no"]);
    let bo_now = held(&sandbox, &homes[3], &feeds[3]);
    assert!(bo_now > before);
    // Bo's node sent it on its open session with the hub (or, refused
    // since, has none): the hub had its chance to store it.
    wait_for(
        &sandbox,
        &homes[3],
        &["peers"],
        "Bo's RSVP sent to the hub",
        |d| match (sent_before, sent_to_hub(d)) {
            (Some(before), Some(now)) => now > before,
            (_, None) => true,
            (None, Some(_)) => false,
        },
    );
    // Bea's next message shows the hub is still forwarding the others'.
    sandbox.json(&homes[2], &["rsvp", &after, "going"]);
    wait_for(
        &sandbox,
        &homes[0],
        &["event", &after],
        "Ana sees Bea's RSVP after the removal",
        |d| rsvp_of(d, &feeds[2]).as_deref() == Some("going"),
    );
    assert_eq!(
        held(&sandbox, &hub_home, &feeds[3]),
        before,
        "the hub stored a message of a member it removed"
    );
    let doc = sandbox.json(&homes[0], &["event", &event]);
    assert_ne!(rsvp_of(&doc, &feeds[3]).as_deref(), Some("no"));
    drop(servers);
    drop(hub);
    drop(net);
}

/// A benchmark, not run by `cargo test` (docs/performance.md, "Hubs"):
/// 100 RSVPs from a laptop of one home to an event of a laptop of the
/// other, through the hub; for each, the time from the `rsvp` command's
/// return (durable at the answerer) until the organizer's node shows it,
/// polled through its control socket every 20 ms. Prints p50, p99, max.
///
/// `cargo test --release --test hub_nat -- --ignored --nocapture`
#[test]
#[ignore]
fn rsvp_latency_across_two_nats() {
    let (net, laptops) = NatNet::build("ph", "b").unwrap_or_else(|e| panic!("namespaces: {e}"));
    let sandbox = Sandbox::new();
    let (_hub_home, _hub, code) = start_hub(&net, &sandbox, "{}", "2");
    let (ana, bea) = (sandbox.home("ana"), sandbox.home("bea"));
    let mut servers = Vec::new();
    for (home, laptop) in [(&ana, &laptops[0]), (&bea, &laptops[2])] {
        sandbox.json(home, &["init"]);
        let listen = format!("{}:7643", laptop.addr);
        servers.push(serve_in(&laptop.ns, &sandbox, home, &listen, false));
        sandbox.json(home, &["hub", "add", &code]);
    }
    let bea_feed = feed_of(&sandbox, &bea);
    let event = common::sandbox::announce(&sandbox, &ana, "Bench");
    wait_for(
        &sandbox,
        &bea,
        &["event", &event],
        "Bea sees the event",
        |d| d["title"] == "Bench",
    );
    let mut took = Vec::new();
    for i in 0..100u32 {
        let note = format!("answer {i}");
        sandbox.json(&bea, &["rsvp", &event, "going", "--note", &note]);
        let start = Instant::now();
        loop {
            let doc = sandbox.json(&ana, &["event", &event]);
            let seen = doc["rsvps"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|r| r["author"] == bea_feed.as_str() && r["note"] == note.as_str())
            });
            if seen {
                break;
            }
            assert!(
                start.elapsed() < CROSS,
                "RSVP {i} did not cross in {CROSS:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        took.push(start.elapsed());
    }
    took.sort();
    let at = |q: f64| took[((took.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    eprintln!(
        "RSVP across two NATs through the hub, {} RSVPs: p50 {:?}, p99 {:?}, max {:?} (polled every 20 ms)",
        took.len(),
        at(0.5),
        at(0.99),
        took[took.len() - 1]
    );
    drop(servers);
    drop(net);
}
