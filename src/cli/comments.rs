//! `comment` (write, reply, edit, delete, hide) and `comments` (the
//! thread, a page at a time, or the links shared).

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::json;

use potluck::app::{App, CommentShown, CommentView, ThreadPage, now_ms, person, when};
use potluck::content::{Comment, KnownContent};
use potluck::feed::message::MessageId;

use super::args::CommentArgs;
use super::ctx::Ctx;
use super::output::{KindedError, Output};

/// What `comment` was asked to do.
enum Act {
    Write { reply: Option<String>, text: String },
    Edit { comment: String, text: String },
    Delete(String),
    Hide { comment: String, hidden: bool },
}

impl Act {
    /// The act the arguments name, with the text where it needs one and
    /// none where it takes none.
    fn of(args: CommentArgs) -> Result<Act> {
        let needs_text = |text: Option<String>| {
            text.ok_or_else(|| {
                invalid("give the text of the comment: potluck comment EVENT \"text\"".into())
            })
        };
        let no_text = |what: &str| -> Result<()> {
            match args.text {
                Some(_) => Err(invalid(format!("--{what} takes no text")).into()),
                None => Ok(()),
            }
        };
        Ok(if let Some(comment) = args.edit {
            Act::Edit {
                comment,
                text: needs_text(args.text)?,
            }
        } else if let Some(comment) = args.delete {
            no_text("delete")?;
            Act::Delete(comment)
        } else if let Some(comment) = args.hide {
            no_text("hide")?;
            Act::Hide {
                comment,
                hidden: true,
            }
        } else if let Some(comment) = args.unhide {
            no_text("unhide")?;
            Act::Hide {
                comment,
                hidden: false,
            }
        } else {
            Act::Write {
                reply: args.reply,
                text: needs_text(args.text)?,
            }
        })
    }
}

/// Arguments that do not go together, as scripts see it.
fn invalid(message: String) -> KindedError {
    KindedError {
        kind: "invalid_input",
        message,
    }
}

/// `potluck comment EVENT TEXT [--reply ID]`, `--edit ID TEXT`,
/// `--delete ID`, `--hide ID`, `--unhide ID`.
pub(crate) fn comment(ctx: &Ctx, out: &mut Output, args: CommentArgs) -> Result<()> {
    let event_text = args.event.clone();
    let act = Act::of(args)?;
    // Check the text before opening the store.
    if let Act::Write { text, .. } | Act::Edit { text, .. } = &act {
        Comment {
            event: MessageId::default(),
            reply: None,
            seen: Vec::new(),
            text: text.clone(),
        }
        .validate()?;
    }
    let app = ctx.open()?;
    let event = app.resolve_event(&event_text)?;
    let (id, done) = match act {
        Act::Write { reply, text } => {
            let reply = reply.map(|r| app.resolve_comment(&event, &r)).transpose()?;
            let msg = app.comment(&event, text, reply, now_ms())?;
            let done = if reply.is_some() {
                "replied"
            } else {
                "commented"
            };
            (msg.id(), done)
        }
        Act::Edit { comment, text } => {
            let comment = app.resolve_comment(&event, &comment)?;
            app.edit_comment(&comment, text, now_ms())?;
            (comment, "edited")
        }
        Act::Delete(comment) => {
            let comment = app.resolve_comment(&event, &comment)?;
            app.delete_comment(&comment, now_ms())?;
            (comment, "removed")
        }
        Act::Hide { comment, hidden } => {
            let comment = app.resolve_comment(&event, &comment)?;
            app.hide_comment(&event, &comment, hidden, now_ms())?;
            (comment, if hidden { "hidden" } else { "shown again" })
        }
    };
    out.print(
        json!({ "event": event, "comment": id, "done": done }),
        || format!("{done}: {id}"),
    );
    Ok(())
}

/// `potluck comments EVENT [--after ID] [--limit N] [--links]`.
pub(crate) fn comments(
    ctx: &Ctx,
    out: &mut Output,
    event: &str,
    after: Option<&str>,
    limit: usize,
    links: bool,
) -> Result<()> {
    let app = ctx.open_store()?;
    let event = app.resolve_event(event)?;
    if links {
        return links_shared(&app, out, &event);
    }
    let after = after.map(|a| app.resolve_comment(&event, a)).transpose()?;
    let thread = app.thread(&event, ThreadPage { after, limit })?;
    if out.json {
        out.line(serde_json::to_value(&thread)?.to_string());
        return Ok(());
    }
    let zone = when::local_zone();
    let mut text = String::new();
    if thread.comments.is_empty() {
        let _ = writeln!(text, "No comments.");
    }
    for c in &thread.comments {
        comment_text(&mut text, c, &zone);
    }
    if let Some(next) = thread.next_after {
        let _ = writeln!(
            text,
            "More: potluck comments {} --after {}",
            when::short_id(&event.to_string()),
            when::short_id(&next.to_string())
        );
    }
    out.line(text.trim_end());
    Ok(())
}

/// One comment for people: who, when, its id, what it answers, and its
/// text indented (or why there is none).
fn comment_text(text: &mut String, c: &CommentView, zone: &jiff::tz::TimeZone) {
    let at = jiff::Timestamp::from_millisecond(c.timestamp)
        .map(|t| when::format_instant(t, zone))
        .unwrap_or_default();
    let id = c.id.to_string();
    let mut head = format!(
        "{} · {at} · {}",
        person(c.name.as_deref(), &c.author),
        when::short_id(&id)
    );
    if let Some(parent) = c.reply_to {
        let _ = write!(head, " · reply to {}", when::short_id(&parent.to_string()));
    }
    if c.shown == CommentShown::Edited {
        head.push_str(" · edited");
    }
    let _ = writeln!(text, "{head}");
    let body = match (&c.text, c.shown) {
        (Some(body), _) => when::sanitize_for_terminal(body).into_owned(),
        (None, CommentShown::Hidden) => "(hidden by the organizer)".to_owned(),
        (None, _) => "(removed)".to_owned(),
    };
    for line in body.lines() {
        let _ = writeln!(text, "    {line}");
    }
}

/// `comments --links`: the links shared, latest first.
fn links_shared(app: &App, out: &mut Output, event: &MessageId) -> Result<()> {
    let links = app.links_shared(event)?;
    if out.json {
        out.line(serde_json::to_value(&links)?.to_string());
        return Ok(());
    }
    if links.is_empty() {
        out.line("No links shared.");
    }
    for link in &links {
        out.line(format!(
            "{} ({})",
            when::sanitize_line(&link.url),
            person(link.name.as_deref(), &link.author)
        ));
    }
    Ok(())
}
