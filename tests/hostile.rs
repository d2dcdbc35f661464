//! Issue 14: what strangers, faulty peers and damaged disks must not be
//! able to do to a node, tried end to end with the real binary. Each test
//! names the defect of the issue it covers; docs/security.md lists them.
//!
//! Every run of the binary is bounded by [`common::DEADLINE`] (the sandbox
//! kills and fails a command that takes longer), so a node that hangs
//! fails the test instead of stalling it.

mod common;

use std::path::Path;

use common::sandbox::{Sandbox, Server};

/// The byte offsets (in `messages.log`) of every record's message bytes,
/// in log order. Records are a 4-byte big-endian length and the message.
fn log_records(log: &[u8]) -> Vec<(usize, usize)> {
    let mut records = Vec::new();
    let mut at = 0;
    while at + 4 <= log.len() {
        let len = u32::from_be_bytes(log[at..at + 4].try_into().unwrap()) as usize;
        assert!(at + 4 + len <= log.len(), "a record runs past the log");
        records.push((at + 4, len));
        at += 4 + len;
    }
    assert_eq!(at, log.len(), "the log is whole records");
    records
}

/// Flips bit `mask` of byte `offset` (within the message bytes) of record
/// `index` of the store's message log, as a damaged disk would.
fn flip_in_record(home: &Path, index: usize, offset: usize, mask: u8) {
    let path = home.join("store").join("messages.log");
    let mut log = std::fs::read(&path).unwrap();
    let (start, len) = log_records(&log)[index];
    assert!(offset < len);
    log[start + offset] ^= mask;
    std::fs::write(&path, log).unwrap();
}

/// A home of deterministic fixtures: 10 feeds, 600 messages.
fn fixture_home(sandbox: &Sandbox, name: &str) -> std::path::PathBuf {
    let home = sandbox.home(name);
    let run = sandbox.run(
        &sandbox.home("unused"),
        &[
            "fixtures",
            "--out",
            home.to_str().unwrap(),
            "--feeds",
            "10",
            "--messages",
            "600",
            "--seed",
            "3",
        ],
    );
    assert!(run.status.success(), "{run:?}");
    home
}

fn serve(sandbox: &Sandbox, home: &Path) -> Server {
    sandbox
        .spawn_serve(home, &["--listen", "127.0.0.1:0", "--no-discovery"])
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A hostile node, written by hand from the library's sans-io parts: it
/// accepts one connection on 127.0.0.1, completes the handshake, offers a
/// feed of `msgs` and sends them (whatever they hold), then pings every
/// half second until the other side hangs up, so that only what it sent
/// can end the session. Returns its address and its thread, which ends
/// when the peer hangs up or after [`common::DEADLINE`].
fn hostile_server(
    msgs: Vec<potluck::feed::message::Message>,
) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    use potluck::proto::frame::{FrameDecoder, encode_frame};
    use potluck::proto::handshake::{DEFAULT_NETWORK_KEY, Handshake};
    use potluck::proto::replicate::sim::opening;
    use potluck::proto::replicate::{Clock, Policy};
    use potluck::proto::wire::Packet;
    use std::io::{Read, Write};

    use common::raw::{read_frame, send};

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(common::DEADLINE)).unwrap();
        let mut hs = Handshake::responder(&key, &DEFAULT_NETWORK_KEY).unwrap();
        let mut decoder = FrameDecoder::new();
        while !hs.is_finished() {
            if let Some(out) = hs.next_outgoing().unwrap() {
                stream.write_all(&encode_frame(&out).unwrap()).unwrap();
                continue;
            }
            let Some(frame) = read_frame(&mut stream, &mut decoder) else {
                return;
            };
            hs.read_incoming(&frame).unwrap();
        }
        let (mut transport, _) = hs.finish().unwrap();
        let feed = msgs[0].author();
        let clock = Clock::from([(feed, msgs.len() as u64)]);
        let mut packets = opening(&Policy::Open, clock);
        packets.extend(msgs.iter().map(|m| Packet::Message(m.bytes().to_vec())));
        if !send(&mut stream, &mut transport, &packets) {
            return;
        }
        stream
            .set_read_timeout(Some(std::time::Duration::from_millis(500)))
            .unwrap();
        let started = std::time::Instant::now();
        let mut buf = [0u8; 4096];
        while started.elapsed() < common::DEADLINE {
            match stream.read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
            if !send(&mut stream, &mut transport, &[Packet::Ping]) {
                return;
            }
        }
    });
    (addr, thread)
}

/// Defect 1, end to end: a node offers five messages, the last with a
/// signature by another key. A one-off `sync` from a fresh home ends
/// (within the sandbox's deadline, although the node keeps pinging) with
/// exit 1 and an error naming the bad signature, and keeps the four valid
/// messages.
#[test]
fn sync_ends_with_an_error_on_a_bad_signature_from_a_hostile_node() {
    use ed25519_dalek::Signer;
    use potluck::feed::message::{HEADER_LEN, Message, MessageId, signing_input};
    let author = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let mut previous = MessageId::default();
    let mut msgs: Vec<Message> = (1..=5u64)
        .map(|seq| {
            let content = format!(r#"{{"type":"about","name":"n{seq}"}}"#);
            let m = Message::sign(&author, seq, previous, 0, content.as_bytes()).unwrap();
            previous = m.id();
            m
        })
        .collect();
    // The same header, signed by a stranger.
    let stranger = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let mut forged = msgs[4].header_bytes().to_vec();
    let header: [u8; HEADER_LEN] = *msgs[4].header_bytes();
    forged.extend_from_slice(&stranger.sign(&signing_input(&header)).to_bytes());
    forged.extend_from_slice(msgs[4].content().unwrap());
    msgs[4] = Message::decode(forged).unwrap();
    let feed = msgs[0].author().to_string();

    let (addr, server) = hostile_server(msgs);
    let sandbox = Sandbox::new();
    let fresh = sandbox.home("fresh");
    assert!(sandbox.run(&fresh, &["init"]).status.success());
    let run = sandbox.run(&fresh, &["sync", &addr.to_string()]);
    let line = run.one_line_error();
    assert!(line.contains("bad signature"), "{line}");
    server.join().unwrap();
    let log = sandbox.run(&fresh, &["log", &feed, "--json"]);
    assert!(log.status.success(), "{log:?}");
    assert_eq!(log.stdout.lines().count(), 4, "the valid prefix: {log:?}");
}

/// A path that is not UTF-8 (Linux paths are any bytes but `/` and NUL).
#[cfg(unix)]
fn non_utf8(sandbox: &Sandbox, name: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut bytes = name.as_bytes().to_vec();
    bytes.extend_from_slice(b"-\xff\xfe");
    sandbox.dir().join(std::ffi::OsStr::from_bytes(&bytes))
}

/// Runs `potluck --home HOME` with `args`, any of which may be non-UTF-8.
#[cfg(unix)]
fn run_os(sandbox: &Sandbox, home: &Path, args: &[&std::ffi::OsStr]) -> common::sandbox::Run {
    let mut cmd = std::process::Command::new(common::sandbox::BIN);
    cmd.arg("--home").arg(home).args(args);
    common::sandbox::run_command(cmd, sandbox.dir())
}

/// Defect 10: paths that are not UTF-8 (`--home`, `export --out`,
/// `import FILE`, `ics --out`) work instead of panicking; while a node
/// runs, a command it would have to receive as text is refused in one line.
#[cfg(unix)]
#[test]
fn paths_that_are_not_utf8_work() {
    use std::ffi::OsStr;
    let sandbox = Sandbox::new();
    let home = non_utf8(&sandbox, "home");
    let os = |s: &'static str| OsStr::new(s);
    let run = run_os(&sandbox, &home, &[os("init"), os("--name"), os("Ana")]);
    assert!(run.status.success(), "{run:?}");
    let run = run_os(
        &sandbox,
        &home,
        &[
            os("announce"),
            os("--title"),
            os("Soup"),
            os("--start"),
            os(common::START),
        ],
    );
    assert!(run.status.success(), "{run:?}");

    let bundle = non_utf8(&sandbox, "soup.bundle");
    for json in [false, true] {
        let mut args = vec![os("export"), os("--out"), bundle.as_os_str()];
        if json {
            args.push(os("--json"));
        }
        let run = run_os(&sandbox, &home, &args);
        assert!(run.status.success(), "{run:?}");
        assert!(bundle.exists());
    }
    // A relative non-UTF-8 path too (the sandbox is the working directory).
    let relative = bundle.file_name().unwrap().to_owned();
    let run = run_os(&sandbox, &home, &[os("export"), os("--out"), &relative]);
    assert!(run.status.success(), "{run:?}");

    let other = sandbox.home("other");
    assert!(sandbox.run(&other, &["init"]).status.success());
    let run = run_os(
        &sandbox,
        &other,
        &[os("import"), bundle.as_os_str(), os("--json")],
    );
    assert!(run.status.success(), "{run:?}");
    assert_eq!(run.json()["new"], 2, "{run:?}");

    let calendar = non_utf8(&sandbox, "soup.ics");
    let run = run_os(
        &sandbox,
        &other,
        &[os("ics"), os("--out"), calendar.as_os_str()],
    );
    assert!(run.status.success(), "{run:?}");
    assert!(
        std::fs::read_to_string(&calendar)
            .unwrap()
            .contains("SUMMARY:Soup")
    );

    // While a node runs for the home, commands go to it as text.
    let mut server = serve(&sandbox, &other);
    let run = run_os(
        &sandbox,
        &other,
        &[os("export"), os("--out"), bundle.as_os_str()],
    );
    let line = run.one_line_error();
    assert!(line.contains("not valid UTF-8"), "{line}");
    server.assert_running();
}

/// Defect 10: `init --home DIR` on an existing directory leaves its mode
/// alone; a new home is still created owner-only.
#[cfg(unix)]
#[test]
fn init_leaves_an_existing_directory_mode_alone() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let shared = sandbox.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    assert!(sandbox.run(&shared, &["init"]).status.success());
    let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o1777);
    let secret = std::fs::metadata(shared.join("secret")).unwrap();
    assert_eq!(secret.permissions().mode() & 0o777, 0o600);

    let fresh = sandbox.path("fresh");
    assert!(sandbox.run(&fresh, &["init"]).status.success());
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

/// Defect 10: a `config.json` of `[]` is refused in one clear line; one
/// that starts with a UTF-8 byte order mark is read.
#[test]
fn config_json_must_be_an_object_and_may_have_a_bom() {
    let sandbox = Sandbox::new();
    let home = sandbox.home("home");
    assert!(sandbox.run(&home, &["init"]).status.success());
    let config = home.join("config.json");
    std::fs::write(&config, "[]").unwrap();
    let run = sandbox.run(&home, &["invite", "--addr", "127.0.0.1:7643"]);
    let line = run.one_line_error();
    assert!(line.contains("must be a JSON object"), "{line}");
    assert!(line.contains("an array"), "{line}");

    std::fs::write(&config, "\u{feff}{\"listen\": \"127.0.0.1:7643\"}\n").unwrap();
    let run = sandbox.run(&home, &["invite", "--addr", "127.0.0.1:7643"]);
    assert!(run.status.success(), "{run:?}");
}

/// Flips a bit in sled's own file, a third of the way in, as a damaged
/// disk would.
fn damage_sled(home: &Path) {
    let path = home.join("store").join("db");
    let mut db = std::fs::read(&path).unwrap();
    let at = db.len() / 3;
    for byte in &mut db[at..at + 64] {
        *byte ^= 0x5a;
    }
    std::fs::write(&path, db).unwrap();
}

/// Defect 7: one flipped content byte in `messages.log`. `export` refuses
/// in one line instead of writing the damaged message; `serve` does not
/// send it (nor the rest of its feed) and a one-off `sync` still ends, with
/// every other feed; `fsck` names it and `fsck --repair` cuts the feed back
/// before it; a healthy peer then sends the rest again.
#[test]
fn a_damaged_message_is_not_sent_and_repair_fetches_it_again() {
    let sandbox = Sandbox::new();
    let damaged = fixture_home(&sandbox, "damaged");
    // Record 300 ends in content; flip a byte three from its end.
    let log = std::fs::read(damaged.join("store").join("messages.log")).unwrap();
    let (_, len) = log_records(&log)[300];
    flip_in_record(&damaged, 300, len - 3, 0x01);

    let bundle = sandbox.path("all.bundle");
    let run = sandbox.run(&damaged, &["export", "--out", bundle.to_str().unwrap()]);
    let line = run.one_line_error();
    assert!(line.contains("is damaged"), "{line}");
    assert!(line.contains("fsck --repair"), "{line}");
    assert!(!bundle.exists(), "nothing damaged is written");

    let mut server = serve(&sandbox, &damaged);
    let fresh = sandbox.home("fresh");
    assert!(sandbox.run(&fresh, &["init"]).status.success());
    let synced = sandbox.json(&fresh, &["sync", &server.addr.to_string()]);
    let received = synced["received"].as_u64().unwrap();
    assert!(received > 0 && received < 600, "{synced}");
    let fsck = sandbox.json(&fresh, &["fsck"]);
    assert_eq!(fsck["problems"], serde_json::json!([]), "{fsck}");
    assert_eq!(fsck["feeds"], 10, "every feed came: {fsck}");
    server.wait_for_log("not sending a message that is damaged on disk");
    server.terminate();

    let run = sandbox.run(&damaged, &["fsck"]);
    let line = run.one_line_error();
    assert!(line.contains("fsck --repair"), "{line}");
    let run = sandbox.run(&damaged, &["fsck", "--repair", "--json"]);
    assert!(run.status.success(), "{run:?}");
    let repaired = run.json();
    let cut = repaired["repaired"]["cut"].as_array().unwrap();
    assert_eq!(cut.len(), 1, "{repaired}");
    assert_eq!(repaired["refetching"].as_array().unwrap().len(), 1);
    let held_now = repaired["messages"].as_u64().unwrap();
    assert!(held_now < 600, "{repaired}");

    // The same fixtures, undamaged, serve the rest.
    let healthy = fixture_home(&sandbox, "healthy");
    let mut server = serve(&sandbox, &healthy);
    let synced = sandbox.json(&damaged, &["sync", &server.addr.to_string()]);
    assert_eq!(
        synced["received"].as_u64().unwrap(),
        600 - held_now,
        "{synced}"
    );
    let fsck = sandbox.json(&damaged, &["fsck"]);
    assert_eq!(fsck["messages"], 600, "{fsck}");
    assert_eq!(fsck["refetching"], serde_json::json!([]), "{fsck}");
    server.assert_running();
}

/// Defect 7: damage in sled's own files is named, with the way out, and
/// `fsck --repair` rebuilds the store from the message log, losing no
/// message (sled had rolled back silently, and the store cut the log).
#[test]
fn a_damaged_database_is_rebuilt_from_the_message_log() {
    let sandbox = Sandbox::new();
    let home = fixture_home(&sandbox, "home");
    damage_sled(&home);
    let run = sandbox.run(&home, &["fsck"]);
    let line = run.one_line_error();
    assert!(line.contains("is damaged"), "{line}");
    assert!(line.contains("fsck --repair"), "{line}");
    let run = sandbox.run(&home, &["fsck", "--repair", "--json"]);
    assert!(run.status.success(), "{run:?}");
    let doc = run.json();
    assert_eq!(doc["rebuilt"]["restored"], 600, "{doc}");
    assert_eq!(doc["messages"], 600, "{doc}");
    assert_eq!(doc["ok"], true, "{doc}");
    let moved = doc["rebuilt"]["moved_to"].as_str().unwrap();
    assert!(Path::new(moved).join("messages.log").exists(), "{doc}");
}

/// Defect 3: a home that lost its store (but kept its key) refuses to
/// publish, naming `potluck recover`; `recover` fetches the feed back from
/// a peer, and what is published next continues the feed, which the peer
/// takes (no fork). A home from before the published mark gets the same
/// refusal, and `recover --start-over` lets it publish on.
#[test]
fn a_lost_store_refuses_to_publish_until_recovered() {
    let sandbox = Sandbox::new();
    let ana = sandbox.home("ana");
    let bea = sandbox.home("bea");
    assert!(
        sandbox
            .run(&ana, &["init", "--name", "Ana"])
            .status
            .success()
    );
    let me = sandbox.json(&ana, &["whoami"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    common::sandbox::announce(&sandbox, &ana, "Soup");
    assert!(
        sandbox
            .run(&bea, &["init", "--name", "Bea"])
            .status
            .success()
    );
    let mut server = serve(&sandbox, &bea);
    let addr = server.addr.to_string();
    sandbox.json(&ana, &["sync", &addr]);

    std::fs::remove_dir_all(ana.join("store")).unwrap();
    let announce = ["announce", "--title", "Again", "--start", common::START];
    let line = sandbox.run(&ana, &announce).one_line_error();
    assert!(line.contains("potluck recover"), "{line}");
    assert!(line.contains("up to #2"), "{line}");

    let recovered = sandbox.json(&ana, &["recover", &addr]);
    assert_eq!(recovered["recovered"], true, "{recovered}");
    assert!(sandbox.run(&ana, &announce).status.success());
    let log = sandbox.run(&ana, &["log", "--json"]);
    assert_eq!(log.stdout.lines().count(), 3, "{log:?}");
    // Bea takes the third message: it continues the history she holds.
    let synced = sandbox.json(&ana, &["sync", &addr]);
    assert_eq!(synced["sent"], 1, "{synced}");
    server.terminate();
    let bea_log = sandbox.run(&bea, &["log", &me, "--json"]);
    assert_eq!(bea_log.stdout.lines().count(), 3, "{bea_log:?}");
    sandbox.json(&bea, &["fsck"]);

    // A home from before the mark: key, no store, no record.
    std::fs::remove_dir_all(ana.join("store")).unwrap();
    std::fs::remove_file(ana.join("store.published")).unwrap();
    let line = sandbox.run(&ana, &announce).one_line_error();
    assert!(line.contains("potluck recover"), "{line}");
    // Again, with a command that only reads first: the store it opens
    // must not pass for a whole one afterwards (a publish would fork).
    std::fs::remove_dir_all(ana.join("store")).unwrap();
    std::fs::remove_file(ana.join("store.published")).unwrap();
    assert!(sandbox.run(&ana, &["events", "--json"]).status.success());
    let line = sandbox.run(&ana, &announce).one_line_error();
    assert!(line.contains("potluck recover"), "{line}");
    let started = sandbox.json(&ana, &["recover", "--start-over"]);
    assert_eq!(started["started_over"], true, "{started}");
    assert!(sandbox.run(&ana, &announce).status.success());
}

/// Defect 2: two devices share a key and each publishes: two histories of
/// one feed. A third node syncs with both: the second sync succeeds (it
/// used to fail on "wrong previous", for good), brings that node's other
/// feed, and `fsck` and `peers` show the forked feed.
#[test]
fn a_forked_feed_is_shown_and_does_not_stop_sync() {
    let sandbox = Sandbox::new();
    let [one, two, third] = ["one", "two", "third"].map(|n| sandbox.home(n));
    for home in [&one, &two, &third] {
        assert!(sandbox.run(home, &["init"]).status.success());
    }
    // The second device takes the first one's key.
    std::fs::copy(one.join("secret"), two.join("secret")).unwrap();
    common::sandbox::announce(&sandbox, &one, "From the first device");
    // A longer history, so that the third node is offered more of it.
    common::sandbox::announce(&sandbox, &two, "From the second device");
    common::sandbox::announce(&sandbox, &two, "Again from the second device");
    let other = sandbox.home("other");
    sandbox.json(&other, &["init", "--name", "Other"]);

    let mut first = serve(&sandbox, &one);
    sandbox.json(&third, &["sync", &first.addr.to_string()]);
    first.terminate();
    // The second device also holds another person's feed.
    let mut bundle_server = serve(&sandbox, &other);
    sandbox.json(&two, &["sync", &bundle_server.addr.to_string()]);
    bundle_server.terminate();

    let mut second = serve(&sandbox, &two);
    let synced = sandbox.json(&third, &["sync", &second.addr.to_string()]);
    assert!(synced["received"].as_u64().unwrap() >= 1, "{synced}");
    second.terminate();
    let other_feed = sandbox.json(&other, &["whoami"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let log = sandbox.run(&third, &["log", &other_feed, "--json"]);
    assert_eq!(
        log.stdout.lines().count(),
        1,
        "the other feed came: {log:?}"
    );

    let shared = sandbox.json(&one, &["whoami"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fsck = sandbox.json(&third, &["fsck"]);
    assert_eq!(fsck["forked"][0]["feed"], shared.as_str(), "{fsck}");
    let peers = sandbox.json(&third, &["peers"]);
    assert_eq!(peers["forked"][0]["feed"], shared.as_str(), "{peers}");
    let text = sandbox.run(&third, &["peers"]);
    assert!(text.stdout.contains("forked"), "{text:?}");
}
