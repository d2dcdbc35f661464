//! A hub's public pages (`potluck serve --hub --public-web ADDR`): the
//! members' events, read-only, for anyone with a link, at an address of
//! their own. The operator's own page stays on loopback, unchanged.
//!
//! Another front end behind [`App`]: each page is one app call
//! ([`App::public_events`], [`App::public_event`]) on the blocking pool,
//! which applies the rule of what is shown ([`crate::app::reach`]). The
//! pages reuse the local page's parts (`pages/public.rs`).
//!
//! What the server guards, since anyone on the internet reaches it:
//!
//! - **Nothing changes state but an answer.** GET and HEAD only
//!   (anything else: 405), but for `POST /e/{key}/answer`, where a guest's
//!   browser sends the messages it signed (`web/answer.rs`); no login, no
//!   cookie; the only scripts are the server's own (`feed.js` and
//!   `answer.js`, for answering; reading needs none).
//! - **Headers** as on the local page ([`super::security`]): a CSP of
//!   the server's own files only (no inline script or style, no framing),
//!   `nosniff`, referrers only to the site itself; the pages make no
//!   request to any other site.
//! - **Bounds**: at most [`MAX_PUBLIC_CONNECTIONS`] connections at once
//!   (further ones wait in the kernel's backlog), each closed after
//!   [`PUBLIC_IDLE`] without a byte either way; request bodies bounded as
//!   on the local page ([`MAX_BODY_BYTES`]); the list reads the
//!   upcoming-events index, never every message.
//! - No `Host` check: the pages are public under any name, and can
//!   publish nothing (the local page's check keeps other sites from
//!   reaching a page that can).
//!
//! - **HTTPS** when the operator gives a certificate ([`super::tls`]):
//!   then every connection is TLS, its handshake bounded, and every
//!   response carries HSTS.
//! - **The client's address** for limits per address
//!   ([`super::client_ip`]): the connection's peer, or behind the
//!   operator's trusted reverse proxy, the client it names.
//!
//! `accept` makes the one listener every connection comes through, and
//! [`serve_front`] the one server over it.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::Markup;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower_http::compression::CompressionLayer;

use super::answer::{answer_routes, answer_script};
use super::client_ip::Peer;
use super::pages::{
    ListPage, PAGE_SIZE, PageError, Site, after_param, blocking_on, load_thread, page_number,
    public_event_page, public_list_page,
};
use super::paths::parse_event_key;
use super::state::MAX_BODY_BYTES;
use super::tls::{MaybeTls, PublicTls, TlsError};
use crate::app::{App, GuestLimits, PublicNetwork, WebAnswers, closed_to_web, now_ms};

/// Most connections the public pages hold at once: each costs a task and
/// buffers, and a client may open many.
pub const MAX_PUBLIC_CONNECTIONS: usize = 256;

/// How long a connection may send and receive nothing before it is
/// closed: a slot is not held by a client that went quiet (or that
/// trickles nothing at all after connecting).
pub const PUBLIC_IDLE: Duration = Duration::from_secs(30);

/// How the public pages are served.
#[derive(Clone, Debug)]
pub struct PublicSettings {
    /// Which events they show.
    pub network: PublicNetwork,
    /// The address people open them at (`"public_url"`), without a
    /// trailing `/`: the pages then name their own address in previews.
    pub base_url: Option<String>,
    /// The limits on answers from browsers (`"web_answers"`).
    pub answers: GuestLimits,
}

/// How the public pages' server meets the network, apart from what it
/// serves: TLS, and whose `X-Forwarded-For` it believes.
#[derive(Clone, Debug, Default)]
pub struct PublicTransport {
    /// The certificate to serve HTTPS with (`--tls-cert`/`--tls-key`,
    /// `"public_tls"`); `None`: plain HTTP.
    pub tls: Option<Arc<PublicTls>>,
    /// The reverse proxy whose `X-Forwarded-For` names the client
    /// (`"public_trusted_proxy"`); `None`: the header is ignored.
    pub trusted_proxy: Option<IpAddr>,
}

/// What every handler shares.
#[derive(Clone)]
struct Public(Arc<(App, PublicSettings)>);

impl Public {
    fn app(&self) -> &App {
        &self.0.0
    }

    fn settings(&self) -> &PublicSettings {
        &self.0.1
    }
}

/// A page's error, as a page in the public frame.
struct PublicError(PageError);

impl From<PageError> for PublicError {
    fn from(e: PageError) -> PublicError {
        PublicError(e)
    }
}

impl IntoResponse for PublicError {
    fn into_response(self) -> Response {
        self.0.into_page(Site::Public {
            on_list: false,
            meta: Markup::default(),
        })
    }
}

/// The public pages' routes with their guards. [`serve_public`] uses it;
/// tests drive it directly.
pub fn public_router(app: App, settings: PublicSettings) -> Router {
    let answers = answer_routes(
        app.clone(),
        settings.network,
        WebAnswers::new(settings.answers.clone()),
    );
    let reads = Router::new()
        .route("/", get(list))
        .route("/e/{key}", get(event))
        .route("/static/style.css", get(super::style))
        .route("/static/icon.svg", get(super::icon))
        .route("/static/feed.js", get(super::feed_script))
        .route("/static/answer.js", get(answer_script))
        .route("/favicon.ico", get(super::icon))
        .fallback(not_found)
        .layer(middleware::from_fn(only_reads))
        // Gzip for browsers that ask: a busy event's page is 100 KB of
        // answers, a fifth of that gzipped, on a guest's phone. These
        // pages hold nothing secret (no cookie, no token), so compressing
        // them leaks nothing (BREACH needs a secret beside attacker text).
        .layer(CompressionLayer::new().gzip(true))
        .with_state(Public(Arc::new((app, settings))));
    // The answer routes take the one POST, with a bound of their own.
    reads
        .merge(answers)
        .layer(middleware::from_fn(super::security::headers))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Why the public pages' server stopped, or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServePublicError {
    /// The TLS settings cannot be made.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Serving failed.
    #[error("the public pages' server failed: {0}")]
    Io(#[from] io::Error),
}

/// Serves the public pages on `listener`, over `transport`, until
/// `shutdown` completes; then stops accepting and waits for requests in
/// flight.
pub async fn serve_public(
    app: App,
    listener: TcpListener,
    settings: PublicSettings,
    transport: PublicTransport,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServePublicError> {
    serve_front(public_router(app, settings), listener, transport, shutdown).await
}

/// Serves `router` as the public pages are served: through the bounded
/// listener, over TLS and with HSTS when `transport` has a certificate,
/// and with each request's [`ClientIp`](super::ClientIp) in its
/// extensions. [`serve_public`] uses it; tests serve routes of their own
/// with it.
pub async fn serve_front(
    router: Router,
    listener: TcpListener,
    transport: PublicTransport,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServePublicError> {
    let acceptor = transport
        .tls
        .as_ref()
        .map(|tls| tls.acceptor())
        .transpose()?;
    let mut router = router.layer(middleware::from_fn_with_state(
        transport.trusted_proxy,
        super::client_ip::layer,
    ));
    if acceptor.is_some() {
        router = router.layer(middleware::from_fn(super::tls::hsts));
    }
    let bounds = Bounds {
        connections: MAX_PUBLIC_CONNECTIONS,
        idle: PUBLIC_IDLE,
    };
    // Answers are counted per client address (`web_answers`' limits):
    // the connection's peer, or the client a trusted proxy names
    // (`ClientIp`, set by the layer above from this connect info).
    axum::serve(
        accept(listener, bounds, acceptor),
        router.into_make_service_with_connect_info::<Peer>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}

/// What the public pages' listener bounds.
#[derive(Clone, Copy, Debug)]
struct Bounds {
    /// Connections held at once ([`MAX_PUBLIC_CONNECTIONS`]).
    connections: usize,
    /// Quiet time after which a connection is closed ([`PUBLIC_IDLE`]).
    idle: Duration,
}

/// The one listener the public pages accept connections through, with
/// their bounds, over TLS with `tls`.
fn accept(listener: TcpListener, bounds: Bounds, tls: Option<TlsAcceptor>) -> Bounded {
    Bounded {
        listener,
        slots: Arc::new(Semaphore::new(bounds.connections)),
        idle: bounds.idle,
        tls,
    }
}

/// axum's own connection address is for its `TcpListener` only; this
/// gives handlers the peer of a `Bounded` connection.
impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Bounded>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Bounded>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// A listener that holds at most so many connections.
struct Bounded {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    idle: Duration,
    tls: Option<TlsAcceptor>,
}

impl axum::serve::Listener for Bounded {
    type Io = MaybeTls<Quiet>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (MaybeTls<Quiet>, SocketAddr) {
        // A slot first: beyond the limit, connections wait in the kernel's
        // backlog instead of in this process.
        let Ok(slot) = self.slots.clone().acquire_owned().await else {
            // The semaphore is never closed; should it be, accept nothing.
            return std::future::pending().await;
        };
        let (stream, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        let quiet = Quiet {
            stream,
            idle: Box::pin(tokio::time::sleep(self.idle)),
            idle_for: self.idle,
            _slot: slot,
        };
        // The handshake, if any, runs later on the connection's own task.
        (MaybeTls::new(quiet, self.tls.as_ref()), addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// A connection that fails once its quiet time passes without a byte
/// read or written, and gives its slot back when it ends.
struct Quiet {
    stream: TcpStream,
    idle: Pin<Box<Sleep>>,
    idle_for: Duration,
    _slot: OwnedSemaphorePermit,
}

impl Quiet {
    /// What a read or write that was `polled` comes to: progress starts
    /// the quiet time again; while it waits, the quiet time running out
    /// (the timer wakes the task then) is an error.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending if self.idle.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "a public-page connection was quiet too long",
                )))
            }
            Poll::Pending => Poll::Pending,
            ready => {
                let until = Instant::now() + self.idle_for;
                self.idle.as_mut().reset(until);
                ready
            }
        }
    }
}

impl AsyncRead for Quiet {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        self.watch(cx, polled)
    }
}

impl AsyncWrite for Quiet {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// GET and HEAD only: the public pages change nothing.
async fn only_reads(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let mut resp = (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "These pages can only be read (GET and HEAD).\n",
    )
        .into_response();
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    resp
}

/// `GET /` (`?page=N` for the next ones): the listed upcoming events,
/// soonest first.
async fn list(State(public): State<Public>, uri: Uri) -> Result<Markup, PublicError> {
    let page = page_number(&uri);
    let network = public.settings().network;
    let now = now_ms();
    let (events, more) = blocking_on(public.app(), move |app| {
        app.public_events(
            network,
            now,
            (page - 1).saturating_mul(PAGE_SIZE),
            PAGE_SIZE,
        )
    })
    .await?;
    let shown = ListPage {
        events: &events,
        empty: "No upcoming events to show.",
        path: "/",
        page,
        more,
    };
    Ok(public_list_page(
        public.settings().base_url.as_deref(),
        &shown,
    ))
}

/// `GET /e/{key}`: one event, if the public pages show it.
async fn event(
    State(public): State<Public>,
    Path(key): Path<String>,
    uri: Uri,
) -> Result<Markup, PublicError> {
    let id = parse_event_key(&key).ok_or_else(no_such_event)?;
    let network = public.settings().network;
    let after = after_param(&uri);
    let (detail, reach, thread) = blocking_on(public.app(), move |app| {
        let (detail, reach) = app.public_event(network, &id)?;
        Ok((detail, reach, load_thread(app, &id, after)?))
    })
    .await
    .map_err(|e| match e {
        PageError::NotFound(_) => no_such_event(),
        e => PublicError(e),
    })?;
    Ok(public_event_page(
        public.settings().base_url.as_deref(),
        &detail,
        reach,
        closed_to_web(
            &detail.summary.state,
            public.settings().answers.enabled,
            now_ms(),
        ),
        &thread,
    ))
}

/// Unknown, hidden and malformed event addresses all read the same, so
/// that a link tells a stranger nothing about what the hub holds.
fn no_such_event() -> PublicError {
    PublicError(PageError::NotFound(
        "There is no such event here: it is unknown to this hub, or its organizer has not made \
         it public."
            .into(),
    ))
}

/// Any other address.
async fn not_found() -> PublicError {
    PublicError(PageError::NotFound(
        "There is no page at this address.".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The listener holds at most its number of connections (the next
    /// waits in the backlog) and closes a quiet one, which frees its slot.
    #[tokio::test]
    async fn connections_are_bounded_and_quiet_ones_closed() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = tcp.local_addr().expect("its address");
        let idle = Duration::from_millis(300);
        let mut listener = accept(
            tcp,
            Bounds {
                connections: 1,
                idle,
            },
            None,
        );
        let mut first = TcpStream::connect(addr).await.expect("connected");
        let (mut held, _) = listener.accept().await;
        let _second = TcpStream::connect(addr).await.expect("in the backlog");
        let waiting = tokio::time::timeout(idle / 3, listener.accept()).await;
        assert!(waiting.is_err(), "a second connection was taken");

        // Bytes keep the first one open past the quiet time.
        let started = std::time::Instant::now();
        let mut buf = [0u8; 8];
        for _ in 0..3 {
            tokio::time::sleep(idle / 2).await;
            first.write_all(b"x").await.expect("written");
            let n = held.read(&mut buf).await.expect("read");
            assert_eq!(n, 1);
        }
        assert!(started.elapsed() > idle);
        // Then nothing: it is closed, with an error, and the slot is free.
        let quiet = tokio::time::timeout(idle * 3, held.read(&mut buf))
            .await
            .expect("closed within the wait");
        assert_eq!(quiet.map_err(|e| e.kind()), Err(io::ErrorKind::TimedOut));
        drop(held);
        tokio::time::timeout(idle * 3, listener.accept())
            .await
            .expect("the second connection is taken");
    }
}
