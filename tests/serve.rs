//! End-to-end tests of `potluck serve`, `potluck sync` and the commands
//! forwarded to a running node over its control socket. Every test runs the
//! real binary in temporary homes, on 127.0.0.1 with ephemeral ports.
//!
//! The environment of every child is cleaned (`POTLUCK_HOME`, `POTLUCK_LOG`
//! and friends removed; `HOME` and `XDG_DATA_HOME` inside the sandbox), every
//! wait is bounded, and a guard kills any `serve` process a failing test
//! leaves behind.

mod common;

use std::path::Path;
use std::thread;
use std::time::Instant;

use common::sandbox::{POLL, Sandbox, Server, announce, events_contain};
use common::{DEADLINE, free_tcp_port};
use serde_json::Value;

impl Sandbox {
    /// Starts `potluck serve --no-discovery ARGS…` and waits for its
    /// "listening on" line.
    fn serve(&self, home: &Path, args: &[&str]) -> Result<Server, String> {
        // No LAN announcements from tests: only loopback traffic here
        // (tests/discovery.rs covers discovery on 127.255.255.255).
        let mut all = vec!["--no-discovery"];
        all.extend_from_slice(args);
        self.spawn_serve(home, &all)
    }

    /// Starts `serve --listen 127.0.0.1:PORT ARGS…` on a port that was
    /// free a moment ago; tries another if someone took it in between.
    fn serve_on_free_port(&self, home: &Path, args: &[&str]) -> Server {
        for _ in 0..5 {
            let port = free_tcp_port();
            let listen = format!("127.0.0.1:{port}");
            let mut all = vec!["--listen", listen.as_str()];
            all.extend_from_slice(args);
            match self.serve(home, &all) {
                Ok(server) => {
                    assert_eq!(server.addr.port(), port);
                    return server;
                }
                Err(e) if e.contains("cannot listen") => continue,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no free port found after 5 tries");
    }
}

/// The connected peers in the output of `peers --json`.
fn connected(peers: &Value) -> Vec<Value> {
    peers["connected"].as_array().cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------

#[test]
fn two_serving_nodes_replicate_live_and_stop_cleanly() {
    let sandbox = Sandbox::new();
    let home_a = sandbox.home("a");
    let home_b = sandbox.home("b");
    let mut a = sandbox.serve_on_free_port(&home_a, &[]);
    let a_addr = a.addr.to_string();
    let mut b = sandbox.serve_on_free_port(&home_b, &["--peer", &a_addr]);
    assert_ne!(a.feed, b.feed);
    assert!(a.control_socket().exists() && b.control_socket().exists());

    // Forwarded to A's node over its control socket (the node owns the store).
    let event = announce(&sandbox, &home_a, "Street party");
    assert!(
        event.starts_with('%') && event.ends_with(".blake3"),
        "{event}"
    );
    sandbox.json_until(&home_b, &["events"], "B to list A's event", |doc| {
        events_contain(doc, &event)
    });

    let answer = sandbox.json(&home_b, &["rsvp", &event, "going"]);
    assert_eq!(answer["status"], "going");
    assert_eq!(answer["event"], event.as_str());
    sandbox.json_until(&home_a, &["event", &event], "A to see B's RSVP", |doc| {
        doc["tally"]["going"] == 1
            && doc["rsvps"]
                .as_array()
                .is_some_and(|r| r.len() == 1 && r[0]["author"] == b.feed.as_str())
    });
    let doc = sandbox.json(&home_a, &["event", &event]);
    assert_eq!(doc["rsvps"][0]["status"], "going");
    assert_eq!(doc["author"], a.feed.as_str());

    let whoami = sandbox.json(&home_b, &["whoami"]);
    assert_eq!(whoami["id"], b.feed.as_str());

    let peers_a = sandbox.json(&home_a, &["peers"]);
    assert_eq!(peers_a["node_running"], true);
    let peers_a = connected(&peers_a);
    assert_eq!(peers_a.len(), 1, "{peers_a:?}");
    assert_eq!(peers_a[0]["feed"], b.feed.as_str());
    assert_eq!(peers_a[0]["outbound"], false);
    assert_eq!(peers_a[0]["received"], 1, "B's RSVP");
    let peers_b = connected(&sandbox.json(&home_b, &["peers"]));
    assert_eq!(peers_b.len(), 1, "{peers_b:?}");
    assert_eq!(peers_b[0]["feed"], a.feed.as_str());
    assert_eq!(peers_b[0]["outbound"], true);
    assert_eq!(peers_b[0]["address"], a_addr.as_str());

    let status_b = b.terminate();
    let status_a = a.terminate();
    assert!(status_b.success(), "B: {status_b:?}: {}", b.stderr());
    assert!(status_a.success(), "A: {status_a:?}: {}", a.stderr());
    assert!(
        !a.control_socket().exists(),
        "A's control socket is removed"
    );
    assert!(
        !b.control_socket().exists(),
        "B's control socket is removed"
    );

    // The stores are consistent and usable without a node.
    for home in [&home_a, &home_b] {
        let fsck = sandbox.json(home, &["fsck"]);
        assert_eq!(fsck["ok"], true, "{fsck}");
        let doc = sandbox.json(home, &["event", &event]);
        assert_eq!(doc["tally"]["going"], 1);
    }
}

#[test]
fn sync_against_a_serving_node() {
    let sandbox = Sandbox::new();
    let home_a = sandbox.home("a");
    let init = sandbox.json(&home_a, &["init", "--name", "Ana"]);
    let a_feed = init["id"].as_str().unwrap().to_owned();
    let mut a = sandbox
        .serve(&home_a, &["--listen", "127.0.0.1:0"])
        .unwrap();
    assert_eq!(a.feed, a_feed);
    let target = a.addr.to_string();
    let event = announce(&sandbox, &home_a, "Quiz night");

    // B has no node running: it dials A itself.
    let home_b = sandbox.home("b");
    let b_feed = sandbox.json(&home_b, &["init", "--name", "Bea"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let report = sandbox.json(&home_b, &["sync", &target]);
    assert_eq!(report["peer"], a_feed.as_str());
    assert_eq!(report["received"], 2, "{report}");
    assert_eq!(report["sent"], 1, "{report}");
    assert!(report["bytes_in"].as_u64().unwrap() > 0);
    assert!(report["bytes_out"].as_u64().unwrap() > 0);
    let events = sandbox.json(&home_b, &["events"]);
    assert!(events_contain(&events, &event), "{events}");
    assert_eq!(events[0]["organizer_name"], "Ana");

    // A learns B's name.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let log = sandbox.run(&home_a, &["log", &b_feed]);
        assert!(log.status.success(), "{log:?}");
        if log.stdout.lines().count() == 1 {
            assert!(log.stdout.contains("Bea"), "{log:?}");
            break;
        }
        assert!(Instant::now() < deadline, "A never got B's message");
        thread::sleep(POLL);
    }

    // The text form says what happened.
    let text = sandbox.run(&home_b, &["sync", &target]);
    assert!(text.status.success(), "{text:?}");
    assert!(
        text.stdout.contains("received 0 messages, sent 0"),
        "{text:?}"
    );

    // A pinned address of the wrong feed is refused.
    let wrong = format!("{b_feed}@{target}");
    let run = sandbox.run(&home_b, &["sync", &wrong]);
    assert!(!run.status.success(), "{run:?}");
    assert_eq!(run.stderr.trim().lines().count(), 1, "{run:?}");

    // Another network: a one-line error that says so, and nothing changes.
    let home_c = sandbox.home("c");
    let key = "ab".repeat(32);
    sandbox.json(&home_c, &["init", "--network-key", &key, "--name", "Cy"]);
    let run = sandbox.run(&home_c, &["sync", &target, "--json"]);
    assert!(!run.status.success(), "{run:?}");
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let error = common::sandbox::json_error(&run, &["sync"]);
    assert_eq!(error["kind"], "network", "{run:?}");
    let stderr = run.stderr.trim_end();
    assert_eq!(stderr.lines().count(), 1, "one line: {run:?}");
    assert!(stderr.starts_with("error: sync with"), "{run:?}");
    assert!(
        stderr.contains("network key"),
        "the error names the likely cause: {run:?}"
    );
    let c_log = sandbox.run(&home_c, &["log"]);
    assert_eq!(c_log.stdout.lines().count(), 1, "{c_log:?}");

    // A is still fine and serving; a `sync` forwarded to a running node
    // uses that node.
    let home_d = sandbox.home("d");
    let mut d = sandbox
        .serve(&home_d, &["--listen", "127.0.0.1:0"])
        .unwrap();
    let report = sandbox.json(&home_d, &["sync", &target]);
    assert_eq!(report["peer"], a_feed.as_str());
    assert_eq!(report["received"], 3, "A's two and B's name: {report}");
    let events = sandbox.json(&home_d, &["events"]);
    assert!(events_contain(&events, &event), "{events}");

    assert!(d.terminate().success(), "{}", d.stderr());
    assert!(a.terminate().success(), "{}", a.stderr());
    let a_log = sandbox.run(&home_a, &["log", &b_feed]);
    assert_eq!(a_log.stdout.lines().count(), 1, "{a_log:?}");
}

#[test]
fn serve_on_a_fresh_home_creates_an_identity() {
    let sandbox = Sandbox::new();
    let home = sandbox.home("fresh");
    assert!(!home.exists());
    let mut node = sandbox.serve(&home, &["--listen", "127.0.0.1:0"]).unwrap();
    assert!(node.feed.starts_with('@') && node.feed.ends_with(".ed25519"));
    assert!(node.addr.ip().is_loopback() && node.addr.port() != 0);
    assert!(node.control_socket().exists());
    // stderr is read by another thread: wait (bounded) for the line.
    node.wait_for_log(&format!("created a new identity {}", node.feed));

    // Through the control socket: the node holds the store, so a command
    // that opened it directly would fail.
    let whoami = sandbox.json(&home, &["whoami"]);
    assert_eq!(whoami["id"], node.feed.as_str());
    let name = sandbox.json(&home, &["name", "Fresh"]);
    assert_eq!(name["name"], "Fresh");
    let peers = sandbox.json(&home, &["peers"]);
    assert_eq!(peers["node_running"], true);
    assert!(connected(&peers).is_empty());

    // A second node cannot take over the same home, and leaves the first
    // one alone.
    let second = sandbox.serve(&home, &["--listen", "127.0.0.1:0"]);
    assert!(second.is_err(), "a second serve on one home fails");
    assert!(node.control_socket().exists());
    let whoami = sandbox.json(&home, &["whoami"]);
    assert_eq!(whoami["id"], node.feed.as_str());

    let status = node.terminate();
    assert!(status.success(), "{status:?}: {}", node.stderr());
    assert!(!node.control_socket().exists());

    // Without the node, commands open the store themselves.
    let whoami = sandbox.json(&home, &["whoami"]);
    assert_eq!(whoami["id"], node.feed.as_str());
    assert_eq!(whoami["name"], "Fresh");
    let peers = sandbox.json(&home, &["peers"]);
    assert_eq!(peers["node_running"], false);
}

#[test]
fn a_second_serve_on_a_home_in_use_says_so() {
    let sandbox = Sandbox::new();
    let home = sandbox.home("busy");
    let _node = sandbox.serve(&home, &["--listen", "127.0.0.1:0"]).unwrap();
    let err = sandbox
        .serve(&home, &["--listen", "127.0.0.1:0"])
        .err()
        .expect("a second serve on one home fails");
    let last = err.trim_end().lines().last().unwrap_or_default().to_owned();
    assert!(
        last.contains("in use by another potluck process") || last.contains("already running"),
        "the error should say that a node already runs here: {err}"
    );
}

/// Two homes, Ana's and Bea's; Ana's node serves on a loopback port.
fn ana_serving_and_bea(sandbox: &Sandbox) -> (std::path::PathBuf, std::path::PathBuf, Server) {
    let home_a = sandbox.home("a");
    let home_b = sandbox.home("b");
    sandbox.json(&home_a, &["init", "--name", "Ana"]);
    sandbox.json(&home_b, &["init", "--name", "Bea"]);
    let a = sandbox
        .serve(&home_a, &["--listen", "127.0.0.1:0"])
        .unwrap_or_else(|e| panic!("{e}"));
    (home_a, home_b, a)
}

/// An RSVP to an event with a capacity, synced once while the organizer's
/// node runs, comes back decided: `sync` waits for the organizer's answer.
#[test]
fn one_sync_brings_back_the_organizers_admission() {
    let sandbox = Sandbox::new();
    let (home_a, home_b, a) = ana_serving_and_bea(&sandbox);
    let target = a.addr.to_string();
    let event = sandbox.json(
        &home_a,
        &[
            "announce",
            "--title",
            "Supper",
            "--start",
            common::START,
            "--capacity",
            "4",
        ],
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sandbox.json(&home_b, &["sync", &target]);
    sandbox.json(&home_b, &["rsvp", &event, "going", "--guests", "1"]);
    let agenda = sandbox.json(&home_b, &["agenda"]);
    assert_eq!(agenda[0]["admission"], "pending", "{agenda}");

    // One sync: the request goes, the decision comes back.
    let report = sandbox.json(&home_b, &["sync", &target]);
    assert_eq!(report["unanswered_requests"], 0, "{report}");
    let agenda = sandbox.json(&home_b, &["agenda"]);
    assert_eq!(agenda[0]["admission"], "admitted", "{agenda}");
    let doc = sandbox.json(&home_b, &["event", &event]);
    assert_eq!(doc["tally"]["admitted_headcount"], 2, "{doc}");
    // The text names the organizer, not her feed id.
    let text = sandbox.run(&home_b, &["sync", &target]);
    assert!(text.stdout.starts_with("synced with Ana: "), "{text:?}");
    // Not a terminal: no progress line on stderr.
    assert_eq!(text.stderr, "", "{text:?}");
}

/// A port in use: the error says how to pick another, and nothing is
/// created in the home that could not start. The log of a node writing to
/// a pipe has no colour codes.
#[test]
fn a_port_in_use_suggests_listen_and_creates_nothing() {
    let sandbox = Sandbox::new();
    let home_a = sandbox.home("a");
    let a = sandbox
        .serve(&home_a, &["--listen", "127.0.0.1:0"])
        .unwrap_or_else(|e| panic!("{e}"));
    let taken = a.addr.to_string();
    let home_b = sandbox.home("b");
    let Err(err) = sandbox.serve(&home_b, &["--listen", &taken]) else {
        panic!("serve started on a port in use");
    };
    assert!(err.contains(&format!("cannot listen on {taken}")), "{err}");
    assert!(err.contains("--listen"), "{err}");
    assert!(!home_b.exists(), "serve created {}", home_b.display());
    // First run without a terminal: how to set a name, and no colour.
    let log = a.stderr();
    assert!(log.contains("set your name with `potluck name"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log:?}");
}

/// A lasting connection: each node logs the other's catch-up by name, and
/// `peers` says the connection is direct and caught up.
#[test]
fn serve_logs_the_catch_up_by_name() {
    let sandbox = Sandbox::new();
    let (_, home_b, a) = ana_serving_and_bea(&sandbox);
    let target = a.addr.to_string();
    let b = sandbox
        .serve(&home_b, &["--listen", "127.0.0.1:0", "--peer", &target])
        .unwrap_or_else(|e| panic!("{e}"));
    a.wait_for_log("caught up with Bea");
    b.wait_for_log("caught up with Ana");
    sandbox.run_until(&home_b, &["peers"], "a caught-up connection", |text| {
        text.contains("Ana  127.0.0.1:")
            && text.contains("  direct  ")
            && text.contains("caught up")
    });
}

/// A pseudo-terminal: (master, slave). What the child writes to the slave
/// is read from the master, and what is written to the master is the
/// child's keyboard.
#[cfg(unix)]
fn pty() -> (std::fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two new file descriptors into the two ints;
    // the null pointers ask for no name and default settings.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are fresh and owned by nothing else.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    }
}

/// First run of `serve` on a terminal asks for the name others will see,
/// and publishes it; `import` on a terminal shows a progress line.
#[cfg(unix)]
#[test]
fn on_a_terminal_serve_asks_for_a_name_and_import_shows_progress() {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let sandbox = Sandbox::new();
    let home = sandbox.home("fresh");
    let (mut master, slave) = pty();
    let mut keyboard = master.try_clone().unwrap();
    let screen = thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        // Ends when the last holder of the slave side is gone (EIO).
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    keyboard.write_all(b"Bea\n").unwrap();
    let mut cmd = sandbox.command(
        &home,
        &["serve", "--no-discovery", "--listen", "127.0.0.1:0"],
    );
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    /// Kills the node when the test ends, even on a panic.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Killed(cmd.spawn().unwrap());
    // The child has its copies of the terminal; ours go with the command.
    drop(cmd);
    let mut stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert!(line.contains(" listening on "), "{line:?}");
    let me = sandbox.json(&home, &["whoami"]);
    assert_eq!(me["name"], "Bea", "{me}");
    drop(child);

    // import on a terminal: the progress line, then cleared.
    let bundle = sandbox.path("b.bundle");
    sandbox.json(&home, &["export", "--out", bundle.to_str().unwrap()]);
    let other = sandbox.home("other");
    let mut cmd = sandbox.command(&other, &["import", bundle.to_str().unwrap()]);
    cmd.stderr(Stdio::from(slave));
    let mut import = Killed(cmd.spawn().unwrap());
    drop(cmd);
    let out = common::sandbox::drain(import.0.stdout.take().unwrap());
    let status = common::sandbox::wait_with_deadline(&mut import.0).expect("import ends");
    let out = out.join().unwrap();
    assert!(status.success(), "{status:?}: {out}");
    assert!(out.starts_with("imported 1 new message"), "{out}");
    let seen = screen.join().unwrap();
    assert!(
        seen.contains("your name, as others will see it"),
        "{seen:?}"
    );
    assert!(seen.contains("importing: 100%, 1 message"), "{seen:?}");
    // The line is erased at the end: the last thing written.
    assert!(seen.ends_with("\r\u{1b}[K"), "{seen:?}");
}

#[test]
fn a_command_run_while_a_new_node_starts_publishes_without_a_false_fork() {
    // As a person following the README would: start `serve` on a fresh
    // home, and as soon as `whoami` answers, announce. The command must
    // never be told that its feed forked (it was, in 1 of 8 to 7 of 12
    // tries, when it took the half-made home for a lost store).
    let sandbox = Sandbox::new();
    for attempt in 0..6 {
        let home = sandbox.home(&format!("fresh-{attempt}"));
        let listen = format!("127.0.0.1:{}", free_tcp_port());
        let mut child = sandbox
            .command(
                &home,
                &["serve", "--no-discovery", "--no-web", "--listen", &listen],
            )
            .spawn()
            .expect("spawn potluck serve");
        let started = Instant::now();
        let mut answered = false;
        while started.elapsed() < DEADLINE {
            if sandbox.run(&home, &["whoami", "--json"]).status.success() {
                answered = true;
                break;
            }
            thread::sleep(std::time::Duration::from_millis(5));
        }
        let run = sandbox.run(
            &home,
            &[
                "announce",
                "--title",
                "Soup night",
                "--start",
                "2099-01-26 18:00",
                "--json",
            ],
        );
        let _ = child.kill();
        let _ = child.wait();
        assert!(answered, "whoami never answered");
        assert!(
            run.status.success(),
            "attempt {attempt}: announce failed while the node started: {run:?}"
        );
        assert!(!run.stderr.contains("recover"), "{run:?}");
    }
}

/// A bundle of a new feed of `count` messages, `content(n)` the content
/// of message `n`; returns the feed's id and the bundle's bytes.
fn someones_bundle(count: u64, content: impl Fn(u64) -> String) -> (String, Vec<u8>) {
    use potluck::feed::message::{Message, MessageId};
    let key = common::node::new_key();
    let mut previous = MessageId::default();
    let mut messages = Vec::new();
    for sequence in 1..=count {
        let msg = Message::sign(
            &key,
            sequence,
            previous,
            1_700_000_000_000,
            content(sequence).as_bytes(),
        )
        .unwrap();
        previous = msg.id();
        messages.push(msg);
    }
    let mut bytes = Vec::new();
    potluck::feed::bundle::write_bundle(&mut bytes, messages).unwrap();
    (common::node::feed_of(&key).to_string(), bytes)
}

/// Issue 19, defect 2: with a node running, `log` of a feed that prints
/// more than 4 MiB prints every line, as it does without a node (the
/// control socket's answer used to be cut at 4 MiB and fail).
#[test]
fn a_log_over_4_mib_comes_whole_through_a_running_node() {
    use potluck::feed::message::MAX_CONTENT_LEN;
    const MESSAGES: u64 = 300;
    let sandbox = Sandbox::new();
    let home = sandbox.home("a");
    sandbox.json(&home, &["init", "--name", "Ana"]);

    // Someone's feed of messages near the content limit, in a bundle.
    let pad = "x".repeat(MAX_CONTENT_LEN - 100);
    let (feed, bytes) = someones_bundle(MESSAGES, |n| {
        format!(r#"{{"type":"big","n":{n},"pad":"{pad}"}}"#)
    });
    let bundle = sandbox.path("big.bundle");
    std::fs::write(&bundle, bytes).unwrap();
    let report = sandbox.json(&home, &["import", bundle.to_str().unwrap()]);
    assert_eq!(report["new"], MESSAGES, "{report}");

    let check = |run: &common::sandbox::Run| {
        assert!(run.status.success(), "{:?}", run.stderr);
        assert!(run.stdout.len() > 4 * 1024 * 1024, "{}", run.stdout.len());
        let lines = run.json_lines();
        assert_eq!(lines.len() as u64, MESSAGES);
        for (line, sequence) in lines.iter().zip(1..) {
            assert_eq!(line["sequence"], sequence);
            assert_eq!(line["content"]["n"], sequence);
        }
    };
    let alone = sandbox.run(&home, &["log", &feed]);
    check(&alone);

    let mut node = sandbox
        .serve(&home, &["--listen", "127.0.0.1:0"])
        .unwrap_or_else(|e| panic!("{e}"));
    let through = sandbox.run(&home, &["log", &feed]);
    check(&through);
    assert_eq!(through.stdout, alone.stdout);
    assert_eq!(through.stderr, "");
    assert!(node.terminate().success(), "{}", node.stderr());
}

/// The one JSON document on stdout; fails on none, or on more than one.
fn one_document(run: &common::sandbox::Run) -> Value {
    let docs: Vec<Value> = serde_json::Deserializer::from_str(&run.stdout)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {run:?}"));
    assert_eq!(docs.len(), 1, "one document on stdout: {run:?}");
    docs.into_iter().next().unwrap_or_default()
}

/// Issue 19, defect 4: with `--json`, an `import` that fails after
/// importing the messages before a damaged one prints one document, the
/// error holding the report, with or without a node running (it used to
/// print the report, then the error).
#[test]
fn a_failing_import_prints_one_json_document_holding_its_report() {
    let sandbox = Sandbox::new();
    let home = sandbox.home("a");
    sandbox.json(&home, &["init", "--name", "Ana"]);
    // Three messages of someone's feed; the bundle is cut inside the last.
    let (_, bytes) = someones_bundle(3, |n| format!(r#"{{"type":"note","n":{n}}}"#));
    let bundle = sandbox.path("cut.bundle");
    std::fs::write(&bundle, &bytes[..bytes.len() - 40]).unwrap();
    let import = ["import", bundle.to_str().unwrap(), "--json"];

    let check = |run: &common::sandbox::Run, new, present| {
        let line = run.one_line_error();
        let doc = one_document(run);
        let error = &doc["error"];
        assert_eq!(doc.as_object().map(|o| o.len()), Some(1), "{doc}");
        assert_eq!(error["kind"], "invalid_file", "{doc}");
        assert_eq!(
            line,
            format!("error: {}", error["message"].as_str().unwrap())
        );
        let report = &error["report"];
        assert_eq!(
            (&report["new"], &report["present"]),
            (&new, &present),
            "{doc}"
        );
        assert!(report["problem"].as_str().is_some(), "{doc}");
    };
    check(&sandbox.run(&home, &import), 2.into(), 0.into());

    // The same through a running node.
    let mut node = sandbox
        .serve(&home, &["--listen", "127.0.0.1:0"])
        .unwrap_or_else(|e| panic!("{e}"));
    check(&sandbox.run(&home, &import), 0.into(), 2.into());
    // An error with no report is the plain error document, as before.
    let run = sandbox.run(&home, &["event", "%zzzzzzzz", "--json"]);
    let error = common::sandbox::json_error(&run, &["event"]);
    assert_eq!(error["kind"], "not_found", "{run:?}");
    assert!(node.terminate().success(), "{}", node.stderr());
}
