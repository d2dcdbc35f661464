//! `potluck hub …`: a hub's members (on the hub), and the hubs a node
//! belongs to (on a member's node); and the member-code options of
//! `potluck invite` on a hub.

use anyhow::Result;
use serde_json::json;

use potluck::app::{AppError, Invite, MemberCodeOptions, when};
use potluck::feed::message::FeedId;

use super::args::HubCommand;
use super::ctx::Ctx;
use super::output::Output;

/// Runs one `potluck hub` command.
pub fn run(ctx: &Ctx, out: &mut Output, command: HubCommand) -> Result<()> {
    match command {
        HubCommand::Members => members(ctx, out),
        HubCommand::Remove { feed } => {
            let feed = FeedId::parse(&feed)?;
            let was = ctx.open()?.hub_remove(&feed)?;
            out.print(json!({ "feed": feed, "removed": was }), || {
                if was {
                    format!("removed {feed}: the hub refuses its connections from now on")
                } else {
                    format!("{feed} is not a member; nothing changed")
                }
            });
            Ok(())
        }
        HubCommand::Admit { feed, note } => {
            let feed = FeedId::parse(&feed)?;
            ctx.open()?.hub_admit(&feed, note)?;
            out.print(json!({ "feed": feed, "member": true }), || {
                format!("{feed} is a member")
            });
            Ok(())
        }
        HubCommand::Add { code } => {
            let invite = Invite::parse(&code).map_err(AppError::from)?;
            if invite.member.is_none() {
                anyhow::bail!(
                    "this code is no hub's member code; to follow the person who made it, use `potluck join CODE`"
                );
            }
            let app = ctx.open()?;
            let joined = app.join_hub(&invite, |_, _| {})?;
            super::peers::note_feed_not_back(&app, out)?;
            let session = joined.session.unwrap_or_default();
            out.print(
                json!({
                    "hub": invite.peer.to_string(),
                    "received": session.received,
                    "sent": session.sent,
                }),
                || {
                    format!(
                        "you are a member of the hub {} (sent {}, received {}); `potluck serve` keeps you connected to it",
                        joined.inviter_label,
                        when::plural(session.sent, "message", "messages"),
                        session.received
                    )
                },
            );
            Ok(())
        }
        HubCommand::List => {
            let hubs = ctx.open_store()?.hubs()?;
            let list: Vec<String> = hubs.iter().map(ToString::to_string).collect();
            out.print(json!({ "hubs": list }), || {
                if list.is_empty() {
                    "no hubs yet: add one with `potluck hub add CODE`".to_owned()
                } else {
                    list.join("\n")
                }
            });
            Ok(())
        }
    }
}

/// `potluck hub members`.
fn members(ctx: &Ctx, out: &mut Output) -> Result<()> {
    let members = ctx.open_store()?.hub_members()?;
    let rows: Vec<serde_json::Value> = members
        .iter()
        .map(|m| {
            json!({
                "feed": m.feed,
                "name": m.label,
                "since_ms": m.since_ms,
                "note": m.note,
                "stored_bytes": m.stored_bytes,
                "quota_bytes": m.quota_bytes,
                "connected": m.connected,
            })
        })
        .collect();
    out.print(json!({ "members": rows }), || {
        if members.is_empty() {
            return "no members yet: make a member code with `potluck invite`".to_owned();
        }
        let zone = when::local_zone();
        members
            .iter()
            .map(|m| {
                let since = jiff::Timestamp::from_millisecond(m.since_ms)
                    .map(|t| when::format_instant(t, &zone))
                    .unwrap_or_default();
                format!(
                    "{}  {}  since {since}  stored {} of {} bytes{}{}",
                    m.label,
                    m.feed,
                    when::thousands(m.stored_bytes),
                    when::thousands(m.quota_bytes),
                    if m.connected { "  connected" } else { "" },
                    m.note
                        .as_deref()
                        .map(|n| format!("  ({})", when::sanitize_line(n)))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// How long a member code works, from `--expires`: `30m`, `12h` or `7d`.
pub fn valid_for_ms(text: &str) -> Result<i64> {
    let text = text.trim();
    let units = [('m', 60_000), ('h', 3_600_000), ('d', 86_400_000)];
    let Some((number, unit_ms)) = units
        .iter()
        .find_map(|&(unit, ms)| text.strip_suffix(unit).map(|n| (n, ms)))
    else {
        anyhow::bail!("--expires takes a number and m, h or d (30m, 12h, 7d), not {text:?}");
    };
    let n: i64 = number
        .parse()
        .ok()
        .filter(|n| (1..=3650).contains(n))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--expires takes a number from 1 to 3650 and m, h or d (30m, 12h, 7d), not {text:?}"
            )
        })?;
    Ok(n * unit_ms)
}

/// The member-code options of `potluck invite`.
pub fn code_options(uses: u32, expires: &str, note: Option<String>) -> Result<MemberCodeOptions> {
    Ok(MemberCodeOptions {
        uses,
        valid_for_ms: valid_for_ms(expires)?,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_a_number_and_a_unit() {
        assert_eq!(valid_for_ms("30m").unwrap(), 1_800_000);
        assert_eq!(valid_for_ms("12h").unwrap(), 43_200_000);
        assert_eq!(valid_for_ms("7d").unwrap(), 604_800_000);
        for bad in [
            "", "d", "7", "7w", "0d", "-1d", "99999d", "１d", "7é", "7日", "日",
        ] {
            assert!(valid_for_ms(bad).is_err(), "{bad}");
        }
    }
}
