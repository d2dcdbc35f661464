//! The networked commands: `serve`, `sync` and `peers`. They set up the
//! tokio runtime and the node; the protocol itself lives in the library.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::net::TcpListener;

use potluck::app::{App, Change};
use potluck::config::{ConfigFile, DEFAULT_LISTEN, DEFAULT_WEB, Invite, PeerAddr};
use potluck::handshake::DEFAULT_NETWORK_KEY;
use potluck::home::Home;
use potluck::identity::Identity;
use potluck::message::FeedId;
use potluck::node::{ConnectionError, Node, NodeConfig, SessionReport, Timing};
use potluck::peerbook::{PeerRecord, PeerSource};
use potluck::store::Store;
use potluck::when;

use crate::cli::{self, Ctx, DiscoveryArgs, Output, WebArgs};
use potluck::discovery;
use potluck::node::DiscoverySettings;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn node_config(identity: &Identity, config: &ConfigFile) -> Result<NodeConfig> {
    Ok(NodeConfig {
        identity: identity.signing_key().clone(),
        network: config.network_key()?,
        policy: config.policy(),
        timing: Timing::default(),
    })
}

/// A node over an open store that never opens a socket: for ingesting
/// bundles through the same path as gossip when no node is running.
pub fn offline_node(store: Arc<Store>, identity: &Identity, home: &Home) -> Result<Arc<Node>> {
    let config = ConfigFile::load(home)?;
    Ok(Node::new(store, node_config(identity, &config)?))
}

/// `potluck serve`: runs until Ctrl-C or SIGTERM.
pub fn serve(
    home: &Home,
    listen: Option<String>,
    extra_peers: Vec<String>,
    discovery: DiscoveryArgs,
    web: WebArgs,
) -> Result<()> {
    let config = ConfigFile::load(home)?;
    let mut peers = config.peer_addrs()?;
    for p in &extra_peers {
        peers.push(PeerAddr::parse(p)?);
    }
    let listen = listen
        .or_else(|| config.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    // Bind first: when a port is taken, nothing has been created yet.
    let std_listener = bind_listener(&listen)?;
    let page = bind_page(home, &config, &web)?;
    let (identity, created) = cli::identity_or_create(home)?;
    // A new identity has published nothing; an old one's store is checked
    // for having been lost.
    let store = Arc::new(cli::open_identity_store(home, created)?);
    if created {
        cli::welcome(home, &store, &identity, false, true)?;
    }
    let node_config = node_config(&identity, &config)?;
    let rt = runtime()?;
    rt.block_on(async move {
        let node = Node::new(store.clone(), node_config);
        if let Some(quotas) = config.quotas.clone() {
            node.set_quota_limits(quotas);
        }
        // Requests may have arrived while no node of ours was running.
        let settler = node.clone();
        tokio::task::spawn_blocking(move || settler.settle_all())
            .await
            .context("settling admissions failed")??;
        let listener = TcpListener::from_std(std_listener)
            .with_context(|| format!("cannot listen on {listen}"))?;
        let local = listener.local_addr()?;
        #[cfg(unix)]
        let control = potluck::control::bind(&potluck::control::socket_path(home))?;
        let page_url = page.as_ref().map(Page::url);
        let mut started = format!("potluck node {} listening on {local}\n", node.feed_id());
        if let Some(url) = &page_url {
            started.push_str(&format!("page: {url}\n"));
        }
        crate::cli::write_stdout(&started)?;
        tracing::info!(feed = %node.feed_id(), %local, page = page_url.as_deref().unwrap_or("off"), "listening");
        let mut tasks = Vec::new();
        if let Some(page) = page {
            let settings = potluck::web::WebSettings {
                token: page.token.clone(),
                zone: potluck::web::system_zone(),
                invite_code: invite_code(&config, node.feed_id(), local).ok().map(|(code, _)| code),
                extra_hosts: Vec::new(),
            };
            let listener = TcpListener::from_std(page.listener)
                .with_context(|| format!("cannot serve the page on {}", page.addr))?;
            let mut stop = node.subscribe_shutdown();
            let app = potluck::app::App::new(node.clone());
            tasks.push(tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                };
                if let Err(e) = potluck::web::serve(app, listener, settings, shutdown).await {
                    tracing::error!(error = %e, "the web page stopped");
                }
            }));
        }
        tasks.push(tokio::spawn(node.clone().accept_loop(listener)));
        tasks.push(tokio::spawn(log_catch_up(App::new(node.clone()))));
        // Configured peers, then every other address in the peer book
        // (discovered earlier, or from an invite), best first.
        let mut addrs: Vec<String> = Vec::new();
        for peer in peers {
            addrs.push(peer.addr.clone());
            tasks.push(tokio::spawn(
                node.clone().dial_loop(peer, PeerSource::Configured),
            ));
        }
        if let Some(settings) = discovery_settings(&config, &discovery, local)? {
            let finder = node.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = finder.discovery_loop(settings).await {
                    tracing::warn!(error = %e, "LAN discovery is off: cannot open its UDP socket");
                }
            }));
        }
        for record in store.peer_records()? {
            if record.source == PeerSource::Inbound || addrs.contains(&record.addr) {
                continue;
            }
            // A discovered address that never worked may be a forgery:
            // discovery dials it again if it is heard again.
            if record.source == PeerSource::Discovered && record.last_success_ms.is_none() {
                continue;
            }
            let peer = PeerAddr {
                feed: record.feed,
                addr: record.addr.clone(),
            };
            tasks.push(tokio::spawn(node.clone().dial_loop(peer, record.source)));
        }
        #[cfg(unix)]
        {
            let handler_node = node.clone();
            let handler_home = home.clone();
            let serving = cli::Serving {
                listen: local,
                page: page_url.clone(),
            };
            let handler: potluck::control::Handler = Arc::new(move |args| {
                cli::run_in_node(&handler_home, &handler_node, &serving, args)
            });
            tasks.push(tokio::spawn(potluck::control::serve(
                control,
                potluck::control::socket_path(home),
                handler,
                node.subscribe_shutdown(),
            )));
        }
        wait_for_signal().await;
        tracing::info!("shutting down");
        node.shutdown();
        for task in tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(6), task).await;
        }
        store.flush()?;
        Ok::<(), anyhow::Error>(())
    })
}

/// Least time between two "catching up" lines about one peer.
const CATCH_UP_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Logs each peer's catch-up: how many messages came so far, at most
/// every [`CATCH_UP_LOG_EVERY`] (the node reports every second while they
/// arrive), and "caught up with NAME" once both sides hold what the other
/// has. Ends with the node.
async fn log_catch_up(app: App) {
    let (Some(mut changes), Some(node)) = (app.subscribe(), app.node().cloned()) else {
        return;
    };
    let mut stop = node.subscribe_shutdown();
    // When each connected peer's progress was last logged (an entry goes
    // when its peer is caught up or leaves).
    let mut logged: std::collections::HashMap<FeedId, std::time::Instant> =
        std::collections::HashMap::new();
    loop {
        let change = tokio::select! {
            _ = stop.changed() => return,
            change = changes.next() => change,
        };
        let Some(change) = change else { return };
        if let Change::PeerLeft(peer) = change {
            logged.remove(&peer);
            continue;
        }
        let Change::Progress {
            peer,
            received,
            remaining,
            caught_up,
        } = change
        else {
            continue;
        };
        if !caught_up
            && logged
                .get(&peer)
                .is_some_and(|at| at.elapsed() < CATCH_UP_LOG_EVERY)
        {
            continue;
        }
        // One small read of the name; the store is local.
        let name = app.name_of(&peer).ok().flatten();
        let who = cli::person(name.as_deref(), &peer);
        if caught_up {
            logged.remove(&peer);
            tracing::info!(peer = %peer, received, "caught up with {who}");
        } else {
            logged.insert(peer, std::time::Instant::now());
            tracing::info!(
                peer = %peer,
                received,
                remaining,
                "catching up with {who}: {} of {} messages",
                when::thousands(received),
                when::thousands(received.saturating_add(remaining))
            );
        }
    }
}

/// The web page's bound socket, before the runtime takes it over.
struct Page {
    listener: std::net::TcpListener,
    addr: std::net::SocketAddr,
    /// Required from browsers when the page listens beyond loopback.
    token: Option<String>,
}

impl Page {
    /// The address people open (on this computer).
    fn url(&self) -> String {
        let host = if self.addr.ip().is_unspecified() {
            // Every interface: this computer reaches it on loopback.
            std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), self.addr.port())
        } else {
            self.addr
        };
        match &self.token {
            Some(token) => format!("http://{host}/?token={token}"),
            None => format!("http://{host}/"),
        }
    }
}

/// How many ports after the default one a second node on this computer
/// tries for its page before it takes any free port.
const PAGE_PORT_TRIES: u16 = 20;

/// Binds the web page's port: the one given (`--web`, or `"web"` in
/// config.json), which must be free, or the default one or the next free
/// port after it. `None` when the page is off. Beyond loopback the page
/// needs the access token (`potluck page-token`); without it, refuses.
fn bind_page(home: &Home, config: &ConfigFile, web: &WebArgs) -> Result<Option<Page>> {
    let given = match (&web.addr, config.web.as_deref()) {
        _ if web.no_web => return Ok(None),
        (Some(addr), _) => Some(addr.as_str()),
        (None, Some("off")) => return Ok(None),
        (None, Some(addr)) => Some(addr),
        (None, None) => None,
    };
    let bind = |addr: std::net::SocketAddr| -> std::io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    };
    let listener = match given {
        Some(text) => {
            let addr: std::net::SocketAddr = text.parse().with_context(|| {
                format!("the page address {text:?} is not IP:PORT (e.g. 127.0.0.1:7645)")
            })?;
            bind(addr).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AddrInUse {
                    anyhow::anyhow!(
                        "cannot serve the page on {addr}: the port is in use; give another \
                         with `--web 127.0.0.1:PORT`, or turn the page off with `--no-web`"
                    )
                } else {
                    anyhow::anyhow!("cannot serve the page on {addr}: {e}")
                }
            })?
        }
        None => {
            let default: std::net::SocketAddr =
                DEFAULT_WEB.parse().context("the default page address")?;
            let mut found = None;
            for port in (default.port()..).take(usize::from(PAGE_PORT_TRIES)) {
                if let Ok(listener) = bind(std::net::SocketAddr::new(default.ip(), port)) {
                    found = Some(listener);
                    break;
                }
            }
            match found {
                Some(listener) => listener,
                None => bind(std::net::SocketAddr::new(default.ip(), 0))
                    .context("cannot find a free port for the page on 127.0.0.1")?,
            }
        }
    };
    let addr = listener.local_addr()?;
    let token = if addr.ip().is_loopback() {
        None
    } else {
        match read_page_token(home)? {
            Some(token) => Some(token),
            None => bail!(
                "the page would listen on {addr}, where other computers can reach it, and it \
                 can publish as you: that needs an access token. Make one with \
                 `potluck page-token` (it is shown once), then start `potluck serve` again; \
                 or keep the page on this computer with `--web 127.0.0.1:7645`"
            ),
        }
    };
    Ok(Some(Page {
        listener,
        addr,
        token,
    }))
}

/// The page's access token, if one was made.
fn read_page_token(home: &Home) -> Result<Option<String>> {
    let path = home.page_token_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let token = text.trim();
            if token.len() < 32 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
                bail!(
                    "{} is damaged; make a new token with `potluck page-token --new`",
                    path.display()
                );
            }
            Ok(Some(token.to_owned()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// `potluck page-token`: makes the page's access token and shows it once.
pub fn page_token(home: &Home, out: &mut Output, new: bool) -> Result<()> {
    let path = home.page_token_path();
    if !new && read_page_token(home)?.is_some() {
        bail!(
            "a page token exists already ({}); `potluck page-token --new` replaces it",
            path.display()
        );
    }
    home.create()?;
    let token = potluck::web::security::new_secret();
    potluck::home::write_private(&path, format!("{token}\n").as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    out.print(json!({ "token": token, "file": path }), || {
        format!(
            "page token (shown here once; kept, readable only by you, in {}): {token}\n\
             To reach the page from another device, serve it beyond this computer \
             (`potluck serve --web 0.0.0.0:7645`, restarting a running one) and open \
             http://HOST:7645/?token={token} there.",
            path.display()
        )
    });
    Ok(())
}

/// `potluck open`: the running node's page, opened in the default browser
/// by the process the person ran (a node may run as a service).
pub fn open(ctx: &Ctx, out: &mut Output, print: bool) -> Result<()> {
    let Some(serving) = &ctx.serving else {
        bail!(
            "no node is running for this home: start one with `potluck serve`, then `potluck open`"
        );
    };
    let Some(url) = &serving.page else {
        bail!("the running node serves no page (it was started with --no-web or \"web\": \"off\")");
    };
    out.print(json!({ "page": url, "open": !print }), || url.clone());
    Ok(())
}

/// Opens `url` in the default browser (`$BROWSER` is honoured).
pub fn launch_browser(url: &str) -> Result<()> {
    webbrowser::open(url).with_context(|| format!("cannot start a browser; open {url} yourself"))
}

/// Binds the node's TCP port; a port in use says how to pick another.
fn bind_listener(listen: &str) -> Result<std::net::TcpListener> {
    let listener = match std::net::TcpListener::bind(listen) {
        Ok(listener) => listener,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let port = listen.rsplit_once(':').map_or("7643", |(_, p)| p);
            bail!(
                "cannot listen on {listen}: port {port} is in use (another potluck node \
                 for another home?); give this one its own port, e.g. \
                 `potluck serve --listen 0.0.0.0:7653`"
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot listen on {listen}")),
    };
    listener
        .set_nonblocking(true)
        .with_context(|| format!("cannot listen on {listen}"))?;
    Ok(listener)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Discovery settings from config.json and the flags (flags win); `None`
/// when discovery is off. A node listening on loopback (`local`) discovers
/// on loopback only: it listens there, announces only to loopback targets
/// and dials only loopback addresses it hears (see `discovery::Reach`).
fn discovery_settings(
    config: &ConfigFile,
    flags: &DiscoveryArgs,
    local: std::net::SocketAddr,
) -> Result<Option<DiscoverySettings>> {
    if flags.no_discovery || config.discovery == Some(false) {
        return Ok(None);
    }
    let Some(reach) = discovery::Reach::for_listen(local.ip()) else {
        tracing::info!(listen = %local, "LAN discovery is off: it has no broadcast on IPv6 loopback");
        return Ok(None);
    };
    let port = flags
        .discovery_port
        .or(config.discovery_port)
        .unwrap_or(discovery::DISCOVERY_PORT);
    let texts: Vec<String> = if !flags.discovery_targets.is_empty() {
        flags.discovery_targets.clone()
    } else if !config.discovery_targets.is_empty() {
        config.discovery_targets.clone()
    } else {
        vec![reach.default_target(port).to_string()]
    };
    let targets = texts
        .iter()
        .map(|t| {
            let target = t
                .parse::<std::net::SocketAddr>()
                .with_context(|| format!("discovery target `{t}` is not IP:PORT"))?;
            if !reach.allows_target(target) {
                anyhow::bail!(
                    "discovery target `{t}` is not on loopback, but the node listens on loopback ({}): announcing there would tell other machines about a port they cannot reach",
                    local.ip()
                );
            }
            Ok(target)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(DiscoverySettings {
        reach,
        port,
        targets,
        announce_port: local.port(),
        every: std::time::Duration::from_secs(discovery::ANNOUNCE_EVERY_SECS),
    }))
}

/// Longest a `sync` waits for the organizer's answers to the requests it
/// brought (the organizer's node decides as soon as it stores them).
const ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Pause between two looks for those answers.
const ANSWER_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// `potluck sync ADDR`: one exchange, both ways. When the peer organizes
/// an event we asked a place at and has not answered yet, `sync` waits a
/// little (at most [`ANSWER_WAIT`]) and exchanges again, so that one sync
/// brings back the decision.
pub fn sync(ctx: &Ctx, out: &mut Output, addr: &str) -> Result<()> {
    let peer = PeerAddr::parse(addr)?;
    let app = ctx.open_creating(out, true)?;
    let mut report = exchange(ctx, out, &app, &peer)?;
    let mut waiting = match report.peer {
        Some(organizer) => unanswered_requests(&app, &organizer)?,
        None => 0,
    };
    let deadline = std::time::Instant::now() + ANSWER_WAIT;
    while waiting > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(ANSWER_POLL);
        let again = exchange(ctx, out, &app, &peer)?;
        report.received += again.received;
        report.sent += again.sent;
        report.bytes_in += again.bytes_in;
        report.bytes_out += again.bytes_out;
        if let Some(organizer) = report.peer {
            waiting = unanswered_requests(&app, &organizer)?;
        }
    }
    app.store().flush()?;
    let peer_name = peer_label(&app, report.peer.as_ref(), &peer.addr)?;
    out.print(
        json!({
            "peer": report.peer,
            "received": report.received,
            "sent": report.sent,
            "bytes_in": report.bytes_in,
            "bytes_out": report.bytes_out,
            "unanswered_requests": waiting,
        }),
        || {
            format!(
                "synced with {peer_name}: received {}, sent {}",
                when::plural(report.received, "message", "messages"),
                report.sent
            )
        },
    );
    if waiting > 0 {
        out.note(format!(
            "{peer_name} has not decided on {} of yours yet; \
             `potluck agenda` shows the answer after a later sync",
            when::plural(waiting, "request", "requests")
        ));
    }
    Ok(())
}

/// Our `going` requests to upcoming events organized by `organizer` that
/// it has not decided on yet.
fn unanswered_requests(app: &App, organizer: &FeedId) -> Result<u64> {
    let pending = app
        .agenda(cli::now_ms())?
        .iter()
        .filter(|item| {
            item.state.author == *organizer
                && item.mine.admission == Some(potluck::admission::AdmissionStatus::Pending)
        })
        .count();
    Ok(pending as u64)
}

/// One exchange with `peer`.
fn exchange(ctx: &Ctx, out: &Output, app: &App, peer: &PeerAddr) -> Result<SessionReport> {
    let node = app.node().context("no identity loaded")?.clone();
    let report = match &ctx.node {
        // Inside a running node: its runtime.
        Some(_) => {
            let handle =
                tokio::runtime::Handle::try_current().context("the node's runtime is gone")?;
            match handle.block_on(node.dial(peer, true)) {
                // Already connected: everything flows live on that connection.
                Err(ConnectionError::Duplicate(feed)) => Ok(SessionReport {
                    peer: Some(feed),
                    ..SessionReport::default()
                }),
                other => other,
            }
        }
        None => {
            let mut line = cli::ProgressLine::new(ctx, out, format!("syncing with {}", peer.addr));
            let changes = app.subscribe();
            runtime()?.block_on(async move {
                // The node reports a connection's catch-up every second.
                let watcher = changes.map(|mut changes| {
                    tokio::spawn(async move {
                        while let Some(change) = changes.next().await {
                            if let Change::Progress {
                                received,
                                remaining,
                                ..
                            } = change
                            {
                                line.show_of_total(received, received.saturating_add(remaining));
                            }
                        }
                    })
                });
                let report = node.dial(peer, true).await;
                if let Some(watcher) = watcher {
                    // Dropping the line clears it.
                    watcher.abort();
                    let _ = watcher.await;
                }
                report
            })
        }
    }
    .with_context(|| format!("sync with {peer} failed"))?;
    Ok(report)
}

/// One exchange with `peer`, through the running node or a node of our own.
fn sync_once(ctx: &Ctx, out: &Output, peer: &PeerAddr) -> Result<SessionReport> {
    let app = ctx.open_creating(out, true)?;
    let report = exchange(ctx, out, &app, peer)?;
    app.store().flush()?;
    Ok(report)
}

/// A peer for people: its name when known, else its short feed id, else
/// the address dialled.
fn peer_label(app: &App, feed: Option<&FeedId>, addr: &str) -> Result<String> {
    let Some(feed) = feed else {
        return Ok(addr.to_owned());
    };
    let name = app.name_of(feed)?;
    Ok(cli::person(name.as_deref(), feed))
}

/// `potluck invite`: a one-line code that brings someone into this network.
///
/// The address in the code is, in this order: `--addr`; the address the
/// running node actually listens on (handed over with the command); or,
/// with no node running, the listen address of `config.json`. An address
/// on every interface becomes this computer's address on the network.
pub fn invite(ctx: &Ctx, out: &mut Output, addr: Option<String>) -> Result<()> {
    let config = ConfigFile::load(&ctx.home)?;
    let me = own_feed(ctx)?;
    let given = addr.is_some();
    let (code, addr) = match addr {
        Some(addr) => (invite_for(&config, me, &addr)?, addr),
        None => {
            // The running node's real address, else what config.json says.
            let listen = match &ctx.serving {
                Some(serving) => serving.listen,
                None => config
                    .listen
                    .as_deref()
                    .unwrap_or(DEFAULT_LISTEN)
                    .parse()
                    .context("the listen address in config.json is not IP:PORT")?,
            };
            invite_code(&config, me, listen)?
        }
    };
    let loopback_only = addr
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback());
    out.print(
        json!({
            "code": code,
            "addr": addr,
            "node_running": ctx.node.is_some(),
            "loopback_only": loopback_only,
        }),
        || code.clone(),
    );
    out.note(format!("the code names {addr}"));
    if loopback_only {
        out.note(format!(
            "note: {addr} is a loopback address: this code works only on this computer \
             (listen on another address with `serve --listen`, or give `--addr HOST:PORT`)"
        ));
    }
    if ctx.node.is_none() && !given {
        out.note(
            "no node is running: the address comes from config.json; start `potluck serve` \
             so that someone can join",
        );
    }
    Ok(())
}

/// The invite code of `me` at `addr` on the configured network.
fn invite_for(config: &ConfigFile, me: FeedId, addr: &str) -> Result<String> {
    let peer = PeerAddr::parse(&format!("{me}@{addr}"))?;
    let network = config
        .network_key
        .is_some()
        .then(|| config.network_key())
        .transpose()?;
    Ok(Invite { peer, network }.to_code())
}

/// The invite code of a node listening on `listen`, and the address in it.
fn invite_code(
    config: &ConfigFile,
    me: FeedId,
    listen: std::net::SocketAddr,
) -> Result<(String, String)> {
    let addr = guess_address(listen)?;
    Ok((invite_for(config, me, &addr)?, addr))
}

/// This computer's address for others to dial: the listen address, or,
/// when that is every interface, the address of the interface that has a
/// route out (found with a UDP socket's `connect`, which sends nothing).
fn guess_address(listen: std::net::SocketAddr) -> Result<String> {
    if !listen.ip().is_unspecified() {
        return Ok(listen.to_string());
    }
    let probe = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:7643").map(|()| s))
        .and_then(|s| s.local_addr());
    match probe {
        Ok(local) if !local.ip().is_unspecified() => {
            Ok(std::net::SocketAddr::new(local.ip(), listen.port()).to_string())
        }
        _ => bail!("cannot tell this computer's address: pass --addr HOST:PORT"),
    }
}

/// Our own feed id, from the running node or the key file.
fn own_feed(ctx: &Ctx) -> Result<potluck::message::FeedId> {
    Ok(match &ctx.node {
        Some(node) => node.feed_id(),
        None => Identity::load(&ctx.home)?.feed_id(),
    })
}

/// `potluck join CODE`: remember the inviter, take the network key (on a
/// new home), sync once, and follow the inviter.
pub fn join(ctx: &Ctx, out: &mut Output, code: &str) -> Result<()> {
    let invite = Invite::parse(code)?;
    let home = &ctx.home;
    let fresh = ctx.node.is_none() && !home.secret_path().exists();
    let mut config = ConfigFile::load(home)?;
    let current = config.network_key()?;
    match &invite.network {
        Some(key) if *key != current && !fresh => bail!(
            "this invite is for a private network, and this home is on another one; join with a new home (--home DIR)"
        ),
        None if current != DEFAULT_NETWORK_KEY => bail!(
            "this invite is for the public network, and this home is on a private one; join with a new home (--home DIR)"
        ),
        _ => {}
    }
    if fresh {
        // The identity itself is created below, once the network is set.
        home.create()?;
    }
    if let Some(key) = &invite.network {
        config.network_key = Some(key.to_hex());
    }
    let peer_text = invite.peer.to_string();
    if !config.peers.contains(&peer_text) {
        config.peers.push(peer_text);
    }
    config.save(home)?;
    // Follow first, so the one sync also carries the follow to the inviter.
    let app = ctx.open_creating(out, true)?;
    let inviter = app.accept_invite(&invite, crate::cli::now_ms())?;
    drop(app);
    let report = sync_once(ctx, out, &invite.peer)?;
    // Remember the inviter in the peer book too.
    let inviter_name;
    {
        let opened = ctx.open_store()?;
        inviter_name = peer_label(&opened, Some(&inviter), &invite.peer.addr)?;
        let mut record = opened
            .store()
            .peer_record(&invite.peer.addr)?
            .unwrap_or_else(|| {
                PeerRecord::new(
                    invite.peer.addr.clone(),
                    invite.peer.feed,
                    PeerSource::Invite,
                )
            });
        record.succeeded(inviter, crate::cli::now_ms());
        opened.store().put_peer_record(&record)?;
    }
    if let Some(node) = &ctx.node
        && let Ok(handle) = tokio::runtime::Handle::try_current()
    {
        // Keep the new peer connected from now on.
        handle.spawn(
            node.clone()
                .dial_loop(invite.peer.clone(), PeerSource::Invite),
        );
    }
    out.print(
        json!({
            "peer": invite.peer.to_string(),
            "following": inviter,
            "received": report.received,
            "sent": report.sent,
        }),
        || {
            format!(
                "joined: following {}, received {}; `potluck serve` keeps you connected",
                inviter_name,
                when::plural(report.received, "message", "messages")
            )
        },
    );
    Ok(())
}

/// `potluck recover`: fetches our own feed back from peers until the store
/// holds everything this home published, so that publishing can go on
/// without forking the feed; or, with `start_over`, accepts the loss.
pub fn recover(ctx: &Ctx, out: &mut Output, addrs: &[String], start_over: bool) -> Result<()> {
    let me = own_feed(ctx)?;
    let behind = || -> Result<Option<(u64, u64)>> {
        let opened = ctx.open_store()?;
        Ok(opened.store().own_feed_behind(&me)?)
    };
    if start_over {
        let holds = ctx.open_store()?.store().accept_published_loss(&me)?;
        out.print(json!({ "feed": me, "holds": holds, "started_over": true }), || {
            format!(
                "publishing {me} on from #{holds}; peers that hold later messages of it will see a fork and keep theirs"
            )
        });
        return Ok(());
    }
    let Some((_, published)) = behind()? else {
        let holds = ctx
            .open_store()?
            .store()
            .head(&me)?
            .map_or(0, |h| h.sequence);
        out.print(
            json!({ "feed": me, "holds": holds, "recovered": true }),
            || format!("nothing to recover: the store holds {me} up to #{holds}"),
        );
        return Ok(());
    };
    let mut peers = Vec::new();
    if addrs.is_empty() {
        peers.extend(ConfigFile::load(&ctx.home)?.peer_addrs()?);
        for record in ctx.open_store()?.store().peer_records()? {
            if !peers.iter().any(|p: &PeerAddr| p.addr == record.addr) {
                peers.push(PeerAddr {
                    feed: record.feed,
                    addr: record.addr,
                });
            }
        }
    } else {
        for addr in addrs {
            peers.push(PeerAddr::parse(addr)?);
        }
    }
    if peers.is_empty() {
        bail!(
            "no peer to recover {me} from: name one (`potluck recover HOST:PORT`), or `potluck import` a bundle of your feed"
        );
    }
    let mut failures = Vec::new();
    for peer in &peers {
        if let Err(e) = sync_once(ctx, out, peer) {
            failures.push(format!("{peer}: {}", cli::one_line(&e)));
        }
        if behind()?.is_none() {
            out.print(
                json!({ "feed": me, "holds": published, "recovered": true, "from": peer.to_string() }),
                || format!("recovered {me} up to #{published} from {peer}; publishing is allowed again"),
            );
            return Ok(());
        }
    }
    let holds = behind()?.map_or(published, |(holds, _)| holds);
    bail!(
        "{me} is still behind after {} peers: the store holds #{holds} of the #{published} this home published{}; try another peer, `potluck import` a bundle of your feed, or `potluck recover --start-over`",
        peers.len(),
        if failures.is_empty() {
            String::new()
        } else {
            format!(" ({})", failures.join("; "))
        }
    )
}

/// `potluck peers`: connected peers (from a running node) and the peer
/// book: every known address with when it was last seen and synced.
pub fn peers(ctx: &Ctx, out: &mut Output) -> Result<()> {
    let connected = ctx.node.as_ref().map(|n| n.peers()).unwrap_or_default();
    let opened = ctx.open_store()?;
    let book = opened.store().peer_records()?;
    let forked = opened.store().forked_feeds()?;
    let running = ctx.node.is_some();
    // Names instead of feed ids, for people.
    let mut names = std::collections::HashMap::new();
    for feed in connected
        .iter()
        .map(|p| p.feed)
        .chain(book.iter().filter_map(|r| r.feed))
    {
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(feed) {
            let name = opened.name_of(&feed)?;
            slot.insert(cli::person(name.as_deref(), &feed));
        }
    }
    let when = |ms: Option<i64>| {
        ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .map_or_else(
                || "never".to_owned(),
                // In this computer's zone, labelled, as everywhere else.
                |t| potluck::when::format_instant(t, &potluck::when::local_zone()),
            )
    };
    out.print(
        json!({
            "node_running": running,
            "connected": connected,
            "book": book,
            "forked": cli::forked_json(&forked),
        }),
        || {
            let mut text = String::new();
            if !running {
                text.push_str("no node running (start one with `potluck serve`)\n");
            }
            if !connected.is_empty() {
                text.push_str("connected:\n");
            }
            for p in &connected {
                text.push_str(&format!(
                    "  {}  {}  {}  since {}  received {}, sent {}  {}\n",
                    names.get(&p.feed).cloned().unwrap_or_default(),
                    p.address,
                    if p.outbound { "out" } else { "in" },
                    when(Some(p.connected_since_ms)),
                    p.received,
                    p.sent,
                    if p.caught_up {
                        "caught up".to_owned()
                    } else {
                        format!("catching up, {} to go", when::thousands(p.remaining))
                    }
                ));
            }
            if !book.is_empty() {
                text.push_str("known addresses:\n");
            }
            for r in &book {
                let source = serde_json::to_value(r.source)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                text.push_str(&format!(
                    "  {}  {}  {source}  seen {}  synced {}  failures {}\n",
                    r.addr,
                    r.feed
                        .and_then(|f| names.get(&f).cloned())
                        .unwrap_or_else(|| "(feed unknown)".into()),
                    when(r.last_seen_ms),
                    when(r.last_success_ms),
                    r.failures
                ));
            }
            if !forked.is_empty() {
                text.push_str("forked feeds:");
                text.push_str(&cli::forked_text(&forked));
                text.push('\n');
            }
            if text.is_empty() {
                text.push_str("no peers yet");
            }
            text.trim_end().to_owned()
        },
    );
    Ok(())
}
