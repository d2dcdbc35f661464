//! The node's own commands: `serve` (the tokio runtime, the node, its
//! web page and control socket, until Ctrl-C), `page-token` and `open`.
//! The protocol itself lives in the library.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::net::TcpListener;

use potluck::app::when;
use potluck::app::{App, CatchUp, Change};
use potluck::feed::message::FeedId;
use potluck::home::Home;
use potluck::home::config::{ConfigFile, DEFAULT_LISTEN, DEFAULT_WEB, PeerAddr};
use potluck::node::control::ControlResponse;
use potluck::node::{DiscoverySettings, Node};
use potluck::proto::discovery;
use potluck::proto::peerbook::PeerSource;

use super::args::{DiscoveryArgs, WebArgs};
use super::ctx::{
    Ctx, Serving, identity_or_create, node_config, open_identity_store, runtime, welcome,
};
use super::output::{Output, person, write_stdout};
use super::peers::invite_code;

/// Runs a command handed over by the control socket, inside the node
/// (`cli::run_in_node`). `serve` takes it as an argument so that this
/// file needs not import the dispatch, which imports it.
pub(crate) type RunInNode = fn(&Home, &Arc<Node>, &Serving, Vec<String>) -> ControlResponse;

/// `potluck serve`: runs until Ctrl-C or SIGTERM. Commands that arrive on
/// the control socket are run with `run_in_node`.
pub fn serve(
    home: &Home,
    listen: Option<String>,
    extra_peers: Vec<String>,
    discovery: DiscoveryArgs,
    web: WebArgs,
    run_in_node: RunInNode,
) -> Result<()> {
    // Only a Unix control socket hands commands over.
    #[cfg(not(unix))]
    let _ = run_in_node;
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
    let (identity, created) = identity_or_create(home)?;
    // A new identity has published nothing; an old one's store is checked
    // for having been lost.
    let store = Arc::new(open_identity_store(home, created)?);
    if created {
        welcome(home, &store, &identity, false, true)?;
    }
    let node_config = node_config(&identity, &config)?;
    let rt = runtime()?;
    rt.block_on(async move {
        let node = Node::new(store.clone(), node_config);
        // Requests may have arrived while no node of ours was running.
        let settler = node.clone();
        tokio::task::spawn_blocking(move || settler.settle_all())
            .await
            .context("settling admissions failed")??;
        let listener = TcpListener::from_std(std_listener)
            .with_context(|| format!("cannot listen on {listen}"))?;
        let local = listener.local_addr()?;
        #[cfg(unix)]
        let control = potluck::node::control::bind(&potluck::node::control::socket_path(home))?;
        let page_url = page.as_ref().map(Page::url);
        let mut started = format!("potluck node {} listening on {local}\n", node.feed_id());
        if let Some(url) = &page_url {
            started.push_str(&format!("page: {url}\n"));
        }
        write_stdout(&started)?;
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
        if let Some(settings) = discovery_settings(&config, &discovery, local.port())? {
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
            let serving = Serving {
                listen: local,
                page: page_url.clone(),
            };
            let handler: potluck::node::control::Handler = Arc::new(move |args| {
                run_in_node(&handler_home, &handler_node, &serving, args)
            });
            tasks.push(tokio::spawn(potluck::node::control::serve(
                control,
                potluck::node::control::socket_path(home),
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
        let Change::Progress(CatchUp {
            peer,
            received,
            remaining,
            caught_up,
        }) = change
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
        let who = person(name.as_deref(), &peer);
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
/// when discovery is off.
fn discovery_settings(
    config: &ConfigFile,
    flags: &DiscoveryArgs,
    announce_port: u16,
) -> Result<Option<DiscoverySettings>> {
    if flags.no_discovery || config.discovery == Some(false) {
        return Ok(None);
    }
    let port = flags
        .discovery_port
        .or(config.discovery_port)
        .unwrap_or(discovery::DISCOVERY_PORT);
    let texts: Vec<String> = if !flags.discovery_targets.is_empty() {
        flags.discovery_targets.clone()
    } else if !config.discovery_targets.is_empty() {
        config.discovery_targets.clone()
    } else {
        vec![format!("255.255.255.255:{port}")]
    };
    let targets = texts
        .iter()
        .map(|t| {
            t.parse::<std::net::SocketAddr>()
                .with_context(|| format!("discovery target `{t}` is not IP:PORT"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(DiscoverySettings {
        bind: std::net::SocketAddr::from(([0, 0, 0, 0], port)),
        targets,
        announce_port,
        every: std::time::Duration::from_secs(discovery::ANNOUNCE_EVERY_SECS),
    }))
}
