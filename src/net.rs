//! The networked commands: `serve`, `sync` and `peers`. They set up the
//! tokio runtime and the node; the protocol itself lives in the library.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::json;
use tokio::net::TcpListener;

use potluck::config::{ConfigFile, DEFAULT_LISTEN, PeerAddr};
use potluck::home::Home;
use potluck::identity::Identity;
use potluck::node::{ConnectionError, Node, NodeConfig, SessionReport, Timing};
use potluck::store::Store;

use crate::cli::{self, Ctx, Opened, Output};

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
pub fn serve(home: &Home, listen: Option<String>, extra_peers: Vec<String>) -> Result<()> {
    let config = ConfigFile::load(home)?;
    let mut peers = config.peer_addrs()?;
    for p in &extra_peers {
        peers.push(PeerAddr::parse(p)?);
    }
    let listen = listen
        .or_else(|| config.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    home.create()?;
    let identity = match Identity::load(home) {
        Ok(identity) => identity,
        Err(potluck::identity::IdentityError::Missing { .. }) => {
            let identity = Identity::create(home)?;
            eprintln!("created a new identity {}", identity.feed_id());
            identity
        }
        Err(e) => return Err(e.into()),
    };
    let store = Arc::new(Store::open(&home.store_path())?);
    let node_config = node_config(&identity, &config)?;
    let rt = runtime()?;
    rt.block_on(async move {
        let node = Node::new(store.clone(), node_config);
        // Requests may have arrived while no node of ours was running.
        let settler = node.clone();
        tokio::task::spawn_blocking(move || settler.settle_all())
            .await
            .context("settling admissions failed")??;
        let listener = TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let local = listener.local_addr()?;
        #[cfg(unix)]
        let control = potluck::control::bind(&potluck::control::socket_path(home))?;
        println!("potluck node {} listening on {local}", node.feed_id());
        tracing::info!(feed = %node.feed_id(), %local, "listening");
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(node.clone().accept_loop(listener)));
        for peer in peers {
            tasks.push(tokio::spawn(node.clone().dial_loop(peer)));
        }
        #[cfg(unix)]
        {
            let handler_node = node.clone();
            let handler_home = home.clone();
            let handler: potluck::control::Handler =
                Arc::new(move |args| cli::run_in_node(&handler_home, &handler_node, args));
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

/// `potluck sync ADDR`: one exchange, both ways.
pub fn sync(ctx: &Ctx, out: &mut Output, addr: &str) -> Result<()> {
    let peer = PeerAddr::parse(addr)?;
    let report = match &ctx.node {
        // Inside a running node: use it (and its store).
        Some(node) => {
            let handle =
                tokio::runtime::Handle::try_current().context("the node's runtime is gone")?;
            match handle.block_on(node.clone().dial(&peer, true)) {
                // Already connected: everything flows live on that connection.
                Err(ConnectionError::Duplicate(feed)) => Ok(SessionReport {
                    peer: Some(feed),
                    ..SessionReport::default()
                }),
                other => other,
            }
        }
        None => {
            let opened = ctx.open()?;
            let Opened::Direct {
                store,
                identity: Some(identity),
            } = opened
            else {
                bail!("no identity loaded");
            };
            let config = ConfigFile::load(&ctx.home)?;
            let node = Node::new(store.clone(), node_config(&identity, &config)?);
            let report = runtime()?.block_on(node.dial(&peer, true));
            store.flush()?;
            report
        }
    }
    .with_context(|| format!("sync with {peer} failed"))?;
    let peer_id = report.peer.map(|p| p.to_string()).unwrap_or_default();
    out.print(
        json!({
            "peer": report.peer,
            "received": report.received,
            "sent": report.sent,
            "bytes_in": report.bytes_in,
            "bytes_out": report.bytes_out,
        }),
        || {
            format!(
                "synced with {peer_id}: received {} messages, sent {}",
                report.received, report.sent
            )
        },
    );
    Ok(())
}

/// `potluck peers`: connected peers (from a running node) and peers we
/// remember from earlier sessions.
pub fn peers(ctx: &Ctx, out: &mut Output) -> Result<()> {
    let connected = ctx.node.as_ref().map(|n| n.peers()).unwrap_or_default();
    let opened = ctx.open_store()?;
    let remembered: Vec<_> = opened
        .store()
        .remembered_peers()?
        .into_iter()
        .filter(|f| !connected.iter().any(|c| c.feed == *f))
        .collect();
    let config = ConfigFile::load(&ctx.home)?;
    let configured: Vec<String> = config.peers.clone();
    let running = ctx.node.is_some();
    out.print(
        json!({
            "node_running": running,
            "connected": connected,
            "known": remembered,
            "configured": configured,
        }),
        || {
            let mut text = String::new();
            if !running {
                text.push_str("no node running (start one with `potluck serve`)\n");
            }
            for p in &connected {
                let since = jiff::Timestamp::from_millisecond(p.connected_since_ms)
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                text.push_str(&format!(
                    "{}  {}  {}  since {}  received {}  sent {}\n",
                    p.feed,
                    p.address,
                    if p.outbound { "out" } else { "in" },
                    since,
                    p.received,
                    p.sent
                ));
            }
            for f in &remembered {
                text.push_str(&format!("{f}  (not connected)\n"));
            }
            for c in &configured {
                text.push_str(&format!("configured: {c}\n"));
            }
            if text.is_empty() {
                text.push_str("no peers yet");
            }
            text.trim_end().to_owned()
        },
    );
    Ok(())
}
