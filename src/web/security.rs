//! The guards around the page, as layers over every route.
//!
//! In the order a request meets them:
//!
//! 1. **Headers** on every response: a Content-Security-Policy that allows
//!    only this server's own files (no inline script or style) and no
//!    framing, `nosniff`, referrers only to the page itself, and
//!    `no-store` for pages (they carry the CSRF token).
//! 2. **Host**: the `Host` header must name this server (see
//!    [`host_allowed`]). A page of another site whose name was made to
//!    resolve to 127.0.0.1 (DNS rebinding) sends its own name and is
//!    refused with 421.
//! 3. **Access token**, when the settings have one: a cookie set by
//!    `/login`, or `?token=` on a GET (which also sets the cookie).
//! 4. **POST**: refused when `Origin` or `Sec-Fetch-Site` says another site
//!    (403); the body is read (at most [`MAX_BODY_BYTES`],
//!    else 413) and must carry the form field `csrf` equal to this
//!    process's secret (403 otherwise). Only then does a handler run.
//!
//! Other methods than GET, HEAD and POST are refused (405) before any
//! handler runs.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

use super::state::{MAX_BODY_BYTES, Web};

/// The Content-Security-Policy of every response.
pub const CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The cookie that carries the access token.
pub const TOKEN_COOKIE: &str = "potluck_token";

/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

pub use crate::app::new_secret;

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Wraps `routes` in the guards, outermost first as listed in the module
/// documentation.
pub(crate) fn layer(routes: Router<Web>, web: Web) -> Router<Web> {
    routes
        .layer(middleware::from_fn_with_state(web.clone(), check_post))
        .layer(middleware::from_fn_with_state(web.clone(), check_token))
        .layer(middleware::from_fn_with_state(web, check_host))
        .layer(middleware::from_fn(headers))
}

/// The compiled-in files (style, script, icon): the same for everyone,
/// public, cacheable.
fn is_asset(path: &str) -> bool {
    path.starts_with("/static/") || path == "/favicon.ico"
}

/// The headers of every response (item 1 above); also those of a hub's
/// public pages.
pub(crate) async fn headers(req: Request, next: Next) -> Response {
    let is_static = is_asset(req.uri().path());
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: with it, browsers send `Origin: null` on the
    // page's own form posts, which the Origin check then accepts only with
    // `Sec-Fetch-Site: same-origin` (older browsers send no such header).
    // Links out (to an event's URL) still carry no referrer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !is_static {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{why}\n"),
    )
        .into_response()
}

async fn check_host(State(web): State<Web>, req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::POST) {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "This page only answers GET and POST.",
        );
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !host_allowed(host, web.local_addr, &web.settings.extra_hosts) {
        tracing::warn!(
            host,
            "web request refused: the Host header names another site"
        );
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "Refused: this request names another host. potluck's page answers only to its own \
             address (such as localhost or 127.0.0.1 with its port), so that other web sites \
             cannot reach it by renaming themselves (DNS rebinding).",
        );
    }
    next.run(req).await
}

/// Whether a `Host` header names this server, listening on `local`.
///
/// Accepted: the listen address itself; `localhost`, `127.0.0.1` and
/// `[::1]` with its port; when listening on every interface, any IP
/// address with its port (an address is not a name, so it cannot be
/// rebound); and the `extra` values. Without a port, the port is 80.
pub fn host_allowed(host: &str, local: SocketAddr, extra: &[String]) -> bool {
    if extra.iter().any(|e| e.eq_ignore_ascii_case(host)) {
        return true;
    }
    let Some((name, port)) = split_host(host) else {
        return false;
    };
    if port != local.port() {
        return false;
    }
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let Ok(ip) = name.parse::<IpAddr>() else {
        return false;
    };
    ip == local.ip() || ip.is_loopback() || local.ip().is_unspecified()
}

/// Splits `name:port` or `[v6]:port` (the port defaults to 80).
fn split_host(host: &str) -> Option<(&str, u16)> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        match after {
            "" => (v6, None),
            p => (v6, Some(p.strip_prefix(':')?)),
        }
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => 80,
    };
    (!name.is_empty()).then_some((name, port))
}

async fn check_token(State(web): State<Web>, req: Request, next: Next) -> Response {
    let Some(token) = web.settings.token.as_deref() else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if path == "/login" || is_asset(path) {
        return next.run(req).await;
    }
    if cookie(req.headers(), TOKEN_COOKIE)
        .is_some_and(|c| same_secret(c.as_bytes(), token.as_bytes()))
    {
        return next.run(req).await;
    }
    let from_query = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    if req.method() == Method::GET
        && from_query.is_some_and(|t| same_secret(t.as_bytes(), token.as_bytes()))
    {
        let mut resp = next.run(req).await;
        if let Ok(v) = HeaderValue::from_str(&token_cookie(token)) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
        return resp;
    }
    if req.method() == Method::GET {
        return (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, "/login")],
            "This page needs its access token: see /login.\n",
        )
            .into_response();
    }
    refuse(
        StatusCode::UNAUTHORIZED,
        "Refused: this page needs its access token (log in at /login).",
    )
}

/// The `Set-Cookie` value that stores the access token in the browser.
pub(crate) fn token_cookie(token: &str) -> String {
    format!("{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict")
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

async fn check_post(State(web): State<Web>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    if let Some(why) = cross_site(req.headers()) {
        tracing::warn!(why, "web POST refused as cross-site");
        return refuse(
            StatusCode::FORBIDDEN,
            &format!("Refused: this request came from another site ({why})."),
        );
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("Refused: the request is larger than {MAX_BODY_BYTES} bytes."),
        );
    };
    let token_ok = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .is_some_and(|(_, v)| same_secret(v.as_bytes(), web.csrf.as_bytes()));
    if !token_ok {
        return refuse(
            StatusCode::FORBIDDEN,
            "Refused: the form's security token is missing or out of date. Reload the page and \
             try again.",
        );
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Why a POST's headers say it came from another site, if they do.
///
/// `Origin` must be `http://` (or `https://`, behind a proxy) plus the
/// request's own `Host` (a browser
/// sends it with every POST), or `null` (what a browser sends under
/// `Referrer-Policy: no-referrer`) with `Sec-Fetch-Site: same-origin`;
/// `Sec-Fetch-Site`, when present, must be `same-origin` or `none` (typed
/// by the person). `same-site` is refused too: another program on another
/// port of localhost is same-site.
pub fn cross_site(headers: &HeaderMap) -> Option<&'static str> {
    let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or("?"));
    let fetch_site = text("sec-fetch-site");
    if fetch_site.is_some_and(|site| !matches!(site, "same-origin" | "none")) {
        return Some("Sec-Fetch-Site");
    }
    if let Some(origin) = text(header::ORIGIN.as_str()) {
        // Under `Referrer-Policy: no-referrer` a browser sends `Origin:
        // null` with its own forms; then `Sec-Fetch-Site` must vouch.
        if origin == "null" {
            return (fetch_site != Some("same-origin")).then_some("Origin");
        }
        let host = text(header::HOST.as_str()).unwrap_or("");
        let own = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if own.is_none_or(|o| !o.eq_ignore_ascii_case(host)) {
            return Some("Origin");
        }
    }
    None
}
