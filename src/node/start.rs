//! The node's own start-up: which addresses it accepts on and dials.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::home::config::PeerAddr;
use crate::proto::peerbook::PeerSource;
use crate::store::StoreError;

use super::{DiscoverySettings, Node};

impl Node {
    /// Starts serving: accepts peers on `listener`, keeps every
    /// `configured` peer connected, then every other address of the peer
    /// book worth dialling, and runs LAN discovery with `discovery` (none:
    /// off). Returns the tasks, which end when the node shuts down.
    pub fn start(
        self: &Arc<Self>,
        listener: TcpListener,
        configured: Vec<PeerAddr>,
        discovery: Option<DiscoverySettings>,
    ) -> Result<Vec<JoinHandle<()>>, StoreError> {
        let mut tasks = vec![tokio::spawn(self.clone().accept_loop(listener))];
        // Configured peers, then every other address in the peer book
        // (discovered earlier, or from an invite), best first.
        let mut dialled: Vec<String> = Vec::new();
        for peer in configured {
            if dialled.contains(&peer.addr) {
                continue;
            }
            dialled.push(peer.addr.clone());
            tasks.push(tokio::spawn(
                self.clone().dial_loop(peer, PeerSource::Configured),
            ));
        }
        if let Some(settings) = discovery {
            let finder = self.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = finder.discovery_loop(settings).await {
                    tracing::warn!(error = %e, "LAN discovery is off: cannot open its UDP socket");
                }
            }));
        }
        for record in self.store().peer_records()? {
            if record.source == PeerSource::Inbound || dialled.contains(&record.addr) {
                continue;
            }
            // A discovered address that never worked may be a forgery:
            // discovery dials it again if it is heard again.
            if matches!(record.source, PeerSource::Discovered | PeerSource::Hub)
                && record.last_success_ms.is_none()
            {
                continue;
            }
            let peer = PeerAddr {
                feed: record.feed,
                addr: record.addr.clone(),
            };
            tasks.push(tokio::spawn(self.clone().dial_loop(peer, record.source)));
        }
        Ok(tasks)
    }
}
