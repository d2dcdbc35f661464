//! A laptop behind a real home router is dialed directly from another
//! home once `potluck serve` has mapped its port. The router is Debian's
//! `miniupnpd` (the nftables build), in a network namespace of its own
//! that this test makes:
//!
//! ```text
//!  laptop ns                 router ns                          inet ns        outside ns
//!  eth0 192.168.77.2 ── lan 192.168.77.1 │ wan1 1.2.3.1 ── bridge br0 ── eth0 1.2.3.2
//!  potluck serve             masquerade, forward: drop        (the "internet")  potluck sync
//!                            but what miniupnpd opens
//! ```
//!
//! miniupnpd refuses to map when its WAN address is private or reserved
//! (RFC 1918, the documentation and benchmarking ranges…), so the
//! "internet" here is 1.2.3.0/24: it exists only on the test's bridge,
//! and no packet leaves the namespaces (the router has no default route).
//!
//! Each test first shows the negative control (`"port_mapping": false`:
//! the other home's dial is refused and the router holds no mapping),
//! then, with the default setting, waits for the node's "port mapped"
//! line, syncs from the other home through the mapped address, and checks
//! that the connection reached the laptop directly (its log shows the
//! other home's own address, 1.2.3.2, not the router's) and that the
//! mapping is deleted when the node stops. One test lets the router speak
//! PCP/NAT-PMP and UPnP-IGD (the node takes PCP first), the other only
//! UPnP-IGD.
//!
//! The renewal test has the router grant PCP leases of 20 s only
//! (`max_lifetime`) and watches the router (its lease file and its
//! forward rule) while the node renews the mapping twice, has the other
//! home dial the laptop directly once the first lease is over, then kills
//! the node (so it cannot delete the mapping) and sees the router drop
//! the mapping when its last lease ends. About 50 s.
//!
//! Needs root, `ip` (iproute2), `nft` (nftables) and `/usr/sbin/miniupnpd`
//! (`miniupnpd-nftables`); `.ci/run` installs them and runs as root.
//! Without them the tests fail, saying what is missing.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::sandbox::{POLL, Sandbox, Server};
use common::{DEADLINE, START, sh};

const MINIUPNPD: &str = "/usr/sbin/miniupnpd";
const LAPTOP: &str = "192.168.77.2";
const ROUTER_LAN: &str = "192.168.77.1";
const ROUTER_WAN: &str = "1.2.3.1";
const OUTSIDE: &str = "1.2.3.2";
const PORT: u16 = 7643;
/// miniupnpd's lease file, in the router's directory: a line per mapping,
/// `PROTO:EXT_PORT:INT_ADDR:INT_PORT:EXPIRES:DESCRIPTION` (`EXPIRES` in
/// Unix seconds).
const LEASE_FILE: &str = "upnp.leases";
/// The lease the router grants by PCP in the renewal test: short enough
/// to watch it be renewed twice and then run out within a minute, long
/// enough that a renewal (at 15 s, see `proto::portmap::Schedule`) is
/// well before its end.
const SHORT_LEASE: u32 = 20;

/// Fails the test, saying what is missing, unless it can run here.
fn require_tools() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mut missing = Vec::new();
    if !root {
        missing.push("root (network namespaces and nftables)".to_owned());
    }
    for (tool, package) in [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        (MINIUPNPD, "miniupnpd-nftables"),
    ] {
        let found = Command::new(tool)
            .arg(if tool == MINIUPNPD { "--version" } else { "-V" })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            missing.push(format!("`{tool}` (Debian package {package})"));
        }
    }
    assert!(
        missing.is_empty(),
        "this test runs a real router (miniupnpd) in network namespaces and needs {}; \
         run it as root with those installed, as .ci/run does",
        missing.join(", ")
    );
}

/// The four namespaces of one test and the router daemon in one of them;
/// the daemon is stopped and the namespaces deleted when dropped.
struct Net {
    prefix: String,
    miniupnpd: Option<Child>,
    miniupnpd_log: Arc<Mutex<String>>,
}

impl Net {
    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// Builds the namespaces, links and the router's ruleset. `tag` keeps
    /// two tests of this binary (one process) apart.
    fn build(tag: &str) -> Result<Net, String> {
        let net = Net {
            prefix: format!("pm{}{tag}", std::process::id() % 100_000),
            miniupnpd: None,
            miniupnpd_log: Arc::default(),
        };
        let (inet, router, laptop, outside) = (
            net.ns("inet"),
            net.ns("router"),
            net.ns("laptop"),
            net.ns("out"),
        );
        for ns in [&inet, &router, &laptop, &outside] {
            sh("ip", &["netns", "add", ns])?;
            sh("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        sh("ip", &["-n", &inet, "link", "add", "br0", "type", "bridge"])?;
        sh("ip", &["-n", &inet, "link", "set", "br0", "up"])?;
        // The router's WAN side and the other home, on the "internet".
        for (ns, inside, bridge_end, cidr) in [
            (&router, "wan1", "r", format!("{ROUTER_WAN}/24")),
            (&outside, "eth0", "o", format!("{OUTSIDE}/24")),
        ] {
            let bridge_end = format!("{}{bridge_end}", net.prefix);
            sh(
                "ip",
                &[
                    "link",
                    "add",
                    inside,
                    "netns",
                    ns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &bridge_end,
                    "netns",
                    &inet,
                ],
            )?;
            sh(
                "ip",
                &[
                    "-n",
                    &inet,
                    "link",
                    "set",
                    &bridge_end,
                    "master",
                    "br0",
                    "up",
                ],
            )?;
            sh("ip", &["-n", ns, "addr", "add", &cidr, "dev", inside])?;
            sh("ip", &["-n", ns, "link", "set", inside, "up"])?;
        }
        // The home network: the laptop behind the router.
        sh(
            "ip",
            &[
                "link", "add", "lan", "netns", &router, "type", "veth", "peer", "name", "eth0",
                "netns", &laptop,
            ],
        )?;
        sh(
            "ip",
            &[
                "-n",
                &router,
                "addr",
                "add",
                &format!("{ROUTER_LAN}/24"),
                "dev",
                "lan",
            ],
        )?;
        sh("ip", &["-n", &router, "link", "set", "lan", "up"])?;
        sh(
            "ip",
            &[
                "-n",
                &laptop,
                "addr",
                "add",
                &format!("{LAPTOP}/24"),
                "dev",
                "eth0",
            ],
        )?;
        sh("ip", &["-n", &laptop, "link", "set", "eth0", "up"])?;
        sh(
            "ip",
            &["-n", &laptop, "route", "add", "default", "via", ROUTER_LAN],
        )?;
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
        // A home router: masquerade out, forward nothing in but what
        // miniupnpd opens. miniupnpd's nftables build adds its rules to
        // the chains `miniupnpd`, `prerouting_miniupnpd` and
        // `postrouting_miniupnpd` of `table inet filter` and creates
        // none of them (Debian's nft_init.sh would, but it sources a
        // helper only the iptables build ships): without them it answers
        // NAT-PMP and fails to add the forwarding rule.
        let ruleset = r#"
table inet filter {
  chain forward { type filter hook forward priority 0; policy drop;
    iifname "lan" accept; ct state established,related accept; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd; oifname "wan1" masquerade; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
"#;
        let file = std::env::temp_dir().join(format!("{}-ruleset.nft", net.prefix));
        std::fs::write(&file, ruleset).map_err(|e| e.to_string())?;
        let loaded = sh(
            "ip",
            &[
                "netns",
                "exec",
                &router,
                "nft",
                "-f",
                &file.to_string_lossy(),
            ],
        );
        let _ = std::fs::remove_file(&file);
        loaded?;
        Ok(net)
    }

    /// Starts miniupnpd on the router, with NAT-PMP/PCP or UPnP-IGD only,
    /// and waits until it listens. `pcp_lease` caps the lease the router
    /// grants by PCP (`max_lifetime`; its default is a day), so that a
    /// test can watch renewals happen in seconds.
    fn start_router(&mut self, dir: &Path, pmp: bool, pcp_lease: Option<u32>) {
        let conf = dir.join("miniupnpd.conf");
        let mut text = format!(
            "ext_ifname=wan1\n\
             listening_ip=lan\n\
             http_port=0\n\
             enable_upnp=yes\n\
             enable_natpmp={}\n\
             ipv6_disable=yes\n\
             secure_mode=yes\n\
             lease_file={}\n\
             allow 1024-65535 192.168.77.0/24 1024-65535\n\
             deny 0-65535 0.0.0.0/0 0-65535\n",
            if pmp { "yes" } else { "no" },
            dir.join(LEASE_FILE).display()
        );
        if let Some(lease) = pcp_lease {
            // miniupnpd refuses to start unless min_lifetime (default
            // 120 s) is below max_lifetime; a PCP request for more than
            // max_lifetime is granted max_lifetime.
            text.push_str(&format!(
                "min_lifetime={}\nmax_lifetime={lease}\n",
                lease / 2
            ));
        }
        std::fs::write(&conf, text).expect("write miniupnpd.conf");
        let pid = dir.join("miniupnpd.pid");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns("router"), MINIUPNPD, "-d", "-f"])
            .arg(&conf)
            .arg("-P")
            .arg(&pid)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start miniupnpd");
        let mut pipe = child.stderr.take().expect("miniupnpd's stderr");
        let log = self.miniupnpd_log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                log.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_str(&text);
            }
        });
        self.miniupnpd = Some(child);
        let ready = if pmp {
            "Listening for NAT-PMP/PCP traffic"
        } else {
            "HTTP listening on port"
        };
        self.wait_for_router_log(ready);
    }

    fn router_log(&self) -> String {
        self.miniupnpd_log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn wait_for_router_log(&self, needle: &str) {
        let deadline = Instant::now() + DEADLINE;
        while !self.router_log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "miniupnpd never logged {needle:?}: {}",
                self.router_log()
            );
            std::thread::sleep(POLL);
        }
    }

    /// The router's port forwarding rules (miniupnpd's DNAT chain).
    fn forwards(&self) -> String {
        sh(
            "ip",
            &[
                "netns",
                "exec",
                &self.ns("router"),
                "nft",
                "list",
                "chain",
                "inet",
                "filter",
                "prerouting_miniupnpd",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if let Some(mut child) = self.miniupnpd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("miniupnpd's log:\n{}", self.router_log());
        }
        // Deleting a namespace deletes its ends of the veth pairs.
        for role in ["laptop", "out", "router", "inet"] {
            let _ = sh("ip", &["netns", "del", &self.ns(role)]);
        }
    }
}

/// The rule forwarding `port` on the router to the laptop, as nft lists
/// it.
fn forward_rule(port: u16) -> String {
    format!("dport {port} dnat ip to {LAPTOP}:{PORT}")
}

/// The address the node logged as mapped.
fn mapped_address(log: &str) -> SocketAddr {
    const SAID: &str = "reach this node at ";
    let start = log
        .find(SAID)
        .unwrap_or_else(|| panic!("no mapped address in the log: {log}"))
        + SAID.len();
    let text: String = log[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    text.parse()
        .unwrap_or_else(|_| panic!("`{text}` is not an address: {log}"))
}

fn serve_on_laptop(sandbox: &Sandbox, net: &Net, home: &Path) -> Server {
    let listen = format!("{LAPTOP}:{PORT}");
    sandbox
        .spawn_serve_in(
            Some(&net.ns("laptop")),
            home,
            &["--listen", &listen, "--no-web", "--no-discovery"],
        )
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Homes of the laptop (with one announced event) and of the other home.
struct Homes {
    laptop: PathBuf,
    outside: PathBuf,
    event: String,
}

fn homes(sandbox: &Sandbox) -> Homes {
    let laptop = sandbox.home("laptop");
    let outside = sandbox.home("outside");
    sandbox.json(&laptop, &["init", "--name", "Laptop"]);
    sandbox.json(&outside, &["init", "--name", "Elsewhere"]);
    let doc = sandbox.json(
        &laptop,
        &["announce", "--title", "Picnic", "--start", START],
    );
    let event = doc["id"].as_str().expect("an event id").to_owned();
    Homes {
        laptop,
        outside,
        event,
    }
}

/// One test's world: the namespaces (`tag` as in [`Net::build`]) with
/// miniupnpd running on the router ([`Net::start_router`]), a sandbox, the
/// router's directory in it (config, lease file) and the two homes.
fn with_router(tag: &str, pmp: bool, pcp_lease: Option<u32>) -> (Net, Sandbox, PathBuf, Homes) {
    require_tools();
    let mut net = Net::build(tag).unwrap_or_else(|e| panic!("cannot build the namespaces: {e}"));
    let sandbox = Sandbox::new();
    let router_dir = sandbox.path("router");
    std::fs::create_dir_all(&router_dir).expect("router dir");
    net.start_router(&router_dir, pmp, pcp_lease);
    let homes = homes(&sandbox);
    (net, sandbox, router_dir, homes)
}

/// `potluck sync ADDR` run by the other home, from its namespace.
fn sync_from_outside(
    sandbox: &Sandbox,
    net: &Net,
    homes: &Homes,
    addr: &str,
) -> common::sandbox::Run {
    common::sandbox::finish(sandbox.command_in(
        Some(&net.ns("out")),
        &homes.outside,
        &["sync", addr],
    ))
}

fn outside_holds(sandbox: &Sandbox, homes: &Homes) -> bool {
    let doc = sandbox.json(&homes.outside, &["events", "--limit", "0"]);
    common::sandbox::events_contain(&doc, &homes.event)
}

/// The other home syncs from the laptop through `mapped` and gets its
/// event, directly: the laptop (`server`) saw the other home's own
/// address (the router forwarded the connection to it, with no relay or
/// masquerade between).
fn synced_directly(
    sandbox: &Sandbox,
    net: &Net,
    homes: &Homes,
    server: &Server,
    mapped: SocketAddr,
) {
    let synced = sync_from_outside(sandbox, net, homes, &mapped.to_string());
    assert!(synced.status.success(), "{synced:?}");
    assert!(
        outside_holds(sandbox, homes),
        "the other home synced but lacks the laptop's event"
    );
    server.wait_for_log(&format!("addr={OUTSIDE}:"));
}

/// The whole story with a router that speaks PCP/NAT-PMP (`pmp`) or only
/// UPnP-IGD; `method` is what the node must say it used.
fn dialed_directly_through_the_router(tag: &str, pmp: bool, method: &str) {
    let (net, sandbox, _router_dir, homes) = with_router(tag, pmp, None);
    let config = homes.laptop.join("config.json");
    let at_router = format!("{ROUTER_WAN}:{PORT}");

    // Negative control: with port mapping off, the router forwards
    // nothing and the other home cannot reach the laptop.
    std::fs::write(&config, r#"{"port_mapping": false}"#).expect("write config.json");
    let mut server = serve_on_laptop(&sandbox, &net, &homes.laptop);
    let refused = sync_from_outside(&sandbox, &net, &homes, &at_router);
    assert!(
        !refused.status.success(),
        "the other home reached the laptop without a mapping: {refused:?}"
    );
    assert!(!outside_holds(&sandbox, &homes));
    assert!(
        !net.forwards().contains("dnat"),
        "the router forwards a port nobody asked for: {}",
        net.forwards()
    );
    server.terminate();
    assert!(
        !server.stderr().contains("port mapped"),
        "mapped although port_mapping is false: {}",
        server.stderr()
    );
    drop(server);

    // The default (a node listening beyond loopback): the node maps its
    // port and says where it is reachable.
    std::fs::write(&config, "{}").expect("write config.json");
    let mut server = serve_on_laptop(&sandbox, &net, &homes.laptop);
    server.wait_for_log("port mapped on the router");
    let log = server.stderr();
    let mapped = mapped_address(&log);
    assert_eq!(mapped.ip().to_string(), ROUTER_WAN, "{log}");
    assert!(log.contains(&format!("method={method}")), "{log}");
    let rules = net.forwards();
    assert!(
        rules.contains(&forward_rule(mapped.port())),
        "the router holds no forward of {mapped} to the laptop: {rules}"
    );

    // The other home dials the mapped address and syncs.
    synced_directly(&sandbox, &net, &homes, &server, mapped);

    // Stopping the node deletes the mapping.
    let status = server.terminate();
    assert!(status.success(), "{status:?}: {}", server.stderr());
    assert!(
        server.stderr().contains("port mapping deleted"),
        "{}",
        server.stderr()
    );
    let rules = net.forwards();
    assert!(
        !rules.contains(&forward_rule(mapped.port())),
        "the mapping outlived the node: {rules}"
    );
    eprintln!("mapped {mapped} by {method}; the other home synced through it; deleted at shutdown");
}

#[test]
fn a_laptop_behind_a_router_speaking_pcp_is_dialed_directly() {
    dialed_directly_through_the_router("p", true, "PCP");
}

#[test]
fn a_laptop_behind_a_router_speaking_only_upnp_is_dialed_directly() {
    dialed_directly_through_the_router("u", false, "UPnP-IGD");
}

/// With a hub on the "internet": the laptop (behind the mapping router)
/// and the other home are members; the other home follows the laptop.
/// The hub tells it where the laptop can be dialed (the mapped port), and
/// it dials the laptop directly rather than through the hub's tunnel:
/// its `peers` shows the laptop at the router's address, `via_hub` empty.
#[test]
fn a_member_dials_another_directly_at_the_port_its_router_mapped() {
    let (net, sandbox, _router_dir, homes) = with_router("h", true, None);
    // The hub runs on the other home's host, at another port.
    let hub_home = sandbox.home("hub");
    sandbox.json(&hub_home, &["init", "--name", "Hub"]);
    let hub_listen = format!("{OUTSIDE}:7650");
    let _hub = sandbox
        .spawn_serve_in(
            Some(&net.ns("out")),
            &hub_home,
            &[
                "--listen",
                &hub_listen,
                "--no-web",
                "--no-discovery",
                "--hub",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let code = sandbox.json(&hub_home, &["invite", "--addr", &hub_listen, "--uses", "2"])["code"]
        .as_str()
        .expect("a member code")
        .to_owned();
    let laptop = serve_on_laptop(&sandbox, &net, &homes.laptop);
    laptop.wait_for_log("port mapped on the router");
    let mapped = mapped_address(&laptop.stderr());
    let outside = sandbox
        .spawn_serve_in(
            Some(&net.ns("out")),
            &homes.outside,
            &[
                "--listen",
                &format!("{OUTSIDE}:{PORT}"),
                "--no-web",
                "--no-discovery",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    sandbox.json(&homes.laptop, &["hub", "add", &code]);
    sandbox.json(&homes.outside, &["hub", "add", &code]);
    sandbox.json(&homes.outside, &["follow", &laptop.feed]);
    let doc = sandbox.json_until(
        &homes.outside,
        &["peers"],
        "the other home connected to the laptop",
        |d| {
            d["connected"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["feed"] == laptop.feed.as_str()))
        },
    );
    let session = doc["connected"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["feed"] == laptop.feed.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(session["via_hub"], serde_json::Value::Null, "{session}");
    assert_eq!(session["address"], mapped.to_string().as_str(), "{session}");
    sandbox.json_until(
        &homes.outside,
        &["events", "--limit", "0"],
        "the laptop's event over the direct session",
        |d| common::sandbox::events_contain(d, &homes.event),
    );
    drop(outside);
    drop(laptop);
}

/// When miniupnpd's lease for external TCP `port` ends (Unix seconds), as
/// its lease file says; `None` while it holds no lease for it.
fn lease_expiry(router_dir: &Path, port: u16) -> Option<u64> {
    let text = std::fs::read_to_string(router_dir.join(LEASE_FILE)).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.splitn(6, ':');
        let proto = fields.next()?;
        let ext_port = fields.next()?.parse::<u16>().ok()?;
        let expires = fields.nth(2)?.parse().ok()?;
        (proto == "TCP" && ext_port == port).then_some(expires)
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The router grants only a 20 s lease (PCP `max_lifetime`). The node
/// renews it before it ends, again and again: the router's lease file
/// shows the lease's end moving forward twice, its forward rule is there
/// throughout (checked every 250 ms), well after the first lease ended
/// the other home still dials the laptop directly through it, and the
/// node said "port mapped" once (a renewal, not a new mapping). Then the
/// node is killed (SIGKILL: it cannot delete the mapping): the rule stays
/// until its last lease ends, the router then drops it, and the other
/// home's dial fails. (A node stopped with SIGTERM deletes its mapping at
/// once: the two tests above.)
#[test]
fn a_short_lease_is_renewed_on_the_router_and_expires_once_the_node_is_gone() {
    let (net, sandbox, router_dir, homes) = with_router("r", true, Some(SHORT_LEASE));
    std::fs::write(homes.laptop.join("config.json"), "{}").expect("write config.json");
    let mut server = serve_on_laptop(&sandbox, &net, &homes.laptop);
    server.wait_for_log("port mapped on the router");
    let log = server.stderr();
    let mapped = mapped_address(&log);
    assert!(log.contains("method=PCP"), "{log}");
    assert!(
        log.contains(&format!("lease_s={SHORT_LEASE}")),
        "the router was to grant a {SHORT_LEASE} s lease: {log}"
    );
    let rule = forward_rule(mapped.port());
    let lease = Duration::from_secs(u64::from(SHORT_LEASE));

    // Watch the router until it has seen two renewals and the first
    // lease is over. A renewal replaces the rule (miniupnpd deletes and
    // re-adds it), so a single look may fall between the two; a rule
    // absent for a whole second is a lost mapping.
    let started = Instant::now();
    let mut expiries: Vec<u64> = Vec::new();
    let mut absent_since: Option<Instant> = None;
    loop {
        if net.forwards().contains(&rule) {
            absent_since = None;
        } else {
            let since = *absent_since.get_or_insert_with(Instant::now);
            assert!(
                since.elapsed() < Duration::from_secs(1),
                "the router dropped the mapping after {:?} (leases ending at {expiries:?}): {}\n{}",
                started.elapsed(),
                net.forwards(),
                server.stderr()
            );
        }
        if let Some(expires) = lease_expiry(&router_dir, mapped.port())
            && expiries.last() != Some(&expires)
        {
            assert!(
                expiries.last().is_none_or(|&last| expires > last),
                "the lease's end moved back: {expiries:?} then {expires}"
            );
            expiries.push(expires);
        }
        // Two renewals, and the first lease's end is past.
        if expiries.len() >= 3 && unix_now() > expiries[0] {
            break;
        }
        assert!(
            started.elapsed() < lease * 3 + DEADLINE,
            "the mapping was not renewed twice in {:?} (leases ending at {expiries:?}): {}",
            started.elapsed(),
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let renewed_after = started.elapsed();
    server.assert_running();
    let log = server.stderr();
    assert_eq!(
        log.matches("port mapped on the router").count(),
        1,
        "renewals are quiet; a second line means the mapping was made anew: {log}"
    );
    assert!(!log.contains("lost the port mapping"), "{log}");

    // The first lease is over; the other home still dials the laptop
    // directly through the renewed mapping.
    synced_directly(&sandbox, &net, &homes, &server, mapped);

    // The node dies without deleting its mapping: nobody renews it, and
    // the router drops it when its last lease ends.
    server.child.kill().expect("kill serve");
    let _ = server.child.wait();
    let last = lease_expiry(&router_dir, mapped.port())
        .unwrap_or_else(|| panic!("no lease left for {mapped}: {}", net.router_log()));
    assert!(
        net.forwards().contains(&rule),
        "the mapping went with the node, not with its lease"
    );
    let killed = Instant::now();
    while net.forwards().contains(&rule) {
        assert!(
            killed.elapsed() < lease + DEADLINE,
            "the router kept the mapping {:?} after the node died (lease ending at {last}, now {}): {}",
            killed.elapsed(),
            unix_now(),
            net.router_log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let gone_at = unix_now();
    assert!(
        gone_at + 1 >= last,
        "the router dropped the mapping at {gone_at}, before its lease ended at {last}"
    );
    assert_eq!(lease_expiry(&router_dir, mapped.port()), None);
    let refused = sync_from_outside(&sandbox, &net, &homes, &mapped.to_string());
    assert!(
        !refused.status.success(),
        "the other home reached the dead laptop's port: {refused:?}"
    );
    eprintln!(
        "a {SHORT_LEASE} s lease renewed {} times in {renewed_after:?} (ends {expiries:?}); \
         the other home synced directly after the first lease; \
         dropped by the router {:?} after the node was killed",
        expiries.len() - 1,
        killed.elapsed()
    );
}
