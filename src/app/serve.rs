//! Running the node: the ports it listens on, what it dials and whether
//! it looks for peers on the LAN, from `config.json` and the flags of
//! `potluck serve`; its start and its end. The page and the control
//! socket are front ends, composed by the binary around this.

use std::net::SocketAddr;

use tokio::task::JoinHandle;

use crate::home::Home;
use crate::home::config::{ConfigFile, DEFAULT_LISTEN, DEFAULT_WEB, PeerAddr, TlsFiles};
use crate::node::DiscoverySettings;
use crate::proto::discovery;

use super::{App, AppError, CatchUp, Change, GuestLimits, PageToken, PublicNetwork, person, when};

/// LAN discovery as the flags of `serve` set it (each flag wins over
/// `config.json`).
#[derive(Clone, Debug, Default)]
pub struct DiscoveryOptions {
    /// Discovery off.
    pub off: bool,
    /// The discovery UDP port.
    pub port: Option<u16>,
    /// Where announcements go (`IP:PORT`).
    pub targets: Vec<String>,
}

/// How `serve` runs, as its flags say.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// Where to accept peers (`IP:PORT`; else `config.json`, else
    /// [`DEFAULT_LISTEN`]).
    pub listen: Option<String>,
    /// Peers to keep connected besides those of `config.json`.
    pub extra_peers: Vec<String>,
    /// LAN discovery.
    pub discovery: DiscoveryOptions,
    /// Run as a hub (`--hub`) even if `config.json` does not say so.
    pub hub: bool,
}

/// Where the running node serves: what a command handed to it may need.
#[derive(Clone, Debug)]
pub struct Serving {
    /// The address it accepts peers on.
    pub listen: SocketAddr,
    /// The web page's address (with the access token when one is needed),
    /// unless the page is off.
    pub page: Option<String>,
}

/// The node's TCP port, bound before anything else of `serve` is made:
/// when the port is taken, nothing has been created yet.
pub struct NodePort {
    listener: std::net::TcpListener,
    /// The configured peers (and `--peer`s), read with the port so that a
    /// malformed one is refused before anything is created.
    peers: Vec<PeerAddr>,
}

impl NodePort {
    /// Binds the port of `options.listen`, `config.json`'s or the default.
    pub fn bind(home: &Home, options: &StartOptions) -> Result<NodePort, AppError> {
        let config = ConfigFile::load(home)?;
        let mut peers = config.peer_addrs()?;
        // Our hubs are kept connected like configured peers.
        peers.extend(config.hub_addrs()?);
        for p in &options.extra_peers {
            peers.push(PeerAddr::parse(p)?);
        }
        let listen = options
            .listen
            .clone()
            .or_else(|| config.listen.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listener = match std::net::TcpListener::bind(&listen) {
            Ok(listener) => listener,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(AppError::PortInUse {
                    what: "listen",
                    addr: listen,
                    hint: "another potluck node for another home? Give this one its own port, \
                           e.g. `potluck serve --listen 0.0.0.0:7653`",
                });
            }
            Err(e) => return Err(listen_error(&listen, e)),
        };
        listener
            .set_nonblocking(true)
            .map_err(|e| listen_error(&listen, e))?;
        Ok(NodePort { listener, peers })
    }
}

fn listen_error(listen: &str, source: std::io::Error) -> AppError {
    AppError::Socket {
        what: "listen",
        addr: listen.to_owned(),
        source,
    }
}

fn page_error(addr: impl ToString, source: std::io::Error) -> AppError {
    AppError::Socket {
        what: "serve the page",
        addr: addr.to_string(),
        source,
    }
}

/// A non-blocking listener on `addr`, for the runtime to take over.
fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Binds an address a flag or `config.json` gave for a web server: `what`
/// it is for (in errors), an `example` of a good address, and how to pick
/// another when it is taken (`hint`).
fn bind_given(
    text: &str,
    what: &'static str,
    example: &'static str,
    hint: &'static str,
) -> Result<std::net::TcpListener, AppError> {
    let addr: SocketAddr = text.parse().map_err(|_| AppError::BadAddress {
        what,
        text: text.to_owned(),
        example,
    })?;
    bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            AppError::PortInUse {
                what,
                addr: addr.to_string(),
                hint,
            }
        } else {
            AppError::Socket {
                what,
                addr: addr.to_string(),
                source: e,
            }
        }
    })
}

/// How many ports after the default one a second node on this computer
/// tries for its page before it takes any free port.
const PAGE_PORT_TRIES: u16 = 20;

/// The web page's port, bound before the runtime takes it over: the one
/// given (`--web`, or `"web"` in config.json), which must be free, or the
/// default one or the next free port after it. Beyond loopback the page
/// can publish as the person, so it needs the access token (`potluck
/// page-token`); without it, binding refuses.
pub struct PagePort {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    token: Option<String>,
}

impl PagePort {
    /// Binds the page's port as `flag` (`--web`), `no_web` (`--no-web`)
    /// and `config.json` say; `None` when the page is off.
    pub fn bind(
        home: &Home,
        flag: Option<String>,
        no_web: bool,
    ) -> Result<Option<PagePort>, AppError> {
        let given = if no_web {
            return Ok(None);
        } else if let Some(addr) = flag {
            Some(addr)
        } else {
            match ConfigFile::load(home)?.web {
                Some(off) if off == "off" => return Ok(None),
                other => other,
            }
        };
        let listener = match given {
            Some(text) => bind_given(
                &text,
                "serve the page",
                "127.0.0.1:7645",
                "give another with `--web 127.0.0.1:PORT`, or turn the page off with `--no-web`",
            )?,
            None => {
                let default: SocketAddr =
                    DEFAULT_WEB.parse().map_err(|_| AppError::BadAddress {
                        what: "default page address",
                        text: DEFAULT_WEB.into(),
                        example: "127.0.0.1:7645",
                    })?;
                let found = (default.port()..)
                    .take(usize::from(PAGE_PORT_TRIES))
                    .find_map(|port| bind(SocketAddr::new(default.ip(), port)).ok());
                match found {
                    Some(listener) => listener,
                    None => bind(SocketAddr::new(default.ip(), 0))
                        .map_err(|e| page_error(default.ip(), e))?,
                }
            }
        };
        let addr = listener
            .local_addr()
            .map_err(|e| page_error("its port", e))?;
        let token = if addr.ip().is_loopback() {
            None
        } else {
            match PageToken::read(home)? {
                Some(token) => Some(token),
                None => {
                    return Err(AppError::Refused(format!(
                        "the page would listen on {addr}, where other computers can reach it, and it \
                         can publish as you: that needs an access token. Make one with \
                         `potluck page-token` (it is shown once), then start `potluck serve` again; \
                         or keep the page on this computer with `--web 127.0.0.1:7645`"
                    )));
                }
            }
        };
        Ok(Some(PagePort {
            listener,
            addr,
            token,
        }))
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The access token browsers must give (beyond loopback).
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The address people open (on this computer).
    pub fn url(&self) -> String {
        let host = if self.addr.ip().is_unspecified() {
            // Every interface: this computer reaches it on loopback.
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), self.addr.port())
        } else {
            self.addr
        };
        match &self.token {
            Some(token) => format!("http://{host}/?token={token}"),
            None => format!("http://{host}/"),
        }
    }

    /// The bound socket, for the page's server.
    pub fn into_listener(self) -> std::net::TcpListener {
        self.listener
    }
}

/// The port of a hub's public pages (`serve --hub --public-web ADDR`, or
/// `"public_web"` in config.json), bound with the node's other ports, and
/// what the pages show there. They are read-only and for everyone, so
/// they need no token wherever they listen; only a hub serves them.
pub struct PublicPort {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    network: PublicNetwork,
    base_url: Option<String>,
    answers: GuestLimits,
    tls: Option<TlsFiles>,
    trusted_proxy: Option<std::net::IpAddr>,
}

/// `serve`'s flags for the public pages; each overrides its key of
/// config.json.
#[derive(Clone, Debug, Default)]
pub struct PublicFlags {
    /// `--public-web ADDR` (`"public_web"`).
    pub addr: Option<String>,
    /// `--tls-cert FILE` and `--tls-key FILE`, given together
    /// (`"public_tls"`).
    pub tls: Option<TlsFiles>,
}

impl PublicPort {
    /// Binds the public pages' port as `flags` or `config.json` say;
    /// `None` when neither asks for them. `hub` is `serve --hub`: without
    /// it or `"hub"` in config.json, asking for them is an error, and so
    /// is a certificate without them.
    pub fn bind(
        home: &Home,
        flags: PublicFlags,
        hub: bool,
    ) -> Result<Option<PublicPort>, AppError> {
        let config = ConfigFile::load(home)?;
        let tls = flags.tls.or_else(|| config.public_tls.clone());
        let Some(text) = flags.addr.or_else(|| config.public_web.clone()) else {
            if tls.is_some() {
                return Err(AppError::Refused(
                    "a TLS certificate (--tls-cert/--tls-key, or \"public_tls\" in config.json) \
                     is for the hub's public pages: give them an address too, with \
                     `--public-web ADDR` or \"public_web\""
                        .into(),
                ));
            }
            return Ok(None);
        };
        if !hub && config.hub_limits().is_none() {
            return Err(AppError::Refused(
                "public pages (--public-web, or \"public_web\" in config.json) show a hub's \
                 members' events: start the hub with `potluck serve --hub --public-web ADDR`, \
                 or set \"hub\": true in config.json"
                    .into(),
            ));
        }
        let network = PublicNetwork::of_config(&config)?;
        let base_url = config.public_base_url()?;
        let trusted_proxy = config.public_trusted_proxy()?;
        let listener = bind_given(
            &text,
            "serve the public pages",
            "0.0.0.0:8080",
            "give another with `--public-web IP:PORT`",
        )?;
        let addr = listener.local_addr().map_err(|source| AppError::Socket {
            what: "serve the public pages",
            addr: text,
            source,
        })?;
        Ok(Some(PublicPort {
            listener,
            addr,
            network,
            base_url,
            answers: config.web_answers.clone().unwrap_or_default(),
            tls,
            trusted_proxy,
        }))
    }

    /// The certificate and key to serve HTTPS with, if any.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The reverse proxy whose `X-Forwarded-For` counts
    /// (`"public_trusted_proxy"`).
    pub fn trusted_proxy(&self) -> Option<std::net::IpAddr> {
        self.trusted_proxy
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Which events the pages show.
    pub fn network(&self) -> PublicNetwork {
        self.network
    }

    /// `"public_url"` of config.json, checked, without a trailing `/`.
    pub fn base_url(&self) -> Option<&str> {
        self.base_url.as_deref()
    }

    /// The limits on answers from browsers (`"web_answers"` of
    /// config.json).
    pub fn answers(&self) -> &GuestLimits {
        &self.answers
    }

    /// The bound socket, for the public pages' server.
    pub fn into_listener(self) -> std::net::TcpListener {
        self.listener
    }
}

impl App {
    /// Makes this app's node the running one: admissions that waited are
    /// settled, then it accepts peers on `port`, dials the configured
    /// peers and the peer book, runs LAN discovery, logs each peer's
    /// catch-up, and reminds of the events I am going to. `page` is the page's address, for commands handed over.
    /// Returns where it serves and its tasks, which end at
    /// [`App::shutdown`].
    pub async fn start(
        &self,
        port: NodePort,
        options: &StartOptions,
        page: Option<String>,
    ) -> Result<(Serving, Vec<JoinHandle<()>>), AppError> {
        let node = self.writer()?.clone();
        let config = ConfigFile::load(self.home()?)?;
        if let Some(quotas) = config.quotas.clone() {
            node.set_quota_limits(quotas);
        }
        match config.hub_limits() {
            Some(limits) => node.make_hub(limits),
            None if options.hub => node.make_hub(Default::default()),
            None => {}
        }
        if node.hub_limits().is_some() {
            tracing::info!("serving as a hub: members' feeds are stored and forwarded");
        }

        // Requests may have arrived while no node of ours was running.
        let settler = node.clone();
        tokio::task::spawn_blocking(move || settler.settle_all())
            .await
            .map_err(|e| AppError::Runtime {
                what: "settling admissions",
                reason: e.to_string(),
            })??;
        let listener = tokio::net::TcpListener::from_std(port.listener)
            .map_err(|e| listen_error("its port", e))?;
        let local = listener
            .local_addr()
            .map_err(|e| listen_error("its port", e))?;
        let discovery = discovery_settings(&config, &options.discovery, local)?;
        let mut tasks = node.start(listener, port.peers, discovery)?;
        if port_mapping_on(&config, local) {
            tasks.push(node.start_port_mapping(local));
            tasks.push(tokio::spawn(node.clone().tell_hubs_direct_loop()));
        }
        tasks.push(tokio::spawn(log_catch_up(self.clone())));
        // Reminders (docs/reminders.md): desktop notifications where a
        // session bus is, and the page's.
        tasks.extend(self.start_reminders(&config));
        let serving = Serving {
            listen: local,
            page,
        };
        // A second start of the same app keeps the first record.
        let _ = self.serving.set(serving.clone());
        Ok((serving, tasks))
    }

    /// Stops the running node: its connections and tasks end.
    pub fn shutdown(&self) {
        if let Some(node) = &self.node {
            node.shutdown();
        }
    }

    /// Completes once the node is shutting down.
    pub async fn stopped(&self) {
        let Some(node) = &self.node else {
            return;
        };
        let mut stop = node.subscribe_shutdown();
        let _ = stop.wait_for(|stopped| *stopped).await;
    }
}

/// Least time between two "catching up" lines about one peer.
const CATCH_UP_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Logs each peer's catch-up: how many messages came so far, at most
/// every [`CATCH_UP_LOG_EVERY`] (the node reports every second while they
/// arrive), and "caught up with NAME" once both sides hold what the other
/// has. Ends with the node.
async fn log_catch_up(app: App) {
    let Some(mut changes) = app.subscribe() else {
        return;
    };
    // When each connected peer's progress was last logged (an entry goes
    // when its peer is caught up or leaves).
    let mut logged: std::collections::HashMap<crate::feed::message::FeedId, std::time::Instant> =
        std::collections::HashMap::new();
    loop {
        let change = tokio::select! {
            _ = app.stopped() => return,
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

/// Discovery settings from config.json and the flags (flags win); `None`
/// when discovery is off. A node listening on loopback (`local`) discovers
/// on loopback only: it listens there, announces only to loopback targets
/// and dials only loopback addresses it hears (see `discovery::Reach`).
fn discovery_settings(
    config: &ConfigFile,
    flags: &DiscoveryOptions,
    local: SocketAddr,
) -> Result<Option<DiscoverySettings>, AppError> {
    if flags.off || config.discovery == Some(false) {
        return Ok(None);
    }
    let Some(reach) = discovery::Reach::for_listen(local.ip()) else {
        tracing::info!(listen = %local, "LAN discovery is off: it has no broadcast on IPv6 loopback");
        return Ok(None);
    };
    let port = flags
        .port
        .or(config.discovery_port)
        .unwrap_or(discovery::DISCOVERY_PORT);
    let texts: Vec<String> = if !flags.targets.is_empty() {
        flags.targets.clone()
    } else if !config.discovery_targets.is_empty() {
        config.discovery_targets.clone()
    } else {
        vec![reach.default_target(port).to_string()]
    };
    let targets = texts
        .iter()
        .map(|t| {
            let target = t.parse::<SocketAddr>().map_err(|_| AppError::BadAddress {
                what: "discovery target",
                text: t.clone(),
                example: "192.168.1.255:7644",
            })?;
            if !reach.allows_target(target) {
                return Err(AppError::Refused(format!(
                    "discovery target `{t}` is not on loopback, but the node listens on loopback ({}): announcing there would tell other machines about a port they cannot reach",
                    local.ip()
                )));
            }
            Ok(target)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(DiscoverySettings {
        reach,
        port,
        targets,
        announce_port: local.port(),
        every: std::time::Duration::from_secs(discovery::ANNOUNCE_EVERY_SECS),
    }))
}

/// Whether the node keeps its port mapped on the home router:
/// `config.json`'s `port_mapping`, else on when it listens on IPv4 beyond
/// loopback (see `proto::portmap::worth_mapping`). Asked for where it
/// cannot help (loopback, IPv6), it is said and skipped.
fn port_mapping_on(config: &ConfigFile, local: SocketAddr) -> bool {
    let worth = crate::proto::portmap::worth_mapping(local);
    match config.port_mapping {
        Some(true) if !worth => {
            tracing::info!(listen = %local, "port mapping is off: the router cannot forward to a node on loopback or IPv6");
            false
        }
        Some(on) => on,
        None => worth,
    }
}
