//! The fields of an event as a form: empty for a new event, filled from
//! the event for an edit.

use axum::extract::State;
use maud::{Markup, html};

use super::form::field_error;
use super::form::{CHECKED, FormState, Input, csrf, form_error};
use super::layout::{Nav, layout};
use crate::app::EventDetail;
use crate::content::{CommentPolicy, MAX_TITLE_CHARS};
use crate::web::state::Web;

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
    form.set("comments", e.comments.as_str());
    for (name, on) in [
        ("unlisted", e.unlisted),
        ("public", e.public),
        ("closed_to_web", e.closed_to_web),
    ] {
        if on {
            form.set(name, CHECKED);
        }
    }
    form
}

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
        (comments_field(prefix, form))
        fieldset.public-pages {
            legend { "On hubs' public web pages" }
            // Only a private network asks for consent first (docs/hub.md).
            @if web.private_network {
                (Input::new(prefix, "public", "Public").kind("checkbox").hint("this network's hubs may show it on their public web pages, where their operator turned them on; without it they never do").draw(form))
                (Input::new(prefix, "unlisted", "Unlisted").kind("checkbox").hint("when public, shown only to people who have its link, not in the hubs' lists").draw(form))
            } @else {
                (Input::new(prefix, "unlisted", "Unlisted").kind("checkbox").hint("your hubs' public web pages show it only to people who have its link; otherwise they list it with your other upcoming events").draw(form))
            }
            (Input::new(prefix, "closed_to_web", "No answers from browsers").kind("checkbox").hint("people who open the hub's page cannot answer there; people with potluck still can").draw(form))
        }
    }
}

/// Whose comments the event's thread shows.
fn comments_field(prefix: &str, form: &FormState) -> Markup {
    let id = format!("{prefix}comments");
    let chosen = match form.value("comments") {
        "" => CommentPolicy::Everyone.as_str(),
        other => other,
    };
    html! {
        div.field {
            label for=(id) { "Comments" }
            select id=(id) name="comments"
                aria-invalid=[form.error("comments").map(|_| "true")]
                aria-describedby=[form.error("comments").map(|_| format!("{id}-error"))] {
                @for (policy, words) in [
                    (CommentPolicy::Everyone, "from everyone"),
                    (CommentPolicy::Answered, "from people who answered"),
                    (CommentPolicy::Nobody, "closed (only yours)"),
                ] {
                    option value=(policy.as_str()) selected[policy.as_str() == chosen] { (words) }
                }
            }
            small.hint { "Whose comments every node shows under the event. Nothing signed is deleted: other people's nodes keep what was written, and just do not show it." }
            (field_error(prefix, form, "comments"))
        }
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
