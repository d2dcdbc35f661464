//! What a session remembers about a peer between connections.

use crate::feed::message::FeedId;

use super::{Clock, MAX_PEER_FEEDS};

/// What a session remembers about a peer between connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerMemory {
    /// The peer's clock as we last knew it.
    pub theirs: Clock,
    /// Our clock as the peer last knew it.
    pub mine_as_known: Clock,
}

impl PeerMemory {
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
