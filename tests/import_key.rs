//! `potluck init --import-key`: a guest's identity moves from the browser
//! into a node of their own, and the node goes on with the guest's feed
//! without forking it (issue 21, "Keeping the identity";
//! docs/browser-keys.md). Through the real binary, on 127.0.0.1 only.
//!
//! The guest's key file and recovery code are built here from the format
//! docs/browser-keys.md gives (what `feed.js` exports), not with the
//! crate's writers, so that a drift between the two is caught; the
//! guest's first three messages are signed with the crate's own functions
//! under that key, standing in for the ones the browser posted to a hub.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::node::{new_key, rsvp};
use common::sandbox::{Sandbox, Server, announce, assert_clean_failure, json_error};
use ed25519_dalek::SigningKey;
use potluck::content::{About, KnownContent, RsvpStatus};
use potluck::feed::bundle::write_bundle;
use potluck::feed::message::{FeedId, Message, MessageId};
use serde_json::{Value, json};

/// A running node (a hub with `hub`) that announced an event: its home,
/// its server, its address and the event's id.
fn organizer(sandbox: &Sandbox, hub: bool) -> (PathBuf, Server, String, String) {
    let home = sandbox.home("organizer");
    sandbox.json(&home, &["init", "--name", "Organizer"]);
    let server = sandbox.serve_loopback(&home, hub);
    let addr = server.addr.to_string();
    let event = announce(sandbox, &home, "Open forum");
    (home, server, addr, event)
}

/// An invite code of the running node at `home` (on a hub, a member
/// code).
fn invite(sandbox: &Sandbox, home: &Path, addr: &str) -> String {
    sandbox.json(home, &["invite", "--addr", addr])["code"]
        .as_str()
        .expect("an invite code")
        .to_owned()
}

/// The key file `feed.js` exports for `key`: the node's own format,
/// written as `JSON.stringify(…, null, 2)` writes it.
fn key_file(key: &SigningKey) -> String {
    key_file_of("ed25519", &B64.encode(key.to_bytes()), &feed_text(key))
}

/// A key file with these fields, as the page would write them.
fn key_file_of(curve: &str, secret: &str, id: &str) -> String {
    format!("{{\n  \"curve\": \"{curve}\",\n  \"secret\": \"{secret}\",\n  \"id\": \"{id}\"\n}}\n")
}

/// A feed id as the docs give it: `@` and the public key in standard
/// base64, then `.ed25519`.
fn feed_text(key: &SigningKey) -> String {
    format!("@{}.ed25519", B64.encode(key.verifying_key().to_bytes()))
}

/// The recovery code of docs/browser-keys.md: the seed and the first 3
/// bytes of BLAKE3("potluck-recovery-v1:" || seed), in RFC 4648 base32
/// without padding, in groups of 4 joined by `-`.
fn recovery_code(key: &SigningKey) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let seed = key.to_bytes();
    let check = blake3::hash(&[b"potluck-recovery-v1:".as_slice(), &seed].concat());
    let data = [seed.as_slice(), &check.as_bytes()[..3]].concat();
    let bits: Vec<bool> = data
        .iter()
        .flat_map(|byte| (0..8).rev().map(move |i| byte >> i & 1 == 1))
        .collect();
    let digits: Vec<char> = bits
        .chunks(5)
        .map(|chunk| {
            let value = chunk.iter().fold(0usize, |v, &b| v << 1 | usize::from(b));
            char::from(ALPHABET[value])
        })
        .collect();
    digits
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The guest's feed as the browser left it on the hub: a name and two
/// answers to `event`, signed under `key`.
fn guest_feed(key: &SigningKey, event: MessageId) -> Vec<Message> {
    let contents = [
        About {
            name: "Guest".into(),
            description: None,
        }
        .to_content_bytes(),
        rsvp(event, RsvpStatus::Going, 0, None).to_content_bytes(),
        rsvp(event, RsvpStatus::Maybe, 1, None).to_content_bytes(),
    ];
    let mut previous = MessageId::default();
    let mut feed = Vec::new();
    for (at, content) in contents.iter().enumerate() {
        let sequence = at as u64 + 1;
        let msg = Message::sign(key, sequence, previous, common::now_ms(), content).unwrap();
        previous = msg.id();
        feed.push(msg);
    }
    feed
}

/// A guest who answered `event` from the browser: the feed id, the three
/// messages the hub took, and the key file the page exported.
struct Guest {
    feed: String,
    messages: Vec<Message>,
    file: PathBuf,
}

impl Guest {
    fn new(sandbox: &Sandbox, event: &str) -> Guest {
        let key = new_key();
        let messages = guest_feed(&key, MessageId::parse(event).unwrap());
        Guest {
            feed: feed_text(&key),
            file: write(sandbox, "potluck-key.json", &key_file(&key)),
            messages,
        }
    }

    /// The id of the browser's last message, as `log` prints it.
    fn third(&self) -> Value {
        json!(self.messages[2].id().to_string())
    }
}

/// Imports `messages` into `home` (running or not) as a bundle.
fn import(sandbox: &Sandbox, home: &Path, messages: Vec<Message>) {
    let path = sandbox.path("guest.bundle");
    let mut file = std::fs::File::create(&path).unwrap();
    write_bundle(&mut file, messages).unwrap();
    let doc = sandbox.json(home, &["import", path.to_str().unwrap()]);
    assert_eq!(doc["new"], 3, "{doc}");
}

/// Writes `text` to the sandbox file `name`, as a browser's download
/// would (the ordinary mode: the file is only read).
fn write(sandbox: &Sandbox, name: &str, text: &str) -> PathBuf {
    let path = sandbox.path(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A fresh home of `name` whose identity is imported from `file`.
fn import_into(sandbox: &Sandbox, name: &str, file: &Path) -> (PathBuf, Value) {
    let home = sandbox.home(name);
    let doc = sandbox.json(&home, &["init", "--import-key", file.to_str().unwrap()]);
    (home, doc)
}

/// `home`'s log of `feed` (all of it), one document per message.
fn log(sandbox: &Sandbox, home: &Path, feed: &str) -> Vec<Value> {
    let run = sandbox.run(home, &["log", feed, "--json"]);
    assert!(run.status.success(), "{run:?}");
    run.json_lines()
}

/// Waits until `home` holds `feed` up to `len`; returns its log.
fn wait_for_log(sandbox: &Sandbox, home: &Path, feed: &str, len: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + common::DEADLINE;
    loop {
        let held = log(sandbox, home, feed);
        if held.len() >= len {
            return held;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never held {feed} up to #{len}: {held:?}",
            home.display()
        );
        std::thread::sleep(common::node::POLL);
    }
}

/// (1) The guest's three messages are on a node standing in for the hub.
/// The imported home fetches them (`recover`) before it publishes, so its
/// answer is message 4 on top of message 3, and the hub takes it: one
/// history, no fork.
#[test]
fn an_imported_key_goes_on_with_its_feed_after_recover() {
    let sandbox = Sandbox::new();
    let (hub, server, addr, event) = organizer(&sandbox, false);
    let guest = Guest::new(&sandbox, &event);
    let feed = guest.feed.clone();
    import(&sandbox, &hub, guest.messages.clone());
    let (home, doc) = import_into(&sandbox, "guest", &guest.file);
    assert_eq!(doc["id"], json!(feed), "{doc}");
    assert_eq!(doc["imported"], true, "{doc}");
    assert_eq!(doc["recovered"], false, "{doc}");
    // The key file the home keeps is its own, owner-only.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(home.join("secret"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(sandbox.json(&home, &["whoami"])["id"], json!(feed));

    let recovered = sandbox.json(&home, &["recover", &addr]);
    assert_eq!(recovered["recovered"], true, "{recovered}");
    assert_eq!(recovered["holds"], 3, "{recovered}");
    // The guest's name came back with the feed.
    assert_eq!(sandbox.json(&home, &["whoami"])["name"], "Guest");

    sandbox.json(&home, &["rsvp", &event, "no"]);
    let mine = log(&sandbox, &home, &feed);
    assert_eq!(mine.len(), 4, "{mine:?}");
    assert_eq!(mine[3]["sequence"], 4, "{mine:?}");
    assert_eq!(mine[3]["previous"], guest.third(), "{mine:?}");

    let synced = sandbox.json(&home, &["sync", &addr]);
    assert_eq!(synced["sent"], 1, "{synced}");
    let held = log(&sandbox, &hub, &feed);
    assert_eq!(held.len(), 4, "{held:?}");
    assert_eq!(held[3]["id"], mine[3]["id"], "{held:?}");
    let peers = sandbox.json(&hub, &["peers"]);
    assert_eq!(peers["forked"], json!([]), "{peers}");

    // `--from` fetches the feed within `init`; one that cannot leaves
    // the key imported and says so, with what was done as the report.
    let file = guest.file.to_str().unwrap();
    let again = sandbox.home("again");
    let doc = sandbox.json(&again, &["init", "--import-key", file, "--from", &addr]);
    assert_eq!(doc["recovered"], true, "{doc}");
    assert_eq!(doc["holds"], 4, "{doc}");
    assert_eq!(doc["from"], json!(addr), "{doc}");
    let nobody = format!("127.0.0.1:{}", common::free_tcp_port());
    let stranded = sandbox.home("stranded");
    let args = ["init", "--import-key", file, "--from", &nobody, "--json"];
    let run = sandbox.run(&stranded, &args);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let error = run.json()["error"].clone();
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("the key is imported as"), "{message}");
    assert!(message.contains("potluck recover HOST:PORT"), "{message}");
    assert_eq!(error["report"]["recovered"], false, "{error}");
    assert_eq!(sandbox.json(&stranded, &["whoami"])["id"], json!(feed));

    drop(server);
    let fsck = sandbox.json(&hub, &["fsck"]);
    assert_eq!(fsck["ok"], true, "{fsck}");
    assert_eq!(fsck["forked"], json!([]), "{fsck}");
}

/// A browser's key file says how far the browser signed (`published`):
/// a peer holding only the start of the feed does not let the home
/// publish (that would fork the feed at #3); the whole feed does.
#[test]
fn a_key_file_that_says_how_far_it_published_waits_for_all_of_it() {
    let sandbox = Sandbox::new();
    let (hub, _server, addr, event) = organizer(&sandbox, false);
    let key = new_key();
    let feed = feed_text(&key);
    let messages = guest_feed(&key, MessageId::parse(&event).unwrap());
    let text = key_file(&key).replace("\n}\n", ",\n  \"published\": 3\n}\n");
    let file = write(&sandbox, "potluck-key.json", &text);
    // The peer holds only the first two of the browser's three messages.
    let bundle = sandbox.path("start.bundle");
    write_bundle(
        &mut std::fs::File::create(&bundle).unwrap(),
        messages[..2].to_vec(),
    )
    .unwrap();
    sandbox.json(&hub, &["import", bundle.to_str().unwrap()]);
    let (home, _) = import_into(&sandbox, "guest", &file);
    let partial = sandbox.run(&home, &["recover", &addr]).one_line_error();
    assert!(
        partial.contains("holds #2 of it, and it was published at least up to #3"),
        "{partial}"
    );
    let line = sandbox.run(&home, &["rsvp", &event, "no"]).one_line_error();
    assert!(line.contains("published at least up to #3"), "{line}");
    assert_eq!(log(&sandbox, &home, &feed).len(), 2);

    // The rest reaches the peer; now the feed is back, and the next
    // answer goes on from #3.
    let rest = sandbox.path("rest.bundle");
    write_bundle(
        &mut std::fs::File::create(&rest).unwrap(),
        messages[2..].to_vec(),
    )
    .unwrap();
    sandbox.json(&hub, &["import", rest.to_str().unwrap()]);
    let whole = sandbox.json(&home, &["recover", &addr]);
    assert_eq!(whole["recovered"], true, "{whole}");
    sandbox.json(&home, &["rsvp", &event, "no"]);
    let mine = log(&sandbox, &home, &feed);
    assert_eq!(mine.len(), 4, "{mine:?}");
    assert_eq!(mine[3]["previous"], json!(messages[2].id().to_string()));
}

/// The guest joins a real hub with a member code before the hub holds
/// their feed (the command says the feed is not back), then the browser's
/// messages reach the hub, and `potluck serve`, connected to the hub,
/// fetches them: the next answer, handed to the running node, is message
/// 4 and reaches the hub at once.
#[test]
fn serve_with_a_hub_fetches_the_feed_and_then_answers() {
    let sandbox = Sandbox::new();
    let (hub, _hub_server, addr, event) = organizer(&sandbox, true);
    let code = invite(&sandbox, &hub, &addr);
    let guest = Guest::new(&sandbox, &event);
    let feed = guest.feed.clone();
    let (home, _) = import_into(&sandbox, "guest", &guest.file);
    let joined = sandbox.run(&home, &["hub", "add", &code]);
    assert!(joined.status.success(), "{joined:?}");
    assert!(
        joined.stderr.contains("your own feed is not back yet"),
        "{joined:?}"
    );

    import(&sandbox, &hub, guest.messages.clone());
    let _guest = sandbox.serve_loopback(&home, false);
    wait_for_log(&sandbox, &home, &feed, 3);
    sandbox.json(&home, &["rsvp", &event, "going"]);
    let mine = log(&sandbox, &home, &feed);
    assert_eq!(mine[3]["sequence"], 4, "{mine:?}");
    assert_eq!(mine[3]["previous"], guest.third(), "{mine:?}");
    let held = wait_for_log(&sandbox, &hub, &feed, 4);
    assert_eq!(held[3]["id"], mine[3]["id"], "{held:?}");
    let peers = sandbox.json(&hub, &["peers"]);
    assert_eq!(peers["forked"], json!([]), "{peers}");
}

/// (2) Until the feed is back, nothing is published: every command that
/// would publish is refused with one line that says why and what to run,
/// and `join` takes the invite but leaves the follow (a message) for
/// later.
#[test]
fn publishing_before_the_feed_is_back_is_refused_clearly() {
    let sandbox = Sandbox::new();
    // An organizer whose node does not hold the guest's feed.
    let (other, _server, addr, event) = organizer(&sandbox, false);
    let guest = Guest::new(&sandbox, &event);
    let feed = guest.feed.clone();
    let (home, _) = import_into(&sandbox, "guest", &guest.file);
    // An exchange publishes nothing: it brings the event, not the feed.
    sandbox.json(&home, &["sync", &addr]);
    for args in [
        vec!["rsvp", event.as_str(), "going"],
        vec!["name", "Guest"],
        vec!["announce", "--title", "Soup", "--start", common::START],
        vec!["follow", &feed_text(&new_key())],
    ] {
        let line = sandbox.run(&home, &args).one_line_error();
        for words in [
            "published at least up to #1",
            "holds only #0",
            "second history",
            "potluck recover HOST:PORT",
            "potluck hub add CODE",
            "potluck join CODE",
        ] {
            assert!(line.contains(words), "{args:?}: {line}");
        }
    }
    assert!(log(&sandbox, &home, &feed).is_empty());

    let joined = sandbox.run(&home, &["join", &invite(&sandbox, &other, &addr)]);
    assert!(joined.status.success(), "{joined:?}");
    assert!(joined.stderr.contains("is not followed yet"), "{joined:?}");
    assert!(
        joined.stderr.contains("your own feed is not back yet"),
        "{joined:?}"
    );
    assert!(log(&sandbox, &home, &feed).is_empty());
}

/// (3) A file that is no key of this feed is refused, naming what is
/// wrong, and nothing is written: no home is made. An existing identity
/// is never overwritten.
#[test]
fn bad_key_files_and_an_existing_identity_are_refused_and_nothing_is_written() {
    let sandbox = Sandbox::new();
    let key = new_key();
    let seed = B64.encode(key.to_bytes());
    let id = feed_text(&key);
    let cases = [
        (key_file_of("x25519", &seed, &id), "the curve is `x25519`"),
        (
            key_file_of("ed25519", "not*base64", &id),
            "the secret is not base64",
        ),
        (
            key_file_of("ed25519", &B64.encode(&key.to_bytes()[..16]), &id),
            "the secret is 16 bytes, not 32",
        ),
        (
            key_file_of("ed25519", &seed, &feed_text(&new_key())),
            "does not match the secret",
        ),
        ("{\"curve\": \"ed25519\"".to_owned(), "not a key file"),
        ("{}\n".repeat(3000), "far too large"),
    ];
    for (at, (text, expected)) in cases.iter().enumerate() {
        let file = write(&sandbox, &format!("bad-{at}.json"), text);
        let home = sandbox.home(&format!("bad-{at}"));
        let args = ["init", "--import-key", file.to_str().unwrap(), "--json"];
        let run = sandbox.run(&home, &args);
        assert_clean_failure(&run, &args);
        let error = json_error(&run, &args);
        assert_eq!(error["kind"], "invalid_file", "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
        assert!(message.contains("nothing was written"), "{message}");
        assert!(!home.exists(), "{message}: the home was made");
    }

    // --name would publish before the feed is back.
    let file = write(&sandbox, "potluck-key.json", &key_file(&key));
    let home = sandbox.home("named");
    let line = sandbox
        .run(
            &home,
            &[
                "init",
                "--import-key",
                file.to_str().unwrap(),
                "--name",
                "Guest",
            ],
        )
        .one_line_error();
    assert!(
        line.contains("--name cannot go with --import-key"),
        "{line}"
    );
    assert!(!home.exists());

    // An identity already there stays as it was.
    let home = sandbox.home("taken");
    sandbox.json(&home, &["init", "--name", "Ana"]);
    let before = std::fs::read(home.join("secret")).unwrap();
    let args = ["init", "--import-key", file.to_str().unwrap(), "--json"];
    let run = sandbox.run(&home, &args);
    assert_clean_failure(&run, &args);
    let error = json_error(&run, &args);
    assert_eq!(error["kind"], "exists", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("refusing to overwrite it"),
        "{error}"
    );
    assert_eq!(std::fs::read(home.join("secret")).unwrap(), before);
    assert_eq!(sandbox.json(&home, &["whoami"])["name"], "Ana");
}

/// (4) The recovery code, as the page shows it, makes the same identity,
/// from a file or from standard input, whatever its case and spacing; a
/// code with one character wrong is refused as a typo, nothing written.
#[test]
fn a_recovery_code_round_trips_and_a_typo_is_refused() {
    let sandbox = Sandbox::new();
    let key = new_key();
    let feed = FeedId(key.verifying_key().to_bytes()).to_string();
    let code = recovery_code(&key);
    assert_eq!(code.len(), 56 + 13, "{code}");

    let file = write(&sandbox, "code.txt", &format!("{code}\n"));
    let (_, doc) = import_into(&sandbox, "from-file", &file);
    assert_eq!(doc["id"], json!(feed), "{doc}");

    let home = sandbox.home("from-stdin");
    let mut cmd = sandbox.command(&home, &["init", "--import-key", "-", "--json"]);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let typed = code.to_lowercase().replace('-', " ");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(typed.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["id"], json!(feed), "{doc}");
    assert_eq!(
        std::fs::read_to_string(home.join("secret")).unwrap(),
        key_file(&key),
        "the home's key file is the one the page exports"
    );

    let mut typo = code.clone().into_bytes();
    typo[5] = if typo[5] == b'Q' { b'R' } else { b'Q' };
    let file = write(&sandbox, "typo.txt", &String::from_utf8(typo).unwrap());
    let home = sandbox.home("typo");
    let line = sandbox
        .run(&home, &["init", "--import-key", file.to_str().unwrap()])
        .one_line_error();
    assert!(line.contains("typo"), "{line}");
    assert!(line.contains("nothing was written"), "{line}");
    assert!(!home.exists());
}
