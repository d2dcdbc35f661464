//! A whole mesh of sans-io nodes, for tests and benchmarks: one
//! [`Link`] per connection and one [`Sources`] per node, exactly as the
//! tokio node joins them, with packets delivered in any order (FIFO per
//! link), links cut and restored, and time advancing only when told. A
//! message is its `(feed, sequence)`; nothing is signed or stored.
//!
//! Built for `cfg(test)` and with the `test-utils` feature, as
//! iroh-gossip builds its `proto::sim`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::feed::message::FeedId;
use crate::proto::wire::Packet;

use super::session::Session;
use super::{
    Clock, ClockBase, Ingested, Link, LinkTiming, ModeChange, Opening, PeerMemory, Policy, Sources,
};

/// The grace time of every simulated node's [`Sources`].
pub const GRACE: Duration = Duration::from_millis(400);

/// One simulated node.
pub struct SimNode {
    /// What it holds: feed → latest sequence.
    pub heads: BTreeMap<FeedId, u64>,
    /// Its choice of live sources.
    pub sources: Sources,
    /// Its links, by the other node's index.
    pub links: BTreeMap<usize, Link>,
    /// Messages it received that it already held.
    pub duplicates: u64,
    /// The base its links keep their clocks against.
    pub base: ClockBase,
}

impl SimNode {
    /// What the node holds of `feed` (0 when it never heard of it: a feed
    /// nobody wrote to need not reach everyone).
    pub fn head(&self, feed: &FeedId) -> u64 {
        self.heads.get(feed).copied().unwrap_or(0)
    }
}

/// The packets a correct session opens with (`Hello`, clock, `ClockEnd`),
/// taking every feed pushed and remembering nothing: for peers written by
/// hand in tests, which then send what a correct node never would.
pub fn opening(policy: &Policy, mine: Clock) -> Vec<Packet> {
    let mut session = Session::start(policy, mine, None, false, None, Default::default());
    std::iter::from_fn(|| session.poll_packet()).collect()
}

/// The feed of simulated node `i`.
pub fn sim_id(i: usize) -> FeedId {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    FeedId(id)
}

/// The index of the simulated node whose feed is `feed`.
fn sim_index(feed: &FeedId) -> usize {
    let mut n = [0u8; 8];
    n.copy_from_slice(&feed.0[..8]);
    u64::from_be_bytes(n) as usize - 1
}

/// Timers of simulated links: nobody goes idle (the simulation decides
/// when packets move), and sources are checked at every step of time.
fn sim_timing() -> LinkTiming {
    LinkTiming {
        source_check: Duration::from_millis(1),
        ..LinkTiming::new(
            Duration::from_secs(86_400),
            Duration::from_secs(86_400 * 365),
        )
    }
}

/// A mesh of simulated nodes and the packets in flight between them.
pub struct Sim {
    /// The nodes, by index.
    pub nodes: Vec<SimNode>,
    /// Packets in flight on each directed link `(from, to)`.
    pub wire: BTreeMap<(usize, usize), VecDeque<Packet>>,
    /// The simulated time.
    pub now: Instant,
}

impl Sim {
    /// `n` nodes, none connected; node `i` holds its own empty feed.
    pub fn new(n: usize) -> Sim {
        let nodes = (0..n)
            .map(|i| SimNode {
                heads: BTreeMap::from([(sim_id(i), 0)]),
                sources: Sources::new(GRACE),
                links: BTreeMap::new(),
                duplicates: 0,
                base: ClockBase::default(),
            })
            .collect();
        Sim {
            nodes,
            wire: BTreeMap::new(),
            now: Instant::now(),
        }
    }

    /// `n` nodes on a ring plus `n` random chords, all connected.
    pub fn ring_with_chords(n: usize, rng: &mut impl Rng) -> Sim {
        let mut sim = Sim::new(n);
        let mut links: BTreeSet<(usize, usize)> = (0..n)
            .map(|i| (i.min((i + 1) % n), i.max((i + 1) % n)))
            .collect();
        for _ in 0..n {
            let (a, b) = (rng.gen_range(0..n), rng.gen_range(0..n));
            if a != b {
                links.insert((a.min(b), a.max(b)));
            }
        }
        for &(a, b) in &links {
            sim.connect(a, b, None);
        }
        sim
    }

    /// Connects `a` and `b`, with what each remembers of the other.
    pub fn connect(&mut self, a: usize, b: usize, memories: Option<(PeerMemory, PeerMemory)>) {
        let (ma, mb) = memories.map_or((None, None), |(x, y)| (Some(x), Some(y)));
        let now = self.now;
        for (x, y, m) in [(a, b, ma), (b, a, mb)] {
            let node = &mut self.nodes[x];
            let mine = node.heads.clone();
            let opening = Opening {
                peer: sim_id(y),
                policy: &Policy::Open,
                mine,
                base: node.base.current(),
                memory: m,
                once: false,
                timing: sim_timing(),
            };
            let link = Link::open(opening, &mut node.sources, now);
            node.links.insert(y, link);
            self.wire.insert((x, y), VecDeque::new());
        }
    }

    /// Cuts the link between `a` and `b`; returns what each remembers of
    /// the other. Packets in flight are lost.
    pub fn disconnect(&mut self, a: usize, b: usize) -> Option<(PeerMemory, PeerMemory)> {
        let mut memories = Vec::new();
        for (x, y) in [(a, b), (b, a)] {
            let node = &mut self.nodes[x];
            let mut link = node.links.remove(&y)?;
            memories.push(link.memory());
            self.wire.remove(&(x, y));
            let changes = link.leave(&mut node.sources);
            self.apply(x, changes);
        }
        let b_mem = memories.pop()?;
        Some((memories.pop()?, b_mem))
    }

    /// Hands push-mode changes to the links of node `x` they name.
    fn apply(&mut self, x: usize, changes: Vec<ModeChange>) {
        for change in changes {
            if let Some(link) = self.nodes[x].links.get_mut(&sim_index(&change.peer)) {
                link.handle_modes(&change);
            }
        }
    }

    /// Moves what every link wants to send onto the wire.
    pub fn flush(&mut self) {
        let now = self.now;
        for x in 0..self.nodes.len() {
            for (&y, link) in &mut self.nodes[x].links {
                let Some(q) = self.wire.get_mut(&(x, y)) else {
                    continue;
                };
                let before = q.len();
                let mut messages = 0;
                while let Some(p) = link.poll_packet() {
                    q.push_back(p);
                }
                while let Some((feed, first, last)) = link.poll_range() {
                    for seq in first..=last {
                        let mut bytes = feed.0.to_vec();
                        bytes.extend_from_slice(&seq.to_be_bytes());
                        q.push_back(Packet::Message(bytes));
                        messages += 1;
                    }
                }
                link.handle_sent(messages, q.len() > before, now);
            }
        }
    }

    /// Node `x` now holds `feed` up to `seq`: every link hears of it.
    fn appended(&mut self, x: usize, feed: FeedId, seq: u64) {
        let SimNode { links, base, .. } = &mut self.nodes[x];
        for link in links.values_mut() {
            link.handle_local_append(feed, seq);
            if link.wants_new_base() {
                let newer = base.newer_for(link);
                link.rebase(&newer);
            }
        }
    }

    /// Node `x` publishes the next message of its own feed.
    pub fn publish(&mut self, x: usize) {
        let feed = sim_id(x);
        let seq = self.nodes[x].head(&feed) + 1;
        self.nodes[x].heads.insert(feed, seq);
        self.appended(x, feed, seq);
    }

    /// Delivers the next packet on link `from → to`.
    ///
    /// # Panics
    /// On a protocol violation or a gap in a feed: the simulated nodes
    /// are all correct, so either is a bug.
    pub fn deliver(&mut self, from: usize, to: usize) {
        let Some(p) = self.wire.get_mut(&(from, to)).and_then(|q| q.pop_front()) else {
            return;
        };
        let now = self.now;
        let node = &mut self.nodes[to];
        let Some(link) = node.links.get_mut(&from) else {
            return;
        };
        let mut appended = None;
        let changes = match p {
            Packet::Message(bytes) => {
                link.handle_messages(now).expect("a message before hello");
                let feed = FeedId(bytes[..32].try_into().expect("a simulated message"));
                let seq = u64::from_be_bytes(bytes[32..].try_into().expect("a simulated message"));
                if !link.accepts(&feed) {
                    return;
                }
                let held = node.heads.get(&feed).copied().unwrap_or(0);
                assert!(seq <= held + 1, "a gap in a feed: {seq} after {held}");
                let new = seq == held + 1;
                if new {
                    node.heads.insert(feed, seq);
                    appended = Some((feed, seq));
                } else {
                    node.duplicates += 1;
                }
                let fed: BTreeSet<FeedId> = if new {
                    BTreeSet::from([feed])
                } else {
                    BTreeSet::new()
                };
                let ingested = Ingested {
                    positions: &[(feed, seq)],
                    held: 1,
                    new: &fed,
                    forked: &[],
                    accepted: u64::from(new),
                };
                link.handle_ingested(&mut node.sources, &ingested, now)
            }
            control => {
                let end = link
                    .handle_packet(control, now)
                    .expect("a protocol violation");
                assert_eq!(end, None, "simulated nodes never end a session");
                link.handle_batch_end(&mut node.sources, now)
            }
        };
        self.apply(to, changes);
        if let Some((feed, seq)) = appended {
            self.appended(to, feed, seq);
        }
    }

    /// Lets `by` pass: every link whose timer is due handles it.
    pub fn tick(&mut self, by: Duration) {
        self.now += by;
        let now = self.now;
        for x in 0..self.nodes.len() {
            let node = &mut self.nodes[x];
            let heads = &node.heads;
            let mut changes = Vec::new();
            for link in node.links.values_mut() {
                if link.poll_timeout().is_some_and(|at| at <= now) {
                    changes.extend(
                        link.handle_timeout(now, &mut node.sources, |f| {
                            heads.get(f).copied().unwrap_or(0)
                        })
                        .expect("simulated links never go idle"),
                    );
                }
            }
            self.apply(x, changes);
        }
    }

    /// One hop on every link: flushes what every link wants to send,
    /// delivers exactly what was then on each link (links of equal speed),
    /// and lets `by` pass.
    pub fn round(&mut self, by: Duration) {
        self.flush();
        let lens: Vec<((usize, usize), usize)> =
            self.wire.iter().map(|(l, q)| (*l, q.len())).collect();
        for ((a, b), len) in lens {
            for _ in 0..len {
                self.deliver(a, b);
            }
        }
        self.tick(by);
    }

    /// Packets are still in flight.
    pub fn in_flight(&self) -> bool {
        self.wire.values().any(|q| !q.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a random mesh to quiescence; returns (heads per node, the
    /// expected heads, duplicates).
    /// `max_tick_ms` is the most time that passes at once (20 % of steps):
    /// large values make links slow against the grace time.
    fn run_mesh(
        seed: u64,
        n: usize,
        publishes: usize,
        cut: bool,
        max_tick_ms: u64,
    ) -> (Sim, BTreeMap<FeedId, u64>) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut sim = Sim::ring_with_chords(n, &mut rng);
        let ring_link = (0, 1);
        let mut cut_at = cut.then(|| rng.gen_range(0..800usize));
        let mut cut_memories = None;
        let mut published = 0;
        let links: Vec<(usize, usize)> = sim.wire.keys().copied().collect();
        for step in 0..3_000usize {
            sim.flush();
            if cut_at == Some(step) && sim.nodes[0].links.contains_key(&1) {
                cut_memories = sim.disconnect(ring_link.0, ring_link.1);
                cut_at = None;
            }
            if step == 1_500
                && let Some(m) = cut_memories.take()
            {
                sim.connect(ring_link.0, ring_link.1, Some(m));
                continue;
            }
            match rng.gen_range(0..100) {
                0..70 => {
                    let (a, b) = links[rng.gen_range(0..links.len())];
                    sim.deliver(a, b);
                }
                70..80 if published < publishes => {
                    sim.publish(rng.gen_range(0..n));
                    published += 1;
                }
                _ => sim.tick(Duration::from_millis(rng.gen_range(0..=max_tick_ms))),
            }
        }
        if let Some(m) = cut_memories.take() {
            sim.connect(ring_link.0, ring_link.1, Some(m));
        }
        let expected: BTreeMap<FeedId, u64> = (0..n)
            .map(|i| (sim_id(i), sim.nodes[i].head(&sim_id(i))))
            .collect();
        // Drain: deliver everything, let grace times pass; bounded.
        for _ in 0..200 {
            sim.flush();
            while sim.in_flight() {
                let links: Vec<(usize, usize)> = sim.wire.keys().copied().collect();
                for (a, b) in links {
                    sim.deliver(a, b);
                }
                sim.flush();
            }
            if sim
                .nodes
                .iter()
                .all(|node| expected.iter().all(|(f, s)| node.head(f) == *s))
            {
                break;
            }
            sim.tick(GRACE / 2);
        }
        (sim, expected)
    }

    /// Links of equal speed: each round delivers what was on every link
    /// at its start (one hop); a message is published every `every`
    /// rounds. Returns the duplicates received in the first and the second
    /// half of the publishes.
    fn run_rounds(seed: u64, n: usize, publishes: usize, every: usize) -> (u64, u64) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut sim = Sim::ring_with_chords(n, &mut rng);
        let mut halves = [0, 0];
        for k in 0..publishes + 50 {
            if k < publishes {
                sim.publish(rng.gen_range(0..n));
            }
            for _ in 0..every {
                sim.round(Duration::from_millis(5));
            }
            let dups: u64 = sim.nodes.iter().map(|n| n.duplicates).sum();
            halves[usize::from(k >= publishes / 2)] = dups;
        }
        for (i, node) in sim.nodes.iter().enumerate() {
            for x in 0..n {
                let feed = sim_id(x);
                assert_eq!(node.head(&feed), sim.nodes[x].head(&feed), "node {i}");
            }
        }
        (halves[0], halves[1] - halves[0])
    }

    #[test]
    fn duplicates_stop_once_each_feed_has_its_source() {
        // Messages one hop apart: the first ones of each feed may come
        // twice while sources are chosen; later ones come once.
        let (first, second) = run_rounds(7, 8, 200, 1);
        assert!(first <= 8 * 8, "{first} duplicates while choosing sources");
        assert!(second <= 8, "{second} duplicates once sources are chosen");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        #[test]
        fn every_node_of_a_mesh_converges(seed in proptest::prelude::any::<u64>(), n in 2usize..7, cut in proptest::prelude::any::<bool>()) {
            let (sim, expected) = run_mesh(seed, n, 40, cut, 60);
            for (i, node) in sim.nodes.iter().enumerate() {
                for (feed, seq) in &expected {
                    proptest::prop_assert_eq!(node.head(feed), *seq, "node {}", i);
                }
            }
        }
    }
}
