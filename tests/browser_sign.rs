//! The browser feed library (`src/web/assets/feed.js`, docs/browser-keys.md)
//! in headless Chromium, checked against this crate.
//!
//! - Format: BLAKE3 on the official test inputs against the `blake3`
//!   crate; every message vector of `tests/vectors/messages.json` encoded
//!   and signed by the script (WebCrypto Ed25519, the vector's seed
//!   imported as PKCS #8) byte for byte; `about` and `rsvp` content
//!   against what this crate writes for the same values, and the values
//!   both refuse.
//! - A guest's feed: a fresh key made in the browser signs a name and two
//!   answers; this crate validates them as a chain, parses their content,
//!   and a node imports them and shows the answer. After a reload the feed
//!   goes on from IndexedDB (sequence 4). The exported key file gives the
//!   same feed id to `ed25519_dalek` and to `potluck whoami`, and so does
//!   the recovery code.
//!
//! The library is served by a real `potluck serve` on 127.0.0.1 (WebCrypto
//! needs a secure context; http on loopback is one) and loaded into its
//! page as a `<script src>` would. Needs Chromium, or
//! `POTLUCK_SKIP_BROWSER=1` to skip (see `common/chrome.rs`). Every wait is
//! bounded: ChromeDriver's script and page-load timeouts are set to
//! [`WAIT`], and every `potluck` run to the sandbox's deadline.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::chrome::{Driver, WAIT, browser, start_driver, tools_present};
use common::sandbox::{Sandbox, Server, announce};
use common::vectors::valid_vectors;
use ed25519_dalek::SigningKey;
use fantoccini::Client;
use fantoccini::wd::TimeoutConfiguration;
use potluck::content::{About, Content, KnownContent, Rsvp, RsvpStatus};
use potluck::feed::bundle::write_bundle;
use potluck::feed::message::{FeedId, Message, MessageId};
use potluck::feed::validate::{FeedHead, validate};
use serde_json::{Value, json};

/// The input lengths of the official BLAKE3 `test_vectors.json`.
const BLAKE3_LENGTHS: [usize; 22] = [
    0, 1, 1023, 1024, 1025, 2048, 2049, 3072, 3073, 4096, 4097, 5120, 5121, 6144, 6145, 7168, 7169,
    8192, 8193, 16384, 31744, 102400,
];

/// The official BLAKE3 test input: the bytes 0, 1, …, 250 repeating.
fn blake3_input(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Loads the library into the open page as a `<script src>` element (the
/// page's CSP allows this server's own scripts, not inline ones); true
/// once `potluckFeed` is defined. ChromeDriver runs a script as the body
/// of an async function and waits for it.
const LOAD: &str = r#"
if (!window.potluckFeed) {
  const script = document.createElement('script');
  script.src = '/static/feed.js';
  await new Promise((resolve, reject) => {
    script.onload = resolve;
    script.onerror = () => reject(new Error('/static/feed.js did not load'));
    document.head.append(script);
  });
}
return typeof window.potluckFeed === 'object';
"#;

/// Hex in and out of the scripts below, so that bytes cross WebDriver as
/// text the test can compare.
const HEX: &str = r#"
const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const unhex = (h) => Uint8Array.from(h.match(/../g) || [], (x) => parseInt(x, 16));
"#;

/// Runs `script` (with [`HEX`] in front) in the page; its value, or a
/// panic with the browser's error.
async fn js(client: &Client, script: &str, args: Vec<Value>) -> Value {
    client
        .execute(&format!("{HEX}\n{script}"), args)
        .await
        .unwrap_or_else(|e| panic!("in Chromium: {e}\nscript:{script}"))
}

/// A node that serves the page (and so the library) on 127.0.0.1, and a
/// browser with the library loaded into that page. Dropped in this order:
/// the browser's driver, the node, then their directories.
struct Setup {
    client: Client,
    _driver: Driver,
    _server: Server,
    _profile: tempfile::TempDir,
    home: PathBuf,
    sandbox: Sandbox,
}

async fn setup() -> Setup {
    let sandbox = Sandbox::new();
    let home = sandbox.home("host");
    sandbox.json(&home, &["init", "--name", "Host"]);
    let server = sandbox
        .spawn_serve(&home, &["--listen", "127.0.0.1:0", "--no-discovery"])
        .unwrap_or_else(|e| panic!("{e}"));
    let driver = start_driver();
    let profile = tempfile::tempdir().expect("a browser profile directory");
    let client = browser(&driver, profile.path()).await;
    // Every script and page load bounded.
    client
        .update_timeouts(TimeoutConfiguration::new(Some(WAIT), Some(WAIT), None))
        .await
        .expect("set the browser's timeouts");
    let page = server.page.clone().expect("the node serves its page");
    client.goto(&page).await.expect("open the node's page");
    load_library(&client).await;
    Setup {
        client,
        _driver: driver,
        _server: server,
        _profile: profile,
        home,
        sandbox,
    }
}

async fn load_library(client: &Client) {
    assert_eq!(js(client, LOAD, vec![]).await, json!(true));
}

fn unbase64(value: &Value) -> Vec<u8> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is no text"));
    B64.decode(text)
        .unwrap_or_else(|e| panic!("{text:.40} is not base64: {e}"))
}

// ---------------------------------------------------------------------------
// The format.

/// Every BLAKE3 input length in one call; the hashes in hex, in order.
const BLAKE3_SCRIPT: &str = r#"
return arguments[0].map((len) => {
  const input = new Uint8Array(len).map((_, i) => i % 251);
  return hex(potluckFeed.blake3(input));
});
"#;

/// Every message vector: the seed imported into WebCrypto, the message
/// encoded and signed by the library.
const VECTORS_SCRIPT: &str = r#"
const out = [];
for (const v of arguments[0]) {
  const key = await potluckFeed.keyFromSeed(unhex(v.seed_hex));
  const m = await potluckFeed.signMessage(key, {
    sequence: v.sequence,
    previous: v.previous === null ? null : unhex(v.previous),
    timestamp: v.timestamp,
    content: v.content,
  });
  out.push({
    header: hex(m.header),
    signing_input: hex(potluckFeed.signingInput(m.header)),
    signature: hex(m.signature),
    message: hex(v.content_dropped ? m.bytes.subarray(0, 181) : m.bytes),
    id: m.idText,
    id_again: potluckFeed.messageIdText(potluckFeed.messageId(m.header, m.signature)),
    author: potluckFeed.feedIdText(key.author),
  });
}
return out;
"#;

/// Content built by the library, in base64; a refusal as {error}.
const CONTENT_SCRIPT: &str = r#"
return arguments[0].map(([kind, args]) => {
  try {
    const bytes = kind === 'about' ? potluckFeed.about(args.name, args.description) : potluckFeed.rsvp(args);
    return { bytes: potluckFeed.base64(bytes) };
  } catch (e) {
    return { error: String(e.message || e) };
  }
});
"#;

/// One content case: the library's call and this crate's value.
enum Case {
    About(About),
    Rsvp(Rsvp),
}

impl Case {
    fn js_args(&self) -> Value {
        match self {
            Case::About(a) => json!(["about", { "name": a.name, "description": a.description }]),
            Case::Rsvp(r) => json!(["rsvp", {
                "event": r.event.to_string(),
                "status": r.status.as_str(),
                "guests": r.guests,
                "note": r.note,
                "revision": r.revision,
            }]),
        }
    }

    /// What this crate publishes for the value, or why it refuses it.
    fn rust_bytes(&self) -> Result<Vec<u8>, String> {
        let (checked, bytes) = match self {
            Case::About(a) => (a.validate(), a.to_content_bytes()),
            Case::Rsvp(r) => (r.validate(), r.to_content_bytes()),
        };
        checked.map(|()| bytes).map_err(|e| e.to_string())
    }
}

fn about(name: &str, description: Option<&str>) -> Case {
    Case::About(About {
        name: name.into(),
        description: description.map(Into::into),
    })
}

fn rsvp(
    event: MessageId,
    status: RsvpStatus,
    guests: u32,
    note: Option<&str>,
    revision: Option<u32>,
) -> Case {
    Case::Rsvp(Rsvp {
        event,
        status,
        guests,
        note: note.map(Into::into),
        revision,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_hashes_encodes_and_signs_exactly_as_the_node_does() {
    if !tools_present() {
        return;
    }
    let Setup { client, .. } = &setup().await;
    assert_eq!(
        js(client, "return await potluckFeed.supported();", vec![]).await,
        json!(true),
        "Chromium on http://127.0.0.1 has Ed25519 in WebCrypto"
    );

    // BLAKE3: the official inputs, against the reference crate.
    let hashes = js(client, BLAKE3_SCRIPT, vec![json!(BLAKE3_LENGTHS)]).await;
    let hashes = hashes.as_array().expect("a list of hashes");
    assert_eq!(hashes.len(), BLAKE3_LENGTHS.len());
    for (len, got) in BLAKE3_LENGTHS.iter().zip(hashes) {
        let want = blake3::hash(&blake3_input(*len)).to_hex().to_string();
        assert_eq!(got, &json!(want), "BLAKE3 of the {len}-byte test input");
    }

    // The protocol's vectors, byte for byte.
    let vectors = valid_vectors();
    let inputs: Vec<Value> = vectors
        .iter()
        .map(|v| {
            json!({
                "seed_hex": v.seed_hex,
                "sequence": v.sequence,
                "previous": v.previous,
                "timestamp": v.timestamp,
                "content": v.content,
                "content_dropped": v.content_dropped,
            })
        })
        .collect();
    let signed = js(client, VECTORS_SCRIPT, vec![json!(inputs)]).await;
    let signed = signed.as_array().expect("a list of signed vectors");
    assert_eq!(signed.len(), vectors.len());
    for (v, got) in vectors.iter().zip(signed) {
        let name = &v.name;
        assert_eq!(got["header"], json!(v.header_hex), "{name}: header");
        let input = format!("{}{}", hex::encode("potluck-message-v1:"), v.header_hex);
        assert_eq!(got["signing_input"], json!(input), "{name}: signing input");
        assert_eq!(
            got["signature"],
            json!(v.signature_hex),
            "{name}: signature"
        );
        assert_eq!(
            got["message"],
            json!(v.message_hex),
            "{name}: message bytes"
        );
        assert_eq!(got["id"], json!(v.id), "{name}: id");
        assert_eq!(got["id_again"], json!(v.id), "{name}: id from its parts");
        assert_eq!(got["author"], json!(v.author), "{name}: feed id");
    }

    // Content: the library's bytes are this crate's, byte for byte, and
    // what one refuses the other refuses.
    let event = MessageId(*blake3::hash(b"an event").as_bytes());
    let cases = [
        about("Ana", None),
        about(
            "Ana \"Souza\" \\ o/ \u{1}\u{8}\t\n\r\u{c}\u{1f}\u{7f} Café 🍲 \u{2028}\u{85}",
            Some("Organizes the Elm Street potlucks.\nBring a bowl."),
        ),
        about("  Bea  ", Some("")),
        about(&"é".repeat(100), Some(&"🍲".repeat(1000))),
        rsvp(
            event,
            RsvpStatus::Going,
            2,
            Some("Bringing lentil soup 🍲"),
            Some(3),
        ),
        rsvp(event, RsvpStatus::NotGoing, 0, None, None),
        rsvp(
            event,
            RsvpStatus::Maybe,
            20,
            Some(&"n".repeat(500)),
            Some(u32::MAX),
        ),
        // Refused by both.
        about("", None),
        about(" \t\n\u{a0}\u{3000}\u{85}", None),
        about(&"é".repeat(101), None),
        about("Ana", Some(&"x".repeat(1001))),
        rsvp(event, RsvpStatus::Going, 21, None, None),
        rsvp(event, RsvpStatus::Going, 0, Some(&"n".repeat(501)), None),
    ];
    let args: Vec<Value> = cases.iter().map(Case::js_args).collect();
    let built = js(client, CONTENT_SCRIPT, vec![json!(args)]).await;
    let built = built.as_array().expect("a list of contents");
    assert_eq!(built.len(), cases.len());
    for (case, got) in cases.iter().zip(built) {
        match case.rust_bytes() {
            Ok(want) => {
                let bytes = unbase64(&got["bytes"]);
                assert_eq!(
                    String::from_utf8_lossy(&bytes),
                    String::from_utf8_lossy(&want),
                    "{got}"
                );
                assert_eq!(bytes, want);
                potluck::content::parse(&bytes).expect("the library's content parses");
            }
            Err(why) => assert!(
                got["error"].is_string(),
                "this crate refuses {} ({why}), the library built it: {got}",
                case.js_args()
            ),
        }
    }

    // What only the library is given: values no Rust type can hold.
    let refused = js(
        client,
        r#"
const event = arguments[0];
const calls = [
  () => potluckFeed.about('\ud83c'),
  () => potluckFeed.about('Ana', 'x\udc00'),
  () => potluckFeed.rsvp({ event, status: 'going', note: '\ud800\u0041' }),
  () => potluckFeed.rsvp({ event, status: 'Going' }),
  () => potluckFeed.rsvp({ event, status: 'going', guests: 1.5 }),
  () => potluckFeed.rsvp({ event, status: 'going', guests: -1 }),
  () => potluckFeed.rsvp({ event, status: 'going', revision: 4294967296 }),
  () => potluckFeed.rsvp({ event: event.replace('=.blake3', '.blake3'), status: 'going' }),
  () => potluckFeed.rsvp({ event: event.replace('%', '@'), status: 'going' }),
  () => potluckFeed.rsvp({ status: 'going' }),
  () => potluckFeed.publish(new TextEncoder().encode('{"name":"no type"}')),
  () => potluckFeed.publish(new TextEncoder().encode('not json')),
];
const out = [];
for (const call of calls) {
  try { await call(); out.push(null); } catch (e) { out.push(String(e.message || e)); }
}
return out;
"#,
        vec![json!(event.to_string())],
    )
    .await;
    for (i, why) in refused.as_array().expect("a list").iter().enumerate() {
        assert!(why.is_string(), "call {i} was not refused: {refused}");
    }

    let _ = client.clone().close().await;
}

// ---------------------------------------------------------------------------
// A guest's feed.

/// Signs the name and two answers to `arguments[0]` as this browser's
/// feed; returns the feed before and the three messages.
const ANSWER_SCRIPT: &str = r#"
const event = arguments[0];
const before = await potluckFeed.identity();
const published = [];
for (const content of [
  potluckFeed.about('Gil'),
  potluckFeed.rsvp({ event, status: 'going', guests: 2, note: 'Bringing bread', revision: 0 }),
  potluckFeed.rsvp({ event, status: 'not-going', revision: 0 }),
]) {
  const m = await potluckFeed.publish(content);
  published.push({ sequence: m.sequence, id: m.id, bytes: potluckFeed.base64(m.bytes) });
}
return { before, published, after: await potluckFeed.identity() };
"#;

const STORED_SCRIPT: &str = r#"
return (await potluckFeed.messages(arguments[0])).map((m) => ({
  sequence: m.sequence, id: m.id, bytes: potluckFeed.base64(m.bytes),
}));
"#;

/// Decodes messages the browser signed and validates them in order on
/// `head`; the new head. Checks the ids the library gave.
fn validate_chain(published: &Value, feed: &FeedId, mut head: Option<FeedHead>) -> Vec<Message> {
    let mut messages = Vec::new();
    for m in published.as_array().expect("a list of messages") {
        let msg = Message::decode(unbase64(&m["bytes"])).expect("a whole message");
        validate(head.as_ref(), &msg)
            .unwrap_or_else(|e| panic!("the node's validator refuses {m}: {e}"));
        assert_eq!(msg.author(), *feed, "{m}");
        assert_eq!(json!(msg.sequence()), m["sequence"], "{m}");
        assert_eq!(json!(msg.id().to_string()), m["id"], "{m}");
        head = Some(FeedHead {
            sequence: msg.sequence(),
            id: msg.id(),
        });
        messages.push(msg);
    }
    messages
}

fn content_of(msg: &Message) -> Content {
    potluck::content::parse(msg.content().expect("content present")).expect("known content")
}

/// Imports `messages` into the node as a bundle file; how many were new.
fn import(sandbox: &Sandbox, home: &Path, name: &str, messages: Vec<Message>) -> Value {
    let path = sandbox.path(name);
    let mut file = std::fs::File::create(&path).expect("create the bundle");
    write_bundle(&mut file, messages).expect("write the bundle");
    let path = path.to_str().expect("a UTF-8 path");
    sandbox.json(home, &["import", path])["new"].clone()
}

/// The answer of `feed` on the node's view of `event`.
fn answer_of(sandbox: &Sandbox, home: &Path, event: &str, feed: &FeedId) -> Value {
    let doc = sandbox.json(home, &["event", event]);
    let rsvps = doc["rsvps"].as_array().expect("the event's answers");
    rsvps
        .iter()
        .find(|r| r["author"] == json!(feed.to_string()))
        .cloned()
        .unwrap_or_else(|| panic!("no answer from {feed}: {doc}"))
}

/// Reads RFC 4648 base32 (upper case, no padding), independently of the
/// library.
fn base32(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in text.bytes() {
        let digit = ALPHABET
            .iter()
            .position(|&a| a == c)
            .unwrap_or_else(|| panic!("{:?} is not base32", c as char));
        acc = ((acc << 5) | digit as u32) & 0xfff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_signs_a_chained_feed_that_a_node_accepts_and_it_survives_a_reload() {
    if !tools_present() {
        return;
    }
    let Setup {
        client,
        sandbox,
        home,
        ..
    } = &setup().await;
    // Through the running node (its control socket).
    let event = announce(sandbox, home, "Soup night");

    // A fresh key, then a name and two answers, chained.
    let answered = js(client, ANSWER_SCRIPT, vec![json!(event)]).await;
    let before = &answered["before"];
    assert_eq!(before["sequence"], json!(0), "{answered}");
    assert_eq!(before["previous"], Value::Null, "{answered}");
    let feed = FeedId::parse(before["feed"].as_str().expect("a feed id")).expect("a feed id");
    let messages = validate_chain(&answered["published"], &feed, None);
    assert_eq!(messages.len(), 3);
    let third = messages[2].id();
    assert_eq!(
        answered["after"],
        json!({ "feed": feed.to_string(), "sequence": 3, "previous": third.to_string() })
    );
    let event_id = MessageId::parse(&event).expect("an event id");
    match content_of(&messages[0]) {
        Content::About(a) => assert_eq!((a.name.as_str(), a.description), ("Gil", None)),
        other => panic!("not an about: {other:?}"),
    }
    match content_of(&messages[1]) {
        Content::Rsvp(r) => {
            assert_eq!(
                (r.event, r.status, r.guests),
                (event_id, RsvpStatus::Going, 2)
            );
            assert_eq!(
                (r.note.as_deref(), r.revision),
                (Some("Bringing bread"), Some(0))
            );
        }
        other => panic!("not an rsvp: {other:?}"),
    }
    match content_of(&messages[2]) {
        Content::Rsvp(r) => assert_eq!((r.status, r.guests), (RsvpStatus::NotGoing, 0)),
        other => panic!("not an rsvp: {other:?}"),
    }
    // The browser keeps what it published, to send again.
    let stored = js(client, STORED_SCRIPT, vec![json!(0)]).await;
    assert_eq!(stored, answered["published"]);
    let later = js(client, STORED_SCRIPT, vec![json!(2)]).await;
    assert_eq!(later, json!([answered["published"][2]]));

    // The node takes them in and shows the guest's name and latest answer.
    assert_eq!(import(sandbox, home, "first.bundle", messages), json!(3));
    let answer = answer_of(sandbox, home, &event, &feed);
    assert_eq!(answer["name"], json!("Gil"), "{answer}");
    assert_eq!(answer["status"], json!("not-going"), "{answer}");

    // After a reload, the feed goes on from IndexedDB.
    client.refresh().await.expect("reload the page");
    load_library(client).await;
    let again = js(
        client,
        r#"
const before = await potluckFeed.identity();
const m = await potluckFeed.publish(potluckFeed.rsvp({ event: arguments[0], status: 'maybe', guests: 1 }));
return { before, published: [{ sequence: m.sequence, id: m.id, bytes: potluckFeed.base64(m.bytes) }] };
"#,
        vec![json!(event)],
    )
    .await;
    assert_eq!(
        again["before"],
        json!({ "feed": feed.to_string(), "sequence": 3, "previous": third.to_string() })
    );
    let head = FeedHead {
        sequence: 3,
        id: third,
    };
    let fourth = validate_chain(&again["published"], &feed, Some(head));
    assert_eq!(fourth[0].sequence(), 4);
    assert_eq!(import(sandbox, home, "second.bundle", fourth), json!(1));
    let answer = answer_of(sandbox, home, &event, &feed);
    assert_eq!(answer["status"], json!("maybe"), "{answer}");
    assert_eq!(answer["guests"], json!(1), "{answer}");

    // The key file: the seed is this feed's key, and a node reads it.
    let exported = js(
        client,
        r#"
const code = await potluckFeed.recoveryCode();
const typo = code[0] === 'A' ? 'B' + code.slice(1) : 'A' + code.slice(1);
let typoRefused = false;
try { potluckFeed.seedFromRecoveryCode(typo); } catch (e) { typoRefused = true; }
return {
  file: await potluckFeed.exportKeyFile(),
  code,
  fromCode: await potluckFeed.keyFileFromRecoveryCode(code.toLowerCase().replace(/-/g, ' ')),
  typoRefused,
};
"#,
        vec![],
    )
    .await;
    let text = exported["file"].as_str().expect("a key file");
    let file: Value = serde_json::from_str(text).expect("the key file is JSON");
    assert_eq!(file["curve"], json!("ed25519"), "{text}");
    assert_eq!(file["id"], json!(feed.to_string()), "{text}");
    assert_eq!(
        file["published"],
        json!(4),
        "the key file says how far this browser signed: {text}"
    );
    let seed: [u8; 32] = unbase64(&file["secret"])
        .try_into()
        .expect("a 32-byte seed");
    let key = SigningKey::from_bytes(&seed);
    assert_eq!(
        key.verifying_key().to_bytes(),
        feed.0,
        "the seed is the feed's key"
    );
    let restored = sandbox.home("restored");
    std::fs::create_dir_all(&restored).expect("make a home");
    write_secret(&restored.join("secret"), text);
    assert_eq!(
        sandbox.json(&restored, &["whoami"])["id"],
        json!(feed.to_string()),
        "potluck reads the exported key file"
    );

    // The recovery code: 14 groups of 4, the seed and its check.
    let code = exported["code"].as_str().expect("a recovery code");
    let groups: Vec<&str> = code.split('-').collect();
    assert_eq!(groups.len(), 14, "{code}");
    assert!(groups.iter().all(|g| g.len() == 4), "{code}");
    let data = base32(&groups.concat());
    assert_eq!(data.len(), 35, "{code}");
    assert_eq!(data[..32], seed, "the code holds the seed");
    let check = blake3::hash(&[b"potluck-recovery-v1:".as_slice(), &seed].concat());
    assert_eq!(data[32..], check.as_bytes()[..3], "the code's check");
    // The code gives the key file, except how far the browser signed,
    // which a code cannot say.
    let mut without_published = file.clone();
    without_published
        .as_object_mut()
        .expect("a JSON object")
        .remove("published");
    let from_code: Value = serde_json::from_str(
        exported["fromCode"]
            .as_str()
            .expect("a key file from the code"),
    )
    .expect("JSON");
    assert_eq!(from_code, without_published, "the code gives the key file");
    assert_eq!(exported["typoRefused"], json!(true), "a typo is caught");

    let _ = client.clone().close().await;
}

/// Writes a key file as `potluck` requires it: readable by its owner only.
fn write_secret(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("create the key file");
    file.write_all(text.as_bytes()).expect("write the key file");
}
