//! The commands about feeds and people: `init`, `whoami`, `name`,
//! `follow`, `unfollow`, `block`, `unblock` and `log`.

use anyhow::Result;
use serde_json::json;

use potluck::app::{Access, App, ContactChange, person, when};
use potluck::content::{About, KnownContent};
use potluck::feed::message::FeedId;

use super::ctx::{Ctx, NAME_HINT};
use super::output::{KindedError, Output};

/// `potluck init`: a new home and identity, on the public network or a
/// private one, with a name when given.
pub(crate) fn init(
    ctx: &Ctx,
    out: &mut Output,
    name: Option<String>,
    network_key: Option<String>,
    new_identity: bool,
) -> Result<()> {
    let home = &ctx.home;
    let about = match name {
        Some(name) => {
            let about = About {
                name,
                description: None,
            };
            about.validate()?;
            Some(about)
        }
        None => None,
    };
    if home.secret_path().exists() {
        let name = about.as_ref().map_or("Ana", |a| a.name.as_str());
        return Err(KindedError {
            kind: "exists",
            message: format!(
                "an identity already exists at {}; refusing to overwrite it. \
                 To set your name, use `potluck name {}`",
                home.secret_path().display(),
                shell_quote(name)
            ),
        }
        .into());
    }
    let access = if new_identity {
        Access::NewIdentity
    } else {
        Access::Create
    };
    App::set_network(home, network_key.as_deref())?;
    let app = App::open(home, access)?;
    if let Some(about) = &about {
        app.set_name(about.name.clone(), potluck::app::now_ms())?;
    }
    let id = app.feed_id()?;
    let name = about.map(|a| a.name);
    out.print(json!({ "id": id, "name": name }), || id.to_string());
    if name.is_none() {
        out.note(NAME_HINT);
    }
    Ok(())
}

/// `text` quoted for a POSIX shell, for commands shown to people.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,/@%+=:".contains(c));
    if plain {
        format!("\"{text}\"")
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// `potluck whoami`: our feed id and name.
pub(crate) fn whoami(ctx: &Ctx, out: &mut Output) -> Result<()> {
    let node = ctx.open()?;
    let id = node.feed_id()?;
    let name = node.name_of(&id)?;
    out.print(json!({ "id": id, "name": name }), || match &name {
        Some(n) => format!("{id} ({})", when::sanitize_line(n)),
        None => id.to_string(),
    });
    if name.is_none() {
        out.note(NAME_HINT);
    }
    Ok(())
}

/// `potluck follow`, `unfollow`, `block` and `unblock`: publishes a
/// contact message about `feed`.
pub(crate) fn contact(
    ctx: &Ctx,
    out: &mut Output,
    feed: &str,
    change: ContactChange,
) -> Result<()> {
    let target = FeedId::parse(feed)?;
    let app = ctx.open_creating(out, true)?;
    let (following, blocking) = app.contact(target, change, potluck::app::now_ms())?;
    let name = app.name_of(&target)?;
    out.print(
        json!({ "contact": target, "following": following, "blocking": blocking }),
        || {
            let verb = match change {
                ContactChange::Follow => "following",
                ContactChange::Unfollow => "no longer following",
                ContactChange::Block => "blocking",
                ContactChange::Unblock => "no longer blocking",
            };
            match name {
                Some(_) => format!("{verb} {} ({target})", person(name.as_deref(), &target)),
                None => format!("{verb} {target}"),
            }
        },
    );
    Ok(())
}

/// `potluck name NAME`: publishes our display name.
pub(crate) fn name(ctx: &Ctx, out: &mut Output, name: String) -> Result<()> {
    About {
        name: name.clone(),
        description: None,
    }
    .validate()?;
    let app = ctx.open_creating(out, false)?;
    app.set_name(name.clone(), potluck::app::now_ms())?;
    out.print(json!({ "id": app.feed_id()?, "name": name }), || {
        format!("name set to {name}")
    });
    Ok(())
}

/// `potluck log [FEED]`: a feed's messages, one JSON object per line.
pub(crate) fn log(ctx: &Ctx, out: &mut Output, feed: Option<String>) -> Result<()> {
    let app = match &feed {
        Some(_) => ctx.open_store()?,
        None => ctx.open()?,
    };
    let feed = match feed {
        Some(text) => FeedId::parse(&text)?,
        None => app.feed_id()?,
    };
    let (forks, messages) = app.feed_log(&feed)?;
    for sequence in forks {
        out.note(format!(
            "warning: feed {feed} is forked at #{sequence}: its author signed two different messages"
        ));
    }
    for msg in messages {
        out.line(msg?.to_json().to_string());
    }
    Ok(())
}
