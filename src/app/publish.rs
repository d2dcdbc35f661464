//! Publishing, with the rules a person expects checked first: only the
//! organizer changes an event, a cancelled event takes no changes or
//! answers, an event already over is announced or moved there only when
//! asked for, and follows never name one's own feed.

use crate::content::{
    About, Contact, Event, EventCancel, EventUpdate, KnownContent, Rsvp, RsvpStatus,
};
use crate::feed::message::{FeedId, Message, MessageId};
use crate::store::index::{EventState, EventStatus};

use super::views::ContactChange;
use super::{App, AppError, when};

/// Whether an event that has already finished may be published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Past {
    /// Refuse it ([`AppError::AlreadyOver`]): no list of upcoming events
    /// would ever show it, which is rarely what was meant.
    Refuse,
    /// Publish it anyway (`--past`: recording an event that happened).
    Allow,
}

/// The already-over rule: refuses `event` when it has finished by
/// `now_ms`, unless `past` allows it. The one rule for every front end.
pub fn check_not_over(event: &Event, past: Past, now_ms: i64) -> Result<(), AppError> {
    if past == Past::Allow || event.finish_ms() >= now_ms {
        return Ok(());
    }
    Err(AppError::AlreadyOver {
        span: when::event_span(event, None),
    })
}

/// An answer's fields checked before any store is touched (the event is
/// filled in by [`App::rsvp`]).
pub fn rsvp_draft(status: RsvpStatus, guests: u32, note: Option<String>) -> Result<Rsvp, AppError> {
    let rsvp = Rsvp {
        event: MessageId::default(),
        status,
        guests,
        note: note.filter(|n| !n.is_empty()),
        revision: None,
    };
    rsvp.validate()?;
    Ok(rsvp)
}

impl App {
    /// Announces a new event; returns its message (the id is the event's).
    pub fn announce(&self, event: &Event, past: Past, now_ms: i64) -> Result<Message, AppError> {
        event.validate()?;
        check_not_over(event, past, now_ms)?;
        self.publish(&event.to_content_bytes(), now_ms)
    }

    /// An event that we organize and that is still scheduled, for `verb`
    /// ("update", "cancel").
    pub fn own_event(&self, event: &MessageId, verb: &'static str) -> Result<EventState, AppError> {
        let state = self.organized_event(event, verb)?;
        if state.status == EventStatus::Cancelled {
            return Err(AppError::Cancelled {
                event: state.id,
                what: "it cannot be changed any more",
            });
        }
        Ok(state)
    }

    /// An event that we organize, cancelled or not, for `verb` ("hide
    /// comments on").
    pub fn organized_event(
        &self,
        event: &MessageId,
        verb: &'static str,
    ) -> Result<EventState, AppError> {
        let state = self.event_state(event)?;
        if state.author != self.feed_id()? {
            return Err(AppError::NotOrganizer {
                event: state.id,
                organizer: state.author,
                verb,
            });
        }
        Ok(state)
    }

    /// Publishes an update of an event we organize (`update.event` is
    /// set from `event`). An update that moves the event to a time already
    /// over is refused unless `past` allows it. Returns the new revision.
    pub fn update(
        &self,
        event: &MessageId,
        mut update: EventUpdate,
        past: Past,
        now_ms: i64,
    ) -> Result<u32, AppError> {
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
        let merged = state.event.apply(&update)?;
        if merged == state.event {
            return Err(AppError::NothingToChange(
                "the event already has these values",
            ));
        }
        if merged.start != state.event.start || merged.end != state.event.end {
            check_not_over(&merged, past, now_ms)?;
        }
        self.publish(&update.to_content_bytes(), now_ms)?;
        Ok(state.revision + 1)
    }

    /// Cancels an event we organize. Returns the event as it was.
    pub fn cancel(
        &self,
        event: &MessageId,
        reason: Option<String>,
        now_ms: i64,
    ) -> Result<EventState, AppError> {
        let state = self.own_event(event, "cancel")?;
        let cancel = EventCancel {
            event: state.id,
            reason: reason.filter(|r| !r.is_empty()),
        };
        cancel.validate()?;
        self.publish(&cancel.to_content_bytes(), now_ms)?;
        Ok(state)
    }

    /// Answers an event (again: the latest answer counts). Returns the
    /// event as answered.
    pub fn rsvp(
        &self,
        event: &MessageId,
        status: RsvpStatus,
        guests: u32,
        note: Option<String>,
        now_ms: i64,
    ) -> Result<EventState, AppError> {
        let mut rsvp = rsvp_draft(status, guests, note)?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::EventTime;

    fn event_at(start: &str) -> Event {
        Event::new(
            "Soup night",
            EventTime::parse("start", start).expect("a valid time"),
        )
    }

    #[test]
    fn an_event_already_over_is_refused_unless_the_past_is_allowed() {
        let event = event_at("2020-01-26T18:00:00Z");
        let now = event.finish_ms() + 1;
        assert!(matches!(
            check_not_over(&event, Past::Refuse, now),
            Err(AppError::AlreadyOver { .. })
        ));
        assert!(check_not_over(&event, Past::Allow, now).is_ok());
        // Up to its finish, it is not over.
        assert!(check_not_over(&event, Past::Refuse, event.finish_ms()).is_ok());
    }

    #[test]
    fn an_answer_is_checked_before_any_store() {
        assert!(
            rsvp_draft(RsvpStatus::Going, 1, Some(String::new())).is_ok_and(|r| r.note.is_none())
        );
        assert!(matches!(
            rsvp_draft(RsvpStatus::Going, 1, Some("x".repeat(100_000))),
            Err(AppError::Content(_))
        ));
    }
}
