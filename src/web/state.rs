//! What every handler shares ([`Web`]), and the one way handlers call the
//! application: on the blocking pool, since a publish syncs the disk and
//! store reads may wait on it.

use std::net::SocketAddr;
use std::sync::Arc;

use jiff::tz::TimeZone;
use tokio::sync::watch;

use super::WebSettings;
use crate::app::{App, AppError};

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
}

impl std::ops::Deref for Web {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Web {
    /// Runs an [`App`] call on the blocking pool. The outer error is the
    /// page's (the task died); the inner one is the call's, for the caller
    /// to place on a form or turn into the page's error.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&App) -> Result<T, AppError> + Send + 'static,
    ) -> Result<Result<T, AppError>, super::pages::PageError> {
        let app = self.app.clone();
        tokio::task::spawn_blocking(move || f(&app))
            .await
            .map_err(|e| {
                super::pages::PageError::Internal(format!("the request's task failed: {e}"))
            })
    }
}
