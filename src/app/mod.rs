//! The application layer: the one place where front ends (the command
//! line, commands handed over the control socket, the web page) publish,
//! query, and hear about changes.
//!
//! An [`App`] works the same whether `potluck serve` runs or not: it sits
//! on a [`Node`], either the running one (so what is published reaches
//! connected peers at once) or one that never opens a socket (a command
//! run while no node runs). Either way every append goes through
//! [`Node::after_append`], so the organizer's admissions are decided and
//! the append is announced exactly once. An `App` without an identity
//! ([`App::read_only`]) can query but not publish.
//!
//! Queries return view types ([`EventSummary`], [`EventDetail`],
//! [`AgendaItem`]) that gather what a person reads about an event (tally,
//! admissions, names, their own answer), so that no front end combines
//! store queries by itself. Front ends only format them.

pub mod ics;
pub mod when;

use std::collections::HashMap;
use std::sync::Arc;

use thiserror::Error;
use tokio::sync::broadcast;

use crate::content::{
    About, Change as FieldChange, Contact, ContentError, Event, EventCancel, EventUpdate,
    KnownContent, Rsvp, RsvpStatus,
};
use crate::feed::message::{FeedId, Message, MessageId};
use crate::home::config::Invite;
pub use crate::node::CatchUp;
use crate::node::{Node, NodeEvent, PeerInfo};
use crate::proto::handshake::DEFAULT_NETWORK_KEY;
use crate::proto::peerbook::{PeerRecord, PeerSource};
use crate::store::admission::{self, AdmissionStatus, AdmissionView};
use crate::store::index::{EventState, EventStatus, RsvpState, Tally};
use crate::store::{IngestReport, Store, StoreError};

/// Why an application request failed.
#[derive(Debug, Error)]
pub enum AppError {
    /// The store failed or refused (unknown event, bad id prefix, I/O...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The content is not valid (a field too long, end before start...).
    #[error(transparent)]
    Content(#[from] ContentError),
    /// Publishing needs the identity, and this app was opened without it.
    #[error("no identity loaded: this request can only read")]
    ReadOnly,
    /// Only an event's organizer may change or cancel it.
    #[error("only the organizer ({organizer}) can {verb} event {event}")]
    NotOrganizer {
        /// The event.
        event: MessageId,
        /// Its organizer.
        organizer: FeedId,
        /// What was attempted ("update", "cancel").
        verb: &'static str,
    },
    /// The event is cancelled: no changes, no RSVPs.
    #[error("event {event} is cancelled; {what}")]
    Cancelled {
        /// The event.
        event: MessageId,
        /// What is closed ("it cannot be changed any more", "RSVPs are closed").
        what: &'static str,
    },
    /// An update that would change nothing.
    #[error("nothing to change: {0}")]
    NothingToChange(&'static str),
    /// A follow, block (or the reverse) of one's own feed.
    #[error("that is your own feed")]
    OwnFeed,
    /// An invite that names no feed to follow.
    #[error("the invite names no feed")]
    InviteWithoutFeed,
    /// An invite for another network than this node's.
    #[error(
        "this invite is for {}, and this home is on another one; join with a new home: potluck join CODE --home DIR",
        if *.private { "a private network" } else { "the public network" }
    )]
    OtherNetwork {
        /// The invite is for a private network.
        private: bool,
    },
}

/// Which events to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventList {
    /// Not yet over, soonest first.
    Upcoming,
    /// Over, most recent last.
    Past,
    /// Every event, by start.
    All,
}

/// An event as a list shows it.
#[derive(Clone, Debug)]
pub struct EventSummary {
    /// The event's current state (organizer's fields, status, revision).
    pub state: EventState,
    /// The organizer's display name, if known.
    pub organizer_name: Option<String>,
    /// Counts of current answers.
    pub tally: Tally,
    /// Admission counts and, when the RSVPs were read, per-person states.
    pub admissions: AdmissionView,
    /// The viewer's own answer, if the app has an identity and they answered.
    pub mine: Option<MyAnswer>,
}

impl EventSummary {
    /// Places left under the capacity (`None` without a capacity).
    pub fn places_left(&self) -> Option<u64> {
        self.state
            .event
            .capacity
            .map(|c| u64::from(c).saturating_sub(self.admissions.admitted_headcount))
    }

    /// Whether the event is cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.state.status == EventStatus::Cancelled
    }
}

/// The viewer's own answer to an event.
#[derive(Clone, Debug)]
pub struct MyAnswer {
    /// The answer.
    pub rsvp: RsvpState,
    /// Its admission state (`going` answers only).
    pub admission: Option<AdmissionStatus>,
    /// 1-based place on the waitlist, when waitlisted.
    pub waitlist_position: Option<usize>,
    /// The answer was given to an earlier time or place.
    pub stale: bool,
}

/// One person's answer, as an event's page shows it.
#[derive(Clone, Debug)]
pub struct RsvpView {
    /// Who answered.
    pub author: FeedId,
    /// Their display name, if known.
    pub name: Option<String>,
    /// The answer.
    pub rsvp: RsvpState,
    /// Its admission state (`going` answers only).
    pub admission: Option<AdmissionStatus>,
    /// 1-based place on the waitlist, when waitlisted.
    pub waitlist_position: Option<usize>,
    /// The answer was given to an earlier time or place.
    pub stale: bool,
}

/// Everything about one event.
#[derive(Clone, Debug)]
pub struct EventDetail {
    /// What a list shows.
    pub summary: EventSummary,
    /// Every current answer, in the store's order (by author).
    pub rsvps: Vec<RsvpView>,
}

impl EventDetail {
    /// The event as a calendar file shows it: its organizer's name and
    /// every current answer with its admission state (see [`crate::app::ics`]).
    pub fn to_ics(&self) -> crate::app::ics::IcsEvent<'_> {
        crate::app::ics::IcsEvent {
            state: &self.summary.state,
            organizer_name: self.summary.organizer_name.clone(),
            attendees: self
                .rsvps
                .iter()
                .map(|r| crate::app::ics::IcsAttendee {
                    feed: r.author,
                    name: r.name.clone(),
                    status: r.rsvp.status,
                    admission: r.admission,
                    guests: r.rsvp.guests,
                })
                .collect(),
        }
    }

    /// The waitlist in order (first in line first).
    pub fn waitlist(&self) -> Vec<&RsvpView> {
        let mut list: Vec<&RsvpView> = self
            .rsvps
            .iter()
            .filter(|r| r.waitlist_position.is_some())
            .collect();
        list.sort_by_key(|r| r.waitlist_position);
        list
    }
}

/// An item of the viewer's agenda.
#[derive(Clone, Debug)]
pub struct AgendaItem {
    /// The event.
    pub state: EventState,
    /// The viewer's answer and its admission state.
    pub mine: MyAnswer,
}

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
    /// Changes were missed (the subscriber fell behind): show everything
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

/// The application: publish, query, subscribe. Cheap to clone.
#[derive(Clone)]
pub struct App {
    store: Arc<Store>,
    /// `None` when opened without an identity.
    node: Option<Arc<Node>>,
}

impl App {
    /// An app over a node: running (serving peers) or one that never
    /// opens a socket.
    pub fn new(node: Arc<Node>) -> App {
        App {
            store: node.store().clone(),
            node: Some(node),
        }
    }

    /// An app that can only read (no identity loaded).
    pub fn read_only(store: Arc<Store>) -> App {
        App { store, node: None }
    }

    /// The store (for what the app does not wrap: logs, fsck, bundles).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The node, unless read-only.
    pub fn node(&self) -> Option<&Arc<Node>> {
        self.node.as_ref()
    }

    fn writer(&self) -> Result<&Arc<Node>, AppError> {
        self.node.as_ref().ok_or(AppError::ReadOnly)
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

    // --- Publishing, with the rules a person expects checked first ---

    /// Announces a new event; returns its message (the id is the event's).
    pub fn announce(&self, event: &Event, now_ms: i64) -> Result<Message, AppError> {
        event.validate()?;
        self.publish(&event.to_content_bytes(), now_ms)
    }

    /// Resolves an event that we organize and that is still scheduled.
    pub fn own_event(&self, event: &str, verb: &'static str) -> Result<EventState, AppError> {
        let state = self.event_state(event)?;
        let me = self.feed_id()?;
        if state.author != me {
            return Err(AppError::NotOrganizer {
                event: state.id,
                organizer: state.author,
                verb,
            });
        }
        if state.status == EventStatus::Cancelled {
            return Err(AppError::Cancelled {
                event: state.id,
                what: "it cannot be changed any more",
            });
        }
        Ok(state)
    }

    /// Publishes an update of an event we organize (`update.event` is
    /// set from `event`). Returns the new revision.
    pub fn update(
        &self,
        event: &str,
        mut update: EventUpdate,
        now_ms: i64,
    ) -> Result<(MessageId, u32), AppError> {
        let state = self.own_event(event, "update")?;
        update.event = state.id;
        if update.is_empty() {
            return Err(AppError::NothingToChange(
                "give at least one field, e.g. --title or --start",
            ));
        }
        update.validate()?;
        // The merged event must still be valid (e.g. end not before start),
        // and must differ: a no-op update would only bump the revision.
        if state.event.apply(&update)? == state.event {
            return Err(AppError::NothingToChange(
                "the event already has these values",
            ));
        }
        self.publish(&update.to_content_bytes(), now_ms)?;
        Ok((state.id, state.revision + 1))
    }

    /// Cancels an event we organize.
    pub fn cancel(
        &self,
        event: &str,
        reason: Option<String>,
        now_ms: i64,
    ) -> Result<MessageId, AppError> {
        let state = self.own_event(event, "cancel")?;
        let cancel = EventCancel {
            event: state.id,
            reason: reason.filter(|r| !r.is_empty()),
        };
        cancel.validate()?;
        self.publish(&cancel.to_content_bytes(), now_ms)?;
        Ok(state.id)
    }

    /// Answers an event (again: the latest answer counts). Returns the
    /// event as answered.
    pub fn rsvp(
        &self,
        event: &str,
        status: RsvpStatus,
        guests: u32,
        note: Option<String>,
        now_ms: i64,
    ) -> Result<EventState, AppError> {
        let mut rsvp = Rsvp {
            event: MessageId::default(),
            status,
            guests,
            note: note.filter(|n| !n.is_empty()),
            revision: None,
        };
        // Check the fields before touching the store, with a placeholder id.
        rsvp.validate()?;
        self.writer()?;
        let state = self.event_state(event)?;
        if state.status == EventStatus::Cancelled {
            return Err(AppError::Cancelled {
                event: state.id,
                what: "RSVPs are closed",
            });
        }
        rsvp.event = state.id;
        rsvp.revision = Some(state.revision);
        self.publish(&rsvp.to_content_bytes(), now_ms)?;
        Ok(state)
    }

    /// Sets our display name.
    pub fn set_name(&self, name: String, now_ms: i64) -> Result<(), AppError> {
        let about = About {
            name,
            description: None,
        };
        about.validate()?;
        self.publish(&about.to_content_bytes(), now_ms)?;
        Ok(())
    }

    /// Follows, unfollows, blocks or unblocks a feed. Returns the new
    /// stance `(following, blocking)`.
    pub fn contact(
        &self,
        target: FeedId,
        change: ContactChange,
        now_ms: i64,
    ) -> Result<(bool, bool), AppError> {
        let me = self.feed_id()?;
        if target == me {
            return Err(AppError::OwnFeed);
        }
        let current = self
            .store
            .contacts(&me)?
            .into_iter()
            .find(|(f, _)| *f == target)
            .map(|(_, c)| (c.following, c.blocking))
            .unwrap_or((false, false));
        let (following, blocking) = match change {
            ContactChange::Follow => (true, false),
            ContactChange::Unfollow => (false, current.1),
            ContactChange::Block => (false, true),
            ContactChange::Unblock => (current.0, false),
        };
        let contact = Contact {
            contact: target,
            following,
            blocking,
        };
        contact.validate()?;
        self.publish(&contact.to_content_bytes(), now_ms)?;
        Ok((following, blocking))
    }

    /// Takes an invite on this node: it must be for our network; follows
    /// the inviter (unless we already do) and remembers its address in the
    /// peer book. Returns the inviter. Connecting is the caller's job (a
    /// running node dials it with [`Node::dial_loop`]; `serve` dials the
    /// peer book when it starts).
    pub fn accept_invite(&self, invite: &Invite, now_ms: i64) -> Result<FeedId, AppError> {
        let node = self.writer()?;
        let inviter = invite.peer.feed.ok_or(AppError::InviteWithoutFeed)?;
        let network = invite.network.as_ref().unwrap_or(&DEFAULT_NETWORK_KEY);
        if network != node.network_key() {
            return Err(AppError::OtherNetwork {
                private: invite.network.is_some(),
            });
        }
        let me = node.feed_id();
        if inviter == me {
            return Err(AppError::OwnFeed);
        }
        let following = self
            .store
            .contacts(&me)?
            .iter()
            .any(|(f, c)| *f == inviter && c.following);
        if !following {
            self.contact(inviter, ContactChange::Follow, now_ms)?;
        }
        if self.store.peer_record(&invite.peer.addr)?.is_none() {
            let record =
                PeerRecord::new(invite.peer.addr.clone(), Some(inviter), PeerSource::Invite);
            self.store.put_peer_record(&record)?;
        }
        Ok(inviter)
    }

    // --- Queries ---

    /// A person's display name, if known.
    pub fn name_of(&self, feed: &FeedId) -> Result<Option<String>, AppError> {
        Ok(self.store.about(feed)?.map(|a| a.name))
    }

    /// An event by id or id prefix.
    pub fn event_state(&self, event: &str) -> Result<EventState, AppError> {
        let id = self.store.resolve_event(event)?;
        self.store
            .event(&id)?
            .ok_or_else(|| AppError::Store(StoreError::UnknownEvent(id.to_string())))
    }

    /// A page of events: at most `limit` (0: all), and whether there are
    /// more. Upcoming and past are relative to `now_ms`.
    pub fn events(
        &self,
        list: EventList,
        now_ms: i64,
        limit: usize,
    ) -> Result<(Vec<EventSummary>, bool), AppError> {
        self.events_from(list, now_ms, 0, limit)
    }

    /// Like [`App::events`], after skipping the first `skip` of the list
    /// (page N of a list): only the events returned are summarized, so a
    /// late page costs index reads, not tallies, for what it skips.
    pub fn events_from(
        &self,
        list: EventList,
        now_ms: i64,
        skip: usize,
        limit: usize,
    ) -> Result<(Vec<EventSummary>, bool), AppError> {
        let shown = if limit > 0 {
            skip.saturating_add(limit)
        } else {
            0
        };
        // One more than shown, to know whether there are more.
        let fetch = (shown > 0).then_some(shown.saturating_add(1));
        let mut states = match list {
            EventList::All => self.store.all_events()?,
            EventList::Past => self.store.past_events(now_ms, fetch)?,
            EventList::Upcoming => self.store.upcoming_events(now_ms, fetch)?,
        };
        let more = shown > 0 && states.len() > shown;
        if more {
            if list == EventList::Past {
                states.remove(0);
            } else {
                states.truncate(shown);
            }
        }
        // The list runs soonest first (past: most recent last); page N
        // skips the first pages from the near end.
        if list == EventList::Past {
            let keep = states.len().saturating_sub(skip);
            states.truncate(keep);
        } else {
            states.drain(..skip.min(states.len()));
        }
        let me = self.node.as_ref().map(|n| n.feed_id());
        let mut out = Vec::with_capacity(states.len());
        for state in states {
            out.push(self.summarize(state, me.as_ref(), None)?);
        }
        Ok((out, more))
    }

    /// Everything about one event (by id or id prefix).
    pub fn event(&self, event: &str) -> Result<EventDetail, AppError> {
        let state = self.event_state(event)?;
        self.detail(state)
    }

    /// Everything about an event whose state is at hand.
    pub fn detail(&self, state: EventState) -> Result<EventDetail, AppError> {
        let rsvps = self.store.rsvps(&state.id)?;
        let me = self.node.as_ref().map(|n| n.feed_id());
        let summary = self.summarize(state, me.as_ref(), Some(&rsvps))?;
        let positions = waitlist_positions(&summary.admissions);
        let mut views = Vec::with_capacity(rsvps.len());
        for (author, rsvp) in rsvps {
            views.push(RsvpView {
                author,
                name: self.name_of(&author)?,
                admission: summary.admissions.statuses.get(&author).copied(),
                waitlist_position: positions.get(&author).copied(),
                stale: rsvp.is_stale(&summary.state),
                rsvp,
            });
        }
        Ok(EventDetail {
            summary,
            rsvps: views,
        })
    }

    /// Our `going` and `maybe` answers to upcoming events, soonest first.
    pub fn agenda(&self, now_ms: i64) -> Result<Vec<AgendaItem>, AppError> {
        let me = self.feed_id()?;
        let mut items = Vec::new();
        for state in self.store.upcoming_events(now_ms, None)? {
            let Some(rsvp) = self.store.rsvp(&state.id, &me)? else {
                continue;
            };
            if rsvp.status == RsvpStatus::NotGoing {
                continue;
            }
            let mine = self.my_answer(&state, &me, rsvp)?;
            items.push(AgendaItem { state, mine });
        }
        Ok(items)
    }

    /// An iCalendar (RFC 5545) file of one event (by id or id prefix), or
    /// of every upcoming one, each with its current answers as attendees
    /// (see [`crate::app::ics`]). Returns the text and how many events it holds.
    pub fn calendar(&self, event: Option<&str>, now_ms: i64) -> Result<(String, usize), AppError> {
        let states = match event {
            Some(text) => vec![self.event_state(text)?],
            None => self.store.upcoming_events(now_ms, None)?,
        };
        // Each event with its organizer's name and every answer with its
        // admission state (a waitlisted answer is not an accepted one).
        let details = states
            .into_iter()
            .map(|state| self.detail(state))
            .collect::<Result<Vec<_>, _>>()?;
        let events: Vec<crate::app::ics::IcsEvent> =
            details.iter().map(EventDetail::to_ics).collect();
        let now = jiff::Timestamp::from_millisecond(now_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        Ok((crate::app::ics::calendar(&events, now), events.len()))
    }

    /// Connected peers (empty without a running node) and every known
    /// address.
    pub fn network(&self) -> Result<(Vec<PeerInfo>, Vec<PeerRecord>), AppError> {
        let connected = self.node.as_ref().map(|n| n.peers()).unwrap_or_default();
        Ok((connected, self.store.peer_records()?))
    }

    /// The feeds we follow or block, with names.
    pub fn contacts(&self) -> Result<Vec<ContactView>, AppError> {
        let me = self.feed_id()?;
        let mut out = Vec::new();
        for (feed, c) in self.store.contacts(&me)? {
            out.push(ContactView {
                feed,
                name: self.name_of(&feed)?,
                following: c.following,
                blocking: c.blocking,
            });
        }
        Ok(out)
    }

    fn summarize(
        &self,
        state: EventState,
        me: Option<&FeedId>,
        rsvps: Option<&[(FeedId, RsvpState)]>,
    ) -> Result<EventSummary, AppError> {
        let tally = self.store.tally(&state.id)?;
        // The RSVPs are read only when admission counts need them (an
        // event with a capacity), unless the caller has them already.
        let read;
        let rsvps = match rsvps {
            Some(r) => r,
            None if state.event.capacity.is_some() => {
                read = self.store.rsvps(&state.id)?;
                &read
            }
            None => &[],
        };
        let admissions = admission::view(&self.store, &state, rsvps, &tally)?;
        let mine = match me {
            Some(me) => match self.store.rsvp(&state.id, me)? {
                Some(rsvp) => Some(self.my_answer_in(&state, rsvp, &admissions, me)?),
                None => None,
            },
            None => None,
        };
        Ok(EventSummary {
            organizer_name: self.name_of(&state.author)?,
            state,
            tally,
            admissions,
            mine,
        })
    }

    fn my_answer(
        &self,
        state: &EventState,
        me: &FeedId,
        rsvp: RsvpState,
    ) -> Result<MyAnswer, AppError> {
        let tally = self.store.tally(&state.id)?;
        let rsvps = if state.event.capacity.is_some() {
            self.store.rsvps(&state.id)?
        } else {
            Vec::new()
        };
        let admissions = admission::view(&self.store, state, &rsvps, &tally)?;
        self.my_answer_in(state, rsvp, &admissions, me)
    }

    fn my_answer_in(
        &self,
        state: &EventState,
        rsvp: RsvpState,
        admissions: &AdmissionView,
        me: &FeedId,
    ) -> Result<MyAnswer, AppError> {
        let admission = match admissions.statuses.get(me) {
            Some(s) => Some(*s),
            // Without a capacity the view holds no per-person states.
            None => admission::status_of(state, &rsvp, None),
        };
        Ok(MyAnswer {
            admission,
            waitlist_position: waitlist_positions(admissions).get(me).copied(),
            stale: rsvp.is_stale(state),
            rsvp,
        })
    }
}

/// 1-based waitlist places by person.
fn waitlist_positions(admissions: &AdmissionView) -> HashMap<FeedId, usize> {
    admissions
        .waitlist
        .iter()
        .enumerate()
        .map(|(i, f)| (*f, i + 1))
        .collect()
}

/// A feed we follow or block.
#[derive(Clone, Debug)]
pub struct ContactView {
    /// The feed.
    pub feed: FeedId,
    /// Its display name, if known.
    pub name: Option<String>,
    /// We follow it.
    pub following: bool,
    /// We block it.
    pub blocking: bool,
}

/// A change of stance towards another feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactChange {
    /// Replicate and show it.
    Follow,
    /// Stop following (a block stays).
    Unfollow,
    /// Never store, send or show it (stops following too).
    Block,
    /// Lift a block (a follow stays).
    Unblock,
}

/// Turns an edit field into a change: absent keeps, empty clears.
pub fn text_change(value: Option<String>) -> FieldChange<String> {
    match value {
        None => FieldChange::Keep,
        Some(v) if v.is_empty() => FieldChange::Clear,
        Some(v) => FieldChange::Set(v),
    }
}
