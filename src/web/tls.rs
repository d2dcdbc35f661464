//! HTTPS for a hub's public pages (`serve --hub --public-web ADDR
//! --tls-cert FILE --tls-key FILE`, or `"public_tls"` in config.json):
//! browsers keep a key for a guest only on a secure context, which a page
//! off loopback has only over HTTPS.
//!
//! - **The certificate** is read at start ([`PublicTls::load`]): a file
//!   that is missing, unreadable, holds no PEM certificate or key, or a key
//!   that does not go with the certificate stops `serve` with an error
//!   naming the file. [`PublicTls::reload`] reads them again (on SIGHUP in
//!   `serve`), so a renewed certificate needs no restart; a reload that
//!   fails keeps the one in use.
//! - **The handshake** runs on the connection's own task, on its first
//!   read or write (`MaybeTls`), never in the accept loop: a client that
//!   stalls its handshake holds only its own slot, and for at most
//!   [`TLS_HANDSHAKE`].
//! - **HSTS** ([`HSTS`]) on every response of a TLS server; a server
//!   without TLS never sends it, since a browser would then refuse the
//!   plain pages it was just given.
//!
//! The crypto provider is aws-lc-rs, named here rather than taken from
//! the process default, which is ambiguous when more than one provider is
//! built in (as in the tests).

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;
use tokio_rustls::rustls::crypto::{CryptoProvider, aws_lc_rs};
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{Accept, TlsAcceptor};

/// Longest a client may take over its TLS handshake: the connection's
/// quiet time alone would let one that trickles a byte at a time hold its
/// slot for ever.
pub const TLS_HANDSHAKE: Duration = Duration::from_secs(10);

/// The `Strict-Transport-Security` of every response over TLS: one year,
/// for this host only (`includeSubDomains` would bind the operator's other
/// hosts too, which may not all have HTTPS).
pub const HSTS: &str = "max-age=31536000";

/// Why the certificate or its key cannot be used.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file cannot be read (missing, or not readable by the hub's user).
    #[error("cannot read the TLS {what} {}: {source}", path.display())]
    Read {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file holds no PEM block of the kind it should, or a broken one.
    #[error(
        "the TLS {what} {} holds no usable PEM {expected}: {reason}",
        path.display()
    )]
    Pem {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What it should hold.
        expected: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The key does not go with the certificate, or cannot sign.
    #[error(
        "the TLS key {} does not go with the certificate {} (or cannot be used): {source}",
        key.display(),
        cert.display()
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls found.
        source: rustls::Error,
    },
    /// The TLS settings cannot be made.
    #[error("cannot set up TLS: {0}")]
    Setup(rustls::Error),
}

/// The public pages' certificate and key, as files and as loaded.
pub struct PublicTls {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for PublicTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicTls")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl PublicTls {
    /// Reads the certificate chain `cert` (PEM, the server's certificate
    /// first, as ACME clients write `fullchain.pem`) and its private key
    /// `key` (PEM: PKCS#8, PKCS#1 or SEC1), and checks that they go
    /// together.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<PublicTls>, TlsError> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let loaded = certified(&provider, cert, key)?;
        Ok(Arc::new(PublicTls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            current: RwLock::new(Arc::new(loaded)),
        }))
    }

    /// Reads the files again (a renewed certificate); new handshakes use
    /// them. On an error the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let loaded = certified(&self.provider, &self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(loaded);
        Ok(())
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The acceptor of the public pages' connections: TLS 1.2 and 1.3,
    /// HTTP/1.1 (the server speaks nothing else).
    pub(super) fn acceptor(self: &Arc<Self>) -> Result<TlsAcceptor, TlsError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}

impl ResolvesServerCert for PublicTls {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// Reads and checks a certificate chain and its key.
fn certified(provider: &CryptoProvider, cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let read = |what, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            what,
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read("certificate", cert)?;
    let key_pem = read("key", key)?;
    let bad_cert = |reason: String| TlsError::Pem {
        what: "certificate",
        path: cert.to_owned(),
        expected: "certificate (-----BEGIN CERTIFICATE-----)",
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|e| bad_cert(e.to_string()))?;
    if chain.is_empty() {
        return Err(bad_cert("none found".into()));
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
        what: "key",
        path: key.to_owned(),
        expected: "private key (PKCS#8, PKCS#1 or SEC1)",
        reason: match e {
            pem::Error::NoItemsFound => "none found".into(),
            e => e.to_string(),
        },
    })?;
    let mismatch = |source| TlsError::Mismatch {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    };
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(mismatch)?;
    let loaded = CertifiedKey::new(chain, signing);
    // Stricter than rustls's own `from_der`, which lets a key pass whose
    // public half it cannot tell: a hub that starts must be able to serve.
    loaded.keys_match().map_err(mismatch)?;
    Ok(loaded)
}

/// A connection, over TLS or not: with TLS, its handshake runs on its
/// first read or write, bounded by [`TLS_HANDSHAKE`].
pub(super) enum MaybeTls<IO> {
    /// Plain HTTP.
    Plain(IO),
    /// TLS, shaking hands or done.
    Tls(Box<TlsConn<IO>>),
}

/// Where a TLS connection is.
pub(super) enum TlsConn<IO> {
    /// Shaking hands, until the deadline.
    Handshake {
        accept: Accept<IO>,
        deadline: Pin<Box<Sleep>>,
    },
    /// Ready for HTTP.
    Ready(TlsStream<IO>),
    /// The handshake failed: every read and write fails too.
    Failed,
}

impl<IO: AsyncRead + AsyncWrite + Unpin> MaybeTls<IO> {
    /// `io` over TLS with `acceptor`, or plain without.
    pub(super) fn new(io: IO, acceptor: Option<&TlsAcceptor>) -> MaybeTls<IO> {
        match acceptor {
            None => MaybeTls::Plain(io),
            Some(acceptor) => MaybeTls::Tls(Box::new(TlsConn::Handshake {
                accept: acceptor.accept(io),
                deadline: Box::pin(tokio::time::sleep(TLS_HANDSHAKE)),
            })),
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> TlsConn<IO> {
    /// The stream once the handshake is done; drives it until then.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut TlsStream<IO>>> {
        if let TlsConn::Handshake { accept, deadline } = self {
            let done = match Pin::new(accept).poll(cx) {
                Poll::Ready(done) => done,
                Poll::Pending if deadline.as_mut().poll(cx).is_ready() => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "a public-page TLS handshake took too long",
                )),
                Poll::Pending => return Poll::Pending,
            };
            match done {
                Ok(stream) => *self = TlsConn::Ready(stream),
                Err(e) => {
                    *self = TlsConn::Failed;
                    return Poll::Ready(Err(e));
                }
            }
        }
        match self {
            TlsConn::Ready(stream) => Poll::Ready(Ok(stream)),
            _ => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the TLS handshake failed",
            ))),
        }
    }
}

/// Runs `$op` on the plain stream, or on the TLS stream once its
/// handshake is done.
macro_rules! through {
    ($self:ident, $cx:ident, |$s:ident| $op:expr) => {
        match $self.get_mut() {
            MaybeTls::Plain($s) => {
                let $s = Pin::new($s);
                $op
            }
            MaybeTls::Tls(conn) => match conn.poll_ready($cx) {
                Poll::Ready(Ok($s)) => {
                    let $s = Pin::new($s);
                    $op
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
        }
    };
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        through!(self, cx, |s| s.poll_read(cx, buf))
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        through!(self, cx, |s| s.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        through!(self, cx, |s| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        through!(self, cx, |s| s.poll_shutdown(cx))
    }
}

/// Adds [`HSTS`] to every response; only a TLS server has this layer.
pub(super) async fn hsts(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(HSTS),
    );
    resp
}
