//! Which address a request to the public pages came from, for limits per
//! address: the connection's peer, or, when that peer is the reverse
//! proxy the operator named (`"public_trusted_proxy"` in config.json, as
//! behind Caddy), the client that proxy names in `X-Forwarded-For`.
//!
//! Anyone can send `X-Forwarded-For`, so it is read only from the trusted
//! proxy, and then only its last entry: the one the proxy itself added.
//! Entries before it came from the client and prove nothing. The header is
//! bounded ([`MAX_FORWARDED_BYTES`]); a malformed one from the proxy is
//! refused (400) rather than charged to the proxy's own address, which
//! would put every guest into one bucket.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use thiserror::Error;

/// Most bytes of `X-Forwarded-For` read, all its lines together: a chain
/// of a few proxies is far shorter.
pub const MAX_FORWARDED_BYTES: usize = 1024;

/// The header a reverse proxy names the client in.
const FORWARDED_FOR: &str = "x-forwarded-for";

/// The address a request is counted against: a request extension on
/// every request of the public pages' server
/// (`Extension<ClientIp>` in a handler).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

/// The connection's peer, as the public pages' server gives it to each
/// request (`ConnectInfo<Peer>`).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Why the trusted proxy's `X-Forwarded-For` cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ForwardedError {
    /// Longer than [`MAX_FORWARDED_BYTES`].
    #[error("X-Forwarded-For is longer than {MAX_FORWARDED_BYTES} bytes")]
    TooLong,
    /// Its last entry is not an IP address (or it is not text).
    #[error("the last entry of X-Forwarded-For is not an IP address")]
    NotAnAddress,
}

/// The client of a request that came from `peer`: `peer` itself, unless
/// it is `trusted`; then the last entry of `X-Forwarded-For` (`peer` when
/// there is no such header, as for a request the proxy's host makes
/// itself).
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: Option<IpAddr>,
) -> Result<IpAddr, ForwardedError> {
    // A dual-stack socket shows an IPv4 peer as ::ffff:a.b.c.d.
    let peer = peer.to_canonical();
    if trusted.map(|t| t.to_canonical()) != Some(peer) {
        return Ok(peer);
    }
    let mut total = 0usize;
    let mut last = None;
    for value in headers.get_all(FORWARDED_FOR) {
        total = total.saturating_add(value.len());
        if total > MAX_FORWARDED_BYTES {
            return Err(ForwardedError::TooLong);
        }
        last = Some(value);
    }
    let Some(value) = last else {
        return Ok(peer);
    };
    let text = value.to_str().map_err(|_| ForwardedError::NotAnAddress)?;
    let entry = text.rsplit(',').next().unwrap_or_default().trim();
    entry
        .parse::<IpAddr>()
        .map(|ip| ip.to_canonical())
        .map_err(|_| ForwardedError::NotAnAddress)
}

/// Puts the request's [`ClientIp`] into its extensions; needs the
/// connection's address (`ConnectInfo`), which the public pages' server
/// provides. A request without it (a router driven directly, in tests)
/// goes on without one.
pub(super) async fn layer(
    State(trusted): State<Option<IpAddr>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(ConnectInfo(Peer(peer))) = req.extensions().get::<ConnectInfo<Peer>>().copied() else {
        return next.run(req).await;
    };
    match client_ip(peer.ip(), req.headers(), trusted) {
        Ok(ip) => {
            req.extensions_mut().insert(ClientIp(ip));
            next.run(req).await
        }
        Err(e) => {
            tracing::warn!(proxy = %peer, error = %e, "public page request refused");
            (
                StatusCode::BAD_REQUEST,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{e}\n"),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const PROXY: &str = "127.0.0.1";

    fn with(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(FORWARDED_FOR, HeaderValue::from_str(v).expect("a value"));
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn the_header_counts_only_from_the_trusted_proxy() {
        let forged = with(&["203.0.113.9"]);
        // No proxy configured: the peer, whatever the header says.
        assert_eq!(
            client_ip(ip("198.51.100.7"), &forged, None),
            Ok(ip("198.51.100.7"))
        );
        // Another peer than the proxy: the same.
        assert_eq!(
            client_ip(ip("198.51.100.7"), &forged, Some(ip(PROXY))),
            Ok(ip("198.51.100.7"))
        );
        // The proxy: the client it names.
        assert_eq!(
            client_ip(ip(PROXY), &forged, Some(ip(PROXY))),
            Ok(ip("203.0.113.9"))
        );
        // The proxy without the header: the proxy itself.
        assert_eq!(
            client_ip(ip(PROXY), &HeaderMap::new(), Some(ip(PROXY))),
            Ok(ip(PROXY))
        );
        // An IPv4 peer on a dual-stack socket is the same proxy.
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &forged, Some(ip(PROXY))),
            Ok(ip("203.0.113.9"))
        );
    }

    #[test]
    fn only_the_entry_the_proxy_added_counts() {
        // A client sent its own header; the proxy appended the real one.
        let chained = with(&["10.0.0.1, 192.0.2.1", "203.0.113.9"]);
        assert_eq!(
            client_ip(ip(PROXY), &chained, Some(ip(PROXY))),
            Ok(ip("203.0.113.9"))
        );
        let one_line = with(&["10.0.0.1,  2001:db8::5 "]);
        assert_eq!(
            client_ip(ip(PROXY), &one_line, Some(ip(PROXY))),
            Ok(ip("2001:db8::5"))
        );
    }

    #[test]
    fn a_malformed_or_long_header_from_the_proxy_is_refused() {
        let trusted = Some(ip(PROXY));
        for bad in [
            "",
            "unknown",
            "203.0.113.9,",
            "203.0.113.9:443",
            "[2001:db8::5]",
        ] {
            assert_eq!(
                client_ip(ip(PROXY), &with(&[bad]), trusted),
                Err(ForwardedError::NotAnAddress),
                "{bad:?}"
            );
        }
        let long = vec!["203.0.113.9"; MAX_FORWARDED_BYTES / 11 + 1].join(",");
        assert!(long.len() > MAX_FORWARDED_BYTES);
        assert_eq!(
            client_ip(ip(PROXY), &with(&[&long]), trusted),
            Err(ForwardedError::TooLong)
        );
        // Over the bound across several lines too.
        let half = "1".repeat(MAX_FORWARDED_BYTES / 2 + 1);
        assert_eq!(
            client_ip(ip(PROXY), &with(&[&half, &half]), trusted),
            Err(ForwardedError::TooLong)
        );
        // Not text at all.
        let mut binary = HeaderMap::new();
        binary.insert(
            FORWARDED_FOR,
            HeaderValue::from_bytes(b"\xff\xfe").expect("opaque bytes"),
        );
        assert_eq!(
            client_ip(ip(PROXY), &binary, trusted),
            Err(ForwardedError::NotAnAddress)
        );
        // From anyone else, the same headers are simply ignored.
        assert_eq!(
            client_ip(ip("198.51.100.7"), &with(&[&long]), trusted),
            Ok(ip("198.51.100.7"))
        );
    }
}
