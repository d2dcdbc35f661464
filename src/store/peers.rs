//! What the store keeps about peers: the peer book and replication memory.
//! Both are advice, not data: written without a flush, and a damaged peer
//! record is skipped.

use std::collections::HashMap;

use super::Store;
use super::error::StoreError;
use super::keys::{BOOK, PEER, PEER_KEPT, book_key, feed_key, feed_of_key, kept_value};
use crate::feed::message::FeedId;
use crate::proto::peerbook::PeerRecord;

impl Store {
    /// What replication remembers about a peer (opaque bytes owned by
    /// `replicate::PeerMemory`).
    pub fn peer_memory(&self, peer: &FeedId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(feed_key(PEER, peer))?.map(|v| v.to_vec()))
    }

    /// Saves replication memory of a peer. Not flushed: losing it only
    /// costs a full clock exchange next time.
    pub fn set_peer_memory(&self, peer: &FeedId, memory: &[u8]) -> Result<(), StoreError> {
        self.tree.insert(feed_key(PEER, peer), memory)?;
        Ok(())
    }

    /// The peer book record of an address.
    pub fn peer_record(&self, addr: &str) -> Result<Option<PeerRecord>, StoreError> {
        let key = book_key(addr);
        match self.tree.get(&key)? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::CorruptLog {
                    key: hex::encode(&key),
                    reason: e.to_string(),
                }),
            None => Ok(None),
        }
    }

    /// Saves a peer book record. Not flushed: it is advice, not data.
    pub fn put_peer_record(&self, record: &PeerRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(record).unwrap_or_default();
        self.tree.insert(book_key(&record.addr), bytes)?;
        Ok(())
    }

    /// Every peer book record, peers that worked most recently first.
    pub fn peer_records(&self) -> Result<Vec<PeerRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([BOOK]) {
            let (k, v) = item?;
            match serde_json::from_slice(&v) {
                Ok(record) => out.push(record),
                // A damaged record is only advice lost: skip it.
                Err(e) => {
                    tracing::warn!(key = %hex::encode(&k), error = %e, "skipping a damaged peer record")
                }
            }
        }
        crate::proto::peerbook::preferred_order(&mut out);
        Ok(out)
    }

    /// Peers with replication memory.
    pub fn remembered_peers(&self) -> Result<Vec<FeedId>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([PEER]) {
            let (k, _) = item?;
            if let Some(feed) = feed_of_key(&k) {
                out.push(feed);
            }
        }
        Ok(out)
    }
}

// Upkeep for the limits on strangers (see `crate::proto::quota`).
impl Store {
    /// Forgets a peer book record (an address that never worked, pushed
    /// out by newer sightings).
    pub fn remove_peer_record(&self, addr: &str) -> Result<(), StoreError> {
        self.tree.remove(book_key(addr))?;
        Ok(())
    }

    /// Saves replication memory of a peer with when it was saved and its
    /// size (in one atomic batch), so that old memory can expire and the
    /// total be bounded ([`Store::forget_peer_memory`]). Not flushed, as
    /// [`Store::set_peer_memory`].
    pub fn keep_peer_memory(
        &self,
        peer: &FeedId,
        memory: &[u8],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(feed_key(PEER, peer), memory);
        batch.insert(
            feed_key(PEER_KEPT, peer),
            kept_value(memory.len() as u64, now_ms).to_vec(),
        );
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// The replication memory kept for every peer: size and when it was
    /// saved. Memory saved before this was recorded counts as saved at
    /// time 0 (so it expires first).
    pub fn kept_peer_memory(&self) -> Result<Vec<crate::proto::quota::KeptMemory>, StoreError> {
        let mut saved: HashMap<FeedId, (u64, i64)> = HashMap::new();
        for item in self.tree.scan_prefix([PEER_KEPT]) {
            let (k, v) = item?;
            let (Some(peer), Some(bytes), Some(saved_ms)) = (
                feed_of_key(&k),
                v.get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes),
                v.get(8..16)
                    .and_then(|b| b.try_into().ok())
                    .map(i64::from_be_bytes),
            ) else {
                continue;
            };
            saved.insert(peer, (bytes, saved_ms));
        }
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([PEER]) {
            let (k, v) = item?;
            let Some(peer) = feed_of_key(&k) else {
                continue;
            };
            let (_, saved_ms) = saved.get(&peer).copied().unwrap_or((0, 0));
            out.push(crate::proto::quota::KeptMemory {
                peer,
                bytes: v.len() as u64,
                saved_ms,
            });
        }
        Ok(out)
    }

    /// Forgets the replication memory of these peers (the next session
    /// with each exchanges full clocks), in one atomic batch.
    pub fn forget_peer_memory(&self, peers: &[FeedId]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for peer in peers {
            batch.remove(feed_key(PEER, peer));
            batch.remove(feed_key(PEER_KEPT, peer));
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }
}
