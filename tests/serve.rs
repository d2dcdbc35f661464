//! End-to-end tests of `potluck serve`, `potluck sync` and the commands
//! forwarded to a running node over its control socket. Every test runs the
//! real binary in temporary homes, on 127.0.0.1 with ephemeral ports.
//!
//! The environment of every child is cleaned (`POTLUCK_HOME`, `POTLUCK_LOG`
//! and friends removed; `HOME` and `XDG_DATA_HOME` inside the sandbox), every
//! wait is bounded, and a guard kills any `serve` process a failing test
//! leaves behind.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_potluck");
/// Longest any single wait may take.
const DEADLINE: Duration = Duration::from_secs(20);
/// Pause between two polls.
const POLL: Duration = Duration::from_millis(50);
/// An upcoming start (the tests must not depend on today's date).
const START: &str = "2031-06-01T18:00:00Z";

/// A temporary directory holding the homes of one test.
struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The home called `name` (not created).
    fn home(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `potluck --home HOME ARGS…` with a clean environment.
    fn command(&self, home: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_remove("POTLUCK_HOME")
            .env_remove("POTLUCK_LOG")
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .env("HOME", self.dir.path().join("user"))
            .env("XDG_DATA_HOME", self.dir.path().join("xdg"))
            .arg("--home")
            .arg(home)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs one command to completion (killed after [`DEADLINE`]).
    fn run(&self, home: &Path, args: &[&str]) -> Run {
        let mut child = self.command(home, args).spawn().expect("spawn potluck");
        let out = drain(child.stdout.take().unwrap());
        let err = drain(child.stderr.take().unwrap());
        let status = wait_with_deadline(&mut child).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "potluck --home {} {args:?} did not finish within {DEADLINE:?}",
                home.display()
            );
        });
        Run {
            status,
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        }
    }

    /// Runs a command that must succeed, and parses its JSON output.
    fn json(&self, home: &Path, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let run = self.run(home, &all);
        assert!(run.status.success(), "{run:?}");
        run.json()
    }

    /// Polls a JSON command until `cond` holds on its output; returns it.
    fn json_until(&self, home: &Path, args: &[&str], what: &str, cond: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let doc = self.json(home, args);
            if cond(&doc) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last output of {args:?}: {doc}"
            );
            thread::sleep(POLL);
        }
    }

    /// Starts `potluck serve ARGS…` and waits for its "listening on" line.
    fn serve(&self, home: &Path, args: &[&str]) -> Result<Server, String> {
        // No LAN announcements from tests: only loopback traffic here
        // (tests/discovery.rs covers discovery on 127.255.255.255).
        let mut all = vec!["serve", "--no-discovery"];
        all.extend_from_slice(args);
        let mut child = self
            .command(home, &all)
            .spawn()
            .expect("spawn potluck serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let mut pipe = child.stderr.take().unwrap();
            let stderr = stderr.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    stderr.lock().unwrap().push_str(&text);
                }
            });
        }
        let (tx, lines) = mpsc::channel();
        {
            let pipe = child.stdout.take().unwrap();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut server = Server {
            child,
            home: home.to_owned(),
            feed: String::new(),
            addr: "127.0.0.1:1".parse().unwrap(),
            stderr,
        };
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    // "potluck node @….ed25519 listening on 127.0.0.1:PORT"
                    let Some((head, addr)) = line.split_once(" listening on ") else {
                        continue;
                    };
                    server.feed = head
                        .strip_prefix("potluck node ")
                        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
                        .to_owned();
                    server.addr = addr.trim().parse().expect("a socket address");
                    return Ok(server);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed: the process ended without listening.
                    let status = wait_with_deadline(&mut server.child);
                    return Err(format!("serve exited ({status:?}): {}", server.stderr()));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "serve did not listen within {DEADLINE:?}: {}",
                        server.stderr()
                    )
                }
            }
        }
    }

    /// Starts `serve --listen 127.0.0.1:PORT ARGS…` on a port that was
    /// free a moment ago; tries another if someone took it in between.
    fn serve_on_free_port(&self, home: &Path, args: &[&str]) -> Server {
        for _ in 0..5 {
            let port = free_port();
            let listen = format!("127.0.0.1:{port}");
            let mut all = vec!["--listen", listen.as_str()];
            all.extend_from_slice(args);
            match self.serve(home, &all) {
                Ok(server) => {
                    assert_eq!(server.addr.port(), port);
                    return server;
                }
                Err(e) if e.contains("cannot listen") => continue,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no free port found after 5 tries");
    }
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Reads a pipe to its end on a thread.
fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8(bytes).expect("output is UTF-8")
    })
}

/// Waits up to [`DEADLINE`] for `child` to exit.
fn wait_with_deadline(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("wait for potluck") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// What one command did.
#[derive(Debug)]
struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }
}

/// A running `potluck serve`, killed when dropped.
struct Server {
    child: Child,
    home: PathBuf,
    feed: String,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn control_socket(&self) -> PathBuf {
        self.home.join("control.sock")
    }

    /// Sends SIGTERM; returns the exit status once the process is gone.
    fn terminate(&mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        wait_with_deadline(&mut self.child).unwrap_or_else(|| {
            panic!(
                "serve did not exit within {DEADLINE:?} of SIGTERM: {}",
                self.stderr()
            )
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!(
                "stderr of serve in {}:\n{}",
                self.home.display(),
                self.stderr()
            );
        }
    }
}

/// The connected peers in the output of `peers --json`.
fn connected(peers: &Value) -> Vec<Value> {
    peers["connected"].as_array().cloned().unwrap_or_default()
}

fn announce(sandbox: &Sandbox, home: &Path, title: &str) -> String {
    let doc = sandbox.json(home, &["announce", "--title", title, "--start", START]);
    doc["id"].as_str().expect("an event id").to_owned()
}

fn events_contain(doc: &Value, id: &str) -> bool {
    doc.as_array()
        .is_some_and(|list| list.iter().any(|e| e["id"] == id))
}

// ---------------------------------------------------------------------------

#[test]
fn two_serving_nodes_replicate_live_and_stop_cleanly() {
    let sandbox = Sandbox::new();
    let home_a = sandbox.home("a");
    let home_b = sandbox.home("b");
    let mut a = sandbox.serve_on_free_port(&home_a, &[]);
    let a_addr = a.addr.to_string();
    let mut b = sandbox.serve_on_free_port(&home_b, &["--peer", &a_addr]);
    assert_ne!(a.feed, b.feed);
    assert!(a.control_socket().exists() && b.control_socket().exists());

    // Forwarded to A's node over its control socket (the node owns the store).
    let event = announce(&sandbox, &home_a, "Street party");
    assert!(
        event.starts_with('%') && event.ends_with(".blake3"),
        "{event}"
    );
    sandbox.json_until(&home_b, &["events"], "B to list A's event", |doc| {
        events_contain(doc, &event)
    });

    let answer = sandbox.json(&home_b, &["rsvp", &event, "going"]);
    assert_eq!(answer["status"], "going");
    assert_eq!(answer["event"], event.as_str());
    sandbox.json_until(&home_a, &["event", &event], "A to see B's RSVP", |doc| {
        doc["tally"]["going"] == 1
            && doc["rsvps"]
                .as_array()
                .is_some_and(|r| r.len() == 1 && r[0]["author"] == b.feed.as_str())
    });
    let doc = sandbox.json(&home_a, &["event", &event]);
    assert_eq!(doc["rsvps"][0]["status"], "going");
    assert_eq!(doc["author"], a.feed.as_str());

    let whoami = sandbox.json(&home_b, &["whoami"]);
    assert_eq!(whoami["id"], b.feed.as_str());

    let peers_a = sandbox.json(&home_a, &["peers"]);
    assert_eq!(peers_a["node_running"], true);
    let peers_a = connected(&peers_a);
    assert_eq!(peers_a.len(), 1, "{peers_a:?}");
    assert_eq!(peers_a[0]["feed"], b.feed.as_str());
    assert_eq!(peers_a[0]["outbound"], false);
    assert_eq!(peers_a[0]["received"], 1, "B's RSVP");
    let peers_b = connected(&sandbox.json(&home_b, &["peers"]));
    assert_eq!(peers_b.len(), 1, "{peers_b:?}");
    assert_eq!(peers_b[0]["feed"], a.feed.as_str());
    assert_eq!(peers_b[0]["outbound"], true);
    assert_eq!(peers_b[0]["address"], a_addr.as_str());

    let status_b = b.terminate();
    let status_a = a.terminate();
    assert!(status_b.success(), "B: {status_b:?}: {}", b.stderr());
    assert!(status_a.success(), "A: {status_a:?}: {}", a.stderr());
    assert!(
        !a.control_socket().exists(),
        "A's control socket is removed"
    );
    assert!(
        !b.control_socket().exists(),
        "B's control socket is removed"
    );

    // The stores are consistent and usable without a node.
    for home in [&home_a, &home_b] {
        let fsck = sandbox.json(home, &["fsck"]);
        assert_eq!(fsck["ok"], true, "{fsck}");
        let doc = sandbox.json(home, &["event", &event]);
        assert_eq!(doc["tally"]["going"], 1);
    }
}

#[test]
fn sync_against_a_serving_node() {
    let sandbox = Sandbox::new();
    let home_a = sandbox.home("a");
    let init = sandbox.json(&home_a, &["init", "--name", "Ana"]);
    let a_feed = init["id"].as_str().unwrap().to_owned();
    let mut a = sandbox
        .serve(&home_a, &["--listen", "127.0.0.1:0"])
        .unwrap();
    assert_eq!(a.feed, a_feed);
    let target = a.addr.to_string();
    let event = announce(&sandbox, &home_a, "Quiz night");

    // B has no node running: it dials A itself.
    let home_b = sandbox.home("b");
    let b_feed = sandbox.json(&home_b, &["init", "--name", "Bea"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let report = sandbox.json(&home_b, &["sync", &target]);
    assert_eq!(report["peer"], a_feed.as_str());
    assert_eq!(report["received"], 2, "{report}");
    assert_eq!(report["sent"], 1, "{report}");
    assert!(report["bytes_in"].as_u64().unwrap() > 0);
    assert!(report["bytes_out"].as_u64().unwrap() > 0);
    let events = sandbox.json(&home_b, &["events"]);
    assert!(events_contain(&events, &event), "{events}");
    assert_eq!(events[0]["organizer_name"], "Ana");

    // A learns B's name.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let log = sandbox.run(&home_a, &["log", &b_feed]);
        assert!(log.status.success(), "{log:?}");
        if log.stdout.lines().count() == 1 {
            assert!(log.stdout.contains("Bea"), "{log:?}");
            break;
        }
        assert!(Instant::now() < deadline, "A never got B's message");
        thread::sleep(POLL);
    }

    // The text form says what happened.
    let text = sandbox.run(&home_b, &["sync", &target]);
    assert!(text.status.success(), "{text:?}");
    assert!(
        text.stdout.contains("received 0 messages, sent 0"),
        "{text:?}"
    );

    // A pinned address of the wrong feed is refused.
    let wrong = format!("{b_feed}@{target}");
    let run = sandbox.run(&home_b, &["sync", &wrong]);
    assert!(!run.status.success(), "{run:?}");
    assert_eq!(run.stderr.trim().lines().count(), 1, "{run:?}");

    // Another network: a one-line error that says so, and nothing changes.
    let home_c = sandbox.home("c");
    let key = "ab".repeat(32);
    sandbox.json(&home_c, &["init", "--network-key", &key, "--name", "Cy"]);
    let run = sandbox.run(&home_c, &["sync", &target, "--json"]);
    assert!(!run.status.success(), "{run:?}");
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    let stderr = run.stderr.trim_end();
    assert_eq!(stderr.lines().count(), 1, "one line: {run:?}");
    assert!(stderr.starts_with("error: sync with"), "{run:?}");
    assert!(
        stderr.contains("network key"),
        "the error names the likely cause: {run:?}"
    );
    let c_log = sandbox.run(&home_c, &["log"]);
    assert_eq!(c_log.stdout.lines().count(), 1, "{c_log:?}");

    // A is still fine and serving; a `sync` forwarded to a running node
    // uses that node.
    let home_d = sandbox.home("d");
    let mut d = sandbox
        .serve(&home_d, &["--listen", "127.0.0.1:0"])
        .unwrap();
    let report = sandbox.json(&home_d, &["sync", &target]);
    assert_eq!(report["peer"], a_feed.as_str());
    assert_eq!(report["received"], 3, "A's two and B's name: {report}");
    let events = sandbox.json(&home_d, &["events"]);
    assert!(events_contain(&events, &event), "{events}");

    assert!(d.terminate().success(), "{}", d.stderr());
    assert!(a.terminate().success(), "{}", a.stderr());
    let a_log = sandbox.run(&home_a, &["log", &b_feed]);
    assert_eq!(a_log.stdout.lines().count(), 1, "{a_log:?}");
}

#[test]
fn serve_on_a_fresh_home_creates_an_identity() {
    let sandbox = Sandbox::new();
    let home = sandbox.home("fresh");
    assert!(!home.exists());
    let mut node = sandbox.serve(&home, &["--listen", "127.0.0.1:0"]).unwrap();
    assert!(node.feed.starts_with('@') && node.feed.ends_with(".ed25519"));
    assert!(node.addr.ip().is_loopback() && node.addr.port() != 0);
    assert!(node.control_socket().exists());
    assert!(
        node.stderr()
            .contains(&format!("created a new identity {}", node.feed)),
        "{}",
        node.stderr()
    );

    // Through the control socket: the node holds the store, so a command
    // that opened it directly would fail.
    let whoami = sandbox.json(&home, &["whoami"]);
    assert_eq!(whoami["id"], node.feed.as_str());
    let name = sandbox.json(&home, &["name", "Fresh"]);
    assert_eq!(name["name"], "Fresh");
    let peers = sandbox.json(&home, &["peers"]);
    assert_eq!(peers["node_running"], true);
    assert!(connected(&peers).is_empty());

    // A second node cannot take over the same home, and leaves the first
    // one alone.
    let second = sandbox.serve(&home, &["--listen", "127.0.0.1:0"]);
    assert!(second.is_err(), "a second serve on one home fails");
    assert!(node.control_socket().exists());
    let whoami = sandbox.json(&home, &["whoami"]);
    assert_eq!(whoami["id"], node.feed.as_str());

    let status = node.terminate();
    assert!(status.success(), "{status:?}: {}", node.stderr());
    assert!(!node.control_socket().exists());

    // Without the node, commands open the store themselves.
    let whoami = sandbox.json(&home, &["whoami"]);
    assert_eq!(whoami["id"], node.feed.as_str());
    assert_eq!(whoami["name"], "Fresh");
    let peers = sandbox.json(&home, &["peers"]);
    assert_eq!(peers["node_running"], false);
}

#[test]
fn a_second_serve_on_a_home_in_use_says_so() {
    let sandbox = Sandbox::new();
    let home = sandbox.home("busy");
    let _node = sandbox.serve(&home, &["--listen", "127.0.0.1:0"]).unwrap();
    let err = sandbox
        .serve(&home, &["--listen", "127.0.0.1:0"])
        .err()
        .expect("a second serve on one home fails");
    let last = err.trim_end().lines().last().unwrap_or_default().to_owned();
    assert!(
        last.contains("in use by another potluck process") || last.contains("already running"),
        "the error should say that a node already runs here: {err}"
    );
}
