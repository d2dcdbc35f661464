//! Queries: events by id or prefix, lists of events, one event with every
//! answer, the agenda, calendars and contacts, each as a view type.

use crate::content::RsvpStatus;
use crate::feed::message::{FeedId, MessageId};
use crate::home::config::{ConfigFile, DEFAULT_ALARM_MINUTES};
use crate::store::admission::{self, AdmissionView};
use crate::store::index::{EventState, RsvpState};

use super::views::{
    AgendaItem, ContactView, EventDetail, EventList, EventSummary, MyAnswer, RsvpView,
    waitlist_positions,
};
use super::{App, AppError, MIN_ID_PREFIX, ics};

impl App {
    /// The event that a person typed: a full event id, or a unique prefix
    /// of at least [`super::MIN_ID_PREFIX`] characters after `%`, among
    /// known events. Front ends resolve text once; every other operation
    /// takes the [`MessageId`].
    pub fn resolve_event(&self, text: &str) -> Result<MessageId, AppError> {
        let trimmed = text.trim();
        let unknown = || AppError::UnknownEvent(trimmed.into());
        if let Ok(id) = MessageId::parse(trimmed) {
            return match self.store.event(&id)? {
                Some(_) => Ok(id),
                None => Err(unknown()),
            };
        }
        let body = trimmed.strip_prefix('%').unwrap_or(trimmed);
        let body = body.strip_suffix(".blake3").unwrap_or(body);
        if body.chars().count() < MIN_ID_PREFIX {
            return Err(AppError::PrefixTooShort(trimmed.into()));
        }
        let is_base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
        if !body.chars().all(is_base64) {
            return Err(unknown());
        }
        // More than one is all an error needs; a few more tell how many.
        let found = self.store.events_with_id_prefix(body, 21)?;
        match found.as_slice() {
            [] => Err(unknown()),
            [id] => Ok(*id),
            _ => Err(AppError::AmbiguousEvent {
                text: trimmed.into(),
                count: found.len(),
            }),
        }
    }

    /// A person's display name, if known.
    pub fn name_of(&self, feed: &FeedId) -> Result<Option<String>, AppError> {
        Ok(self.store.about(feed)?.map(|a| a.name))
    }

    /// An event's current state.
    pub fn event_state(&self, event: &MessageId) -> Result<EventState, AppError> {
        self.store
            .event(event)?
            .ok_or_else(|| AppError::UnknownEvent(event.to_string()))
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

    /// Everything about one event.
    pub fn event(&self, event: &MessageId) -> Result<EventDetail, AppError> {
        let state = self.event_state(event)?;
        self.detail(state)
    }

    /// Everything about an event whose state is at hand.
    pub fn detail(&self, state: EventState) -> Result<EventDetail, AppError> {
        let me = self.node.as_ref().map(|n| n.feed_id());
        self.detail_for(state, me.as_ref())
    }

    /// [`App::detail`] with `me`'s own answer (`mine`), if any.
    pub(super) fn detail_for(
        &self,
        state: EventState,
        me: Option<&FeedId>,
    ) -> Result<EventDetail, AppError> {
        let rsvps = self.store.rsvps(&state.id)?;
        let summary = self.summarize(state, me, Some(&rsvps))?;
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

    /// Our `going` and `maybe` answers to upcoming events (not finished
    /// by `now_ms`, cancelled or not, as [`Store::upcoming_events`]
    /// counts them), soonest first, in that list's order.
    ///
    /// Read from our own answers, not from every upcoming event: a hub's
    /// store holds hundreds of thousands of events, and reading them all
    /// (for each `sync`'s summary, each reminder check, each agenda page)
    /// was the peak of a 3M-message sync's memory (docs/performance.md).
    ///
    /// [`Store::upcoming_events`]: crate::store::Store::upcoming_events
    pub fn agenda(&self, now_ms: i64) -> Result<Vec<AgendaItem>, AppError> {
        let me = self.feed_id()?;
        let mut items = Vec::new();
        for (event, answered) in self.store.answered_by(&me)? {
            if answered.status == RsvpStatus::NotGoing {
                continue;
            }
            // An answer can arrive before the event it answers.
            let Some(state) = self.store.event(&event)? else {
                continue;
            };
            if state.event.finish_ms() < now_ms {
                continue;
            }
            let Some(rsvp) = self.store.rsvp(&event, &me)? else {
                continue;
            };
            if rsvp.status == RsvpStatus::NotGoing {
                continue;
            }
            let mine = self.my_answer(&state, &me, rsvp)?;
            items.push(AgendaItem { state, mine });
        }
        // The order of the by-start index: start, then event id.
        items.sort_by_key(|item| (item.state.event.start_ms(), item.state.id));
        Ok(items)
    }

    /// An iCalendar (RFC 5545) file of one event, or of every upcoming
    /// one, each with its current answers as attendees and the alarm of
    /// config.json's `reminders.calendar_alarm_minutes` (an hour before by
    /// default; see [`crate::app::ics`]). Returns the text and how many
    /// events it holds.
    pub fn calendar(
        &self,
        event: Option<&MessageId>,
        now_ms: i64,
    ) -> Result<(String, usize), AppError> {
        let states = match event {
            Some(id) => vec![self.event_state(id)?],
            None => self.store.upcoming_events(now_ms, None)?,
        };
        // Each event with its organizer's name and every answer with its
        // admission state (a waitlisted answer is not an accepted one).
        let details = states
            .into_iter()
            .map(|state| self.detail(state))
            .collect::<Result<Vec<_>, _>>()?;
        let events: Vec<ics::IcsEvent> = details.iter().map(EventDetail::to_ics).collect();
        let now = jiff::Timestamp::from_millisecond(now_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let alarm = match &self.home {
            Some(home) => ConfigFile::load(home)?.calendar_alarm_minutes()?,
            None => Some(DEFAULT_ALARM_MINUTES),
        };
        Ok((ics::calendar(&events, now, alarm), events.len()))
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

    /// An event's summary, with `me`'s answer when given; `rsvps` when
    /// the caller read them already.
    pub(super) fn summarize(
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
            Some(me) => self
                .store
                .rsvp(&state.id, me)?
                .map(|rsvp| my_answer_in(&state, rsvp, &admissions, me)),
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
        Ok(my_answer_in(state, rsvp, &admissions, me))
    }
}

fn my_answer_in(
    state: &EventState,
    rsvp: RsvpState,
    admissions: &AdmissionView,
    me: &FeedId,
) -> MyAnswer {
    let admission = match admissions.statuses.get(me) {
        Some(s) => Some(*s),
        // Without a capacity the view holds no per-person states.
        None => admission::status_of(state, &rsvp, None),
    };
    MyAnswer {
        admission,
        waitlist_position: waitlist_positions(admissions).get(me).copied(),
        stale: rsvp.is_stale(state),
        rsvp,
    }
}
