//! The pages (GET handlers) and what they share: the layout, forms with
//! their errors next to the fields, and error pages.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::format::{admission_words, answer_word, is_web_link, linkify, person, short_feed, when};
use super::{Web, event_key, event_path, parse_event_key};
use crate::app::admission::AdmissionStatus;
use crate::app::{AgendaItem, App, AppError, ContactView, EventDetail, EventList, EventSummary};
use crate::content::{MAX_GUESTS, MAX_NOTE_CHARS, MAX_REASON_CHARS, MAX_TITLE_CHARS, RsvpStatus};
use crate::feed::message::FeedId;
use crate::node::PeerInfo;
use crate::proto::peerbook::{PeerRecord, PeerSource};
use crate::store::StoreError;

/// Events per page of a list: an event with a place and a description
/// takes about 1.3 KB (measured on the million-message fixture), so a
/// page stays under 100 KB.
pub(crate) const PAGE_SIZE: usize = 50;

/// Most pages of a list one can ask for (the cost of a page grows with
/// its number).
pub(crate) const MAX_PAGE: usize = 1000;

/// Most people an event's page names per answer (anyone can answer, so
/// the count is a stranger's to choose); the counts stay exact.
pub(crate) const MAX_PEOPLE_SHOWN: usize = 500;

/// Why a page could not be shown, as the person reads it.
#[derive(Debug)]
pub(crate) enum PageError {
    /// 404.
    NotFound(String),
    /// 403: allowed to no one here (not the organizer, no identity).
    Forbidden(String),
    /// 409: the thing is in a state that does not allow it (cancelled).
    Conflict(String),
    /// 500: the store failed, or a task died.
    Internal(String),
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> PageError {
        match e {
            AppError::Store(StoreError::UnknownEvent(_) | StoreError::PrefixTooShort(_)) => {
                PageError::NotFound("There is no such event here.".into())
            }
            e @ (AppError::NotOrganizer { .. } | AppError::ReadOnly | AppError::OwnFeed) => {
                PageError::Forbidden(e.to_string())
            }
            e @ AppError::Cancelled { .. } => PageError::Conflict(e.to_string()),
            e => {
                tracing::error!(error = %e, "web page failed");
                PageError::Internal(e.to_string())
            }
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            PageError::NotFound(t) => (StatusCode::NOT_FOUND, "Not found", t),
            PageError::Forbidden(t) => (StatusCode::FORBIDDEN, "Not allowed", t),
            PageError::Conflict(t) => (StatusCode::CONFLICT, "Not possible now", t),
            PageError::Internal(t) => (StatusCode::INTERNAL_SERVER_ERROR, "Something failed", t),
        };
        let body = layout(
            title,
            Nav::None,
            "",
            None,
            html! { h1 { (title) } p { (text) } p { a href="/" { "Back to upcoming events" } } },
        );
        (status, body).into_response()
    }
}

/// Runs an [`App`] call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    web: &Web,
    f: impl FnOnce(&App) -> Result<T, AppError> + Send + 'static,
) -> Result<T, PageError> {
    let app = web.app.clone();
    tokio::task::spawn_blocking(move || f(&app))
        .await
        .map_err(|e| PageError::Internal(format!("the request's task failed: {e}")))?
        .map_err(PageError::from)
}

/// The current time, in ms since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Which main tab a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Upcoming,
    Past,
    New,
    Agenda,
    Network,
    None,
}

/// The frame of every page. `live_on` lists the kinds of change (see
/// `live`) after which the script refreshes the page's live parts;
/// `event` narrows `events` changes to one event.
pub(crate) fn layout(
    title: &str,
    nav: Nav,
    live_on: &str,
    event: Option<&str>,
    main: Markup,
) -> Markup {
    let tab = |target: Nav, href: &str, label: &str| {
        html! {
            li { a href=(href) aria-current=[(nav == target).then_some("page")] { (label) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · potluck" }
                link rel="stylesheet" href="/static/style.css";
                script src="/static/live.js" defer {}
            }
            body data-live-on=(live_on) data-event=[event] {
                a.skip href="#main" { "Skip to content" }
                header.site {
                    a.brand href="/" { "potluck" }
                    nav aria-label="Main" {
                        ul {
                            (tab(Nav::Upcoming, "/", "Upcoming"))
                            (tab(Nav::Past, "/past", "Past"))
                            (tab(Nav::New, "/new", "New event"))
                            (tab(Nav::Agenda, "/agenda", "My agenda"))
                            (tab(Nav::Network, "/network", "People & network"))
                        }
                    }
                }
                main #main { (main) }
            }
        }
    }
}

/// What a form holds after a failed submission: the values typed and the
/// errors, by field (`""` for the form as a whole).
#[derive(Clone, Debug, Default)]
pub(crate) struct FormState {
    pub(crate) values: HashMap<&'static str, String>,
    pub(crate) errors: Vec<(&'static str, String)>,
}

impl FormState {
    pub(crate) fn value(&self, name: &str) -> &str {
        self.values.get(name).map_or("", String::as_str)
    }

    pub(crate) fn set(&mut self, name: &'static str, value: impl Into<String>) {
        self.values.insert(name, value.into());
    }

    pub(crate) fn error(&self, name: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, e)| e.as_str())
    }

    pub(crate) fn fail(&mut self, name: &'static str, why: impl Into<String>) {
        if self.error(name).is_none() {
            self.errors.push((name, why.into()));
        }
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// The hidden CSRF field every form carries.
pub(crate) fn csrf(web: &Web) -> Markup {
    html! { input type="hidden" name=(super::security::CSRF_FIELD) value=(web.csrf); }
}

/// A form's error about itself, not one field.
pub(crate) fn form_error(form: &FormState) -> Markup {
    html! {
        @if let Some(e) = form.error("") { p.error role="alert" { (e) } }
    }
}

/// The error of one field, placed next to it; the input refers to it with
/// `aria-describedby`.
fn field_error(prefix: &str, form: &FormState, name: &str) -> Markup {
    html! {
        @if let Some(e) = form.error(name) {
            p.error id=(format!("{prefix}{name}-error")) { (e) }
        }
    }
}

/// How one input is drawn.
pub(crate) struct Input<'a> {
    pub(crate) name: &'static str,
    pub(crate) label: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) required: bool,
    pub(crate) max_chars: Option<usize>,
    pub(crate) hint: Option<&'a str>,
    /// Prefix of the element ids, so two forms on a page do not clash.
    pub(crate) prefix: &'a str,
}

impl<'a> Input<'a> {
    pub(crate) fn new(prefix: &'a str, name: &'static str, label: &'a str) -> Input<'a> {
        Input {
            name,
            label,
            kind: "text",
            required: false,
            max_chars: None,
            hint: None,
            prefix,
        }
    }
    fn kind(mut self, kind: &'a str) -> Self {
        self.kind = kind;
        self
    }
    fn required(mut self) -> Self {
        self.required = true;
        self
    }
    fn max(mut self, chars: usize) -> Self {
        self.max_chars = Some(chars);
        self
    }
    fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }

    fn draw(&self, form: &FormState) -> Markup {
        let id = format!("{}{}", self.prefix, self.name);
        let err_id = format!("{id}-error");
        let hint_id = format!("{id}-hint");
        let described = match (form.error(self.name).is_some(), self.hint.is_some()) {
            (true, true) => Some(format!("{err_id} {hint_id}")),
            (true, false) => Some(err_id),
            (false, true) => Some(hint_id.clone()),
            (false, false) => None,
        };
        html! {
            div.field {
                label for=(id) { (self.label) @if self.required { " " span.req aria-hidden="true" { "*" } } }
                @if self.kind == "textarea" {
                    textarea id=(id) name=(self.name) rows="5" required[self.required]
                        aria-invalid=[form.error(self.name).map(|_| "true")]
                        aria-describedby=[described.as_deref()] { (form.value(self.name)) }
                } @else {
                    input id=(id) name=(self.name) type=(self.kind) value=(form.value(self.name))
                        required[self.required]
                        maxlength=[self.max_chars]
                        min=[(self.kind == "number").then_some("0")]
                        aria-invalid=[form.error(self.name).map(|_| "true")]
                        aria-describedby=[described.as_deref()];
                }
                @if let Some(h) = self.hint { small.hint id=(hint_id) { (h) } }
                (field_error(self.prefix, form, self.name))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Lists of events
// ---------------------------------------------------------------------------

/// `GET /` (`?page=N` for the next ones): upcoming events, soonest first.
pub(crate) async fn upcoming(State(web): State<Web>, uri: Uri) -> Result<Markup, PageError> {
    list_page(web, EventList::Upcoming, page_number(&uri)).await
}

/// `GET /past` (`?page=N` for older ones): past events, most recent first.
pub(crate) async fn past(State(web): State<Web>, uri: Uri) -> Result<Markup, PageError> {
    list_page(web, EventList::Past, page_number(&uri)).await
}

/// The `page` of a list's address: 1 when absent or not a number, at
/// most [`MAX_PAGE`].
fn page_number(uri: &Uri) -> usize {
    uri.query()
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "page")
                .and_then(|(_, v)| v.parse::<usize>().ok())
        })
        .unwrap_or(1)
        .clamp(1, MAX_PAGE)
}

async fn list_page(web: Web, list: EventList, page: usize) -> Result<Markup, PageError> {
    let now = now_ms();
    // Only this page's events are summarized; earlier pages are skipped
    // in the index.
    let (mut events, more) = blocking(&web, move |app| {
        app.events_from(list, now, (page - 1).saturating_mul(PAGE_SIZE), PAGE_SIZE)
    })
    .await?;
    let (title, nav, empty, path) = if list == EventList::Past {
        events.reverse();
        ("Past events", Nav::Past, "No past events yet.", "/past")
    } else {
        (
            "Upcoming events",
            Nav::Upcoming,
            "No upcoming events. Announce one with “New event”.",
            "/",
        )
    };
    let shown: Vec<&EventSummary> = events.iter().collect();
    Ok(layout(
        title,
        nav,
        "events",
        None,
        html! {
            h1 { (title) }
            section #events data-live aria-live="polite" {
                @if shown.is_empty() { p.empty { (empty) } }
                @for e in &shown { (event_card(&web, e)) }
            }
            nav.pages aria-label="Pages" {
                @if page > 1 { a href=(format!("{path}?page={}", page - 1)) rel="prev" { "← Previous" } " " }
                @if more && page < MAX_PAGE { a href=(format!("{path}?page={}", page + 1)) rel="next" { "Next →" } }
            }
            @if list == EventList::Upcoming {
                p.small {
                    "Calendar apps can subscribe to " a href="/calendar.ics" { "this list as a calendar" }
                    " (copy the link into the app's “new calendar from the network”)."
                }
            }
        },
    ))
}

fn counts(s: &EventSummary) -> Markup {
    let t = &s.tally;
    html! {
        p.counts {
            strong { (t.going) } " going"
            @if t.headcount > t.going { " (" (t.headcount) " people with guests)" }
            " · " strong { (t.maybe) } " maybe"
            @if t.not_going > 0 { " · " (t.not_going) " not going" }
        }
        @if let Some(cap) = s.state.event.capacity {
            p.capacity {
                "Capacity " (cap) ": "
                strong { (s.places_left().unwrap_or(0)) } " places left"
                @if s.admissions.waitlisted > 0 { " · " (s.admissions.waitlisted) " on the waitlist" }
                @if s.admissions.pending > 0 { " · " (s.admissions.pending) " not yet decided" }
            }
        }
    }
}

fn my_answer_text(s: &EventSummary) -> Option<String> {
    let mine = s.mine.as_ref()?;
    let mut text = answer_word(mine.rsvp.status).to_owned();
    if let Some(a) = mine.admission {
        text.push_str(" — ");
        text.push_str(&admission_words(a, mine.waitlist_position));
    }
    if mine.stale {
        text.push_str(" (answered an earlier plan)");
    }
    Some(text)
}

/// The viewer's answer and admission as plain words for tests and
/// scripts to read (`going admitted`, `maybe`, ...).
fn my_status_words(s: &EventSummary) -> String {
    match &s.mine {
        None => String::new(),
        Some(m) => match m.admission {
            Some(a) => format!("{} {}", m.rsvp.status.as_str(), a.as_str()),
            None => m.rsvp.status.as_str().to_owned(),
        },
    }
}

fn event_card(web: &Web, s: &EventSummary) -> Markup {
    let e = &s.state.event;
    html! {
        article.card.cancelled[s.is_cancelled()] {
            h2 {
                a href=(event_path(&s.state.id)) { (e.title) }
                @if s.is_cancelled() { " " span.badge.cancelled { "Cancelled" } }
            }
            p { (when(e, &web.viewer_zone, &web.settings.zone)) }
            @if let Some(place) = &e.location { p.place { "Where: " (place) } }
            p.organizer { "Organized by " (person(s.organizer_name.as_deref(), &s.state.author)) }
            (counts(s))
            @if let Some(text) = my_answer_text(s) {
                p.mine data-status=(my_status_words(s)) { "Your answer: " strong { (text) } }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// One event
// ---------------------------------------------------------------------------

/// The forms of an event's page, as submitted (on error) or empty.
#[derive(Default)]
pub(crate) struct EventForms {
    pub(crate) rsvp: FormState,
    pub(crate) edit: Option<FormState>,
    pub(crate) cancel: FormState,
}

/// `GET /e/{key}`.
pub(crate) async fn event(
    State(web): State<Web>,
    Path(key): Path<String>,
) -> Result<Markup, PageError> {
    let detail = load_event(&web, &key).await?;
    Ok(event_page(&web, &detail, EventForms::default()))
}

/// Everything about the event with page key `key`, and whether we
/// organize it.
pub(crate) async fn load_event(web: &Web, key: &str) -> Result<(EventDetail, bool), PageError> {
    let id = parse_event_key(key)
        .ok_or_else(|| PageError::NotFound("There is no such event here.".into()))?;
    blocking(web, move |app| {
        let detail = app.event(&id.to_string())?;
        let mine = app
            .feed_id()
            .is_ok_and(|me| me == detail.summary.state.author);
        Ok((detail, mine))
    })
    .await
}

/// The values of the edit form for an event as it is now: times in the
/// event's zone, or the viewer's when it has none.
pub(crate) fn edit_values(web: &Web, detail: &EventDetail) -> FormState {
    let e = &detail.summary.state.event;
    let own = crate::app::when::event_zone(e);
    let (tz, zone) = match own.iana_name() {
        Some(name) => (own.clone(), name.to_owned()),
        None => (web.viewer_zone.clone(), web.settings.zone.clone()),
    };
    let start = tz.to_datetime(e.start.timestamp());
    let mut form = FormState::default();
    form.set("title", e.title.clone());
    form.set("date", start.date().to_string());
    form.set("start", start.time().strftime("%H:%M").to_string());
    if let Some(e_end) = &e.end {
        let end = tz.to_datetime(e_end.timestamp());
        if end.date() == start.date() {
            form.set("end", end.time().strftime("%H:%M").to_string());
        } else {
            // Between the instants, not the wall clocks: a clock change
            // in between does not count, and days need no calendar.
            let minutes = (e_end.as_millisecond() - e.start.as_millisecond()).max(0) / 60_000;
            form.set("duration", format!("{}h{}m", minutes / 60, minutes % 60));
        }
    }
    form.set("zone", zone);
    form.set("location", e.location.clone().unwrap_or_default());
    form.set("url", e.url.clone().unwrap_or_default());
    form.set("description", e.description.clone().unwrap_or_default());
    form.set(
        "capacity",
        e.capacity.map(|c| c.to_string()).unwrap_or_default(),
    );
    form
}

pub(crate) fn event_page(
    web: &Web,
    (detail, organizer): &(EventDetail, bool),
    forms: EventForms,
) -> Markup {
    let s = &detail.summary;
    let e = &s.state.event;
    let key = event_key(&s.state.id);
    let path = event_path(&s.state.id);
    let going: Vec<_> = detail
        .rsvps
        .iter()
        .filter(|r| r.rsvp.status == RsvpStatus::Going)
        .collect();
    let maybe: Vec<_> = detail
        .rsvps
        .iter()
        .filter(|r| r.rsvp.status == RsvpStatus::Maybe)
        .collect();
    let not_going: Vec<_> = detail
        .rsvps
        .iter()
        .filter(|r| r.rsvp.status == RsvpStatus::NotGoing)
        .collect();
    let people = |title: &str, list: &[&crate::app::RsvpView]| {
        html! {
            h3 { (title) " (" (list.len()) ")" }
            @if list.is_empty() { p.empty { "Nobody." } }
            @else {
                ul.people {
                    @for r in list.iter().take(MAX_PEOPLE_SHOWN) {
                        li {
                            strong { (person(r.name.as_deref(), &r.author)) }
                            @if r.rsvp.guests > 0 { " +" (r.rsvp.guests) " guest" @if r.rsvp.guests > 1 { "s" } }
                            @if let Some(a) = r.admission {
                                " " span class=(format!("badge {}", a.as_str())) { (admission_words(a, r.waitlist_position)) }
                            }
                            @if r.stale { " " span.badge.stale title="This answer was given before the time or place changed" { "answered an earlier plan" } }
                            @if let Some(note) = &r.rsvp.note { br; span.note { "“" (note) "”" } }
                        }
                    }
                }
                @if list.len() > MAX_PEOPLE_SHOWN { p.more { "and " (list.len() - MAX_PEOPLE_SHOWN) " more." } }
            }
        }
    };
    let edit = forms.edit.unwrap_or_else(|| edit_values(web, detail));
    let rsvp_form = &forms.rsvp;
    let guests_default = s
        .mine
        .as_ref()
        .map(|m| m.rsvp.guests.to_string())
        .unwrap_or_default();
    let note_default = s
        .mine
        .as_ref()
        .and_then(|m| m.rsvp.note.clone())
        .unwrap_or_default();
    let guests_hint = format!("0 to {MAX_GUESTS}");
    let current = s.mine.as_ref().map(|m| m.rsvp.status);
    let mut rsvp_values = rsvp_form.clone();
    if !rsvp_form.has_errors() {
        rsvp_values.set("guests", guests_default);
        rsvp_values.set("note", note_default);
    }
    layout(
        &e.title,
        Nav::None,
        "events",
        Some(&key),
        html! {
            article.event {
                div #summary data-live {
                    h1 {
                        (e.title)
                        @if s.is_cancelled() { " " span.badge.cancelled { "Cancelled" } }
                    }
                    @if s.is_cancelled() {
                        p.cancelled-note { "This event is cancelled"
                            @if let Some(r) = &s.state.cancel_reason { ": " (r) } "." }
                    }
                    p { (when(e, &web.viewer_zone, &web.settings.zone)) }
                    @if let Some(place) = &e.location { p.place { "Where: " (place) } }
                    @if let Some(url) = &e.url {
                        p.link { "Link: "
                            @if is_web_link(url) { a href=(url) rel="noopener noreferrer nofollow" { (url) } }
                            @else { (url) }
                        }
                    }
                    p.organizer { "Organized by " strong { (person(s.organizer_name.as_deref(), &s.state.author)) } }
                    (counts(s))
                    @if let Some(d) = &e.description { div.description { (linkify(d)) } }
                    @if s.state.revision > 0 { p.revision { "Changed " (s.state.revision) " time" @if s.state.revision > 1 { "s" } " since it was announced." } }
                }
                p.actions { a.button href=(format!("{path}/event.ics")) { "Add to calendar" } }

                section #answer aria-labelledby="answer-title" {
                    h2 #answer-title { "Your answer" }
                    p #my-status data-live aria-live="polite" {
                        @match &s.mine {
                            None => "You have not answered yet.",
                            Some(mine) => {
                                "You answered " strong { (answer_word(mine.rsvp.status)) }
                                @if let Some(a) = mine.admission {
                                    ": " strong class=(format!("status {}", a.as_str())) { (admission_words(a, mine.waitlist_position)) }
                                    @if a == AdmissionStatus::Pending { " (the organizer's computer has not decided yet)" }
                                }
                                @if mine.stale { " — you answered an earlier plan; answer again to confirm." }
                                "."
                            }
                        }
                    }
                    @if !s.is_cancelled() {
                        form.rsvp method="post" action=(format!("{path}/rsvp")) {
                            (csrf(web))
                            (form_error(rsvp_form))
                            div.row {
                                (Input::new("rsvp-", "guests", "Guests you bring").kind("number").hint(&guests_hint).draw(&rsvp_values))
                                (Input::new("rsvp-", "note", "Note").max(MAX_NOTE_CHARS).draw(&rsvp_values))
                            }
                            (field_error("rsvp-", rsvp_form, "status"))
                            div.buttons #answer-buttons data-live role="group" aria-label="Answer" {
                                @for (status, label) in [(RsvpStatus::Going, "Going"), (RsvpStatus::Maybe, "Maybe"), (RsvpStatus::NotGoing, "Not going")] {
                                    button.chosen[current == Some(status)] type="submit" name="status" value=(status.as_str()) { (label) }
                                }
                            }
                        }
                    }
                }

                section #people data-live aria-labelledby="people-title" {
                    h2 #people-title { "Who is coming" }
                    (people("Going", &going))
                    (people("Maybe", &maybe))
                    (people("Not going", &not_going))
                }

                @if *organizer {
                    section.organizer aria-labelledby="organizer-title" {
                        h2 #organizer-title { "You organize this" }
                        div #waitlist data-live {
                            h3 { "Waitlist" }
                            @let list = detail.waitlist();
                            @if list.is_empty() { p.empty { "Nobody is waiting." } }
                            @else {
                                ol.waitlist {
                                    @for r in list.iter().take(MAX_PEOPLE_SHOWN) {
                                        li { (person(r.name.as_deref(), &r.author))
                                            @if r.rsvp.guests > 0 { " +" (r.rsvp.guests) } }
                                    }
                                }
                                @if list.len() > MAX_PEOPLE_SHOWN { p.more { "and " (list.len() - MAX_PEOPLE_SHOWN) " more." } }
                            }
                        }
                        @if !s.is_cancelled() {
                            details open[edit.has_errors()] {
                                summary { "Edit the event" }
                                form method="post" action=(format!("{path}/edit")) {
                                    (csrf(web))
                                    (form_error(&edit))
                                    (event_fields(web, "edit-", &edit))
                                    button type="submit" { "Save changes" }
                                }
                            }
                            details open[forms.cancel.has_errors()] {
                                summary { "Cancel the event" }
                                form method="post" action=(format!("{path}/cancel")) {
                                    (csrf(web))
                                    (form_error(&forms.cancel))
                                    (Input::new("cancel-", "reason", "Reason (optional)").max(MAX_REASON_CHARS).draw(&forms.cancel))
                                    button.danger type="submit" { "Cancel event" }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

// ---------------------------------------------------------------------------
// New event
// ---------------------------------------------------------------------------

/// The fields of the new-event and edit forms.
pub(crate) fn event_fields(web: &Web, prefix: &str, form: &FormState) -> Markup {
    let zone_id = format!("{prefix}zone");
    html! {
        (Input::new(prefix, "title", "Title").required().max(MAX_TITLE_CHARS).draw(form))
        div.row {
            (Input::new(prefix, "date", "Date").kind("date").required().hint("YYYY-MM-DD").draw(form))
            (Input::new(prefix, "start", "Starts at").kind("time").required().hint("wall-clock time, like 18:30").draw(form))
        }
        div.row {
            (Input::new(prefix, "end", "Ends at").kind("time").hint("optional; earlier than the start means the next day").draw(form))
            (Input::new(prefix, "duration", "or lasts").hint("optional, like 2h or 1h30m").draw(form))
        }
        div.field {
            label for=(zone_id) { "Time zone" }
            select id=(zone_id) name="zone"
                aria-invalid=[form.error("zone").map(|_| "true")]
                aria-describedby=[form.error("zone").map(|_| format!("{zone_id}-error"))] {
                @for z in &web.zones {
                    option value=(z) selected[z == form.value("zone")] { (z) }
                }
            }
            small.hint { "The times above are wall-clock times in this zone; daylight saving time is taken care of." }
            (field_error(prefix, form, "zone"))
        }
        (Input::new(prefix, "location", "Place").max(crate::content::MAX_LOCATION_CHARS).draw(form))
        (Input::new(prefix, "url", "Link").kind("url").max(crate::content::MAX_URL_CHARS).draw(form))
        (Input::new(prefix, "description", "Description").kind("textarea").draw(form))
        (Input::new(prefix, "capacity", "Capacity").kind("number").hint("optional: how many people can come, guests included").draw(form))
    }
}

/// `GET /new`.
pub(crate) async fn new_event(State(web): State<Web>) -> Markup {
    let mut form = FormState::default();
    form.set("zone", web.settings.zone.clone());
    form.set(
        "date",
        jiff::Timestamp::now()
            .to_zoned_datetime(web.viewer_zone.clone())
            .date()
            .to_string(),
    );
    new_event_page(&web, &form)
}

pub(crate) fn new_event_page(web: &Web, form: &FormState) -> Markup {
    layout(
        "New event",
        Nav::New,
        "",
        None,
        html! {
            h1 { "Announce an event" }
            form.event-form method="post" action="/new" {
                (csrf(web))
                (form_error(form))
                (event_fields(web, "", form))
                button type="submit" { "Announce" }
            }
        },
    )
}

// ---------------------------------------------------------------------------
// Agenda
// ---------------------------------------------------------------------------

/// `GET /agenda`: my answers to upcoming events.
pub(crate) async fn agenda(State(web): State<Web>) -> Result<Markup, PageError> {
    let now = now_ms();
    let items: Vec<AgendaItem> = blocking(&web, move |app| app.agenda(now)).await?;
    Ok(layout(
        "My agenda",
        Nav::Agenda,
        "events",
        None,
        html! {
            h1 { "My agenda" }
            section #agenda data-live aria-live="polite" {
                @if items.is_empty() { p.empty { "You have not said you are going to anything upcoming." } }
                ul.agenda {
                    @for item in &items {
                        li.card {
                            h2 { a href=(event_path(&item.state.id)) { (item.state.event.title) } }
                            p { (when(&item.state.event, &web.viewer_zone, &web.settings.zone)) }
                            p.my-status data-event=(event_key(&item.state.id)) {
                                "You answered " strong { (answer_word(item.mine.rsvp.status)) }
                                @if let Some(a) = item.mine.admission {
                                    ": " strong class=(format!("status {}", a.as_str())) { (admission_words(a, item.mine.waitlist_position)) }
                                }
                                @if item.mine.stale { " (an earlier plan)" }
                            }
                        }
                    }
                }
            }
        },
    ))
}

// ---------------------------------------------------------------------------
// People and network
// ---------------------------------------------------------------------------

/// What the network page shows.
pub(crate) struct NetworkView {
    me: FeedId,
    my_name: Option<String>,
    peers: Vec<(PeerInfo, Option<String>)>,
    book: Vec<PeerRecord>,
    contacts: Vec<ContactView>,
}

/// Forms of the network page, as submitted (on error) or empty.
#[derive(Default)]
pub(crate) struct NetworkForms {
    pub(crate) name: FormState,
    pub(crate) contact: FormState,
    pub(crate) join: FormState,
}

pub(crate) async fn load_network(web: &Web) -> Result<NetworkView, PageError> {
    blocking(web, |app| {
        let me = app.feed_id()?;
        let (connected, book) = app.network()?;
        let mut peers = Vec::with_capacity(connected.len());
        for p in connected {
            let name = app.name_of(&p.feed)?;
            peers.push((p, name));
        }
        Ok(NetworkView {
            my_name: app.name_of(&me)?,
            me,
            peers,
            book,
            contacts: app.contacts()?,
        })
    })
    .await
}

/// `GET /network`.
pub(crate) async fn network(State(web): State<Web>) -> Result<Markup, PageError> {
    let view = load_network(&web).await?;
    Ok(network_page(&web, &view, NetworkForms::default()))
}

fn table_head(columns: &[&str]) -> Markup {
    html! { thead { tr { @for c in columns { th scope="col" { (c) } } } } }
}

fn source_word(s: PeerSource) -> &'static str {
    match s {
        PeerSource::Configured => "configured",
        PeerSource::Discovered => "found on the local network",
        PeerSource::Invite => "from an invite",
        PeerSource::Inbound => "connected to us",
    }
}

fn ago(ms: Option<i64>) -> String {
    match ms.and_then(|m| jiff::Timestamp::from_millisecond(m).ok()) {
        Some(t) => t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        None => "never".into(),
    }
}

pub(crate) fn network_page(web: &Web, view: &NetworkView, mut forms: NetworkForms) -> Markup {
    if !forms.name.values.contains_key("name") {
        forms
            .name
            .set("name", view.my_name.clone().unwrap_or_default());
    }
    let names: HashMap<FeedId, &str> = view
        .peers
        .iter()
        .filter_map(|(p, n)| n.as_deref().map(|n| (p.feed, n)))
        .chain(
            view.contacts
                .iter()
                .filter_map(|c| c.name.as_deref().map(|n| (c.feed, n))),
        )
        .collect();
    layout(
        "People and network",
        Nav::Network,
        "peers progress appended",
        None,
        html! {
            h1 { "People and network" }
            section aria-labelledby="me-title" {
                h2 #me-title { "You" }
                p #me data-live {
                    "You are " strong { (person(view.my_name.as_deref(), &view.me)) }
                    br; small.feed { (view.me.to_string()) }
                }
                form.inline method="post" action="/network/name" {
                    (csrf(web))
                    (form_error(&forms.name))
                    (Input::new("me-", "name", "Your name").required().max(crate::content::MAX_NAME_CHARS).draw(&forms.name))
                    button type="submit" { "Save name" }
                }
            }
            section #peers data-live aria-labelledby="peers-title" {
                h2 #peers-title { "Connected now" }
                @if view.peers.is_empty() { p.empty { "No peer is connected." } }
                @else {
                    div.scroll { table {
                        (table_head(&["Who", "Address", "Received", "Sync"]))
                        tbody {
                            @for (p, name) in &view.peers {
                                tr {
                                    td { (person(name.as_deref(), &p.feed)) }
                                    td { (p.address) @if p.outbound { " (we dialed)" } }
                                    td { (crate::app::when::plural(p.received, "message", "messages")) }
                                    td {
                                        @if p.caught_up { span.badge.admitted { "caught up" } }
                                        @else {
                                            span.badge.pending { "catching up" }
                                            @if p.remaining > 0 { " " (p.remaining) " to go" }
                                        }
                                    }
                                }
                            }
                        }
                    } }
                }
            }
            section #book data-live aria-labelledby="book-title" {
                h2 #book-title { "Known addresses" }
                @if view.book.is_empty() { p.empty { "No address is known yet." } }
                @else {
                    div.scroll { table {
                        (table_head(&["Address", "Who", "From", "Last reached"]))
                        tbody {
                            @for r in &view.book {
                                tr {
                                    td { (r.addr) }
                                    td { @match r.feed { Some(f) => (person(names.get(&f).copied(), &f)), None => "unknown" } }
                                    td { (source_word(r.source)) }
                                    td { (ago(r.last_success_ms)) @if r.failures > 0 { " (" (r.failures) " failures since)" } }
                                }
                            }
                        }
                    } }
                }
            }
            section aria-labelledby="invite-title" {
                h2 #invite-title { "Invite someone" }
                @match &web.settings.invite_code {
                    Some(code) => {
                        p { "Give this code to someone you trust; they join with it." }
                        div.copy-row {
                            input #invite-code type="text" readonly value=(code) aria-label="Invite code";
                            button type="button" data-copy="invite-code" hidden { "Copy" }
                        }
                    }
                    None => p { "Make a code with " code { "potluck invite" } " in a terminal." },
                }
                h3 { "Join with a code" }
                form.inline method="post" action="/network/join" {
                    (csrf(web))
                    (form_error(&forms.join))
                    (Input::new("join-", "code", "Invite code").required().hint("a code for this network: you follow the inviter and stay connected (a code for another network needs a new home: potluck join CODE --home DIR)").draw(&forms.join))
                    button type="submit" { "Join" }
                }
            }
            section aria-labelledby="contacts-title" {
                h2 #contacts-title { "Follow and block" }
                div #contacts data-live {
                    @if view.contacts.is_empty() { p.empty { "You follow and block nobody yet." } }
                    @else {
                        ul.contacts {
                            @for c in &view.contacts {
                                li {
                                    strong { (person(c.name.as_deref(), &c.feed)) } " "
                                    @if c.following { span.badge.admitted { "following" } " " }
                                    @if c.blocking { span.badge.cancelled { "blocked" } " " }
                                    form.mini method="post" action="/network/contact" {
                                        (csrf(web))
                                        input type="hidden" name="feed" value=(c.feed.to_string());
                                        @if c.following { button type="submit" name="action" value="unfollow" aria-label=(format!("Unfollow {}", person(c.name.as_deref(), &c.feed))) { "Unfollow" } }
                                        @if c.blocking { button type="submit" name="action" value="unblock" aria-label=(format!("Unblock {}", person(c.name.as_deref(), &c.feed))) { "Unblock" } }
                                    }
                                }
                            }
                        }
                    }
                }
                form method="post" action="/network/contact" {
                    (csrf(web))
                    (form_error(&forms.contact))
                    (Input::new("contact-", "feed", "Feed id").required().hint("like @AbC…=.ed25519").draw(&forms.contact))
                    div.buttons {
                        button type="submit" name="action" value="follow" { "Follow" }
                        button.danger type="submit" name="action" value="block" { "Block" }
                    }
                }
            }
            p.small { "Peers are shown by name when they have one; otherwise by the start of their feed id, like " (short_feed(&view.me)) "." }
        },
    )
}

// ---------------------------------------------------------------------------
// Login and not found
// ---------------------------------------------------------------------------

/// `GET /login`: the access-token form (only needed beyond loopback).
pub(crate) async fn login(State(web): State<Web>) -> Markup {
    login_page(&web, &FormState::default())
}

pub(crate) fn login_page(web: &Web, form: &FormState) -> Markup {
    layout(
        "Log in",
        Nav::None,
        "",
        None,
        html! {
            h1 { "Access token" }
            p { "This page is reachable from other computers, so it asks for the access token that " code { "potluck serve" } " showed when it made it." }
            form method="post" action="/login" {
                (csrf(web))
                (form_error(form))
                (Input::new("", "token", "Access token").kind("password").required().draw(form))
                button type="submit" { "Log in" }
            }
        },
    )
}

/// Any other address.
pub(crate) async fn not_found() -> PageError {
    PageError::NotFound("There is no page at this address.".into())
}

/// The status of a form page sent back with errors.
pub(crate) const FORM_ERROR_STATUS: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
