//! How the page is served ([`WebSettings`]), what every handler shares
//! ([`Web`]), and the one way handlers call the
//! application: on the blocking pool, since a publish syncs the disk and
//! store reads may wait on it.

use std::net::SocketAddr;
use std::sync::Arc;

use jiff::tz::TimeZone;
use tokio::sync::watch;

use super::format::Viewer;
use crate::app::{App, AppError};

/// Largest request body accepted, in bytes: far more than any form needs
/// (an event's description is at most 8 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How the page is served.
#[derive(Clone, Debug, Default)]
pub struct WebSettings {
    /// The access token. Required when listening beyond loopback: every
    /// request must then carry it (a cookie set by `/login` or by
    /// `?token=` on any GET, which is how a calendar app subscribes).
    pub token: Option<String>,
    /// The viewer's IANA time zone: the default of the new-event form, and
    /// the second time shown next to each event's own. An unknown name
    /// falls back to UTC.
    pub zone: String,
    /// This node's invite code (from `Invite::to_code`), shown on the
    /// network page with a copy button; `None` shows how to make one.
    pub invite_code: Option<String>,
    /// Further `Host` header values to accept (e.g. `myhost.lan:7645`
    /// when listening on every interface); see [`super::security::host_allowed`].
    pub extra_hosts: Vec<String>,
}

impl WebSettings {
    /// Settings for a loopback page in the computer's time zone.
    pub fn local() -> WebSettings {
        WebSettings {
            zone: system_zone(),
            ..WebSettings::default()
        }
    }
}

/// The computer's IANA time zone name, or `UTC` when it cannot be told.
pub fn system_zone() -> String {
    crate::app::when::local_zone_name()
        .filter(|name| crate::app::when::zone_named(name).is_ok())
        .unwrap_or_else(|| "UTC".to_owned())
}

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Web(pub(super) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) app: App,
    pub(crate) settings: WebSettings,
    /// The viewer's zone, looked up once.
    pub(crate) viewer_zone: TimeZone,
    /// The per-process secret that forms carry (see [`super::security`]).
    pub(crate) csrf: String,
    /// The address the server listens on (for the `Host` check).
    pub(crate) local_addr: SocketAddr,
    /// IANA zone names for the zone picker, sorted.
    pub(crate) zones: Vec<String>,
    /// Flips to `true` when the server stops, ending live streams (which
    /// would otherwise hold a graceful shutdown open forever).
    pub(crate) stopping: watch::Sender<bool>,
    /// Open live streams, at most [`super::live::MAX_STREAMS`]: each holds a
    /// subscription to the node's changes.
    pub(crate) live_streams: Arc<tokio::sync::Semaphore>,
    /// Whether the node is on a private network (the event form then asks
    /// whether an event may be public on hubs' public pages).
    pub(crate) private_network: bool,
}

impl std::ops::Deref for Web {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Web {
    /// Runs an [`App`] call on the blocking pool (see [`call_app`]).
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&App) -> Result<T, AppError> + Send + 'static,
    ) -> Result<Result<T, AppError>, super::pages::PageError> {
        call_app(&self.app, f).await
    }

    /// The person at the page, whose clock times are also shown on.
    pub(crate) fn viewer(&self) -> Viewer<'_> {
        Viewer {
            zone: &self.viewer_zone,
            name: &self.settings.zone,
        }
    }
}

/// Runs an [`App`] call on the blocking pool. The outer error is the
/// page's (the task died); the inner one is the call's, for the caller
/// to place on a form or turn into the page's error.
pub(crate) async fn call_app<T: Send + 'static>(
    app: &App,
    f: impl FnOnce(&App) -> Result<T, AppError> + Send + 'static,
) -> Result<Result<T, AppError>, super::pages::PageError> {
    on_blocking_pool(app, f).await
}

/// [`call_app`] for a call with an outcome of its own (an error type
/// other than [`AppError`]).
pub(crate) async fn on_blocking_pool<R: Send + 'static>(
    app: &App,
    f: impl FnOnce(&App) -> R + Send + 'static,
) -> Result<R, super::pages::PageError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || f(&app))
        .await
        .map_err(|e| super::pages::PageError::Internal(format!("the request's task failed: {e}")))
}
