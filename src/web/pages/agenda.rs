//! The agenda: my answers to upcoming events.

use axum::extract::State;
use maud::{Markup, html};

use super::layout::{Nav, PageError, blocking, layout};
use crate::app::AgendaItem;
use crate::app::now_ms;
use crate::web::format::{admission_words, answer_word, when};
use crate::web::paths::{event_key, event_path};
use crate::web::state::Web;

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
                            p { (when(&item.state.event, Some(web.viewer()))) }
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
