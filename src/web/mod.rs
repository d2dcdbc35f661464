//! The web page: a local site served by `potluck serve`, through which a
//! person reads events, answers them, announces their own and watches the
//! network, in a browser, live, and offline.
//!
//! Plain server-rendered HTML ([`maud`], which escapes everything unless
//! told otherwise) with forms, so every action works without JavaScript;
//! a small script (`assets/live.js`) listens to `GET /events` (server-sent
//! events fed by [`App::subscribe`]) and refreshes the parts of the page
//! marked live. The CSS and the script are compiled into the binary.
//!
//! The page can publish under the person's key, so it is guarded as the
//! key is (see [`security`]): the `Host` header must name this server
//! (DNS rebinding), every POST carries a per-process CSRF token and must
//! not come from another site (`Origin`, `Sec-Fetch-Site`), GETs change
//! nothing, a Content-Security-Policy forbids inline scripts and framing,
//! and, when the server listens beyond loopback, an access token is
//! required.
//!
//! Every [`App`] call runs on the blocking pool (`spawn_blocking`): a
//! publish syncs the disk, and store reads may wait on it.

mod actions;
mod answer;
mod calendar;
pub mod client_ip;
mod comment_actions;
mod format;
mod live;
mod pages;
mod paths;
pub mod public;
pub mod security;
mod state;
pub mod tls;
pub mod wallclock;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use jiff::tz::TimeZone;
use tokio::sync::watch;

pub use client_ip::ClientIp;
pub use paths::{event_key, event_path, parse_event_key};
pub use public::{
    PublicSettings, PublicTransport, ServePublicError, public_router, serve_front, serve_public,
};
pub(crate) use state::{Inner, Web};
pub use state::{MAX_BODY_BYTES, WebSettings, system_zone};
pub use tls::{PublicTls, TlsError};

use crate::app::App;

/// The page's routes with every security layer, for a server listening
/// on `local_addr`. [`serve`] uses it; tests drive it directly.
pub fn router(app: App, settings: WebSettings, local_addr: SocketAddr) -> Router {
    router_with_stop(app, settings, local_addr).0
}

fn router_with_stop(
    app: App,
    settings: WebSettings,
    local_addr: SocketAddr,
) -> (Router, watch::Sender<bool>) {
    let viewer_zone = crate::app::when::zone_named(&settings.zone).unwrap_or_else(|_| {
        tracing::warn!(zone = %settings.zone, "unknown time zone for the page; using UTC");
        TimeZone::UTC
    });
    let (stopping, _) = watch::channel(false);
    let private_network = app.network_is_private();
    let web = Web(Arc::new(Inner {
        private_network,
        app,
        settings,
        viewer_zone,
        csrf: security::new_secret(),
        local_addr,
        zones: zone_names(),
        stopping: stopping.clone(),
        live_streams: Arc::new(tokio::sync::Semaphore::new(live::MAX_STREAMS)),
    }));
    let routes = Router::new()
        .route("/", get(pages::upcoming))
        .route("/past", get(pages::past))
        .route("/e/{key}", get(pages::event))
        .route("/e/{key}/event.ics", get(calendar::one_event))
        .route("/e/{key}/rsvp", post(actions::rsvp))
        .route("/e/{key}/edit", post(actions::edit))
        .route("/e/{key}/cancel", post(actions::cancel))
        .route("/e/{key}/comment", post(comment_actions::comment))
        .route("/e/{key}/comment/edit", post(comment_actions::edit))
        .route("/e/{key}/comment/delete", post(comment_actions::delete))
        .route("/e/{key}/comment/hide", post(comment_actions::hide))
        .route("/new", get(pages::new_event).post(actions::new_event))
        .route("/agenda", get(pages::agenda))
        .route("/network", get(pages::network))
        .route("/network/name", post(actions::set_name))
        .route("/network/contact", post(actions::contact))
        .route("/network/join", post(actions::join))
        .route("/network/hub", post(actions::join_hub))
        .route("/login", get(pages::login).post(actions::login))
        .route("/events", get(live::events))
        .route("/calendar.ics", get(calendar::feed))
        .route("/static/style.css", get(style))
        .route("/static/live.js", get(script))
        .route("/static/feed.js", get(feed_script))
        // Browsers ask for `/favicon.ico` whatever the page links.
        .route("/static/icon.svg", get(icon))
        .route("/favicon.ico", get(icon))
        .fallback(pages::not_found);
    let router = security::layer(routes, web.clone())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(web);
    (router, stopping)
}

/// Serves the page on `listener` until `shutdown` completes; then stops
/// accepting, ends the live streams and waits for requests in flight.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    settings: WebSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local_addr = listener.local_addr()?;
    check_exposure(local_addr, &settings)?;
    let (router, stopping) = router_with_stop(app, settings, local_addr);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopping.send_replace(true);
        })
        .await
}

/// Refuses (`PermissionDenied`) to serve the page beyond loopback
/// without an access token: whoever reaches the page can publish under
/// the person's key.
pub fn check_exposure(local_addr: SocketAddr, settings: &WebSettings) -> std::io::Result<()> {
    if settings.token.is_none() && !local_addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "the page would listen on {local_addr}, beyond this computer, without an access \
                 token; listen on 127.0.0.1 or set a token"
            ),
        ));
    }
    Ok(())
}

/// Every IANA name of the bundled database that the content rules accept
/// (exact spelling), sorted.
fn zone_names() -> Vec<String> {
    let mut names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_owned())
        .filter(|n| crate::content::validate_tz(n).is_ok())
        .collect();
    names.sort();
    names.dedup();
    names
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/style.css"),
    )
}

async fn script() -> impl IntoResponse {
    javascript(include_str!("assets/live.js"))
}

/// The feed library for guests who answer from a browser with no install
/// (docs/browser-keys.md). A hub's public event pages load it; the local
/// page serves it too, so that the browser test runs it from a real node.
async fn feed_script() -> impl IntoResponse {
    javascript(include_str!("assets/feed.js"))
}

fn javascript(source: &'static str) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        source,
    )
}

/// The page's icon (browsers take an SVG icon at any address).
async fn icon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        include_str!("assets/icon.svg"),
    )
}
