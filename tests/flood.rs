//! A handshake flood (issue 20): hundreds of loopback addresses keep
//! opening handshakes and never finish them (see `common::flood`). A peer
//! whose address authenticated before as a trusted peer still gets a
//! handshake slot at its first try; a newcomer from a subnet the flood
//! does not come from does too. The node's handshake deadline is long
//! (15 s) so that the slots the flood took stay taken while the peer
//! dials: without the reserved slots and the per-subnet cap the peer is
//! refused. No wall-clock assertion: every wait is bounded by
//! [`DEADLINE`]; all traffic stays on loopback.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use common::flood::{Flood, sources};
use common::node::{new_key, timing, unstarted_node, wait_until};
use common::{DEADLINE, open_store};
use potluck::content::{About, KnownContent};
use potluck::home::config::PeerAddr;
use potluck::node::limits::Limits;
use potluck::node::{ConnectionError, Node, NodeConfig, SessionReport, Timing};
use potluck::proto::handshake::DEFAULT_NETWORK_KEY;
use potluck::proto::peerbook::{PeerRecord, PeerSource};
use potluck::proto::replicate::Policy;
use tokio::net::{TcpListener, TcpSocket};

/// Addresses in the flood.
const FLOODERS: usize = 300;
/// Pause of a flooder after a refusal.
const PAUSE: Duration = Duration::from_millis(50);

/// The node under attack: default limits, a 15 s handshake deadline,
/// listening on 127.0.0.1. Its store is kept alive by the first value.
async fn target() -> (tempfile::TempDir, Arc<Node>, SocketAddr) {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("potluck=info")
        .try_init();
    let (dir, store) = open_store();
    let node = Node::with_limits(
        Arc::new(store),
        NodeConfig {
            identity: new_key(),
            network: DEFAULT_NETWORK_KEY,
            policy: Policy::Open,
            timing: Timing {
                handshake: Duration::from_secs(15),
                ..timing()
            },
        },
        Limits::default(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(node.clone().accept_loop(listener));
    (dir, node, addr)
}

/// A peer with one message of its own (kept alive by the first value).
fn peer() -> (tempfile::TempDir, Arc<Node>) {
    let (dir, store) = open_store();
    let node = unstarted_node(Arc::new(store), new_key(), DEFAULT_NETWORK_KEY);
    let about = About {
        name: "a member".into(),
        description: None,
    };
    node.publish(&about.to_content_bytes(), common::now_ms())
        .unwrap();
    (dir, node)
}

/// `peer` syncs once with `target` (feed `feed`, at `addr`), dialing
/// from `source`.
async fn sync_from(
    peer: &Arc<Node>,
    source: IpAddr,
    feed: potluck::feed::message::FeedId,
    addr: SocketAddr,
) -> Result<SessionReport, ConnectionError> {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(source, 0)).unwrap();
    let stream = tokio::time::timeout(DEADLINE, socket.connect(addr))
        .await
        .expect("connected within the deadline")
        .unwrap();
    let to = PeerAddr::parse(&format!("{feed}@{addr}")).unwrap();
    tokio::time::timeout(DEADLINE, peer.clone().dial_over(stream, &to, true))
        .await
        .expect("the sync ends within the deadline")
}

/// Starts the flood from `sources` and waits until it holds every slot
/// it can: the flooders were admitted at least `admitted` times and have
/// been refused 50 times since.
async fn flood_until_full(addr: SocketAddr, sources: &[IpAddr], admitted: u64) -> Flood {
    let flood = Flood::start(
        addr,
        sources,
        DEFAULT_NETWORK_KEY,
        PAUSE,
        Duration::from_secs(120),
    );
    wait_until("the flood to fill the handshake slots", || {
        let (got_in, refused) = flood.counts();
        got_in >= admitted && refused >= 50
    })
    .await;
    flood
}

/// Stops the flood, and returns the report of `who`'s sync, or panics
/// saying what the flood saw (the sync was refused: busy, or closed).
fn let_in(
    flood: &mut Flood,
    sync: Result<SessionReport, ConnectionError>,
    who: &str,
) -> SessionReport {
    let (admitted, refused) = flood.counts();
    flood.stop();
    sync.unwrap_or_else(|e| {
        panic!("{who} was not let in under the flood ({admitted} flood connections admitted, {refused} refused): {e}")
    })
}

/// A member (a configured peer of the node) synced once from 127.0.0.5;
/// then 300 addresses in 150 /24s flood the node's handshake slots. The
/// member, from the same address, is admitted and syncs at its first try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_address_gets_in_under_a_handshake_flood() {
    let (_dir, node, addr) = target().await;
    let feed = node.feed_id();
    let (_member_dir, member) = peer();
    let member_feed = member.feed_id();
    node.store()
        .put_peer_record(&PeerRecord::new(
            "member.example:8008".into(),
            Some(member_feed),
            PeerSource::Configured,
        ))
        .unwrap();
    let home = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5));
    let first = sync_from(&member, home, feed, addr).await.unwrap();
    assert_eq!(first.peer, Some(feed));
    wait_until("the node to let go of the member", || {
        !node.peers().iter().any(|p| p.feed == member_feed)
    })
    .await;

    // Every slot open to unknown addresses (24) is the flood's.
    let mut flood = flood_until_full(addr, &sources(FLOODERS, 150), 24).await;
    let again = sync_from(&member, home, feed, addr).await;
    let report = let_in(&mut flood, again, "the member");
    assert_eq!(report.peer, Some(feed));
}

/// 200 addresses of one /24 (127.0.1.0/24) flood the node; a newcomer
/// (never seen) from another /24 is admitted at its first try: the flood
/// holds at most the per-subnet share of the handshake slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_subnet_does_not_lock_out_a_newcomer() {
    let (_dir, node, addr) = target().await;
    let feed = node.feed_id();
    // Its share of the slots is the flood's (counted once message 2
    // arrives, so perhaps not all of them yet).
    let mut flood = flood_until_full(addr, &sources(200, 1), 1).await;
    let (_newcomer_dir, newcomer) = peer();
    let from = IpAddr::V4(Ipv4Addr::new(127, 0, 2, 1));
    let joined = sync_from(&newcomer, from, feed, addr).await;
    let report = let_in(&mut flood, joined, "the newcomer");
    assert_eq!(report.peer, Some(feed));
}
