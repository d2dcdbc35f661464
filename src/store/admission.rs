//! The admission state of an event's answers, as every node reads it
//! from the organizer's decisions in the store: who is admitted,
//! waitlisted (in line order) or still waiting for a decision.
//!
//! The decisions themselves (what the organizer's node publishes) are made
//! in [`crate::node::admission`].

use std::collections::HashMap;

use serde::Serialize;

use super::Store;
use super::error::StoreError;
use super::index::{AdmissionState, EventState, RsvpState, Tally};
use crate::content::{Decision, RsvpStatus};
use crate::feed::message::FeedId;

/// Where a person's current RSVP stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdmissionStatus {
    /// Has a place (or the event has no capacity).
    Admitted,
    /// Waiting for room.
    Waitlisted,
    /// The organizer has not decided yet (its node may be offline).
    Pending,
}

impl AdmissionStatus {
    /// The JSON word.
    pub fn as_str(self) -> &'static str {
        match self {
            AdmissionStatus::Admitted => "admitted",
            AdmissionStatus::Waitlisted => "waitlisted",
            AdmissionStatus::Pending => "pending",
        }
    }
}

/// The admission status of a person's current RSVP: `None` unless it is
/// `going`. Without a capacity every `going` answer is admitted.
pub fn status_of(
    event: &EventState,
    rsvp: &RsvpState,
    decision: Option<&AdmissionState>,
) -> Option<AdmissionStatus> {
    if rsvp.status != RsvpStatus::Going {
        return None;
    }
    if event.event.capacity.is_none() {
        return Some(AdmissionStatus::Admitted);
    }
    Some(match decision {
        Some(d) if d.rsvp == rsvp.message => match d.decision {
            Decision::Admitted => AdmissionStatus::Admitted,
            Decision::Waitlisted => AdmissionStatus::Waitlisted,
        },
        // No decision, or one about an earlier answer.
        _ => AdmissionStatus::Pending,
    })
}

/// Admission state of every current answer to one event, with counts.
#[derive(Clone, Debug, Default)]
pub struct AdmissionView {
    /// Per person with a `going` answer.
    pub statuses: HashMap<FeedId, AdmissionStatus>,
    /// People admitted.
    pub admitted: u64,
    /// People admitted, plus their guests.
    pub admitted_headcount: u64,
    /// People waitlisted.
    pub waitlisted: u64,
    /// The waitlisted people in line order (first waitlisted first): the
    /// order in which the organizer's node admits them when places free
    /// up ([`crate::node::admission::decide`]).
    pub waitlist: Vec<FeedId>,
    /// People whose request the organizer has not decided yet.
    pub pending: u64,
}

/// Derives [`AdmissionView`] from the organizer's decisions in the store.
/// `rsvps` must be the event's current RSVPs if it has a capacity; without
/// one, every `going` answer is admitted, so the counts come from `tally`
/// and `rsvps` (which may then be empty) only gives per-person statuses.
pub fn view(
    store: &Store,
    event: &EventState,
    rsvps: &[(FeedId, RsvpState)],
    tally: &Tally,
) -> Result<AdmissionView, StoreError> {
    if event.event.capacity.is_none() {
        return Ok(AdmissionView {
            statuses: rsvps
                .iter()
                .filter_map(|(author, rsvp)| status_of(event, rsvp, None).map(|s| (*author, s)))
                .collect(),
            admitted: tally.going,
            admitted_headcount: tally.headcount,
            waitlisted: 0,
            waitlist: Vec::new(),
            pending: 0,
        });
    }
    let decided: HashMap<FeedId, AdmissionState> =
        store.admissions(&event.id)?.into_iter().collect();
    let mut view = AdmissionView::default();
    let mut line: Vec<(u64, FeedId)> = Vec::new();
    for (author, rsvp) in rsvps {
        let Some(status) = status_of(event, rsvp, decided.get(author)) else {
            continue;
        };
        match status {
            AdmissionStatus::Admitted => {
                view.admitted += 1;
                view.admitted_headcount += rsvp.headcount();
            }
            AdmissionStatus::Waitlisted => {
                view.waitlisted += 1;
                line.push((decided.get(author).map_or(0, |d| d.sequence), *author));
            }
            AdmissionStatus::Pending => view.pending += 1,
        }
        view.statuses.insert(*author, status);
    }
    line.sort();
    view.waitlist = line.into_iter().map(|(_, f)| f).collect();
    Ok(view)
}
