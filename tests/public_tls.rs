//! HTTPS for a hub's public pages (docs/hub.md, "HTTPS"):
//!
//! - **Built in, with a certificate from an ACME CA**: Debian's `pebble`
//!   (a test CA) runs on loopback ports, an ACME client (`instant-acme`)
//!   gets a certificate from it, and `potluck serve --hub --public-web
//!   --tls-cert --tls-key` serves the pages with it. A client that trusts
//!   pebble's root (from its management port) reads a page and its HSTS;
//!   plain HTTP to that port gets no page; a client that never starts
//!   its handshake is dropped after its bound; SIGHUP loads a renewed
//!   certificate, and a broken one leaves the old in use. Bad files stop
//!   `serve` at start with a clear error.
//!   Pebble runs with `PEBBLE_VA_ALWAYS_VALID=1`: it issues without
//!   checking the challenges, so no DNS name must point here.
//! - **Chromium** trusts pebble's CA through its flags
//!   (`--ignore-certificate-errors-spki-list`, and `--host-resolver-rules`
//!   for the name): the page is a secure context and WebCrypto makes an
//!   Ed25519 key there.
//! - **Behind Caddy** (`tls internal`, its own local CA): a page of the
//!   hub through it, and the client address a server sees: the one in
//!   `X-Forwarded-For` only when Caddy is its trusted proxy.
//!
//! Needs Debian's `pebble`, `caddy`, `chromium` and `chromium-driver`
//! (`.ci/run` installs them): without one a test fails and says how to
//! install it, unless `POTLUCK_SKIP_TLS=1` asks to skip it. Everything
//! listens on 127.0.0.1 (the client of the Caddy test connects from
//! 127.0.0.2, to tell it from Caddy); every wait is bounded.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::DEADLINE;
use common::chrome::{WAIT, browser_with, start_driver, tools_present};
use common::http::{Answer, parse_answer};
use common::sandbox::{Sandbox, Server, announce};
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use potluck::feed::message::MessageId;
use potluck::web::{ClientIp, PublicTransport, serve_front};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::server::ParsedCertificate;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// The name the hub's certificate is for; the tests map it to 127.0.0.1.
const NAME: &str = "events.potluck.test";

/// What every page over TLS carries.
const HSTS: &str = "max-age=31536000";

/// Whether `path` (of Debian's `package`) is there; without it, panics
/// with how to install it, unless `POTLUCK_SKIP_TLS` is set (then says the
/// test was skipped and returns false).
fn tool_present(path: &str, package: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    if std::env::var_os("POTLUCK_SKIP_TLS").is_some() {
        eprintln!("SKIPPED: a TLS test without {path} (POTLUCK_SKIP_TLS is set)");
        return false;
    }
    panic!(
        "this test needs {path}: `apt-get install -y {package}` (or set POTLUCK_SKIP_TLS=1 to skip it)"
    );
}

/// A process of the test (pebble, caddy), killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something listens on `port` of 127.0.0.1, while `process`
/// runs; its log is `log`.
fn wait_for_port(process: &mut Process, port: u16, log: &Path) {
    let deadline = Instant::now() + DEADLINE;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        let exited = process.0.try_wait().expect("wait for the process");
        let log = || std::fs::read_to_string(log).unwrap_or_default();
        assert!(exited.is_none(), "it exited ({exited:?}): {}", log());
        assert!(
            Instant::now() < deadline,
            "nothing listened on {port}: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A CA of the test's own and a certificate it signed for `localhost` and
/// 127.0.0.1, written into `dir`: pebble's own HTTPS listener needs one,
/// and Debian's package ships none. Returns (CA, certificate, key) files.
fn listener_cert(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "potluck test listener CA");
    let ca_cert = ca.self_signed(&ca_key).expect("the CA certificate");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("a key");
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("parameters")
        .signed_by(&key, &issuer)
        .expect("a certificate");
    let files = (
        dir.join("listener-ca.pem"),
        dir.join("listener.pem"),
        dir.join("listener-key.pem"),
    );
    std::fs::write(&files.0, ca_cert.pem()).unwrap();
    std::fs::write(&files.1, cert.pem()).unwrap();
    std::fs::write(&files.2, key.serialize_pem()).unwrap();
    files
}

/// Pebble on loopback ports.
struct Pebble {
    _process: Process,
    /// Its ACME directory URL.
    directory: String,
    /// Its management port (the roots it issues under).
    management: SocketAddr,
    /// The CA of its own HTTPS listeners.
    listener_ca: PathBuf,
}

fn start_pebble(dir: &Path) -> Pebble {
    let (listener_ca, cert, key) = listener_cert(dir);
    let acme = common::free_tcp_port();
    let management = common::free_tcp_port();
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{acme}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": cert,
            "privateKey": key,
            // Never dialed: validation is skipped (PEBBLE_VA_ALWAYS_VALID).
            "httpPort": common::free_tcp_port(),
            "tlsPort": common::free_tcp_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }
    });
    let config_path = dir.join("pebble-config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let log = dir.join("pebble.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new("/usr/bin/pebble")
        .arg("-config")
        .arg(&config_path)
        .env("PEBBLE_VA_ALWAYS_VALID", "1")
        .env("PEBBLE_VA_NOSLEEP", "1")
        // Pebble refuses 5% of nonces by default, to test clients' retries.
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start pebble");
    let mut process = Process(child);
    wait_for_port(&mut process, acme, &log);
    wait_for_port(&mut process, management, &log);
    Pebble {
        _process: process,
        directory: format!("https://127.0.0.1:{acme}/dir"),
        management: SocketAddr::from(([127, 0, 0, 1], management)),
        listener_ca,
    }
}

/// A certificate for `names` from pebble, as an ACME client gets one:
/// (chain PEM, its key PEM).
async fn issue(pebble: &Pebble, names: &[&str]) -> (String, String) {
    let work = async {
        let (account, _) = Account::builder_with_root(&pebble.listener_ca)
            .expect("an ACME client")
            .create(
                &NewAccount {
                    contact: &[],
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                pebble.directory.clone(),
                None,
            )
            .await
            .expect("an ACME account");
        let ids: Vec<Identifier> = names
            .iter()
            .map(|name| Identifier::Dns((*name).to_owned()))
            .collect();
        let mut order = account
            .new_order(&NewOrder::new(&ids))
            .await
            .expect("an order");
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.expect("an authorization");
            if authorization.status == AuthorizationStatus::Valid {
                continue;
            }
            authorization
                .challenge(ChallengeType::Http01)
                .expect("an http-01 challenge")
                .set_ready()
                .await
                .expect("challenge answered");
        }
        let retries = RetryPolicy::new().timeout(DEADLINE);
        let status = order.poll_ready(&retries).await.expect("order ready");
        assert_eq!(status, OrderStatus::Ready);
        let key = order.finalize().await.expect("finalized");
        let chain = order
            .poll_certificate(&retries)
            .await
            .expect("the certificate");
        (chain, key)
    };
    tokio::time::timeout(DEADLINE * 2, work)
        .await
        .expect("pebble issued in time")
}

/// The certificates at `path` of pebble's management port (`/roots/0`:
/// the root it issues under).
async fn pebble_pem(pebble: &Pebble, path: &str) -> Vec<CertificateDer<'static>> {
    let ca = CertificateDer::from_pem_file(&pebble.listener_ca).expect("the listener CA");
    let (answer, _) = https(pebble.management, "localhost", &[ca], path, None, &[])
        .await
        .expect("pebble's management port");
    assert_eq!(answer.status, 200, "{}", answer.head);
    pems(&answer.body)
}

fn pems(text: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates")
}

/// `GET path` over TLS to `addr`, for `name`, trusting only `roots`, from
/// address `from` (default: the kernel's choice), with `headers`: the
/// answer and the certificates the server showed.
async fn https(
    addr: SocketAddr,
    name: &str,
    roots: &[CertificateDer<'static>],
    path: &str,
    from: Option<IpAddr>,
    headers: &[(&str, &str)],
) -> Result<(Answer, Vec<CertificateDer<'static>>), String> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(store)
        .with_no_client_auth();
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some(from) = from {
        socket
            .bind(SocketAddr::new(from, 0))
            .map_err(|e| e.to_string())?;
    }
    let exchange = async {
        let tcp = socket.connect(addr).await.map_err(|e| e.to_string())?;
        let server_name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
        let mut tls = TlsConnector::from(Arc::new(config))
            .connect(server_name, tcp)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        let shown = tls
            .get_ref()
            .1
            .peer_certificates()
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {name}:{}\r\nConnection: close\r\n",
            addr.port()
        );
        for (key, value) in headers {
            request.push_str(&format!("{key}: {value}\r\n"));
        }
        request.push_str("\r\n");
        tls.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        // A server may close without TLS's close_notify: what came counts.
        let _ = (&mut tls)
            .take(1024 * 1024)
            .read_to_end(&mut response)
            .await;
        Ok((parse_answer(&response), shown))
    };
    tokio::time::timeout(DEADLINE, exchange)
        .await
        .map_err(|_| "no answer in time".to_owned())?
}

/// `serve` of a hub with its public pages on a loopback port, over TLS
/// with `cert` and `key`.
fn serve_args(cert: &Path, key: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "serve",
        "--hub",
        "--listen",
        "127.0.0.1:0",
        "--no-web",
        "--no-discovery",
        "--public-web",
        "127.0.0.1:0",
        "--tls-cert",
    ]
    .map(str::to_owned)
    .into();
    args.push(cert.display().to_string());
    args.push("--tls-key".into());
    args.push(key.display().to_string());
    args
}

/// A hub serving its public pages over TLS with `cert` and `key`, and an
/// event it announced; returns the server, its public address and the
/// event's page path.
fn tls_hub(sandbox: &Sandbox, cert: &Path, key: &Path) -> (Server, SocketAddr, String) {
    let home = sandbox.home("hub");
    sandbox.json(&home, &["init", "--name", "Riverside hub"]);
    let args = serve_args(cert, key);
    let args: Vec<&str> = args.iter().map(String::as_str).skip(1).collect();
    let server = sandbox
        .spawn_serve(&home, &args)
        .unwrap_or_else(|e| panic!("{e}"));
    let url = server.public.clone().expect("a public pages line");
    let addr = url
        .strip_prefix("https://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not an https address: {url}"));
    let id = announce(sandbox, &home, "Tool library opening");
    let path = potluck::web::event_path(&MessageId::parse(&id).expect("an event id"));
    (server, addr, path)
}

/// Writes a chain and key where the hub reads them.
fn write_cert(dir: &Path, (chain, key): &(String, String)) -> (PathBuf, PathBuf) {
    let files = (dir.join("fullchain.pem"), dir.join("key.pem"));
    std::fs::write(&files.0, chain).unwrap();
    std::fs::write(&files.1, key).unwrap();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_serves_its_pages_with_a_certificate_from_pebble() {
    if !tool_present("/usr/bin/pebble", "pebble") {
        return;
    }
    let sandbox = Sandbox::new();
    let pebble = start_pebble(sandbox.dir());
    let issued = issue(&pebble, &[NAME]).await;
    let (cert, key) = write_cert(sandbox.dir(), &issued);
    let roots = pebble_pem(&pebble, "/roots/0").await;
    let (mut hub, addr, path) = tls_hub(&sandbox, &cert, &key);
    // A client that connects and never starts its handshake.
    let mut stalled = TcpStream::connect(addr).unwrap();
    let stalled_at = Instant::now();

    // The page and the list, over TLS, with HSTS and the usual headers.
    for page in [path.as_str(), "/"] {
        let (answer, shown) = https(addr, NAME, &roots, page, None, &[])
            .await
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert_eq!(answer.status, 200, "{page}: {}", answer.head);
        assert!(
            answer.body.contains("Tool library opening"),
            "{}",
            answer.body
        );
        assert_eq!(answer.header("strict-transport-security"), Some(HSTS));
        let csp = answer.header("content-security-policy").unwrap_or("");
        assert!(csp.contains("default-src 'self'"), "{}", answer.head);
        assert_eq!(
            shown.first(),
            pems(&issued.0).first(),
            "pebble's certificate"
        );
    }
    // Trusting another CA than pebble's, the handshake fails.
    let other = CertificateDer::from_pem_file(&pebble.listener_ca).unwrap();
    let refused = https(addr, NAME, &[other], "/", None, &[]).await;
    assert!(
        matches!(&refused, Err(e) if e.starts_with("TLS")),
        "{refused:?}"
    );

    // Plain HTTP to the TLS port gets no page.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(DEADLINE)).unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = plain.take(64 * 1024).read_to_end(&mut got);
    assert!(
        !String::from_utf8_lossy(&got).contains("Tool library"),
        "plain HTTP got a page"
    );
    assert!(!got.starts_with(b"HTTP/1.1 200"), "plain HTTP got a page");
    hub.assert_running();

    // A renewal: new files, SIGHUP, and new handshakes get the new one.
    let renewed = issue(&pebble, &[NAME]).await;
    write_cert(sandbox.dir(), &renewed);
    hub.signal("HUP");
    hub.wait_for_log("TLS certificate reloaded");
    let (answer, shown) = https(addr, NAME, &roots, &path, None, &[]).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(
        shown.first(),
        pems(&renewed.0).first(),
        "the renewed certificate"
    );
    // A broken one is refused, and the renewed one stays.
    std::fs::write(&cert, "not a certificate").unwrap();
    hub.signal("HUP");
    hub.wait_for_log("TLS certificate not reloaded");
    let (answer, shown) = https(addr, NAME, &roots, &path, None, &[]).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(shown.first(), pems(&renewed.0).first());
    hub.assert_running();

    // The stalled handshake was given up after its bound (10 s), well
    // before the 30 s a quiet connection may last.
    stalled
        .set_read_timeout(Some(potluck::web::tls::TLS_HANDSHAKE * 2))
        .unwrap();
    let mut byte = [0u8; 1];
    let closed = stalled.read(&mut byte);
    let after = stalled_at.elapsed();
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    assert!(
        after >= potluck::web::tls::TLS_HANDSHAKE - Duration::from_secs(1)
            && after < potluck::web::tls::TLS_HANDSHAKE + Duration::from_secs(5),
        "closed after {after:?}"
    );
}

#[test]
fn serve_stops_at_start_on_a_missing_broken_or_mismatched_certificate() {
    let sandbox = Sandbox::new();
    let home = sandbox.home("hub");
    sandbox.json(&home, &["init", "--name", "Riverside hub"]);
    let dir = sandbox.dir();
    let (_, cert, key) = listener_cert(dir);
    let other_key = dir.join("other-key.pem");
    std::fs::write(
        &other_key,
        KeyPair::generate().expect("a key").serialize_pem(),
    )
    .unwrap();
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "hello").unwrap();
    let missing = dir.join("missing.pem");
    for (cert, key, says) in [
        (&missing, &key, "cannot read the TLS certificate"),
        (&cert, &missing, "cannot read the TLS key"),
        (&garbage, &key, "holds no usable PEM certificate"),
        (&cert, &garbage, "holds no usable PEM private key"),
        (&cert, &other_key, "does not go with the certificate"),
    ] {
        let args = serve_args(cert, key);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = sandbox.run(&home, &args);
        assert!(!run.status.success(), "{args:?} started");
        assert!(run.stderr.contains(says), "{says:?} not in {}", run.stderr);
    }
    // A certificate without public pages is an error too.
    let run = sandbox.run(
        &home,
        &[
            "serve",
            "--hub",
            "--no-web",
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
        ],
    );
    assert!(!run.status.success());
    assert!(run.stderr.contains("--public-web"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_trusts_pebbles_ca_and_the_page_is_a_secure_context() {
    if !tool_present("/usr/bin/pebble", "pebble") || !tools_present() {
        return;
    }
    let sandbox = Sandbox::new();
    let pebble = start_pebble(sandbox.dir());
    let issued = issue(&pebble, &[NAME]).await;
    let (cert, key) = write_cert(sandbox.dir(), &issued);
    let (_hub, addr, path) = tls_hub(&sandbox, &cert, &key);
    // The CA that signed the hub's certificate: the chain's second.
    let chain = pems(&issued.0);
    let ca = chain.get(1).expect("pebble's intermediate in the chain");
    let spki = ParsedCertificate::try_from(ca)
        .expect("a certificate")
        .subject_public_key_info();
    let pin = B64.encode(Sha256::digest(spki.as_ref()));

    let driver = start_driver();
    let profile = sandbox.path("chromium-profile");
    let client = browser_with(
        &driver,
        &profile,
        &[
            format!("--ignore-certificate-errors-spki-list={pin}"),
            format!("--host-resolver-rules=MAP {NAME} 127.0.0.1"),
        ],
    )
    .await;
    let url = format!("https://{NAME}:{}{path}", addr.port());
    tokio::time::timeout(WAIT, client.goto(&url))
        .await
        .expect("the page loaded in time")
        .expect("the page loaded");
    let body = client
        .find(fantoccini::Locator::Css("body"))
        .await
        .expect("a body")
        .text()
        .await
        .expect("its text");
    assert!(body.contains("Tool library opening"), "{body}");
    let checked = tokio::time::timeout(
        WAIT,
        client.execute(
            "return [location.protocol, window.isSecureContext, \
             await crypto.subtle.generateKey({name: 'Ed25519'}, false, ['sign', 'verify']) \
               .then(() => 'ed25519', e => String(e))];",
            vec![],
        ),
    )
    .await
    .expect("the script ran in time")
    .expect("the script ran");
    assert_eq!(
        checked,
        serde_json::json!(["https:", true, "ed25519"]),
        "over https, a secure context with Ed25519"
    );
    client.close().await.expect("closed");
}

/// A server of the public pages' kind (`serve_front`) whose one page,
/// `/ip`, says the client address it counts; `trusted` is its trusted
/// proxy. Returns its address.
async fn ip_server(trusted: Option<IpAddr>) -> SocketAddr {
    let router = Router::new().route(
        "/ip",
        get(|Extension(ClientIp(ip)): Extension<ClientIp>| async move { ip.to_string() }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let transport = PublicTransport {
        tls: None,
        trusted_proxy: trusted,
    };
    tokio::spawn(serve_front(
        router,
        listener,
        transport,
        std::future::pending(),
    ));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_proxies_to_the_hub_and_only_a_trusted_proxy_names_the_client() {
    if !tool_present("/usr/bin/caddy", "caddy") {
        return;
    }
    let sandbox = Sandbox::new();
    let dir = sandbox.dir();
    // The hub, trusting Caddy on 127.0.0.1, as docs/hub.md sets it up.
    let home = sandbox.home("hub");
    sandbox.json(&home, &["init", "--name", "Riverside hub"]);
    std::fs::write(
        home.join("config.json"),
        r#"{"hub": true, "public_web": "127.0.0.1:0", "public_trusted_proxy": "127.0.0.1"}"#,
    )
    .unwrap();
    let hub = sandbox
        .spawn_serve(
            &home,
            &["--listen", "127.0.0.1:0", "--no-web", "--no-discovery"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let hub_public = common::http::page_addr(hub.public.as_deref().expect("public pages"));
    let id = announce(&sandbox, &home, "Tool library opening");
    let path = potluck::web::event_path(&MessageId::parse(&id).expect("an event id"));
    let trusting = ip_server(Some(IpAddr::from([127, 0, 0, 1]))).await;
    let not_trusting = ip_server(None).await;

    // One Caddy, a site for each: its own CA (`tls internal`), on
    // loopback only, nothing installed into the system's trust store.
    let ports = [
        common::free_tcp_port(),
        common::free_tcp_port(),
        common::free_tcp_port(),
    ];
    let data = dir.join("caddy-data");
    let site = |port: u16, upstream: SocketAddr| {
        format!(
            "https://localhost:{port} {{\n\tbind 127.0.0.1\n\ttls internal\n\
             \theader Strict-Transport-Security \"{HSTS}\"\n\
             \treverse_proxy {upstream}\n}}\n"
        )
    };
    let caddyfile = format!(
        "{{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n\
         \tstorage file_system {{\n\t\troot {}\n\t}}\n}}\n{}{}{}",
        data.display(),
        site(ports[0], hub_public),
        site(ports[1], trusting),
        site(ports[2], not_trusting),
    );
    let caddyfile_path = dir.join("Caddyfile");
    std::fs::write(&caddyfile_path, caddyfile).unwrap();
    let log = dir.join("caddy.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new("/usr/bin/caddy")
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&caddyfile_path)
        .env("HOME", dir)
        .env("XDG_DATA_HOME", dir.join("xdg-data"))
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start caddy");
    let mut caddy = Process(child);
    for port in ports {
        wait_for_port(&mut caddy, port, &log);
    }
    let root_file = data.join("pki/authorities/local/root.crt");
    let deadline = Instant::now() + DEADLINE;
    while !root_file.exists() {
        assert!(Instant::now() < deadline, "caddy made no root");
        std::thread::sleep(Duration::from_millis(50));
    }
    let root = CertificateDer::from_pem_file(&root_file).expect("caddy's root");
    let client = Some(IpAddr::from([127, 0, 0, 2]));
    // Caddy may still be getting its certificate from its own CA.
    let get = |port: u16, path: String| {
        let root = root.clone();
        async move {
            let deadline = Instant::now() + DEADLINE;
            loop {
                match https(
                    SocketAddr::from(([127, 0, 0, 1], port)),
                    "localhost",
                    std::slice::from_ref(&root),
                    &path,
                    client,
                    &[("X-Forwarded-For", "203.0.113.9")],
                )
                .await
                {
                    Ok((answer, _)) => return answer,
                    Err(e) if Instant::now() > deadline => panic!("through caddy: {e}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
    };

    // The hub's page through Caddy, with the HSTS Caddy adds.
    let answer = get(ports[0], path).await;
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert!(
        answer.body.contains("Tool library opening"),
        "{}",
        answer.body
    );
    assert_eq!(answer.header("strict-transport-security"), Some(HSTS));
    // Behind its trusted proxy, a server counts the client (127.0.0.2), not
    // Caddy and not what the client itself put in X-Forwarded-For.
    let answer = get(ports[1], "/ip".into()).await;
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert_eq!(answer.body, "127.0.0.2");
    // Without one, it counts Caddy: the header proves nothing.
    let answer = get(ports[2], "/ip".into()).await;
    assert_eq!(answer.body, "127.0.0.1");
}
