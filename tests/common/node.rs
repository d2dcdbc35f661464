//! In-process nodes: real `Node`s with their own store and key, accepting
//! connections on 127.0.0.1 with an ephemeral port, short timings, and
//! bounded waits; and builders for event and RSVP content.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use potluck::content::{Event, EventTime, KnownContent, Rsvp, RsvpStatus};
use potluck::feed::message::{FeedId, Message, MessageId};
use potluck::home::config::PeerAddr;
use potluck::node::limits::Limits;
use potluck::node::{Node, NodeConfig, SessionReport, Timing};
use potluck::proto::handshake::{DEFAULT_NETWORK_KEY, NetworkKey};
use potluck::proto::replicate::Policy;
use potluck::store::Store;
use tempfile::TempDir;
use tokio::net::TcpListener;

use super::{DEADLINE, START, now_ms};

/// Pause between two polls.
pub const POLL: Duration = Duration::from_millis(25);

/// Short timeouts and backoffs, so that tests run quickly.
pub fn timing() -> Timing {
    Timing {
        handshake: Duration::from_secs(2),
        keepalive: Duration::from_secs(1),
        idle: Duration::from_secs(5),
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
    }
}

pub fn new_key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

pub fn feed_of(key: &SigningKey) -> FeedId {
    FeedId(key.verifying_key().to_bytes())
}

/// A node over `store` as `key` on `network`, open to every feed, with
/// [`timing`]; nothing is started (no listener, no dial).
pub fn unstarted_node(store: Arc<Store>, key: SigningKey, network: NetworkKey) -> Arc<Node> {
    Node::new(
        store,
        NodeConfig {
            identity: key,
            network,
            policy: Policy::Open,
            timing: timing(),
        },
    )
}

/// A running node: its own store in a temporary directory (or a store it
/// was given), its own key, accepting connections on 127.0.0.1 with an
/// ephemeral port. Dropping it shuts the node down.
pub struct TestNode {
    pub node: Arc<Node>,
    pub addr: SocketAddr,
    pub key: SigningKey,
    _dir: Option<TempDir>,
}

impl TestNode {
    /// A node on the public network, with a new key and a new store.
    pub async fn start() -> TestNode {
        TestNode::start_on(DEFAULT_NETWORK_KEY).await
    }

    /// A node on the network of `network`, with a new key and a new store.
    pub async fn start_on(network: NetworkKey) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("store")).unwrap());
        let mut node = TestNode::start_with(store, new_key(), network).await;
        node._dir = Some(dir);
        node
    }

    /// A node on the public network over an existing store with an
    /// existing key (a restart).
    pub async fn start_over(store: Arc<Store>, key: SigningKey) -> TestNode {
        TestNode::start_with(store, key, DEFAULT_NETWORK_KEY).await
    }

    /// A node on the public network with a new key and store, and these
    /// limits on inbound connections.
    pub async fn start_limited(limits: Limits) -> TestNode {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("store")).unwrap());
        let mut node =
            TestNode::start_node(Some(limits), store, new_key(), DEFAULT_NETWORK_KEY).await;
        node._dir = Some(dir);
        node
    }

    /// Starts a node over `store` as `key`, listening on 127.0.0.1:0.
    async fn start_with(store: Arc<Store>, key: SigningKey, network: NetworkKey) -> TestNode {
        TestNode::start_node(None, store, key, network).await
    }

    async fn start_node(
        limits: Option<Limits>,
        store: Arc<Store>,
        key: SigningKey,
        network: NetworkKey,
    ) -> TestNode {
        // The node's log, shown by the test harness for a failing test only.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("potluck=info")
            .try_init();
        let node = match limits {
            Some(limits) => Node::with_limits(
                store,
                NodeConfig {
                    identity: key.clone(),
                    network,
                    policy: Policy::Open,
                    timing: timing(),
                },
                limits,
            ),
            None => unstarted_node(store, key.clone(), network),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(node.clone().accept_loop(listener));
        TestNode {
            node,
            addr,
            key,
            _dir: None,
        }
    }

    pub fn feed(&self) -> FeedId {
        feed_of(&self.key)
    }

    pub fn store(&self) -> &Arc<Store> {
        self.node.store()
    }

    /// `HOST:PORT`.
    pub fn plain_addr(&self) -> PeerAddr {
        PeerAddr::parse(&self.addr.to_string()).unwrap()
    }

    /// `@FEED.ed25519@HOST:PORT`.
    pub fn pinned_addr(&self) -> PeerAddr {
        let addr = PeerAddr::parse(&format!("{}@{}", self.feed(), self.addr)).unwrap();
        assert_eq!(addr.feed, Some(self.feed()));
        addr
    }

    pub fn publish(&self, content: &[u8]) -> Message {
        self.node.publish(content, now_ms()).unwrap()
    }

    pub fn rsvp(&self, event: MessageId, status: RsvpStatus, guests: u32) -> Message {
        self.rsvp_to(event, status, guests, None)
    }

    pub fn rsvp_to(
        &self,
        event: MessageId,
        status: RsvpStatus,
        guests: u32,
        revision: Option<u32>,
    ) -> Message {
        self.publish(&rsvp(event, status, guests, revision).to_content_bytes())
    }

    /// Dials `other` once and returns the report.
    pub async fn sync_with(&self, other: &TestNode) -> SessionReport {
        let peer = other.pinned_addr();
        tokio::time::timeout(DEADLINE, self.node.clone().dial(&peer, true))
            .await
            .expect("a sync finishes")
            .unwrap_or_else(|e| panic!("sync with {peer} failed: {e}"))
    }

    /// Dials `other` once, exchanges everything both ways, and waits until
    /// both sides have let go of the connection (so that the next sync
    /// between the two is not refused as a duplicate).
    pub async fn sync_settled(&self, other: &TestNode) -> SessionReport {
        let report = self.sync_with(other).await;
        let me = self.feed();
        wait_until("the peer to drop the connection", || {
            !other.is_connected_to(&me)
        })
        .await;
        report
    }

    /// Keeps a connection to `other` up in the background.
    pub fn keep_connected_to(&self, other: &TestNode, pinned: bool) {
        let peer = if pinned {
            other.pinned_addr()
        } else {
            other.plain_addr()
        };
        tokio::spawn(
            self.node
                .clone()
                .dial_loop(peer, potluck::proto::peerbook::PeerSource::Configured),
        );
    }

    pub fn is_connected_to(&self, other: &FeedId) -> bool {
        self.node.peers().iter().any(|p| p.feed == *other)
    }

    pub fn head(&self, feed: &FeedId) -> u64 {
        head(self.store(), feed)
    }

    pub fn heads(&self) -> BTreeMap<FeedId, u64> {
        self.store()
            .feeds()
            .unwrap()
            .into_iter()
            .map(|(f, h)| (f, h.sequence))
            .collect()
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.node.shutdown();
    }
}

/// The latest sequence number of `feed` in `store` (0 if none).
pub fn head(store: &Store, feed: &FeedId) -> u64 {
    store.head(feed).unwrap().map_or(0, |h| h.sequence)
}

/// Polls `cond` until it holds; panics after [`DEADLINE`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `node` has dropped every connection to `feed` (it removes a
/// peer only after the session's memory is saved).
pub async fn wait_disconnected(node: &TestNode, feed: &FeedId) {
    wait_until("the peer to be disconnected", || {
        !node.is_connected_to(feed)
    })
    .await;
}

// ---------------------------------------------------------------------------
// Content.

/// A valid event at [`START`] in "the park".
pub fn event(title: &str, description: Option<String>, capacity: Option<u32>) -> Event {
    let event = Event {
        location: Some("the park".into()),
        description,
        capacity,
        ..Event::new(title, EventTime::parse("start", START).unwrap())
    };
    event.validate().unwrap();
    event
}

/// The content bytes of [`event`] without a capacity.
pub fn event_content(title: &str, description: Option<String>) -> Vec<u8> {
    event(title, description, None).to_content_bytes()
}

/// A valid RSVP without a note.
pub fn rsvp(event: MessageId, status: RsvpStatus, guests: u32, revision: Option<u32>) -> Rsvp {
    let rsvp = Rsvp {
        event,
        status,
        guests,
        note: None,
        revision,
    };
    rsvp.validate().unwrap();
    rsvp
}

/// The content bytes of a lone `status` answer to `event`.
pub fn rsvp_content(event: MessageId, status: RsvpStatus) -> Vec<u8> {
    rsvp(event, status, 0, None).to_content_bytes()
}
