//! Harness shared by the integration tests. Every test binary declares
//! `mod common;` and uses the parts it needs:
//!
//! - [`sandbox`]: drives the real `potluck` binary in temporary homes with
//!   a clean environment (no inherited `POTLUCK_HOME`, `POTLUCK_LOG`, …),
//!   every run and every wait bounded by [`DEADLINE`], and a guard that
//!   kills any `serve` a failing test leaves behind;
//! - [`node`]: in-process nodes listening on 127.0.0.1 with ephemeral
//!   ports, and builders for event and RSVP content;
//! - [`chrome`]: headless Chromium through ChromeDriver, for the browser
//!   tests;
//! - [`flood`]: a handshake flood from many loopback addresses;
//! - [`nat`]: two homes behind masquerading routers and a hub, in network
//!   namespaces, for the hub tests that cross real NATs;
//! - [`vectors`]: the message test vectors of `tests/vectors/`;
//! - [`http`]: plain HTTP/1.1 requests to a page `serve` runs;
//! - [`public`]: a hub with public pages and a member's event, for the
//!   tests of answers from a browser;
//! - [`guest`]: a guest's key and feed, signed as a browser signs them,
//!   for the tests (and the bench) of answers from a browser;
//! - [`format2`]: a store of the format before the position index, written
//!   directly, for tests of the upgrade;
//! - [`format3`]: a store of the format before `groups.log`, for tests of
//!   the upgrade to format 4.
//!
//! Not every test binary uses every helper, hence the `dead_code` allowance.

#![allow(dead_code)]

pub mod chrome;
pub mod flood;
pub mod format2;
pub mod format3;
pub mod guest;
pub mod http;
pub mod nat;
pub mod node;
pub mod public;
pub mod raw;
pub mod sandbox;
pub mod vectors;

use std::time::Duration;

use potluck::store::Store;

/// A closed store's sled database and tree, opened directly, for tests
/// that damage or inspect what the store keeps there.
/// sled's lock outlives a dropped database by a moment (its flusher
/// thread lets go last), so the open waits up to 10 s for it, as the
/// store's own open does.
pub fn raw_tree(path: &std::path::Path) -> (sled::Db, sled::Tree) {
    let started = std::time::Instant::now();
    let db = loop {
        match sled::Config::new()
            .path(path)
            .segment_size(potluck::store::segment_size_of(path))
            .open()
        {
            Ok(db) => break db,
            Err(sled::Error::Io(e))
                if started.elapsed() < Duration::from_secs(10)
                    && (e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("could not acquire lock")) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("opening sled in {}: {e}", path.display()),
        }
    };
    let tree = db.open_tree("potluck").unwrap();
    (db, tree)
}

/// Runs a system command (`ip`, `tc`, `nft`… for the network-namespace
/// tests); its stdout, or `Err` with the command and its stderr.
pub fn sh(program: &str, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Longest any single wait (or run of the binary) may take.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// An upcoming start (the tests must not depend on today's date).
pub const START: &str = "2031-06-01T18:00:00Z";
/// An end three hours after [`START`].
pub const END: &str = "2031-06-01T21:00:00Z";

/// Now, in ms since the Unix epoch.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A local TCP port where nobody listens right now (bound on 127.0.0.1,
/// then released): connections to it are refused.
pub fn free_tcp_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A new store in a temporary directory (kept alive by the first value).
pub fn open_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    (dir, store)
}
