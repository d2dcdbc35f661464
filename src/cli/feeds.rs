//! The commands about feeds and people: `init`, `whoami`, `name`,
//! `follow`, `unfollow`, `block`, `unblock` and `log`.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use potluck::app::{Access, App, ContactChange, Home, ImportedKey, RecoverOutcome, person, when};
use potluck::content::{About, KnownContent};
use potluck::feed::message::FeedId;

use super::args::InitArgs;
use super::ctx::{Ctx, NAME_HINT};
use super::output::{KindedError, Output};

/// `potluck init`: a new home and identity (made here, or imported with
/// `--import-key`), on the public network or a private one, with a name
/// when given.
pub(crate) fn init(ctx: &Ctx, out: &mut Output, args: InitArgs) -> Result<()> {
    if let Some(file) = &args.import_key {
        return init_imported(ctx, out, file, &args);
    }
    let home = &ctx.home;
    let about = match args.name {
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
    let name = about.as_ref().map_or("Ana", |a| a.name.as_str());
    refuse_existing(
        home,
        &format!("To set your name, use `potluck name {}`", shell_quote(name)),
    )?;
    let access = if args.new_identity {
        Access::NewIdentity
    } else {
        Access::Create
    };
    App::set_network(home, args.network_key.as_deref())?;
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

/// `init` in a home that has an identity: refused before anything
/// changes (the network key of `--network-key` included), with `hint`.
fn refuse_existing(home: &Home, hint: &str) -> Result<()> {
    if !home.secret_path().exists() {
        return Ok(());
    }
    Err(KindedError {
        kind: "exists",
        message: format!(
            "an identity already exists at {}; refusing to overwrite it. {hint}",
            home.secret_path().display(),
        ),
    }
    .into())
}

/// `potluck init --import-key FILE [--from ADDR…]`: the identity a browser
/// page exported, in a new home that publishes nothing until its feed is
/// back (see [`App::open_imported`]); with `--from`, fetched at once.
fn init_imported(ctx: &Ctx, out: &mut Output, file: &Path, args: &InitArgs) -> Result<()> {
    if args.name.is_some() {
        // The name is a message of the feed, which must come back first.
        return Err(KindedError {
            kind: "invalid_input",
            message: "--name cannot go with --import-key: a name is published in your feed, \
                      which must be fetched back first (it holds the name you gave on the page); \
                      once it is back, `potluck name \"Ana\"` changes it"
                .to_owned(),
        }
        .into());
    }
    let key = if file == Path::new("-") {
        ImportedKey::read_from(std::io::stdin().lock(), "standard input")?
    } else {
        ImportedKey::read(file)?
    };
    let home = &ctx.home;
    refuse_existing(
        home,
        "Import the key into a new home: `potluck --home DIR init --import-key FILE`",
    )?;
    App::set_network(home, args.network_key.as_deref())?;
    let app = App::open_imported(home, key)?;
    let id = app.feed_id()?;
    let fetched = (!args.from.is_empty()).then(|| app.recover(&args.from, false));
    let (holds, from) = match &fetched {
        Some(Ok(RecoverOutcome::Recovered { holds, from })) => (*holds, Some(from.clone())),
        Some(Ok(RecoverOutcome::NothingToRecover { holds })) => (*holds, None),
        _ => (0, None),
    };
    let recovered = app.own_feed_behind()?.is_none();
    out.print(
        json!({
            "id": id,
            "name": null,
            "imported": true,
            "recovered": recovered,
            "holds": holds,
            "from": from,
        }),
        || id.to_string(),
    );
    if let Some(Err(e)) = fetched {
        return Err(anyhow::Error::new(e).context(format!(
            "the key is imported as {id} in {}, but its feed is not back yet, so nothing can be \
             published (`potluck recover HOST:PORT` fetches it later)",
            home.root().display()
        )));
    }
    match &from {
        Some(from) => out.note(format!(
            "your feed is back from {from} up to #{holds}: publishing goes on from there"
        )),
        None => out.note(IMPORTED_HINT),
    }
    out.note(
        "answer from here from now on, not from the browser: two places writing one feed fork it",
    );
    Ok(())
}

/// What a home with an imported key does next, until its feed is back.
const IMPORTED_HINT: &str = "nothing is published until your feed is back from a node that holds \
     it (it may hold answers you gave in the browser, and a message published before would fork \
     it): `potluck hub add CODE` with your hub's member code, `potluck join CODE` with an invite, \
     or `potluck recover HOST:PORT`; `potluck serve` then keeps it up to date. Never answered from \
     that browser? `potluck recover --start-over` publishes from #1";

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
