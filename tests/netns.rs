//! Real network faults between five nodes, each `potluck serve` in a
//! network namespace of its own that this test makes: the five hang off a
//! bridge in a sixth namespace (the "hub") through veth pairs, every link
//! delays 20 ms and loses 5 % of packets (`tc netem`; where the kernel has
//! no netem, 5 % loss through nftables and no delay: the test says which on
//! stderr), and for a while the
//! bridge is split in two (nodes 0–2 on one, 3–4 on another): a partition.
//! Both sides publish during it; once it heals, every node holds every
//! event.
//!
//! No packet leaves the namespaces the test made (10.77.0.0/24 exists only
//! on their bridge). The commands other than `serve` run in the test's own
//! namespace and reach each node through its control socket (a file).
//! Needs root and `ip`/`tc` (iproute2), and `nft` where there is no netem;
//! where namespaces cannot be made,
//! the test says so on stderr and passes without running (`.ci/run` runs
//! as root, so there it runs).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::sandbox::{BIN, Sandbox, clean_env};
use common::sh;

const NODES: usize = 5;
/// Longest wait for the nodes to converge (TCP retransmits after a
/// partition back off for a few seconds).
const CONVERGE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(250);

/// The namespaces, bridge and links of one run; all deleted when dropped.
struct Net {
    prefix: String,
    /// What the links suffer (see [`impair`]).
    faults: &'static str,
}

impl Net {
    fn hub(&self) -> String {
        format!("{}-hub", self.prefix)
    }
    fn ns(&self, i: usize) -> String {
        format!("{}-n{i}", self.prefix)
    }
    /// The veth end inside node `i`'s namespace, and the one on the hub.
    fn veth(&self, i: usize) -> (String, String) {
        (
            format!("{}v{i}a", self.prefix),
            format!("{}v{i}b", self.prefix),
        )
    }
    fn addr(i: usize) -> String {
        format!("10.77.0.{}", i + 1)
    }

    fn build() -> Result<Net, String> {
        let mut net = Net {
            prefix: format!("pl{}", std::process::id() % 100_000),
            faults: "none",
        };
        let hub = net.hub();
        sh("ip", &["netns", "add", &hub])?;
        for bridge in ["br0", "br1"] {
            sh("ip", &["-n", &hub, "link", "add", bridge, "type", "bridge"])?;
            sh("ip", &["-n", &hub, "link", "set", bridge, "up"])?;
        }
        for i in 0..NODES {
            let ns = net.ns(i);
            let (inside, outside) = net.veth(i);
            sh("ip", &["netns", "add", &ns])?;
            sh("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            sh(
                "ip",
                &[
                    "link", "add", &inside, "netns", &ns, "type", "veth", "peer", "name", &outside,
                    "netns", &hub,
                ],
            )?;
            sh(
                "ip",
                &["-n", &hub, "link", "set", &outside, "master", "br0", "up"],
            )?;
            let cidr = format!("{}/24", Net::addr(i));
            sh("ip", &["-n", &ns, "addr", "add", &cidr, "dev", &inside])?;
            sh("ip", &["-n", &ns, "link", "set", &inside, "up"])?;
            net.faults = impair(&ns, &inside);
        }
        Ok(net)
    }

    /// Moves node `i`'s link to `bridge` (`br1` splits it off, `br0`
    /// brings it back).
    fn attach(&self, i: usize, bridge: &str) {
        let (_, outside) = self.veth(i);
        sh(
            "ip",
            &["-n", &self.hub(), "link", "set", &outside, "master", bridge],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Makes node `ns`'s link lossy and slow: `tc netem` (20 ms delay, 5 %
/// loss) where the kernel has it; else 5 % loss on what the node sends,
/// with nftables (kernels without `sch_netem`, like the ones this project
/// is tested on, cannot delay); else nothing. Returns what was applied.
fn impair(ns: &str, dev: &str) -> &'static str {
    let netem = [
        "-n", ns, "qdisc", "add", "dev", dev, "root", "netem", "delay", "20ms", "loss", "5%",
    ];
    if sh("tc", &netem).is_ok() {
        return "tc netem: 20 ms delay and 5 % loss on every link";
    }
    let nft = |rule: &str| sh("ip", &["netns", "exec", ns, "nft", rule]);
    let lossy = nft("add table inet faults")
        .and_then(|_| {
            nft("add chain inet faults out { type filter hook output priority 0; policy accept; }")
        })
        .and_then(|_| {
            nft("add rule inet faults out oifname != \"lo\" numgen random mod 100 < 5 drop")
        });
    match lossy {
        Ok(_) => "nftables: 5 % loss on every link (no sch_netem in this kernel: no delay)",
        Err(_) => "none (neither tc netem nor nftables works here)",
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of every veth pair.
        for i in 0..NODES {
            let _ = sh("ip", &["netns", "del", &self.ns(i)]);
        }
        let _ = sh("ip", &["netns", "del", &self.hub()]);
    }
}

/// `potluck serve` inside node `i`'s namespace, killed when dropped.
struct NsServer {
    child: Child,
    home: PathBuf,
}

impl Drop for NsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_in(net: &Net, i: usize, sandbox: &Sandbox, home: &Path) -> NsServer {
    let listen = format!("{}:7643", Net::addr(i));
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &net.ns(i), BIN, "--home"])
        .arg(home)
        .args(["serve", "--listen", &listen, "--no-discovery", "--no-web"]);
    for j in (0..NODES).filter(|&j| j != i) {
        cmd.args(["--peer", &format!("{}:7643", Net::addr(j))]);
    }
    clean_env(&mut cmd, sandbox.dir());
    let mut child = cmd.spawn().expect("spawn potluck serve in a namespace");
    let (tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Keep stderr drained so that the node never blocks on logging.
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut BufReader::new(stderr), &mut std::io::sink());
    });
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(" listening on ") => break,
            Ok(_) => continue,
            Err(e) => panic!("node {i} did not start listening: {e}"),
        }
    }
    NsServer {
        child,
        home: home.to_owned(),
    }
}

/// The event ids node `home` lists.
fn event_ids(sandbox: &Sandbox, home: &Path) -> Vec<String> {
    let doc = sandbox.json(home, &["events", "--limit", "0"]);
    doc.as_array()
        .map(|list| {
            list.iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until every node in `nodes` lists every id in `ids`.
fn wait_until_all_hold(sandbox: &Sandbox, homes: &[&Path], ids: &[String], what: &str) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let missing: Vec<(usize, usize)> = homes
            .iter()
            .enumerate()
            .map(|(i, home)| {
                let held = event_ids(sandbox, home);
                (i, ids.iter().filter(|id| !held.contains(id)).count())
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: after {CONVERGE:?}, (node, events missing): {missing:?}"
        );
        std::thread::sleep(POLL);
    }
}

#[test]
fn five_nodes_behind_loss_delay_and_a_partition_converge_once_it_heals() {
    let net = match Net::build() {
        Ok(net) => net,
        Err(e) => {
            eprintln!(
                "SKIPPED: five_nodes_behind_loss_delay_and_a_partition…: cannot make network namespaces here ({e}); run as root with iproute2"
            );
            return;
        }
    };
    eprintln!("link faults: {}", net.faults);
    let sandbox = Sandbox::new();
    let homes: Vec<PathBuf> = (0..NODES).map(|i| sandbox.home(&format!("n{i}"))).collect();
    for (i, home) in homes.iter().enumerate() {
        sandbox.json(home, &["init", "--name", &format!("Node {i}")]);
    }
    let servers: Vec<NsServer> = homes
        .iter()
        .enumerate()
        .map(|(i, home)| serve_in(&net, i, &sandbox, home))
        .collect();
    let all: Vec<&Path> = servers.iter().map(|s| s.home.as_path()).collect();

    // Every node announces; over lossy, slow links all five hear of all.
    let announce = |i: usize, title: &str| -> String {
        let doc = sandbox.json(
            &homes[i],
            &["announce", "--title", title, "--start", common::START],
        );
        doc["id"].as_str().expect("an event id").to_owned()
    };
    let mut ids: Vec<String> = (0..NODES)
        .map(|i| announce(i, &format!("before {i}")))
        .collect();
    wait_until_all_hold(&sandbox, &all, &ids, "before the partition");

    // Split {0,1,2} | {3,4}; both sides publish.
    for i in 3..NODES {
        net.attach(i, "br1");
    }
    let left: Vec<String> = (0..3).map(|i| announce(i, &format!("left {i}"))).collect();
    let right: Vec<String> = (3..NODES)
        .map(|i| announce(i, &format!("right {i}")))
        .collect();
    // Each side converges within itself while split...
    wait_until_all_hold(&sandbox, &all[..3], &left, "the left side, split");
    wait_until_all_hold(&sandbox, &all[3..], &right, "the right side, split");
    // ...and does not hear the other side.
    for home in &all[..3] {
        let held = event_ids(&sandbox, home);
        assert!(
            right.iter().all(|id| !held.contains(id)),
            "the partition leaked: {} holds a right-side event",
            home.display()
        );
    }

    // Heal: every node holds every event.
    for i in 3..NODES {
        net.attach(i, "br0");
    }
    ids.extend(left);
    ids.extend(right);
    wait_until_all_hold(&sandbox, &all, &ids, "after the partition healed");
    drop(servers);
    drop(net);
}
