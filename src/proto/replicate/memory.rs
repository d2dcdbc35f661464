//! What a session remembers about a peer between connections.

use crate::feed::message::FeedId;
use crate::proto::wire::{MAX_CLOCK_SEQUENCE, UNWANTED};

use super::{Clock, MAX_PEER_FEEDS};

/// How far a peer holds one feed, as its clock says: what a node shows of
/// a hub that keeps its feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holding {
    /// It holds the feed up to this sequence (0: it wants the feed and
    /// holds none of it yet).
    Holds(u64),
    /// It takes none of the feed: it blocks it, or (a hub) the feed's
    /// quota is full.
    Refuses,
}

impl Holding {
    /// The entry of `feed` in a peer's `clock`; `None` when the clock does
    /// not name it (or names it with a value no clock may hold).
    pub fn of(clock: &Clock, feed: &FeedId) -> Option<Holding> {
        Holding::of_entry(clock.get(feed).copied())
    }

    /// A clock's entry for one feed (`None`: the clock does not name it),
    /// read as [`Holding::of`] reads it.
    pub fn of_entry(entry: Option<u64>) -> Option<Holding> {
        match entry? {
            UNWANTED => Some(Holding::Refuses),
            v if v <= MAX_CLOCK_SEQUENCE => Some(Holding::Holds(v)),
            _ => None,
        }
    }
}

/// What a session remembers about a peer between connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerMemory {
    /// The peer's clock as we last knew it.
    pub theirs: Clock,
    /// Our clock as the peer last knew it.
    pub mine_as_known: Clock,
}

impl PeerMemory {
    /// How far the peer held `feed` when the last session with it ended.
    pub fn theirs_of(&self, feed: &FeedId) -> Option<Holding> {
        Holding::of(&self.theirs, feed)
    }

    /// Compact encoding: two length-prefixed lists of 40-byte entries.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 40 * (self.theirs.len() + self.mine_as_known.len()));
        for clock in [&self.theirs, &self.mine_as_known] {
            out.extend_from_slice(&(clock.len() as u32).to_be_bytes());
            for (feed, value) in clock {
                out.extend_from_slice(&feed.0);
                out.extend_from_slice(&value.to_be_bytes());
            }
        }
        out
    }

    /// Decodes [`PeerMemory::encode`]; `None` if damaged (then the session
    /// simply starts without memory and exchanges full clocks).
    pub fn decode(mut bytes: &[u8]) -> Option<PeerMemory> {
        let mut clocks = [Clock::new(), Clock::new()];
        for clock in &mut clocks {
            let count = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
            bytes = &bytes[4..];
            if count > MAX_PEER_FEEDS || bytes.len() < count * 40 {
                return None;
            }
            for chunk in bytes[..count * 40].chunks_exact(40) {
                let feed = FeedId(chunk[..32].try_into().ok()?);
                let value = u64::from_be_bytes(chunk[32..].try_into().ok()?);
                clock.insert(feed, value);
            }
            bytes = &bytes[count * 40..];
        }
        let [theirs, mine_as_known] = clocks;
        bytes.is_empty().then_some(PeerMemory {
            theirs,
            mine_as_known,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_entry_reads_as_held_refused_or_unknown_and_survives_the_encoding() {
        let (held, refused, odd, absent) = (
            FeedId([1; 32]),
            FeedId([2; 32]),
            FeedId([3; 32]),
            FeedId([4; 32]),
        );
        let memory = PeerMemory {
            theirs: Clock::from([
                (held, 12),
                (refused, UNWANTED),
                (odd, MAX_CLOCK_SEQUENCE + 1),
            ]),
            mine_as_known: Clock::new(),
        };
        let memory = PeerMemory::decode(&memory.encode()).expect("decodes");
        assert_eq!(memory.theirs_of(&held), Some(Holding::Holds(12)));
        assert_eq!(memory.theirs_of(&refused), Some(Holding::Refuses));
        assert_eq!(memory.theirs_of(&odd), None);
        assert_eq!(memory.theirs_of(&absent), None);
    }
}
