//! What the store keeps about peers: the peer book and replication memory.
//! Both are advice, not data: written without a flush, and a damaged peer
//! record is skipped.

use super::keys::{BOOK, PEER, book_key, feed_key, feed_of_key};
use super::{Store, StoreError};
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
