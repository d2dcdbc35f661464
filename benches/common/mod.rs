//! Helpers shared by the process-level benches (`sync_1m`, `reconnect`,
//! `query`, `latency`): run sizes from the environment, the real `potluck`
//! binary run with a time limit (and its peak RSS and CPU time read from
//! `wait4`), `potluck serve` children, cached fixture homes, and simple
//! statistics. Each bench declares `#[path = "common/mod.rs"] mod common;`
//! and uses the parts it needs.
//!
//! Every child runs on loopback only: `serve` gets `--no-discovery` and
//! `--listen 127.0.0.1:0`. Every run and every wait is bounded; a `serve`
//! child is stopped when its handle is dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The `potluck` binary of this build (release under `cargo bench`).
pub const BIN: &str = env!("CARGO_BIN_EXE_potluck");

/// True unless run by `cargo bench` (which passes `--bench`): under
/// `cargo test --benches` every bench runs at a tiny size, as a smoke test.
pub fn quick() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// The number in environment variable `name`, else `default`.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The machine's load averages (`/proc/loadavg`), for the record.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `potluck --home HOME` with a clean environment (no inherited
/// `POTLUCK_HOME`, `POTLUCK_LOG`, `RUST_LOG`), stdin closed and output
/// piped.
pub fn potluck(home: &Path) -> Command {
    potluck_under(&[], home)
}

/// [`potluck`] run under a wrapper command such as `heaptrack -o FILE`
/// (`wrapper` split on whitespace; empty for none).
pub fn potluck_under(wrapper: &[&str], home: &Path) -> Command {
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut cmd = Command::new(program);
            cmd.args(args).arg(BIN);
            cmd
        }
        None => Command::new(BIN),
    };
    cmd.arg("--home")
        .arg(home)
        .env_remove("POTLUCK_HOME")
        .env_remove("POTLUCK_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// How a child process ended.
#[derive(Debug)]
pub struct Finished {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
    /// From spawn to exit.
    pub elapsed: Duration,
    /// Peak resident set size (`ru_maxrss`, the same as `VmHWM`), bytes.
    pub max_rss: u64,
    /// User plus system CPU time.
    pub cpu: Duration,
}

impl Finished {
    /// Panics with the child's output unless it exited with 0.
    pub fn ok(self, what: &str) -> Finished {
        assert_eq!(
            self.code,
            Some(0),
            "{what} failed:\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Stdout as one JSON document (or, when a wrapper such as heaptrack
    /// printed around it, the first line of stdout that is one).
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .ok()
            .or_else(|| {
                self.stdout.lines().find_map(|l| {
                    serde_json::from_str::<Value>(l)
                        .ok()
                        .filter(Value::is_object)
                })
            })
            .unwrap_or_else(|| panic!("stdout is not JSON: {}", self.stdout))
    }
}

/// Reads a pipe to its end on a thread.
fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Reaps `pid` if it has exited, returning its wait status and usage.
fn try_reap(pid: u32) -> Option<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: plain FFI call with valid pointers to locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let ret = unsafe { libc::wait4(pid as i32, &mut status, libc::WNOHANG, &mut usage) };
    assert!(ret >= 0, "wait4({pid}) failed");
    (ret == pid as i32).then_some((status, usage))
}

fn duration_of(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec.max(0) as u64) + Duration::from_micros(tv.tv_usec.max(0) as u64)
}

/// Runs `cmd` to completion; kills it and panics after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Finished {
    run_polling(cmd, limit, Duration::from_millis(1), |_| {})
}

/// Runs `cmd` to completion, calling `poll` with the time since spawn
/// every `every` while it runs (and once more after it exits); kills it
/// and panics after `limit`.
///
/// The child is reaped with `wait4` (for its resource usage), which clippy
/// cannot see.
#[allow(clippy::zombie_processes)]
pub fn run_polling(
    cmd: &mut Command,
    limit: Duration,
    every: Duration,
    mut poll: impl FnMut(Duration),
) -> Finished {
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn potluck");
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    let pid = child.id();
    let (status, usage) = loop {
        poll(start.elapsed());
        if let Some(done) = try_reap(pid) {
            break done;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        thread::sleep(every);
    };
    let elapsed = start.elapsed();
    poll(elapsed);
    Finished {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed,
        max_rss: (usage.ru_maxrss.max(0) as u64) * 1024,
        cpu: duration_of(usage.ru_utime) + duration_of(usage.ru_stime),
    }
}

/// A running `potluck serve --no-discovery --listen 127.0.0.1:0` child,
/// stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Serve {
    child: Option<Child>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its feed id, `@….ed25519`.
    pub feed: String,
    stderr: Option<thread::JoinHandle<String>>,
    /// Its stdout after the first line, line by line.
    lines: Option<mpsc::Receiver<String>>,
}

impl Serve {
    /// Starts a node on `home` and waits (at most `limit`) until it listens.
    pub fn start(home: &Path, limit: Duration) -> Serve {
        Serve::start_with(home, &[], limit)
    }

    /// [`Serve::start`] with more arguments for `serve` (`--hub`).
    pub fn start_with(home: &Path, extra: &[&str], limit: Duration) -> Serve {
        Serve::start_under(&[], home, extra, limit)
    }

    /// [`Serve::start_with`] under a wrapper such as `heaptrack -o FILE`
    /// (see [`potluck_under`]); lines the wrapper prints before the node's
    /// first are skipped.
    pub fn start_under(wrapper: &[&str], home: &Path, extra: &[&str], limit: Duration) -> Serve {
        let mut child = potluck_under(wrapper, home)
            .args(["serve", "--no-discovery", "--listen", "127.0.0.1:0"])
            .args(extra)
            .spawn()
            .expect("spawn potluck serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut serve = Serve {
            child: Some(child),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            feed: String::new(),
            stderr: Some(stderr),
            lines: None,
        };
        // "potluck node FEED listening on ADDR"
        let started = Instant::now();
        let line = loop {
            match rx.recv_timeout(limit.saturating_sub(started.elapsed())) {
                Ok(line) if line.starts_with("potluck node ") => break line,
                Ok(_) => continue,
                Err(_) => {
                    let err = serve.stop();
                    panic!("potluck serve did not start within {limit:?}: {err}");
                }
            }
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let (Some(feed), Some(addr)) = (words.get(2), words.get(5)) else {
            panic!("unexpected first line of serve: {line:?}");
        };
        serve.feed = (*feed).to_owned();
        serve.addr = addr.parse().expect("serve prints its address");
        serve.lines = Some(rx);
        serve
    }

    /// Where its public pages listen (a hub with `"public_web"`): the
    /// address of the "public pages: http://IP:PORT/" line that follows
    /// the first, waited for at most `limit`.
    pub fn public_pages(&mut self, limit: Duration) -> SocketAddr {
        let started = Instant::now();
        let rx = self.lines.as_ref().expect("serve's stdout");
        loop {
            match rx.recv_timeout(limit.saturating_sub(started.elapsed())) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("public pages: http://") {
                        return url
                            .trim_end_matches('/')
                            .parse()
                            .expect("the public pages' address");
                    }
                }
                Err(_) => {
                    let err = self.stop();
                    panic!("no public pages line within {limit:?}: {err}");
                }
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Its peak resident set size so far (`VmHWM`), bytes.
    pub fn peak_rss(&self) -> Option<u64> {
        vm_hwm(self.pid())
    }

    /// Stops it (SIGTERM, SIGKILL after 10 s) and returns its stderr.
    pub fn stop(&mut self) -> String {
        let Some(mut child) = self.child.take() else {
            return String::new();
        };
        let pid = child.id();
        // SAFETY: signalling our own child, which has not been reaped.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if matches!(child.try_wait(), Ok(Some(_))) {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        self.stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A line of a live process's `/proc/PID/status` given in kB
/// (`"VmHWM"`, `"VmRSS"`), bytes.
pub fn vm_status(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `VmHWM` of a live process (its peak resident set), bytes.
pub fn vm_hwm(pid: u32) -> Option<u64> {
    vm_status(pid, "VmHWM")
}

/// `VmRSS` of a live process (its resident set now), bytes; 0 if gone.
pub fn vm_rss(pid: u32) -> u64 {
    vm_status(pid, "VmRSS").unwrap_or(0)
}

/// Bytes available to this user on the file system holding `path`
/// (`statvfs`), or why they cannot be read.
pub fn free_space(path: &Path) -> Result<u64, String> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{} holds a NUL byte", path.display()))?;
    // SAFETY: plain FFI call with a NUL-terminated path and a pointer to
    // a local.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(format!(
            "statvfs {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    // The fields' types vary between platforms.
    #[allow(clippy::unnecessary_cast)]
    let free = (stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64);
    Ok(free)
}

/// About what a fixture home (or a receiver's) takes on disk per message,
/// with room to spare: 1.5 KB (the 1M fixture takes 0.65 KB a message
/// right after `potluck fixtures`, a receiver after its sync 1.1 KB).
pub const FIXTURE_BYTES_PER_MESSAGE: u64 = 1_500;

/// Panics with a clear message unless the file system holding `path` has
/// at least `needed` bytes free for `what`.
pub fn ensure_free_space(path: &Path, needed: u64, what: &str) {
    let free = free_space(path).unwrap_or_else(|e| panic!("free disk space for {what}: {e}"));
    assert!(
        free >= needed,
        "not enough free disk space for {what}: {:.1} GB free at {}, about {:.1} GB needed; \
         free some (old fixtures are in {}) or run a smaller size",
        free as f64 / 1e9,
        path.display(),
        needed as f64 / 1e9,
        cache_root().display()
    );
}

/// Blocks allocated under `path` (files and directories), bytes: what
/// `du` reports.
pub fn disk_usage(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let mut total = meta.blocks() * 512;
    if meta.is_dir()
        && let Ok(entries) = std::fs::read_dir(path)
    {
        for entry in entries.flatten() {
            total += disk_usage(&entry.path());
        }
    }
    total
}

/// Copies a directory tree (regular files and directories only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy directory");
    for entry in std::fs::read_dir(from).expect("read directory to copy") {
        let entry = entry.expect("directory entry");
        let kind = entry.file_type().expect("file type");
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

// ---------------------------------------------------------------------------
// In-process nodes.

/// A multi-thread runtime for in-process nodes.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A node's settings: `identity` on the public network, open
/// replication, default timings.
pub fn node_config(identity: ed25519_dalek::SigningKey) -> potluck::node::NodeConfig {
    potluck::node::NodeConfig {
        identity,
        network: potluck::proto::handshake::DEFAULT_NETWORK_KEY,
        policy: potluck::proto::replicate::Policy::Open,
        timing: potluck::node::Timing::default(),
    }
}

/// One GET of `path` with `Host: host` through `router`, with no socket
/// (`tower::ServiceExt::oneshot`); the status and the body.
pub async fn router_get(
    router: &axum::Router,
    host: &str,
    path: &str,
) -> (axum::http::StatusCode, Vec<u8>) {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let request = axum::http::Request::get(path)
        .header("host", host)
        .body(axum::body::Body::empty())
        .expect("a request");
    let response = router.clone().oneshot(request).await.expect("a response");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (status, body.to_vec())
}

// ---------------------------------------------------------------------------
// Hub homes (`hub`, `public_web`).

/// Longest wait for a child command (init, invite, announce, peers).
pub const CLI_LIMIT: Duration = Duration::from_secs(60);

/// `potluck init` a new home.
pub fn init_home(home: &Path) {
    run(
        potluck(home).args(["init", "--name", "Bench hub"]),
        CLI_LIMIT,
    )
    .ok("potluck init");
}

/// Sets `config.json`'s `"hub"` (and turns discovery and port mapping
/// off) in an existing home.
pub fn hub_config(home: &Path, hub: serde_json::Value) {
    set_config(
        home,
        json!({ "hub": hub, "discovery": false, "port_mapping": false }),
    );
}

/// Sets each key of the object `entries` in `config.json` of an existing
/// home, keeping the others.
pub fn set_config(home: &Path, entries: serde_json::Value) {
    let path = home.join("config.json");
    let mut config: serde_json::Value = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| json!({}));
    if let (Some(config), Some(entries)) = (config.as_object_mut(), entries.as_object()) {
        for (key, value) in entries {
            config.insert(key.clone(), value.clone());
        }
    }
    std::fs::write(&path, config.to_string()).expect("write config.json");
}

/// A member code of the running hub at `home`, good for `uses` joins.
pub fn member_code(
    home: &Path,
    addr: SocketAddr,
    uses: usize,
) -> (
    potluck::home::config::Invite,
    [u8; potluck::proto::wire::TOKEN_LEN],
) {
    let made = run(
        potluck(home).args([
            "--json",
            "invite",
            "--addr",
            &addr.to_string(),
            "--uses",
            &uses.to_string(),
            "--expires",
            "1d",
        ]),
        CLI_LIMIT,
    )
    .ok("potluck invite");
    let code = made.json()["code"]
        .as_str()
        .expect("invite prints a code")
        .to_owned();
    let invite = potluck::home::config::Invite::parse(&code).expect("the code parses");
    let secret = invite.member.expect("a hub's invite holds a member code");
    (invite, secret)
}

/// User plus system CPU time of a live process (`/proc/PID/stat`).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15: indexes 11 and 12 here.
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / per_second as f64)
}

// ---------------------------------------------------------------------------
// Fixture homes.

/// A home filled by `potluck fixtures`.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// The home directory.
    pub home: PathBuf,
    /// Messages in it.
    pub messages: u64,
    /// Feeds in it.
    pub feeds: u64,
    /// The messages' own encoded bytes.
    pub bytes: u64,
    /// `Store::size_on_disk` right after generation.
    pub size_on_disk: u64,
    /// Seconds `potluck fixtures` took (as its marker recorded them, for
    /// a cached home; 0 if unknown).
    pub seconds: f64,
    /// Made in this run (false: reused from the cache).
    pub generated: bool,
    /// What identifies a cached home's content (its marker); empty for
    /// an uncached one.
    pub key: String,
}

/// Hash of the generator: a cached home made by another generator is
/// regenerated.
fn generator_fingerprint() -> String {
    blake3::hash(include_bytes!("../../src/fixtures.rs")).to_hex()[..16].to_owned()
}

/// Hash of the code that decides the stored format: when it changes, a
/// cached home must pass `potluck fsck` again (or is regenerated). Read
/// at run time, so that it follows the files wherever they are.
fn format_fingerprint() -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for part in [
        "feed",
        "content",
        "content.rs",
        "store",
        "store.rs",
        "index.rs",
        "msglog.rs",
    ] {
        collect_rs(&src.join(part), &mut files);
    }
    files.sort();
    let mut h = blake3::Hasher::new();
    for file in files {
        h.update(
            file.strip_prefix(&src)
                .unwrap_or(&file)
                .to_string_lossy()
                .as_bytes(),
        );
        h.update(&std::fs::read(&file).unwrap_or_default());
    }
    h.finalize().to_hex()[..16].to_owned()
}

/// Every `.rs` file at `path` (a file, or a folder walked to any depth).
fn collect_rs(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    } else if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            collect_rs(&entry.path(), out);
        }
    }
}

/// A fresh copy of `fixture`'s home at `cache_root()/name` (an older copy
/// there is removed first), for a bench that changes it: the cache stays
/// untouched. The caller removes it when done.
pub fn work_copy(fixture: &Fixture, name: &str) -> PathBuf {
    let work = cache_root().join(name);
    if work.exists() {
        std::fs::remove_dir_all(&work).expect("remove an old work copy");
    }
    copy_tree(&fixture.home, &work);
    work
}

/// Where cached fixture homes live: `target/tmp/bench-fixtures`.
pub fn cache_root() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-fixtures")
}

/// Runs `potluck fixtures` into the new home `home` (time limit `limit`).
pub fn generate(home: &Path, feeds: u64, messages: u64, seed: u64, limit: Duration) -> Fixture {
    let run = run(
        potluck(home).args([
            "--json",
            "fixtures",
            "--out",
            &home.display().to_string(),
            "--feeds",
            &feeds.to_string(),
            "--messages",
            &messages.to_string(),
            "--seed",
            &seed.to_string(),
        ]),
        limit,
    )
    .ok("potluck fixtures");
    let doc = run.json();
    let num = |k: &str| {
        doc[k]
            .as_u64()
            .unwrap_or_else(|| panic!("fixtures: no {k}"))
    };
    Fixture {
        home: home.to_owned(),
        messages: num("messages"),
        feeds: num("feeds"),
        bytes: num("bytes"),
        size_on_disk: num("size_on_disk"),
        seconds: doc["seconds"].as_f64().unwrap_or(0.0),
        generated: true,
        key: String::new(),
    }
}

/// Messages held by the store of `home`, opened in this process (and
/// closed again), or why it cannot be opened.
pub fn held_messages(home: &Path) -> Result<u64, String> {
    let path = potluck::home::Home::at(home).store_path();
    let held = {
        let store = potluck::store::Store::open(&path).map_err(|e| e.to_string())?;
        let feeds = store.feeds().map_err(|e| e.to_string())?;
        feeds.iter().map(|(_, h)| h.sequence).sum()
    };
    wait_closed(&path, Duration::from_secs(10));
    Ok(held)
}

/// Waits (at most `limit`) until no handle in this process holds the
/// lock of the sled store at `path`: sled's background threads release
/// it a little after the last handle is dropped, and a child opening the
/// store before then is refused.
pub fn wait_closed(path: &Path, limit: Duration) {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::File::open(path.join("db")) else {
        return;
    };
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            // SAFETY: as above.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A fixture home for `(feeds, messages, seed)`, cached under
/// [`cache_root`] and reused when it is still good: made by this
/// generator, openable and holding every message; if the store code
/// changed since it was last checked, it must also pass `potluck fsck`.
/// Otherwise it is deleted and generated again (about 1.5 min for a
/// million messages).
///
/// Running a node on the home adds peer book and replication memory
/// entries; they are not messages and `fsck` ignores them.
pub fn cached_fixture(feeds: u64, messages: u64, seed: u64) -> Fixture {
    let dir = cache_root().join(format!("f{feeds}-m{messages}-s{seed}"));
    let home = dir.join("home");
    let marker = dir.join("fixture.json");
    let limit = Duration::from_secs(60 + messages / 1_000);
    if let Some(fixture) = reuse(&home, &marker, feeds, messages, seed, limit) {
        eprintln!("fixture: reusing {}", home.display());
        return fixture;
    }
    eprintln!(
        "fixture: generating {messages} messages from {feeds} feeds into {}",
        home.display()
    );
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove stale fixture");
    }
    std::fs::create_dir_all(&dir).expect("create fixture directory");
    // The fixture, then a receiver or a work copy of the same size.
    ensure_free_space(
        &dir,
        2 * FIXTURE_BYTES_PER_MESSAGE * messages,
        &format!("a fixture of {messages} messages and a copy of it"),
    );
    let mut fixture = generate(&home, feeds, messages, seed, limit);
    let doc = json!({
        "feeds": feeds,
        "messages": fixture.messages,
        "seed": seed,
        "bytes": fixture.bytes,
        "size_on_disk": fixture.size_on_disk,
        "seconds": fixture.seconds,
        "generator": generator_fingerprint(),
        "format": format_fingerprint(),
    });
    fixture.key = doc.to_string();
    std::fs::write(&marker, &fixture.key).expect("write fixture marker");
    eprintln!(
        "fixture: made in {:.1} s, {} bytes encoded, {} bytes on disk",
        fixture.seconds, fixture.bytes, fixture.size_on_disk
    );
    fixture
}

/// The cached fixture, if its marker matches and the store checks out.
fn reuse(
    home: &Path,
    marker: &Path,
    feeds: u64,
    messages: u64,
    seed: u64,
    limit: Duration,
) -> Option<Fixture> {
    let mut doc: Value = serde_json::from_slice(&std::fs::read(marker).ok()?).ok()?;
    let same = doc["feeds"] == json!(feeds)
        && doc["messages"] == json!(messages)
        && doc["seed"] == json!(seed)
        && doc["generator"] == json!(generator_fingerprint());
    if !same {
        return None;
    }
    match held_messages(home) {
        Ok(n) if n == messages => {}
        Ok(n) => {
            eprintln!("fixture: holds {n} messages instead of {messages}; regenerating");
            return None;
        }
        Err(e) => {
            eprintln!("fixture: cannot open the cached store ({e}); regenerating");
            return None;
        }
    }
    if doc["format"] != json!(format_fingerprint()) {
        eprintln!("fixture: the store code changed; checking the cached home with potluck fsck");
        let check = run(potluck(home).args(["--json", "fsck"]), limit);
        let ok = check.code == Some(0)
            && serde_json::from_str::<Value>(check.stdout.trim())
                .is_ok_and(|v| v["ok"] == json!(true) && v["messages"] == json!(messages));
        if !ok {
            eprintln!(
                "fixture: fsck failed; regenerating ({})",
                check.stderr.trim()
            );
            return None;
        }
        doc["format"] = json!(format_fingerprint());
        std::fs::write(marker, doc.to_string()).ok()?;
    }
    Some(Fixture {
        home: home.to_owned(),
        messages,
        feeds,
        bytes: doc["bytes"].as_u64()?,
        size_on_disk: doc["size_on_disk"].as_u64()?,
        seconds: doc["seconds"].as_f64().unwrap_or(0.0),
        generated: false,
        key: doc.to_string(),
    })
}

// ---------------------------------------------------------------------------
// The in-process sync fixture (`sync`, `hub`).

/// Realistic content, ~250-350 bytes: RSVPs with notes and some events.
fn sync_content(feed: u64, seq: usize, event: potluck::feed::message::MessageId) -> Vec<u8> {
    if seq % 10 == 1 {
        format!(
            r#"{{"type":"event","title":"Potluck number {feed}-{seq}","start":"2031-05-{:02}T18:00:00-04:00","tz":"America/New_York","location":"Community hall, 12 Main Street","description":"Bring a dish to share. Plates and cutlery provided."}}"#,
            seq % 28 + 1
        )
        .into_bytes()
    } else {
        format!(
            r#"{{"type":"rsvp","event":"{event}","status":"going","guests":{},"note":"Looking forward to it! I will bring a salad and some bread, feed {feed} message {seq}."}}"#,
            seq % 3
        )
        .into_bytes()
    }
}

/// The key of sync fixture feed number `feed`.
pub fn sync_feed_key(feed: u64) -> ed25519_dalek::SigningKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&feed.to_be_bytes());
    ed25519_dalek::SigningKey::from_bytes(&seed)
}

/// Signs `per_feed` messages (one event in ten, the rest RSVPs to it)
/// for each of the feeds numbered `first_feed ..` `first_feed + feeds`
/// and ingests them into `store` in batches of 5,000. Returns the
/// messages' own encoded bytes.
pub fn fill_sync_fixture(
    store: &potluck::store::Store,
    first_feed: u64,
    feeds: usize,
    per_feed: usize,
) -> usize {
    use potluck::feed::message::{Message, MessageId};
    let mut total_bytes = 0usize;
    let mut batch = Vec::new();
    for f in first_feed..first_feed + feeds as u64 {
        let key = sync_feed_key(f);
        let mut prev = MessageId::default();
        let mut event = MessageId::default();
        for seq in 1..=per_feed {
            let msg = Message::sign(
                &key,
                seq as u64,
                prev,
                seq as i64,
                &sync_content(f - first_feed, seq, event),
            )
            .expect("sign");
            if seq % 10 == 1 {
                event = msg.id();
            }
            prev = msg.id();
            total_bytes += msg.bytes().len();
            batch.push(msg);
            if batch.len() >= 5_000 {
                let r = store.ingest(std::mem::take(&mut batch)).expect("ingest");
                assert!(r.rejected.is_none());
            }
        }
    }
    let r = store.ingest(batch).expect("ingest");
    assert!(r.rejected.is_none());
    total_bytes
}

/// Messages held by an open store, all feeds.
pub fn held(store: &potluck::store::Store) -> u64 {
    store
        .feeds()
        .expect("feeds")
        .iter()
        .map(|(_, h)| h.sequence)
        .sum()
}

// ---------------------------------------------------------------------------
// Statistics.

/// The `p`-th percentile (0-100) of sorted values, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A duration in ms, or in µs when below a millisecond.
pub fn show(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.2} µs", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.3} ms", d.as_secs_f64() * 1e3)
    }
}

/// "n=…, min …, p50 …, p90 …, p99 …, max …", sorting `samples`.
pub fn summary(samples: &mut [Duration]) -> String {
    samples.sort_unstable();
    format!(
        "n={}, min {}, p50 {}, p90 {}, p99 {}, max {}",
        samples.len(),
        show(percentile(samples, 0.0)),
        show(percentile(samples, 50.0)),
        show(percentile(samples, 90.0)),
        show(percentile(samples, 99.0)),
        show(percentile(samples, 100.0)),
    )
}

/// Megabytes (10^6 bytes), for printing.
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// This machine's ed25519 verification rate on all its cores, in messages
/// per second: `verify_signatures_parallel` over batches of 2,000 of
/// `messages` fixture messages from `feeds` feeds (the receiver's batch
/// size), best of three passes. Measured in the same run as a sync, it is
/// the physical bound the sync rate is divided by, so that the ratio
/// means the same on another machine.
#[allow(dead_code)]
pub fn verification_rate(feeds: usize, messages: usize) -> f64 {
    use potluck::feed::validate;
    use potluck::fixtures::{FixtureSpec, generate};
    let all: Vec<potluck::feed::message::Message> = generate(&FixtureSpec {
        feeds,
        messages,
        seed: 7,
    })
    .collect();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        for batch in all.chunks(2_000) {
            validate::verify_signatures_parallel(batch).expect("fixture signatures verify");
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    all.len() as f64 / best.max(1e-9)
}
