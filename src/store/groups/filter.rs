//! A membership filter over the answers (`q`) in `groups.log`: which
//! `(author, event)` pairs any committed record ever named.
//!
//! **Why.** Indexing an RSVP reads what its author last answered to the
//! event, in the author's `q` group. Most answers are an author's first to
//! that event, and a group that is not cached is read along its chain, one
//! record per batch the author appeared in. When many authors write at
//! once (a hub fed by thousands, or a store built from an interleaved
//! stream), nearly every answer misses the cache, and the chain walks
//! dominate: building the 10M fixture stalled on them. The filter says
//! "never answered" without reading the group, in a few bit tests.
//!
//! **Exact where it matters.** A "no" is certain: every pair of every
//! committed record is in the filter, so a pair the filter lacks was never
//! written. A "maybe" (about 1 % of new pairs, or a pair that was really
//! answered) reads the group as before. It is only memory: it is built by
//! scanning the file, never stored, and it never changes an answer.
//!
//! **Bounded work.** A process builds it only once it has made
//! [`BUILD_AFTER`] lookups (a single `rsvp` command never does), and
//! builds it a step of at most [`SCAN_STEP`] bytes of the file per lookup,
//! so no commit waits for the whole file. Commits made while it is built
//! are added as they land, so a build is complete once it has scanned what
//! was committed when it began. When more distinct pairs than it was sized
//! for are in it, a filter twice the size is built the same way while the
//! old one, still complete, keeps answering.

use super::super::index::prefix;
use super::super::msglog::MessageLog;
use super::Record;

/// Lookups a process makes before it builds the filter (fewer in unit
/// tests, so that they build it).
pub(super) const BUILD_AFTER: u32 = if cfg!(test) { 16 } else { 1024 };
/// Bytes of `groups.log` scanned per lookup while the filter is built
/// (a few records in unit tests, so that builds take several steps).
const SCAN_STEP: u64 = if cfg!(test) { 512 } else { 4 << 20 };
/// Bits per distinct pair the filter is sized for (about 1 % false
/// "maybe" with [`HASHES`] bit tests).
const BITS_PER_PAIR: u64 = 10;
/// Bit tests per pair.
const HASHES: u64 = 7;
/// The smallest filter, in bits (128 KiB; 1 Kib in unit tests, so that
/// they grow it).
const MIN_BITS: u64 = if cfg!(test) { 1 << 10 } else { 1 << 20 };
/// The largest filter, in bits (1 GiB): past it, more pairs only make
/// "maybe" likelier.
const MAX_BITS: u64 = 1 << 33;
/// File bytes per answer pair, for sizing a first build before the pairs
/// are counted: an RSVP adds its `r` and its `q` entry, each a delta
/// record of about 70–110 bytes, and the bases rewritten after them.
const FILE_BYTES_PER_PAIR: u64 = 200;

/// The pair as a record names it: the first 8 bytes of the author (the
/// record's group check) and the event.
pub(super) type Pair = ([u8; 8], [u8; 32]);

/// A Bloom filter over pairs.
struct Bloom {
    words: Vec<u64>,
    bits: u64,
    /// Pairs inserted that set at least one new bit: distinct pairs, near
    /// enough (a few are missed as false "maybe"s).
    distinct: u64,
}

impl Bloom {
    /// A filter for `pairs` pairs (at most [`MAX_BITS`] bits), or `None`
    /// if the memory cannot be had.
    fn with_pairs(pairs: u64) -> Option<Bloom> {
        let bits = pairs
            .saturating_mul(BITS_PER_PAIR)
            .clamp(MIN_BITS, MAX_BITS);
        let words = usize::try_from(bits.div_ceil(64)).ok()?;
        let mut v = Vec::new();
        v.try_reserve_exact(words).ok()?;
        v.resize(words, 0);
        Some(Bloom {
            words: v,
            bits: words as u64 * 64,
            distinct: 0,
        })
    }

    /// The pairs it holds before its "maybe"s grow past about 1 %.
    fn capacity(&self) -> u64 {
        self.bits / BITS_PER_PAIR
    }

    /// The bit positions of a pair (double hashing over two mixed halves).
    fn positions(&self, pair: &Pair) -> impl Iterator<Item = u64> + use<> {
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        let author = word(&pair.0);
        let h1 = mix(word(&pair.1[0..8]) ^ mix(author));
        let h2 = mix(word(&pair.1[8..16]) ^ author.rotate_left(29)) | 1;
        let bits = self.bits;
        (0..HASHES).map(move |i| {
            let h = h1.wrapping_add(i.wrapping_mul(h2));
            // Maps the hash onto 0..bits without a division.
            ((u128::from(h) * u128::from(bits)) >> 64) as u64
        })
    }

    fn insert(&mut self, pair: &Pair) {
        let mut new = false;
        for bit in self.positions(pair) {
            let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
            if let Some(w) = self.words.get_mut(word) {
                new |= *w & mask == 0;
                *w |= mask;
            }
        }
        if new {
            self.distinct += 1;
        }
    }

    fn may_hold(&self, pair: &Pair) -> bool {
        self.positions(pair).all(|bit| {
            self.words
                .get((bit / 64) as usize)
                .is_none_or(|w| w & (1u64 << (bit % 64)) != 0)
        })
    }
}

/// splitmix64's finalizer: spreads every input bit over the output.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A filter being built: it holds the pairs of the file's records before
/// `scanned` and of every commit since the build began; it is complete
/// once `scanned` reaches `until`, the committed end when it began.
struct Build {
    next: Bloom,
    scanned: u64,
    until: u64,
}

enum State {
    /// Not built: lookups made so far.
    Idle { lookups: u32 },
    /// Being built; `current`, when there is one, is complete and answers
    /// meanwhile (a filter being replaced by a larger one).
    Building {
        build: Build,
        current: Option<Bloom>,
    },
    /// Complete.
    Built(Bloom),
    /// Complete, but no larger one could be made (no memory, or a record
    /// could not be read while making it): it answers and takes commits
    /// as before, its "maybe"s growing likelier as pairs are added.
    Kept(Bloom),
    /// No memory for a first filter, or a record could not be read while
    /// building it: no filter until the file is emptied or the store
    /// reopened (every lookup reads the group, which reports the damage
    /// where it matters).
    Off,
}

/// The filter of a `groups.log` ([`super::Groups`] holds one).
pub(super) struct AnswerFilter {
    state: State,
}

impl AnswerFilter {
    /// No filter yet.
    pub fn new() -> AnswerFilter {
        AnswerFilter {
            state: State::Idle { lookups: 0 },
        }
    }

    /// Whether `pair` may have been answered: `false` only when no
    /// committed record of `log` ever named it. Builds the filter a step
    /// at a time (see the module's notes).
    pub fn may_hold(&mut self, log: &MessageLog, pair: &Pair) -> bool {
        let (state, answer) = match std::mem::replace(&mut self.state, State::Off) {
            State::Idle { lookups } if lookups + 1 >= BUILD_AFTER => {
                let committed = log.committed();
                match Build::new(committed / FILE_BYTES_PER_PAIR, committed) {
                    Some(build) => (
                        State::Building {
                            build,
                            current: None,
                        },
                        true,
                    ),
                    None => {
                        tracing::warn!("no memory for the answers' filter; it stays off");
                        (State::Off, true)
                    }
                }
            }
            State::Idle { lookups } => (
                State::Idle {
                    lookups: lookups + 1,
                },
                true,
            ),
            State::Building { mut build, current } => match build.step(log) {
                Ok(true) => {
                    let answer = build.next.may_hold(pair);
                    (State::Built(build.next), answer)
                }
                Ok(false) => {
                    let answer = current.as_ref().is_none_or(|c| c.may_hold(pair));
                    (State::Building { build, current }, answer)
                }
                Err(reason) => {
                    tracing::warn!(%reason, "groups.log unreadable: the answers' filter is not rebuilt");
                    // A filter being replaced is still complete: keep it.
                    match current {
                        Some(c) => {
                            let answer = c.may_hold(pair);
                            (State::Kept(c), answer)
                        }
                        None => (State::Off, true),
                    }
                }
            },
            State::Built(bloom) => {
                let answer = bloom.may_hold(pair);
                (State::Built(bloom), answer)
            }
            State::Kept(bloom) => {
                let answer = bloom.may_hold(pair);
                (State::Kept(bloom), answer)
            }
            State::Off => (State::Off, true),
        };
        self.state = state;
        answer
    }

    /// Adds the pairs of records that were just committed, which ended
    /// the file at `end`.
    pub fn committed(&mut self, pairs: &[Pair], end: u64) {
        self.state = match std::mem::replace(&mut self.state, State::Off) {
            State::Building {
                mut build,
                mut current,
            } => {
                for p in pairs {
                    build.next.insert(p);
                    if let Some(c) = &mut current {
                        c.insert(p);
                    }
                }
                State::Building { build, current }
            }
            State::Built(mut bloom) => {
                for p in pairs {
                    bloom.insert(p);
                }
                match bloom.distinct > bloom.capacity() && bloom.bits < MAX_BITS {
                    // Grown past its size: a larger one is built while
                    // this one keeps answering.
                    true => match Build::new(bloom.distinct.saturating_mul(2), end) {
                        Some(build) => State::Building {
                            build,
                            current: Some(bloom),
                        },
                        None => State::Kept(bloom),
                    },
                    false => State::Built(bloom),
                }
            }
            State::Kept(mut bloom) => {
                for p in pairs {
                    bloom.insert(p);
                }
                State::Kept(bloom)
            }
            other => other,
        };
    }

    /// Forgets everything: the file was emptied.
    pub fn reset(&mut self) {
        self.state = State::Idle { lookups: 0 };
    }

    /// Whether it is complete (for tests).
    #[cfg(test)]
    pub fn is_built(&self) -> bool {
        matches!(self.state, State::Built(_) | State::Kept(_))
    }
}

impl Build {
    fn new(pairs: u64, until: u64) -> Option<Build> {
        Some(Build {
            next: Bloom::with_pairs(pairs)?,
            scanned: 0,
            until,
        })
    }

    /// Scans up to [`SCAN_STEP`] bytes more; `true` once complete.
    fn step(&mut self, log: &MessageLog) -> Result<bool, String> {
        let stop = self.scanned.saturating_add(SCAN_STEP).min(self.until);
        if self.scanned < stop {
            for item in log.records(self.scanned) {
                let (at, bytes) = item.map_err(|e| e.to_string())?;
                if bytes.get(2) == Some(&prefix::ANSWERED) {
                    let record = Record::decode(&bytes)
                        .map_err(|r| format!("record at {}: {r}", at.offset))?;
                    for (member, _) in &record.entries {
                        self.next.insert(&(record.group.1, *member));
                    }
                }
                self.scanned = at.offset + u64::from(at.len);
                if self.scanned >= stop {
                    break;
                }
            }
        }
        if self.scanned < stop {
            // The file ended before what was committed when the build
            // began: it was cut under us.
            return Err(format!(
                "the file ends at {} before {}",
                self.scanned, self.until
            ));
        }
        Ok(self.scanned >= self.until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(author: u8, event: u32) -> Pair {
        let mut e = [0u8; 32];
        e[..4].copy_from_slice(&event.to_be_bytes());
        // Event ids are hashes: spread the bytes as one would.
        let h = blake3::hash(&e);
        ([author; 8], *h.as_bytes())
    }

    #[test]
    fn a_bloom_never_forgets_and_rarely_says_maybe() {
        let mut b = Bloom::with_pairs(10_000).unwrap();
        for i in 0..10_000 {
            b.insert(&pair((i % 7) as u8, i));
        }
        assert!((0..10_000).all(|i| b.may_hold(&pair((i % 7) as u8, i))));
        let false_maybes = (10_000..110_000)
            .filter(|&i| b.may_hold(&pair((i % 7) as u8, i)))
            .count();
        // 10 bits a pair and 7 tests: about 0.8 %.
        assert!(false_maybes < 2_000, "{false_maybes} false maybes in 100k");
        assert!(b.distinct > 9_900 && b.distinct <= 10_000, "{}", b.distinct);
    }
}
