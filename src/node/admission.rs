//! Capacity and the waitlist, decided by the organizer's node.
//!
//! When an event has a capacity, a `going` RSVP is a request. The
//! organizer's node publishes an `admission` message in the organizer's
//! own feed for each request: admitted while the headcount (people plus
//! guests) fits, waitlisted otherwise. Every node derives admission state
//! from the organizer's feed alone, so all nodes agree once synced; before
//! the organizer has decided, a request is honestly `pending`.
//!
//! [`decide`] is the pure rule; [`settle`] applies it to the store. What
//! every node reads from the decisions (admitted, waitlisted, pending) is
//! [`crate::store::admission`].

use std::collections::{HashMap, HashSet};

use ed25519_dalek::SigningKey;

use crate::content::{Admission, Content, Decision, KnownContent, RsvpStatus};
use crate::feed::message::{FeedId, MessageId};
use crate::feed::validate::FeedHead;
use crate::store::index::{AdmissionState, EventStatus};
use crate::store::{IngestReport, Store, StoreError};

/// One person's current `going` request, as [`decide`] sees it.
#[derive(Clone, Debug)]
pub struct Request {
    /// Who asks.
    pub author: FeedId,
    /// The RSVP message.
    pub rsvp: MessageId,
    /// People including guests.
    pub headcount: u64,
    /// The organizer's latest decision about this person, if any.
    pub decided: Option<AdmissionState>,
    /// Position in the order the organizer's node received requests
    /// (`None` for requests it did not see arrive in this round).
    pub arrival: Option<usize>,
    /// The RSVP's claimed time: orders requests without an arrival.
    pub timestamp: i64,
}

impl Request {
    fn current(&self) -> Option<Decision> {
        self.decided
            .as_ref()
            .filter(|d| d.rsvp == self.rsvp)
            .map(|d| d.decision)
    }

    /// The person held a place under an earlier answer (say, before
    /// changing their note or guest count): they keep priority.
    fn was_admitted(&self) -> bool {
        self.decided
            .as_ref()
            .is_some_and(|d| d.rsvp != self.rsvp && d.decision == Decision::Admitted)
    }

    /// The person is in line, under this answer or an earlier one (say,
    /// they confirmed again after the time changed): they keep their place.
    fn in_line(&self) -> bool {
        self.decided
            .as_ref()
            .is_some_and(|d| d.decision == Decision::Waitlisted)
    }
}

/// The decisions to publish for an event of `capacity`, given the current
/// `going` requests. Admitted requests keep their place; then, in order:
/// people who were admitted under an earlier answer, the waitlist (first
/// waitlisted first), and new requests in arrival order. Each is admitted
/// if its whole group fits, otherwise skipped (a group is never split) and,
/// if new, waitlisted.
pub fn decide(capacity: u64, requests: &[Request]) -> Vec<(FeedId, MessageId, Decision)> {
    let mut used: u64 = requests
        .iter()
        .filter(|r| r.current() == Some(Decision::Admitted))
        .map(|r| r.headcount)
        .sum();
    let undecided_key = |r: &&Request| (r.arrival.unwrap_or(usize::MAX), r.timestamp, r.author);
    let mut returning: Vec<&Request> = requests
        .iter()
        .filter(|r| r.current().is_none() && r.was_admitted())
        .collect();
    returning.sort_by_key(undecided_key);
    let mut waitlist: Vec<&Request> = requests.iter().filter(|r| r.in_line()).collect();
    waitlist.sort_by_key(|r| r.decided.as_ref().map_or(0, |d| d.sequence));
    let mut new: Vec<&Request> = requests
        .iter()
        .filter(|r| r.current().is_none() && !r.was_admitted() && !r.in_line())
        .collect();
    new.sort_by_key(undecided_key);

    let mut out = Vec::new();
    for request in returning.into_iter().chain(waitlist).chain(new) {
        let fits = used.saturating_add(request.headcount) <= capacity;
        if fits {
            used += request.headcount;
            out.push((request.author, request.rsvp, Decision::Admitted));
        } else if request.current().is_none() {
            out.push((request.author, request.rsvp, Decision::Waitlisted));
        }
    }
    out
}

/// Publishes the organizer's decisions for `events` that `key` organizes
/// and that have a capacity. `arrivals` is the order in which this node
/// received messages (ids), to order new requests. Returns what it
/// published (one report for all decisions), so a running node can push
/// it to peers.
pub fn settle(
    store: &Store,
    key: &SigningKey,
    events: &[MessageId],
    arrivals: &[MessageId],
    now_ms: i64,
) -> Result<IngestReport, StoreError> {
    let me = FeedId(key.verifying_key().to_bytes());
    let arrival: HashMap<MessageId, usize> = arrivals
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    let mut published = IngestReport::default();
    for event_id in events {
        let Some(state) = store.event(event_id)? else {
            continue;
        };
        let Some(capacity) = state.event.capacity else {
            continue;
        };
        if state.author != me || state.status != EventStatus::Scheduled {
            continue;
        }
        let decided: HashMap<FeedId, AdmissionState> =
            store.admissions(event_id)?.into_iter().collect();
        let requests: Vec<Request> = store
            .rsvps(event_id)?
            .into_iter()
            .filter(|(_, r)| r.status == RsvpStatus::Going)
            .map(|(author, r)| Request {
                author,
                rsvp: r.message,
                headcount: r.headcount(),
                decided: decided.get(&author).cloned(),
                arrival: arrival.get(&r.message).copied(),
                timestamp: r.timestamp,
            })
            .collect();
        for (author, rsvp, decision) in decide(u64::from(capacity), &requests) {
            let admission = Admission {
                event: *event_id,
                rsvp,
                author,
                decision,
            };
            tracing::info!(event = %event_id, person = %author, decision = decision.as_str(), "admission");
            published.merge(store.publish(key, &admission.to_content_bytes(), now_ms)?);
        }
    }
    Ok(published)
}

/// The events one identity announced, known from its own feed: the only
/// events whose admissions its node decides.
///
/// **Why.** A batch from a sync touches many events (at 1M messages, a
/// batch of 2,000 answers hundreds), nearly all of them other people's.
/// Reading each one's state just to find that it is not ours was a tenth
/// of the receiver's time; this set answers from memory, and reads only
/// the messages our feed gained since it last looked.
#[derive(Debug, Default)]
pub struct OwnEvents {
    /// The head of our feed up to which `ids` is complete.
    scanned: Option<FeedHead>,
    ids: HashSet<MessageId>,
}

impl OwnEvents {
    /// Of `events`, those `me` announced, after reading the messages of
    /// `me`'s feed stored since the last call (the whole feed again if it
    /// was cut back or replaced since: a repair may do that). If our feed
    /// cannot be read (a damaged message), all of `events` are returned,
    /// for [`settle`] to check one by one as it did before this set: a
    /// damaged message must not stop the node deciding, nor syncing.
    pub fn mine(&mut self, store: &Store, me: &FeedId, events: &[MessageId]) -> Vec<MessageId> {
        if let Err(error) = self.catch_up(store, me) {
            tracing::warn!(%error, "cannot read our own feed to know our events; checking each touched event instead");
            return events.to_vec();
        }
        events
            .iter()
            .filter(|e| self.ids.contains(e))
            .copied()
            .collect()
    }

    fn catch_up(&mut self, store: &Store, me: &FeedId) -> Result<(), StoreError> {
        let head = store.head(me)?;
        if head == self.scanned {
            return Ok(());
        }
        let from = match (self.scanned, head) {
            (Some(seen), Some(now))
                if now.sequence >= seen.sequence
                    && store
                        .feed_message(me, seen.sequence)?
                        .is_some_and(|m| m.id() == seen.id) =>
            {
                seen.sequence + 1
            }
            _ => {
                self.ids.clear();
                1
            }
        };
        for msg in store.feed_messages(me, from) {
            let msg = msg?;
            if let Some(Ok(Content::Event(_))) = msg.content().map(crate::content::parse) {
                self.ids.insert(msg.id());
            }
        }
        // Messages stored while reading were read too: at worst the next
        // call reads them again.
        self.scanned = head;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(n: u8, headcount: u64, decided: Option<(u8, Decision, u64)>, arrival: usize) -> Request {
        Request {
            author: FeedId([n; 32]),
            rsvp: MessageId([n; 32]),
            headcount,
            decided: decided.map(|(m, decision, sequence)| AdmissionState {
                rsvp: MessageId([m; 32]),
                decision,
                sequence,
            }),
            arrival: Some(arrival),
            timestamp: 0,
        }
    }

    fn names(out: &[(FeedId, MessageId, Decision)]) -> Vec<(u8, Decision)> {
        out.iter().map(|(a, _, d)| (a.0[0], *d)).collect()
    }

    use Decision::{Admitted as A, Waitlisted as W};

    #[test]
    fn first_come_until_full_and_groups_are_not_split() {
        // Capacity 3: Ana (1), Ben with a guest (2), Cy (1), Di (1).
        let reqs = [
            req(1, 1, None, 0),
            req(2, 2, None, 1),
            req(3, 1, None, 2),
            req(4, 1, None, 3),
        ];
        assert_eq!(
            names(&decide(3, &reqs)),
            vec![(1, A), (2, A), (3, W), (4, W)]
        );
        // Ben's group of 2 waits while a single fits.
        let reqs = [
            req(1, 1, None, 0),
            req(3, 1, None, 1),
            req(2, 2, None, 2),
            req(4, 1, None, 3),
        ];
        assert_eq!(
            names(&decide(3, &reqs)),
            vec![(1, A), (3, A), (2, W), (4, A)]
        );
    }

    #[test]
    fn the_earliest_waitlisted_that_fits_moves_up() {
        // Ana left (not a request any more); Ben (2) and Cy (1) wait, Ben first.
        let reqs = [
            req(2, 2, Some((2, W, 10)), 0),
            req(3, 1, Some((3, W, 11)), 1),
            req(4, 1, Some((4, A, 5)), 2),
        ];
        assert_eq!(names(&decide(3, &reqs)), vec![(2, A)]);
        // Capacity 2: Ben does not fit, Cy does.
        assert_eq!(names(&decide(2, &reqs)), vec![(3, A)]);
    }

    #[test]
    fn decided_requests_are_left_alone() {
        let reqs = [req(1, 1, Some((1, A, 1)), 0), req(2, 1, Some((2, W, 2)), 1)];
        assert!(decide(1, &reqs).is_empty());
    }

    #[test]
    fn a_waitlisted_person_answering_again_keeps_their_place() {
        // Ben (2) waitlisted first for an older answer (id 9), Cy (3) after.
        let reqs = [
            req(2, 1, Some((9, W, 10)), 5),
            req(3, 1, Some((3, W, 11)), 0),
        ];
        // One place frees up: Ben, not Cy.
        assert_eq!(names(&decide(1, &reqs)), vec![(2, A)]);
        // No place: Ben's new answer is waitlisted (keeping his place).
        assert_eq!(names(&decide(0, &reqs)), vec![(2, W)]);
    }

    #[test]
    fn a_changed_answer_keeps_its_place_ahead_of_the_waitlist() {
        // Ana was admitted for an older RSVP (id 9); she sent a new one.
        let reqs = [req(1, 1, Some((9, A, 1)), 5), req(2, 1, Some((2, W, 2)), 0)];
        assert_eq!(names(&decide(1, &reqs)), vec![(1, A)]);
    }

    #[test]
    fn own_events_are_ours_only_and_follow_our_feed_as_it_grows() {
        use crate::content::{Event, EventTime, Rsvp};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let me = SigningKey::from_bytes(&[1; 32]);
        let other = SigningKey::from_bytes(&[2; 32]);
        let my_id = FeedId(me.verifying_key().to_bytes());
        let start = EventTime::parse("start", "2099-01-26T18:00:00Z").unwrap();
        let announce = |key: &SigningKey, title: &str| {
            let bytes = Event::new(title, start.clone()).to_content_bytes();
            store.publish(key, &bytes, 1).unwrap().accepted[0].id()
        };
        let mine_first = announce(&me, "Soup night");
        let theirs = announce(&other, "Pie night");
        let answer = Rsvp {
            event: theirs,
            status: RsvpStatus::Going,
            guests: 0,
            note: None,
            revision: None,
        }
        .to_content_bytes();
        let not_an_event = store.publish(&me, &answer, 2).unwrap().accepted[0].id();

        let mut own = OwnEvents::default();
        let all = [theirs, mine_first, not_an_event];
        assert_eq!(own.mine(&store, &my_id, &all), vec![mine_first]);
        // Our feed grew since: the new event is found.
        let mine_later = announce(&me, "Bread swap");
        assert_eq!(
            own.mine(&store, &my_id, &[mine_later, theirs, mine_first]),
            vec![mine_later, mine_first]
        );
        // Nobody else's events, whatever their feed holds.
        let mut theirs_seen_by_them = OwnEvents::default();
        let their_id = FeedId(other.verifying_key().to_bytes());
        assert_eq!(
            theirs_seen_by_them.mine(&store, &their_id, &[mine_first, theirs]),
            vec![theirs]
        );
    }

    /// Flips a bit near the end of the store's message log: in the last
    /// message stored, as a damaged disk would.
    fn damage_last_message(store_dir: &std::path::Path) {
        let path = store_dir.join("messages.log");
        let mut log = std::fs::read(&path).unwrap();
        let at = log.len() - 8;
        log[at] ^= 0x10;
        std::fs::write(&path, log).unwrap();
    }

    #[test]
    fn own_events_are_read_again_when_our_feed_is_cut_or_replaced_and_all_are_checked_when_it_is_damaged()
     {
        use crate::content::{Event, EventTime};
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        let store = Store::open(&store_dir).unwrap();
        let me = SigningKey::from_bytes(&[1; 32]);
        let my_id = FeedId(me.verifying_key().to_bytes());
        let start = EventTime::parse("start", "2099-01-26T18:00:00Z").unwrap();
        let announce = |title: &str| {
            let bytes = Event::new(title, start.clone()).to_content_bytes();
            store.publish(&me, &bytes, 1).unwrap().accepted[0].id()
        };
        let soup = announce("Soup night");
        let bread = announce("Bread swap");
        let mut own = OwnEvents::default();
        assert_eq!(own.mine(&store, &my_id, &[soup, bread]), vec![soup, bread]);

        // Our feed cannot be read: every event is handed on to be checked
        // one by one, not none of them.
        damage_last_message(&store_dir);
        let someone_elses = MessageId([9; 32]);
        assert_eq!(
            OwnEvents::default().mine(&store, &my_id, &[someone_elses, soup]),
            vec![someone_elses, soup]
        );

        // A repair cuts the damaged message, and another of ours comes in
        // at its sequence (as from a peer: publishing refuses while the
        // feed is behind what we published): same length of feed, another
        // message. The set is read again from the start: the cut event is
        // no longer ours, the new one is.
        let repaired = store.repair().unwrap();
        assert_eq!(repaired.cut.len(), 1, "{repaired:?}");
        assert_eq!(store.head(&my_id).unwrap().unwrap().sequence, 1);
        let pie_bytes = Event::new("Pie night", start.clone()).to_content_bytes();
        let pie_message = crate::feed::message::Message::sign(&me, 2, soup, 5, &pie_bytes).unwrap();
        let pie = pie_message.id();
        let stored = store.ingest(vec![pie_message]).unwrap();
        assert_eq!(stored.accepted.len(), 1, "{stored:?}");
        assert_eq!(
            own.mine(&store, &my_id, &[soup, bread, pie]),
            vec![soup, pie]
        );

        // Cut back again, shorter than what the set last saw: read again.
        damage_last_message(&store_dir);
        store.repair().unwrap();
        assert_eq!(store.head(&my_id).unwrap().unwrap().sequence, 1);
        assert_eq!(own.mine(&store, &my_id, &[soup, bread, pie]), vec![soup]);
    }
}
