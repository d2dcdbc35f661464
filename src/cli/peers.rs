//! The commands that reach peers once, or tell about them: `sync`,
//! `join`, `recover`, `invite` and `peers`. Each goes through the running
//! node when there is one, else through a node of its own for the
//! exchange.

use anyhow::Result;
use serde_json::json;

use potluck::app::{App, AppError, Invite, MemberCodeOptions, PeerAddr, RecoverOutcome, when};

use super::ctx::Ctx;
use super::output::{Output, ProgressLine, forked_json, forked_text};

/// A progress line for an exchange with `addr`, as the app reports it.
fn progress(ctx: &Ctx, out: &Output, addr: &str) -> impl FnMut(u64, u64) + Send + Clone + 'static {
    let line = std::sync::Arc::new(std::sync::Mutex::new(ProgressLine::new(
        out,
        ctx.running.is_some(),
        format!("syncing with {addr}"),
    )));
    move |received, total| {
        if let Ok(mut line) = line.lock() {
            line.show_of_total(received, total);
        }
    }
}

/// `potluck sync ADDR`: one exchange, both ways, waiting a little for the
/// organizer's answers to the requests it brought (see [`App::sync`]).
pub fn sync(ctx: &Ctx, out: &mut Output, addr: &str) -> Result<()> {
    // A feed id alone: reach it through our hubs (a tunnel).
    let peer = match potluck::feed::message::FeedId::parse(addr.trim()) {
        Ok(feed) => PeerAddr::through_hubs(feed),
        Err(_) => PeerAddr::parse(addr).map_err(AppError::from)?,
    };
    let app = ctx.open_creating(out, true)?;
    let synced = app.sync(&peer, progress(ctx, out, &peer.addr))?;
    let report = &synced.session;
    let waiting = synced.unanswered_requests;
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
                "synced with {}: received {}, sent {}",
                synced.peer_label,
                when::plural(report.received, "message", "messages"),
                report.sent
            )
        },
    );
    if waiting > 0 {
        out.note(format!(
            "{} has not decided on {} of yours yet; \
             `potluck agenda` shows the answer after a later sync",
            synced.peer_label,
            when::plural(waiting, "request", "requests")
        ));
    }
    Ok(())
}

/// `potluck invite`: a one-line code that brings someone into this network
/// (see [`App::invite`] for the address in it).
pub fn invite(
    ctx: &Ctx,
    out: &mut Output,
    addr: Option<String>,
    options: MemberCodeOptions,
) -> Result<()> {
    let app = ctx.open()?;
    let invite = app.invite_with(addr, &options)?;
    let hub = app.is_hub()?;
    let addr = &invite.addr;
    out.print(
        json!({
            "code": invite.code,
            "addr": addr,
            "node_running": ctx.running.is_some(),
            "loopback_only": invite.loopback_only,
            "member_code": hub,
        }),
        || invite.code.clone(),
    );
    out.note(format!("the code names {addr}"));
    if hub {
        out.note(format!(
            "a member code of this hub: {} within {}; `potluck hub members` lists who joined",
            when::plural(
                u64::from(options.uses),
                "person may join",
                "people may join"
            ),
            validity_words(options.valid_for_ms)
        ));
    }
    if invite.loopback_only {
        out.note(format!(
            "note: {addr} is a loopback address: this code works only on this computer \
             (listen on another address with `serve --listen`, or give `--addr HOST:PORT`)"
        ));
    }
    if invite.from_config {
        out.note(
            "no node is running: the address comes from config.json; start `potluck serve` \
             so that someone can join",
        );
    }
    Ok(())
}

/// How long a member code works, in words: days, hours or minutes.
fn validity_words(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    match ms {
        ms if ms >= 86_400_000 && ms % 86_400_000 == 0 => {
            when::plural(ms / 86_400_000, "day", "days")
        }
        ms if ms >= 3_600_000 && ms % 3_600_000 == 0 => {
            when::plural(ms / 3_600_000, "hour", "hours")
        }
        ms => when::plural(ms.div_ceil(60_000), "minute", "minutes"),
    }
}

/// `potluck join CODE`: take the network key (on a new home), follow the
/// inviter, remember it, and sync once (see [`App::join`]).
pub fn join(ctx: &Ctx, out: &mut Output, code: &str) -> Result<()> {
    let invite = Invite::parse(code).map_err(AppError::from)?;
    if ctx.running.is_none() {
        // A new home takes the invite's network before its identity is made.
        App::prepare_join(&ctx.home, &invite)?;
    }
    let app = ctx.open_creating(out, true)?;
    if invite.member.is_some() {
        // A hub's member code: the same as `potluck hub add CODE`.
        drop(app);
        return super::hub::run(ctx, out, super::args::HubCommand::Add { code: code.into() });
    }
    let joined = app.join(&invite, true, progress(ctx, out, &invite.peer.addr))?;
    note_feed_not_back(&app, out)?;
    if joined.follow_waits {
        out.note(format!(
            "{} is not followed yet, since that would be published: `potluck follow {}` once your feed is back",
            joined.inviter_label, joined.inviter
        ));
    }
    let session = joined.session.unwrap_or_default();
    out.print(
        json!({
            "peer": invite.peer.to_string(),
            "following": joined.inviter,
            "received": session.received,
            "sent": session.sent,
            "through_hub": joined.through,
        }),
        || {
            let via = joined
                .through
                .as_deref()
                .map(|hub| format!(" through their hub {hub}"))
                .unwrap_or_default();
            format!(
                "joined: following {}, received {}{via}; `potluck serve` keeps you connected",
                joined.inviter_label,
                when::plural(session.received, "message", "messages")
            )
        },
    );
    Ok(())
}

/// After an exchange that may have brought our own feed back (`join`,
/// `hub add`): when it did not, says so and what to do, since publishing
/// waits for it.
pub(crate) fn note_feed_not_back(app: &App, out: &mut Output) -> Result<()> {
    if let Some((holds, published)) = app.own_feed_behind()? {
        out.note(format!(
            "your own feed is not back yet (held up to #{holds}, published at least up to #{published}), \
             so nothing can be published: `potluck recover HOST:PORT` from a node that holds it, or \
             `potluck serve` to fetch it from your peers and hubs as they connect"
        ));
    }
    Ok(())
}

/// `potluck recover`: fetches our own feed back from peers until the store
/// holds everything this home published, so that publishing can go on
/// without forking the feed; or, with `start_over`, accepts the loss.
pub fn recover(ctx: &Ctx, out: &mut Output, addrs: &[String], start_over: bool) -> Result<()> {
    let app = ctx.open()?;
    let me = app.feed_id()?;
    match app.recover(addrs, start_over)? {
        RecoverOutcome::StartedOver { holds } => {
            out.print(json!({ "feed": me, "holds": holds, "started_over": true }), || {
                format!(
                    "publishing {me} on from #{holds}; peers that hold later messages of it will see a fork and keep theirs"
                )
            })
        }
        RecoverOutcome::NothingToRecover { holds } => out.print(
            json!({ "feed": me, "holds": holds, "recovered": true }),
            || format!("nothing to recover: the store holds {me} up to #{holds}"),
        ),
        RecoverOutcome::Recovered { holds, from } => out.print(
            json!({ "feed": me, "holds": holds, "recovered": true, "from": from }),
            || format!("recovered {me} up to #{holds} from {from}; publishing is allowed again"),
        ),
    }
    Ok(())
}

/// `potluck peers`: connected peers (from a running node) and the peer
/// book: every known address with when it was last seen and synced.
pub fn peers(ctx: &Ctx, out: &mut Output) -> Result<()> {
    let view = ctx.open_store()?.network()?;
    let running = ctx.running.is_some();
    let connected: Vec<&potluck::app::PeerInfo> = view.connected.iter().map(|p| &p.info).collect();
    let book: Vec<&potluck::app::PeerRecord> = view.book.iter().map(|a| &a.record).collect();
    let forked = &view.forked;
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
            "forked": forked_json(forked),
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
                let route = match p.via_hub {
                    Some(hub) => {
                        format!(
                            "through hub {}",
                            potluck::app::person(view.name_of(&hub), &hub)
                        )
                    }
                    None => "direct".to_owned(),
                };
                text.push_str(&format!(
                    "  {}  {}  {}  {route}  since {}  received {}, sent {}  {}\n",
                    potluck::app::person(view.name_of(&p.feed), &p.feed),
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
                    r.feed.map_or_else(
                        || "(feed unknown)".into(),
                        |f| potluck::app::person(view.name_of(&f), &f)
                    ),
                    when(r.last_seen_ms),
                    when(r.last_success_ms),
                    r.failures
                ));
            }
            if !forked.is_empty() {
                text.push_str("forked feeds:");
                text.push_str(&forked_text(forked));
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
