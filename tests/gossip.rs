//! Gossip between in-process nodes: each test starts real `Node`s (own
//! temporary store, own key) listening on 127.0.0.1 with an ephemeral port,
//! connects them over TCP and checks what ends up in each store.
//!
//! Hostile peers are written here by hand from the library's sans-io parts
//! (`handshake`, `frame`, `wire`, `replicate`), so they can send exactly the
//! bytes a well-behaved node never would.
//!
//! Every wait polls with a deadline; no test asserts how fast anything is.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use common::node::{
    TestNode, event_content, feed_of, new_key, rsvp_content, unstarted_node, wait_disconnected,
    wait_until,
};
use common::{DEADLINE, now_ms};
use ed25519_dalek::{Signer, SigningKey};
use potluck::content::{About, Contact, KnownContent, RsvpStatus};
use potluck::feed::message::{FeedId, HEADER_LEN, Message, MessageId, SIGNED_LEN, signing_input};
use potluck::node::ConnectionError;
use potluck::proto::frame::{FrameDecoder, encode_frame};
use potluck::proto::handshake::{DEFAULT_NETWORK_KEY, Handshake, NetworkKey, Transport};
use potluck::proto::replicate::sim;
use potluck::proto::replicate::{Clock, Policy};
use potluck::proto::wire::{FramePacker, Packet};
use potluck::store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn about_content(name: &str) -> Vec<u8> {
    About {
        name: name.into(),
        description: None,
    }
    .to_content_bytes()
}

fn block_content(feed: FeedId) -> Vec<u8> {
    Contact {
        contact: feed,
        following: false,
        blocking: true,
    }
    .to_content_bytes()
}

/// A valid chain of `n` about messages by `key`, from sequence 1.
fn chain(key: &SigningKey, n: u64, tag: &str) -> Vec<Message> {
    let mut previous = MessageId::default();
    (1..=n)
        .map(|seq| {
            let content = about_content(&format!("{tag}{seq}"));
            let m = Message::sign(key, seq, previous, 1_700_000_000_000 + seq as i64, &content)
                .unwrap();
            previous = m.id();
            m
        })
        .collect()
}

/// A correct node that is not otherwise involved dials `node` once and gets
/// everything `node` holds: `node` still serves.
async fn assert_still_serving(node: &TestNode) {
    let probe = TestNode::start().await;
    let held = node.heads();
    let report = probe.sync_with(node).await;
    assert_eq!(report.peer, Some(node.feed()));
    assert_eq!(report.received, held.values().sum::<u64>());
    assert_eq!(probe.heads(), held);
}

// ---------------------------------------------------------------------------
// A hand-written peer.

/// Reads one frame; `Ok(None)` at end of stream.
async fn read_frame(
    stream: &mut TcpStream,
    decoder: &mut FrameDecoder,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = [0u8; 4096];
    loop {
        if let Some(frame) = decoder.next_frame().map_err(std::io::Error::other)? {
            return Ok(Some(frame));
        }
        let want = decoder.room().min(buf.len());
        let n = stream.read(&mut buf[..want]).await?;
        if n == 0 {
            return Ok(None);
        }
        assert_eq!(decoder.push(&buf[..n]), n, "read at most room() bytes");
    }
}

/// Reads (and ignores) whatever `stream` carries until the other side
/// closes it; panics if that does not happen within [`DEADLINE`].
async fn wait_for_close(stream: &mut TcpStream, what: &str) {
    let mut buf = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the node did not close {what}");
}

/// A peer that completed the handshake and speaks packets by hand.
struct RawPeer {
    stream: TcpStream,
    transport: Transport,
    decoder: FrameDecoder,
    remote: FeedId,
}

impl RawPeer {
    /// Connects to `addr` and runs the handshake as `key`.
    async fn connect(addr: SocketAddr, key: &SigningKey) -> RawPeer {
        RawPeer::connect_with(addr, key, &[]).await
    }

    /// Connects to `addr`, runs the handshake as `key`, and sends `first`
    /// in the same write as the last handshake message, as a fast dialer's
    /// bytes may arrive.
    async fn connect_with(addr: SocketAddr, key: &SigningKey, first: &[Packet]) -> RawPeer {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let mut hs = Handshake::initiator(key, &DEFAULT_NETWORK_KEY, None).unwrap();
        let mut decoder = FrameDecoder::new();
        let mut wire = Vec::new();
        while !hs.is_finished() {
            if let Some(out) = hs.next_outgoing().unwrap() {
                wire.extend(encode_frame(&out).unwrap());
                if !hs.is_finished() {
                    stream.write_all(&wire).await.unwrap();
                    wire.clear();
                }
                continue;
            }
            let frame = tokio::time::timeout(DEADLINE, read_frame(&mut stream, &mut decoder))
                .await
                .expect("handshake message within the deadline")
                .unwrap()
                .expect("the node closed the connection during the handshake");
            hs.read_incoming(&frame).unwrap();
        }
        let (transport, remote) = hs.finish().unwrap();
        let mut peer = RawPeer {
            stream,
            transport,
            decoder,
            remote,
        };
        wire.extend(peer.seal(first));
        peer.stream.write_all(&wire).await.unwrap();
        peer
    }

    /// Our `Hello`, clock and `ClockEnd`, as a correct session makes them.
    fn opening(clock: Clock) -> Vec<Packet> {
        sim::opening(&Policy::Open, clock)
    }

    /// `packets`, packed into as few frames as fit, encrypted and framed.
    fn seal(&mut self, packets: &[Packet]) -> Vec<u8> {
        let mut packer = FramePacker::new();
        for p in packets {
            packer.push(p).unwrap();
        }
        let mut wire = Vec::new();
        for plain in packer.take() {
            let sealed = self.transport.encrypt(&plain).unwrap();
            wire.extend(encode_frame(&sealed).unwrap());
        }
        wire
    }

    /// Encrypts `packets`, packed into as few frames as fit, and sends them.
    async fn send(&mut self, packets: &[Packet]) -> std::io::Result<()> {
        let wire = self.seal(packets);
        self.stream.write_all(&wire).await
    }

    /// Sends each packet in a frame of its own.
    async fn send_each(&mut self, packets: &[Packet]) -> std::io::Result<()> {
        for p in packets {
            self.send(std::slice::from_ref(p)).await?;
        }
        Ok(())
    }

    /// Reads, decrypts and decodes packets until the node closes the
    /// connection; returns what it sent. Panics after [`DEADLINE`].
    async fn read_until_closed(&mut self) -> Vec<Packet> {
        let mut packets = Vec::new();
        let closed = tokio::time::timeout(DEADLINE, async {
            while let Ok(Some(frame)) = read_frame(&mut self.stream, &mut self.decoder).await {
                let plain = self.transport.decrypt(&frame).expect("the node encrypts");
                packets.extend(Packet::decode_all(&plain).expect("the node's packets decode"));
            }
        })
        .await;
        assert!(closed.is_ok(), "the node did not close the connection");
        packets
    }

    /// Like [`RawPeer::read_until_closed`], but keeps the connection alive
    /// with a `Ping` every half second, so that the node cannot close it
    /// for going silent: whatever closes it is what the peer sent before.
    async fn read_until_closed_pinging(&mut self) {
        let closed = tokio::time::timeout(DEADLINE, async {
            let mut ping = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                tokio::select! {
                    frame = read_frame(&mut self.stream, &mut self.decoder) => match frame {
                        Ok(Some(frame)) => {
                            self.transport.decrypt(&frame).expect("the node encrypts");
                        }
                        _ => return,
                    },
                    _ = ping.tick() => {
                        if self.send(&[Packet::Ping]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the node did not close the connection");
    }
}

/// Messages 1..=5 of `key`'s feed; the fourth is replaced by `bad4`.
fn poisoned_chain(key: &SigningKey, bad4: impl FnOnce(&Message) -> Message) -> Vec<Message> {
    let mut msgs = chain(key, 5, "m");
    msgs[3] = bad4(&msgs[3]);
    msgs
}

/// The same message with one byte of its content flipped: the header's
/// content hash no longer matches.
fn tamper_content(m: &Message) -> Message {
    let mut bytes = m.bytes().to_vec();
    assert!(bytes.len() > SIGNED_LEN + 12);
    // Inside the name ("m4" → "l4"), so the JSON itself stays well-formed.
    let at = bytes.len() - 4;
    assert_eq!(bytes[at], b'm');
    bytes[at] ^= 1;
    Message::decode(bytes).unwrap()
}

/// The same header (author, sequence, chain, content) signed by another
/// key: the signature does not verify for the feed it claims.
fn forge_signature(m: &Message) -> Message {
    let other = new_key();
    let header: [u8; HEADER_LEN] = *m.header_bytes();
    let signature = other.sign(&signing_input(&header));
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(&signature.to_bytes());
    bytes.extend_from_slice(m.content().unwrap());
    let forged = Message::decode(bytes).unwrap();
    assert_eq!(forged.author(), m.author());
    assert_ne!(forged.id(), m.id());
    forged
}

/// A raw peer sends five messages of its own feed, the fourth bad; the node
/// keeps the first three and hangs up.
async fn bad_message_is_refused(bad4: fn(&Message) -> Message, one_frame: bool) {
    let a = TestNode::start().await;
    a.publish(&about_content("Ana"));
    let m_key = new_key();
    let m = feed_of(&m_key);
    let msgs = poisoned_chain(&m_key, bad4);
    let genuine4 = chain(&m_key, 4, "m").pop().unwrap();

    let mut peer = RawPeer::connect(a.addr, &m_key).await;
    assert_eq!(peer.remote, a.feed());
    let mut packets = RawPeer::opening(Clock::from([(m, 5)]));
    packets.extend(msgs.iter().map(|msg| Packet::Message(msg.bytes().to_vec())));
    // The node may hang up before it has read everything: a write error is
    // fine, the outcome is judged from its store.
    let _ = if one_frame {
        peer.send(&packets).await
    } else {
        peer.send_each(&packets).await
    };
    // The node hangs up (it may do so before it has said anything: the
    // bad message can arrive before its own Hello goes out).
    peer.read_until_closed().await;

    // Ingest happened before the hang-up.
    assert_eq!(a.head(&m), 3, "exactly the valid prefix is stored");
    for (i, msg) in msgs.iter().enumerate() {
        let held = a.store().message(&msg.id()).unwrap();
        assert_eq!(held.is_some(), i < 3, "message {} of the feed", i + 1);
    }
    assert_eq!(a.store().message(&genuine4.id()).unwrap(), None);
    assert_eq!(
        a.store().feed_messages(&m, 1).count(),
        3,
        "nothing after the bad message"
    );
    assert_eq!(a.store().fsck().unwrap().problems, Vec::<String>::new());
    wait_disconnected(&a, &m).await;
    assert_still_serving(&a).await;
}

// ---------------------------------------------------------------------------
// 1. Two nodes sync in both directions.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sync_both_ways() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    let event = a.publish(&event_content("Picnic", None)).id();
    b.publish(&about_content("Bea"));
    b.publish(&rsvp_content(event, RsvpStatus::Going));

    let report = b.sync_with(&a).await;
    assert_eq!(report.peer, Some(a.feed()));
    assert_eq!(report.received, 1);
    assert_eq!(report.sent, 2);
    assert!(report.bytes_in > 0 && report.bytes_out > 0);

    // With `once`, the dialer returns only when it holds everything.
    let want = BTreeMap::from([(a.feed(), 1), (b.feed(), 2)]);
    assert_eq!(b.heads(), want);
    let state = b.store().event(&event).unwrap().expect("B knows A's event");
    assert_eq!(state.author, a.feed());
    assert_eq!(state.event.title, "Picnic");
    assert_eq!(b.store().tally(&event).unwrap().going, 1);

    // The other side ingests what it was sent.
    wait_until("A to hold B's feed", || a.heads() == want).await;
    assert_eq!(
        a.store().about(&b.feed()).unwrap().map(|x| x.name),
        Some("Bea".to_owned())
    );
    let rsvps = a.store().rsvps(&event).unwrap();
    assert_eq!(rsvps.len(), 1);
    assert_eq!(rsvps[0].0, b.feed());
    assert_eq!(rsvps[0].1.status, RsvpStatus::Going);
    assert_eq!(a.store().tally(&event).unwrap().going, 1);
}

// ---------------------------------------------------------------------------
// 2. A line A – B – C: messages travel through the middle node.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_a_line_of_three() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    let c = TestNode::start().await;
    a.keep_connected_to(&b, true);
    c.keep_connected_to(&b, false);
    wait_until("B to have both neighbours", || {
        b.is_connected_to(&a.feed()) && b.is_connected_to(&c.feed())
    })
    .await;

    let event = a.publish(&event_content("Barn dance", None)).id();
    wait_until("C to learn of the event through B", || {
        c.store().event(&event).unwrap().is_some()
    })
    .await;
    assert_eq!(c.store().event(&event).unwrap().unwrap().author, a.feed());
    assert!(!a.is_connected_to(&c.feed()) && !c.is_connected_to(&a.feed()));

    c.publish(&rsvp_content(event, RsvpStatus::Going));
    wait_until("A to see C's RSVP through B", || {
        a.store().tally(&event).unwrap().going == 1
    })
    .await;
    let rsvps = a.store().rsvps(&event).unwrap();
    assert_eq!(rsvps.len(), 1);
    assert_eq!(rsvps[0].0, c.feed());
    assert_eq!(rsvps[0].1.status, RsvpStatus::Going);
    assert_eq!(a.head(&c.feed()), 1);
    assert_eq!(b.store().tally(&event).unwrap().going, 1);
    // Still only the two links.
    assert!(!a.is_connected_to(&c.feed()));
}

// ---------------------------------------------------------------------------
// 3. A new message is pushed over the open connection.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_messages_are_pushed_without_reconnecting() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    a.publish(&about_content("Ana"));
    b.keep_connected_to(&a, true);
    wait_until("B to be connected and in sync", || {
        b.is_connected_to(&a.feed()) && b.head(&a.feed()) == 1
    })
    .await;
    let before = b.node.peers();
    assert_eq!(before.len(), 1);
    assert!(before[0].outbound);
    let a_side = a.node.peers();
    assert_eq!(a_side.len(), 1);
    assert!(!a_side[0].outbound);

    let event = a.publish(&event_content("Potluck", None)).id();
    wait_until("B to receive the new event", || {
        b.store().event(&event).unwrap().is_some()
    })
    .await;
    assert_eq!(b.head(&a.feed()), 2);

    let after = b.node.peers();
    assert_eq!(after.len(), 1, "still one connection");
    assert_eq!(after[0].feed, a.feed());
    assert_eq!(
        after[0].connected_since_ms, before[0].connected_since_ms,
        "the same connection carried the new message"
    );
    let a_after = a.node.peers();
    assert_eq!(a_after.len(), 1);
    assert_eq!(a_after[0].connected_since_ms, a_side[0].connected_since_ms);
    // The counters move just after the store: both messages went over
    // this one connection.
    wait_until("the connection to count both messages", || {
        let (a_side, b_side) = (a.node.peers(), b.node.peers());
        a_side.len() == 1 && a_side[0].sent == 2 && b_side.len() == 1 && b_side[0].received == 2
    })
    .await;
    assert_eq!(
        b.node.peers()[0].connected_since_ms,
        before[0].connected_since_ms
    );
}

// ---------------------------------------------------------------------------
// 4. Later syncs send only what is new, and little else.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_syncs_send_only_what_is_new() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    let text = "Bring a dish to share. ".repeat(25);
    for i in 0..50 {
        a.publish(&event_content(&format!("Event {i}"), Some(text.clone())));
    }
    b.publish(&about_content("Bea"));

    let first = b.sync_with(&a).await;
    assert_eq!((first.received, first.sent), (50, 1));
    assert_eq!(b.head(&a.feed()), 50);
    wait_until("A to hold B's message", || a.head(&b.feed()) == 1).await;
    wait_disconnected(&a, &b.feed()).await;

    for i in 50..53 {
        a.publish(&event_content(&format!("Event {i}"), Some(text.clone())));
    }
    let second = b.sync_with(&a).await;
    assert_eq!((second.received, second.sent), (3, 0), "{second:?}");
    assert_eq!(b.head(&a.feed()), 53);
    assert!(
        second.bytes_in * 5 < first.bytes_in,
        "the second sync read {} bytes, the first {}",
        second.bytes_in,
        first.bytes_in
    );
    wait_disconnected(&a, &b.feed()).await;

    // Nothing new: the handshake, two clock diffs that are empty, goodbye.
    let third = b.sync_with(&a).await;
    assert_eq!((third.received, third.sent), (0, 0), "{third:?}");
    assert!(third.bytes_in < 1_000, "{third:?}");
    assert!(third.bytes_out < 1_000, "{third:?}");
    assert_eq!(b.head(&a.feed()), 53);
    assert_eq!(a.head(&b.feed()), 1);
}

// ---------------------------------------------------------------------------
// 5. Another network key: no session at all.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_another_network_is_refused() {
    let a = TestNode::start().await;
    a.publish(&about_content("Ana"));
    let b = TestNode::start_on(NetworkKey([7; 32])).await;
    b.publish(&about_content("Bea"));

    for peer in [a.plain_addr(), a.pinned_addr()] {
        let result = tokio::time::timeout(DEADLINE, b.node.clone().dial(&peer, true))
            .await
            .expect("the dial ends");
        let err = result.expect_err("a dial to another network fails");
        assert!(
            matches!(err, ConnectionError::HandshakeRejected),
            "the responder hangs up on message 1: {err}"
        );
    }
    assert!(a.node.peers().is_empty());
    assert!(b.node.peers().is_empty());
    assert_eq!(a.heads(), BTreeMap::from([(a.feed(), 1)]));
    assert_eq!(b.heads(), BTreeMap::from([(b.feed(), 1)]));

    // The reverse direction fails the same way.
    let reverse = tokio::time::timeout(DEADLINE, a.node.clone().dial(&b.plain_addr(), true))
        .await
        .expect("the dial ends");
    assert!(
        matches!(reverse, Err(ConnectionError::HandshakeRejected)),
        "{reverse:?}"
    );
    assert_eq!(b.heads(), BTreeMap::from([(b.feed(), 1)]));

    assert_still_serving(&a).await;
}

// ---------------------------------------------------------------------------
// 6. A peer that sends an invalid message is cut off after the valid prefix.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_message_ends_the_session_after_the_valid_prefix() {
    bad_message_is_refused(tamper_content, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_message_in_its_own_frame_ends_the_session() {
    bad_message_is_refused(tamper_content, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_signature_ends_the_session_after_the_valid_prefix() {
    bad_message_is_refused(forge_signature, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_signature_in_its_own_frame_ends_the_session() {
    bad_message_is_refused(forge_signature, false).await;
}

/// A forged signature on the last message a peer sends: nothing comes
/// after it that could end the session another way, so only the bad
/// signature itself can make the node hang up (issue 14, defect 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_signature_on_the_last_message_ends_the_session() {
    let a = TestNode::start().await;
    let m_key = new_key();
    let m = feed_of(&m_key);
    let mut msgs = chain(&m_key, 4, "m");
    msgs[3] = forge_signature(&msgs[3]);
    let mut peer = RawPeer::connect(a.addr, &m_key).await;
    let mut packets = RawPeer::opening(Clock::from([(m, 4)]));
    packets.extend(msgs.iter().map(|msg| Packet::Message(msg.bytes().to_vec())));
    let _ = peer.send(&packets).await;
    peer.read_until_closed_pinging().await;
    assert_eq!(a.head(&m), 3, "exactly the valid prefix is stored");
    assert_eq!(a.store().message(&msgs[3].id()).unwrap(), None);
    wait_disconnected(&a, &m).await;
    assert_still_serving(&a).await;
}

/// A peer offers the next message of the node's own feed, signed by the
/// peer's key: the node hangs up and its feed is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_our_own_feed_signed_by_another_key_ends_the_session() {
    let a = TestNode::start().await;
    let first = a.publish(&about_content("Ana"));
    let me = a.feed();
    // A header of our feed at sequence 2, correctly chained, signed by a
    // stranger: only the signature is wrong.
    let genuine = Message::sign(&a.key, 2, first.id(), now_ms(), &about_content("Eve")).unwrap();
    let forged = forge_signature(&genuine);
    assert_eq!(forged.author(), me);
    let stranger = new_key();
    let mut peer = RawPeer::connect(a.addr, &stranger).await;
    let mut packets = RawPeer::opening(Clock::from([(me, 2)]));
    packets.push(Packet::Message(forged.bytes().to_vec()));
    let _ = peer.send(&packets).await;
    peer.read_until_closed_pinging().await;
    assert_eq!(a.head(&me), 1, "our feed did not move");
    assert_eq!(a.store().message(&forged.id()).unwrap(), None);
    wait_disconnected(&a, &feed_of(&stranger)).await;
    assert_still_serving(&a).await;
}

/// Content at the edges of the content rule (a number beyond a double, a
/// surrogate pair, the deepest nesting allowed) is valid, so it replicates
/// like any other message (issue 14, defect 9).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_at_the_edges_of_the_json_rule_replicates() {
    let a = TestNode::start().await;
    let depth = potluck::feed::validate::MAX_CONTENT_DEPTH - 1;
    let contents = [
        r#"{"type":"note","n":1e400}"#.to_owned(),
        r#"{"type":"note","text":"\ud83c\udf72"}"#.to_owned(),
        format!(
            r#"{{"type":"note","deep":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        ),
    ];
    for content in &contents {
        a.publish(content.as_bytes());
    }
    let b = TestNode::start().await;
    let report = b.sync_with(&a).await;
    assert_eq!(report.received, contents.len() as u64);
    assert_eq!(b.head(&a.feed()), contents.len() as u64);
}

/// Issue 14, defect 2: X holds one history of an author's feed, Y another
/// (they share the first five messages). A sync between them records the
/// fork, keeps X's history, and still brings every other feed Y holds; a
/// second sync does the same without failing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_feed_does_not_stop_the_other_feeds() {
    let x = TestNode::start().await;
    let y = TestNode::start().await;
    let author = new_key();
    let forked = feed_of(&author);
    let a = chain(&author, 10, "a");
    let mut b: Vec<Message> = a[..5].to_vec();
    for seq in 6..=12u64 {
        let previous = b.last().unwrap().id();
        let content = about_content(&format!("b{seq}"));
        b.push(Message::sign(&author, seq, previous, seq as i64, &content).unwrap());
    }
    x.store().ingest(a.clone()).unwrap();
    y.store().ingest(b.clone()).unwrap();
    let others: Vec<SigningKey> = (0..3).map(|_| new_key()).collect();
    for (i, key) in others.iter().enumerate() {
        y.store().ingest(chain(key, 100, &format!("o{i}"))).unwrap();
    }

    for round in 0..2 {
        let report = x.sync_with(&y).await;
        wait_disconnected(&x, &y.feed()).await;
        for key in &others {
            assert_eq!(
                x.head(&feed_of(key)),
                100,
                "round {round}: every other feed"
            );
        }
        assert_eq!(x.head(&forked), 10, "round {round}: X keeps its history");
        assert_eq!(
            x.store().message(&a[9].id()).unwrap().map(|m| m.id()),
            Some(a[9].id())
        );
        if round == 0 {
            assert_eq!(report.received, 300);
        }
    }
    let proofs = x.store().forks(&forked).unwrap();
    assert_eq!(proofs.len(), 1, "{proofs:?}");
    // Where the histories meet: X's #10 and Y's #11, whose previous is
    // not X's #10.
    assert_eq!(proofs[0].sequence, 11);
    assert_eq!(proofs[0].kept, a[9].signed_bytes());
    assert_eq!(proofs[0].rival, b[10].signed_bytes());
    assert_eq!(x.store().forked_feeds().unwrap(), vec![(forked, 11)]);
    assert_eq!(x.store().fsck().unwrap().problems, Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// Issue 14, defect 4: connection starvation.

/// Many silent sockets from one address (127.0.2.2) take only that
/// address's few slots: a real peer from another address still syncs at
/// its first try, and is not told it is "on another network". (The peer
/// dials from 127.0.0.1, another /24: the unknown addresses of one /24
/// share 8 handshake slots, which the silent sockets alone can fill.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_from_one_address_do_not_lock_out_a_peer() {
    let a = TestNode::start().await;
    a.publish(&about_content("Ana"));
    let mut idle = Vec::new();
    for _ in 0..80 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.2.2:0".parse().unwrap()).unwrap();
        idle.push(socket.connect(a.addr).await.unwrap());
    }
    let b = TestNode::start().await;
    let report = b.sync_with(&a).await;
    assert_eq!(report.received, 1);
    drop(idle);
}

/// Raw peers that authenticate and then only ping hold every established
/// slot; once they have been idle for the limit, a real peer takes the
/// slot of the idlest one, which is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_only_peers_make_room_for_a_real_one() {
    let limits = potluck::node::limits::Limits {
        handshaking: 8,
        established: 3,
        per_address: 8,
        evict_idle: std::time::Duration::from_millis(300),
        // Every peer here is unknown: no slot is kept for known ones.
        reserved: 0,
        ..potluck::node::limits::Limits::default()
    };
    let a = TestNode::start_limited(limits).await;
    a.publish(&about_content("Ana"));
    let mut squatters = Vec::new();
    for _ in 0..3 {
        let key = new_key();
        let mut peer = RawPeer::connect(a.addr, &key).await;
        let opening = RawPeer::opening(Clock::new());
        peer.send(&opening).await.unwrap();
        squatters.push((feed_of(&key), peer));
    }
    let squatter_feeds: Vec<FeedId> = squatters.iter().map(|(f, _)| *f).collect();
    wait_until("the squatters to be connected", || {
        squatter_feeds
            .iter()
            .all(|f| a.node.peers().iter().any(|p| p.feed == *f))
    })
    .await;
    // The squatters keep pinging in the background; the real peer retries
    // while the node is busy (the squatters are not idle long enough yet).
    let pingers: Vec<_> = squatters
        .into_iter()
        .map(|(_, mut peer)| tokio::spawn(async move { peer.read_until_closed_pinging().await }))
        .collect();
    let b = TestNode::start().await;
    let deadline = std::time::Instant::now() + DEADLINE;
    let report = loop {
        let dialed =
            tokio::time::timeout(DEADLINE, b.node.clone().dial(&a.pinned_addr(), true)).await;
        match dialed.expect("a dial ends") {
            Ok(report) => break report,
            Err(ConnectionError::Busy) => {
                assert!(std::time::Instant::now() < deadline, "never got a slot");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("sync failed: {e}"),
        }
    };
    assert_eq!(report.received, 1);
    // One squatter was closed to make room (its task ends when it is).
    wait_until("a squatter to be closed", || {
        pingers.iter().any(|p| p.is_finished())
    })
    .await;
    assert!(
        pingers.iter().filter(|p| !p.is_finished()).count() >= 2,
        "only the idlest one goes"
    );
}

/// With every slot taken by peers that are not idle, a newcomer is told
/// the node is busy: an honest error, not "another network".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_says_it_is_busy() {
    let limits = potluck::node::limits::Limits {
        handshaking: 8,
        established: 1,
        per_address: 8,
        evict_idle: DEADLINE * 10,
        // Every peer here is unknown: no slot is kept for known ones.
        reserved: 0,
        ..potluck::node::limits::Limits::default()
    };
    let a = TestNode::start_limited(limits).await;
    let b = TestNode::start().await;
    b.keep_connected_to(&a, true);
    wait_until("b to be connected", || a.node.peers().len() == 1).await;
    let c = TestNode::start().await;
    let dialed = tokio::time::timeout(DEADLINE, c.node.clone().dial(&a.pinned_addr(), true)).await;
    match dialed.expect("the dial ends") {
        Err(ConnectionError::Busy) => {}
        other => panic!("expected busy, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_before_the_clock_is_a_protocol_violation() {
    let a = TestNode::start().await;
    let m_key = new_key();
    let m = feed_of(&m_key);
    let mut peer = RawPeer::connect(a.addr, &m_key).await;
    let msg = chain(&m_key, 1, "m").remove(0);
    let _ = peer.send(&[Packet::Message(msg.bytes().to_vec())]).await;
    peer.read_until_closed().await;
    assert_eq!(a.head(&m), 0);
    assert_still_serving(&a).await;
}

/// A dialer's first packets may arrive in the same read as its last
/// handshake message; the responder must keep those bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_right_behind_the_handshake_are_not_lost() {
    let a = TestNode::start().await;
    a.publish(&about_content("Ana"));
    let m_key = new_key();
    let m = feed_of(&m_key);
    let mut first = RawPeer::opening(Clock::from([(m, 1)]));
    first.extend(
        chain(&m_key, 1, "m")
            .into_iter()
            .map(|msg| Packet::Message(msg.into_bytes())),
    );
    let mut peer = RawPeer::connect_with(a.addr, &m_key, &first).await;
    wait_until(
        "A to store the message sent right behind the handshake",
        || a.head(&m) == 1,
    )
    .await;
    assert!(a.is_connected_to(&m));
    peer.send(&[Packet::Goodbye]).await.unwrap();
    peer.read_until_closed().await;
}

// ---------------------------------------------------------------------------
// 7. Garbage and stalled connections hurt nobody else.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_stalled_peers_do_not_stop_the_node() {
    let a = TestNode::start().await;
    a.publish(&about_content("Ana"));
    a.publish(&event_content("Still here", None));

    let connect = || TcpStream::connect(a.addr);
    // Plain garbage that happens to frame as a 48-byte first message.
    let mut garbage = connect().await.unwrap();
    let mut bytes = vec![0, 48];
    bytes.extend((0..48u8).map(|i| i.wrapping_mul(37) ^ 0x5a));
    garbage.write_all(&bytes).await.unwrap();
    // A maximal frame of garbage: the length is valid, the content is not a
    // handshake message.
    let mut oversize = connect().await.unwrap();
    let mut frame = vec![0xff, 0xff];
    frame.extend(std::iter::repeat_n(0xa5, 65_535));
    let _ = oversize.write_all(&frame).await;
    // An empty frame, which nothing legitimate sends.
    let mut empty = connect().await.unwrap();
    empty.write_all(&[0, 0, 1, 2, 3]).await.unwrap();
    // Connects and says nothing.
    let mut silent = connect().await.unwrap();
    // Half of a genuine first handshake message.
    let mut half = connect().await.unwrap();
    let mut hs = Handshake::initiator(&new_key(), &DEFAULT_NETWORK_KEY, None).unwrap();
    let msg1 = encode_frame(&hs.next_outgoing().unwrap().unwrap()).unwrap();
    half.write_all(&msg1[..msg1.len() / 2]).await.unwrap();
    // A genuine first message, then silence after the node's answer.
    let mut mute = connect().await.unwrap();
    let mut hs = Handshake::initiator(&new_key(), &DEFAULT_NETWORK_KEY, None).unwrap();
    mute.write_all(&encode_frame(&hs.next_outgoing().unwrap().unwrap()).unwrap())
        .await
        .unwrap();
    let mut decoder = FrameDecoder::new();
    let msg2 = tokio::time::timeout(DEADLINE, read_frame(&mut mute, &mut decoder))
        .await
        .expect("message 2 arrives")
        .unwrap()
        .expect("message 2 arrives");
    hs.read_incoming(&msg2).unwrap();
    assert_eq!(hs.remote_feed(), Some(a.feed()));
    // A finished handshake followed by a frame that does not decrypt.
    let mut undecryptable = RawPeer::connect(a.addr, &new_key()).await;
    let _ = undecryptable
        .stream
        .write_all(&encode_frame(&[0x42; 4000]).unwrap())
        .await;
    // A finished handshake followed by packets that do not decode.
    let mut undecodable = RawPeer::connect(a.addr, &new_key()).await;
    let sealed = undecodable.transport.encrypt(&[99, 0, 0]).unwrap();
    let _ = undecodable
        .stream
        .write_all(&encode_frame(&sealed).unwrap())
        .await;

    // While all of those are open, a correct peer syncs.
    assert_still_serving(&a).await;
    let c = TestNode::start().await;
    c.publish(&about_content("Cy"));
    let report = c.sync_with(&a).await;
    assert_eq!((report.received, report.sent), (2, 1));
    wait_until("A to hold C's message", || a.head(&c.feed()) == 1).await;

    // The node hangs up on each of them (the stalled ones after the
    // handshake time limit), and none of them became a peer.
    wait_for_close(&mut garbage, "the garbage connection").await;
    wait_for_close(&mut oversize, "the oversize frame").await;
    wait_for_close(&mut empty, "the empty frame").await;
    wait_for_close(&mut silent, "the silent connection").await;
    wait_for_close(&mut half, "the half frame").await;
    wait_for_close(&mut mute, "the stalled handshake").await;
    undecryptable.read_until_closed().await;
    undecodable.read_until_closed().await;
    wait_until("A to have no peers left", || a.node.peers().is_empty()).await;
    assert_eq!(
        a.heads(),
        BTreeMap::from([(a.feed(), 2), (c.feed(), 1)]),
        "nothing but the correct peer's message was stored"
    );
    assert_still_serving(&a).await;
}

// ---------------------------------------------------------------------------
// 8. A blocked feed is never stored.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_feed_offered_by_a_peer_is_not_taken() {
    let a = TestNode::start().await;
    let x_key = new_key();
    let x = feed_of(&x_key);
    a.publish(&block_content(x));

    // B holds X's feed and its own.
    let b = TestNode::start().await;
    let report = b.store().ingest(chain(&x_key, 3, "x")).unwrap();
    assert_eq!(report.accepted.len(), 3);
    b.publish(&about_content("Bea"));

    let sync = b.sync_with(&a).await;
    assert_eq!(sync.received, 1, "A's block message");
    assert_eq!(sync.sent, 1, "only B's own message, not X's");
    wait_until("A to hold B's message", || a.head(&b.feed()) == 1).await;
    assert_eq!(a.store().head(&x).unwrap(), None);

    // X itself does not get its feed in either.
    let x_node = {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("store")).unwrap());
        store.ingest(chain(&x_key, 3, "x")).unwrap();
        let node = unstarted_node(store, x_key.clone(), DEFAULT_NETWORK_KEY);
        (node, dir)
    };
    let report = tokio::time::timeout(DEADLINE, x_node.0.clone().dial(&a.pinned_addr(), true))
        .await
        .expect("the sync ends")
        .expect("a blocked feed may still connect");
    assert_eq!(report.sent, 0, "A's clock marks X unwanted");
    wait_disconnected(&a, &x).await;
    assert_eq!(a.store().head(&x).unwrap(), None);
    x_node.0.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_feed_pushed_unasked_is_dropped() {
    let a = TestNode::start().await;
    let x_key = new_key();
    let x = feed_of(&x_key);
    a.publish(&block_content(x));

    let m_key = new_key();
    let m = feed_of(&m_key);
    let mut peer = RawPeer::connect(a.addr, &m_key).await;
    let mut packets = RawPeer::opening(Clock::from([(m, 1), (x, 3)]));
    packets.extend(
        chain(&x_key, 3, "x")
            .into_iter()
            .map(|msg| Packet::Message(msg.into_bytes())),
    );
    // A message of our own feed after X's: once it is stored, X's were seen.
    packets.extend(
        chain(&m_key, 1, "m")
            .into_iter()
            .map(|msg| Packet::Message(msg.into_bytes())),
    );
    peer.send(&packets).await.unwrap();
    wait_until("A to store the pusher's own message", || a.head(&m) == 1).await;
    assert_eq!(a.store().head(&x).unwrap(), None);
    assert!(
        a.is_connected_to(&m),
        "dropping a blocked feed is not an error"
    );
    peer.send(&[Packet::Goodbye]).await.unwrap();
    peer.read_until_closed().await;
    assert_eq!(a.store().head(&x).unwrap(), None);
}

/// A block published while a connection is up must apply to that
/// connection too, not only to the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_blocked_during_a_session_is_not_taken() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    a.keep_connected_to(&b, true);
    wait_until("A and B to connect", || a.is_connected_to(&b.feed())).await;

    let x_key = new_key();
    let x = feed_of(&x_key);
    a.publish(&block_content(x));
    wait_until("B to hold A's block", || b.head(&a.feed()) == 1).await;
    let since = a.node.peers()[0].connected_since_ms;

    // X publishes and hands its messages to B, which has no reason to
    // refuse them and passes them on live.
    let x_node = {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("store")).unwrap());
        let node = unstarted_node(store, x_key.clone(), DEFAULT_NETWORK_KEY);
        (node, dir)
    };
    for i in 0..2 {
        x_node
            .0
            .publish(&about_content(&format!("x{i}")), now_ms())
            .unwrap();
    }
    tokio::time::timeout(DEADLINE, x_node.0.clone().dial(&b.pinned_addr(), true))
        .await
        .expect("the sync ends")
        .expect("X syncs with B");
    wait_until("B to hold X's messages", || b.head(&x) == 2).await;
    // A marker after X's messages on the same B → A stream.
    b.publish(&about_content("Bea"));
    wait_until("A to get B's marker", || a.head(&b.feed()) == 1).await;
    assert_eq!(a.node.peers()[0].connected_since_ms, since);
    assert_eq!(
        a.store().head(&x).unwrap(),
        None,
        "A stored a feed it blocks"
    );
    x_node.0.shutdown();
}

// ---------------------------------------------------------------------------
// One live source per feed.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_feed_comes_live_from_one_peer_and_a_lost_source_is_replaced() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    let c = TestNode::start().await;
    // A triangle; C connects to B first, so B is C's default source.
    b.keep_connected_to(&a, true);
    wait_until("B to connect to A", || b.is_connected_to(&a.feed())).await;
    c.keep_connected_to(&b, true);
    wait_until("C to connect to B", || c.is_connected_to(&b.feed())).await;
    c.keep_connected_to(&a, true);
    wait_until("C to connect to A", || c.is_connected_to(&a.feed())).await;

    let rounds = 20u64;
    for n in 1..=rounds {
        a.publish(&about_content(&format!("Ana {n}")));
        wait_until("C to get the message", || c.head(&a.feed()) == n).await;
    }
    // Flooding would bring C nearly every message twice (from A and via B).
    let dups = c.node.stats().duplicates;
    assert!(dups * 2 < rounds, "C got {dups} of {rounds} messages twice");

    // C's source goes away: A's feed must keep coming, now from A.
    let b_feed = b.feed();
    drop(b);
    wait_disconnected(&c, &b_feed).await;
    for n in rounds + 1..=rounds + 5 {
        a.publish(&about_content(&format!("Ana {n}")));
    }
    wait_until("C to get the messages after losing B", || {
        c.head(&a.feed()) == rounds + 5
    })
    .await;
}

/// One message each of `n` new feeds.
fn new_feeds(n: usize) -> Vec<Message> {
    (0..n)
        .flat_map(|i| chain(&new_key(), 1, &format!("stranger feed {i} ")))
        .collect()
}

/// Feeds `node` holds, its own left out.
fn feeds_held(node: &TestNode) -> usize {
    let me = node.feed();
    node.store()
        .feeds()
        .unwrap()
        .iter()
        .filter(|(f, _)| *f != me)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_brings_a_bounded_number_of_new_feeds() {
    // A small quota, so that the test is light (the default is 1,000).
    let limit = 20;
    let a = TestNode::start().await;
    a.node.set_quota_limits(potluck::proto::quota::QuotaLimits {
        new_feeds_per_peer_per_hour: limit as u32,
        ..Default::default()
    });
    let stranger = TestNode::start().await;
    let (report, _) = stranger
        .node
        .ingest_messages(new_feeds(limit + 30))
        .unwrap();
    assert_eq!(report.accepted.len(), limit + 30);
    // The stranger dials and offers everything it holds: the node takes
    // new feeds up to the quota and tells it it does not want the rest.
    stranger.keep_connected_to(&a, true);
    let me = stranger.feed();
    wait_until("the node to be caught up with the stranger", || {
        a.node.peers().iter().any(|p| p.feed == me && p.caught_up) && feeds_held(&a) >= limit
    })
    .await;
    assert_eq!(feeds_held(&a), limit);
    assert_still_serving(&a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_huge_clock_ends_the_session_and_leaves_no_memory() {
    let a = TestNode::start().await;
    let key = new_key();
    let max = potluck::proto::quota::QuotaLimits::default().clock_entries_per_peer;
    // A clock naming more feeds than a stranger may (all made up).
    let clock: Clock = (0..max as u32 + 10)
        .map(|i| (FeedId(blake3::hash(&i.to_be_bytes()).into()), 1))
        .collect();
    let mut peer = RawPeer::connect(a.addr, &key).await;
    peer.send(&RawPeer::opening(clock)).await.unwrap();
    peer.read_until_closed().await;
    wait_disconnected(&a, &feed_of(&key)).await;
    assert_eq!(a.store().peer_memory(&feed_of(&key)).unwrap(), None);
    assert_still_serving(&a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_memory_of_peers_expires() {
    let a = TestNode::start().await;
    // Memory of a peer saved before its age was recorded (an older node,
    // or a peer gone for good): it counts as saved long ago.
    let gone = feed_of(&new_key());
    a.store().set_peer_memory(&gone, &[0; 8]).unwrap();
    let b = TestNode::start().await;
    b.publish(&about_content("b"));
    // A syncs with B (a peer it chose, so A keeps its memory of B).
    a.sync_settled(&b).await;
    // Saving B's memory trims the rest: B's is kept, the old one is gone.
    assert!(a.store().peer_memory(&b.feed()).unwrap().is_some());
    assert_eq!(a.store().peer_memory(&gone).unwrap(), None);
    let kept = a.store().kept_peer_memory().unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].peer, b.feed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_one_off_sync_leaves_no_memory() {
    // Memory of a stranger's one-off sync would be written at every such
    // session, and grow with every feed we hold, for a peer that may
    // never come back (the churn bench's node grew by 150 KB a session).
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    b.publish(&about_content("b"));
    b.sync_settled(&a).await;
    assert_eq!(a.head(&b.feed()), 1, "A stored the stranger's message");
    wait_disconnected(&a, &b.feed()).await;
    assert_eq!(a.store().peer_memory(&b.feed()).unwrap(), None);
    // The syncing side chose its peer, and remembers it.
    assert!(b.store().peer_memory(&a.feed()).unwrap().is_some());
}

/// A commit of thousands of messages (a sync's) is announced once per
/// feed, with its new head: one notice per message overran the node's
/// channel (4,096), and every connection that fell behind read every
/// feed's head from the store again.
#[test]
fn a_large_append_is_announced_once_per_feed_with_its_new_head() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("store")).unwrap());
    let node = unstarted_node(store, new_key(), DEFAULT_NETWORK_KEY);
    let mut events = node.subscribe();
    let (ana, ben) = (new_key(), new_key());
    let mut msgs = chain(&ana, 3000, "ana");
    msgs.extend(chain(&ben, 3000, "ben"));
    let (report, dropped) = node.ingest_messages(msgs).unwrap();
    assert_eq!((report.accepted.len(), dropped), (6000, 0));
    let mut appended = Vec::new();
    loop {
        match events.try_recv() {
            Ok(potluck::node::NodeEvent::Appended(feed, sequence)) => {
                appended.push((feed, sequence))
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => break,
            Err(e) => panic!("the subscriber missed notices: {e:?}"),
        }
    }
    assert_eq!(appended, vec![(feed_of(&ana), 3000), (feed_of(&ben), 3000)]);
}

/// Each notice of changed events names at most `MAX_NAMED_EVENTS`: a
/// commit that touched more says only that many changed. The node's
/// channel keeps a notice until every subscriber read it, so a named list
/// of a bulk sync's thousands of events would stay in memory per notice.
#[test]
fn a_commit_that_changes_many_events_says_so_without_naming_them() {
    use potluck::node::{MAX_NAMED_EVENTS, NodeEvent};
    use tokio::sync::broadcast::error::TryRecvError;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("store")).unwrap());
    let node = unstarted_node(store, new_key(), DEFAULT_NETWORK_KEY);
    let mut events = node.subscribe();
    let organizer = new_key();
    let many = MAX_NAMED_EVENTS as u64 + 1;
    let mut previous = MessageId::default();
    let mut announcements = Vec::new();
    for seq in 1..=many + 3 {
        let content = event_content(&format!("event {seq}"), None);
        let m = Message::sign(&organizer, seq, previous, now_ms(), &content).unwrap();
        previous = m.id();
        announcements.push(m);
    }
    let last_three = announcements.split_off(many as usize);
    let mut named: Vec<MessageId> = last_three.iter().map(Message::id).collect();
    let mut notices = |msgs: Vec<Message>| {
        let (report, dropped) = node.ingest_messages(msgs).unwrap();
        assert_eq!(dropped, 0);
        assert!(report.rejected.is_none());
        let mut changed = Vec::new();
        loop {
            match events.try_recv() {
                Ok(NodeEvent::EventsChanged(ids)) => changed.push(Some(ids.to_vec())),
                Ok(NodeEvent::ManyEventsChanged) => changed.push(None),
                Ok(_) => {}
                Err(TryRecvError::Empty) => break,
                Err(e) => panic!("the subscriber missed notices: {e:?}"),
            }
        }
        changed
    };
    assert_eq!(
        notices(announcements),
        vec![None],
        "{many} events: not named"
    );
    let mut got = notices(last_three);
    let mut got_ids = got.pop().flatten().expect("three events are named");
    assert!(got.is_empty());
    got_ids.sort();
    named.sort();
    assert_eq!(got_ids, named);
}
