//! LAN discovery end to end: real `potluck serve` processes that find each
//! other through announcements, and datagrams forged, replayed or aimed
//! from another network by the test itself.
//!
//! Every packet stays on loopback. Each test picks its own discovery port
//! P (a UDP port that was free a moment ago), and every node announces to
//! `127.255.255.255:P`, which reaches every local socket bound to P and
//! nothing else; the nodes that must stay silent get `--no-discovery` as
//! well as that loopback target, so a broken flag still sends nothing off
//! the machine. No test ever uses the default broadcast target. The test's
//! own datagrams go to `127.0.0.1:P`.
//!
//! As in `tests/serve.rs`: the environment of every child is cleaned, every
//! wait is bounded, and a guard kills any `serve` a failing test leaves.

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::node::{feed_of, new_key};
use common::sandbox::{Discovery, POLL, Sandbox, discovery_port, events_contain};
use common::{START, free_tcp_port, now_ms};
use ed25519_dalek::SigningKey;
use potluck::feed::message::FeedId;
use potluck::proto::discovery::{ANNOUNCE_EVERY_SECS, open, seal};
use potluck::proto::handshake::{DEFAULT_NETWORK_KEY, NetworkKey};
use serde_json::Value;

/// Two announcement periods, and a margin.
const TWO_PERIODS: Duration = Duration::from_millis(2 * ANNOUNCE_EVERY_SECS * 1000 + 1500);
/// A private network's key.
const PRIVATE_KEY_HEX: &str = "c0ffee0000000000000000000000000000000000000000000000000000c0ffee";

impl Sandbox {
    /// The peer book of a node (`peers --json`, "book").
    fn book(&self, home: &Path) -> Vec<Value> {
        self.json(home, &["peers"])["book"]
            .as_array()
            .cloned()
            .expect("a book")
    }
}

/// A fresh identity and its feed id as text.
fn fresh_key() -> (SigningKey, String) {
    let key = new_key();
    let feed = feed_of(&key).to_string();
    (key, feed)
}

/// An announcement by `key` of TCP `port`, made at `timestamp_ms`.
fn sealed(key: &SigningKey, network: &NetworkKey, port: u16, timestamp_ms: i64) -> Vec<u8> {
    seal(
        key,
        network,
        port,
        timestamp_ms,
        rand::random(),
        rand::random(),
    )
}

/// A socket that hears every announcement sent to the discovery port, next
/// to the nodes' own (which share the port with `SO_REUSEADDR` and
/// `SO_REUSEPORT`, as this one does). It only receives.
struct Listener {
    socket: UdpSocket,
}

impl Listener {
    fn bind(port: u16) -> Listener {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        socket.set_reuse_address(true).unwrap();
        socket.set_reuse_port(true).unwrap();
        let bind = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
        socket.bind(&bind.into()).unwrap();
        let socket: UdpSocket = socket.into();
        socket.set_read_timeout(Some(POLL)).unwrap();
        Listener { socket }
    }

    /// Every datagram that arrives until `until`, with its source.
    fn collect_until(&self, until: Instant) -> Vec<(Vec<u8>, SocketAddr)> {
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while Instant::now() < until && got.len() < 10_000 {
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => got.push((buf[..n].to_vec(), from)),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("listener: {e}"),
            }
        }
        got
    }
}

/// The feeds that announced in `packets`, read with `network`'s key.
fn announcers(packets: &[(Vec<u8>, SocketAddr)], network: &NetworkKey) -> BTreeSet<String> {
    packets
        .iter()
        .filter_map(|(p, _)| open(p, network).ok())
        .map(|a| a.feed.to_string())
        .collect()
}

fn record<'a>(book: &'a [Value], addr: &str) -> Option<&'a Value> {
    book.iter().find(|r| r["addr"] == addr)
}

fn knows_feed(book: &[Value], feed: &str) -> bool {
    book.iter().any(|r| r["feed"] == feed)
}

fn connected_to(peers: &Value, feed: &str) -> bool {
    peers["connected"]
        .as_array()
        .is_some_and(|c| c.iter().any(|p| p["feed"] == feed))
}

// ---------------------------------------------------------------------------

#[test]
fn two_nodes_with_no_peers_find_each_other_and_sync() {
    let sandbox = Sandbox::new();
    let port = discovery_port();
    let home_a = sandbox.home("a");
    let home_b = sandbox.home("b");
    let mut a = sandbox.serve_with(&home_a, Discovery::Loopback(port));
    let mut b = sandbox.serve_with(&home_b, Discovery::Loopback(port));
    assert_ne!(a.feed, b.feed);
    assert!(!home_a.join("config.json").exists(), "no configured peers");
    assert!(!home_b.join("config.json").exists(), "no configured peers");

    let event = sandbox.json(
        &home_a,
        &["announce", "--title", "Found you", "--start", START],
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sandbox.json_until(&home_b, &["events"], "B to list A's event", |doc| {
        events_contain(doc, &event)
    });
    // And back: B's answer reaches A over the same discovered connection.
    sandbox.json(&home_b, &["rsvp", &event, "going"]);
    sandbox.json_until(&home_a, &["event", &event], "A to see B's RSVP", |doc| {
        doc["tally"]["going"] == 1
    });

    // Each book holds the other, as discovered, at its listen address.
    for (home, other) in [(&home_b, &a), (&home_a, &b)] {
        let addr = other.addr.to_string();
        let peers = sandbox.json_until(home, &["peers"], "a discovered record", |doc| {
            connected_to(doc, &other.feed)
                && doc["book"].as_array().is_some_and(|book| {
                    record(book, &addr).is_some_and(|r| r["source"] == "discovered")
                })
        });
        let book = peers["book"].as_array().unwrap();
        let r = record(book, &addr).unwrap();
        assert_eq!(r["feed"], other.feed.as_str(), "{peers}");
        assert!(r["last_seen_ms"].is_i64(), "{peers}");
    }

    a.assert_running();
    b.assert_running();
    let status_b = b.terminate();
    let status_a = a.terminate();
    assert!(status_b.success(), "B: {status_b:?}: {}", b.stderr());
    assert!(status_a.success(), "A: {status_a:?}: {}", a.stderr());
    // Discovered peers are remembered: the book survives a restart.
    let book = sandbox.book(&home_b);
    let r = record(&book, &a.addr.to_string()).expect("A is still in B's book");
    assert_eq!(r["source"], "discovered");
}

#[test]
fn a_node_of_another_network_learns_nothing_and_is_not_learned() {
    let sandbox = Sandbox::new();
    let port = discovery_port();
    let listener = Listener::bind(port);
    let home_c = sandbox.home("c");
    let c_feed = sandbox.json(&home_c, &["init", "--network-key", PRIVATE_KEY_HEX])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut c = sandbox.serve_with(&home_c, Discovery::Loopback(port));
    assert_eq!(c.feed, c_feed);
    let home_a = sandbox.home("a");
    let home_b = sandbox.home("b");
    let mut a = sandbox.serve_with(&home_a, Discovery::Loopback(port));
    let mut b = sandbox.serve_with(&home_b, Discovery::Loopback(port));

    // Two announcement periods of every node, all on the same port.
    let packets = listener.collect_until(b.started + TWO_PERIODS);
    let private = NetworkKey::from_hex(PRIVATE_KEY_HEX).unwrap();
    let public_announcers = announcers(&packets, &DEFAULT_NETWORK_KEY);
    let private_announcers = announcers(&packets, &private);
    // C did announce, readable with its key only; A and B with theirs.
    assert!(
        private_announcers.contains(&c_feed),
        "{private_announcers:?}"
    );
    assert!(public_announcers.contains(&a.feed), "{public_announcers:?}");
    assert!(public_announcers.contains(&b.feed), "{public_announcers:?}");
    assert!(!public_announcers.contains(&c_feed));
    assert!(!private_announcers.contains(&a.feed));
    assert!(!private_announcers.contains(&b.feed));
    // No announcement names its feed in the clear.
    for (packet, _) in &packets {
        for feed in [&a.feed, &b.feed, &c_feed] {
            let raw = FeedId::parse(feed).unwrap().0;
            assert!(!packet.windows(32).any(|w| w == raw), "a feed in clear");
        }
    }

    // The public nodes found each other (so announcements did flow)…
    for (home, other) in [(&home_a, &b), (&home_b, &a)] {
        sandbox.json_until(home, &["peers"], "the public nodes to meet", |doc| {
            doc["book"]
                .as_array()
                .is_some_and(|book| knows_feed(book, &other.feed))
        });
    }
    // …and nobody met C.
    let peers_c = sandbox.json(&home_c, &["peers"]);
    assert_eq!(peers_c["node_running"], true, "{peers_c}");
    assert_eq!(peers_c["connected"], Value::Array(vec![]), "{peers_c}");
    assert_eq!(peers_c["book"], Value::Array(vec![]), "{peers_c}");
    let c_addr = c.addr.to_string();
    for home in [&home_a, &home_b] {
        let peers = sandbox.json(home, &["peers"]);
        let book = peers["book"].as_array().unwrap();
        assert!(!knows_feed(book, &c_feed), "{peers}");
        assert!(record(book, &c_addr).is_none(), "{peers}");
        assert!(!connected_to(&peers, &c_feed), "{peers}");
    }
    for server in [&mut a, &mut b, &mut c] {
        server.assert_running();
    }
}

#[test]
fn forged_replayed_stale_and_foreign_announcements_are_ignored() {
    let sandbox = Sandbox::new();
    let port = discovery_port();
    let home = sandbox.home("n");
    let mut node = sandbox.serve_with(&home, Discovery::Loopback(port));
    // "listening on" comes before the discovery socket is bound; a datagram
    // sent in between would be lost. The node logs once the socket is bound.
    node.wait_for_log("LAN discovery on");
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    let send = |packet: &[u8]| {
        sender.send_to(packet, to).expect("send to loopback");
    };
    let (probe_key, _) = fresh_key();
    let packet_len = sealed(&probe_key, &DEFAULT_NETWORK_KEY, 1, now_ms()).len();

    // (a) Garbage: empty, short, the right length and version but random,
    // and longer than any announcement.
    let mut right_length: Vec<u8> = (0..packet_len).map(|_| rand::random()).collect();
    right_length[0] = 1;
    let garbage: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"hello".to_vec(),
        right_length,
        vec![1; packet_len],
        (0..1000).map(|_| rand::random()).collect(),
    ];
    for g in &garbage {
        send(g);
    }

    // (b) A correct announcement from a new identity, pointing at a closed
    // port: it lands in the book (the receive path works).
    let (key1, feed1) = fresh_key();
    let port1 = free_tcp_port();
    let addr1 = format!("127.0.0.1:{port1}");
    let packet1 = sealed(&key1, &DEFAULT_NETWORK_KEY, port1, now_ms());
    send(&packet1);
    let peers = sandbox.json_until(&home, &["peers"], "the announced address", |doc| {
        doc["book"]
            .as_array()
            .is_some_and(|book| record(book, &addr1).is_some())
    });
    let book = peers["book"].as_array().unwrap();
    assert_eq!(book.len(), 1, "garbage adds nothing: {peers}");
    let r = record(book, &addr1).unwrap();
    assert_eq!(r["feed"], feed1.as_str(), "{peers}");
    assert_eq!(r["source"], "discovered", "{peers}");
    let seen1 = r["last_seen_ms"].as_i64().expect("last_seen_ms");
    assert_eq!(r["last_success_ms"], Value::Null, "nobody listens: {peers}");

    // (c) The same datagram again, later (a different millisecond for sure).
    thread::sleep(Duration::from_millis(1100));
    for _ in 0..3 {
        send(&packet1);
    }
    // (d) Ten minutes old, (e) sealed with another network's key, and
    // (f) a correct one with one bit flipped.
    let (key3, feed3) = fresh_key();
    let port3 = free_tcp_port();
    send(&sealed(
        &key3,
        &DEFAULT_NETWORK_KEY,
        port3,
        now_ms() - 10 * 60 * 1000,
    ));
    let (key4, feed4) = fresh_key();
    let port4 = free_tcp_port();
    send(&sealed(&key4, &NetworkKey([0x42; 32]), port4, now_ms()));
    let (key5, feed5) = fresh_key();
    let port5 = free_tcp_port();
    let mut flipped = sealed(&key5, &DEFAULT_NETWORK_KEY, port5, now_ms());
    flipped[40] ^= 0x01;
    send(&flipped);
    // A marker sent after all of them from the same socket: once it is in
    // the book, the node has read everything before it.
    let (key6, feed6) = fresh_key();
    let port6 = free_tcp_port();
    let addr6 = format!("127.0.0.1:{port6}");
    send(&sealed(&key6, &DEFAULT_NETWORK_KEY, port6, now_ms()));
    let peers = sandbox.json_until(&home, &["peers"], "the marker announcement", |doc| {
        doc["book"]
            .as_array()
            .is_some_and(|book| record(book, &addr6).is_some())
    });
    let book = peers["book"].as_array().unwrap();
    assert_eq!(record(book, &addr6).unwrap()["feed"], feed6.as_str());
    let r = record(book, &addr1).unwrap();
    assert_eq!(
        r["last_seen_ms"].as_i64(),
        Some(seen1),
        "a replay must not count as a sighting: {peers}"
    );
    for (feed, port, what) in [
        (&feed3, port3, "a stale announcement"),
        (&feed4, port4, "another network's announcement"),
        (&feed5, port5, "a tampered announcement"),
    ] {
        assert!(!knows_feed(book, feed), "{what} was accepted: {peers}");
        assert!(
            record(book, &format!("127.0.0.1:{port}")).is_none(),
            "{what} was accepted: {peers}"
        );
    }
    assert_eq!(book.len(), 2, "{peers}");

    // The control: a fresh announcement of the same identity is a new
    // sighting, so the replay above really was what was dropped.
    send(&sealed(&key1, &DEFAULT_NETWORK_KEY, port1, now_ms()));
    sandbox.json_until(&home, &["peers"], "a fresh sighting", |doc| {
        doc["book"].as_array().is_some_and(|book| {
            record(book, &addr1).is_some_and(|r| r["last_seen_ms"].as_i64() > Some(seen1))
        })
    });
    let peers = sandbox.json(&home, &["peers"]);
    assert!(!connected_to(&peers, &feed1), "{peers}");
    node.assert_running();
    let status = node.terminate();
    assert!(status.success(), "{status:?}: {}", node.stderr());
}

#[test]
fn no_discovery_announces_nothing() {
    let sandbox = Sandbox::new();
    let port = discovery_port();
    // Listens next to the nodes, on the port both would use.
    let listener = Listener::bind(port);
    let home_on = sandbox.home("on");
    let home_off = sandbox.home("off");
    let mut on = sandbox.serve_with(&home_on, Discovery::Loopback(port));
    let mut off = sandbox.serve_with(&home_off, Discovery::Off(port));

    let packets = listener.collect_until(off.started + TWO_PERIODS);
    let heard = announcers(&packets, &DEFAULT_NETWORK_KEY);
    // The control: the listener hears the node that announces…
    assert!(heard.contains(&on.feed), "{heard:?}");
    // …and nothing from the silent one, nor anything it could not read.
    assert!(!heard.contains(&off.feed), "{heard:?}");
    assert_eq!(
        heard.len(),
        1,
        "only the announcing node was heard: {heard:?}"
    );
    assert_eq!(
        packets
            .iter()
            .filter(|(p, _)| open(p, &DEFAULT_NETWORK_KEY).is_err())
            .count(),
        0,
        "unreadable datagrams on the port"
    );
    assert!(packets.len() >= 2, "two periods of announcements");
    // The silent node neither announced nor listened: nobody knows anybody.
    let book_on = sandbox.book(&home_on);
    assert!(!knows_feed(&book_on, &off.feed), "{book_on:?}");
    let peers_off = sandbox.json(&home_off, &["peers"]);
    assert_eq!(peers_off["book"], Value::Array(vec![]), "{peers_off}");
    assert_eq!(peers_off["connected"], Value::Array(vec![]), "{peers_off}");
    on.assert_running();
    off.assert_running();
}

#[test]
fn replays_stay_dropped_after_a_flood_of_new_identities() {
    let sandbox = Sandbox::new();
    let port = discovery_port();
    let home = sandbox.home("n");
    let mut node = sandbox.serve_with(&home, Discovery::Loopback(port));
    node.wait_for_log("LAN discovery on");
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    let send = |packet: &[u8]| {
        sender.send_to(packet, to).expect("send to loopback");
    };

    let (key1, _) = fresh_key();
    let port1 = free_tcp_port();
    let addr1 = format!("127.0.0.1:{port1}");
    let packet1 = sealed(&key1, &DEFAULT_NETWORK_KEY, port1, now_ms());
    send(&packet1);
    let peers = sandbox.json_until(&home, &["peers"], "the announced address", |doc| {
        doc["book"]
            .as_array()
            .is_some_and(|book| record(book, &addr1).is_some())
    });
    let seen1 = record(peers["book"].as_array().unwrap(), &addr1).unwrap()["last_seen_ms"]
        .as_i64()
        .unwrap();

    // Any member of the (public) network can make up identities: 1100 of
    // them, all announcing one closed port, in batches small enough for the
    // socket's buffer. The node may refuse the ones past its table's size
    // (it must not forget the ones it has instead).
    let flood_port = free_tcp_port();
    for _ in 0..22 {
        for _ in 0..50 {
            let (key, _) = fresh_key();
            send(&sealed(&key, &DEFAULT_NETWORK_KEY, flood_port, now_ms()));
        }
        // Pacing, not a timing assertion: lets the node drain its socket.
        thread::sleep(Duration::from_millis(250));
    }
    // Then the captured packet again, still well within its minute, and a
    // marker to know that the node has read it: a fresh announcement by the
    // same (already known) identity, for another port. Datagrams on
    // loopback arrive in order, so the replay is handled before it.
    send(&packet1);
    let marker_port = free_tcp_port();
    let marker_addr = format!("127.0.0.1:{marker_port}");
    // Under load the node's socket may overflow and drop a datagram, so the
    // marker (a fresh announcement each time) is repeated until it lands.
    let deadline = Instant::now() + common::DEADLINE;
    let peers = loop {
        send(&sealed(&key1, &DEFAULT_NETWORK_KEY, marker_port, now_ms()));
        thread::sleep(Duration::from_millis(300));
        let doc = sandbox.json(&home, &["peers"]);
        if doc["book"]
            .as_array()
            .is_some_and(|book| record(book, &marker_addr).is_some())
        {
            break doc;
        }
        assert!(Instant::now() < deadline, "the marker never arrived: {doc}");
    };
    let r = record(peers["book"].as_array().unwrap(), &addr1).unwrap();
    assert_eq!(
        r["last_seen_ms"].as_i64(),
        Some(seen1),
        "the replay was accepted after the flood: {r}"
    );
    node.assert_running();
}
