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

/// Offset of the signature inside an encoded message.
const SIGNATURE_AT: usize = 117;

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

/// Defect 1: a node serves a message whose signature a damaged disk
/// changed. A one-off `sync` from a fresh home ends (within the sandbox's
/// deadline) with exit 1 and an error naming the bad signature, and the
/// fresh home holds a valid prefix that checks clean.
#[test]
fn sync_ends_with_an_error_on_a_bad_signature() {
    let sandbox = Sandbox::new();
    let served = fixture_home(&sandbox, "served");
    flip_in_record(&served, 300, SIGNATURE_AT + 10, 0x08);
    let mut server = serve(&sandbox, &served);
    let fresh = sandbox.home("fresh");
    assert!(sandbox.run(&fresh, &["init"]).status.success());

    let run = sandbox.run(&fresh, &["sync", &server.addr.to_string()]);
    let line = run.one_line_error();
    assert!(line.contains("bad signature"), "{line}");

    let fsck = sandbox.json(&fresh, &["fsck"]);
    assert_eq!(fsck["problems"], serde_json::json!([]), "{fsck}");
    let held = fsck["messages"].as_u64().unwrap();
    assert!(
        held < 600,
        "the bad message and what follows it are not taken: {fsck}"
    );
    server.assert_running();
}
