//! Strangers and their quotas: which peers are held to the quotas of
//! [`quota`], what of theirs is stored, and how much replication memory
//! is kept for peers. The decisions are [`quota::Quotas`]' (sans-io); this
//! is the glue to the store.

use std::collections::BTreeSet;

use super::Node;
use crate::feed::message::{FeedId, Message};
use crate::proto::peerbook::PeerSource;
use crate::proto::quota;

impl Node {
    pub(super) fn quotas(&self) -> std::sync::MutexGuard<'_, quota::Quotas> {
        self.quotas.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the quotas for strangers (from `config.json`).
    pub fn set_quota_limits(&self, limits: quota::QuotaLimits) {
        *self.quotas() = quota::Quotas::new(limits);
    }

    /// `Some(remote)` when the peer is a stranger, held to the quotas:
    /// neither followed by us, nor a configured or invited peer, nor one
    /// we dialed (other than an address heard on the LAN, which anyone
    /// can announce), nor the peer of a one-off sync we were asked for.
    pub(super) fn stranger(&self, remote: FeedId, outbound: bool, once: bool) -> Option<FeedId> {
        if outbound && once || self.followed().contains(&remote) || self.is_member(&remote) {
            return None;
        }
        let records = self.store.peer_records().unwrap_or_default();
        let of_remote = || records.iter().filter(|r| r.feed == Some(remote));
        let chosen =
            of_remote().any(|r| matches!(r.source, PeerSource::Configured | PeerSource::Invite));
        let discovered = of_remote().any(|r| r.source == PeerSource::Discovered);
        if chosen || (outbound && !discovered) {
            return None;
        }
        Some(remote)
    }

    /// Whether `remote` is a peer this node trusts: not a stranger to an
    /// inbound connection (followed, or a configured or invited peer).
    /// The address a trusted peer authenticates from gets a reserved
    /// handshake slot (issue 20); this is the one place that says who
    /// is trusted that way.
    pub(crate) fn is_trusted_peer(&self, remote: FeedId) -> bool {
        self.stranger(remote, false, false).is_none()
    }

    /// Whether a stranger's message fits its quotas; a feed over them is
    /// added to `over`. Anything from a trusted peer (`None`) fits.
    pub(super) fn within_quota(
        &self,
        stranger: Option<FeedId>,
        followed: &BTreeSet<FeedId>,
        msg: &Message,
        over: &mut BTreeSet<FeedId>,
    ) -> bool {
        let Some(peer) = stranger else { return true };
        let feed = msg.author();
        let arrival = quota::Arrival {
            peer,
            feed,
            new_feed: matches!(self.store.head(&feed), Ok(None)),
            followed: followed.contains(&feed),
            bytes: msg.bytes().len() as u64,
        };
        let now = jiff::Timestamp::now().as_millisecond();
        match self.quotas().admit(&arrival, now) {
            Ok(()) => true,
            Err(e) => {
                tracing::info!(%peer, %feed, reason = %e, "not storing a stranger's feed for now");
                over.insert(feed);
                false
            }
        }
    }

    /// Our own feed and the feeds we follow.
    pub(super) fn followed(&self) -> BTreeSet<FeedId> {
        let me = self.feed_id();
        let mut followed: BTreeSet<FeedId> = self
            .store
            .contacts(&me)
            .map(|c| {
                c.into_iter()
                    .filter(|(_, s)| s.following)
                    .map(|(f, _)| f)
                    .collect()
            })
            .unwrap_or_default();
        followed.insert(me);
        followed
    }

    /// Saves a peer's replication memory within the quotas: a memory
    /// bigger than one peer may keep is dropped instead, and once a
    /// minute memory that expired or does not fit the total is forgotten.
    pub(super) fn keep_memory(&self, remote: FeedId, memory: &[u8]) {
        let now = jiff::Timestamp::now().as_millisecond();
        let (keeps, limits, trim) = {
            let mut quotas = self.quotas();
            (
                quotas.keeps_memory(memory.len()),
                quotas.limits().clone(),
                quotas.trim_due(now),
            )
        };
        let saved = if keeps {
            self.store.keep_peer_memory(&remote, memory, now)
        } else {
            tracing::debug!(peer = %remote, bytes = memory.len(), "not keeping replication memory this big");
            self.store.forget_peer_memory(&[remote])
        };
        if let Err(e) = saved {
            tracing::warn!(error = %e, "could not save replication memory");
        }
        if trim {
            let forget = self
                .store
                .kept_peer_memory()
                .map(|kept| quota::memory_to_forget(&kept, &limits, now));
            match forget.and_then(|peers| {
                self.store.forget_peer_memory(&peers)?;
                Ok(peers.len())
            }) {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    peers = n,
                    "forgot replication memory of peers (expired, or over the total)"
                ),
                Err(e) => tracing::warn!(error = %e, "could not trim replication memory"),
            }
        }
    }
}
