//! What every page shares: the frame with the main tabs, the error page,
//! and running an application call off the async threads.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use crate::app::{App, AppError};
use crate::web::state::{Web, call_app};

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
            AppError::UnknownComment(_) => {
                PageError::NotFound("There is no such comment on this event.".into())
            }
            e @ (AppError::NotOrganizer { .. }
            | AppError::NotCommentAuthor { .. }
            | AppError::ReadOnly
            | AppError::OwnFeed) => PageError::Forbidden(e.to_string()),
            e @ (AppError::Cancelled { .. }
            | AppError::CommentRemoved(_)
            | AppError::CommentsClosed { .. }
            | AppError::NothingToChange(_)) => PageError::Conflict(e.to_string()),
            e => {
                tracing::error!(error = %e, "web page failed");
                PageError::Internal(e.to_string())
            }
        }
    }
}

impl PageError {
    /// The error as a page in `site`'s frame.
    pub(crate) fn into_page(self, site: Site<'_>) -> Response {
        let (status, title, text) = match self {
            PageError::NotFound(t) => (StatusCode::NOT_FOUND, "Not found", t),
            PageError::Forbidden(t) => (StatusCode::FORBIDDEN, "Not allowed", t),
            PageError::Conflict(t) => (StatusCode::CONFLICT, "Not possible now", t),
            PageError::Internal(t) => (StatusCode::INTERNAL_SERVER_ERROR, "Something failed", t),
        };
        let body = frame(
            title,
            site,
            html! { h1 { (title) } p { (text) } p { a href="/" { "Back to upcoming events" } } },
        );
        (status, body).into_response()
    }
}

impl IntoResponse for PageError {
    /// The error page of the local page.
    fn into_response(self) -> Response {
        self.into_page(Site::Local {
            nav: Nav::None,
            live_on: "",
            event: None,
        })
    }
}

/// Runs an [`App`] call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    web: &Web,
    f: impl FnOnce(&App) -> Result<T, AppError> + Send + 'static,
) -> Result<T, PageError> {
    blocking_on(&web.app, f).await
}

/// [`blocking`] for a server that shares no [`Web`] (a hub's public pages).
pub(crate) async fn blocking_on<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&App) -> Result<T, AppError> + Send + 'static,
) -> Result<T, PageError> {
    call_app(app, f).await?.map_err(PageError::from)
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

/// Which site a page belongs to, and what that site puts around it.
pub(crate) enum Site<'a> {
    /// The person's own page: the main tabs and the live script.
    /// `live_on` lists the kinds of change (see `live`) after which the
    /// script refreshes the page's live parts; `event` narrows `events`
    /// changes to one event.
    Local {
        /// The tab the page belongs to.
        nav: Nav,
        /// The kinds of change the page listens to.
        live_on: &'a str,
        /// The page key of the page's event.
        event: Option<&'a str>,
    },
    /// A hub's public pages: no live script (reading needs none; an
    /// event's page adds its answer form's own two),
    /// one tab, and `meta` (the tags for link previews) in the head.
    Public {
        /// Whether the page is the list of upcoming events.
        on_list: bool,
        /// Extra tags in the head.
        meta: Markup,
    },
}

/// The frame of every local page (see [`Site::Local`]).
pub(crate) fn layout(
    title: &str,
    nav: Nav,
    live_on: &str,
    event: Option<&str>,
    main: Markup,
) -> Markup {
    frame(
        title,
        Site::Local {
            nav,
            live_on,
            event,
        },
        main,
    )
}

/// The frame of every page of either site: the head, the skip link, the
/// header with the site's tabs, and `main`.
pub(crate) fn frame(title: &str, site: Site<'_>, main: Markup) -> Markup {
    let tab = |current: bool, href: &str, label: &str| {
        html! {
            li { a href=(href) aria-current=[current.then_some("page")] { (label) } }
        }
    };
    let (tabs, live_on, event, meta, script) = match site {
        Site::Local {
            nav,
            live_on,
            event,
        } => (
            html! {
                (tab(nav == Nav::Upcoming, "/", "Upcoming"))
                (tab(nav == Nav::Past, "/past", "Past"))
                (tab(nav == Nav::New, "/new", "New event"))
                (tab(nav == Nav::Agenda, "/agenda", "My agenda"))
                (tab(nav == Nav::Network, "/network", "People & network"))
            },
            Some(live_on),
            event,
            None,
            true,
        ),
        Site::Public { on_list, meta } => (
            html! { (tab(on_list, "/", "Upcoming events")) },
            None,
            None,
            Some(meta),
            false,
        ),
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " · potluck" }
                @if let Some(meta) = meta { (meta) }
                link rel="stylesheet" href="/static/style.css";
                link rel="icon" type="image/svg+xml" href="/static/icon.svg";
                @if script { script src="/static/live.js" defer {} }
            }
            body data-live-on=[live_on] data-event=[event] {
                a.skip href="#main" { "Skip to content" }
                header.site {
                    a.brand href="/" { "potluck" }
                    nav aria-label="Main" { ul { (tabs) } }
                    // Browser notifications, opt-in (docs/reminders.md):
                    // shown by live.js where the browser can show them.
                    @if script {
                        button #remind-browser type="button" hidden {
                            "Remind me in this browser"
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
