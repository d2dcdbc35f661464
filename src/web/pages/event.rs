//! One event's page: what it is, who comes, the answer form, and for its
//! organizer the waitlist, the edit form and the cancel form.

use axum::extract::{Path, State};
use axum::http::Uri;
use maud::{Markup, html};

use super::event_form::{edit_values, event_fields};
use super::form::field_error;
use super::form::{FormState, Input, csrf, form_error};
use super::layout::{Nav, PageError, blocking, layout};
use super::lists::counts;
use super::thread::{Reader, after_param, load_thread, thread_section};
use crate::app::{
    AdmissionStatus, EventDetail, EventSummary, RsvpView, SharedLink, ThreadView, person,
};
use crate::content::is_web_link;
use crate::content::{MAX_GUESTS, MAX_NOTE_CHARS, MAX_REASON_CHARS, RsvpStatus};
use crate::feed::message::{FeedId, MessageId};
use crate::web::format::{Viewer, admission_words, answer_word, linkify, when};
use crate::web::paths::{event_key, event_path, parse_event_key};
use crate::web::state::Web;

/// Most people an event's page names per answer (anyone can answer, so
/// the count is a stranger's to choose); the counts stay exact.
pub(crate) const MAX_PEOPLE_SHOWN: usize = 500;

/// The forms of an event's page, as submitted (on error) or empty.
#[derive(Default)]
pub(crate) struct EventForms {
    pub(crate) rsvp: FormState,
    pub(crate) edit: Option<FormState>,
    pub(crate) cancel: FormState,
    pub(crate) comment: FormState,
}

/// What an event's page shows: the event with every answer, whether we
/// organize it, and a page of its thread with the links shared.
pub(crate) struct LoadedEvent {
    pub(crate) detail: EventDetail,
    pub(crate) organizer: bool,
    pub(crate) me: Option<FeedId>,
    pub(crate) thread: ThreadView,
    pub(crate) links: Vec<SharedLink>,
}

/// `GET /e/{key}[?after=COMMENT]`: `after` is the page key of the comment
/// the thread's page starts after.
pub(crate) async fn event(
    State(web): State<Web>,
    Path(key): Path<String>,
    uri: Uri,
) -> Result<Markup, PageError> {
    let loaded = load_event(&web, &key, after_param(&uri)).await?;
    Ok(event_page(&web, &loaded, EventForms::default()))
}

/// Everything about the event with page key `key`, with the page of its
/// thread after comment `after` (or the first).
pub(crate) async fn load_event(
    web: &Web,
    key: &str,
    after: Option<MessageId>,
) -> Result<LoadedEvent, PageError> {
    let id = parse_event_key(key)
        .ok_or_else(|| PageError::NotFound("There is no such event here.".into()))?;
    blocking(web, move |app| {
        let detail = app.event(&id)?;
        let me = app.feed_id().ok();
        let organizer = me == Some(detail.summary.state.author);
        let (thread, links) = load_thread(app, &id, after)?;
        Ok(LoadedEvent {
            detail,
            organizer,
            me,
            thread,
            links,
        })
    })
    .await
}

pub(crate) fn event_page(web: &Web, loaded: &LoadedEvent, forms: EventForms) -> Markup {
    let detail = &loaded.detail;
    let organizer = &loaded.organizer;
    let s = &detail.summary;
    let e = &s.state.event;
    let key = event_key(&s.state.id);
    let path = event_path(&s.state.id);
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
                (summary_block(Some(web.viewer()), s))
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

                (people_section(detail))

                (thread_section(web, &loaded.thread, &loaded.links, &Reader {
                    me: loaded.me,
                    organizer: loaded.organizer,
                    may_comment: loaded.thread.may_comment,
                }, &forms.comment))

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

/// What the event is: title, state, when and where, who organizes it, the
/// counts, the description. The same on the local page and on a hub's
/// public pages.
pub(crate) fn summary_block(viewer: Option<Viewer<'_>>, s: &EventSummary) -> Markup {
    let e = &s.state.event;
    html! {
        div #summary data-live {
            h1 {
                (e.title)
                @if s.is_cancelled() { " " span.badge.cancelled { "Cancelled" } }
            }
            @if s.is_cancelled() {
                p.cancelled-note { "This event is cancelled"
                    @if let Some(r) = &s.state.cancel_reason { ": " (r) } "." }
            }
            p { (when(e, viewer)) }
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
    }
}

/// Who answered, by answer: each person's name (or short id), guests,
/// admission, whether they answered an earlier plan, and their note. The
/// same on the local page and on a hub's public pages.
pub(crate) fn people_section(detail: &EventDetail) -> Markup {
    let with = |status: RsvpStatus| -> Vec<&RsvpView> {
        detail
            .rsvps
            .iter()
            .filter(|r| r.rsvp.status == status)
            .collect()
    };
    html! {
        section #people data-live aria-labelledby="people-title" {
            h2 #people-title { "Who is coming" }
            (people("Going", &with(RsvpStatus::Going)))
            (people("Maybe", &with(RsvpStatus::Maybe)))
            (people("Not going", &with(RsvpStatus::NotGoing)))
        }
    }
}

/// The people who gave one answer, at most [`MAX_PEOPLE_SHOWN`] of them.
fn people(title: &str, list: &[&RsvpView]) -> Markup {
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
}
