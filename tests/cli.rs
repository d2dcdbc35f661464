//! End-to-end tests of the `potluck` binary: every test drives the real
//! executable in a fresh temporary home, reads `--json` output and checks
//! concrete values.
//!
//! No test touches the real user's data directory: `HOME` and
//! `XDG_DATA_HOME` point inside the test's temporary directory, and any
//! inherited `POTLUCK_HOME` / `POTLUCK_LOG` / backtrace settings are
//! removed. Every child process is killed if it runs longer than
//! [`common::DEADLINE`].

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::sandbox::{BIN, Node, assert_id, run_command, run_command_with};
use common::{END, START};
use serde_json::{Value, json};

/// The same id with its first character changed: well-formed, unknown.
fn other_id(id: &str) -> String {
    let first = if id.as_bytes()[1] == b'A' { "B" } else { "A" };
    format!("%{first}{}", &id[2..])
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

// ---------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------

#[test]
fn init_prints_id_and_name_and_whoami_agrees() {
    let node = Node::new();
    let doc = node.ok(&["init", "--name", "Ana"]);
    let id = doc["id"].as_str().unwrap().to_owned();
    assert_id(&id, '@', ".ed25519");
    assert_eq!(doc, json!({ "id": id, "name": "Ana" }));
    assert_eq!(node.whoami(), json!({ "id": id, "name": "Ana" }));

    // The key file holds the same id.
    let key: Value = serde_json::from_slice(&std::fs::read(node.secret()).unwrap()).unwrap();
    assert_eq!(key["curve"], "ed25519");
    assert_eq!(key["id"], id.as_str());
}

#[test]
fn init_without_name_has_null_name() {
    let node = Node::new();
    let doc = node.ok(&["init"]);
    assert_id(doc["id"].as_str().unwrap(), '@', ".ed25519");
    assert_eq!(doc["name"], Value::Null);
    assert_eq!(node.whoami(), doc);
    // Nothing is published without a name.
    assert_eq!(node.log_text(), "");
}

#[test]
fn two_homes_have_different_identities() {
    let a = Node::init("Ana");
    let b = Node::init("Ana");
    assert_ne!(a.whoami()["id"], b.whoami()["id"]);
}

#[cfg(unix)]
#[test]
fn key_file_and_home_are_owner_only() {
    let node = Node::init("Ana");
    assert_eq!(mode(&node.secret()), 0o600);
    assert_eq!(mode(&node.home), 0o700);
}

#[test]
fn init_twice_refuses_and_keeps_the_key() {
    let node = Node::init("Ana");
    let key = std::fs::read(node.secret()).unwrap();
    let who = node.whoami();
    let log = node.log_text();

    let (err, kind) = node.fails_with_kind(&["init", "--name", "Eve"]);
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert!(err.contains("secret"), "{err}");
    assert!(err.contains("use `potluck name \"Eve\"`"), "{err}");
    assert_eq!(kind, "exists");
    let err = node.fails(&["init"]);
    assert!(err.contains("refusing to overwrite"), "{err}");

    assert_eq!(std::fs::read(node.secret()).unwrap(), key);
    assert_eq!(node.whoami(), who);
    assert_eq!(node.log_text(), log, "a refused init published something");
}

#[cfg(unix)]
#[test]
fn key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let node = Node::init("Ana");
    let log = node.log_text();
    std::fs::set_permissions(node.secret(), std::fs::Permissions::from_mode(0o644)).unwrap();

    let err = node.fails(&["whoami"]);
    assert!(err.contains("mode 644"), "{err}");
    assert!(err.contains("readable by others"), "{err}");
    assert!(err.contains("chmod 600"), "{err}");
    // Commands that sign are refused too, and write nothing.
    let err = node.fails(&["announce", "--title", "T", "--start", START]);
    assert!(err.contains("chmod 600"), "{err}");
    let err = node.fails(&["name", "Eve"]);
    assert!(err.contains("chmod 600"), "{err}");

    std::fs::set_permissions(node.secret(), std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(node.log_text(), log);
    assert_eq!(node.whoami()["name"], "Ana");
}

#[test]
fn damaged_key_file_is_one_line_error() {
    let node = Node::init("Ana");
    std::fs::write(node.secret(), "not json").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(node.secret(), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let err = node.fails(&["whoami"]);
    assert!(err.contains("damaged"), "{err}");
}

/// Issue 19, defect 3: a store whose sled files are damaged makes every
/// command say so in one line, with what to run; sled's own log lines
/// stay out of the terminal unless `POTLUCK_LOG` asks for them.
#[test]
fn a_damaged_store_is_one_clear_line_without_sleds_log() {
    let node = Node::init("Ana");
    node.announce(&["--title", "Soup night", "--start", START]);
    // sled's file cut short, its snapshot left: sled logs an ERROR of its
    // own while it opens the database, and potluck fails.
    let db = node.home.join("store").join("db");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(100)
        .unwrap();
    for args in [&["events"][..], &["fsck"], &["whoami"]] {
        let run = node.run(args);
        let line = run.one_line_error();
        assert!(!run.stderr.contains("sled"), "{args:?}: {run:?}");
        assert!(
            line.contains("the store's database in") && line.contains("is damaged"),
            "{args:?}: {line}"
        );
        assert!(line.contains("run `potluck fsck --repair`"), "{line}");
        assert!(!line.contains("backtrace"), "{line}");
    }
    let (line, kind) = node.fails_with_kind(&["events"]);
    assert!(line.contains("is damaged"), "{line}");
    assert_eq!(kind, "storage");
    // Asked for, sled's lines are there.
    let run = node.run_with(&["events"], &[("POTLUCK_LOG", "error")]);
    assert!(run.stderr.contains("ERROR sled::"), "{run:?}");

    // What the line says to run brings the events back.
    let run = node.run(&["fsck", "--repair"]);
    assert!(run.status.success(), "{run:?}");
    assert!(!run.stderr.contains("sled"), "{run:?}");
    let events = node.ok(&["events"]);
    assert_eq!(events[0]["title"], "Soup night", "{events}");
}

/// Issue 19, defect 1: a `config.json` that gives a key twice is refused
/// like any other malformed setting, naming the key and its object,
/// rather than the last value silently winning.
#[test]
fn config_json_with_a_key_written_twice_is_refused() {
    let node = Node::init("Ana");
    let config = node.home.join("config.json");
    for (text, says) in [
        (
            "{\n  \"listen\": \"127.0.0.1:7001\",\n  \"listen\": \"127.0.0.1:7002\"\n}\n",
            "the key `listen` is written twice at the top level, the second time at line 3",
        ),
        (
            r#"{"quotas": {"new_feeds_per_peer_per_hour": 5, "new_feeds_per_peer_per_hour": 9}}"#,
            "the key `new_feeds_per_peer_per_hour` is written twice in `quotas`",
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        let (err, kind) = node.fails_with_kind(&["invite", "--addr", "127.0.0.1:7643"]);
        assert!(err.starts_with("error: config file "), "{err}");
        assert!(err.contains(" is not valid: "), "{err}");
        assert!(err.contains(says), "{err}");
        assert_eq!(kind, "invalid_input", "{err}");
    }
    // Written once, the same settings are read.
    std::fs::write(&config, r#"{"listen": "127.0.0.1:7002"}"#).unwrap();
    assert!(node.ok(&["invite", "--addr", "127.0.0.1:7643"])["code"].is_string());
}

#[test]
fn uninitialised_home_says_run_init_and_creates_nothing() {
    let node = Node::new();
    let fake = "%AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=.blake3";
    let cases: &[&[&str]] = &[
        &["whoami"],
        &["update", fake, "--title", "X"],
        &["cancel", fake],
        &["rsvp", fake, "going"],
        &["events"],
        &["events", "--all"],
        &["event", fake],
        &["log"],
        &["fsck"],
        &["reindex"],
    ];
    for args in cases {
        let err = node.fails(args);
        assert!(err.contains("run `potluck init --name"), "{args:?}: {err}");
        assert!(!node.home.exists(), "{args:?} created {:?}", node.home);
    }
    // An existing but empty home directory stays empty.
    std::fs::create_dir(&node.home).unwrap();
    for args in cases {
        let err = node.fails(args);
        assert!(err.contains("run `potluck init --name"), "{args:?}: {err}");
        assert_eq!(
            std::fs::read_dir(&node.home).unwrap().count(),
            0,
            "{args:?} wrote into an uninitialised home"
        );
    }
}

/// One rule: a command that takes part creates the identity when the home
/// has none, and says how to set a name (no terminal here, so no prompt).
#[test]
fn commands_that_take_part_create_the_identity_and_say_how_to_name_it() {
    let sandbox = common::sandbox::Sandbox::new();
    let bundle = sandbox.path("one.bundle");
    let source = sandbox.home("source");
    sandbox.json(&source, &["init", "--name", "Src"]);
    sandbox.json(&source, &["export", "--out", bundle.to_str().unwrap()]);
    let not_a_bundle = sandbox.path("junk.bundle");
    std::fs::write(&not_a_bundle, "junk").unwrap();
    // A file that is no bundle creates nothing.
    let home = sandbox.home("junk");
    let run = sandbox.run(&home, &["import", not_a_bundle.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stderr.contains("nothing was imported"), "{run:?}");
    assert!(!home.exists(), "a failed import created the home");

    let cases: &[(&str, Vec<&str>)] = &[
        ("import", vec!["import", bundle.to_str().unwrap()]),
        (
            "announce",
            vec!["announce", "--title", "T", "--start", START],
        ),
        (
            "follow",
            vec![
                "follow",
                "@AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=.ed25519",
            ],
        ),
    ];
    for (name, args) in cases {
        let home = sandbox.home(name);
        let run = sandbox.run(&home, args);
        assert!(run.status.success(), "{name}: {run:?}");
        assert!(
            run.stderr.starts_with("created a new identity @"),
            "{name}: {run:?}"
        );
        assert!(
            run.stderr
                .contains("set your name with `potluck name \"Ana\"`"),
            "{name}: {run:?}"
        );
        let me = sandbox.json(&home, &["whoami"]);
        assert!(me["id"].as_str().is_some(), "{name}: {me}");
        assert_eq!(me["name"], Value::Null);
        // Created only once; `whoami` still reminds of the missing name.
        let again = sandbox.run(&home, &["whoami"]);
        assert!(!again.stderr.contains("created"), "{name}: {again:?}");
        assert!(
            again.stderr.contains("set your name with `potluck name"),
            "{name}: {again:?}"
        );
    }
    // `name` in a fresh home creates the identity and sets the name at once.
    let home = sandbox.home("named");
    let doc = sandbox.json(&home, &["name", "Ana"]);
    assert_eq!(doc["name"], "Ana");
    assert_eq!(sandbox.json(&home, &["whoami"])["name"], "Ana");
}

#[test]
fn name_command_changes_whoami() {
    let node = Node::init("Ana");
    let id = node.whoami()["id"].clone();
    assert_eq!(
        node.ok(&["name", "Bob"]),
        json!({ "id": id, "name": "Bob" })
    );
    assert_eq!(node.whoami(), json!({ "id": id, "name": "Bob" }));
    // The organizer name shown with events follows too.
    let ev = node.announce(&["--title", "T", "--start", START]);
    assert_eq!(node.event(&ev)["organizer_name"], "Bob");
}

#[test]
fn potluck_home_variable_and_flag_precedence() {
    let a = Node::init("Ana");
    let b = Node::init("Bob");
    let whoami = |flag: Option<&Path>| {
        let mut cmd = Command::new(BIN);
        if let Some(dir) = flag {
            cmd.arg("--home").arg(dir);
        }
        cmd.args(["whoami", "--json"]);
        let run = run_command_with(cmd, a.dir(), &[("POTLUCK_HOME", &a.home)]);
        assert!(run.status.success(), "{run:?}");
        run.json()
    };
    assert_eq!(whoami(None), a.whoami());
    assert_eq!(whoami(None)["name"], "Ana");
    // --home wins over POTLUCK_HOME.
    assert_eq!(whoami(Some(&b.home)), b.whoami());
    assert_eq!(whoami(Some(&b.home))["name"], "Bob");
}

#[cfg(target_os = "linux")]
#[test]
fn default_home_is_under_xdg_data_home() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["init", "--name", "Ana", "--json"]);
    let run = run_command(cmd, tmp.path());
    assert!(run.status.success(), "{run:?}");
    let id = run.json()["id"].as_str().unwrap().to_owned();
    let home = tmp.path().join("xdg").join("potluck");
    let key: Value = serde_json::from_slice(&std::fs::read(home.join("secret")).unwrap()).unwrap();
    assert_eq!(key["id"], id.as_str());
}

// ---------------------------------------------------------------------------
// Events and RSVPs
// ---------------------------------------------------------------------------

#[test]
fn announce_rsvp_update_cancel_flow() {
    let node = Node::init("Ana");
    let me = node.whoami()["id"].as_str().unwrap().to_owned();
    let id = node.announce(&[
        "--title",
        "Picnic",
        "--start",
        START,
        "--end",
        END,
        "--tz",
        "America/New_York",
        "--location",
        "Central Park",
        "--url",
        "https://example.org/picnic",
        "--description",
        "Bring a dish.",
        "--capacity",
        "12",
    ]);

    // By 6-character prefix after `%`, without the `%`, and by full id.
    let prefix = &id[..7];
    let doc = node.event(prefix);
    assert_eq!(node.event(&id), doc);
    assert_eq!(node.event(&id[1..7]), doc);

    assert_eq!(doc["id"], id.as_str());
    assert_eq!(doc["author"], me.as_str());
    assert_eq!(doc["organizer_name"], "Ana");
    assert_eq!(doc["title"], "Picnic");
    let start = doc["start"].as_str().unwrap();
    assert!(start.starts_with("2031-06-01T14:00:00-04:00"), "{start}");
    let end = doc["end"].as_str().unwrap();
    assert!(end.starts_with("2031-06-01T17:00:00-04:00"), "{end}");
    assert_eq!(doc["tz"], "America/New_York");
    assert_eq!(doc["location"], "Central Park");
    assert_eq!(doc["url"], "https://example.org/picnic");
    assert_eq!(doc["description"], "Bring a dish.");
    assert_eq!(doc["capacity"], 12);
    assert_eq!(doc["status"], "scheduled");
    assert_eq!(doc["cancel_reason"], Value::Null);
    assert_eq!(doc["revision"], 0);
    assert_eq!(
        doc["tally"],
        json!({ "going": 0, "maybe": 0, "not_going": 0, "headcount": 0, "admitted": 0, "admitted_headcount": 0, "waitlisted": 0, "pending": 0 })
    );
    assert_eq!(doc["rsvps"], json!([]));

    // RSVP going with two guests.
    let r = node.ok(&[
        "rsvp",
        prefix,
        "going",
        "--guests",
        "2",
        "--note",
        "I bring pie",
    ]);
    assert_eq!(r, json!({ "event": id, "status": "going", "guests": 2 }));
    let doc = node.event(prefix);
    assert_eq!(
        doc["rsvps"],
        json!([{
            "author": me,
            "name": "Ana",
            "status": "going",
            "guests": 2,
            "note": "I bring pie",
            // The organizer's own request, decided at once: it fits.
            "admission": "admitted",
            "answered_revision": 0,
            "stale": false,
        }])
    );
    assert_eq!(
        doc["tally"],
        json!({
            "going": 1, "maybe": 0, "not_going": 0, "headcount": 3,
            "admitted": 1, "admitted_headcount": 3, "waitlisted": 0, "pending": 0
        })
    );

    // The latest answer replaces the earlier one.
    let r = node.ok(&["rsvp", &id, "maybe"]);
    assert_eq!(r, json!({ "event": id, "status": "maybe", "guests": 0 }));
    let doc = node.event(&id);
    assert_eq!(
        doc["rsvps"],
        json!([{
            "author": me, "name": "Ana", "status": "maybe", "guests": 0, "note": null,
            "admission": null, "answered_revision": 0, "stale": false
        }])
    );
    assert_eq!(
        doc["tally"],
        json!({ "going": 0, "maybe": 1, "not_going": 0, "headcount": 0, "admitted": 0, "admitted_headcount": 0, "waitlisted": 0, "pending": 0 })
    );

    // `no` (alias `not-going`) counts as not going.
    node.ok(&["rsvp", &id, "not-going"]);
    let doc = node.event(&id);
    assert_eq!(doc["rsvps"].as_array().unwrap().len(), 1);
    assert_eq!(doc["rsvps"][0]["status"], "not-going");
    assert_eq!(
        doc["tally"],
        json!({ "going": 0, "maybe": 0, "not_going": 1, "headcount": 0, "admitted": 0, "admitted_headcount": 0, "waitlisted": 0, "pending": 0 })
    );
    node.ok(&["rsvp", &id, "maybe"]);

    // Listed as upcoming, same fields, no RSVP list.
    let list = node.ok(&["events"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    let mut expected = node.event(&id);
    expected.as_object_mut().unwrap().remove("rsvps");
    assert_eq!(list[0], expected);
    assert!(list[0].get("rsvps").is_none());
    assert_eq!(node.ok(&["events", "--past"]), json!([]));
    assert_eq!(node.ok(&["events", "--all"]), json!([expected]));

    // Update: new title, location cleared; the rest kept.
    let u = node.ok(&["update", prefix, "--title", "New", "--location", ""]);
    assert_eq!(u, json!({ "id": id, "revision": 1 }));
    let doc = node.event(&id);
    assert_eq!(doc["title"], "New");
    assert_eq!(doc["location"], Value::Null);
    assert_eq!(doc["revision"], 1);
    assert_eq!(doc["url"], "https://example.org/picnic");
    assert_eq!(doc["capacity"], 12);
    assert_eq!(doc["status"], "scheduled");
    assert_eq!(doc["tally"]["maybe"], 1, "an update keeps the RSVPs");

    // Cancel.
    let c = node.ok(&["cancel", &id, "--reason", "rain"]);
    assert_eq!(c, json!({ "id": id, "status": "cancelled" }));
    let doc = node.event(&id);
    assert_eq!(doc["status"], "cancelled");
    assert_eq!(doc["cancel_reason"], "rain");
    assert_eq!(doc["revision"], 2);
    assert_eq!(doc["title"], "New");

    // A cancelled event takes no RSVPs or changes, and nothing is written.
    let log = node.log_text();
    let err = node.fails(&["rsvp", &id, "going"]);
    assert!(err.contains("cancelled"), "{err}");
    let err = node.fails(&["update", &id, "--title", "Again"]);
    assert!(err.contains("cancelled"), "{err}");
    let err = node.fails(&["cancel", &id]);
    assert!(err.contains("cancelled"), "{err}");
    assert_eq!(node.log_text(), log);

    // Cancelled events still show in listings, flagged by status.
    let list = node.ok(&["events", "--all"]);
    assert_eq!(list[0]["status"], "cancelled");

    // The feed holds exactly what we did, in order.
    let types: Vec<_> = node
        .log()
        .iter()
        .map(|m| m["content"]["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "about",
            "event",
            "rsvp",
            // The organizer decides on its own request to a capped event.
            "admission",
            "rsvp",
            "rsvp",
            "rsvp",
            "event-update",
            "event-cancel"
        ]
    );
}

#[test]
fn update_start_and_capacity_and_clearing() {
    let node = Node::init("Ana");
    let id = node.announce(&["--title", "T", "--start", START, "--capacity", "5"]);
    node.ok(&[
        "update",
        &id,
        "--start",
        "2032-01-01T10:00:00Z",
        "--capacity",
        "0",
    ]);
    let doc = node.event(&id);
    assert_eq!(
        doc["start"], "2032-01-01T10:00:00Z",
        "no tz: shown as written"
    );
    assert_eq!(doc["capacity"], Value::Null);
    assert_eq!(doc["revision"], 1);
    node.ok(&["update", &id, "--end", "2032-01-01T12:00:00+01:00"]);
    assert_eq!(node.event(&id)["end"], "2032-01-01T12:00:00+01:00");
    node.ok(&["update", &id, "--end", ""]);
    let doc = node.event(&id);
    assert_eq!(doc["end"], Value::Null);
    assert_eq!(doc["revision"], 3);
}

#[test]
fn past_and_upcoming_events_are_split_and_sorted() {
    let node = Node::init("Ana");
    let late = node.announce(&["--title", "Late", "--start", "2035-01-01T00:00:00Z"]);
    let past = node.announce(&[
        "--title",
        "Past",
        "--start",
        "2001-01-01T00:00:00Z",
        "--past",
    ]);
    let soon = node.announce(&["--title", "Soon", "--start", "2030-01-01T00:00:00Z"]);
    // Started long ago but has not ended yet: still upcoming.
    let long = node.announce(&[
        "--title",
        "Long",
        "--start",
        "2000-01-01T00:00:00Z",
        "--end",
        "2040-01-01T00:00:00Z",
    ]);
    let ids = |doc: Value| -> Vec<String> {
        doc.as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(node.ok(&["events"])), [long.as_str(), &soon, &late]);
    assert_eq!(ids(node.ok(&["events", "--past"])), [past.as_str()]);
    assert_eq!(
        ids(node.ok(&["events", "--all"])),
        [long.as_str(), &past, &soon, &late]
    );
    // Moving an event into the past moves it between the lists.
    node.ok(&["update", &soon, "--start", "2002-01-01T00:00:00Z", "--past"]);
    assert_eq!(ids(node.ok(&["events"])), [long.as_str(), &late]);
    assert_eq!(ids(node.ok(&["events", "--past"])), [past.as_str(), &soon]);

    // A limit keeps the next events, or with --past the most recent ones;
    // the text says when there are more.
    assert_eq!(ids(node.ok(&["events", "--limit", "1"])), [long.as_str()]);
    assert_eq!(
        ids(node.ok(&["events", "--past", "--limit", "1"])),
        [soon.as_str()]
    );
    assert_eq!(ids(node.ok(&["events", "--limit", "0"])).len(), 2);
    let text = node.run(&["events", "--limit", "1"]);
    assert!(text.status.success());
    assert!(text.stdout.contains("Long"), "{}", text.stdout);
    assert!(!text.stdout.contains("Late"), "{}", text.stdout);
    assert!(text.stdout.contains("(showing 1;"), "{}", text.stdout);
    let text = node.run(&["events", "--limit", "2"]);
    assert!(!text.stdout.contains("showing"), "{}", text.stdout);
}

// ---------------------------------------------------------------------------
// Time display
// ---------------------------------------------------------------------------

#[test]
fn times_are_shown_in_the_event_time_zone() {
    let node = Node::init("Ana");
    let summer = node.announce(&[
        "--title",
        "Summer",
        "--start",
        "2027-07-01T20:00:00Z",
        "--end",
        "2027-07-01T23:30:00+00:00",
        "--tz",
        "America/New_York",
    ]);
    let winter = node.announce(&[
        "--title",
        "Winter",
        "--start",
        "2027-01-15T20:00:00Z",
        "--tz",
        "America/New_York",
    ]);
    let plain = node.announce(&["--title", "Plain", "--start", "2027-01-30T16:00:00-05:00"]);

    let doc = node.event(&summer);
    assert_eq!(doc["tz"], "America/New_York");
    let start = doc["start"].as_str().unwrap();
    assert!(start.starts_with("2027-07-01T16:00:00-04:00"), "{start}");
    let end = doc["end"].as_str().unwrap();
    assert!(end.starts_with("2027-07-01T19:30:00-04:00"), "{end}");

    let doc = node.event(&winter);
    assert_eq!(doc["tz"], "America/New_York");
    let start = doc["start"].as_str().unwrap();
    assert!(start.starts_with("2027-01-15T15:00:00-05:00"), "{start}");
    assert_eq!(doc["end"], Value::Null);

    // Without a zone the author's text is shown unchanged.
    let doc = node.event(&plain);
    assert_eq!(doc["tz"], Value::Null);
    assert_eq!(doc["start"], "2027-01-30T16:00:00-05:00");

    // The published content keeps the original text.
    let log = node.log();
    assert_eq!(log[1]["content"]["start"], "2027-07-01T20:00:00Z");
    assert_eq!(log[1]["content"]["tz"], "America/New_York");

    // Clearing the zone shows the original again.
    node.ok(&["update", &summer, "--tz", ""]);
    let doc = node.event(&summer);
    assert_eq!(doc["tz"], Value::Null);
    assert_eq!(doc["start"], "2027-07-01T20:00:00Z");
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

/// A store with one scheduled event (`open`) and one cancelled (`closed`),
/// for checking that bad input is refused.
struct Rejects {
    node: Node,
    open: String,
    closed: String,
}

impl Rejects {
    fn new() -> Rejects {
        let node = Node::init("Ana");
        let open = node.announce(&["--title", "Open", "--start", START, "--end", END]);
        let closed = node.announce(&["--title", "Closed", "--start", START]);
        node.ok(&["cancel", &closed]);
        Rejects { node, open, closed }
    }

    /// Each case fails with exit 1, one `error:` line on stderr that
    /// mentions the given text, no stdout, and no change to the store.
    fn check(&self, cases: &[(Vec<&str>, &str)]) {
        let node = &self.node;
        let before = node.log_text();
        assert_eq!(before.lines().count(), 4);
        let before_events = node.ok(&["events", "--all"]);
        for (args, mention) in cases {
            let err = node.fails(args);
            assert!(
                err.contains(mention),
                "{args:?}: error should mention {mention:?}: {err}"
            );
            assert_eq!(node.log_text(), before, "{args:?} changed the feed");
        }
        assert_eq!(node.ok(&["events", "--all"]), before_events);
        assert_eq!(node.ok(&["fsck"])["ok"], true);
    }
}

/// Part of the error for a time that is none of the accepted forms.
const RFC_HINT: &str = "2027-01-30T18:00:00-05:00";

#[test]
fn bad_times_are_refused_and_write_nothing() {
    let r = Rejects::new();
    let open = r.open.as_str();
    r.check(&[
        (
            vec!["announce", "--title", "T", "--start", "tomorrow"],
            RFC_HINT,
        ),
        (
            vec![
                "announce",
                "--title",
                "T",
                "--start",
                "2027-01-30 16:00:00-05:00",
            ],
            RFC_HINT,
        ),
        (
            vec!["announce", "--title", "T", "--start", "2027-01-30T16"],
            RFC_HINT,
        ),
        (
            vec![
                "announce",
                "--title",
                "T",
                "--start",
                "2027-01-30T16:00-05:00",
            ],
            RFC_HINT,
        ),
        (
            vec![
                "announce",
                "--title",
                "T",
                "--start",
                "2027-02-30T16:00:00Z",
            ],
            RFC_HINT,
        ),
        (
            vec![
                "announce",
                "--title",
                "T",
                "--start",
                "2027-01-30T16:00:00-05:00[America/New_York]",
            ],
            RFC_HINT,
        ),
        (vec!["announce", "--title", "T", "--start", ""], RFC_HINT),
        (
            vec![
                "announce", "--title", "T", "--start", START, "--end", "soon",
            ],
            RFC_HINT,
        ),
        (
            vec!["announce", "--title", "T", "--start", END, "--end", START],
            "before",
        ),
        (vec!["update", open, "--start", "not a time"], RFC_HINT),
        (
            vec!["update", open, "--end", "2000-01-01T00:00:00Z"],
            "before",
        ),
        (
            vec!["update", open, "--start", "2040-01-01T00:00:00Z"],
            "before",
        ),
        (
            vec![
                "announce",
                "--title",
                "T",
                "--start",
                START,
                "--tz",
                "Mars/Olympus_Mons",
            ],
            "Mars/Olympus_Mons",
        ),
        (
            vec![
                "announce",
                "--title",
                "T",
                "--start",
                START,
                "--tz",
                "america/new_york",
            ],
            "IANA",
        ),
        (
            vec!["update", open, "--tz", "Nowhere/Special"],
            "Nowhere/Special",
        ),
    ]);
}

#[test]
fn bad_fields_are_refused_and_write_nothing() {
    let r = Rejects::new();
    let (open, closed) = (r.open.as_str(), r.closed.as_str());
    let long_note = "n".repeat(501);
    let long_title = "t".repeat(201);
    let long_reason = "r".repeat(501);
    r.check(&[
        (vec!["announce", "--title", "", "--start", START], "title"),
        (
            vec!["announce", "--title", "   ", "--start", START],
            "title",
        ),
        (
            vec!["announce", "--title", &long_title, "--start", START],
            "200",
        ),
        (
            vec![
                "announce",
                "--title",
                "T",
                "--start",
                START,
                "--capacity",
                "0",
            ],
            "capacity",
        ),
        (vec!["update", open, "--title", ""], "title"),
        (vec!["update", open], "nothing to change"),
        (vec!["update", closed, "--title", "X"], "cancelled"),
        (vec!["cancel", open, "--reason", &long_reason], "500"),
        (vec!["cancel", closed], "cancelled"),
        (vec!["name", ""], "name"),
        (vec!["name", "   "], "name"),
        (vec!["rsvp", closed, "going"], "cancelled"),
        (vec!["rsvp", &closed[..7], "maybe"], "cancelled"),
        (vec!["rsvp", open, "going", "--guests", "99"], "20"),
        (vec!["rsvp", open, "going", "--guests", "21"], "20"),
        (vec!["rsvp", open, "going", "--note", &long_note], "500"),
    ]);
}

#[test]
fn bad_event_references_are_refused_and_write_nothing() {
    let r = Rejects::new();
    let unknown_full = other_id(&r.open);
    let unknown_prefix = &unknown_full[..7];
    let short = &r.open[..6]; // `%` + 5 characters
    let none = "no known event";
    r.check(&[
        (vec!["event", &unknown_full], none),
        (vec!["event", unknown_prefix], none),
        (vec!["event", "%!!!!!!!!"], none),
        (vec!["rsvp", &unknown_full, "going"], none),
        (vec!["rsvp", unknown_prefix, "going"], none),
        (vec!["update", unknown_prefix, "--title", "X"], none),
        (vec!["cancel", &unknown_full], none),
        (vec!["event", short], "at least 6"),
        (vec!["rsvp", short, "going"], "at least 6"),
        (vec!["update", short, "--title", "X"], "at least 6"),
        (vec!["cancel", short], "at least 6"),
        (vec!["event", ""], "at least 6"),
    ]);
}

#[test]
fn guests_at_the_limit_are_accepted() {
    let node = Node::init("Ana");
    let id = node.announce(&["--title", "T", "--start", START]);
    node.ok(&["rsvp", &id, "going", "--guests", "20"]);
    assert_eq!(node.event(&id)["tally"]["headcount"], 21);
}

/// Prefix resolution slices the text at a byte offset; a prefix with
/// multi-byte characters must be rejected, not crash the process.
#[test]
fn non_ascii_event_prefix_is_an_error_not_a_panic() {
    let node = Node::init("Ana");
    let id = node.announce(&["--title", "T", "--start", START]);
    let before = node.log_text();
    // 7 characters, 13 bytes: byte 12 is inside the last `é`.
    let weird = "%aéééééé";
    for args in [
        vec!["event", weird],
        vec!["rsvp", weird, "going"],
        vec!["update", weird, "--title", "X"],
        vec!["cancel", weird],
    ] {
        let err = node.fails(&args);
        assert!(err.contains("no known event"), "{args:?}: {err}");
    }
    assert_eq!(node.log_text(), before);
    assert_eq!(node.event(&id)["status"], "scheduled");
}

// ---------------------------------------------------------------------------
// The feed
// ---------------------------------------------------------------------------

#[test]
fn log_is_a_signed_hash_chain() {
    let node = Node::init("Ana");
    let me = node.whoami()["id"].as_str().unwrap().to_owned();
    let ev = node.announce(&["--title", "T", "--start", START]);
    node.ok(&["rsvp", &ev, "going", "--guests", "1"]);
    node.ok(&["name", "Ana B."]);

    let text = node.log_text();
    assert!(text.ends_with('\n'));
    let log = node.log();
    assert_eq!(log.len(), 4);
    let mut previous = Value::Null;
    let mut last_ts = i64::MIN;
    for (i, msg) in log.iter().enumerate() {
        let obj = msg.as_object().expect("each line is an object");
        let mut keys: Vec<_> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "author",
                "content",
                "id",
                "previous",
                "sequence",
                "signature",
                "timestamp"
            ]
        );
        assert_id(msg["id"].as_str().unwrap(), '%', ".blake3");
        assert_eq!(msg["author"], me.as_str());
        assert_eq!(msg["sequence"], i as u64 + 1);
        assert_eq!(msg["previous"], previous, "message {}", i + 1);
        let ts = msg["timestamp"].as_i64().expect("integer timestamp");
        assert!(ts >= last_ts && ts > 1_600_000_000_000, "{ts}");
        last_ts = ts;
        let sig = B64.decode(msg["signature"].as_str().unwrap()).unwrap();
        assert_eq!(sig.len(), 64);
        assert!(msg["content"]["type"].is_string());
        previous = msg["id"].clone();
    }
    assert_eq!(log[0]["content"], json!({ "type": "about", "name": "Ana" }));
    assert_eq!(
        log[1]["content"],
        json!({ "type": "event", "title": "T", "start": START })
    );
    assert_eq!(log[1]["id"], ev.as_str(), "the event id is its message id");
    assert_eq!(
        log[2]["content"],
        json!({ "type": "rsvp", "event": ev, "status": "going", "guests": 1, "revision": 0 })
    );
    assert_eq!(
        log[3]["content"],
        json!({ "type": "about", "name": "Ana B." })
    );

    // The feed can be named explicitly.
    assert_eq!(node.run(&["log", &me, "--json"]).stdout, text);
    // A malformed feed id is a clean error.
    let err = node.fails(&["log", "@nope"]);
    assert!(err.contains("not a valid feed id"), "{err}");
}

#[test]
fn fsck_and_reindex_on_a_healthy_store() {
    let node = Node::init("Ana");
    let ev = node.announce(&["--title", "T", "--start", START]);
    node.ok(&["rsvp", &ev, "maybe"]);

    let report = node.ok(&["fsck"]);
    assert_eq!(report["ok"], true);
    assert_eq!(report["feeds"], 1);
    assert_eq!(report["messages"], 3);
    assert_eq!(report["problems"], json!([]));
    let entries = report["index_entries"].as_u64().unwrap();
    assert!(entries > 0);

    let event_before = node.event(&ev);
    let rebuilt = node.ok(&["reindex"]);
    assert_eq!(rebuilt, json!({ "entries": entries }));

    let again = node.ok(&["fsck"]);
    assert_eq!(again, report);
    assert_eq!(node.event(&ev), event_before, "reindex changed the view");
}

/// A command run here exits without tearing its store down (on a large
/// store that teardown was a tenth of the command), after saving what the
/// teardown saves: the next command finds every message, and the position
/// index whole rather than made again from the log (which it would log).
#[test]
fn a_command_saves_its_store_before_it_exits() {
    let node = Node::init("Ana");
    let ev = node.announce(&["--title", "T", "--start", START]);
    node.ok(&["rsvp", &ev, "maybe"]);
    let run = node.run_with(&["log"], &[("POTLUCK_LOG", "potluck=info")]);
    assert!(run.status.success(), "{run:?}");
    assert_eq!(run.stderr, "", "the position index was not saved: {run:?}");
    let messages: Vec<Value> = run
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let types: Vec<&str> = messages
        .iter()
        .map(|m| m["content"]["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(types, ["about", "event", "rsvp"], "{run:?}");
    assert_eq!(node.ok(&["fsck"])["ok"], true);
}

/// Damage to sled's settings file (`conf`) is damage outside the message
/// log: plain `fsck` names it in one line with the way out, and `fsck
/// --repair` rebuilds the store from the message log, after which every
/// command answers as before. Random bytes, and one flipped bit each where
/// sled would read text that is not UTF-8 (an "earlier sled version"),
/// another segment size, another sled version, or a broken line; and an
/// emptied file, which leaves the segment size of the data unknown.
#[test]
fn a_damaged_sled_settings_file_is_repaired_from_the_message_log() {
    use rand::{Rng, SeedableRng};

    let node = Node::init("Ana");
    let soup = node.announce(&["--title", "Soup", "--start", START]);
    node.ok(&["rsvp", &soup, "going", "--guests", "1"]);
    let bread = node.announce(&["--title", "Bread", "--start", START, "--capacity", "4"]);
    node.ok(&["rsvp", &bread, "maybe"]);
    let healthy = node.ok(&["fsck"]);
    let events = node.ok(&["events"]);
    let views = [node.event(&soup), node.event(&bread)];
    let log = node.log_text();

    let conf = node.home.join("store").join("conf");
    let good = std::fs::read(&conf).unwrap();
    let text = String::from_utf8_lossy(&good).into_owned();
    let after = |label: &str| text.find(label).unwrap() + label.len();
    let flipped = |at: usize, bit: u8| {
        let mut bytes = good.clone();
        bytes[at] ^= bit;
        bytes
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(19);
    let damages = [
        ("random bytes", (0..63).map(|_| rng.r#gen::<u8>()).collect()),
        ("not UTF-8", flipped(0, 0x80)),
        (
            "another segment size",
            flipped(after("segment_size: "), 0x01),
        ),
        ("another version", flipped(after("version: 0.") + 1, 0x01)),
        ("a broken line", flipped(after("false"), 0x01)),
        // No settings at all beside the data: the segment size is unknown.
        ("emptied", Vec::new()),
    ];
    for (what, damage) in damages {
        // Each repair makes a new store, with sled's own `conf` again.
        assert_eq!(std::fs::read(&conf).unwrap(), good, "{what}");
        std::fs::write(&conf, &damage).unwrap();

        let (line, _) = node.fails_with_kind(&["fsck"]);
        assert!(line.contains("`conf`"), "{what}: {line}");
        assert!(line.contains("potluck fsck --repair"), "{what}: {line}");

        let run = node.run(&["fsck", "--repair", "--json"]);
        assert!(run.status.success(), "{what}: {run:?}");
        let repaired = run.json();
        assert_eq!(repaired["ok"], true, "{what}: {repaired}");
        assert_eq!(repaired["messages"], healthy["messages"], "{what}");
        assert_eq!(repaired["rebuilt"]["restored"], healthy["messages"]);
        assert_eq!(repaired["rebuilt"]["skipped"], 0, "{what}: {repaired}");
        let moved = Path::new(repaired["rebuilt"]["moved_to"].as_str().unwrap());
        assert_eq!(std::fs::read(moved.join("conf")).unwrap(), damage);

        assert_eq!(node.ok(&["fsck"]), healthy, "{what}");
        assert_eq!(node.ok(&["events"]), events, "{what}");
        assert_eq!([node.event(&soup), node.event(&bread)], views, "{what}");
        assert_eq!(node.log_text(), log, "{what}");
    }
}

// ---------------------------------------------------------------------------
// Errors people and scripts can act on
// ---------------------------------------------------------------------------

#[test]
fn usage_errors_show_claps_whole_message() {
    let node = Node::init("Ana");
    // Each: what clap says beyond its first line.
    let cases: &[(&[&str], &[&str])] = &[
        (&["rsvp"], &["<EVENT>", "<STATUS>", "Usage: potluck rsvp"]),
        (&["annouce"], &["similar subcommands", "'announce'"]),
        (
            &["rsvp", "%abcdefgh", "yes"],
            &["possible values: going, maybe, no"],
        ),
    ];
    for (args, mentions) in cases {
        let run = node.run(args);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {run:?}");
        assert_eq!(run.stdout, "", "{args:?}: {run:?}");
        assert!(run.stderr.starts_with("error: "), "{args:?}: {run:?}");
        for mention in *mentions {
            assert!(run.stderr.contains(mention), "{args:?}: {mention}: {run:?}");
        }
        // Not a terminal: no colour codes.
        assert!(!run.stderr.contains('\u{1b}'), "{args:?}: {run:?}");
        // With --json, the same message as an error document.
        let mut all = args.to_vec();
        all.push("--json");
        let run = node.run(&all);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {run:?}");
        let error = common::sandbox::json_error(&run, args);
        assert_eq!(error["kind"], "usage");
        for mention in *mentions {
            let message = error["message"].as_str().unwrap();
            assert!(message.contains(mention), "{args:?}: {mention}: {message}");
        }
    }
    // Help still goes to stdout and succeeds.
    let help = node.run(&["rsvp", "--help"]);
    assert!(help.status.success());
    assert!(help.stdout.contains("Usage: potluck rsvp"), "{help:?}");
}

#[test]
fn json_errors_are_documents_with_a_kind() {
    let node = Node::init("Ana");
    let open = node.announce(&["--title", "Open", "--start", START]);
    let fake = other_id(&open);
    let cases: &[(&[&str], &str)] = &[
        (&["event", &fake], "not_found"),
        (&["event", "%abc"], "invalid_input"),
        (
            &["announce", "--title", "T", "--start", "soon"],
            "invalid_input",
        ),
        (&["follow", "@nobody"], "invalid_input"),
        (&["update", &open], "refused"),
        (&["import", "missing.bundle"], "io"),
    ];
    for (args, kind) in cases {
        let (_, got) = node.fails_with_kind(args);
        assert_eq!(got, *kind, "{args:?}");
    }
    // Without --json, stdout stays empty.
    let run = node.run(&["event", &fake]);
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(run.stdout, "");
}

// ---------------------------------------------------------------------------
// The README, completions, manual page, systemd unit
// ---------------------------------------------------------------------------

/// The first ```sh block after `heading` in the README.
fn readme_block(heading: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = &readme[readme.find(heading).unwrap_or_else(|| panic!("{heading}"))..];
    let start = section.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = section[start..].find("```").expect("its end");
    section[start..start + end].to_owned()
}

/// "Using it" runs top to bottom in a fresh home, with `potluck` on the
/// PATH as the install step puts it, and the install step comes right
/// after the quickstart.
#[test]
fn readme_install_and_using_it_run_on_a_fresh_home() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let quickstart = readme.find("## Quickstart").unwrap();
    let install = readme.find("## Install").unwrap();
    assert!(install > quickstart);
    assert!(
        !readme[quickstart + 1..install].contains("\n## "),
        "nothing in between"
    );
    assert!(readme_block("## Install").contains("cargo install --locked --path ."));

    let script = readme_block("## Using it");
    let sandbox = common::sandbox::Sandbox::new();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    cmd.arg("-euo").arg("pipefail").arg("-c").arg(&script);
    let run = run_command_with(
        cmd,
        sandbox.dir(),
        &[
            ("PATH", path.as_str()),
            ("POTLUCK_HOME", sandbox.path("home").to_str().unwrap()),
        ],
    );
    assert!(
        run.status.success(),
        "the README's commands failed: {run:?}"
    );
    assert!(
        run.stdout
            .contains("Sat 26 Jan 2030, 18:00–21:00 EST  Soup night"),
        "{}",
        run.stdout
    );
    assert!(sandbox.path("events.ics").exists());
}

#[test]
fn completions_and_manual_page() {
    let node = Node::new();
    for (shell, mark) in [
        ("bash", "_potluck()"),
        ("zsh", "#compdef potluck"),
        ("fish", "complete -c potluck"),
    ] {
        let run = node.run(&["completions", shell]);
        assert!(run.status.success(), "{shell}: {run:?}");
        assert!(run.stdout.contains(mark), "{shell}: {}", run.stdout);
        assert!(run.stdout.contains("announce"), "{shell}");
    }
    let man = node.run(&["manpage"]);
    assert!(man.status.success(), "{man:?}");
    assert!(man.stdout.contains(".TH potluck 1"), "{}", man.stdout);
    assert!(man.stdout.contains("announce"));
    // Neither needs nor creates a home.
    assert!(!node.home.exists());
}

#[test]
fn the_systemd_unit_runs_serve_at_login() {
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/potluck.service"))
            .unwrap();
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for needed in [
        "[Service]",
        "ExecStart=%h/.cargo/bin/potluck serve",
        "[Install]",
        "WantedBy=default.target",
    ] {
        assert!(lines.contains(&needed), "{needed} missing:\n{unit}");
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(readme.contains("systemctl --user enable --now potluck"));
    assert!(readme.contains("docs/potluck.service"));
}

#[test]
fn the_package_says_what_it_is() {
    for (field, value) in [
        ("description", env!("CARGO_PKG_DESCRIPTION")),
        ("license", env!("CARGO_PKG_LICENSE")),
        ("rust-version", env!("CARGO_PKG_RUST_VERSION")),
    ] {
        assert!(!value.trim().is_empty(), "Cargo.toml has no {field}");
    }
}

#[test]
fn a_home_whose_key_is_gone_refuses_a_new_identity_until_asked() {
    let node = Node::init("Ana");
    let me = node.me();
    let event = node.announce(&["--title", "Soup night", "--start", START, "--end", END]);
    std::fs::remove_file(node.secret()).unwrap();

    // Publishing would have made a stranger of Ana: refused, with what is
    // missing and both ways out, and no key is written.
    let (line, kind) = node.fails_with_kind(&[
        "announce", "--title", "Again", "--start", START, "--end", END,
    ]);
    assert_eq!(kind, "identity", "{line}");
    assert!(
        line.contains("key file") && line.contains("is missing"),
        "{line}"
    );
    assert!(line.contains("init --new-identity"), "{line}");
    assert!(!node.secret().exists(), "a new key was written");
    let (line, kind) = node.fails_with_kind(&["rsvp", &event, "going"]);
    assert_eq!(kind, "identity", "{line}");
    assert!(!node.secret().exists());

    // Reading still works; starting over is explicit, and the old feed stays.
    assert_eq!(node.event(&event)["author"], me.as_str());
    let fresh = node.ok(&["init", "--new-identity"]);
    assert_ne!(fresh["id"], me.as_str());
    assert_eq!(node.whoami()["id"], fresh["id"]);
    assert_eq!(node.event(&event)["author"], me.as_str());
}
