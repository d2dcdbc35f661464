//! Driving the real `potluck` binary: temporary homes, a clean
//! environment, bounded runs and polls, and `serve` processes that are
//! killed when dropped.
//!
//! The environment of every child is cleaned (`POTLUCK_HOME`, `POTLUCK_LOG`,
//! `RUST_LOG`, backtrace settings and `TZ` removed; `HOME` and
//! `XDG_DATA_HOME` inside the sandbox; the sandbox is the working
//! directory), and every wait is bounded by [`DEADLINE`].

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::{DEADLINE, START};

pub const BIN: &str = env!("CARGO_BIN_EXE_potluck");
/// Pause between two polls.
pub const POLL: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------
// Running the binary.

/// Removes inherited settings from `cmd`, points `HOME` and
/// `XDG_DATA_HOME` inside `dir`, runs it in `dir`, and pipes its output.
pub fn clean_env<'a>(cmd: &'a mut Command, dir: &Path) -> &'a mut Command {
    cmd.env_remove("POTLUCK_HOME")
        .env_remove("POTLUCK_LOG")
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env_remove("TZ")
        // Never a developer's desktop: tests that want a session bus
        // start their own (tests/reminders.rs).
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("HOME", dir.join("user"))
        .env("XDG_DATA_HOME", dir.join("xdg"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
}

/// Runs `cmd` (already set up) to completion; kills it after [`DEADLINE`].
pub fn finish(mut cmd: Command) -> Run {
    let mut child = cmd.spawn().expect("spawn potluck");
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let status = wait_with_deadline(&mut child).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("potluck did not finish within {DEADLINE:?}: {cmd:?}");
    });
    Run {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Runs `cmd` with a clean environment inside `dir` and a time limit.
pub fn run_command(cmd: Command, dir: &Path) -> Run {
    run_command_with(cmd, dir, &[] as &[(&str, &str)])
}

/// Runs `cmd` with a clean environment inside `dir` plus `envs`, and a
/// time limit.
pub fn run_command_with<V: AsRef<OsStr>>(mut cmd: Command, dir: &Path, envs: &[(&str, V)]) -> Run {
    clean_env(&mut cmd, dir);
    for (key, value) in envs {
        cmd.env(key, value);
    }
    finish(cmd)
}

/// Reads a pipe to its end on a thread.
pub fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes).expect("read the output");
        String::from_utf8(bytes).expect("output is UTF-8")
    })
}

/// Waits up to [`DEADLINE`] for `child` to exit.
pub fn wait_with_deadline(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("wait for potluck") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    /// Every line of stdout as a JSON document (with `--json`, a failure
    /// after some output ends with the error document).
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("line {l:?} is not JSON ({e}): {self:?}"))
            })
            .collect()
    }

    /// Asserts a failure (exit 1) with exactly one line on stderr; returns it.
    pub fn one_line_error(&self) -> String {
        assert_eq!(self.status.code(), Some(1), "{self:?}");
        let stderr = self.stderr.trim_end();
        assert_eq!(stderr.lines().count(), 1, "one line on stderr: {self:?}");
        assert!(stderr.starts_with("error: "), "{self:?}");
        stderr.to_owned()
    }
}

/// Exit status 1, exactly one non-empty line on stderr that is an error
/// message, not a panic, and on stdout nothing, or (with `--json`) only
/// the error document carrying that same message.
pub fn assert_clean_failure(run: &Run, args: &[&str]) {
    assert_eq!(run.status.code(), Some(1), "{args:?} should fail: {run:?}");
    if !run.stdout.is_empty() {
        let message = json_error(run, args)["message"].clone();
        assert_eq!(
            Some(run.stderr.trim_end()),
            message.as_str().map(|m| format!("error: {m}")).as_deref(),
            "{args:?}: the JSON error says what stderr says: {run:?}"
        );
    }
    let line = run.stderr.trim_end_matches('\n');
    assert!(!line.trim().is_empty(), "{args:?}: empty stderr");
    assert!(
        !line.contains('\n'),
        "{args:?}: stderr is not one line: {line:?}"
    );
    assert!(!line.contains("panicked"), "{args:?} panicked: {line:?}");
    assert!(line.starts_with("error: "), "{args:?}: {line:?}");
}

/// The `error` object of the one JSON error document on stdout, checked
/// for its shape: `{"error": {"kind": "…", "message": "…"}}`, nothing else.
pub fn json_error(run: &Run, args: &[&str]) -> Value {
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "{args:?}: one document on stdout: {run:?}"
    );
    let doc: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {run:?}"));
    let error = &doc["error"];
    assert_eq!(doc.as_object().map(|o| o.len()), Some(1), "{doc}");
    assert_eq!(error.as_object().map(|o| o.len()), Some(2), "{doc}");
    assert!(
        error["kind"].as_str().is_some_and(|k| !k.is_empty()),
        "{doc}"
    );
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{doc}"
    );
    error.clone()
}

/// `<sigil><base64 of 32 bytes, 44 chars><suffix>`.
pub fn assert_id(id: &str, sigil: char, suffix: &str) {
    let body = id
        .strip_prefix(sigil)
        .and_then(|b| b.strip_suffix(suffix))
        .unwrap_or_else(|| panic!("{id:?} is not {sigil}…{suffix}"));
    assert_eq!(body.len(), 44, "{id:?}");
    assert!(
        body.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c)),
        "{id:?}"
    );
    assert_eq!(B64.decode(body).expect("base64").len(), 32, "{id:?}");
}

// ---------------------------------------------------------------------------
// A sandbox of several homes.

/// A temporary directory holding the homes and files of one test.
pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The sandbox directory itself.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The path called `name` inside the sandbox (not created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The home called `name` (not created).
    pub fn home(&self, name: &str) -> PathBuf {
        self.path(name)
    }

    /// `potluck --home HOME ARGS…` with a clean environment.
    pub fn command(&self, home: &Path, args: &[&str]) -> Command {
        self.command_in(None, home, args)
    }

    /// [`Sandbox::command`], inside network namespace `netns` when given
    /// (`ip netns exec` runs the binary itself: its PID is the child's).
    pub fn command_in(&self, netns: Option<&str>, home: &Path, args: &[&str]) -> Command {
        let mut cmd = match netns {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, BIN]);
                cmd
            }
            None => Command::new(BIN),
        };
        cmd.arg("--home").arg(home).args(args);
        clean_env(&mut cmd, self.dir.path());
        cmd
    }

    /// Runs one command to completion (killed after [`DEADLINE`]).
    pub fn run(&self, home: &Path, args: &[&str]) -> Run {
        finish(self.command(home, args))
    }

    /// Runs one command with `envs` set, to completion.
    pub fn run_with(&self, home: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(home, args);
        for (key, value) in envs {
            cmd.env(key, value);
        }
        finish(cmd)
    }

    /// Runs a command that must succeed, and parses its JSON output.
    pub fn json(&self, home: &Path, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let run = self.run(home, &all);
        assert!(run.status.success(), "{args:?}: {run:?}");
        run.json()
    }

    /// Polls a JSON command until `cond` holds on its output; returns it.
    pub fn json_until(
        &self,
        home: &Path,
        args: &[&str],
        what: &str,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let doc = self.json(home, args);
            if cond(&doc) {
                return doc;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last output of {args:?}: {doc}"
            );
            thread::sleep(POLL);
        }
    }

    /// Polls a command until `cond` holds on its standard output.
    pub fn run_until(&self, home: &Path, args: &[&str], what: &str, cond: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let run = self.run(home, args);
            assert!(run.status.success(), "{args:?}: {run:?}");
            if cond(&run.stdout) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last output of {args:?}: {run:?}"
            );
            thread::sleep(POLL);
        }
    }

    /// Starts `potluck serve ARGS…` (exactly those arguments) and waits for
    /// its "listening on" line; `Err` with its stderr if it exits first.
    pub fn spawn_serve(&self, home: &Path, args: &[&str]) -> Result<Server, String> {
        self.spawn_serve_in(None, home, args)
    }

    /// [`Sandbox::spawn_serve`], inside network namespace `netns` when
    /// given.
    pub fn spawn_serve_in(
        &self,
        netns: Option<&str>,
        home: &Path,
        args: &[&str],
    ) -> Result<Server, String> {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        self.spawn_serve_command(self.command_in(netns, home, &all), home, args)
    }

    /// [`Sandbox::spawn_serve`] with `envs` set in its environment.
    pub fn spawn_serve_with(
        &self,
        home: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<Server, String> {
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        let mut cmd = self.command(home, &all);
        for (key, value) in envs {
            cmd.env(key, value);
        }
        self.spawn_serve_command(cmd, home, args)
    }

    /// Spawns `cmd`, a `serve` with `args`, and waits for it to listen.
    fn spawn_serve_command(
        &self,
        mut cmd: Command,
        home: &Path,
        args: &[&str],
    ) -> Result<Server, String> {
        let mut child = cmd.spawn().expect("spawn potluck serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_reader = {
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
            })
        };
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
            page: None,
            public: None,
            stderr,
            started: Instant::now(),
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
                    // "page: http://127.0.0.1:PORT/" follows in the same
                    // write, unless the page is off.
                    if !args.contains(&"--no-web") {
                        let line = lines
                            .recv_timeout(DEADLINE)
                            .unwrap_or_else(|e| panic!("no page line ({e}): {}", server.stderr()));
                        let url = line
                            .strip_prefix("page: ")
                            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
                        server.page = Some(url.to_owned());
                    }
                    // "public pages: http://IP:PORT/" follows on a hub
                    // serving them (asked for here, or in config.json).
                    if args.contains(&"--public-web") || public_in_config(home) {
                        let line = lines.recv_timeout(DEADLINE).unwrap_or_else(|e| {
                            panic!("no public pages line ({e}): {}", server.stderr())
                        });
                        let url = line
                            .strip_prefix("public pages: ")
                            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
                        server.public = Some(url.to_owned());
                    }
                    server.started = Instant::now();
                    return Ok(server);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // stdout closed: the process ended without listening.
                    // Its stderr is complete once the reader saw EOF.
                    let status = wait_with_deadline(&mut server.child);
                    let _ = stderr_reader.join();
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

    /// Starts `potluck serve --listen 127.0.0.1:0` with the discovery
    /// flags of `discovery`, and waits for its "listening on" line.
    pub fn serve_with(&self, home: &Path, discovery: Discovery) -> Server {
        let extra = discovery.args();
        let mut args = vec!["--listen", "127.0.0.1:0"];
        args.extend(extra.iter().map(String::as_str));
        self.spawn_serve(home, &args)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `potluck serve` on 127.0.0.1 with its page and without discovery,
    /// keeping `peer` connected if given (the browser tests' nodes).
    pub fn serve_with_page(&self, home: &Path, peer: Option<&Server>) -> Server {
        let peer_addr = peer.map(|p| p.addr.to_string());
        let mut args = vec!["--listen", "127.0.0.1:0", "--no-discovery"];
        if let Some(addr) = &peer_addr {
            args.extend(["--peer", addr.as_str()]);
        }
        self.spawn_serve(home, &args)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Whether `home`'s config.json asks for a hub's public pages.
fn public_in_config(home: &Path) -> bool {
    std::fs::read_to_string(home.join("config.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .is_some_and(|config| config.get("public_web").is_some())
}

impl Sandbox {
    /// `potluck serve` on 127.0.0.1 (an ephemeral port) without the page
    /// or discovery, as a hub with `hub`; waits for it to listen.
    pub fn serve_loopback(&self, home: &Path, hub: bool) -> Server {
        let mut args = vec!["--listen", "127.0.0.1:0", "--no-web", "--no-discovery"];
        if hub {
            args.push("--hub");
        }
        self.spawn_serve(home, &args)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Announces an event in `home`; returns its id.
pub fn announce(sandbox: &Sandbox, home: &Path, title: &str) -> String {
    let doc = sandbox.json(home, &["announce", "--title", title, "--start", START]);
    doc["id"].as_str().expect("an event id").to_owned()
}

/// Whether the JSON list `doc` holds an event with `id`.
pub fn events_contain(doc: &Value, id: &str) -> bool {
    doc.as_array()
        .is_some_and(|list| list.iter().any(|e| e["id"] == id))
}

// ---------------------------------------------------------------------------
// `potluck serve`.

/// How a node takes part in discovery. Both variants keep every packet on
/// loopback.
#[derive(Clone, Copy)]
pub enum Discovery {
    /// Announce to and listen on `127.255.255.255:PORT`.
    Loopback(u16),
    /// `--no-discovery` (and, should the flag be ignored, a loopback
    /// target on PORT).
    Off(u16),
}

impl Discovery {
    pub fn args(self) -> Vec<String> {
        let (off, port) = match self {
            Discovery::Loopback(port) => (false, port),
            Discovery::Off(port) => (true, port),
        };
        let mut args = Vec::new();
        if off {
            args.push("--no-discovery".to_owned());
        }
        args.push("--discovery-port".to_owned());
        args.push(port.to_string());
        args.push("--discovery-target".to_owned());
        args.push(format!("127.255.255.255:{port}"));
        args
    }
}

/// A UDP port free on every address a moment ago: the discovery port of
/// one test, so that parallel tests never hear each other (nothing is sent
/// from it).
pub fn discovery_port() -> u16 {
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    socket.local_addr().unwrap().port()
}

/// A running `potluck serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub home: PathBuf,
    pub feed: String,
    pub addr: SocketAddr,
    /// The web page's address, unless started with `--no-web`.
    pub page: Option<String>,
    /// The hub's public pages (`http://IP:PORT/`), when it serves them.
    pub public: Option<String>,
    stderr: Arc<Mutex<String>>,
    /// When it said it was listening.
    pub started: Instant,
}

impl Server {
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn control_socket(&self) -> PathBuf {
        self.home.join("control.sock")
    }

    /// Waits until the node's log (stderr) contains `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        let deadline = Instant::now() + DEADLINE;
        while !self.stderr().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "serve never logged {needle:?}: {}",
                self.stderr()
            );
            thread::sleep(POLL);
        }
    }

    /// Panics if the process has ended.
    pub fn assert_running(&mut self) {
        let status = self.child.try_wait().expect("wait for serve");
        assert!(
            status.is_none(),
            "serve exited: {status:?}: {}",
            self.stderr()
        );
    }

    /// Sends signal `name` (`TERM`, `HUP`…) to the process.
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name} failed");
    }

    /// Sends SIGTERM; returns the exit status once the process is gone.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
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

// ---------------------------------------------------------------------------
// One home in a sandbox of its own.

/// One node: a temporary directory holding the home (not yet created).
pub struct Node {
    sandbox: Sandbox,
    pub home: PathBuf,
}

impl Node {
    pub fn new() -> Node {
        let sandbox = Sandbox::new();
        let home = sandbox.path("home");
        Node { sandbox, home }
    }

    /// A node after `init --name <name>`.
    pub fn init(name: &str) -> Node {
        let node = Node::new();
        node.ok(&["init", "--name", name]);
        node
    }

    /// The temporary directory around the home.
    pub fn dir(&self) -> &Path {
        self.sandbox.dir()
    }

    /// The sandbox the home is in.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    pub fn secret(&self) -> PathBuf {
        self.home.join("secret")
    }

    /// `potluck --home <home> <args>` with `envs` set.
    pub fn run_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Run {
        self.sandbox.run_with(&self.home, args, envs)
    }

    /// `potluck --home <home> <args>`.
    pub fn run(&self, args: &[&str]) -> Run {
        self.sandbox.run(&self.home, args)
    }

    /// Runs with `--json` and `envs`, asserts success without a word on
    /// stderr, and parses stdout.
    pub fn ok_with(&self, args: &[&str], envs: &[(&str, &str)]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let run = self.run_with(&all, envs);
        assert!(run.status.success(), "{args:?} failed: {run:?}");
        assert_eq!(run.stderr, "", "{args:?} succeeded with a warning");
        run.json()
    }

    /// Runs with `--json`, asserts success and parses stdout.
    pub fn ok(&self, args: &[&str]) -> Value {
        self.ok_with(args, &[])
    }

    /// Runs with `--json` and asserts a clean failure with the JSON error
    /// document on stdout; returns stderr's single line.
    pub fn fails(&self, args: &[&str]) -> String {
        self.fails_with_kind(args).0
    }

    /// Like [`Node::fails`]; returns stderr's line and the error's `kind`.
    pub fn fails_with_kind(&self, args: &[&str]) -> (String, String) {
        let mut all = args.to_vec();
        all.push("--json");
        let run = self.run(&all);
        assert_clean_failure(&run, args);
        let kind = json_error(&run, args)["kind"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (run.stderr.trim_end().to_owned(), kind)
    }

    /// `log --json`, exactly as printed.
    pub fn log_text(&self) -> String {
        let run = self.run(&["log", "--json"]);
        assert!(run.status.success(), "log failed: {run:?}");
        run.stdout
    }

    /// `log --json`, one parsed object per line.
    pub fn log(&self) -> Vec<Value> {
        self.log_text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
            .collect()
    }

    /// The `content` of every message in my feed, in order.
    pub fn log_contents(&self) -> Vec<Value> {
        self.log()
            .into_iter()
            .map(|v| v["content"].clone())
            .collect()
    }

    pub fn whoami(&self) -> Value {
        self.ok(&["whoami"])
    }

    /// My feed id.
    pub fn me(&self) -> String {
        self.whoami()["id"].as_str().unwrap().to_owned()
    }

    /// Announces an event and returns its id.
    pub fn announce(&self, args: &[&str]) -> String {
        let mut all = vec!["announce"];
        all.extend_from_slice(args);
        let doc = self.ok(&all);
        let id = doc["id"]
            .as_str()
            .expect("announce prints an id")
            .to_owned();
        assert_eq!(doc, json!({ "id": id }));
        assert_id(&id, '%', ".blake3");
        id
    }

    pub fn event(&self, id: &str) -> Value {
        self.ok(&["event", id])
    }

    pub fn agenda(&self) -> Vec<Value> {
        self.ok(&["agenda"]).as_array().expect("an array").clone()
    }

    /// Writes `ics ARGS… --out FILE` and returns the file's text.
    pub fn ics_file(&self, args: &[&str]) -> String {
        let path = self.sandbox.path("export.ics");
        let _ = std::fs::remove_file(&path);
        let mut all = vec!["ics"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--out", path.to_str().unwrap()]);
        let run = self.run(&all);
        assert!(run.status.success(), "{all:?} failed: {run:?}");
        // The calendar goes to the file; stdout says so.
        assert!(run.stdout.starts_with("wrote "), "{run:?}");
        assert!(
            run.stdout.trim_end().ends_with(path.to_str().unwrap()),
            "{run:?}"
        );
        assert!(!run.stdout.contains("BEGIN:"), "{run:?}");
        std::fs::read_to_string(&path).expect("the file was written")
    }
}
