//! What every page shares: the frame with the main tabs, the error page,
//! and running an application call off the async threads.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::app::{App, AppError};
use crate::web::state::Web;

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
            AppError::UnknownEvent(_)
            | AppError::AmbiguousEvent { .. }
            | AppError::PrefixTooShort(_) => {
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
    web.call(f).await?.map_err(PageError::from)
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
                link rel="icon" type="image/svg+xml" href="/static/icon.svg";
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

/// Any other address.
pub(crate) async fn not_found() -> PageError {
    PageError::NotFound("There is no page at this address.".into())
}

/// The status of a form page sent back with errors.
pub(crate) const FORM_ERROR_STATUS: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
