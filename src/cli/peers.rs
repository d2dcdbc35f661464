//! The commands that reach peers once, or tell about them: `sync`,
//! `join`, `recover`, `invite` and `peers`. Each goes through the running
//! node when there is one, else through a node of its own for the
//! exchange.

use anyhow::{Context, Result, bail};
use serde_json::json;

use potluck::app::when;
use potluck::app::{App, CatchUp, Change};
use potluck::feed::message::FeedId;
use potluck::home::config::{ConfigFile, DEFAULT_LISTEN, Invite, PeerAddr};
use potluck::node::{ConnectionError, SessionReport};
use potluck::proto::handshake::DEFAULT_NETWORK_KEY;
use potluck::proto::peerbook::{PeerRecord, PeerSource};

use super::ctx::{Ctx, now_ms, runtime};
use super::output::{Output, ProgressLine, forked_json, forked_text, one_line, person};

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
        .agenda(now_ms())?
        .iter()
        .filter(|item| {
            item.state.author == *organizer
                && item.mine.admission == Some(potluck::node::admission::AdmissionStatus::Pending)
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
            let mut line = ProgressLine::new(
                out,
                ctx.node.is_some(),
                format!("syncing with {}", peer.addr),
            );
            let changes = app.subscribe();
            runtime()?.block_on(async move {
                // The node reports a connection's catch-up every second.
                let watcher = changes.map(|mut changes| {
                    tokio::spawn(async move {
                        while let Some(change) = changes.next().await {
                            if let Change::Progress(CatchUp {
                                received,
                                remaining,
                                ..
                            }) = change
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
    Ok(person(name.as_deref(), feed))
}

/// `potluck invite`: a one-line code that brings someone into this network.
///
/// The address in the code is, in this order: `--addr`; the address the
/// running node actually listens on (handed over with the command); or,
/// with no node running, the listen address of `config.json`. An address
/// on every interface becomes this computer's address on the network.
pub fn invite(ctx: &Ctx, out: &mut Output, addr: Option<String>) -> Result<()> {
    let config = ConfigFile::load(&ctx.home)?;
    let me = ctx.own_feed()?;
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
pub(crate) fn invite_code(
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
    let inviter = app.accept_invite(&invite, now_ms())?;
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
        record.succeeded(inviter, now_ms());
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
    let me = ctx.own_feed()?;
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
            failures.push(format!("{peer}: {}", one_line(&e)));
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
            slot.insert(person(name.as_deref(), &feed));
        }
    }
    let when = |ms: Option<i64>| {
        ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .map_or_else(
                || "never".to_owned(),
                // In this computer's zone, labelled, as everywhere else.
                |t| potluck::app::when::format_instant(t, &potluck::app::when::local_zone()),
            )
    };
    out.print(
        json!({
            "node_running": running,
            "connected": connected,
            "book": book,
            "forked": forked_json(&forked),
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
                text.push_str(&forked_text(&forked));
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
