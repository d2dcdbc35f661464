//! Invites end to end: `potluck invite` on a serving node of a private
//! network, and `potluck join CODE` from a fresh home. Every test runs the
//! real binary in temporary homes, on 127.0.0.1 only.
//!
//! The environment of every child is cleaned (`POTLUCK_HOME`, `POTLUCK_LOG`
//! and friends removed; `HOME` and `XDG_DATA_HOME` inside the sandbox), every
//! wait is bounded, and a guard kills any `serve` process a failing test
//! leaves behind. Every `serve` runs with `--no-discovery`, and, in case
//! that flag were ever ignored, with its announcements aimed at loopback.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::sandbox::{Discovery, Sandbox, Server, announce, discovery_port};
use serde_json::Value;

/// A private network's key.
const NETWORK_KEY: &str = "5ec2e7c0ffee00112233445566778899aabbccddeeff00112233445566778899";

impl Sandbox {
    /// Starts `potluck serve --no-discovery --listen 127.0.0.1:0` and waits
    /// for its "listening on" line.
    fn serve(&self, home: &Path) -> Server {
        // Never the default broadcast target: should `--no-discovery` ever
        // be ignored, announcements still go to loopback only.
        self.serve_with(home, Discovery::Off(discovery_port()))
    }
}

/// The JSON inside an invite code.
fn decode_invite(code: &str) -> (String, Value) {
    let body = code
        .strip_prefix("potluck-invite:")
        .unwrap_or_else(|| panic!("an invite code: {code}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .unwrap_or_else(|e| panic!("base64url ({e}): {code}"));
    let text = String::from_utf8(bytes).expect("UTF-8 JSON");
    let doc = serde_json::from_str(&text).expect("JSON");
    (text, doc)
}

/// The secret seed of a home, as written in its key file (base64), and
/// the same bytes in other encodings someone might leak them in.
fn secret_encodings(home: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(home.join("secret")).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    let b64 = file["secret"].as_str().expect("a secret field").to_owned();
    let seed = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap();
    assert_eq!(seed.len(), 32);
    let b64_trim = b64.trim_end_matches('=').to_owned();
    vec![
        b64.clone(),
        // A long enough piece of it, in case of re-wrapping.
        b64_trim[..24].to_owned(),
        hex::encode(&seed),
        hex::encode_upper(&seed),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&seed),
    ]
}

/// Every file below `dir` (paths relative to it) with its bytes; the
/// sled store's files are listed but not read (their bytes may change
/// on open). Bounded.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        assert!(out.len() < 10_000, "too many files");
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(dir).unwrap().to_owned();
            if path.is_dir() {
                out.push((rel, None));
                todo.push(path);
            } else if rel.starts_with("store") {
                out.push((rel, None));
            } else {
                out.push((rel, Some(std::fs::read(&path).unwrap())));
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------

#[test]
fn join_with_an_invite_to_a_private_network() {
    let sandbox = Sandbox::new();
    let home_a = sandbox.home("a");
    let init = sandbox.json(
        &home_a,
        &["init", "--network-key", NETWORK_KEY, "--name", "Ana"],
    );
    let a_feed = init["id"].as_str().unwrap().to_owned();
    let mut a = sandbox.serve(&home_a);
    assert_eq!(a.feed, a_feed);
    let event = announce(&sandbox, &home_a, "Members' dinner");
    let a_addr = a.addr.to_string();

    // Forwarded to A's node.
    let invite = sandbox.json(&home_a, &["invite", "--addr", &a_addr]);
    let code = invite["code"].as_str().expect("a code").to_owned();
    assert_eq!(invite["addr"], a_addr.as_str());
    assert!(code.starts_with("potluck-invite:"), "{code}");
    assert!(!code.contains(char::is_whitespace), "one word: {code}");
    let (json_text, body) = decode_invite(&code);
    assert_eq!(body["feed"], a_feed.as_str(), "{body}");
    assert_eq!(body["addr"], a_addr.as_str(), "{body}");
    assert_eq!(body["network"], NETWORK_KEY, "{body}");
    // Never A's secret key, in any encoding.
    for secret in secret_encodings(&home_a) {
        assert!(!code.contains(&secret), "the code leaks the secret");
        assert!(!json_text.contains(&secret), "the code leaks the secret");
    }
    // The text form prints the same code alone.
    let text = sandbox.run(&home_a, &["invite", "--addr", &a_addr]);
    assert!(text.status.success(), "{text:?}");
    assert_eq!(text.stdout.trim(), code);

    // B: a home that does not exist yet.
    let home_b = sandbox.home("b");
    assert!(!home_b.exists());
    let joined = sandbox.json(&home_b, &["join", &code]);
    assert_eq!(joined["following"], a_feed.as_str(), "{joined}");
    assert_eq!(joined["peer"], format!("{a_feed}@{a_addr}"), "{joined}");
    assert!(joined["received"].as_u64().unwrap() >= 2, "{joined}");
    assert!(
        joined["sent"].as_u64().unwrap() >= 1,
        "B's follow: {joined}"
    );

    // B's config: the network key and the inviter, pinned.
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(home_b.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["network_key"], NETWORK_KEY, "{config}");
    let peers = config["peers"].as_array().expect("peers");
    assert_eq!(peers.len(), 1, "{config}");
    assert_eq!(peers[0], format!("{a_feed}@{a_addr}").as_str(), "{config}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home_b.join("config.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the network key is private: {mode:o}");
    }

    // B follows A.
    let b_feed = sandbox.json(&home_b, &["whoami"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(b_feed, a_feed);
    let b_log = sandbox.run(&home_b, &["log", "--json"]);
    assert!(b_log.status.success(), "{b_log:?}");
    let follows: Vec<Value> = b_log
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|m| m["content"]["type"] == "contact")
        .collect();
    assert_eq!(follows.len(), 1, "{b_log:?}");
    assert_eq!(follows[0]["content"]["contact"], a_feed.as_str());
    assert_eq!(follows[0]["content"]["following"], true);
    assert_eq!(follows[0]["content"]["blocking"], false);

    // B received A's messages.
    let events = sandbox.json(&home_b, &["events"]);
    assert!(
        events
            .as_array()
            .is_some_and(|l| l.iter().any(|e| e["id"] == event.as_str())),
        "{events}"
    );
    assert_eq!(events[0]["organizer_name"], "Ana");
    // The peer book remembers where A is, and that it came from an invite.
    let peers = sandbox.json(&home_b, &["peers"]);
    let book = peers["book"].as_array().unwrap();
    assert!(
        book.iter().any(|r| r["addr"] == a_addr.as_str()
            && r["feed"] == a_feed.as_str()
            && r["source"] == "invite"
            && r["last_success_ms"].is_i64()),
        "{peers}"
    );

    // A holds B's feed: B's follow of A.
    sandbox.run_until(
        &home_a,
        &["log", &b_feed, "--json"],
        "A to hold B's follow",
        |out| {
            out.lines().any(|l| {
                serde_json::from_str::<Value>(l).is_ok_and(|m| {
                    m["content"]["type"] == "contact" && m["content"]["contact"] == a_feed.as_str()
                })
            })
        },
    );

    // A second join with the same code is harmless: the inviter is not
    // listed twice.
    let again = sandbox.json(&home_b, &["join", &code]);
    assert_eq!(again["following"], a_feed.as_str(), "{again}");
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(home_b.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["peers"].as_array().unwrap().len(), 1, "{config}");

    let status = a.terminate();
    assert!(status.success(), "{status:?}: {}", a.stderr());
    let fsck = sandbox.json(&home_b, &["fsck"]);
    assert_eq!(fsck["ok"], true, "{fsck}");
}

#[test]
fn a_malformed_code_is_refused_and_creates_nothing() {
    let sandbox = Sandbox::new();
    // A real code, to cut short (no node needed to make one).
    let home_a = sandbox.home("a");
    sandbox.json(&home_a, &["init", "--network-key", NETWORK_KEY]);
    let code = sandbox.json(&home_a, &["invite", "--addr", "127.0.0.1:9"])["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let cut = code[..code.len() - 7].to_owned();
    let half = code[..code.len() / 2].to_owned();
    let bad = [
        "hello",
        cut.as_str(),
        half.as_str(),
        "potluck-invite:!!!",
        "potluck-invite:",
        "",
    ];

    // A home that does not exist stays absent.
    let fresh = sandbox.home("fresh");
    for code in bad {
        for json in [false, true] {
            let mut args = vec!["join", code];
            if json {
                args.push("--json");
            }
            let run = sandbox.run(&fresh, &args);
            let error = run.one_line_error();
            assert!(
                error.contains("invite code"),
                "the error says what is wrong: {run:?}"
            );
            if json {
                let error = common::sandbox::json_error(&run, &args);
                assert_eq!(error["kind"], "invalid_input", "{run:?}");
            } else {
                assert!(run.stdout.is_empty(), "{run:?}");
            }
            assert!(!fresh.exists(), "join {code:?} created {}", fresh.display());
        }
    }

    // An existing home is left exactly as it was.
    let home_b = sandbox.home("b");
    sandbox.json(&home_b, &["init", "--name", "Bea"]);
    let log_before = sandbox.run(&home_b, &["log", "--json"]).stdout;
    let before = snapshot(&home_b);
    for code in bad {
        let run = sandbox.run(&home_b, &["join", code]);
        run.one_line_error();
    }
    assert_eq!(snapshot(&home_b), before);
    assert!(!home_b.join("config.json").exists());
    assert_eq!(sandbox.run(&home_b, &["log", "--json"]).stdout, log_before);
}

#[test]
fn a_home_on_the_public_network_cannot_join_a_private_one() {
    let sandbox = Sandbox::new();
    let home_a = sandbox.home("a");
    sandbox.json(&home_a, &["init", "--network-key", NETWORK_KEY]);
    // The address is never dialed: the join stops before any network use.
    let code = sandbox.json(&home_a, &["invite", "--addr", "127.0.0.1:9"])["code"]
        .as_str()
        .unwrap()
        .to_owned();

    let home_b = sandbox.home("b");
    sandbox.json(&home_b, &["init", "--name", "Bea"]);
    let log_before = sandbox.run(&home_b, &["log", "--json"]).stdout;
    let before = snapshot(&home_b);
    let run = sandbox.run(&home_b, &["join", &code]);
    let error = run.one_line_error();
    assert!(error.contains("private network"), "{run:?}");
    assert!(error.contains("new home"), "it says what to do: {run:?}");
    assert_eq!(snapshot(&home_b), before, "nothing changes");
    assert_eq!(sandbox.run(&home_b, &["log", "--json"]).stdout, log_before);

    // The other way round: a public invite into a private home.
    let home_c = sandbox.home("c");
    sandbox.json(&home_c, &["init"]);
    let public = sandbox.json(&home_c, &["invite", "--addr", "127.0.0.1:9"])["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = decode_invite(&public);
    assert_eq!(body.get("network"), None, "{body}");
    let before = snapshot(&home_a);
    let run = sandbox.run(&home_a, &["join", &public]);
    let error = run.one_line_error();
    assert!(error.contains("public network"), "{run:?}");
    assert_eq!(snapshot(&home_a), before, "nothing changes");

    // Another private network is refused too.
    let home_d = sandbox.home("d");
    sandbox.json(&home_d, &["init", "--network-key", &"77".repeat(32)]);
    let run = sandbox.run(&home_d, &["join", &code]);
    let error = run.one_line_error();
    assert!(error.contains("private network"), "{run:?}");
}

/// The code carries the address the running node really listens on, not
/// what `config.json` says, and warns when that is loopback only.
#[test]
fn invite_during_serve_carries_the_port_the_node_listens_on() {
    let sandbox = Sandbox::new();
    let home = sandbox.home("a");
    sandbox.json(&home, &["init", "--name", "Ana"]);
    // Without a node: config.json's (default) port, and a note saying so.
    let offline = sandbox.run(&home, &["invite"]);
    assert!(offline.status.success(), "{offline:?}");
    let (_, body) = decode_invite(offline.stdout.trim());
    assert!(body["addr"].as_str().unwrap().ends_with(":7643"), "{body}");
    assert!(offline.stderr.contains("no node is running"), "{offline:?}");

    // `serve --listen 127.0.0.1:0`: the port the kernel picked is in no file.
    let server = sandbox.serve(&home);
    let port = server.addr.port();
    let doc = sandbox.json(&home, &["invite"]);
    let (_, body) = decode_invite(doc["code"].as_str().unwrap());
    assert_eq!(body["addr"], format!("127.0.0.1:{port}"), "{body}");
    assert_eq!(doc["addr"], format!("127.0.0.1:{port}"));
    assert_eq!(doc["node_running"], true);
    assert_eq!(doc["loopback_only"], true);
    // The text form: the code alone on stdout; the address and the
    // loopback warning for people on stderr.
    let text = sandbox.run(&home, &["invite"]);
    assert!(text.status.success(), "{text:?}");
    assert_eq!(text.stdout.trim(), doc["code"].as_str().unwrap());
    assert!(
        text.stderr
            .contains(&format!("the code names 127.0.0.1:{port}")),
        "{text:?}"
    );
    assert!(
        text.stderr.contains("works only on this computer"),
        "{text:?}"
    );
    assert!(!text.stderr.contains("no node is running"), "{text:?}");

    // A command line the node cannot read (a client of another version,
    // say) gets clap's whole message too, and the JSON document.
    let socket = server.control_socket();
    let answer =
        potluck::node::control::forward(&socket, &["rsvp".to_owned(), "--json".to_owned()])
            .expect("the node answers")
            .expect("a node runs");
    assert_eq!(answer.code, 2, "{answer:?}");
    assert!(
        answer.stderr.contains("<EVENT>") && answer.stderr.contains("Usage: potluck rsvp"),
        "{answer:?}"
    );
    let doc: Value = serde_json::from_str(&answer.stdout).expect("a JSON document");
    assert_eq!(doc["error"]["kind"], "usage", "{doc}");

    // Errors of commands the node carries out are documents too.
    let run = sandbox.run(&home, &["event", "%zzzzzzzz", "--json"]);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let error = common::sandbox::json_error(&run, &["event"]);
    assert_eq!(error["kind"], "not_found", "{run:?}");
    assert_eq!(
        run.stderr.trim_end(),
        format!("error: {}", error["message"].as_str().unwrap())
    );
}
