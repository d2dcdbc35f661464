//! The command line: parsing, dispatch, and printing results for people
//! (default) or scripts (`--json`). Every command checks its input fully
//! before it opens the store for writing, so bad input changes nothing.
//!
//! # Layout
//!
//! The files depend downwards only; none imports this one:
//!
//! - `mod.rs` (this file): [`run`] one command line, or [`run_in_node`]
//!   one handed over by the control socket; when a node runs for the
//!   home, hand the command to it; dispatch each command to its function.
//! - Commands, one file per group, each function `(ctx, out, arguments)`:
//!   `events` (announce, update, cancel, rsvp, events, event, agenda),
//!   `comments` (comment, comments),
//!   `feeds` (init, whoami, name, follow, block, log), `files` (export,
//!   clock, import, ics, fsck, reindex, fixtures), `peers` (sync, join,
//!   recover, invite, peers) and `serve` (serve, page-token, open).
//! - Shared by the commands: `args` (the clap grammar), `ctx` (where a
//!   command runs: store, identity, node) and `output` (text or JSON,
//!   progress lines, errors and their kinds).

mod args;
mod comments;
mod ctx;
mod events;
mod feeds;
mod files;
mod hub;
mod output;
mod peers;
mod serve;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::Value;

use potluck::app::control::{ControlResponse, Stream};
use potluck::app::{App, ContactChange, Home, when};

pub use args::Args;
use args::Command;
use ctx::Ctx;
use output::{KindedError, Output, emit};
pub use output::{asks_for_json, report_error, usage_failure, write_stdout};

/// Runs one command from this process's command line. When a node runs
/// for this home, every command but `init` and `serve` is handed to it over
/// the control socket, since it owns the store. Returns the exit status.
pub fn run(args: Args, raw: Vec<std::ffi::OsString>) -> Result<u8> {
    // Completions and the manual page need no home.
    match &args.command {
        Command::Completions { shell } => {
            let mut command = <Args as clap::CommandFactory>::command();
            let mut text = Vec::new();
            clap_complete::generate(*shell, &mut command, "potluck", &mut text);
            write_stdout(&String::from_utf8_lossy(&text))?;
            return Ok(0);
        }
        Command::Manpage => {
            let mut text = Vec::new();
            clap_mangen::Man::new(<Args as clap::CommandFactory>::command())
                .render(&mut text)
                .context("cannot render the manual page")?;
            write_stdout(&String::from_utf8_lossy(&text))?;
            return Ok(0);
        }
        _ => {}
    }
    let home = Home::resolve(args.home.clone())?;
    if let Command::Serve(flags) = args.command {
        serve::serve(&home, flags, run_in_node)?;
        return Ok(0);
    }
    if let Command::PageToken { new } = args.command {
        let mut out = Output::new(args.json);
        serve::page_token(&home, &mut out, new)?;
        emit(&out.text, None)?;
        return Ok(0);
    }
    // `ics --out FILE` is written here, by the process the person ran,
    // even when a running node produced the text.
    let ics_out = match &args.command {
        Command::Ics {
            out: Some(path), ..
        } => Some((path.clone(), args.json)),
        _ => None,
    };
    // A running node has its own working directory and time zone: hand it
    // whole paths and ours.
    let mut raw = absolute_paths(&args.command, raw)?;
    let needs_zone = match &args.command {
        Command::Events {
            local: true,
            local_zone: None,
            ..
        } => true,
        Command::Announce(fields) => fields.local_zone.is_none(),
        Command::Update { fields, .. } => fields.local_zone.is_none(),
        _ => false,
    };
    let names_a_zone = match &args.command {
        Command::Announce(fields) => fields.tz.is_some(),
        Command::Update { fields, .. } => fields.tz.is_some(),
        _ => false,
    };
    if needs_zone {
        // A zone without an IANA name (a POSIX `TZ` string) cannot be
        // handed over: this process reads such times itself, or, with a
        // node running, asks for a zone by name rather than guess one.
        match when::local_zone_name() {
            Some(name) => {
                raw.push("--local-zone".into());
                raw.push(name.into());
            }
            #[cfg(unix)]
            None if !names_a_zone && potluck::app::control::is_running(&home) => {
                return Err(events::unnamed_zone_error());
            }
            None => {}
        }
    }
    // `fixtures` writes its own new home: never hand it to a node.
    let may_hand_over = !matches!(
        args.command,
        Command::Init { .. } | Command::Fixtures { .. }
    );
    // `ics --out` and `open` act on the node's whole answer (a file to
    // write, a page to open); any other answer is passed on as it
    // arrives, whatever its size.
    let opens_page = matches!(args.command, Command::Open { print: false });
    let keep_whole = ics_out.is_some() || opens_page;
    let json = args.json;
    #[cfg(unix)]
    if may_hand_over
        && let Some(code) = hand_over(&home, &raw, keep_whole, ics_out.as_ref(), opens_page, json)?
    {
        return Ok(code);
    }
    let ctx = Ctx::here(home);
    let mut out = Output::new(args.json);
    let result = run_command(&ctx, args.command, &mut out);
    ctx.finish();
    #[cfg(not(unix))]
    let _ = (raw, may_hand_over, keep_whole, json);
    match result {
        Ok(()) => {
            eprint!("{}", out.notes);
            emit(&out.text, ics_out.as_ref()).map(|()| 0)
        }
        Err(e) => print_failure(out, &e),
    }
}

/// Prints what a command that failed with `e` prints (see
/// [`Output::failed`]); returns its exit status.
fn print_failure(out: Output, e: &anyhow::Error) -> Result<u8> {
    let (stdout, stderr) = out.failed(e);
    eprint!("{stderr}");
    write_stdout(&stdout)?;
    Ok(1)
}

/// Runs a command handed over by the control socket, inside the node.
pub fn run_in_node(home: &Home, app: &App, args: Vec<String>) -> ControlResponse {
    let args_copy = args.clone();
    let args = match Args::try_parse_from(std::iter::once("potluck".to_owned()).chain(args)) {
        Ok(a) => a,
        Err(e) if !e.use_stderr() => {
            return ControlResponse {
                code: 0,
                stdout: e.to_string(),
                stderr: String::new(),
            };
        }
        Err(e) => {
            let (code, stdout, stderr) = usage_failure(&e, asks_for_json(&args_copy), false);
            return ControlResponse {
                code: code.into(),
                stdout,
                stderr,
            };
        }
    };
    let ctx = Ctx::in_node(home.clone(), app.clone());
    let mut out = Output::new(args.json);
    let result = match args.command {
        Command::Init { .. } => Err(KindedError {
            kind: "exists",
            message: "an identity already exists here, and a node is running for this home; \
                      to set your name, use `potluck name \"Ana\"`"
                .to_owned(),
        }
        .into()),
        command => run_command(&ctx, command, &mut out),
    };
    match result {
        Ok(()) => ControlResponse {
            code: 0,
            stdout: out.text,
            stderr: out.notes,
        },
        Err(e) => {
            let (stdout, stderr) = out.failed(&e);
            ControlResponse {
                code: 1,
                stdout,
                stderr,
            }
        }
    }
}

fn run_command(ctx: &Ctx, command: Command, out: &mut Output) -> Result<()> {
    match command {
        Command::Init(init) => feeds::init(ctx, out, init),
        Command::Serve(_) => bail!("a potluck node is already running for this home"),
        Command::Open { print } => serve::open(ctx, out, print),
        // Handled before a node could be asked (it reads no store).
        Command::PageToken { .. } => bail!("page-token is not run inside a node"),
        Command::Sync { addr } => peers::sync(ctx, out, &addr),
        Command::Peers => peers::peers(ctx, out),
        Command::Invite {
            addr,
            uses,
            expires,
            note,
        } => peers::invite(ctx, out, addr, hub::code_options(uses, &expires, note)?),
        Command::Hub(command) => hub::run(ctx, out, command),
        Command::Join { code } => peers::join(ctx, out, &code),
        Command::Follow { feed } => feeds::contact(ctx, out, &feed, ContactChange::Follow),
        Command::Unfollow { feed } => feeds::contact(ctx, out, &feed, ContactChange::Unfollow),
        Command::Block { feed } => feeds::contact(ctx, out, &feed, ContactChange::Block),
        Command::Unblock { feed } => feeds::contact(ctx, out, &feed, ContactChange::Unblock),
        Command::Whoami => feeds::whoami(ctx, out),
        Command::Name { name } => feeds::name(ctx, out, name),
        Command::Announce(fields) => events::announce(ctx, out, fields),
        Command::Update { event, fields } => events::update(ctx, out, &event, fields),
        Command::Cancel { event, reason } => events::cancel(ctx, out, &event, reason),
        Command::Rsvp {
            event,
            status,
            guests,
            note,
        } => events::rsvp(ctx, out, &event, status.into(), guests, note),
        Command::Events {
            past,
            all,
            limit,
            local,
            local_zone,
        } => {
            let zone = match (local, local_zone) {
                (false, _) => None,
                (true, Some(zone)) => Some(zone),
                (true, None) => Some(events::local_zone()?),
            };
            events::events(ctx, out, past, all, limit, zone)
        }
        Command::Agenda => events::agenda(ctx, out),
        Command::Ics { event, .. } => files::ics(ctx, out, event.as_deref()),
        Command::Export {
            feeds,
            for_clock,
            out: file,
        } => files::export(ctx, out, &feeds, for_clock.as_deref(), &file),
        Command::Clock { out: file } => files::clock(ctx, out, &file),
        Command::Import { file } => files::import(ctx, out, &file),
        Command::Event { event } => events::show_event(ctx, out, &event),
        Command::Comment(args) => comments::comment(ctx, out, args),
        Command::Comments {
            event,
            after,
            limit,
            links,
        } => comments::comments(ctx, out, &event, after.as_deref(), limit, links),
        Command::Log { feed } => feeds::log(ctx, out, feed),
        Command::Fsck { repair } => files::fsck(ctx, out, repair),
        Command::Recover { addrs, start_over } => peers::recover(ctx, out, &addrs, start_over),
        Command::Fixtures {
            out: home,
            feeds,
            messages,
            seed,
        } => files::fixtures(
            out,
            &home,
            &potluck::app::FixtureSpec {
                feeds,
                messages,
                seed,
            },
        ),
        Command::Completions { .. } | Command::Manpage => {
            bail!("completions and the manual page are printed by the command itself")
        }
        Command::Reindex => files::reindex(ctx, out),
    }
}

/// Hands the command line to a node running for `home`, and each piece
/// of its answer to `piece`; returns the exit status, or `None` when no
/// node runs. The control socket carries text, so an argument that is not
/// UTF-8 (a path may be any bytes) can only be refused while a node runs;
/// without a node the command runs here with the path as it is.
#[cfg(unix)]
fn forward_to_node(
    home: &Home,
    raw: &[std::ffi::OsString],
    piece: impl FnMut(Stream, &str) -> Result<()>,
) -> Result<Option<i32>> {
    let text: Option<Vec<String>> = raw.iter().map(|a| a.to_str().map(str::to_owned)).collect();
    match text {
        Some(args) => potluck::app::control::forward_each(home, &args, piece),
        None if potluck::app::control::is_running(home) => {
            let bad = raw
                .iter()
                .find(|a| a.to_str().is_none())
                .map(|a| a.to_string_lossy().into_owned())
                .unwrap_or_default();
            bail!(
                "the argument `{bad}` is not valid UTF-8, and the node running for this home takes its commands as text; use a UTF-8 path, or stop the node"
            )
        }
        None => Ok(None),
    }
}

/// Hands the command line to the node running for `home` and prints its
/// answer as it arrives (whole, when `keep_whole`: a file to write, a page
/// to open); the exit status, or `None` when no node runs.
#[cfg(unix)]
fn hand_over(
    home: &Home,
    raw: &[std::ffi::OsString],
    keep_whole: bool,
    ics_out: Option<&(PathBuf, bool)>,
    opens_page: bool,
    json: bool,
) -> Result<Option<u8>> {
    let mut whole = String::new();
    let answered = forward_to_node(home, raw, |stream, text| match stream {
        Stream::Stderr => {
            eprint!("{text}");
            Ok(())
        }
        Stream::Stdout if keep_whole => {
            whole.push_str(text);
            Ok(())
        }
        Stream::Stdout => write_stdout(text),
    })?;
    let Some(code) = answered else {
        return Ok(None);
    };
    if code != 0 {
        write_stdout(&whole)?;
        return Ok(Some(u8::try_from(code).unwrap_or(1)));
    }
    if opens_page {
        // The node said where its page is; the browser starts here, on
        // the person's desktop, not in the node's process.
        let url = match serde_json::from_str::<Value>(&whole) {
            Ok(doc) => doc["page"].as_str().unwrap_or_default().to_owned(),
            Err(_) => whole.trim().to_owned(),
        };
        if let Err(e) = serve::launch_browser(&url) {
            return print_failure(Output::holding(json, whole), &e).map(Some);
        }
    }
    emit(&whole, ics_out)?;
    Ok(Some(0))
}

/// Replaces the relative file paths of a command line with absolute ones.
fn absolute_paths(
    command: &Command,
    mut raw: Vec<std::ffi::OsString>,
) -> Result<Vec<std::ffi::OsString>> {
    let paths: Vec<&PathBuf> = match command {
        Command::Export { for_clock, out, .. } => {
            for_clock.iter().chain(std::iter::once(out)).collect()
        }
        Command::Clock { out } => vec![out],
        Command::Import { file } => vec![file],
        _ => return Ok(raw),
    };
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    for path in paths.into_iter().filter(|p| p.is_relative()) {
        let whole = cwd.join(path).into_os_string();
        for arg in raw.iter_mut() {
            if arg.as_os_str() == path.as_os_str() {
                *arg = whole.clone();
                continue;
            }
            // `--out=FILE` and `--for=FILE`: the flag is ASCII, so it is
            // a prefix of the bytes whatever the path's encoding.
            let bytes = arg.as_encoded_bytes();
            for flag in ["--out=", "--for="] {
                if bytes.strip_prefix(flag.as_bytes()) == Some(path.as_os_str().as_encoded_bytes())
                {
                    let mut joined = std::ffi::OsString::from(flag);
                    joined.push(&whole);
                    *arg = joined;
                    break;
                }
            }
        }
    }
    Ok(raw)
}

/// True when the command asked for `--json`.
pub fn wants_json(args: &Args) -> bool {
    args.json
}

/// True for `potluck serve`, whose log is worth reading by default.
pub fn is_serve(args: &Args) -> bool {
    matches!(args.command, Command::Serve(_))
}
