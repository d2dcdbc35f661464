//! Deterministic fixtures: a realistic, reproducible stream of signed
//! messages from many feeds, for scale tests and measurements
//! (`potluck fixtures`, see `docs/performance.md`).
//!
//! Pure generation, no I/O. Everything is derived from [`FixtureSpec::seed`]:
//! the keys (blake3 of a label, the seed and the feed index), the contents
//! (one seeded [`StdRng`]) and the timestamps (a fixed start plus one second
//! per message), so the same spec always yields byte-identical messages.
//!
//! The shape follows Scuttlebutt's ssb-fixtures:
//!
//! - messages per feed are Pareto distributed (a few feeds hold most of the
//!   messages), scaled so that the total is exactly `messages` and every
//!   feed has at least one;
//! - each feed first publishes an `about` with a name;
//! - about one feed in five organizes: some of its messages announce events
//!   (starting in 2031 or later, so they stay upcoming; some with a
//!   capacity; shown in America/New_York or Europe/Paris);
//! - some messages follow another feed (`contact`);
//! - most messages are RSVPs, mostly to a few popular events (a power law
//!   over the events announced so far, favouring both the oldest and the
//!   newest).
//!
//! Feeds are interleaved by a seeded random merge (the next message comes
//! from a feed chosen with probability proportional to the messages it has
//! left), so every feed stays in sequence order and feeds progress side by
//! side. An RSVP only ever names an event that came earlier in the output,
//! so a store ingesting the stream in order indexes every RSVP.
//!
//! Messages are made one at a time: memory holds per-feed state and the ids
//! of the events announced so far, never the messages.

use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use thiserror::Error;

use crate::content::{
    About, Contact, Event, EventTime, KnownContent, Rsvp, RsvpStatus, rfc3339_in_zone,
};
use crate::feed::message::{FeedId, Message, MessageId};

/// Most feeds a spec may ask for.
pub const MAX_FEEDS: usize = 100_000;
/// Most messages a spec may ask for.
pub const MAX_MESSAGES: usize = 10_000_000;

/// Timestamp of the first message: 2026-01-01T00:00:00Z, in ms.
const T0_MS: i64 = 1_767_225_600_000;
/// Each message is one second after the one before it in the output.
const STEP_MS: i64 = 1_000;
/// The first possible event start, 2031-01-01T00:00:00Z, in seconds.
const EVENTS_FROM_S: i64 = 1_924_992_000;
/// Pareto shape of messages per feed (1.16 is the "80/20" rule).
const PARETO_ALPHA: f64 = 1.2;
/// Share of feeds that announce events.
const ORGANIZER_SHARE: f64 = 0.2;
/// Chance that an organizer's message (after its `about`) is an event.
const EVENT_CHANCE: f64 = 0.15;
/// Chance that a message (after the `about`) is a follow.
const CONTACT_CHANCE: f64 = 0.08;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixtureSpec {
    /// Number of feeds (authors), 1 to [`MAX_FEEDS`], at most `messages`.
    pub feeds: usize,
    /// Total number of messages, 1 to [`MAX_MESSAGES`].
    pub messages: usize,
    /// Everything is derived from this.
    pub seed: u64,
}

/// Why a spec cannot be generated as asked.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FixtureError {
    /// No feeds, or more than [`MAX_FEEDS`].
    #[error("--feeds must be from 1 to {MAX_FEEDS} (got {0})")]
    Feeds(usize),
    /// No messages, or more than [`MAX_MESSAGES`].
    #[error("--messages must be from 1 to {MAX_MESSAGES} (got {0})")]
    Messages(usize),
    /// Fewer messages than feeds: every feed needs at least one.
    #[error("--messages ({messages}) must be at least --feeds ({feeds}): every feed has a message")]
    TooFewMessages {
        /// Feeds asked for.
        feeds: usize,
        /// Messages asked for.
        messages: usize,
    },
}

impl FixtureSpec {
    /// Checks the spec is within bounds, so that [`generate`] yields
    /// exactly `messages` messages from exactly `feeds` feeds.
    pub fn check(&self) -> Result<(), FixtureError> {
        if self.feeds == 0 || self.feeds > MAX_FEEDS {
            return Err(FixtureError::Feeds(self.feeds));
        }
        if self.messages == 0 || self.messages > MAX_MESSAGES {
            return Err(FixtureError::Messages(self.messages));
        }
        if self.messages < self.feeds {
            return Err(FixtureError::TooFewMessages {
                feeds: self.feeds,
                messages: self.messages,
            });
        }
        Ok(())
    }

    /// The spec actually generated: `messages` capped at [`MAX_MESSAGES`],
    /// `feeds` capped at [`MAX_FEEDS`] and at `messages`.
    fn clamped(&self) -> FixtureSpec {
        let messages = self.messages.min(MAX_MESSAGES);
        FixtureSpec {
            feeds: self.feeds.min(MAX_FEEDS).min(messages),
            messages,
            seed: self.seed,
        }
    }
}

/// The key of feed `index` for `seed`.
pub fn feed_key(seed: u64, index: usize) -> SigningKey {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"potluck-fixtures-v1");
    hasher.update(&seed.to_le_bytes());
    hasher.update(&(index as u64).to_le_bytes());
    SigningKey::from_bytes(hasher.finalize().as_bytes())
}

/// Messages in an order that keeps each feed's sequence order (feeds
/// interleaved by a seeded random merge), generated lazily so that a
/// million messages never sit in memory at once.
///
/// A spec that fails [`FixtureSpec::check`] is clamped: at most
/// [`MAX_MESSAGES`] messages from at most [`MAX_FEEDS`] feeds, and never
/// more feeds than messages (zero of either yields nothing).
pub fn generate(spec: &FixtureSpec) -> impl Iterator<Item = Message> + use<> {
    Generator::new(spec.clamped())
}

/// How many messages each feed publishes: Pareto distributed, at least
/// one each, `messages` in total. Feed `i` gets `counts[i]`.
///
/// The weights are the Pareto quantiles at evenly spaced points (so the
/// shape of the tail is the same for every seed), dealt to the feeds in a
/// seeded random order.
fn feed_counts(feeds: usize, messages: usize, rng: &mut StdRng) -> Vec<usize> {
    if feeds == 0 || messages < feeds {
        return vec![0; feeds];
    }
    let weights: Vec<f64> = (0..feeds)
        .map(|i| ((i as f64 + 0.5) / feeds as f64).powf(-1.0 / PARETO_ALPHA))
        .collect();
    let total_weight: f64 = weights.iter().sum();
    let spare = messages - feeds;
    let mut counts = Vec::with_capacity(feeds);
    let mut remainders = Vec::with_capacity(feeds);
    let mut given = 0usize;
    for (i, w) in weights.iter().enumerate() {
        let share = spare as f64 * w / total_weight;
        let whole = (share.floor() as usize).min(spare - given);
        given += whole;
        counts.push(1 + whole);
        remainders.push((share - share.floor(), i));
    }
    // Largest remainders first; ties by position.
    remainders.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders.iter().cycle().take(spare - given) {
        counts[i] += 1;
    }
    // Deal the counts to the feeds in a seeded order (Fisher-Yates).
    for i in (1..feeds).rev() {
        let j = rng.gen_range(0..=i);
        counts.swap(i, j);
    }
    counts
}

/// A Fenwick tree over the messages each feed has left, to pick the next
/// feed with probability proportional to that in O(log feeds).
struct Remaining {
    tree: Vec<u64>,
    total: u64,
}

impl Remaining {
    fn new(counts: &[usize]) -> Remaining {
        let mut tree = vec![0u64; counts.len() + 1];
        for (i, &c) in counts.iter().enumerate() {
            let mut k = i + 1;
            while k < tree.len() {
                tree[k] += c as u64;
                k += k & k.wrapping_neg();
            }
        }
        Remaining {
            tree,
            total: counts.iter().map(|&c| c as u64).sum(),
        }
    }

    /// The feed holding the `target`-th remaining message
    /// (`target < total`), which then has one fewer.
    fn take(&mut self, target: u64) -> usize {
        let n = self.tree.len() - 1;
        let mut pos = 0usize;
        let mut rest = target;
        let mut step = n.checked_next_power_of_two().unwrap_or(n);
        while step > 0 {
            let next = pos + step;
            if next <= n && self.tree[next] <= rest {
                rest -= self.tree[next];
                pos = next;
            }
            step /= 2;
        }
        // `pos` is the number of feeds wholly before the target.
        let mut k = pos + 1;
        while k <= n {
            self.tree[k] = self.tree[k].saturating_sub(1);
            k += k & k.wrapping_neg();
        }
        self.total = self.total.saturating_sub(1);
        pos
    }
}

/// One feed's progress.
struct Feed {
    key: SigningKey,
    previous: MessageId,
    next_sequence: u64,
    organizer: bool,
}

/// The lazy generator behind [`generate`].
struct Generator {
    rng: StdRng,
    feeds: Vec<Feed>,
    ids: Vec<FeedId>,
    remaining: Remaining,
    events: Vec<MessageId>,
    position: i64,
}

impl Generator {
    fn new(spec: FixtureSpec) -> Generator {
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let counts = feed_counts(spec.feeds, spec.messages, &mut rng);
        let feeds: Vec<Feed> = (0..spec.feeds)
            .map(|i| Feed {
                key: feed_key(spec.seed, i),
                previous: MessageId::default(),
                next_sequence: 1,
                organizer: rng.gen_bool(ORGANIZER_SHARE),
            })
            .collect();
        let ids = feeds
            .iter()
            .map(|f| FeedId(f.key.verifying_key().to_bytes()))
            .collect();
        Generator {
            rng,
            feeds,
            ids,
            remaining: Remaining::new(&counts),
            events: Vec::new(),
            position: 0,
        }
    }

    /// The content of the next message of feed `index`, and whether it is
    /// an event.
    fn content(&mut self, index: usize) -> (Vec<u8>, bool) {
        let rng = &mut self.rng;
        let feed = &self.feeds[index];
        if feed.next_sequence == 1 {
            return (about(rng, index), false);
        }
        let roll: f64 = rng.gen_range(0.0..1.0);
        let wants_event = feed.organizer && roll < EVENT_CHANCE;
        if wants_event || self.events.is_empty() {
            return (event(rng, index, feed.next_sequence), true);
        }
        if roll > 1.0 - CONTACT_CHANCE && self.ids.len() > 1 {
            let mut other = rng.gen_range(0..self.ids.len() - 1);
            if other >= index {
                other += 1;
            }
            let contact = Contact {
                contact: self.ids[other],
                following: true,
                blocking: false,
            };
            return (contact.to_content_bytes(), false);
        }
        let target = popular(rng, self.events.len());
        (rsvp(rng, self.events[target]), false)
    }
}

impl Iterator for Generator {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        if self.remaining.total == 0 {
            return None;
        }
        let target = self.rng.gen_range(0..self.remaining.total);
        let index = self.remaining.take(target);
        let (content, is_event) = self.content(index);
        let timestamp = T0_MS.saturating_add(self.position.saturating_mul(STEP_MS));
        let feed = &mut self.feeds[index];
        // Content is far below the size limit, so signing cannot fail; if
        // it ever did, the stream ends rather than break a feed's chain.
        let msg = Message::sign(
            &feed.key,
            feed.next_sequence,
            feed.previous,
            timestamp,
            &content,
        )
        .ok()?;
        feed.previous = msg.id();
        feed.next_sequence += 1;
        self.position += 1;
        if is_event {
            self.events.push(msg.id());
        }
        Some(msg)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining.total).unwrap_or(usize::MAX);
        (0, Some(n))
    }
}

/// An event of `n` known ones, by a power law: half the time counted from
/// the oldest, half from the newest, so a few early and a few fresh events
/// draw most RSVPs. `n` must be at least 1.
fn popular(rng: &mut StdRng, n: usize) -> usize {
    let u: f64 = rng.gen_range(0.0..1.0);
    let rank = ((n as f64) * u.powi(3)) as usize;
    let rank = rank.min(n.saturating_sub(1));
    if rng.gen_bool(0.5) {
        rank
    } else {
        n.saturating_sub(1) - rank
    }
}

const FIRST_NAMES: [&str; 16] = [
    "Ada", "Bao", "Chidi", "Dana", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kemi",
    "Luca", "Mira", "Nils", "Oona", "Priya",
];
const LAST_NAMES: [&str; 12] = [
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Silva",
    "Novak",
    "Haddad",
    "Keller",
    "Rossi",
    "Nguyen",
    "Park",
    "Walsh",
];
const DISHES: [&str; 10] = [
    "Soup", "Dumpling", "Curry", "Pie", "Taco", "Pasta", "Salad", "Bread", "Chili", "Noodle",
];
const KINDS: [&str; 6] = [
    "potluck",
    "night",
    "swap and supper",
    "picnic",
    "cook-off",
    "brunch",
];
const PLACES: [&str; 8] = [
    "Community garden shed, back entrance",
    "Library meeting room 2",
    "Riverside park, by the bandstand",
    "St. Mark's church hall",
    "Rooftop of the co-op, 5th floor",
    "Maple Street school cafeteria",
    "The old fire station",
    "Allotment 14, Linden Road",
];
const NOTES: [&str; 6] = [
    "Bringing a big pot of lentil soup and some bread.",
    "Can help set up tables and chairs beforehand.",
    "Might be a little late because of work, but will bring dessert.",
    "Vegetarian dish for about eight people, no nuts.",
    "Depends on childcare; will confirm the day before.",
    "Bringing folding chairs and a jug of lemonade.",
];

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list.get(rng.gen_range(0..list.len().max(1)))
        .copied()
        .unwrap_or_default()
}

fn about(rng: &mut StdRng, index: usize) -> Vec<u8> {
    let name = format!(
        "{} {} {index}",
        pick(rng, &FIRST_NAMES),
        pick(rng, &LAST_NAMES)
    );
    let description = rng
        .gen_bool(0.3)
        .then(|| "Neighbour, home cook, always up for a shared table.".to_owned());
    About { name, description }.to_content_bytes()
}

fn event(rng: &mut StdRng, index: usize, sequence: u64) -> Vec<u8> {
    // An evening in 2031 or 2032: 17:00 UTC is early evening in Paris,
    // 23:00 UTC in New York.
    let (tz, utc_hour) = if rng.gen_bool(0.5) {
        ("America/New_York", 23)
    } else {
        ("Europe/Paris", 17)
    };
    let day = rng.gen_range(0..730i64);
    let start_s = EVENTS_FROM_S + day * 86_400 + utc_hour * 3_600;
    let hours = rng.gen_range(2..=4i64);
    let time = |field: &'static str, seconds: i64| {
        let utc = jiff::Timestamp::from_second(seconds).ok()?.to_string();
        EventTime::parse(field, &rfc3339_in_zone(&utc, Some(tz))).ok()
    };
    let Some(start) = time("start", start_s) else {
        // Unreachable for these bounded times; a plain fallback keeps the
        // stream valid regardless.
        return about(rng, index);
    };
    let end = time("end", start_s + hours * 3_600);
    let title = format!(
        "{} {} #{index}-{sequence}",
        pick(rng, &DISHES),
        pick(rng, &KINDS)
    );
    let capacity = rng.gen_bool(0.3).then(|| rng.gen_range(10..=60u32));
    let description = rng.gen_bool(0.6).then(|| {
        "Bring a dish to share, your own plate and cutlery. Tables and drinks provided.".to_owned()
    });
    Event {
        title,
        start,
        end,
        tz: Some(tz.to_owned()),
        location: Some(pick(rng, &PLACES).to_owned()),
        url: None,
        description,
        capacity,
        unlisted: false,
        public: false,
        closed_to_web: false,
        comments: Default::default(),
    }
    .to_content_bytes()
}

fn rsvp(rng: &mut StdRng, event: MessageId) -> Vec<u8> {
    let roll: f64 = rng.gen_range(0.0..1.0);
    let status = if roll < 0.6 {
        RsvpStatus::Going
    } else if roll < 0.85 {
        RsvpStatus::Maybe
    } else {
        RsvpStatus::NotGoing
    };
    let guests = if status == RsvpStatus::NotGoing {
        0
    } else {
        [0, 0, 0, 1, 1, 2, 3][rng.gen_range(0..7)]
    };
    let note = rng.gen_bool(0.4).then(|| pick(rng, &NOTES).to_owned());
    Rsvp {
        event,
        status,
        guests,
        note,
        revision: Some(0),
    }
    .to_content_bytes()
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::content::{Content, parse};

    fn spec(feeds: usize, messages: usize, seed: u64) -> FixtureSpec {
        FixtureSpec {
            feeds,
            messages,
            seed,
        }
    }

    #[test]
    fn the_same_spec_gives_identical_messages() {
        let a: Vec<Message> = generate(&spec(12, 400, 3)).collect();
        let b: Vec<Message> = generate(&spec(12, 400, 3)).collect();
        assert_eq!(a.len(), 400);
        let ids = |v: &[Message]| v.iter().map(Message::id).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&b));
        assert!(a.iter().zip(&b).all(|(x, y)| x.bytes() == y.bytes()));
        let c: Vec<Message> = generate(&spec(12, 400, 4)).collect();
        assert_ne!(ids(&a), ids(&c), "another seed gives other messages");
    }

    #[test]
    fn the_stream_is_valid_in_order() {
        let all: Vec<Message> = generate(&spec(20, 1_500, 7)).collect();
        assert_eq!(all.len(), 1_500, "exact total");
        let mut next: HashMap<FeedId, (u64, MessageId)> = HashMap::new();
        let mut events = HashSet::new();
        let mut kinds: HashMap<&str, usize> = HashMap::new();
        for msg in &all {
            let (seq, prev) = next
                .get(&msg.author())
                .copied()
                .unwrap_or((1, MessageId::default()));
            assert_eq!(msg.sequence(), seq, "per-feed sequence order");
            assert_eq!(msg.header().previous, prev, "chained");
            next.insert(msg.author(), (seq + 1, msg.id()));
            let content = parse(msg.content().unwrap()).expect("valid content");
            let kind = match content {
                Content::About(_) => {
                    assert_eq!(seq, 1, "the about comes first");
                    "about"
                }
                Content::Event(e) => {
                    assert!(e.start.as_str() >= "2031", "{}", e.start);
                    events.insert(msg.id());
                    "event"
                }
                Content::Rsvp(r) => {
                    assert!(events.contains(&r.event), "RSVP to an earlier event");
                    "rsvp"
                }
                Content::Contact(c) => {
                    assert_ne!(c.contact, msg.author());
                    "contact"
                }
                other => panic!("unexpected content {other:?}"),
            };
            assert_eq!(seq == 1, kind == "about");
            *kinds.entry(kind).or_default() += 1;
        }
        assert_eq!(next.len(), 20, "every feed publishes");
        assert_eq!(kinds["about"], 20);
        assert!(kinds["rsvp"] > all.len() / 2, "{kinds:?}");
        assert!(kinds["event"] > 10, "{kinds:?}");
        assert!(kinds.get("contact").copied().unwrap_or(0) > 10, "{kinds:?}");
    }

    #[test]
    fn feed_sizes_have_a_heavy_tail_and_the_exact_total() {
        for (feeds, messages, seed) in [(20, 2_000, 7), (500, 100_000, 1), (300, 301, 9)] {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut counts = feed_counts(feeds, messages, &mut rng);
            assert_eq!(counts.iter().sum::<usize>(), messages);
            assert!(counts.iter().all(|&c| c >= 1));
            counts.sort_unstable();
            let median = counts[feeds / 2];
            let largest = counts[feeds - 1];
            if messages >= 10 * feeds {
                assert!(largest >= 5 * median, "{largest} vs median {median}");
            }
        }
        // The generated stream follows the same counts.
        let s = spec(20, 600, 5);
        let mut rng = StdRng::seed_from_u64(s.seed);
        let mut expected = feed_counts(s.feeds, s.messages, &mut rng);
        let mut per_feed: HashMap<FeedId, usize> = HashMap::new();
        for msg in generate(&s) {
            *per_feed.entry(msg.author()).or_default() += 1;
        }
        let mut got: Vec<usize> = per_feed.into_values().collect();
        got.sort_unstable();
        expected.sort_unstable();
        assert_eq!(got, expected);
    }

    #[test]
    fn out_of_range_specs_are_refused_or_clamped() {
        assert!(spec(0, 10, 1).check().is_err());
        assert!(spec(10, 0, 1).check().is_err());
        assert!(spec(10, 9, 1).check().is_err());
        assert!(spec(MAX_FEEDS + 1, MAX_MESSAGES, 1).check().is_err());
        assert!(spec(10, 10, 1).check().is_ok());
        assert_eq!(generate(&spec(0, 10, 1)).count(), 0);
        assert_eq!(generate(&spec(10, 0, 1)).count(), 0);
        assert_eq!(generate(&spec(10, 3, 1)).count(), 3);
        assert_eq!(generate(&spec(1, 5, 1)).count(), 5);
    }
}
