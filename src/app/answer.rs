//! Answers from a browser (issue 21): a guest with no node signs an
//! `about` (their name) and an `rsvp` in their browser (`feed.js`), and
//! a hub's public pages hand the messages here. They are checked whole
//! first, so that a submission is stored entirely or not at all, then go
//! through the one ingest path of a peer's messages
//! ([`Node::ingest_messages`](crate::node::Node::ingest_messages):
//! validation, signatures, sequence and fork checks, blocked feeds, the
//! organizer's decisions), and reach the organizer's node by replication
//! like any other feed the hub holds.
//!
//! What a browser may post is narrower than what a peer may send: one
//! author, only `about` and `rsvp` messages, each answer to the event of
//! the page it came from, a feed that continues exactly where the hub's
//! copy ends, within the guests' limits ([`GuestQuota`]).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Condvar, Mutex};

use thiserror::Error;

use crate::content::{self, Content};
use crate::feed::message::{FeedId, Message, MessageId};
use crate::feed::validate::{self, FeedHead, ValidationError};
use crate::proto::guests::{GuestLimitError, GuestLimits, GuestQuota};
use crate::store::StoreError;

use super::public::PublicNetwork;
use super::views::MyAnswer;
use super::{App, AppError, EventState, EventStatus};

/// Most messages one submission may carry: a name and an answer, plus
/// a few a hub missed before (feed.js sends again what it lacks).
pub const MAX_ANSWER_MESSAGES: usize = 16;

/// Why a browser's submission was refused. Nothing of it was stored.
/// Each kind has a stable [`code`](AnswerError::code) for the page's
/// script.
#[derive(Debug, Error)]
pub enum AnswerError {
    /// The hub takes no answers from browsers, or the organizer closed
    /// this event to them, or it is cancelled or over.
    #[error("{0}")]
    Closed(&'static str),
    /// The event is unknown here or not shown on the public pages.
    #[error(
        "there is no such event here: it is unknown to this hub, or its organizer has not made it public"
    )]
    UnknownEvent,
    /// The body is not a list of messages in the feed format.
    #[error("malformed submission: {0}")]
    Malformed(String),
    /// No message, or more than [`MAX_ANSWER_MESSAGES`].
    #[error("a submission carries 1 to {MAX_ANSWER_MESSAGES} messages (got {0})")]
    Count(usize),
    /// The messages are not all of one feed.
    #[error("every message of a submission must be of one feed")]
    SeveralAuthors,
    /// A message is neither an `about` nor an `rsvp`.
    #[error("only a name (`about`) and an answer (`rsvp`) can be sent from a browser (got `{0}`)")]
    NotAnAnswer(String),
    /// An answer to another event than the page's.
    #[error("an answer to another event was sent to this event's page")]
    OtherEvent,
    /// A signature does not verify.
    #[error("bad signature: message {sequence} was not signed by its feed's key, or was altered")]
    BadSignature {
        /// Its sequence.
        sequence: u64,
    },
    /// A message the hub holds already.
    #[error("message {sequence} of this feed was received already")]
    Replayed {
        /// Its sequence.
        sequence: u64,
    },
    /// A message other than the one the hub holds at its sequence.
    #[error(
        "this feed already has another message {sequence}: the key was used elsewhere, so this browser cannot answer with it"
    )]
    Fork {
        /// Its sequence.
        sequence: u64,
    },
    /// The feed does not continue where the hub's copy ends.
    #[error(
        "wrong sequence: message {got} does not follow this feed's latest message here (expected {expected})"
    )]
    WrongSequence {
        /// The sequence the next message must have.
        expected: u64,
        /// The one it has.
        got: u64,
    },
    /// Another check of the feed format failed (content hash, version,
    /// content shape).
    #[error("invalid message: {0}")]
    Invalid(ValidationError),
    /// The organizer blocks this feed.
    #[error("the organizer of this event does not take answers from this feed")]
    Blocked,
    /// The hub's operator bans this feed.
    #[error("this hub does not take messages from this feed")]
    Banned,
    /// Over the guests' limits.
    #[error(transparent)]
    Limit(#[from] GuestLimitError),
    /// The hub failed (storage): nothing to do with the submission.
    #[error("the hub could not store the answer: {0}")]
    App(#[from] AppError),
}

impl From<StoreError> for AnswerError {
    fn from(e: StoreError) -> AnswerError {
        AnswerError::App(AppError::Store(e))
    }
}

impl AnswerError {
    /// The stable code of this kind of refusal.
    pub fn code(&self) -> &'static str {
        match self {
            AnswerError::Closed(_) => "closed",
            AnswerError::UnknownEvent => "unknown_event",
            AnswerError::Malformed(_) => "malformed",
            AnswerError::Count(_) => "message_count",
            AnswerError::SeveralAuthors => "several_feeds",
            AnswerError::NotAnAnswer(_) => "not_an_answer",
            AnswerError::OtherEvent => "other_event",
            AnswerError::BadSignature { .. } => "bad_signature",
            AnswerError::Replayed { .. } => "replayed",
            AnswerError::Fork { .. } => "fork",
            AnswerError::WrongSequence { .. } => "wrong_sequence",
            AnswerError::Invalid(_) => "invalid_message",
            AnswerError::Blocked => "blocked",
            AnswerError::Banned => "banned",
            AnswerError::Limit(GuestLimitError::FeedFull(_)) => "feed_full",
            AnswerError::Limit(_) => "rate_limited",
            AnswerError::App(_) => "internal",
        }
    }
}

/// What a hub's public pages keep between submissions: the guests'
/// counters, and the feeds whose submissions are being checked and
/// stored (`InFlight`).
#[derive(Debug)]
pub struct WebAnswers {
    quota: Mutex<GuestQuota>,
    in_flight: InFlight,
}

/// One submission per feed at a time, so that two from one browser
/// cannot both pass the checks and then meet in the store as a fork.
/// Submissions of different feeds go on together: their store commits
/// share one log sync and one flush (the store's group commit), and each
/// is acknowledged only once its own commit is durable.
#[derive(Debug, Default)]
struct InFlight {
    feeds: Mutex<HashSet<FeedId>>,
    done: Condvar,
}

impl InFlight {
    /// Waits until no other submission of `feed` is in flight, then holds
    /// the feed until the guard is dropped.
    fn hold(&self, feed: FeedId) -> Held<'_> {
        // The set is changed whole by one insert or remove: a panic
        // elsewhere leaves it usable.
        let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        while feeds.contains(&feed) {
            feeds = self.done.wait(feeds).unwrap_or_else(|p| p.into_inner());
        }
        feeds.insert(feed);
        Held {
            in_flight: self,
            feed,
        }
    }
}

/// A feed held by [`InFlight::hold`]; released when dropped (a panic
/// included).
struct Held<'a> {
    in_flight: &'a InFlight,
    feed: FeedId,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.in_flight
            .feeds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.feed);
        self.in_flight.done.notify_all();
    }
}

impl WebAnswers {
    /// Empty counters under `limits` (`"web_answers"` of config.json).
    pub fn new(limits: GuestLimits) -> WebAnswers {
        WebAnswers {
            quota: Mutex::new(GuestQuota::new(limits)),
            in_flight: InFlight::default(),
        }
    }

    fn quota(&self) -> std::sync::MutexGuard<'_, GuestQuota> {
        // Counters are replaced whole or bumped by one: a panic elsewhere
        // leaves them usable.
        self.quota.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the pages take answers at all.
    pub fn enabled(&self) -> bool {
        self.quota().limits().enabled
    }
}

/// A guest's answer to one event, as the hub holds it.
#[derive(Clone, Debug)]
pub struct GuestStatus {
    /// The guest's feed.
    pub feed: FeedId,
    /// The latest sequence of the feed the hub holds (0: none).
    pub held: u64,
    /// The name the guest gave, if any.
    pub name: Option<String>,
    /// The guest's current answer to the event and the organizer's
    /// decision on it, if they answered.
    pub answer: Option<MyAnswer>,
}

impl App {
    /// Takes a browser's signed messages for `event` from `client`:
    /// checks them whole, then stores them through the one ingest path
    /// (admissions, replication, live pages follow as for a peer's).
    /// Returns the guest's status afterwards. Blocking.
    pub fn web_answer(
        &self,
        answers: &WebAnswers,
        network: PublicNetwork,
        event: &MessageId,
        raw: Vec<Vec<u8>>,
        client: IpAddr,
        now_ms: i64,
    ) -> Result<GuestStatus, AnswerError> {
        if !answers.enabled() {
            return Err(AnswerError::Closed(
                "This hub takes no answers from browsers",
            ));
        }
        if raw.is_empty() || raw.len() > MAX_ANSWER_MESSAGES {
            return Err(AnswerError::Count(raw.len()));
        }
        let msgs = raw
            .into_iter()
            .map(|bytes| Message::decode(bytes).map_err(|e| AnswerError::Malformed(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let author = msgs[0].author();
        if msgs.iter().any(|m| m.author() != author) {
            return Err(AnswerError::SeveralAuthors);
        }
        let state = self.open_to_web(network, event, now_ms)?;
        for msg in &msgs {
            check_answer_content(msg, event)?;
        }
        let organizer_blocks = self.store.blocked_by(&state.author)?.contains(&author);
        if organizer_blocks {
            return Err(AnswerError::Blocked);
        }
        let node = self.writer()?;
        if self.store.blocked_by(&node.feed_id())?.contains(&author) {
            return Err(AnswerError::Banned);
        }

        let held = answers.in_flight.hold(author);
        let head = self.store.head(&author)?;
        self.check_continues(&author, head, &msgs)?;
        let last = msgs.last().map_or(0, |m| m.sequence());
        let new_guest = head.is_none();
        {
            // Checked and counted at once: submissions of other feeds from
            // the same address, in flight meanwhile, see this one counted.
            let mut quota = answers.quota();
            quota.check(client, new_guest, last, now_ms)?;
            if new_guest {
                quota.count(client, now_ms);
            }
        }
        let stored = store_answer(node, msgs);
        if new_guest && stored.is_err() {
            answers.quota().uncount(client, now_ms);
        }
        stored?;
        drop(held);
        Ok(self.guest_status(network, event, &author)?)
    }

    /// A guest's status for `event`: what the hub holds of their feed,
    /// their name, answer and the organizer's decision. Blocking.
    pub fn guest_status(
        &self,
        network: PublicNetwork,
        event: &MessageId,
        guest: &FeedId,
    ) -> Result<GuestStatus, AppError> {
        let (state, _) = self.shown_event(network, event)?;
        let held = self.store.head(guest)?.map_or(0, |h| h.sequence);
        let summary = self.summarize(state, Some(guest), None)?;
        Ok(GuestStatus {
            feed: *guest,
            held,
            name: self.name_of(guest)?,
            answer: summary.mine,
        })
    }

    /// The event, if its public page takes answers now.
    fn open_to_web(
        &self,
        network: PublicNetwork,
        event: &MessageId,
        now_ms: i64,
    ) -> Result<EventState, AnswerError> {
        let (state, _) = self.shown_event(network, event).map_err(|e| match e {
            AppError::UnknownEvent(_) => AnswerError::UnknownEvent,
            e => AnswerError::App(e),
        })?;
        match closed_to_web(&state, true, now_ms) {
            Some(reason) => Err(AnswerError::Closed(reason)),
            None => Ok(state),
        }
    }

    /// Whether `msgs` (one feed's, in order) continue exactly where the
    /// hub's copy, ending at `head`, ends, and are each valid (format,
    /// chain, signature): the ingest's checks, made before anything is
    /// stored so that a submission is taken whole or not at all.
    fn check_continues(
        &self,
        author: &FeedId,
        head: Option<FeedHead>,
        msgs: &[Message],
    ) -> Result<(), AnswerError> {
        let mut at = head;
        for msg in msgs {
            let sequence = msg.sequence();
            if at.is_some_and(|h| sequence <= h.sequence) {
                let held = self.store.feed_message(author, sequence)?;
                return Err(match held {
                    Some(held) if held.id() == msg.id() => AnswerError::Replayed { sequence },
                    _ => AnswerError::Fork { sequence },
                });
            }
            validate::validate(at.as_ref(), msg).map_err(|e| match e {
                ValidationError::BadSignature { .. } => AnswerError::BadSignature { sequence },
                ValidationError::BadSequence { expected, got } => {
                    AnswerError::WrongSequence { expected, got }
                }
                ValidationError::WrongPrevious { .. } => AnswerError::WrongSequence {
                    expected: at.map_or(1, |h| h.sequence.saturating_add(1)),
                    got: sequence,
                },
                other => AnswerError::Invalid(other),
            })?;
            at = Some(FeedHead {
                sequence,
                id: msg.id(),
            });
        }
        Ok(())
    }
}

/// Stores a checked submission through the one ingest path; durable when
/// this returns `Ok`.
fn store_answer(node: &crate::node::Node, msgs: Vec<Message>) -> Result<(), AnswerError> {
    let (report, dropped) = node.ingest_messages(msgs)?;
    if dropped > 0 {
        return Err(AnswerError::Banned);
    }
    if let Some(rejected) = report.rejected {
        // The checks before are the ingest's own: a refusal here means
        // the store changed under them (a peer brought the feed).
        return Err(AnswerError::Invalid(rejected.error));
    }
    Ok(())
}

/// Why `event`'s public page takes no answers from browsers at `now_ms`,
/// if it does not: the hub's operator turned them off (`enabled` false),
/// the organizer closed the event to them, or it is cancelled or over.
/// The one rule for the page (which then shows no form) and the endpoint.
pub fn closed_to_web(event: &EventState, enabled: bool, now_ms: i64) -> Option<&'static str> {
    if !enabled {
        Some("This hub takes no answers from browsers")
    } else if event.status == EventStatus::Cancelled {
        Some("This event is cancelled")
    } else if event.event.finish_ms() < now_ms {
        Some("This event is over")
    } else if event.event.closed_to_web {
        Some("The organizer takes no answers from browsers for this event")
    } else {
        None
    }
}

/// Whether a browser may send `msg` to `event`'s page: a name, or an
/// answer to that event.
fn check_answer_content(msg: &Message, event: &MessageId) -> Result<(), AnswerError> {
    let bytes = msg
        .content()
        .ok_or_else(|| AnswerError::Malformed("a message without its content".into()))?;
    match content::parse(bytes) {
        Ok(Content::About(_)) => Ok(()),
        Ok(Content::Rsvp(rsvp)) if rsvp.event == *event => Ok(()),
        Ok(Content::Rsvp(_)) => Err(AnswerError::OtherEvent),
        Ok(other) => Err(AnswerError::NotAnAnswer(other.kind().to_owned())),
        Err(e) => Err(AnswerError::Malformed(e.to_string())),
    }
}
