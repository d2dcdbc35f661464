//! The lists of events: upcoming and past, a page at a time.

use axum::extract::State;
use axum::http::Uri;
use maud::{Markup, html};

use super::layout::{Nav, PageError, blocking, layout};
use crate::app::now_ms;
use crate::app::person;
use crate::app::{EventList, EventSummary};
use crate::web::format::{Viewer, admission_words, answer_word, when};
use crate::web::paths::event_path;
use crate::web::state::Web;

/// Events per page of a list: an event with a place and a description
/// takes about 1.3 KB (measured on the million-message fixture), so a
/// page stays under 100 KB.
pub(crate) const PAGE_SIZE: usize = 50;

/// Most pages of a list one can ask for (the cost of a page grows with
/// its number).
pub(crate) const MAX_PAGE: usize = 1000;

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
pub(crate) fn page_number(uri: &Uri) -> usize {
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
    let shown = ListPage {
        events: &events,
        empty,
        path,
        page,
        more,
    };
    Ok(layout(
        title,
        nav,
        "events",
        None,
        html! {
            h1 { (title) }
            (shown.draw(Some(web.viewer())))
            @if list == EventList::Upcoming {
                p.small {
                    "Calendar apps can subscribe to " a href="/calendar.ics" { "this list as a calendar" }
                    " (copy the link into the app's “new calendar from the network”)."
                }
            }
        },
    ))
}

/// One page of a list of events, as the local page and a hub's public
/// pages show it: a card per event, and links to the pages around it.
pub(crate) struct ListPage<'a> {
    /// The page's events.
    pub(crate) events: &'a [EventSummary],
    /// What to say when there are none.
    pub(crate) empty: &'a str,
    /// The list's address, for the links to other pages.
    pub(crate) path: &'a str,
    /// The page's number, from 1.
    pub(crate) page: usize,
    /// Whether a next page has events.
    pub(crate) more: bool,
}

impl ListPage<'_> {
    /// The cards and the page links; times also on `viewer`'s clocks.
    pub(crate) fn draw(&self, viewer: Option<Viewer<'_>>) -> Markup {
        let (path, page) = (self.path, self.page);
        html! {
            section #events data-live aria-live="polite" {
                @if self.events.is_empty() { p.empty { (self.empty) } }
                @for e in self.events { (event_card(viewer, e)) }
            }
            nav.pages aria-label="Pages" {
                @if page > 1 { a href=(format!("{path}?page={}", page - 1)) rel="prev" { "← Previous" } " " }
                @if self.more && page < MAX_PAGE { a href=(format!("{path}?page={}", page + 1)) rel="next" { "Next →" } }
            }
        }
    }
}

/// The answer counts of an event, and its places left when it has a
/// capacity.
pub(super) fn counts(s: &EventSummary) -> Markup {
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
                @let left = s.places_left().unwrap_or(0);
                strong { (left) } @if left == 1 { " place left" } @else { " places left" }
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

fn event_card(viewer: Option<Viewer<'_>>, s: &EventSummary) -> Markup {
    let e = &s.state.event;
    html! {
        article.card.cancelled[s.is_cancelled()] {
            h2 {
                a href=(event_path(&s.state.id)) { (e.title) }
                @if s.is_cancelled() { " " span.badge.cancelled { "Cancelled" } }
            }
            p { (when(e, viewer)) }
            @if let Some(place) = &e.location { p.place { "Where: " (place) } }
            p.organizer { "Organized by " (person(s.organizer_name.as_deref(), &s.state.author)) }
            (counts(s))
            @if let Some(text) = my_answer_text(s) {
                p.mine data-status=(my_status_words(s)) { "Your answer: " strong { (text) } }
            }
        }
    }
}
