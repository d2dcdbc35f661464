//! Two home networks behind real NATs and a hub on a "public" segment, all
//! in network namespaces (tests/hub_nat.rs, tests/hub_hostile.rs):
//!
//! ```text
//!   "internet": bridge in namespace INET, 203.0.113.0/24
//!     ├── hub            203.0.113.10
//!     ├── router r1 wan  203.0.113.1 ── masquerade ── lan 192.168.1.1/24: a1 .11, a2 .12
//!     └── router r2 wan  203.0.113.2 ── masquerade ── lan 192.168.2.1/24: b1 .11, b2 .12
//! ```
//!
//! Each router forwards what its laptops send out and answers to it, and
//! drops everything else (nftables, as field-notes.md's NAT recipe): a
//! laptop can dial the hub but never a laptop of the other home.
//!
//! No packet leaves the namespaces (203.0.113.0/24 is TEST-NET-3 and
//! exists only on the test's bridge). Needs root, `ip` and `nft`.

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};

use super::sandbox::{Sandbox, Server, finish};
use super::sh;

/// The hub's address on the "internet".
pub const HUB_ADDR: &str = "203.0.113.10";

/// Runs `nft -f -` with `rules` inside namespace `ns`.
pub fn nft(ns: &str, rules: &str) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("nft: no stdin")?
        .write_all(rules.as_bytes())
        .map_err(|e| format!("nft: {e}"))?;
    let out = child.wait_with_output().map_err(|e| format!("nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("nft: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// The namespaces of one run; deleted when dropped.
pub struct NatNet {
    prefix: String,
    made: Vec<String>,
}

/// A laptop: its namespace, its address, and its router's public one.
#[derive(Clone)]
pub struct Laptop {
    pub ns: String,
    pub addr: String,
    pub wan: String,
}

impl NatNet {
    /// The full name of this run's namespace `name` ("hub", "a1", …).
    pub fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    fn add_ns(&mut self, name: &str) -> Result<String, String> {
        let ns = self.ns(name);
        sh("ip", &["netns", "add", &ns])?;
        self.made.push(ns.clone());
        sh("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A veth pair from `ns` (named `inside`, with `cidr`) to a bridge
    /// `bridge` in `bridge_ns`.
    fn wire(
        &self,
        ns: &str,
        inside: &str,
        cidr: &str,
        bridge_ns: &str,
        bridge: &str,
        outside: &str,
    ) -> Result<(), String> {
        sh(
            "ip",
            &[
                "link", "add", inside, "netns", ns, "type", "veth", "peer", "name", outside,
                "netns", bridge_ns,
            ],
        )?;
        sh(
            "ip",
            &[
                "-n", bridge_ns, "link", "set", outside, "master", bridge, "up",
            ],
        )?;
        sh("ip", &["-n", ns, "addr", "add", cidr, "dev", inside])?;
        sh("ip", &["-n", ns, "link", "set", inside, "up"]).map(drop)
    }

    /// Builds the namespaces. Their names start with `prefix` (a short
    /// one per test binary: "ph" for hub_nat, "hh" for hub_hostile, whose
    /// tests run at the same time under `cargo test`), this process's id
    /// and `tag` (one per test of the binary); interface names are built
    /// from the same and must fit in 15 bytes, so keep both short.
    pub fn build(prefix: &str, tag: &str) -> Result<(NatNet, [Laptop; 4]), String> {
        let mut net = NatNet {
            prefix: format!("{prefix}{}{tag}", std::process::id() % 100_000),
            made: Vec::new(),
        };
        let p = net.prefix.clone();
        let inet = net.add_ns("inet")?;
        sh("ip", &["-n", &inet, "link", "add", "br0", "type", "bridge"])?;
        sh("ip", &["-n", &inet, "link", "set", "br0", "up"])?;
        let hub = net.add_ns("hub")?;
        net.wire(
            &hub,
            "eth0",
            &format!("{HUB_ADDR}/24"),
            &inet,
            "br0",
            &format!("{p}hub"),
        )?;
        let mut laptops = Vec::new();
        for home in 1..=2u8 {
            let router = net.add_ns(&format!("r{home}"))?;
            let wan = format!("203.0.113.{home}");
            net.wire(
                &router,
                "wan",
                &format!("{wan}/24"),
                &inet,
                "br0",
                &format!("{p}r{home}"),
            )?;
            sh(
                "ip",
                &["-n", &router, "link", "add", "lanbr", "type", "bridge"],
            )?;
            sh(
                "ip",
                &[
                    "-n",
                    &router,
                    "addr",
                    "add",
                    &format!("192.168.{home}.1/24"),
                    "dev",
                    "lanbr",
                ],
            )?;
            sh("ip", &["-n", &router, "link", "set", "lanbr", "up"])?;
            sh(
                "ip",
                &[
                    "netns",
                    "exec",
                    &router,
                    "sysctl",
                    "-qw",
                    "net.ipv4.ip_forward=1",
                ],
            )?;
            nft(
                &router,
                "table ip nat { chain natpost { type nat hook postrouting priority 100; oifname \"wan\" masquerade; }; }\n\
                 table ip filter { chain lanfw { type filter hook forward priority 0; policy drop; \
                 iifname \"lanbr\" accept; ct state established,related accept; }; }\n",
            )?;
            for n in 1..=2u8 {
                let name = format!("{}{n}", if home == 1 { 'a' } else { 'b' });
                let ns = net.add_ns(&name)?;
                let addr = format!("192.168.{home}.{}", 10 + n);
                net.wire(
                    &ns,
                    "eth0",
                    &format!("{addr}/24"),
                    &router,
                    "lanbr",
                    &format!("{p}{name}"),
                )?;
                sh(
                    "ip",
                    &[
                        "-n",
                        &ns,
                        "route",
                        "add",
                        "default",
                        "via",
                        &format!("192.168.{home}.1"),
                    ],
                )?;
                laptops.push(Laptop {
                    ns,
                    addr,
                    wan: wan.clone(),
                });
            }
        }
        let laptops: [Laptop; 4] = laptops.try_into().map_err(|_| "four laptops".to_owned())?;
        Ok((net, laptops))
    }

    /// A TCP listener bound to `addr` inside this run's namespace `name`,
    /// made by the test process itself (for a hub written for a test).
    /// A thread joins the namespace (`setns` moves only the calling
    /// thread), binds and ends; the socket keeps the namespace it was made
    /// in, so whoever accepts on it, on any thread, talks inside that
    /// namespace, and the test's other threads never left their own.
    pub fn listen_in(&self, name: &str, addr: &str) -> Result<TcpListener, String> {
        let path = format!("/var/run/netns/{}", self.ns(name));
        let addr = addr.to_owned();
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
            // SAFETY: `file` is an open namespace file for the duration of
            // the call, and the namespace changes only for this thread.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
            }
            TcpListener::bind(&addr).map_err(|e| format!("bind {addr} in {path}: {e}"))
        })
        .join()
        .map_err(|_| "the thread binding in a namespace panicked".to_owned())?
    }
}

impl Drop for NatNet {
    fn drop(&mut self) {
        for ns in self.made.iter().rev() {
            let _ = sh("ip", &["netns", "del", ns]);
        }
    }
}

/// `potluck serve` in namespace `ns` (with `--hub` when `hub`), killed
/// when dropped.
pub fn serve_in(ns: &str, sandbox: &Sandbox, home: &Path, listen: &str, hub: bool) -> Server {
    let mut args = vec!["--listen", listen, "--no-discovery", "--no-web"];
    if hub {
        args.push("--hub");
    }
    sandbox
        .spawn_serve_in(Some(ns), home, &args)
        .unwrap_or_else(|e| panic!("{ns}: {e}"))
}

/// Shows that `from` (whose home is `home`) cannot dial `to`, a laptop of
/// the other home listening on `port`: neither at its own address nor at
/// its router's public one. The `sync` runs in `from`'s namespace (or, when
/// `home`'s node runs, is handed to it, which is there too).
pub fn assert_no_direct_path(
    sandbox: &Sandbox,
    home: &Path,
    from: &Laptop,
    to: &Laptop,
    port: u16,
) {
    for target in [format!("{}:{port}", to.addr), format!("{}:{port}", to.wan)] {
        let run = finish(sandbox.command_in(Some(&from.ns), home, &["sync", &target]));
        assert!(
            !run.status.success(),
            "a laptop behind one NAT dialed {target} behind the other: {run:?}"
        );
    }
}
