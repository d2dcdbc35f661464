//! The states the indexes hold: an event as its organizer last left it,
//! each person's answer to it, their count, the organizer's decisions,
//! names and contacts.

use serde::{Deserialize, Serialize};

use crate::content::{Decision, Event, RsvpStatus};
use crate::feed::message::{FeedId, MessageId};

/// Whether an event is still on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Announced and not cancelled.
    Scheduled,
    /// Cancelled by its author.
    Cancelled,
}

impl EventStatus {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Scheduled => "scheduled",
            EventStatus::Cancelled => "cancelled",
        }
    }
}

/// The current state of an event: the original merged with its author's
/// accepted updates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventState {
    /// The event id (id of the announcing message).
    pub id: MessageId,
    /// The organizer.
    pub author: FeedId,
    /// Current fields.
    pub event: Event,
    /// Number of accepted updates and cancels.
    pub revision: u32,
    /// Scheduled or cancelled.
    pub status: EventStatus,
    /// The reason given when cancelling.
    pub cancel_reason: Option<String>,
    /// The revision that last changed the start, end or location: RSVPs
    /// given to an earlier revision answered a different plan.
    #[serde(default)]
    pub plan_revision: u32,
}

/// A person's current answer to an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsvpState {
    /// Going, maybe, or not going.
    pub status: RsvpStatus,
    /// Extra people coming along.
    pub guests: u32,
    /// A short note.
    pub note: Option<String>,
    /// Sequence of the RSVP in its author's feed.
    pub sequence: u64,
    /// Id of the RSVP message: the request that admissions decide on.
    #[serde(default)]
    pub message: MessageId,
    /// The event revision this answers, if the RSVP says.
    #[serde(default)]
    pub answered_revision: Option<u32>,
    /// The author's claimed time of the RSVP (only to order requests that
    /// the organizer's node never saw arrive; see `admission`).
    #[serde(default)]
    pub timestamp: i64,
}

impl RsvpState {
    /// People this answer brings if going: the author plus guests.
    pub fn headcount(&self) -> u64 {
        1 + u64::from(self.guests)
    }

    /// True when the answer predates the last change of time or place.
    pub fn is_stale(&self, event: &EventState) -> bool {
        self.answered_revision.unwrap_or(0) < event.plan_revision
    }
}

/// What a person last answered to an event, as far as its tally counts
/// it: kept apart from [`RsvpState`] (and grouped by person) so that
/// indexing an answer reads only this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnsweredState {
    /// Going, maybe, or not going.
    pub status: RsvpStatus,
    /// Extra people coming along.
    pub guests: u32,
}

impl From<&RsvpState> for AnsweredState {
    fn from(rsvp: &RsvpState) -> AnsweredState {
        AnsweredState {
            status: rsvp.status,
            guests: rsvp.guests,
        }
    }
}

/// The organizer's latest decision about one person's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionState {
    /// The RSVP message decided on.
    pub rsvp: MessageId,
    /// Admitted or waitlisted.
    pub decision: Decision,
    /// Sequence of the admission in the organizer's feed; for a person
    /// waitlisted again after a new answer, the first waitlisting's: the
    /// waitlist order.
    pub sequence: u64,
}

/// Counts of the current answers to an event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// People going.
    pub going: u64,
    /// People who might come.
    pub maybe: u64,
    /// People not going.
    pub not_going: u64,
    /// People going plus their guests.
    pub headcount: u64,
}

impl Tally {
    /// Counts `rsvp` in (`sign` > 0) or out (otherwise).
    pub(super) fn add(&mut self, rsvp: &RsvpState, sign: i64) {
        self.count(AnsweredState::from(rsvp), sign);
    }

    /// Counts an answer in (`sign` > 0) or out (otherwise).
    pub(super) fn count(&mut self, rsvp: AnsweredState, sign: i64) {
        let apply = |n: &mut u64, by: u64| {
            *n = if sign > 0 {
                n.saturating_add(by)
            } else {
                n.saturating_sub(by)
            }
        };
        match rsvp.status {
            RsvpStatus::Going => {
                apply(&mut self.going, 1);
                apply(&mut self.headcount, 1 + u64::from(rsvp.guests));
            }
            RsvpStatus::Maybe => apply(&mut self.maybe, 1),
            RsvpStatus::NotGoing => apply(&mut self.not_going, 1),
        }
    }
}

/// What a person says about themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AboutState {
    /// Display name.
    pub name: String,
    /// Optional self-description.
    pub description: Option<String>,
}

/// One person's stance towards another feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactState {
    /// Replicate and show this feed.
    pub following: bool,
    /// Never store or forward this feed.
    pub blocking: bool,
}

/// A comment as its author last left it, and its place in the thread.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentState {
    /// The event talked about.
    pub event: MessageId,
    /// Who wrote it.
    pub author: FeedId,
    /// The comment it answers, as written (shown as a reply only if that
    /// one is a comment on the same event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<MessageId>,
    /// The current text; empty once deleted.
    pub text: String,
    /// The author's claimed time of the comment.
    pub timestamp: i64,
    /// Its place in the thread, in milliseconds: its timestamp, or just
    /// after the latest place of the comments it names if that is later
    /// (see docs/content.md, "The order of a thread").
    pub place: i64,
    /// The claimed time of the latest edit, if edited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<i64>,
    /// Removed by its author.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}
