//! Small pieces of HTML shared by the pages: times in two zones, people,
//! answers and admission states, and descriptions with their web links.

use jiff::tz::TimeZone;
use maud::{Markup, html};

use crate::app::AdmissionStatus;
use crate::app::when;
use crate::content::{Event, EventTime, RsvpStatus, TextPart, split_links};

/// Whose clocks a page shows times on besides each event's own zone.
#[derive(Clone, Copy)]
pub(crate) struct Viewer<'a> {
    /// The viewer's zone.
    pub(crate) zone: &'a TimeZone,
    /// Its IANA name.
    pub(crate) name: &'a str,
}

/// When an event happens: in its own zone (see [`when::event_span`]),
/// and in the `viewer`'s when their clocks read differently. A hub's
/// public pages have no viewer: without a script they cannot know a
/// visitor's zone.
pub(crate) fn when(event: &Event, viewer: Option<Viewer<'_>>) -> Markup {
    let start = event.start.timestamp();
    let end = event.end.as_ref().map(EventTime::timestamp);
    let zone = when::event_zone(event);
    let other = viewer.filter(|v| {
        zone.to_offset(start) != v.zone.to_offset(start)
            || end.is_some_and(|e| zone.to_offset(e) != v.zone.to_offset(e))
    });
    html! {
        span.when {
            time datetime=(event.start.as_str()) { (when::event_span(event, None)) }
            @if let Some(name) = zone.iana_name() { " " span.zone { "(" (name) ")" } }
        }
        @if let Some(v) = other {
            br;
            span.when.viewer {
                "Your time: " (when::event_span(event, Some(v.zone))) " " span.zone { "(" (v.name) ")" }
            }
        }
    }
}

/// An answer in words.
pub(crate) fn answer_word(status: RsvpStatus) -> &'static str {
    match status {
        RsvpStatus::Going => "going",
        RsvpStatus::Maybe => "maybe",
        RsvpStatus::NotGoing => "not going",
    }
}

/// An admission state in words (`admitted`, `waitlisted (number 2 in
/// line)`, `pending`).
pub(crate) fn admission_words(status: AdmissionStatus, position: Option<usize>) -> String {
    match (status, position) {
        (AdmissionStatus::Waitlisted, Some(p)) => format!("waitlisted (number {p} in line)"),
        (s, _) => s.as_str().to_owned(),
    }
}

/// Text with its `http:` and `https:` links made clickable; everything
/// else (other schemes included) stays text, escaped.
pub(crate) fn linkify(text: &str) -> Markup {
    links_with_rel(text, "noopener noreferrer nofollow")
}

/// A comment's text as [`linkify`] makes it, its links marked as content
/// written by the people of the thread (`ugc`).
pub(crate) fn linkify_comment(text: &str) -> Markup {
    links_with_rel(text, "noopener noreferrer nofollow ugc")
}

/// `text`, escaped, with its web links as links with `rel`.
fn links_with_rel(text: &str, rel: &str) -> Markup {
    html! {
        @for part in split_links(text) {
            @match part {
                TextPart::Link(link) => a href=(link) rel=(rel) { (link) },
                TextPart::Plain(plain) => (plain),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::is_web_link;

    #[test]
    fn only_web_links_become_links_and_the_rest_is_escaped() {
        let html = linkify(
            "See https://example.org/a?b=1&c=2. Not javascript:alert(1) nor <b>bold</b>, \
             http://x.test)",
        )
        .into_string();
        assert!(
            html.contains(r#"<a href="https://example.org/a?b=1&amp;c=2""#),
            "{html}"
        );
        assert!(html.contains(r#"<a href="http://x.test""#), "{html}");
        assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"), "{html}");
        assert!(!html.contains("href=\"javascript"), "{html}");
        assert_eq!(html.matches("<a ").count(), 2, "{html}");
    }

    #[test]
    fn a_bare_scheme_is_not_a_link() {
        assert!(!is_web_link("http://"));
        assert!(is_web_link("HTTPS://example.org"));
        assert!(!is_web_link("javascript:alert(1)"));
        assert_eq!(linkify("http://").into_string(), "http://");
    }
}
