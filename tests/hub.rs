//! A hub's refusals, each through the real binary on loopback: every one
//! reaches the side that asked as a clear, one-line error, and none lets a
//! stranger, a removed member or a member over its quota make the hub
//! store anything (docs/protocol.md, "Hubs"; docs/hub.md, "Limits").

mod common;

use std::path::{Path, PathBuf};

use common::sandbox::{Sandbox, Server};

fn feed(sandbox: &Sandbox, home: &Path) -> String {
    sandbox.json(home, &["whoami"])["id"]
        .as_str()
        .expect("whoami id")
        .to_owned()
}

fn serve(sandbox: &Sandbox, home: &Path, hub: bool) -> Server {
    sandbox.serve_loopback(home, hub)
}

/// A hub (with `config` as its config.json) and a member code for `uses`.
fn hub(sandbox: &Sandbox, config: &str, uses: &str) -> (PathBuf, Server, String) {
    let home = sandbox.home("hub");
    sandbox.json(&home, &["init", "--name", "Hub"]);
    std::fs::write(home.join("config.json"), config).unwrap();
    let server = serve(sandbox, &home, true);
    let addr = server.addr.to_string();
    let code = sandbox.json(&home, &["invite", "--addr", &addr, "--uses", uses])["code"]
        .as_str()
        .expect("a member code")
        .to_owned();
    (home, server, code)
}

/// How far `home`'s store holds `feed` (0: none).
fn held(sandbox: &Sandbox, home: &Path, feed: &str) -> u64 {
    sandbox
        .run(home, &["log", feed, "--json"])
        .json_lines()
        .iter()
        .filter_map(|m| m["sequence"].as_u64())
        .max()
        .unwrap_or(0)
}

/// `potluck join` with a member code, on a new home: the identity is made,
/// and the home is opened a second time to join the hub, which works only
/// if the command's first open was closed first (a command keeps its last
/// open until it exits).
#[test]
fn join_with_a_member_code_makes_the_identity_and_joins_the_hub() {
    let sandbox = Sandbox::new();
    let (hub_home, hub, code) = hub(&sandbox, "{}", "1");
    let cai = sandbox.home("cai");
    let joined = sandbox.json(&cai, &["join", &code]);
    let at = format!("{}@{}", hub.feed, hub.addr);
    assert_eq!(joined["hub"], at.as_str(), "{joined}");
    let hubs = sandbox.json(&cai, &["hub", "list"]);
    assert_eq!(hubs["hubs"], serde_json::json!([at]), "{hubs}");
    // The hub took the new identity as its member.
    let members = sandbox.json(&hub_home, &["hub", "members"]);
    let feeds: Vec<&str> = members["members"]
        .as_array()
        .expect("a list of members")
        .iter()
        .filter_map(|m| m["feed"].as_str())
        .collect();
    assert_eq!(feeds, [feed(&sandbox, &cai)], "{members}");
}

#[test]
fn a_used_up_code_and_a_code_for_no_hub_are_refused_clearly() {
    let sandbox = Sandbox::new();
    let (_hub_home, hub, code) = hub(&sandbox, "{}", "1");
    let ana = sandbox.home("ana");
    sandbox.json(&ana, &["init", "--name", "Ana"]);
    sandbox.json(&ana, &["hub", "add", &code]);
    let bea = sandbox.home("bea");
    sandbox.json(&bea, &["init", "--name", "Bea"]);
    let line = sandbox.run(&bea, &["hub", "add", &code]).one_line_error();
    assert!(
        line.contains("member code is unknown, used up or expired"),
        "{line}"
    );
    // A member code from a node that is not (or no longer) a hub.
    drop(hub);
    let plain = sandbox.home("plain");
    sandbox.json(&plain, &["init"]);
    let node = serve(&sandbox, &plain, false);
    let fake = code.clone();
    let mut invite = potluck::app::Invite::parse(&fake).unwrap();
    invite.peer = potluck::app::PeerAddr::parse(&format!("{}@{}", node.feed, node.addr)).unwrap();
    let line = sandbox
        .run(&bea, &["hub", "add", &invite.to_code()])
        .one_line_error();
    assert!(line.contains("it is not a hub"), "{line}");
    // And the hub commands on a node that is none.
    let line = sandbox.run(&plain, &["hub", "members"]).one_line_error();
    assert!(line.contains("not a hub"), "{line}");
}

#[test]
fn a_stranger_cannot_open_a_tunnel_and_a_declined_pair_is_refused_at_once() {
    let sandbox = Sandbox::new();
    let (_hub_home, hub, code) = hub(&sandbox, "{}", "3");
    let hub_at = format!("{}@{}", hub.feed, hub.addr);
    let homes: Vec<PathBuf> = ["ana", "bea"].iter().map(|n| sandbox.home(n)).collect();
    for home in &homes {
        sandbox.json(home, &["init"]);
    }
    let ana = serve(&sandbox, &homes[0], false);
    sandbox.json(&homes[0], &["hub", "add", &code]);
    let bea_feed = feed(&sandbox, &homes[1]);
    // Bea is no member yet: Ana cannot reach her through the hub.
    let line = sandbox
        .run(&homes[0], &["sync", &bea_feed])
        .one_line_error();
    assert!(line.contains("only between its members"), "{line}");
    sandbox.json(&homes[1], &["hub", "add", &code]);
    let bea = serve(&sandbox, &homes[1], false);

    // A stranger (no member) that knows the hub asks for Ana.
    let stranger = sandbox.home("stranger");
    sandbox.json(&stranger, &["init"]);
    std::fs::write(
        stranger.join("config.json"),
        serde_json::json!({ "hubs": [hub_at] }).to_string(),
    )
    .unwrap();
    let line = sandbox
        .run(&stranger, &["sync", &ana.feed])
        .one_line_error();
    assert!(line.contains("only between its members"), "{line}");

    // Bea does not follow Ana: she declines, and the hub refuses the pair
    // at once afterwards without asking her again.
    let deadline = std::time::Instant::now() + common::DEADLINE;
    let first = loop {
        let line = sandbox
            .run(&homes[0], &["sync", &bea_feed])
            .one_line_error();
        if !line.contains("not connected to the hub") {
            break line;
        }
        assert!(std::time::Instant::now() < deadline, "{line}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(first.contains("does not take tunnels from you"), "{first}");
    let declines = |s: &str| s.matches("declining a tunnel").count();
    let before = declines(&bea.stderr());
    assert_eq!(before, 1, "{}", bea.stderr());
    let again = sandbox
        .run(&homes[0], &["sync", &bea_feed])
        .one_line_error();
    assert!(again.contains("does not take tunnels from you"), "{again}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(declines(&bea.stderr()), before, "Bea was asked again");
}

#[test]
fn a_member_cannot_make_the_hub_store_past_its_quota() {
    let sandbox = Sandbox::new();
    // Room for a few messages of a member, not for many.
    let (hub_home, _hub, code) = hub(&sandbox, r#"{"hub": {"member_bytes": 3000}}"#, "1");
    let ana = sandbox.home("ana");
    sandbox.json(&ana, &["init", "--name", "Ana"]);
    let ana_feed = feed(&sandbox, &ana);
    for i in 0..20 {
        sandbox.json(
            &ana,
            &[
                "announce",
                "--title",
                &format!("Event {i} with a longer title to take room"),
                "--start",
                common::START,
            ],
        );
    }
    let mine = held(&sandbox, &ana, &ana_feed);
    assert!(mine >= 21);
    sandbox.json(&ana, &["hub", "add", &code]);
    let stored = held(&sandbox, &hub_home, &ana_feed);
    assert!(
        stored > 0 && stored < mine,
        "the hub stored {stored} of {mine}"
    );
    let members = sandbox.json(&hub_home, &["hub", "members"]);
    let used = members["members"][0]["stored_bytes"].as_u64().unwrap_or(0);
    assert!(used > 0 && used <= 3000, "{members}");
}

/// A member's invite names its hubs. A newcomer who cannot reach the
/// inviter (here: the inviter's node is off) joins through the hub: it
/// gets the inviter's event from the hub, and its answer reaches the
/// inviter through the hub once the inviter is back.
#[test]
fn a_newcomer_reaches_the_inviter_through_the_hubs_its_invite_names() {
    let sandbox = Sandbox::new();
    let (_hub_home, hub, code) = hub(&sandbox, "{}", "1");
    let ana = sandbox.home("ana");
    sandbox.json(&ana, &["init", "--name", "Ana"]);
    sandbox.json(&ana, &["hub", "add", &code]);
    let event = common::sandbox::announce(&sandbox, &ana, "Garden day");
    // Ana's node is not running: her invite names an address nobody
    // answers at, and her hub.
    let dead = format!("127.0.0.1:{}", common::free_tcp_port());
    let invite = sandbox.json(&ana, &["invite", "--addr", &dead])["code"]
        .as_str()
        .expect("a code")
        .to_owned();
    let parsed = potluck::app::Invite::parse(&invite).unwrap();
    assert_eq!(parsed.hubs.len(), 1, "{parsed:?}");
    assert_eq!(
        parsed.hubs[0].feed.map(|f| f.to_string()),
        Some(hub.feed.clone())
    );
    // Ana's own sync brought her event to the hub.
    sandbox.json(&ana, &["sync", &format!("{}@{}", hub.feed, hub.addr)]);

    let newcomer = sandbox.home("newcomer");
    let joined = sandbox.json(&newcomer, &["join", &invite]);
    assert_eq!(
        joined["through_hub"],
        format!("{}@{}", hub.feed, hub.addr).as_str(),
        "{joined}"
    );
    let doc = sandbox.json(&newcomer, &["event", &event]);
    assert_eq!(doc["title"], "Garden day");
    sandbox.json(&newcomer, &["rsvp", &event, "going"]);
    sandbox.json(&newcomer, &["sync", &format!("{}@{}", hub.feed, hub.addr)]);
    let newcomer_feed = feed(&sandbox, &newcomer);
    sandbox.json(&ana, &["sync", &format!("{}@{}", hub.feed, hub.addr)]);
    let doc = sandbox.json(&ana, &["event", &event]);
    let answered = doc["rsvps"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r["author"] == newcomer_feed.as_str()));
    assert!(answered, "{doc}");
}

/// Two members follow each other, one after the other: the first one's
/// node calls at once, the second declines (it does not follow yet), and
/// the hub keeps the first from calling again for a while. When the
/// second follows too, its node must dial, even where the rule "the
/// smaller feed dials" gives the turn to the first: the live tunnel opens
/// at once, not minutes later. (The first to follow is the smaller feed
/// here, the case that waited before.)
#[test]
fn a_member_that_declined_a_call_dials_once_it_follows_back() {
    let sandbox = Sandbox::new();
    let (hub_home, _hub, code) = hub(&sandbox, "{}", "2");
    let hub_feed = feed(&sandbox, &hub_home);
    let mut people: Vec<(PathBuf, String)> = ["ana", "bea"]
        .iter()
        .map(|name| {
            let home = sandbox.home(name);
            sandbox.json(&home, &["init", "--name", name]);
            let id = feed(&sandbox, &home);
            (home, id)
        })
        .collect();
    // The first to follow has the smaller key.
    people.sort_by_key(|(_, id)| potluck::feed::message::FeedId::parse(id).unwrap());
    let [(first, first_id), (second, second_id)] = [people[0].clone(), people[1].clone()];
    let first_node = serve(&sandbox, &first, false);
    let second_node = serve(&sandbox, &second, false);
    for home in [&first, &second] {
        sandbox.json(home, &["hub", "add", &code]);
    }
    let in_session = |home: &Path, other: &str| {
        sandbox.json(home, &["peers"])["connected"]
            .as_array()
            .is_some_and(|peers| {
                peers
                    .iter()
                    .any(|p| p["feed"] == other && p["via_hub"] == hub_feed.as_str())
            })
    };
    let wait = |what: &str, cond: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + common::DEADLINE;
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "never: {what}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    // Both members connected to the hub, then the first follows.
    wait("both members at the hub", &|| {
        let members = sandbox.json(&hub_home, &["peers"]);
        [&first_id, &second_id].iter().all(|id| {
            members["connected"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["feed"] == id.as_str()))
        })
    });
    sandbox.json(&first, &["follow", &second_id]);
    wait("the second declines the first's call", &|| {
        second_node.stderr().contains("declining a tunnel")
    });
    assert!(!in_session(&first, &second_id));
    sandbox.json(&second, &["follow", &first_id]);
    let deadline = std::time::Instant::now() + common::DEADLINE;
    while !(in_session(&first, &second_id) && in_session(&second, &first_id)) {
        assert!(
            std::time::Instant::now() < deadline,
            "no live tunnel between them; the first's log:\n{}\nthe second's:\n{}",
            first_node.stderr(),
            second_node.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
