//! What front ends show: the view types that queries return, gathering
//! what a person reads about an event (tally, admissions, names, their
//! own answer), so that no front end combines store queries by itself.

use std::collections::HashMap;

use crate::content::Change as FieldChange;
use crate::feed::message::FeedId;
use crate::home::config::PeerAddr;
use crate::node::PeerInfo;
use crate::proto::peerbook::{PeerRecord, PeerSource};
use crate::proto::replicate::Holding;
use crate::store::admission::{AdmissionStatus, AdmissionView};
use crate::store::index::{EventState, EventStatus, RsvpState, Tally};

use super::ics::{IcsAttendee, IcsEvent};
use super::when::plural;

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
    pub fn to_ics(&self) -> IcsEvent<'_> {
        IcsEvent {
            state: &self.summary.state,
            organizer_name: self.summary.organizer_name.clone(),
            attendees: self
                .rsvps
                .iter()
                .map(|r| IcsAttendee {
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

/// 1-based waitlist places by person.
pub(crate) fn waitlist_positions(admissions: &AdmissionView) -> HashMap<FeedId, usize> {
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

/// A person for people: their name (on one line), else the first
/// characters of their feed id, marked as cut. The one rule for every
/// front end.
pub fn person(name: Option<&str>, feed: &FeedId) -> String {
    match name {
        Some(name) if !name.trim().is_empty() => super::when::sanitize_line(name).into_owned(),
        _ => short_feed(feed),
    }
}

/// The first characters of a feed id, enough to tell people apart, marked
/// as cut.
pub fn short_feed(feed: &FeedId) -> String {
    format!("{}…", super::when::short_id(&feed.to_string()))
}

/// A connected peer, with its name.
#[derive(Clone, Debug)]
pub struct ConnectedPeer {
    /// The connection.
    pub info: PeerInfo,
    /// The peer's display name, if known.
    pub name: Option<String>,
}

/// A known address of the peer book, with the name of its feed.
#[derive(Clone, Debug)]
pub struct KnownAddress {
    /// The record.
    pub record: PeerRecord,
    /// The display name of its feed, if the feed and its name are known.
    pub name: Option<String>,
}

/// Who I am, who is connected and every address known, with names: what
/// `potluck peers` and the page's People and network section show.
#[derive(Clone, Debug)]
pub struct NetworkView {
    /// Our feed, unless the app is read-only.
    pub me: Option<FeedId>,
    /// Our display name, if set.
    pub my_name: Option<String>,
    /// Whether this app sits on the running node (else nothing is
    /// connected).
    pub node_running: bool,
    /// The connected peers.
    pub connected: Vec<ConnectedPeer>,
    /// The peer book.
    pub book: Vec<KnownAddress>,
    /// Forked feeds: (feed, sequence of the first proof).
    pub forked: Vec<(FeedId, u64)>,
    /// The feeds we follow or block (empty when read-only).
    pub contacts: Vec<ContactView>,
    /// The hubs this node is a member of (`config.json`'s `"hubs"`).
    pub hubs: Vec<HubView>,
    /// On a hub, its members.
    pub members: Option<MembersSummary>,
}

impl NetworkView {
    /// The display name of a feed this view knows of.
    pub fn name_of(&self, feed: &FeedId) -> Option<&str> {
        if self.me.as_ref() == Some(feed) {
            return self.my_name.as_deref();
        }
        self.connected
            .iter()
            .find(|p| p.info.feed == *feed)
            .and_then(|p| p.name.as_deref())
            .or_else(|| {
                self.book
                    .iter()
                    .find(|a| a.record.feed.as_ref() == Some(feed))
                    .and_then(|a| a.name.as_deref())
            })
            .or_else(|| {
                self.contacts
                    .iter()
                    .find(|c| c.feed == *feed)
                    .and_then(|c| c.name.as_deref())
            })
    }
}

/// A hub this node is a member of, and what it holds of our feed.
#[derive(Clone, Debug)]
pub struct HubView {
    /// Its address, as in `config.json` (`@FEED@HOST:PORT`).
    pub addr: PeerAddr,
    /// The hub's feed.
    pub feed: FeedId,
    /// The hub for people: its name, else its short id.
    pub label: String,
    /// A session with the hub runs now.
    pub connected: bool,
    /// How far it holds our feed: as the live session knows it, else as
    /// the last session left it (`None`: not known yet).
    pub holds: Option<Holding>,
    /// How many messages we published (our feed's head here).
    pub my_head: u64,
}

impl HubView {
    /// What the hub holds of ours, in words: the one wording for every
    /// front end.
    pub fn holding_words(&self) -> String {
        let mine = plural(self.my_head, "message", "messages");
        match self.holds {
            _ if self.my_head == 0 => "nothing to hold yet: you have published nothing".into(),
            None => "not known yet: it has not synced with you".into(),
            Some(Holding::Refuses) => {
                format!("takes none of your {mine} (its room for you may be full)")
            }
            Some(Holding::Holds(n)) if n >= self.my_head && self.my_head == 1 => {
                "holds your one message".into()
            }
            Some(Holding::Holds(n)) if n >= self.my_head => format!("holds all your {mine}"),
            Some(Holding::Holds(n)) => format!("holds {n} of your {mine}"),
        }
    }
}

/// A hub's members, in short (`potluck hub members` lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MembersSummary {
    /// Members now.
    pub count: usize,
    /// Members connected now.
    pub connected: usize,
}

/// How a known address was learned, in words.
pub fn source_words(source: PeerSource) -> &'static str {
    match source {
        PeerSource::Configured => "configured",
        PeerSource::Discovered => "found on the local network",
        PeerSource::Invite => "from an invite",
        PeerSource::Inbound => "connected to us",
        PeerSource::Hub => "from a hub (the member's mapped port)",
    }
}
