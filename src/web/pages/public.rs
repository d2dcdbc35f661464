//! A hub's public pages: the list of its members' upcoming events and one
//! event's page, read-only. They are the local page's parts (the frame,
//! the cards, the event's summary and answers) in the public frame
//! ([`Site::Public`]), plus what only they need: the words that say what
//! is public, and the tags that make a pasted link preview with the
//! title, the date and the place.

use maud::{Markup, html};

use super::event::{people_section, summary_block};
use super::layout::{Site, frame};
use super::lists::ListPage;
use super::thread::public_thread_section;
use crate::app::{EventDetail, Reach, SharedLink, ThreadView, when};
use crate::content::{MAX_GUESTS, MAX_NAME_CHARS};
use crate::web::paths::event_path;

/// What a link preview shows (Open Graph and the standard tags).
struct Preview<'a> {
    title: &'a str,
    description: String,
    /// The page's own address, when the hub knows its public address.
    url: Option<String>,
    /// Keep search engines away (an unlisted event).
    hidden: bool,
}

impl Preview<'_> {
    /// The tags, every value escaped by `maud` like all page text.
    fn tags(&self) -> Markup {
        html! {
            meta name="description" content=(self.description);
            @if self.hidden { meta name="robots" content="noindex"; }
            meta property="og:type" content="website";
            meta property="og:site_name" content="potluck";
            meta property="og:title" content=(self.title);
            meta property="og:description" content=(self.description);
            @if let Some(url) = &self.url {
                meta property="og:url" content=(url);
                link rel="canonical" href=(url);
            }
            meta name="twitter:card" content="summary";
        }
    }
}

/// `/`: the members' upcoming events that the hub lists.
pub(crate) fn public_list_page(base_url: Option<&str>, list: &ListPage<'_>) -> Markup {
    let title = "Upcoming events";
    let preview = Preview {
        title,
        description: "Upcoming events of this potluck hub's members.".into(),
        url: base_url.map(|base| format!("{base}/")),
        hidden: false,
    };
    frame(
        title,
        Site::Public {
            on_list: true,
            meta: preview.tags(),
        },
        html! {
            h1 { (title) }
            p.small { "Events the members of this potluck hub announced. Open one to see who is coming." }
            (list.draw(None))
        },
    )
}

/// `/e/{key}`: one event, with every answer.
pub(crate) fn public_event_page(
    base_url: Option<&str>,
    detail: &EventDetail,
    reach: Reach,
    closed: Option<&str>,
    (thread, links): &(ThreadView, Vec<SharedLink>),
) -> Markup {
    let s = &detail.summary;
    let e = &s.state.event;
    // The date and place, as a preview shows them under the title.
    let mut description = when::event_span(e, None);
    if let Some(place) = &e.location {
        description.push_str(" · ");
        description.push_str(place);
    }
    if s.is_cancelled() {
        description.insert_str(0, "Cancelled: ");
    }
    let preview = Preview {
        title: &e.title,
        description,
        url: base_url.map(|base| format!("{base}{}", event_path(&s.state.id))),
        hidden: reach != Reach::Listed,
    };
    frame(
        &e.title,
        Site::Public {
            on_list: false,
            meta: preview.tags(),
        },
        html! {
            article.event {
                (summary_block(None, s))
                @if reach == Reach::LinkOnly {
                    p.small { "This event is unlisted: it is not in this hub's list of events, and people reach it by its link." }
                }
                section #public aria-labelledby="public-title" {
                    h2 #public-title { "What is public here" }
                    p {
                        "Anyone with this link can read this page: the event as its organizer announced it, "
                        "and for each answer the answer itself, the name its author gives, the number of guests "
                        "and any note, and the comments its organizer shows. They are signed messages that every "
                        "potluck node holding this event can read."
                    }
                    p {
                        "An answer given below is public too: the answer, the name you give and the number "
                        "of guests. People who use potluck can also answer from their own node."
                    }
                }
                (answer_section(detail, closed))
                (people_section(detail))
                (public_thread_section(thread, links, &when::event_zone(e)))
            }
        },
    )
}

/// The answer form, driven by `feed.js` and `answer.js`: hidden until the
/// script finds a browser that can keep a key and sign; without one (or
/// without scripts) the note in its place explains. `closed` says why
/// the event takes no answers from browsers, if it does not.
fn answer_section(detail: &EventDetail, closed: Option<&str>) -> Markup {
    let state = &detail.summary.state;
    html! {
        section #answer aria-labelledby="answer-title" data-event=(state.id) data-revision=(state.revision) {
            h2 #answer-title { "Your answer" }
            @if let Some(reason) = closed {
                p { (reason) ": this page takes no answers. People who use potluck can still answer from their own node." }
            } @else {
                p #answer-note {
                    "Answering here needs a recent browser with JavaScript on (Chrome or Edge 137, "
                    "Firefox 129, Safari 17 or later), which keeps a key for you. People who use potluck "
                    "can answer from their own node."
                }
                form #answer-form hidden {
                    fieldset {
                        legend { "Will you come?" }
                        @for (value, label) in [("going", "Going"), ("maybe", "Maybe"), ("not-going", "Not going")] {
                            label.choice {
                                input type="radio" name="status" value=(value) required;
                                " " (label)
                            }
                        }
                    }
                    p {
                        label for="answer-name" { "Your name" }
                        input #answer-name type="text" name="name" maxlength=(MAX_NAME_CHARS) autocomplete="name" required;
                    }
                    p {
                        label for="answer-guests" { "Guests you bring" }
                        input #answer-guests type="number" name="guests" min="0" max=(MAX_GUESTS) value="0" inputmode="numeric";
                    }
                    p.small {
                        "What becomes public: your answer, the name you give and the number of guests. "
                        "This browser makes a key for you and signs them; this hub and every potluck node "
                        "that holds this event keep them, and anyone with this link sees them. "
                        "Answering again from this browser changes your answer."
                    }
                    p { button type="submit" { "Send my answer" } }
                }
                p #answer-status role="status" aria-live="polite" {}
            }
        }
        @if closed.is_none() {
            script src="/static/feed.js" defer {}
            script src="/static/answer.js" defer {}
        }
    }
}
