//! The application layer: the one door through which front ends (the
//! command line, commands handed over the control socket, the web page)
//! open a home, publish, query, reach peers, keep the store, and hear
//! about changes. Front ends import nothing else of this crate but the
//! plain id and content types; what they name of the layers below is
//! re-exported here.
//!
//! An [`App`] works the same whether `potluck serve` runs or not: it sits
//! on a [`Node`], either the running one (so what is published reaches
//! connected peers at once) or one that never opens a socket (a command
//! run while no node runs). Either way every append goes through
//! [`Node::after_append`], so the organizer's admissions are decided and
//! the append is announced exactly once. An `App` without an identity
//! ([`App::read_only`]) can query but not publish.
//!
//! [`App::open`] is the composition root: identity, store and node, with
//! the rules about a home's identity in one place. Queries return view
//! types ([`EventSummary`], [`EventDetail`], [`AgendaItem`],
//! [`NetworkView`]) that gather what a person reads, so that no front end
//! combines store queries by itself. Front ends only format them.

mod answer;
mod comments;
pub mod control;
mod error;
mod hub;
pub mod ics;
mod maintenance;
mod network;
mod notify;
mod open;
mod public;
mod publish;
mod query;
pub mod reminders;
mod serve;
mod views;
pub mod when;

use std::sync::{Arc, OnceLock};

use tokio::sync::broadcast;

use crate::feed::message::{FeedId, Message, MessageId};
use crate::node::{Node, NodeEvent};
use crate::store::Store;

pub use answer::{AnswerError, GuestStatus, MAX_ANSWER_MESSAGES, WebAnswers, closed_to_web};
pub use comments::{
    CommentShown, CommentView, MAX_LINKS_SHARED, MAX_THREAD_PAGE, SharedLink, THREAD_PAGE,
    ThreadPage, ThreadView,
};
pub use error::{AppError, MIN_ID_PREFIX};
pub use hub::{MAX_CODE_NOTE, MemberCodeOptions, MemberView};
pub use maintenance::{
    CountingReader, FixtureReport, FsckOutcome, ImportReport, Rebuilt, Repaired, fixtures, fsck,
};
pub use network::{InviteView, JoinReport, RecoverOutcome, SyncReport};
pub use open::{Access, ImportedKey, PageToken, new_secret};
pub use public::{MAX_PUBLIC_SCAN, PublicNetwork, Reach, reach};
pub use publish::{Past, check_not_over, rsvp_draft};
pub use serve::{
    DiscoveryOptions, NodePort, PagePort, PublicFlags, PublicPort, Serving, StartOptions,
};
pub use views::{
    AgendaItem, ConnectedPeer, ContactChange, ContactView, EventDetail, EventList, EventSummary,
    HubView, KnownAddress, MembersSummary, MyAnswer, NetworkView, RsvpView, person, short_feed,
    source_words, text_change,
};

// The vocabulary of the layers below that front ends name.
pub use crate::feed::bundle::{BundleReader, ClockFile};
pub use crate::fixtures::FixtureSpec;
pub use crate::home::config::{DEFAULT_LISTEN, DEFAULT_WEB, Invite, PeerAddr, TlsFiles};
pub use crate::home::{HOME_ENV, Home};
pub use crate::node::{CatchUp, PeerInfo, SessionReport};
pub use crate::proto::guests::{GuestLimitError, GuestLimits};
pub use crate::proto::peerbook::{PeerRecord, PeerSource};
pub use crate::proto::replicate::Holding;
pub use crate::store::FsckReport;
pub use crate::store::admission::{AdmissionStatus, AdmissionView};
pub use crate::store::index::{EventState, EventStatus, RsvpState, Tally};
pub use crate::store::{IngestReport, UPGRADE_LOG};

/// Events per page of `potluck events` unless `--limit` says otherwise.
pub const EVENTS_PAGE: usize = 100;

/// A change that front ends may want to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The store now holds this feed up to this sequence.
    Appended {
        /// The feed.
        feed: FeedId,
        /// Its new head.
        sequence: u64,
    },
    /// These events' state, RSVPs or admissions changed.
    Events(Arc<[MessageId]>),
    /// A peer connected.
    PeerConnected(FeedId),
    /// A peer's connection ended.
    PeerLeft(FeedId),
    /// A connected peer's catch-up progress.
    Progress(CatchUp),
    /// Changes were missed (the subscriber fell behind), or more events
    /// changed at once than a notice names (a bulk sync): show everything
    /// anew.
    Missed,
}

/// A stream of [`Change`]s (see [`App::subscribe`]).
pub struct Changes {
    events: broadcast::Receiver<NodeEvent>,
}

impl Changes {
    /// The next change; `None` once the node is gone.
    pub async fn next(&mut self) -> Option<Change> {
        loop {
            let change = match self.events.recv().await {
                Ok(NodeEvent::Appended(feed, sequence)) => Change::Appended { feed, sequence },
                Ok(NodeEvent::EventsChanged(ids)) => Change::Events(ids),
                Ok(NodeEvent::ManyEventsChanged) => Change::Missed,
                Ok(NodeEvent::PeerConnected(peer)) => Change::PeerConnected(peer),
                Ok(NodeEvent::PeerLeft(peer)) => Change::PeerLeft(peer),
                Ok(NodeEvent::Progress(progress)) => Change::Progress(progress),
                // Connections' business, not front ends'.
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => Change::Missed,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            return Some(change);
        }
    }
}

/// The application: open, publish, query, reach peers, subscribe. Cheap
/// to clone.
#[derive(Clone)]
pub struct App {
    store: Arc<Store>,
    /// `None` when opened without an identity.
    node: Option<Arc<Node>>,
    /// The home it was opened from (`None` for an app made over a node
    /// or store by hand, which has no settings to read or write).
    home: Option<Home>,
    /// Where the node serves, once [`App::start`] made it the running one.
    serving: Arc<OnceLock<Serving>>,
    /// Whether [`App::open`] created the identity just now.
    created: bool,
    /// Where the running node's reminder task tells open pages, once it
    /// runs (`App::subscribe_reminders`).
    reminder_feed: Arc<OnceLock<broadcast::Sender<reminders::Reminder>>>,
}

impl App {
    /// An app over a node: running (serving peers) or one that never
    /// opens a socket. For embedding and tests; front ends use
    /// [`App::open`].
    pub fn new(node: Arc<Node>) -> App {
        App {
            store: node.store().clone(),
            node: Some(node),
            home: None,
            serving: Arc::default(),
            created: false,
            reminder_feed: Arc::default(),
        }
    }

    /// An app that can only read (no identity loaded).
    pub fn read_only(store: Arc<Store>) -> App {
        App {
            store,
            node: None,
            home: None,
            serving: Arc::default(),
            created: false,
            reminder_feed: Arc::default(),
        }
    }

    fn writer(&self) -> Result<&Arc<Node>, AppError> {
        self.node.as_ref().ok_or(AppError::ReadOnly)
    }

    fn home(&self) -> Result<&Home, AppError> {
        self.home.as_ref().ok_or(AppError::Refused(
            "this app was opened without a home".into(),
        ))
    }

    /// Whether this open created the home's identity (a new person, to be
    /// welcomed and asked for a name).
    pub fn created_identity(&self) -> bool {
        self.created
    }

    /// Where the running node serves, when this app is the running node's.
    pub fn serving(&self) -> Option<&Serving> {
        self.serving.get()
    }

    /// Our feed.
    pub fn feed_id(&self) -> Result<FeedId, AppError> {
        Ok(self.writer()?.feed_id())
    }

    /// Changes from now on. A read-only app never changes.
    pub fn subscribe(&self) -> Option<Changes> {
        self.node.as_ref().map(|node| Changes {
            events: node.subscribe(),
        })
    }

    /// Publishes content as the next message of our feed: durable on
    /// return, admissions decided, and pushed to connected peers.
    /// Blocking (it syncs the disk).
    pub fn publish(&self, content: &[u8], now_ms: i64) -> Result<Message, AppError> {
        Ok(self.writer()?.publish(content, now_ms)?)
    }

    /// Ingests messages that came by file: the same path as gossip, minus
    /// blocked feeds. Returns the report and how many messages of blocked
    /// feeds were dropped. Blocking.
    pub fn ingest(&self, msgs: Vec<Message>) -> Result<(IngestReport, usize), AppError> {
        Ok(self.writer()?.ingest_messages(msgs)?)
    }

    /// Makes sure everything written so far is on disk.
    pub fn flush(&self) -> Result<(), AppError> {
        self.store.flush()?;
        Ok(())
    }

    /// Saves everything closing the app would save, for a front end that
    /// exits right after without dropping it (see
    /// [`Store::save_before_exit`]). The app stays usable.
    pub fn save_before_exit(&self) -> Result<(), AppError> {
        self.store.save_before_exit()?;
        Ok(())
    }
}

/// Now, in milliseconds since the Unix epoch: the one clock of front ends
/// (the layers below take time as an argument).
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests;
