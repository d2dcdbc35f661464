//! Writes the seed corpus of the fuzz targets (`fuzz/seeds/TARGET/`): valid
//! inputs made by potluck's own encoders, so that libFuzzer starts from
//! the shapes real peers and files have. Deterministic; the seeds are
//! committed, and this regenerates them:
//!
//! ```sh
//! cargo run --example fuzz_seeds
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::SigningKey;
use potluck::content::{About, Event, EventTime, KnownContent, Rsvp, RsvpStatus};
use potluck::feed::bundle::{ClockFile, write_bundle};
use potluck::feed::message::{FeedId, Message, MessageId};
use potluck::home::config::{ConfigFile, Invite, PeerAddr};
use potluck::proto::handshake::{DEFAULT_NETWORK_KEY, Handshake};
use potluck::proto::wire::{FLAG_OPEN, Packet};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("seeds")
        .join(target);
    std::fs::create_dir_all(&dir).expect("create the seed directory");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}

fn packets(list: &[Packet]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in list {
        p.encode_into(&mut out).expect("encode a packet");
    }
    out
}

fn main() {
    let key = SigningKey::from_bytes(&[1; 32]);
    let feed = FeedId(key.verifying_key().to_bytes());
    let start = EventTime::parse("start", "2031-06-01T18:00:00-04:00").expect("a time");
    let event = Event {
        tz: Some("America/New_York".into()),
        capacity: Some(10),
        location: Some("Community hall".into()),
        ..Event::new("Soup night", start)
    };
    let contents: Vec<(&str, Vec<u8>)> = vec![
        ("event", event.to_content_bytes()),
        (
            "about",
            About {
                name: "Ana".into(),
                description: None,
            }
            .to_content_bytes(),
        ),
    ];
    let first = Message::sign(
        &key,
        1,
        MessageId::default(),
        1_767_225_600_000,
        &contents[0].1,
    )
    .expect("sign");
    let rsvp = Rsvp {
        event: first.id(),
        status: RsvpStatus::Going,
        guests: 1,
        note: Some("soup!".into()),
        revision: Some(0),
    };
    let second = Message::sign(
        &key,
        2,
        first.id(),
        1_767_225_601_000,
        &rsvp.to_content_bytes(),
    )
    .expect("sign");
    let third =
        Message::sign(&key, 3, second.id(), 1_767_225_602_000, &contents[1].1).expect("sign");
    let messages = [first, second, third];

    for (name, bytes) in &contents {
        write("content", name, bytes);
    }
    write("content", "rsvp", &rsvp.to_content_bytes());
    for (i, msg) in messages.iter().enumerate() {
        write("message", &format!("m{}", i + 1), msg.bytes());
    }

    let mut bundle = Vec::new();
    write_bundle(&mut bundle, messages.to_vec()).expect("a bundle");
    write("bundle", "three", &bundle);
    let clock = ClockFile::new(BTreeMap::from([(feed, 3)]));
    write(
        "clock_file",
        "one",
        serde_json::to_string_pretty(&clock)
            .expect("json")
            .as_bytes(),
    );

    let hello = Packet::Hello {
        version: 1,
        flags: FLAG_OPEN,
        baseline: [0; 32],
    };
    let clock_packets = [
        hello.clone(),
        Packet::Clock(vec![(feed, 3), (FeedId([2; 32]), 0)]),
        Packet::ClockEnd { digest: [0; 32] },
    ];
    write("wire_packets", "clock", &packets(&clock_packets));
    write(
        "wire_packets",
        "messages",
        &packets(&[
            Packet::Message(messages[0].bytes().to_vec()),
            Packet::Ping,
            Packet::Goodbye,
        ]),
    );
    // The session target: a flag byte, then frames of (length byte, bytes).
    let mut session = vec![1u8];
    for frame in [
        packets(&clock_packets[..2]),
        packets(&clock_packets[2..]),
        packets(&[Packet::Ping]),
    ] {
        if let Ok(len) = u8::try_from(frame.len()) {
            session.push(len);
            session.extend_from_slice(&frame);
        }
    }
    write("session", "hello_clock_ping", &session);

    // Frames: a step byte, then 2-byte big-endian lengths and payloads.
    let mut frames = vec![3u8];
    for payload in [&b"hello"[..], &[0u8; 40][..]] {
        frames.extend_from_slice(&u16::try_from(payload.len()).expect("small").to_be_bytes());
        frames.extend_from_slice(payload);
    }
    write("frame", "two", &frames);

    // A dialer's first handshake message, framed as the target reads it.
    let dialer = SigningKey::from_bytes(&[2; 32]);
    let mut initiator =
        Handshake::initiator(&dialer, &DEFAULT_NETWORK_KEY, None).expect("a handshake");
    if let Ok(Some(msg1)) = initiator.next_outgoing() {
        let mut seed = u16::try_from(msg1.len())
            .expect("small")
            .to_be_bytes()
            .to_vec();
        seed.extend_from_slice(&msg1);
        write("handshake", "msg1", &seed);
    }

    let announcement = potluck::proto::discovery::seal(
        &key,
        &DEFAULT_NETWORK_KEY,
        7643,
        1_767_225_600_000,
        [3; 16],
        [4; 12],
    );
    write("discovery", "one", &announcement);

    let peer = PeerAddr::parse(&format!("{feed}@192.0.2.7:7643")).expect("an address");
    write(
        "invite",
        "public",
        Invite {
            peer,
            network: None,
            member: None,
            hubs: Vec::new(),
        }
        .to_code()
        .as_bytes(),
    );
    write("invite", "address", b"192.0.2.7:7643");

    let config = ConfigFile {
        listen: Some("0.0.0.0:7643".into()),
        peers: vec!["192.0.2.7:7643".into()],
        discovery: Some(true),
        web: Some("127.0.0.1:7645".into()),
        ..ConfigFile::default()
    };
    write(
        "config",
        "full",
        serde_json::to_string_pretty(&config)
            .expect("json")
            .as_bytes(),
    );
    println!("seeds written to fuzz/seeds/");
}
