//! The peer book in a running node: a dead address collects failures and
//! is dialed less and less often; the same address working again resets it.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::node::timing;
use common::{DEADLINE, free_tcp_port};
use ed25519_dalek::SigningKey;
use potluck::home::config::PeerAddr;
use potluck::node::{Node, NodeConfig, Timing};
use potluck::proto::handshake::DEFAULT_NETWORK_KEY;
use potluck::proto::peerbook::PeerSource;
use potluck::proto::replicate::Policy;
use potluck::store::Store;

fn node(dir: &tempfile::TempDir, name: &str, seed: u8) -> Arc<Node> {
    let store = Arc::new(Store::open(&dir.path().join(name)).unwrap());
    Node::new(
        store,
        NodeConfig {
            identity: SigningKey::from_bytes(&[seed; 32]),
            network: DEFAULT_NETWORK_KEY,
            policy: Policy::Open,
            timing: Timing {
                min_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(200),
                ..timing()
            },
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_address_collects_failures_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let a = node(&dir, "a", 1);
    let port = free_tcp_port();
    let addr = format!("127.0.0.1:{port}");
    let peer = PeerAddr::parse(&addr).unwrap();
    tokio::spawn(a.clone().dial_loop(peer, PeerSource::Configured));

    // Failures accumulate while nothing listens.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let failures = a
            .store()
            .peer_record(&addr)
            .unwrap()
            .map_or(0, |r| r.failures);
        if failures >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no failures recorded");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let record = a.store().peer_record(&addr).unwrap().unwrap();
    assert_eq!(record.last_success_ms, None);
    assert_eq!(record.source, PeerSource::Configured);
    assert!(record.backoff(0.5) > potluck::proto::peerbook::BASE_BACKOFF);

    // Something starts listening there: the next dial works and the record
    // is reset.
    let b = node(&dir, "b", 2);
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    tokio::spawn(b.clone().accept_loop(listener));
    let deadline = Instant::now() + DEADLINE;
    loop {
        let record = a.store().peer_record(&addr).unwrap().unwrap();
        if record.last_success_ms.is_some() {
            assert_eq!(record.failures, 0);
            assert_eq!(record.feed, Some(b.feed_id()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the recovered address was not recorded"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    a.shutdown();
    b.shutdown();
}
