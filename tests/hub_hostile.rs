//! A hostile hub: a hub written for this test, which speaks the hub
//! protocol well enough to splice a tunnel between two real nodes, and
//! records (and, when told to, alters) every byte it relays.
//!
//! - What it relays teaches it nothing: the event sent only through the
//!   tunnel (this hub stores nothing) does not appear in the recorded
//!   bytes, nor does either member's feed key (the Noise handshake inside
//!   encrypts both identities).
//! - One altered byte ends the tunnel's session at both ends: the end that
//!   reads it says a message failed to authenticate, and the other that
//!   the peer closed the connection (it cannot tell more: the channel that
//!   would carry a reason is the one that was tampered with).
//!
//! Each of these runs twice, with the same body: on loopback
//! (`on_loopback::…`), and across two real NATs (`across_two_nats::…`,
//! in the network namespaces of `tests/common/nat.rs`): the hostile hub
//! listens in the hub's namespace at 203.0.113.10, Ana's `sync` runs on a
//! laptop of one home and Bea's node on a laptop of the other, each behind
//! its masquerading router, and the test first shows that Ana cannot dial
//! Bea, so the hostile hub is the only path between them. The hub runs in
//! this test's process: only its listening socket is made in the hub's
//! namespace ([`NatNet::listen_in`]). Across the NATs needs root, `ip` and
//! `nft`; where namespaces cannot be made those tests say so on stderr and
//! pass without running (`.ci/run` runs as root, so there they run).
//!
//! A member flooded with tunnel calls is tested on loopback only: what it
//! shows is the member's answer to the hub, which no NAT changes.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::nat::{HUB_ADDR, Laptop, NatNet, assert_no_direct_path};
use common::raw::read_frame;
use common::sandbox::{Run, Sandbox, Server, finish};
use potluck::feed::message::FeedId;
use potluck::proto::frame::{FrameDecoder, encode_frame};
use potluck::proto::handshake::{DEFAULT_NETWORK_KEY, Handshake, Transport};
use potluck::proto::replicate::sim::opening;
use potluck::proto::replicate::{Clock, Policy};
use potluck::proto::wire::{Packet, RefuseReason};

/// One side of a connection to the hostile hub, past the handshake.
struct Conn {
    stream: TcpStream,
    transport: Transport,
    decoder: FrameDecoder,
    remote: FeedId,
}

fn send(conn: &mut Conn, packets: &[Packet]) -> bool {
    common::raw::send(&mut conn.stream, &mut conn.transport, packets)
}

fn shake(mut stream: TcpStream, key: &ed25519_dalek::SigningKey) -> Option<Conn> {
    stream.set_read_timeout(Some(common::DEADLINE)).ok()?;
    let mut hs = Handshake::responder(key, &DEFAULT_NETWORK_KEY).ok()?;
    let mut decoder = FrameDecoder::new();
    while !hs.is_finished() {
        if let Some(out) = hs.next_outgoing().ok()? {
            stream.write_all(&encode_frame(&out).ok()?).ok()?;
            continue;
        }
        let frame = read_frame(&mut stream, &mut decoder)?;
        hs.read_incoming(&frame).ok()?;
    }
    let (transport, remote) = hs.finish().ok()?;
    Some(Conn {
        stream,
        transport,
        decoder,
        remote,
    })
}

/// Which byte the hostile hub flips, counted in each direction of a
/// tunnel (the asking member's bytes "there", the called member's "back").
#[derive(Clone, Copy, Default)]
struct Alter {
    there: Option<usize>,
    back: Option<usize>,
}

/// Takes one connection from the (non-blocking) `listener`, shakes hands
/// as the hub and reads its first frame; `None` when none is waiting (after
/// a short pause) or it fails.
fn accept_one(
    listener: &TcpListener,
    key: &ed25519_dalek::SigningKey,
) -> Option<(Conn, Vec<Packet>)> {
    let Ok((stream, _)) = listener.accept() else {
        std::thread::sleep(Duration::from_millis(20));
        return None;
    };
    stream.set_nonblocking(false).ok()?;
    let mut conn = shake(stream, key)?;
    let first = read_frame(&mut conn.stream, &mut conn.decoder)
        .and_then(|f| conn.transport.decrypt(&f).ok())
        .and_then(|p| Packet::decode_all(&p).ok())?;
    Some((conn, first))
}

/// What the hostile hub recorded of one tunnel.
#[derive(Default)]
struct Recorded {
    there: Vec<u8>,
    back: Vec<u8>,
    /// Where the asking and the called member's connections came from.
    from: Vec<(IpAddr, IpAddr)>,
}

/// Copies `from` → `to`, recording, and flipping the byte at `alter_at`
/// (counted in this direction) when given.
fn relay(
    mut from: TcpStream,
    mut to: TcpStream,
    tap: Arc<Mutex<Vec<u8>>>,
    alter_at: Option<usize>,
) {
    let mut buf = [0u8; 4096];
    let mut seen = 0usize;
    let _ = from.set_read_timeout(Some(common::DEADLINE));
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(at) = alter_at
            && (seen..seen + n).contains(&at)
        {
            buf[at - seen] ^= 0x20;
        }
        seen += n;
        tap.lock().unwrap().extend_from_slice(&buf[..n]);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// Runs the hostile hub on `listener` until `sessions` connections were
/// taken (bounded by the sandbox's deadline): sessions of members are
/// answered with an empty clock and kept open; a `Tunnel` is called
/// through the target's session and spliced with its `TunnelAccept`.
fn hostile_hub(
    listener: TcpListener,
    key: ed25519_dalek::SigningKey,
    alter: Alter,
    done: mpsc::Receiver<()>,
) -> Arc<Mutex<Recorded>> {
    let recorded = Arc::new(Mutex::new(Recorded::default()));
    let out = recorded.clone();
    let members: Arc<Mutex<Vec<Conn>>> = Arc::default();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = Instant::now() + common::DEADLINE * 2;
        let mut waiting: Option<Conn> = None;
        while Instant::now() < deadline && done.try_recv().is_err() {
            let Some((mut conn, first)) = accept_one(&listener, &key) else {
                continue;
            };
            match first.first() {
                Some(Packet::Tunnel { target }) => {
                    let mut members = members.lock().unwrap();
                    let Some(callee) = members.iter_mut().find(|m| m.remote == *target) else {
                        send(&mut conn, &[Packet::Refuse(RefuseReason::Offline)]);
                        continue;
                    };
                    let from = conn.remote;
                    assert!(send(
                        callee,
                        &[Packet::TunnelCall {
                            token: [7; 16],
                            from
                        }]
                    ));
                    waiting = Some(conn);
                }
                Some(Packet::TunnelAccept { token }) => {
                    assert_eq!(*token, [7; 16]);
                    let Some(mut asker) = waiting.take() else {
                        continue;
                    };
                    assert!(send(&mut asker, &[Packet::TunnelReady]));
                    assert!(send(&mut conn, &[Packet::TunnelReady]));
                    let (a, b) = (asker, conn);
                    // Taken now: once the relay ends, a closed socket no
                    // longer has a peer address.
                    let ip = |c: &Conn| c.stream.peer_addr().unwrap().ip();
                    let ends = (ip(&a), ip(&b));
                    let (a_read, b_read) =
                        (a.stream.try_clone().unwrap(), b.stream.try_clone().unwrap());
                    let there = Arc::new(Mutex::new(Vec::new()));
                    let back = Arc::new(Mutex::new(Vec::new()));
                    let t1 = {
                        let (to, tap) = (b.stream.try_clone().unwrap(), there.clone());
                        std::thread::spawn(move || relay(a_read, to, tap, alter.there))
                    };
                    let t2 = {
                        let (to, tap) = (a.stream.try_clone().unwrap(), back.clone());
                        std::thread::spawn(move || relay(b_read, to, tap, alter.back))
                    };
                    let _ = t1.join();
                    let _ = t2.join();
                    let mut rec = out.lock().unwrap();
                    rec.there.extend_from_slice(&there.lock().unwrap());
                    rec.back.extend_from_slice(&back.lock().unwrap());
                    rec.from.push(ends);
                }
                Some(Packet::Hello { .. }) => {
                    // A member keeps a session: an empty clock, and a thread
                    // that reads (and drops) what it sends.
                    let mut packets = opening(&Policy::Open, Clock::new());
                    packets.retain(|p| !matches!(p, Packet::Clock(_)));
                    if send(&mut conn, &packets) {
                        let mut reader = conn.stream.try_clone().unwrap();
                        std::thread::spawn(move || {
                            let mut buf = [0u8; 4096];
                            while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
                        });
                        members.lock().unwrap().push(conn);
                    }
                }
                _ => {}
            }
        }
    });
    recorded
}

/// A home whose only hub is the hostile one at `hub`.
fn member_home(sandbox: &Sandbox, name: &str, hub: &str) -> std::path::PathBuf {
    let home = sandbox.home(name);
    sandbox.json(&home, &["init", "--name", name]);
    let config = serde_json::json!({ "hubs": [hub], "discovery": false });
    std::fs::write(home.join("config.json"), config.to_string()).unwrap();
    home
}

fn feed(sandbox: &Sandbox, home: &Path) -> String {
    sandbox.json(home, &["whoami"])["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Where a test runs: on loopback, or across two NATs.
struct Place {
    /// Across the NATs, the namespaces (deleted when the place is
    /// dropped: a test takes it as an argument, so after its nodes) and
    /// the laptops.
    nat: Option<(NatNet, [Laptop; 4])>,
}

/// The port Bea's node listens on across the NATs (a known one, for the
/// dials that show Ana cannot reach it).
const BEA_PORT: u16 = 7643;

impl Place {
    fn loopback() -> Place {
        Place { nat: None }
    }

    /// Two NATs apart (namespaces tagged `tag`, one per test), or `None`
    /// after saying on stderr that `test` is skipped where namespaces
    /// cannot be made.
    fn across_nats(tag: &str, test: &str) -> Option<Place> {
        match NatNet::build("hh", tag) {
            Ok(nat) => Some(Place { nat: Some(nat) }),
            Err(e) => {
                eprintln!(
                    "SKIPPED: across_two_nats::{test}: cannot make network namespaces here ({e}); run as root with iproute2 and nftables"
                );
                None
            }
        }
    }

    /// Ana's laptop (a1, home 1) and Bea's (b1, home 2).
    fn laptops(&self) -> Option<(&Laptop, &Laptop)> {
        self.nat.as_ref().map(|(_, l)| (&l[0], &l[2]))
    }

    /// The hostile hub's listening socket: on loopback, or at the hub's
    /// address in the hub's namespace.
    fn hub_listener(&self) -> TcpListener {
        match &self.nat {
            None => TcpListener::bind("127.0.0.1:0").unwrap(),
            Some((net, _)) => net
                .listen_in("hub", &format!("{HUB_ADDR}:0"))
                .unwrap_or_else(|e| panic!("{e}")),
        }
    }

    /// Runs a command of Ana's (who runs no node) on her laptop.
    fn run_ana(&self, sandbox: &Sandbox, ana: &Path, args: &[&str]) -> Run {
        let ns = self.laptops().map(|(a, _)| a.ns.as_str());
        finish(sandbox.command_in(ns, ana, args))
    }

    /// Bea's node, on her laptop.
    fn serve_bea(&self, sandbox: &Sandbox, bea: &Path) -> Server {
        let (ns, listen) = match self.laptops() {
            None => (None, "127.0.0.1:0".to_owned()),
            Some((_, b)) => (Some(b.ns.as_str()), format!("{}:{BEA_PORT}", b.addr)),
        };
        sandbox
            .spawn_serve_in(
                ns,
                bea,
                &["--listen", &listen, "--no-web", "--no-discovery"],
            )
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Starts the hostile hub and Bea's node (a member that follows Ana) in
/// `place`, and returns what is needed to tunnel from Ana. Across the
/// NATs, first shows that Ana cannot dial Bea's node: the hub is the only
/// path.
fn setup(
    sandbox: &Sandbox,
    place: &Place,
    alter: Alter,
) -> (
    std::path::PathBuf,
    String,
    Server,
    Arc<Mutex<Recorded>>,
    mpsc::Sender<()>,
) {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let hub_feed = FeedId(key.verifying_key().to_bytes());
    let listener = place.hub_listener();
    let hub = format!("{hub_feed}@{}", listener.local_addr().unwrap());
    let (stop, done) = mpsc::channel();
    let recorded = hostile_hub(listener, key, alter, done);
    let ana = member_home(sandbox, "ana", &hub);
    let bea = member_home(sandbox, "bea", &hub);
    let ana_feed = feed(sandbox, &ana);
    sandbox.json(&bea, &["follow", &ana_feed]);
    let server = place.serve_bea(sandbox, &bea);
    if let Some((a, b)) = place.laptops() {
        assert_no_direct_path(sandbox, &ana, a, b, BEA_PORT);
    }
    (ana, server.feed.clone(), server, recorded, stop)
}

/// The hostile hub relays a sync from Ana to Bea and records it: neither
/// the event's title nor a feed key is in what it recorded.
fn a_hub_that_records_the_tunnel_learns_nothing_of_what_passes(place: Place) {
    let sandbox = Sandbox::new();
    let (ana, bea_feed, bea, recorded, stop) = setup(&sandbox, &place, Alter::default());
    let ana_feed = feed(&sandbox, &ana);
    let title = "a secret supper 7f3a";
    let event = common::sandbox::announce(&sandbox, &ana, title);
    // Bea's node reaches the hub in its own time.
    let synced = {
        let deadline = Instant::now() + common::DEADLINE;
        loop {
            let run = place.run_ana(&sandbox, &ana, &["sync", &bea_feed, "--json"]);
            if run.status.success() {
                break run.json();
            }
            assert!(Instant::now() < deadline, "no tunnel to Bea: {run:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    assert_eq!(synced["peer"], bea_feed, "{synced}");
    assert!(synced["sent"].as_u64() > Some(0), "{synced}");
    sandbox.json_until(&bea.home, &["events"], "Bea holds Ana's event", |d| {
        common::sandbox::events_contain(d, &event)
    });
    let _ = stop.send(());
    let rec = recorded.lock().unwrap();
    // Across the NATs, both ends reached the hub from their routers'
    // public addresses: the tunnel crossed both masquerades.
    if let Some((a, b)) = place.laptops() {
        let routers = (a.wan.parse().unwrap(), b.wan.parse().unwrap());
        assert_eq!(rec.from, [routers], "where the tunnel's ends came from");
    }
    assert!(
        rec.there.len() > 400 && rec.back.len() > 200,
        "the hub relayed the tunnel ({} and {} bytes)",
        rec.there.len(),
        rec.back.len()
    );
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for bytes in [&rec.there, &rec.back] {
        assert!(
            !contains(bytes, title.as_bytes()),
            "the event's title crossed in clear"
        );
        for f in [&ana_feed, &bea_feed] {
            let key = FeedId::parse(f).unwrap().0;
            assert!(!contains(bytes, &key), "a feed key crossed in clear");
        }
    }
    drop(bea);
}

/// Runs a sync from Ana to Bea through a hub that flips one byte as
/// `alter` says, in `place`; returns Ana's error and Bea's log.
fn altered_sync(place: Place, alter: Alter) -> (String, String) {
    let sandbox = Sandbox::new();
    let (ana, bea_feed, bea, _recorded, stop) = setup(&sandbox, &place, alter);
    common::sandbox::announce(&sandbox, &ana, "soup");
    let deadline = Instant::now() + common::DEADLINE;
    let error = loop {
        let run = place.run_ana(&sandbox, &ana, &["sync", &bea_feed]);
        assert!(
            !run.status.success(),
            "a sync through an altering hub succeeded: {run:?}"
        );
        let line = run.one_line_error();
        // Before Bea's node has joined the hub, the hub has nobody to call.
        if !line.contains("not connected to the hub") {
            break line;
        }
        assert!(Instant::now() < deadline, "no tunnel to Bea: {line}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // Bea's node logs how its end of the tunnel ended.
    let deadline = Instant::now() + common::DEADLINE;
    while !bea.stderr().contains("tunnel session ended") {
        assert!(
            Instant::now() < deadline,
            "Bea's side said nothing: {}",
            bea.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = stop.send(());
    (error, bea.stderr())
}

/// Past the handshake (messages 1 and 3 are 50 + 162 bytes one way,
/// message 2 is 194 the other): inside the first transport frames.
const PAST_HANDSHAKE: usize = 230;

fn a_byte_altered_toward_the_asking_member_ends_the_session_at_both_ends(place: Place) {
    let (ana, bea) = altered_sync(
        place,
        Alter {
            back: Some(PAST_HANDSHAKE),
            ..Alter::default()
        },
    );
    assert!(ana.contains("failed to authenticate"), "Ana's side: {ana}");
    let line = bea
        .lines()
        .find(|l| l.contains("tunnel session ended"))
        .unwrap_or_default();
    assert!(
        line.contains("error=peer closed the connection"),
        "Bea's side: {line}"
    );
}

fn a_byte_altered_toward_the_called_member_ends_the_session_at_both_ends(place: Place) {
    let (ana, bea) = altered_sync(
        place,
        Alter {
            there: Some(PAST_HANDSHAKE),
            ..Alter::default()
        },
    );
    assert!(
        ana.contains("peer closed the connection"),
        "Ana's side: {ana}"
    );
    let line = bea
        .lines()
        .find(|l| l.contains("tunnel session ended"))
        .unwrap_or_default();
    assert!(
        line.contains("failed to authenticate"),
        "Bea's side: {line}"
    );
}

/// Each body above, as a test on loopback and as one across two NATs
/// (`tag` names its namespaces: the tests of this binary run at once).
macro_rules! on_loopback_and_across_two_nats {
    ($($name:ident, $tag:literal;)*) => {
        mod on_loopback {
            use super::*;
            $(
                #[test]
                fn $name() {
                    super::$name(Place::loopback());
                }
            )*
        }
        mod across_two_nats {
            use super::*;
            $(
                #[test]
                fn $name() {
                    if let Some(place) = Place::across_nats($tag, stringify!($name)) {
                        super::$name(place);
                    }
                }
            )*
        }
    };
}

on_loopback_and_across_two_nats! {
    a_hub_that_records_the_tunnel_learns_nothing_of_what_passes, "r";
    a_byte_altered_toward_the_asking_member_ends_the_session_at_both_ends, "a";
    a_byte_altered_toward_the_called_member_ends_the_session_at_both_ends, "c";
}

/// A hostile hub calls a member fifty times at once for the same feed:
/// the member opens one connection to answer, and declines the rest in
/// its session (one tunnel per feed; it cannot be made to open connection
/// after connection).
#[test]
fn a_hub_flooding_a_member_with_calls_gets_one_answer_per_feed() {
    let sandbox = Sandbox::new();
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let hub_feed = FeedId(key.verifying_key().to_bytes());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let hub = format!("{hub_feed}@{}", listener.local_addr().unwrap());
    let ana = member_home(&sandbox, "ana", &hub);
    let bea = member_home(&sandbox, "bea", &hub);
    let ana_feed = FeedId::parse(&feed(&sandbox, &ana)).unwrap();
    sandbox.json(&bea, &["follow", &ana_feed.to_string()]);
    let _bea = sandbox
        .spawn_serve(
            &bea,
            &["--listen", "127.0.0.1:0", "--no-web", "--no-discovery"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + common::DEADLINE;
    let mut session: Option<Conn> = None;
    let mut answers = 0;
    let mut declines_seen = 0;
    let mut flooded_at: Option<Instant> = None;
    // Take connections until the flood has had 3 s to be answered.
    while Instant::now() < deadline
        && flooded_at.is_none_or(|t| t.elapsed() < Duration::from_secs(3))
    {
        let Some((mut conn, first)) = accept_one(&listener, &key) else {
            continue;
        };
        match first.first() {
            Some(Packet::Hello { .. }) if session.is_none() => {
                let mut packets = opening(&Policy::Open, Clock::new());
                packets.extend((0..50u8).map(|i| Packet::TunnelCall {
                    token: [i; 16],
                    from: ana_feed,
                }));
                assert!(send(&mut conn, &packets));
                flooded_at = Some(Instant::now());
                session = Some(conn);
            }
            Some(Packet::TunnelAccept { .. }) => answers += 1,
            _ => {}
        }
    }
    assert!(
        flooded_at.is_some(),
        "Bea's node never connected to the hub"
    );
    // The declines came back in Bea's session.
    if let Some(mut conn) = session {
        conn.stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        while let Some(plain) = read_frame(&mut conn.stream, &mut conn.decoder)
            .and_then(|f| conn.transport.decrypt(&f).ok())
        {
            declines_seen += Packet::decode_all(&plain)
                .unwrap_or_default()
                .iter()
                .filter(|p| matches!(p, Packet::TunnelDecline { .. }))
                .count();
            if declines_seen >= 49 {
                break;
            }
        }
    }
    assert_eq!(answers, 1, "connections that answered the flood of calls");
    assert_eq!(declines_seen, 49, "calls declined in the session");
}
