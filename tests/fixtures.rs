//! `potluck fixtures`: a new home filled with deterministic fixtures that
//! the store accepts whole, checks clean, and shows as upcoming events
//! with RSVPs.

mod common;

use common::sandbox::{Sandbox, assert_clean_failure, finish};

#[test]
fn fixtures_fill_a_new_home_that_checks_clean() {
    let sandbox = Sandbox::new();
    let home = sandbox.home("fixtures-home");
    let home_arg = home.to_str().unwrap();
    let args = [
        "fixtures",
        "--out",
        home_arg,
        "--feeds",
        "20",
        "--messages",
        "800",
        "--seed",
        "7",
        "--json",
    ];
    // `--home` points elsewhere: the fixtures go to `--out`.
    let mut cmd = sandbox.command(&sandbox.home("unused"), &args);
    cmd.env_remove("POTLUCK_HOME").env_remove("POTLUCK_LOG");
    let run = finish(cmd);
    assert!(run.status.success(), "{run:?}");
    let report = run.json();
    assert_eq!(report["messages"], 800, "{report}");
    assert_eq!(report["feeds"], 20, "{report}");
    assert!(report["bytes"].as_u64().unwrap() > 800 * 200, "{report}");
    assert!(report["size_on_disk"].as_u64().unwrap() > 0, "{report}");
    assert!(report["seconds"].as_f64().unwrap() >= 0.0, "{report}");

    let fsck = sandbox.run(&home, &["fsck", "--json"]);
    assert!(fsck.status.success(), "{fsck:?}");
    let fsck = fsck.json();
    assert_eq!(fsck["ok"], true, "{fsck}");
    assert_eq!(fsck["messages"], 800, "{fsck}");

    let events = sandbox.run(&home, &["events", "--json"]);
    assert!(events.status.success(), "{events:?}");
    let events = events.json();
    let list = events.as_array().expect("a list of events");
    assert!(!list.is_empty(), "upcoming events: {events}");
    let answered = list
        .iter()
        .filter(|e| {
            let t = &e["tally"];
            ["going", "maybe", "not_going"]
                .iter()
                .any(|k| t[k].as_u64().unwrap_or(0) > 0)
        })
        .count();
    assert!(answered > 0, "some events have RSVPs: {events}");

    // The home now holds an identity: a second run refuses to touch it.
    let again = sandbox.run(&sandbox.home("unused"), &args);
    assert_clean_failure(&again, &args);
    assert!(
        again.stderr.contains("already holds an identity"),
        "{again:?}"
    );
}
