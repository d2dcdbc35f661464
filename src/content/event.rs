//! Events and what their organizer does to them: `event` (announce),
//! `event-update` and `event-cancel`.

use serde::{Deserialize, Serialize};

use super::json::{
    JsonWriter, Object, json_string, no_clear, to_bool, to_capacity, to_comment_policy,
    to_message_id, to_string, to_time,
};
use super::{
    CommentPolicy, ContentError, EventTime, KnownContent, check_chars, display_time,
    rfc3339_in_zone, validate_tz,
};
use crate::feed::message::MessageId;

/// Longest event title, in Unicode scalar values.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest event location, in Unicode scalar values.
pub const MAX_LOCATION_CHARS: usize = 500;
/// Longest event URL, in Unicode scalar values.
pub const MAX_URL_CHARS: usize = 2000;
/// Longest event description, in bytes of UTF-8 (8 KiB).
pub const MAX_DESCRIPTION_BYTES: usize = 8192;
/// Longest reason of a cancellation, in Unicode scalar values.
pub const MAX_REASON_CHARS: usize = 500;

/// An event announcement, `{"type":"event", ...}`.
///
/// Fields are public so callers can build one; call [`KnownContent::validate`]
/// before publishing it with [`KnownContent::to_content_bytes`].
///
/// The serde implementation (used to store index state) has the same field
/// names as the content, without `type`; it is not the published form and
/// does not re-check limits on deserialization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// 1 to [`MAX_TITLE_CHARS`] characters, not only white space.
    pub title: String,
    /// When it begins.
    pub start: EventTime,
    /// When it ends; not before `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<EventTime>,
    /// IANA zone name in which to show the times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// Where; at most [`MAX_LOCATION_CHARS`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// A link; at most [`MAX_URL_CHARS`] characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Free text; at most [`MAX_DESCRIPTION_BYTES`] bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Most people expected, at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    /// Kept off the lists of hubs' public pages, though reachable there by
    /// its link (`"unlisted": true`; absent means false). Meant for the
    /// public network, where members' events are listed by default.
    #[serde(default, skip_serializing_if = "is_false")]
    pub unlisted: bool,
    /// Shown on the public pages of a hub of a private network whose
    /// operator allows it (`"public": true`; absent means false). On a
    /// private network nothing is shown without it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub public: bool,
    /// Closed to answers from browsers on hubs' public pages
    /// (`"closed_to_web": true`; absent means false: a public event takes
    /// them). People with a node of their own can still answer.
    #[serde(default, skip_serializing_if = "is_false")]
    pub closed_to_web: bool,
    /// Whose comments nodes show (`"comments"`; absent means
    /// [`CommentPolicy::Everyone`]).
    #[serde(default, skip_serializing_if = "CommentPolicy::is_everyone")]
    pub comments: CommentPolicy,
}

/// For serde: a flag that is off is left out of the stored state.
fn is_false(flag: &bool) -> bool {
    !*flag
}

/// A change to an event by its author, `{"type":"event-update", ...}`.
///
/// A field that is absent is unchanged. In JSON, an optional field set to
/// `null` is cleared; `title` and `start` cannot be cleared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventUpdate {
    /// The id of the `event` message being changed.
    pub event: MessageId,
    /// New title, or `None` to keep it.
    pub title: Option<String>,
    /// New start, or `None` to keep it.
    pub start: Option<EventTime>,
    /// Change to the end.
    pub end: Change<EventTime>,
    /// Change to the time zone.
    pub tz: Change<String>,
    /// Change to the location.
    pub location: Change<String>,
    /// Change to the URL.
    pub url: Change<String>,
    /// Change to the description.
    pub description: Change<String>,
    /// Change to the capacity.
    pub capacity: Change<u32>,
    /// Change to `unlisted` (cleared: false).
    pub unlisted: Change<bool>,
    /// Change to `public` (cleared: false).
    pub public: Change<bool>,
    /// Change to `closed_to_web` (cleared: false).
    pub closed_to_web: Change<bool>,
    /// Change to `comments` (cleared: everyone).
    pub comments: Change<CommentPolicy>,
}

/// What an `event-update` does to one optional field.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Change<T> {
    /// Absent in JSON: the field is unchanged.
    #[default]
    Keep,
    /// `null` in JSON: the field is removed.
    Clear,
    /// A value in JSON: the field is replaced.
    Set(T),
}

impl<T: Clone> Change<T> {
    /// True for [`Change::Keep`].
    pub fn is_keep(&self) -> bool {
        matches!(self, Change::Keep)
    }

    /// The new value, if this sets one.
    pub fn as_set(&self) -> Option<&T> {
        match self {
            Change::Set(v) => Some(v),
            _ => None,
        }
    }

    /// Applies this change to a field.
    pub fn apply_to(&self, field: &mut Option<T>) {
        match self {
            Change::Keep => {}
            Change::Clear => *field = None,
            Change::Set(v) => *field = Some(v.clone()),
        }
    }
}

impl Change<bool> {
    /// Applies this change to a flag whose absence means false.
    pub fn apply_to_flag(&self, flag: &mut bool) {
        match self {
            Change::Keep => {}
            Change::Clear => *flag = false,
            Change::Set(v) => *flag = *v,
        }
    }
}

/// A cancellation of an event by its author, `{"type":"event-cancel", ...}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventCancel {
    /// The id of the `event` message being cancelled.
    pub event: MessageId,
    /// Why; at most [`MAX_REASON_CHARS`] characters.
    pub reason: Option<String>,
}

impl Event {
    /// An event with just a title and a start; every optional field unset.
    pub fn new(title: impl Into<String>, start: EventTime) -> Event {
        Event {
            title: title.into(),
            start,
            end: None,
            tz: None,
            location: None,
            url: None,
            description: None,
            capacity: None,
            unlisted: false,
            public: false,
            closed_to_web: false,
            comments: CommentPolicy::Everyone,
        }
    }

    /// The start in milliseconds since the Unix epoch.
    pub fn start_ms(&self) -> i64 {
        self.start.as_millisecond()
    }

    /// The end in milliseconds since the Unix epoch, if there is one.
    pub fn end_ms(&self) -> Option<i64> {
        self.end.as_ref().map(EventTime::as_millisecond)
    }

    /// When the event is over, for "upcoming" and "past": its end, or its
    /// start when it has none. (Calendar exports give an event without an
    /// end a default length so that calendar apps draw it; that is a
    /// display choice, not when potluck counts it as past.)
    pub fn finish_ms(&self) -> i64 {
        self.end_ms().unwrap_or_else(|| self.start_ms())
    }

    /// The start for people: see [`display_time`] with the event's `tz`.
    pub fn display_start(&self) -> String {
        display_time(self.start.as_str(), self.tz.as_deref())
    }

    /// The end for people: see [`display_time`] with the event's `tz`.
    pub fn display_end(&self) -> Option<String> {
        self.end
            .as_ref()
            .map(|end| display_time(end.as_str(), self.tz.as_deref()))
    }

    /// The start as plain RFC 3339 in the event's zone: see [`rfc3339_in_zone`].
    pub fn rfc3339_start(&self) -> String {
        rfc3339_in_zone(self.start.as_str(), self.tz.as_deref())
    }

    /// The end as plain RFC 3339 in the event's zone.
    pub fn rfc3339_end(&self) -> Option<String> {
        self.end
            .as_ref()
            .map(|end| rfc3339_in_zone(end.as_str(), self.tz.as_deref()))
    }

    /// Returns this event with `update` applied, re-validated as a whole
    /// (e.g. an unchanged `end` before a new `start` is an error).
    ///
    /// Does not check that the update refers to this event or comes from
    /// its author; that is the caller's job.
    pub fn apply(&self, update: &EventUpdate) -> Result<Event, ContentError> {
        let mut merged = self.clone();
        if let Some(title) = &update.title {
            merged.title.clone_from(title);
        }
        if let Some(start) = &update.start {
            merged.start = start.clone();
        }
        update.end.apply_to(&mut merged.end);
        update.tz.apply_to(&mut merged.tz);
        update.location.apply_to(&mut merged.location);
        update.url.apply_to(&mut merged.url);
        update.description.apply_to(&mut merged.description);
        update.capacity.apply_to(&mut merged.capacity);
        update.unlisted.apply_to_flag(&mut merged.unlisted);
        update.public.apply_to_flag(&mut merged.public);
        update
            .closed_to_web
            .apply_to_flag(&mut merged.closed_to_web);
        let mut comments = Some(merged.comments);
        update.comments.apply_to(&mut comments);
        merged.comments = comments.unwrap_or_default();
        merged.check_fields()?;
        Ok(merged)
    }
}

impl KnownContent for Event {
    const TYPE: &'static str = "event";

    fn from_object(obj: &Object) -> Result<Event, ContentError> {
        Ok(Event {
            title: obj.required("title", to_string)?,
            start: obj.required("start", to_time("start"))?,
            end: obj.optional("end", to_time("end"))?,
            tz: obj.optional("tz", to_string)?,
            location: obj.optional("location", to_string)?,
            url: obj.optional("url", to_string)?,
            description: obj.optional("description", to_string)?,
            capacity: obj.optional("capacity", to_capacity)?,
            unlisted: obj
                .optional("unlisted", to_bool("unlisted"))?
                .unwrap_or(false),
            public: obj.optional("public", to_bool("public"))?.unwrap_or(false),
            closed_to_web: obj
                .optional("closed_to_web", to_bool("closed_to_web"))?
                .unwrap_or(false),
            comments: obj
                .optional("comments", to_comment_policy)?
                .unwrap_or_default(),
        })
    }

    fn check_fields(&self) -> Result<(), ContentError> {
        check_title(&self.title)?;
        if let Some(end) = &self.end
            && end.timestamp() < self.start.timestamp()
        {
            return Err(ContentError::EndBeforeStart);
        }
        check_optional_fields(
            self.tz.as_deref(),
            self.location.as_deref(),
            self.url.as_deref(),
            self.description.as_deref(),
            self.capacity,
        )
    }

    /// Absent fields are omitted.
    fn write_fields(&self, w: &mut JsonWriter) {
        w.str("title", &self.title);
        w.str("start", self.start.as_str());
        w.opt_str("end", self.end.as_ref().map(EventTime::as_str));
        w.opt_str("tz", self.tz.as_deref());
        w.opt_str("location", self.location.as_deref());
        w.opt_str("url", self.url.as_deref());
        w.opt_str("description", self.description.as_deref());
        if let Some(capacity) = self.capacity {
            w.raw("capacity", &capacity.to_string());
        }
        // A flag that is off is left out, like any absent field.
        if self.unlisted {
            w.raw("unlisted", "true");
        }
        if self.public {
            w.raw("public", "true");
        }
        if self.closed_to_web {
            w.raw("closed_to_web", "true");
        }
        if !self.comments.is_everyone() {
            w.str("comments", self.comments.as_str());
        }
    }
}

impl EventUpdate {
    /// An update of `event` that changes nothing yet (not valid until a
    /// field is set).
    pub fn new(event: MessageId) -> EventUpdate {
        EventUpdate {
            event,
            title: None,
            start: None,
            end: Change::Keep,
            tz: Change::Keep,
            location: Change::Keep,
            url: Change::Keep,
            description: Change::Keep,
            capacity: Change::Keep,
            unlisted: Change::Keep,
            public: Change::Keep,
            closed_to_web: Change::Keep,
            comments: Change::Keep,
        }
    }

    /// True if no field changes.
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.start.is_none()
            && self.end.is_keep()
            && self.tz.is_keep()
            && self.location.is_keep()
            && self.url.is_keep()
            && self.description.is_keep()
            && self.capacity.is_keep()
            && self.unlisted.is_keep()
            && self.public.is_keep()
            && self.closed_to_web.is_keep()
            && self.comments.is_keep()
    }
}

impl KnownContent for EventUpdate {
    const TYPE: &'static str = "event-update";

    fn from_object(obj: &Object) -> Result<EventUpdate, ContentError> {
        Ok(EventUpdate {
            event: obj.required("event", to_message_id)?,
            title: no_clear("title", obj.change("title", to_string)?)?,
            start: no_clear("start", obj.change("start", to_time("start"))?)?,
            end: obj.change("end", to_time("end"))?,
            tz: obj.change("tz", to_string)?,
            location: obj.change("location", to_string)?,
            url: obj.change("url", to_string)?,
            description: obj.change("description", to_string)?,
            capacity: obj.change("capacity", to_capacity)?,
            unlisted: obj.change("unlisted", to_bool("unlisted"))?,
            public: obj.change("public", to_bool("public"))?,
            closed_to_web: obj.change("closed_to_web", to_bool("closed_to_web"))?,
            comments: obj.change("comments", to_comment_policy)?,
        })
    }

    /// Also checks that at least one field changes.
    fn check_fields(&self) -> Result<(), ContentError> {
        if self.is_empty() {
            return Err(ContentError::EmptyUpdate);
        }
        if let Some(title) = &self.title {
            check_title(title)?;
        }
        if let (Some(start), Some(end)) = (&self.start, self.end.as_set())
            && end.timestamp() < start.timestamp()
        {
            return Err(ContentError::EndBeforeStart);
        }
        check_optional_fields(
            self.tz.as_set().map(String::as_str),
            self.location.as_set().map(String::as_str),
            self.url.as_set().map(String::as_str),
            self.description.as_set().map(String::as_str),
            self.capacity.as_set().copied(),
        )
    }

    /// Kept fields are omitted, cleared fields written as `null`.
    fn write_fields(&self, w: &mut JsonWriter) {
        w.str("event", &self.event.to_string());
        w.opt_str("title", self.title.as_deref());
        w.opt_str("start", self.start.as_ref().map(EventTime::as_str));
        w.change("end", &self.end, |t| json_string(t.as_str()));
        w.change("tz", &self.tz, |s| json_string(s));
        w.change("location", &self.location, |s| json_string(s));
        w.change("url", &self.url, |s| json_string(s));
        w.change("description", &self.description, |s| json_string(s));
        w.change("capacity", &self.capacity, u32::to_string);
        w.change("unlisted", &self.unlisted, bool::to_string);
        w.change("public", &self.public, bool::to_string);
        w.change("closed_to_web", &self.closed_to_web, bool::to_string);
        w.change("comments", &self.comments, |p| json_string(p.as_str()));
    }
}

impl KnownContent for EventCancel {
    const TYPE: &'static str = "event-cancel";

    fn from_object(obj: &Object) -> Result<EventCancel, ContentError> {
        Ok(EventCancel {
            event: obj.required("event", to_message_id)?,
            reason: obj.optional("reason", to_string)?,
        })
    }

    fn check_fields(&self) -> Result<(), ContentError> {
        if let Some(reason) = &self.reason {
            check_chars(reason, MAX_REASON_CHARS, |chars| {
                ContentError::ReasonTooLong { chars }
            })?;
        }
        Ok(())
    }

    fn write_fields(&self, w: &mut JsonWriter) {
        w.str("event", &self.event.to_string());
        w.opt_str("reason", self.reason.as_deref());
    }
}

fn check_title(title: &str) -> Result<(), ContentError> {
    if title.trim().is_empty() {
        return Err(ContentError::EmptyTitle);
    }
    check_chars(title, MAX_TITLE_CHARS, |chars| ContentError::TitleTooLong {
        chars,
    })
}

/// The checks of an event's optional fields, in this order: those an
/// event has, or those an update sets.
fn check_optional_fields(
    tz: Option<&str>,
    location: Option<&str>,
    url: Option<&str>,
    description: Option<&str>,
    capacity: Option<u32>,
) -> Result<(), ContentError> {
    if let Some(tz) = tz {
        validate_tz(tz)?;
    }
    if let Some(location) = location {
        check_location(location)?;
    }
    if let Some(url) = url {
        check_url(url)?;
    }
    if let Some(description) = description {
        check_description(description)?;
    }
    if let Some(capacity) = capacity {
        check_capacity(capacity)?;
    }
    Ok(())
}

fn check_location(location: &str) -> Result<(), ContentError> {
    check_chars(location, MAX_LOCATION_CHARS, |chars| {
        ContentError::LocationTooLong { chars }
    })
}

fn check_url(url: &str) -> Result<(), ContentError> {
    check_chars(url, MAX_URL_CHARS, |chars| ContentError::UrlTooLong {
        chars,
    })
}

fn check_description(description: &str) -> Result<(), ContentError> {
    if description.len() > MAX_DESCRIPTION_BYTES {
        return Err(ContentError::DescriptionTooLong {
            bytes: description.len(),
        });
    }
    Ok(())
}

fn check_capacity(capacity: u32) -> Result<(), ContentError> {
    if capacity == 0 {
        return Err(ContentError::BadCapacity { value: "0".into() });
    }
    Ok(())
}
