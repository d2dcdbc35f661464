//! The command line: argument parsing, and printing results for people
//! (default) or scripts (`--json`). Every command checks its input fully
//! before it opens the store for writing, so bad input changes nothing.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use potluck::app::{
    AgendaItem, App, ContactChange, EventList, EventSummary, RsvpView, text_change,
};
use potluck::content::{
    About, Change, Event, EventTime, EventUpdate, Rsvp, RsvpStatus, rfc3339_in_zone,
};
use potluck::control::ControlResponse;
use potluck::home::{HOME_ENV, Home};
use potluck::identity::Identity;
use potluck::message::FeedId;
use potluck::node::{ConnectionError, Node};
use potluck::store::Store;
use potluck::store::index::EventStatus;
use potluck::when;

use crate::net;

/// Announce gatherings and collect RSVPs, peer to peer.
#[derive(Parser, Debug)]
#[command(name = "potluck", version, about, long_about = None)]
pub struct Args {
    /// Home directory (identity and store). Default: the platform's data
    /// directory, e.g. ~/.local/share/potluck.
    #[arg(long, global = true, env = HOME_ENV, value_name = "DIR")]
    home: Option<PathBuf>,
    /// Print one JSON document instead of text (for scripts).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create the home directory and a new identity, and print its feed id.
    #[command(display_order = 1)]
    Init {
        /// Your display name, published in your feed.
        #[arg(long)]
        name: Option<String>,
        /// Join a private network: 64 hex digits shared by its members
        /// (default: the public network).
        #[arg(long, value_name = "HEX")]
        network_key: Option<String>,
    },
    /// Run the node: accept peers, dial configured ones, and replicate live.
    /// Creates an identity on first run, and serves the web page.
    #[command(display_order = 12)]
    Serve {
        /// Address to listen on (default from config.json, else 0.0.0.0:7643).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// A peer to keep connected: HOST:PORT or @FEED.ed25519@HOST:PORT.
        /// Repeatable; adds to the peers in config.json.
        #[arg(long = "peer", value_name = "ADDR")]
        peers: Vec<String>,
        #[command(flatten)]
        discovery: DiscoveryArgs,
        #[command(flatten)]
        web: WebArgs,
    },
    /// Open the web page of the running node in the browser.
    #[command(display_order = 12)]
    Open {
        /// Only print the page's address.
        #[arg(long)]
        print: bool,
    },
    /// Make the access token the web page needs when it listens beyond this
    /// computer (`serve --web 0.0.0.0:7645`). Shown once.
    #[command(display_order = 12)]
    PageToken {
        /// Replace an existing token (pages and calendars using the old one
        /// must log in again).
        #[arg(long)]
        new: bool,
    },
    /// Connect to a peer once, exchange everything both ways, and exit.
    #[command(display_order = 13)]
    Sync {
        /// HOST:PORT, or @FEED.ed25519@HOST:PORT to insist on that feed.
        addr: String,
    },
    /// List connected and known peers.
    #[command(display_order = 14)]
    Peers,
    /// Print an invite code: your address, feed id and (on a private
    /// network) the network key. Never a secret key.
    #[command(display_order = 15)]
    Invite {
        /// The address others should dial (default: this computer's address
        /// and the listen port).
        #[arg(long, value_name = "HOST:PORT")]
        addr: Option<String>,
    },
    /// Join with an invite code: remember the inviter, sync once, follow them.
    #[command(display_order = 16)]
    Join {
        /// The code from `potluck invite`.
        code: String,
    },
    /// Follow a feed (publishes a contact message).
    #[command(display_order = 17)]
    Follow {
        /// Feed id, `@…ed25519`.
        feed: String,
    },
    /// Stop following a feed.
    #[command(display_order = 18)]
    Unfollow {
        /// Feed id, `@…ed25519`.
        feed: String,
    },
    /// Block a feed: never store or forward it.
    #[command(display_order = 19)]
    Block {
        /// Feed id, `@…ed25519`.
        feed: String,
    },
    /// Unblock a feed.
    #[command(display_order = 20)]
    Unblock {
        /// Feed id, `@…ed25519`.
        feed: String,
    },
    /// Print your feed id and name.
    #[command(display_order = 2)]
    Whoami,
    /// Publish your display name.
    #[command(display_order = 3)]
    Name {
        /// The name people see next to your RSVPs.
        name: String,
    },
    /// Announce an event; prints its id.
    #[command(display_order = 4)]
    Announce(EventFields),
    /// Change an event you announced. An empty value clears an optional
    /// field (e.g. --location ""); --capacity 0 removes the capacity.
    #[command(display_order = 5)]
    Update {
        /// Event id, or a unique prefix of at least 6 characters.
        event: String,
        #[command(flatten)]
        fields: UpdateFields,
    },
    /// Cancel an event you announced.
    #[command(display_order = 6)]
    Cancel {
        /// Event id, or a unique prefix of at least 6 characters.
        event: String,
        /// Why it is cancelled.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Answer an event: going, maybe or no.
    #[command(display_order = 7)]
    Rsvp {
        /// Event id, or a unique prefix of at least 6 characters.
        event: String,
        /// Your answer.
        status: StatusArg,
        /// People you bring along (0-20).
        #[arg(long, default_value_t = 0)]
        guests: u32,
        /// A short note (at most 500 characters).
        #[arg(long)]
        note: Option<String>,
    },
    /// List upcoming events, sorted by start, with their tallies.
    #[command(display_order = 8)]
    Events {
        /// Events that have already finished instead.
        #[arg(long, conflicts_with = "all")]
        past: bool,
        /// Every known event, past and upcoming, from the earliest (still
        /// at most `--limit` of them).
        #[arg(long)]
        all: bool,
        /// Show at most this many events: the next ones, or with `--past`
        /// the most recent ones; 0 shows all.
        #[arg(long, default_value_t = potluck::store::EVENTS_PAGE)]
        limit: usize,
        /// Show times in this computer's time zone instead of each event's.
        #[arg(long)]
        local: bool,
        /// The zone `--local` means (set by the command when it hands
        /// itself to a running node, whose zone may differ).
        #[arg(long, hide = true, requires = "local")]
        local_zone: Option<String>,
    },
    /// My upcoming RSVPs (going and maybe), with admission and changes.
    #[command(display_order = 10)]
    Agenda,
    /// Write a bundle file of messages, exactly as signed, for sync by file.
    #[command(display_order = 21)]
    Export {
        /// Feeds to export (default: every feed held).
        feeds: Vec<String>,
        /// Export only what a friend's clock file (`potluck clock`) lacks.
        #[arg(long = "for", value_name = "CLOCKFILE")]
        for_clock: Option<PathBuf>,
        /// The bundle file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Write this node's clock (what it holds), for a friend's `export --for`.
    #[command(display_order = 22)]
    Clock {
        /// The clock file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Import a bundle file: every message is validated as if from a peer.
    #[command(display_order = 23)]
    Import {
        /// The bundle file.
        file: PathBuf,
    },
    /// Export events as iCalendar (RFC 5545): one event, or every upcoming one.
    #[command(display_order = 11)]
    Ics {
        /// Event id, or a unique prefix of at least 6 characters.
        event: Option<String>,
        /// Write to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Show one event with every current RSVP.
    #[command(display_order = 9)]
    Event {
        /// Event id, or a unique prefix of at least 6 characters.
        event: String,
    },
    /// Print a feed's messages, one JSON object per line (default: yours).
    #[command(display_order = 24)]
    Log {
        /// Feed id, `@…ed25519`.
        feed: Option<String>,
    },
    /// Re-verify every message and check the indexes against the logs.
    #[command(display_order = 25)]
    Fsck {
        /// Repair what is found: cut each damaged feed back before its
        /// first damaged message (peers send the rest again) and rebuild
        /// the indexes; a damaged database is rebuilt from the message log.
        #[arg(long)]
        repair: bool,
    },
    /// Rebuild every index from the logs.
    #[command(display_order = 26)]
    Reindex,
    /// Fetch your own feed back from peers after the store was lost or cut
    /// by a repair: publishing is refused until the store holds everything
    /// this home published (or `--start-over`).
    #[command(display_order = 27)]
    Recover {
        /// Peers to fetch from (HOST:PORT or @FEED.ed25519@HOST:PORT);
        /// default: the configured peers, then the peer book.
        addrs: Vec<String>,
        /// Give up on the lost messages and publish on from what the
        /// store holds. Peers that hold the lost ones will see your feed
        /// fork and keep their copy; a new identity may be better.
        #[arg(long, conflicts_with = "addrs")]
        start_over: bool,
    },
    /// Print shell completions: `potluck completions bash >
    /// ~/.local/share/bash-completion/completions/potluck` (see README).
    #[command(display_order = 28)]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `potluck manpage > potluck.1`.
    #[command(display_order = 29)]
    Manpage,
    /// Developer tool: create a new home filled with deterministic,
    /// realistic fixtures (many feeds, events, RSVPs), for scale tests.
    #[command(hide = true, display_order = 27)]
    Fixtures {
        /// The new home to create (must not hold an identity yet).
        #[arg(long, value_name = "HOME")]
        out: PathBuf,
        /// Number of feeds (authors).
        #[arg(long)]
        feeds: usize,
        /// Total number of messages (at least one per feed).
        #[arg(long)]
        messages: usize,
        /// Seed: the same seed gives byte-identical messages.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Web page flags of `serve`.
#[derive(ClapArgs, Debug, Clone, Default)]
pub struct WebArgs {
    /// Address of the web page (default from config.json, else
    /// 127.0.0.1:7645 or the next free port). Beyond loopback it needs an
    /// access token: see `potluck page-token`.
    #[arg(long = "web", value_name = "ADDR", conflicts_with = "no_web")]
    pub addr: Option<String>,
    /// Do not serve the web page.
    #[arg(long)]
    pub no_web: bool,
}

/// LAN discovery flags of `serve`.
#[derive(ClapArgs, Debug, Clone, Default)]
pub struct DiscoveryArgs {
    /// Do not announce this node on the local network or listen for others.
    #[arg(long)]
    pub no_discovery: bool,
    /// UDP port for announcements (default 7644).
    #[arg(long, value_name = "PORT")]
    pub discovery_port: Option<u16>,
    /// Where to send announcements (repeatable; default: broadcast on the
    /// LAN). On one machine, 127.255.255.255:PORT reaches every local node.
    #[arg(long = "discovery-target", value_name = "ADDR")]
    pub discovery_targets: Vec<String>,
}

#[derive(ClapArgs, Debug)]
struct EventFields {
    /// Title, 1-200 characters.
    #[arg(long)]
    title: String,
    /// Start: "2027-01-30 18:00" (or 2027-01-30T18:00, seconds optional)
    /// in the --tz zone, else this computer's; or RFC 3339 with an offset,
    /// e.g. 2027-01-30T18:00:00-05:00.
    #[arg(long)]
    start: String,
    /// End, written like the start; not before it.
    #[arg(long)]
    end: Option<String>,
    /// IANA time zone of the event, e.g. America/New_York: wall-clock
    /// times are read in it and people see times in it. Default: this
    /// computer's zone, when a time is given without an offset.
    #[arg(long)]
    tz: Option<String>,
    /// Allow an event that has already finished (it then shows only in
    /// `potluck events --past`).
    #[arg(long)]
    past: bool,
    /// The zone of the computer the command was typed on (set by the
    /// command when it hands itself to a running node).
    #[arg(long, hide = true)]
    local_zone: Option<String>,
    /// Where it happens.
    #[arg(long)]
    location: Option<String>,
    /// A link with more information.
    #[arg(long)]
    url: Option<String>,
    /// Details, at most 8 KiB.
    #[arg(long)]
    description: Option<String>,
    /// Most people (with guests) who can come.
    #[arg(long)]
    capacity: Option<u32>,
}

#[derive(ClapArgs, Debug)]
struct UpdateFields {
    /// New title.
    #[arg(long)]
    title: Option<String>,
    /// New start, written as for `announce` (a wall-clock time is read in
    /// the event's zone, else this computer's).
    #[arg(long)]
    start: Option<String>,
    /// New end ("" clears it).
    #[arg(long)]
    end: Option<String>,
    /// New time zone ("" clears it).
    #[arg(long)]
    tz: Option<String>,
    /// New location ("" clears it).
    #[arg(long)]
    location: Option<String>,
    /// New link ("" clears it).
    #[arg(long)]
    url: Option<String>,
    /// New description ("" clears it).
    #[arg(long)]
    description: Option<String>,
    /// New capacity (0 removes it).
    #[arg(long)]
    capacity: Option<u32>,
    /// Allow moving the event into the past.
    #[arg(long)]
    past: bool,
    /// See `announce --local-zone`.
    #[arg(long, hide = true)]
    local_zone: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum StatusArg {
    Going,
    Maybe,
    #[value(alias = "not-going")]
    No,
}

impl From<StatusArg> for RsvpStatus {
    fn from(s: StatusArg) -> RsvpStatus {
        match s {
            StatusArg::Going => RsvpStatus::Going,
            StatusArg::Maybe => RsvpStatus::Maybe,
            StatusArg::No => RsvpStatus::NotGoing,
        }
    }
}

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
    if let Command::Serve {
        listen,
        peers,
        discovery,
        web,
    } = args.command
    {
        net::serve(&home, listen, peers, discovery, web)?;
        return Ok(0);
    }
    if let Command::PageToken { new } = args.command {
        let mut out = Output::new(args.json);
        net::page_token(&home, &mut out, new)?;
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
            None if !names_a_zone
                && potluck::control::is_running(&potluck::control::socket_path(&home)) =>
            {
                return Err(unnamed_zone_error());
            }
            None => {}
        }
    }
    // `fixtures` writes its own new home: never hand it to a node.
    #[cfg(unix)]
    if !matches!(
        args.command,
        Command::Init { .. } | Command::Fixtures { .. }
    ) && let Some(answer) = forward_to_node(&home, &raw)?
    {
        eprint!("{}", answer.stderr);
        if answer.code == 0 {
            emit(&answer.stdout, ics_out.as_ref())?;
            if let Command::Open { print: false } = &args.command {
                // The node said where its page is; the browser starts here,
                // on the person's desktop, not in the node's process.
                let url = match serde_json::from_str::<Value>(&answer.stdout) {
                    Ok(doc) => doc["page"].as_str().unwrap_or_default().to_owned(),
                    Err(_) => answer.stdout.trim().to_owned(),
                };
                net::launch_browser(&url)?;
            }
        } else {
            write_stdout(&answer.stdout)?;
        }
        return Ok(u8::try_from(answer.code).unwrap_or(1));
    }
    let _ = raw;
    let ctx = Ctx {
        home,
        node: None,
        serving: None,
    };
    let mut out = Output::new(args.json);
    let result = run_command(&ctx, args.command, &mut out);
    eprint!("{}", out.notes);
    match result {
        Ok(()) => emit(&out.text, ics_out.as_ref()).map(|()| 0),
        Err(e) => {
            write_stdout(&out.text)?;
            Err(e)
        }
    }
}

/// What went wrong, for `{"error": {"kind": …}}` (see `docs/cli.md`).
/// Scripts branch on it; the message is for people.
pub fn error_kind(e: &anyhow::Error) -> &'static str {
    use potluck::store::StoreError;
    for cause in e.chain() {
        if let Some(err) = cause.downcast_ref::<KindedError>() {
            return err.kind;
        }
        // `AppError` wraps store and content errors transparently: their
        // types are not in the chain of causes, so look inside.
        let store_error = match cause.downcast_ref::<potluck::app::AppError>() {
            Some(potluck::app::AppError::Store(err)) => Some(err),
            Some(potluck::app::AppError::Content(_)) => return "invalid_input",
            Some(potluck::app::AppError::ReadOnly) => return "no_identity",
            Some(_) => return "refused",
            None => cause.downcast_ref::<StoreError>(),
        };
        if let Some(err) = store_error {
            return match err {
                StoreError::UnknownEvent(_) | StoreError::AmbiguousEvent { .. } => "not_found",
                StoreError::PrefixTooShort(_) => "invalid_input",
                StoreError::Locked { .. } => "busy",
                _ => "storage",
            };
        }
        if let Some(err) = cause.downcast_ref::<potluck::identity::IdentityError>() {
            return match err {
                potluck::identity::IdentityError::Missing { .. } => "no_identity",
                _ => "identity",
            };
        }
        if cause.is::<potluck::content::ContentError>()
            || cause.is::<when::WhenError>()
            || cause.is::<potluck::message::DecodeError>()
            || cause.is::<potluck::config::ConfigError>()
            || cause.is::<potluck::handshake::HandshakeError>()
        {
            return "invalid_input";
        }
        if cause.is::<ConnectionError>() {
            return "network";
        }
        if cause.is::<potluck::bundle::BundleError>() {
            return "invalid_file";
        }
        if cause.is::<std::io::Error>() || cause.is::<potluck::home::HomeError>() {
            return "io";
        }
    }
    "refused"
}

/// The `--json` form of an error: one line, `{"error": {"kind": …,
/// "message": …}}`.
pub fn error_document(kind: &str, message: &str) -> String {
    format!(
        "{}\n",
        json!({ "error": { "kind": kind, "message": message } })
    )
}

/// Reports a failed command: one `error:` line on stderr, and with `--json`
/// the error document on stdout.
pub fn report_error(e: &anyhow::Error, json: bool) {
    let message = one_line(e);
    eprintln!("error: {message}");
    if json {
        let _ = write_stdout(&error_document(error_kind(e), &message));
    }
}

/// A command line clap could not read. Returns the exit status (2), and
/// what goes to stdout and stderr: clap's whole message (what is missing,
/// "did you mean", the allowed values, the usage), plus with `--json` the
/// error document. `styled` keeps clap's colours for a terminal.
pub fn usage_failure(e: &clap::Error, json: bool, styled: bool) -> (u8, String, String) {
    let rendered = e.render();
    let stderr = if styled {
        rendered.ansi().to_string()
    } else {
        rendered.to_string()
    };
    let stdout = if json {
        let plain = rendered.to_string();
        let message = plain.trim_end().trim_start_matches("error: ");
        error_document("usage", message)
    } else {
        String::new()
    };
    (2, stdout, stderr)
}

/// True when a command line asks for `--json` (for errors found before it
/// could be parsed).
pub fn asks_for_json<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> bool {
    args.iter()
        .take_while(|a| a.as_ref() != "--")
        .any(|a| a.as_ref() == "--json")
}

/// An error whose kind the command knows better than its causes' types
/// tell (e.g. a bad bundle file found while importing).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct KindedError {
    /// The `kind` of the JSON error document.
    pub kind: &'static str,
    /// What people read.
    pub message: String,
}

/// Hands the command line to a node running for `home`; `None` when no
/// node runs. The control socket carries text, so an argument that is not
/// UTF-8 (a path may be any bytes) can only be refused while a node runs;
/// without a node the command runs here with the path as it is.
#[cfg(unix)]
fn forward_to_node(home: &Home, raw: &[std::ffi::OsString]) -> Result<Option<ControlResponse>> {
    let socket = potluck::control::socket_path(home);
    let text: Option<Vec<String>> = raw.iter().map(|a| a.to_str().map(str::to_owned)).collect();
    match text {
        Some(args) => Ok(potluck::control::forward(&socket, &args)?),
        None if potluck::control::is_running(&socket) => {
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

/// An error and its causes on one line, without repeating a cause that the
/// message already ends with (our error types include their cause's text).
pub fn one_line(e: &anyhow::Error) -> String {
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

/// True when the command asked for `--json`.
pub fn wants_json(args: &Args) -> bool {
    args.json
}

/// True for `potluck serve`, whose log is worth reading by default.
pub fn is_serve(args: &Args) -> bool {
    matches!(args.command, Command::Serve { .. })
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

/// Prints a command's output, or writes it to `file`.
/// With `--json`, the calendar goes to the file and a summary is printed.
fn emit(text: &str, file: Option<&(PathBuf, bool)>) -> Result<()> {
    let Some((path, json)) = file else {
        return write_stdout(text);
    };
    let write = |body: &str| {
        std::fs::write(path, body).with_context(|| format!("cannot write {}", path.display()))
    };
    if !json {
        write(text)?;
        // Like `export`, say what was written where.
        let events = text.matches("BEGIN:VEVENT").count() as u64;
        return write_stdout(&format!(
            "wrote {} to {}\n",
            when::plural(events, "event", "events"),
            path.display()
        ));
    }
    let mut doc: Value = serde_json::from_str(text.trim()).context("unreadable ics output")?;
    write(doc["calendar"].as_str().unwrap_or_default())?;
    if let Some(map) = doc.as_object_mut() {
        map.remove("calendar");
        map.insert("file".into(), json!(path.to_string_lossy()));
    }
    write_stdout(&format!("{doc}\n"))
}

/// Writes command output to stdout. A reader that went away (`potluck
/// events | head`) is not an error: there is nobody left to tell.
pub(crate) fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// Runs a command handed over by the control socket, inside the node.
pub fn run_in_node(
    home: &Home,
    node: &Arc<Node>,
    serving: &Serving,
    args: Vec<String>,
) -> ControlResponse {
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
    let ctx = Ctx {
        home: home.clone(),
        node: Some(node.clone()),
        serving: Some(serving.clone()),
    };
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
            let message = one_line(&e);
            let mut stdout = out.text;
            if out.json {
                stdout.push_str(&error_document(error_kind(&e), &message));
            }
            ControlResponse {
                code: 1,
                stdout,
                stderr: format!("{}error: {message}\n", out.notes),
            }
        }
    }
}

fn run_command(ctx: &Ctx, command: Command, out: &mut Output) -> Result<()> {
    match command {
        Command::Init { name, network_key } => init(ctx, out, name, network_key),
        Command::Serve { .. } => bail!("a potluck node is already running for this home"),
        Command::Open { print } => net::open(ctx, out, print),
        // Handled before a node could be asked (it reads no store).
        Command::PageToken { .. } => bail!("page-token is not run inside a node"),
        Command::Sync { addr } => net::sync(ctx, out, &addr),
        Command::Peers => net::peers(ctx, out),
        Command::Invite { addr } => net::invite(ctx, out, addr),
        Command::Join { code } => net::join(ctx, out, &code),
        Command::Follow { feed } => contact(ctx, out, &feed, ContactChange::Follow),
        Command::Unfollow { feed } => contact(ctx, out, &feed, ContactChange::Unfollow),
        Command::Block { feed } => contact(ctx, out, &feed, ContactChange::Block),
        Command::Unblock { feed } => contact(ctx, out, &feed, ContactChange::Unblock),
        Command::Whoami => whoami(ctx, out),
        Command::Name { name } => {
            About {
                name: name.clone(),
                description: None,
            }
            .validate()?;
            let app = ctx.open_creating(out, false)?;
            app.set_name(name.clone(), now_ms())?;
            out.print(json!({ "id": app.feed_id()?, "name": name }), || {
                format!("name set to {name}")
            });
            Ok(())
        }
        Command::Announce(fields) => announce(ctx, out, fields),
        Command::Update { event, fields } => update(ctx, out, &event, fields),
        Command::Cancel { event, reason } => cancel(ctx, out, &event, reason),
        Command::Rsvp {
            event,
            status,
            guests,
            note,
        } => rsvp(ctx, out, &event, status.into(), guests, note),
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
                (true, None) => Some(self::local_zone()?),
            };
            events(ctx, out, past, all, limit, zone)
        }
        Command::Agenda => agenda(ctx, out),
        Command::Ics { event, .. } => ics(ctx, out, event.as_deref()),
        Command::Export {
            feeds,
            for_clock,
            out: file,
        } => export(ctx, out, &feeds, for_clock.as_deref(), &file),
        Command::Clock { out: file } => clock(ctx, out, &file),
        Command::Import { file } => import(ctx, out, &file),
        Command::Event { event } => show_event(ctx, out, &event),
        Command::Log { feed } => log(ctx, out, feed),
        Command::Fsck { repair } => fsck(ctx, out, repair),
        Command::Recover { addrs, start_over } => net::recover(ctx, out, &addrs, start_over),
        Command::Fixtures {
            out: home,
            feeds,
            messages,
            seed,
        } => fixtures(
            out,
            &home,
            &potluck::fixtures::FixtureSpec {
                feeds,
                messages,
                seed,
            },
        ),
        Command::Completions { .. } | Command::Manpage => {
            bail!("completions and the manual page are printed by the command itself")
        }
        Command::Reindex => {
            let app = ctx.open_store()?;
            let store = app.store();
            let entries = store.reindex()?;
            out.print(json!({ "entries": entries }), || {
                format!(
                    "rebuilt {} from the logs",
                    when::plural(entries as u64, "index entry", "index entries")
                )
            });
            Ok(())
        }
    }
}

/// Where results go: text for people, or one JSON document. Buffered, so
/// that a command run inside the node can hand its output back.
pub struct Output {
    json: bool,
    text: String,
    /// Lines for people on stderr: confirmations and hints that are not the
    /// command's result.
    notes: String,
}

impl Output {
    fn new(json: bool) -> Output {
        Output {
            json,
            text: String::new(),
            notes: String::new(),
        }
    }

    /// A line for people on stderr; left out with `--json`, where the
    /// document says it all.
    pub fn note(&mut self, line: impl AsRef<str>) {
        if !self.json {
            let _ = writeln!(self.notes, "{}", line.as_ref());
        }
    }

    /// One document: JSON, or text for people.
    pub fn print(&mut self, value: Value, text: impl FnOnce() -> String) {
        if self.json {
            self.line(value.to_string());
        } else {
            self.line(text());
        }
    }

    /// One raw line.
    pub fn line(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.text, "{}", line.as_ref());
    }
}

/// Where a command runs: in this process, or inside a running node.
pub struct Ctx {
    /// The home.
    pub home: Home,
    /// The running node, when the command was handed to it.
    pub node: Option<Arc<Node>>,
    /// Where the running node listens, when the command was handed to it.
    pub serving: Option<Serving>,
}

/// What a running node knows about itself that a command may need.
#[derive(Clone, Debug)]
pub struct Serving {
    /// The address it accepts peers on.
    pub listen: std::net::SocketAddr,
    /// The web page's address (with the access token when one is needed),
    /// unless the page is off.
    pub page: Option<String>,
}

impl Ctx {
    /// The application with our identity: inside the running node, or
    /// over the store opened here (a node that never opens a socket, so
    /// that publishing takes the same path).
    pub fn open(&self) -> Result<App> {
        match &self.node {
            Some(node) => Ok(App::new(node.clone())),
            None => {
                let identity = Identity::load(&self.home)?;
                let store = Arc::new(open_store(&self.home)?);
                Ok(App::new(net::offline_node(store, &identity, &self.home)?))
            }
        }
    }

    /// The application with our identity, which is created when the home
    /// has none: the rule for every command that takes part (serve, join,
    /// sync, import, announce, name, follow and the like). See
    /// [`identity_or_create`]. `ask_name`: whether a new identity's
    /// [`welcome`] asks for a name (not when the command is about to set
    /// it).
    pub fn open_creating(&self, out: &Output, ask_name: bool) -> Result<App> {
        if self.node.is_some() {
            return self.open();
        }
        let (identity, created) = identity_or_create(&self.home)?;
        let store = Arc::new(open_identity_store(&self.home, created)?);
        if created {
            welcome(&self.home, &store, &identity, out.json, ask_name)?;
        }
        Ok(App::new(net::offline_node(store, &identity, &self.home)?))
    }

    /// The application for reading (no identity needed).
    pub fn open_store(&self) -> Result<App> {
        match &self.node {
            Some(node) => Ok(App::new(node.clone())),
            None => Ok(App::read_only(Arc::new(open_store(&self.home)?))),
        }
    }
}

/// Opens the store of a home that has been initialised.
pub fn open_store(home: &Home) -> Result<Store> {
    if !home.secret_path().exists() && !home.store_path().exists() {
        // Never create a store in a home that was never initialised.
        return Err(potluck::identity::IdentityError::Missing {
            home: home.root().to_path_buf(),
        }
        .into());
    }
    // A key whose store is gone, in a home from before stores recorded
    // how far they published: whatever was published is unknown, so at
    // least one message is assumed, and publishing waits for `recover`.
    let lost = home.secret_path().exists()
        && !home.store_path().exists()
        && !Store::has_published_mark(&home.store_path());
    let store = Store::open(&home.store_path())?;
    if lost {
        store.mark_published_at_least(Identity::load(home)?.feed_id(), 1)?;
    }
    Ok(store)
}

/// The store of a home whose identity was just `created` (it has
/// published nothing), or else checked for having been lost
/// ([`open_store`]).
pub fn open_identity_store(home: &Home, created: bool) -> Result<Store> {
    if created {
        Ok(Store::open(&home.store_path())?)
    } else {
        open_store(home)
    }
}

/// The home's identity, created (with the home) when there is none.
/// Returns whether it was created, so that the caller can [`welcome`] the
/// new person once the store is open.
pub fn identity_or_create(home: &Home) -> Result<(Identity, bool)> {
    match Identity::load(home) {
        Ok(identity) => Ok((identity, false)),
        Err(potluck::identity::IdentityError::Missing { .. }) => {
            home.create()?;
            Ok((Identity::create(home)?, true))
        }
        Err(e) => Err(e.into()),
    }
}

/// How to set a name, for an identity that has none.
const NAME_HINT: &str =
    "set your name with `potluck name \"Ana\"` so others see it instead of your feed id";

/// Longest name line read at the prompt, in bytes.
const MAX_NAME_LINE: u64 = 1024;

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

/// Greets a new identity on stderr. In a terminal, asks for the name
/// others will see (a node without one shows up as a long feed id in
/// everyone's lists) and publishes it; otherwise, or when the person
/// skips it, says how to set it later. Quiet with `--json`.
pub fn welcome(
    home: &Home,
    store: &Store,
    identity: &Identity,
    json: bool,
    ask_name: bool,
) -> Result<()> {
    use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
    if json {
        return Ok(());
    }
    eprintln!(
        "created a new identity {} in {}",
        identity.feed_id(),
        home.root().display()
    );
    if !ask_name {
        return Ok(());
    }
    let later = NAME_HINT;
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        eprintln!("{later}");
        return Ok(());
    }
    eprint!("your name, as others will see it (Enter to skip): ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .take(MAX_NAME_LINE)
        .read_line(&mut line);
    let name = line.trim();
    if read.is_err() || name.is_empty() {
        eprintln!("{later}");
        return Ok(());
    }
    let about = About {
        name: name.to_owned(),
        description: None,
    };
    match about.validate() {
        Ok(()) => {
            store.publish(identity.signing_key(), &about.to_content_bytes(), now_ms())?;
            eprintln!("name set to {name}");
        }
        Err(e) => eprintln!("{e}; {later}"),
    }
    Ok(())
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn init(
    ctx: &Ctx,
    out: &mut Output,
    name: Option<String>,
    network_key: Option<String>,
) -> Result<()> {
    let home = &ctx.home;
    let network = network_key
        .as_deref()
        .map(potluck::handshake::NetworkKey::from_hex)
        .transpose()?;
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
    home.create()?;
    if let Some(network) = network {
        let mut config = potluck::config::ConfigFile::load(home)?;
        config.network_key = Some(network.to_hex());
        config.save(home)?;
    }
    let identity = Identity::create(home)?;
    // A new identity has published nothing: its store starts empty.
    let store = Arc::new(open_identity_store(home, true)?);
    let app = App::new(net::offline_node(store, &identity, home)?);
    if let Some(about) = &about {
        app.set_name(about.name.clone(), now_ms())?;
    }
    let id = identity.feed_id();
    let name = about.map(|a| a.name);
    out.print(json!({ "id": id, "name": name }), || id.to_string());
    if name.is_none() {
        out.note(NAME_HINT);
    }
    Ok(())
}

fn whoami(ctx: &Ctx, out: &mut Output) -> Result<()> {
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

fn optional(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn announce(ctx: &Ctx, out: &mut Output, f: EventFields) -> Result<()> {
    let tz = optional(f.tz);
    let zone = typing_zone(tz.as_deref(), f.local_zone.as_deref())?;
    let start = typed_time("start", &f.start, &zone)?;
    let end = f
        .end
        .as_deref()
        .map(|e| typed_time("end", e, &zone))
        .transpose()?;
    // A wall-clock time was meant in a zone: the event keeps that zone, so
    // that everyone sees the times its organizer typed.
    let wall_clock = start.wall_clock || end.as_ref().is_some_and(|e| e.wall_clock);
    let tz = tz.or_else(|| {
        wall_clock
            .then(|| zone.iana_name().map(str::to_owned))
            .flatten()
    });
    let event = Event {
        title: f.title,
        start: start.time,
        end: end.map(|e| e.time),
        tz,
        location: optional(f.location),
        url: optional(f.url),
        description: optional(f.description),
        capacity: f.capacity,
    };
    event.validate()?;
    check_not_past(&event, f.past, "announce")?;
    let msg = ctx.open_creating(out, true)?.announce(&event, now_ms())?;
    let id = msg.id();
    out.print(json!({ "id": id }), || id.to_string());
    out.note(format!(
        "announced \"{}\": {}",
        when::sanitize_line(&event.title),
        when::event_span(&event, None)
    ));
    if f.past {
        out.note("it is in the past: `potluck events --past` lists it");
    }
    Ok(())
}

/// The zone a typed wall-clock time is read in: `--tz`, else the zone of
/// the computer the command was typed on.
fn typing_zone(tz: Option<&str>, local_zone: Option<&str>) -> Result<jiff::tz::TimeZone> {
    Ok(match (tz, local_zone) {
        (Some(name), _) => when::zone_named(name)?,
        (None, Some(name)) => when::zone_named(name)?,
        (None, None) => when::local_zone(),
    })
}

/// A time typed on the command line, as published.
struct TypedTime {
    time: EventTime,
    /// True when it was a wall-clock time, read in a zone.
    wall_clock: bool,
}

/// Reads `--start` or `--end` (see [`when::parse_local`]) and turns it
/// into the RFC 3339 text that is published, with the offset in `zone`.
fn typed_time(field: &'static str, text: &str, zone: &jiff::tz::TimeZone) -> Result<TypedTime> {
    let at = when::parse_local(text, zone).with_context(|| format!("--{field}"))?;
    let wall_clock = potluck::content::parse_time(field, text.trim()).is_err();
    let rfc3339 = if wall_clock {
        at.timestamp().display_with_offset(at.offset()).to_string()
    } else {
        // An offset the author wrote is kept as written.
        text.trim().to_owned()
    };
    Ok(TypedTime {
        time: EventTime::parse(field, &rfc3339)?,
        wall_clock,
    })
}

/// Refuses an event that has already finished, which `potluck events`
/// would never show, unless `--past` says that is meant.
fn check_not_past(event: &Event, past: bool, verb: &str) -> Result<()> {
    if past || event.finish_ms() >= now_ms() {
        return Ok(());
    }
    bail!(
        "{} is in the past, and `potluck events` lists only events that have not finished \
         (past ones are in `potluck events --past`); give --past to {verb} it anyway",
        when::event_span(event, None)
    )
}

fn update(ctx: &Ctx, out: &mut Output, event: &str, f: UpdateFields) -> Result<()> {
    let capacity = match f.capacity {
        None => Change::Keep,
        Some(0) => Change::Clear,
        Some(n) => Change::Set(n),
    };
    // A new zone, when given, must be a real one before anything else.
    let new_tz = optional(f.tz.clone());
    if let Some(name) = &new_tz {
        when::zone_named(name)?;
    }
    let app = ctx.open()?;
    let state = app.own_event(event, "update")?;
    // Typed wall-clock times are read in the new zone, else the event's,
    // else the computer's.
    let zone = typing_zone(
        new_tz.as_deref().or(state.event.tz.as_deref()),
        f.local_zone.as_deref(),
    )?;
    let end = match f.end {
        None => Change::Keep,
        Some(e) if e.is_empty() => Change::Clear,
        Some(e) => Change::Set(typed_time("end", &e, &zone)?.time),
    };
    let start = f
        .start
        .as_deref()
        .map(|s| typed_time("start", s, &zone).map(|t| t.time))
        .transpose()?;
    let update = EventUpdate {
        event: Default::default(),
        title: f.title,
        start,
        end,
        tz: text_change(f.tz),
        location: text_change(f.location),
        url: text_change(f.url),
        description: text_change(f.description),
        capacity,
    };
    if update.start.is_some() || !matches!(update.end, Change::Keep) {
        check_not_past(&state.event.apply(&update)?, f.past, "move")?;
    }
    let (id, revision) = app.update(event, update, now_ms())?;
    out.print(json!({ "id": id, "revision": revision }), || {
        format!(
            "updated \"{}\" {} (revision {revision})",
            when::sanitize_line(&state.event.title),
            when::short_id(&id.to_string())
        )
    });
    Ok(())
}

fn cancel(ctx: &Ctx, out: &mut Output, event: &str, reason: Option<String>) -> Result<()> {
    let app = ctx.open()?;
    let id = app.cancel(event, reason, now_ms())?;
    let title = app.event_state(&id.to_string())?.event.title;
    out.print(json!({ "id": id, "status": "cancelled" }), || {
        format!(
            "cancelled \"{}\" {}",
            when::sanitize_line(&title),
            when::short_id(&id.to_string())
        )
    });
    Ok(())
}

fn rsvp(
    ctx: &Ctx,
    out: &mut Output,
    event: &str,
    status: RsvpStatus,
    guests: u32,
    note: Option<String>,
) -> Result<()> {
    // Check the fields before opening the store, with a placeholder id.
    Rsvp {
        event: Default::default(),
        status,
        guests,
        note: optional(note.clone()),
        revision: None,
    }
    .validate()?;
    let state = ctx.open()?.rsvp(event, status, guests, note, now_ms())?;
    let id = state.id;
    out.print(
        json!({ "event": id, "status": status.as_str(), "guests": guests }),
        || {
            format!(
                "RSVP {} to \"{}\", {}",
                status.as_str(),
                when::sanitize_line(&state.event.title),
                when::event_span(&state.event, None)
            )
        },
    );
    Ok(())
}

fn events(
    ctx: &Ctx,
    out: &mut Output,
    past: bool,
    all: bool,
    limit: usize,
    zone: Option<String>,
) -> Result<()> {
    let which = if all {
        EventList::All
    } else if past {
        EventList::Past
    } else {
        EventList::Upcoming
    };
    let (summaries, more) = ctx.open_store()?.events(which, now_ms(), limit)?;
    if out.json {
        let docs: Vec<Value> = summaries
            .iter()
            .map(|summary| event_json(summary, None, zone.as_deref()))
            .collect();
        out.line(Value::Array(docs).to_string());
        return Ok(());
    }
    if summaries.is_empty() {
        out.line(match which {
            EventList::Upcoming => {
                "no upcoming events (`potluck events --past` lists those that are over)"
            }
            EventList::Past => "no past events",
            EventList::All => "no events",
        });
    }
    let viewer = zone.as_deref().and_then(|z| when::zone_named(z).ok());
    for summary in &summaries {
        let state = &summary.state;
        let flag = if summary.is_cancelled() {
            "  [CANCELLED]"
        } else {
            ""
        };
        let mut where_who = format!(
            "    {}  by {}",
            when::short_id(&state.id.to_string()),
            person(summary.organizer_name.as_deref(), &state.author)
        );
        if let Some(location) = &state.event.location {
            where_who.push_str(&format!(", at {}", when::sanitize_line(location)));
        }
        out.line(format!(
            "{}  {}{flag}\n{where_who}\n    {}",
            when::event_span(&state.event, viewer.as_ref()),
            when::sanitize_line(&state.event.title),
            answers_text(summary),
        ));
    }
    if more {
        out.line(format!(
            "(showing {limit}; `--limit N` shows more, `--limit 0` all)"
        ));
    }
    Ok(())
}

/// A person for people: their name, else the short form of their feed id.
pub(crate) fn person(name: Option<&str>, feed: &FeedId) -> String {
    match name {
        Some(name) if !name.trim().is_empty() => when::sanitize_line(name).into_owned(),
        _ => when::short_id(&feed.to_string()).to_owned(),
    }
}

/// The answers to an event in one line: `going 3 (5 people), maybe 1, not
/// going 0`, and with a capacity `; capacity 30: 25 places left, 2 on the
/// waitlist, 1 pending`.
fn answers_text(summary: &EventSummary) -> String {
    let t = &summary.tally;
    let mut text = format!(
        "going {} ({}), maybe {}, not going {}",
        t.going,
        when::plural(t.headcount, "person", "people"),
        t.maybe,
        t.not_going
    );
    if let (Some(capacity), Some(left)) = (summary.state.event.capacity, summary.places_left()) {
        let a = &summary.admissions;
        text.push_str(&format!(
            "; capacity {capacity}: {} left, {} on the waitlist",
            when::plural(left, "place", "places"),
            a.waitlisted
        ));
        if a.pending > 0 {
            text.push_str(&format!(", {} pending", a.pending));
        }
    }
    text
}

/// The viewer's IANA time zone; an error when the computer's zone has no
/// IANA name (events are labelled by zone name, never by a guess).
fn local_zone() -> Result<String> {
    when::local_zone_name().ok_or_else(unnamed_zone_error)
}

/// The computer's zone has no IANA name: say how to name one.
fn unnamed_zone_error() -> anyhow::Error {
    KindedError {
        kind: "invalid_input",
        message: format!(
            "this computer's time zone{} has no IANA name, and potluck needs one to read or \
             show times in it: give --tz ZONE (e.g. --tz Europe/Moscow), or set TZ to a zone \
             name (e.g. TZ=Europe/Moscow)",
            std::env::var("TZ")
                .map(|tz| format!(" (TZ={tz})"))
                .unwrap_or_default()
        ),
    }
    .into()
}

/// The JSON contract of an event (see `docs/content.md`), with its RSVPs
/// when given. Times are in the event's zone, or in `zone` when given
/// (`events --local`).
fn event_json(summary: &EventSummary, rsvps: Option<&[RsvpView]>, zone: Option<&str>) -> Value {
    let state = &summary.state;
    let e = &state.event;
    let tally = &summary.tally;
    let admissions = &summary.admissions;
    let show_zone = zone.or(e.tz.as_deref());
    let mut doc = json!({
        "id": state.id,
        "author": state.author,
        "organizer_name": summary.organizer_name,
        "title": e.title,
        "start": rfc3339_in_zone(e.start.as_str(), show_zone),
        "end": e.end.as_ref().map(|end| rfc3339_in_zone(end.as_str(), show_zone)),
        "tz": e.tz,
        "location": e.location,
        "url": e.url,
        "description": e.description,
        "capacity": e.capacity,
        "places_left": summary.places_left(),
        "status": state.status.as_str(),
        "cancel_reason": state.cancel_reason,
        "revision": state.revision,
        "tally": {
            "going": tally.going,
            "maybe": tally.maybe,
            "not_going": tally.not_going,
            "headcount": tally.headcount,
            "admitted": admissions.admitted,
            "admitted_headcount": admissions.admitted_headcount,
            "waitlisted": admissions.waitlisted,
            "pending": admissions.pending,
        },
        "plan_revision": state.plan_revision,
    });
    if let Some(rsvps) = rsvps {
        let list = rsvps
            .iter()
            .map(|r| {
                json!({
                    "author": r.author,
                    "name": r.name,
                    "status": r.rsvp.status.as_str(),
                    "guests": r.rsvp.guests,
                    "note": r.rsvp.note,
                    "admission": r.admission.map(|s| s.as_str()),
                    "answered_revision": r.rsvp.answered_revision,
                    "stale": r.stale,
                })
            })
            .collect();
        doc["rsvps"] = Value::Array(list);
    }
    doc
}

fn show_event(ctx: &Ctx, out: &mut Output, event: &str) -> Result<()> {
    let detail = ctx.open_store()?.event(event)?;
    let doc = event_json(&detail.summary, Some(&detail.rsvps), None);
    let state = &detail.summary.state;
    if out.json {
        out.line(doc.to_string());
        return Ok(());
    }
    let summary = &detail.summary;
    let e = &state.event;
    let mut text = String::new();
    // Writing to a String cannot fail.
    macro_rules! w { ($($t:tt)*) => { let _ = writeln!(text, $($t)*); } }
    w!("{}", when::sanitize_line(&e.title));
    // Every line is `label:` and the value, aligned.
    let mut field = |label: &str, value: &str| {
        let mut lines = value.lines();
        let first = lines.next().unwrap_or_default();
        let line = format!("{:<11}{first}", format!("{label}:"));
        w!("  {}", line.trim_end());
        for more in lines {
            w!("  {:<11}{more}", "");
        }
    };
    field("id", &state.id.to_string());
    field(
        "organizer",
        &match &summary.organizer_name {
            Some(name) => format!("{} ({})", when::sanitize_line(name), state.author),
            None => state.author.to_string(),
        },
    );
    field("when", &when::event_span(e, None));
    for (label, value) in [("location", &e.location), ("url", &e.url)] {
        if let Some(v) = value {
            field(label, &when::sanitize_line(v));
        }
    }
    if let Some(v) = &e.description {
        field("about", &when::sanitize_for_terminal(v));
    }
    let mut status = state.status.as_str().to_owned();
    if let Some(r) = &state.cancel_reason {
        status.push_str(&format!(" ({})", when::sanitize_line(r)));
    }
    field("status", &format!("{status}, revision {}", state.revision));
    field("answers", &answers_text(summary));
    if e.capacity.is_some() {
        let a = &summary.admissions;
        field(
            "admitted",
            &format!(
                "{} ({})",
                a.admitted,
                when::plural(a.admitted_headcount, "person", "people")
            ),
        );
    }
    if !detail.rsvps.is_empty() {
        field("rsvps", "");
    }
    for r in &detail.rsvps {
        let plus = if r.rsvp.guests > 0 {
            format!(" +{}", r.rsvp.guests)
        } else {
            String::new()
        };
        let mut note = r
            .rsvp
            .note
            .as_deref()
            .map(|n| format!(" \"{}\"", when::sanitize_line(n)))
            .unwrap_or_default();
        if e.capacity.is_some()
            && let Some(admission) = r.admission
        {
            match r.waitlist_position {
                Some(place) => note.push_str(&format!(" [waitlisted, #{place} in line]")),
                None => note.push_str(&format!(" [{}]", admission.as_str())),
            }
        }
        if r.stale {
            note.push_str(" (answered before the time or place changed)");
        }
        w!(
            "    {:<10} {}{plus}{note}",
            r.rsvp.status.as_str(),
            person(r.name.as_deref(), &r.author)
        );
    }
    out.line(text.trim_end());
    Ok(())
}

fn log(ctx: &Ctx, out: &mut Output, feed: Option<String>) -> Result<()> {
    let opened = ctx.open_store()?;
    let store = opened.store();
    let feed = match feed {
        Some(text) => FeedId::parse(&text)?,
        None => match &ctx.node {
            Some(node) => node.feed_id(),
            None => Identity::load(&ctx.home)?.feed_id(),
        },
    };
    for proof in store.forks(&feed)? {
        eprintln!(
            "warning: feed {feed} is forked at #{}: its author signed two different messages",
            proof.sequence
        );
    }
    for msg in store.feed_messages(&feed, 1) {
        out.line(msg?.to_json().to_string());
    }
    Ok(())
}

fn fsck(ctx: &Ctx, out: &mut Output, repair: bool) -> Result<()> {
    if repair && ctx.node.is_some() {
        bail!(
            "stop `potluck serve` first: a repair cuts feeds that its connections may be sending"
        );
    }
    // What a repair did, for the one document printed at the end.
    let mut done = serde_json::Map::new();
    let mut done_text = Vec::new();
    let opened = match ctx.open_store() {
        Err(e)
            if repair
                && matches!(
                    e.downcast_ref::<potluck::store::StoreError>(),
                    Some(potluck::store::StoreError::DatabaseDamaged { .. })
                ) =>
        {
            let rebuilt = Store::rebuild_from_log(&ctx.home.store_path(), now_ms())?;
            let moved = rebuilt.moved_to.to_string_lossy().into_owned();
            done_text.push(format!(
                "the database was damaged: moved it to {moved} and rebuilt the store from its message log ({} messages restored, {} skipped)",
                rebuilt.restored, rebuilt.skipped
            ));
            done.insert(
                "rebuilt".into(),
                json!({
                    "moved_to": moved,
                    "restored": rebuilt.restored,
                    "skipped": rebuilt.skipped,
                    "log_problem": rebuilt.log_problem,
                }),
            );
            ctx.open_store()?
        }
        other => other?,
    };
    let store = opened.store();
    if repair {
        let repaired = store.repair()?;
        done_text.push(format!(
            "rebuilt {} index entries from the logs",
            repaired.index_entries
        ));
        let mut cut = Vec::new();
        for (feed, from, held) in &repaired.cut {
            done_text.push(format!(
                "cut {feed} back to #{} (it held #{held}); peers will send the rest again",
                from - 1
            ));
            cut.push(json!({ "feed": feed, "from": from, "held": held }));
        }
        done.insert(
            "repaired".into(),
            json!({ "cut": cut, "index_entries": repaired.index_entries }),
        );
    }
    let report = store.fsck()?;
    let forked = store.forked_feeds()?;
    let refetching: Vec<Value> = report
        .refetching
        .iter()
        .map(|(feed, holds, held)| json!({ "feed": feed, "holds": holds, "held": held }))
        .collect();
    let mut doc = json!({
        "ok": report.problems.is_empty(),
        "feeds": report.feeds,
        "messages": report.messages,
        "index_entries": report.index_entries,
        "problems": report.problems,
        "refetching": refetching,
        "forked": forked_json(&forked),
    });
    if let Some(map) = doc.as_object_mut() {
        map.extend(done);
    }
    out.print(doc, || {
        let mut text: String = done_text.iter().map(|l| format!("{l}\n")).collect();
        text.push_str(&format!(
            "checked {}, {}, {}",
            when::plural(report.feeds, "feed", "feeds"),
            when::plural(report.messages, "message", "messages"),
            when::plural(report.index_entries, "index entry", "index entries")
        ));
        for p in &report.problems {
            text.push_str("\n  problem: ");
            text.push_str(p);
        }
        for (feed, holds, held) in &report.refetching {
            text.push_str(&format!(
                "\n  fetching again: {feed} (holds #{holds} of the #{held} it held before a repair)"
            ));
        }
        text.push_str(&forked_text(&forked));
        text
    });
    if !report.problems.is_empty() {
        bail!(
            "{} problems found; `potluck fsck --repair` repairs them (damaged messages are cut and fetched again from peers, indexes rebuilt)",
            report.problems.len()
        );
    }
    Ok(())
}

/// Forked feeds (feed, sequence of the first proof) as JSON.
pub(crate) fn forked_json(forked: &[(FeedId, u64)]) -> Value {
    forked
        .iter()
        .map(|(feed, sequence)| json!({ "feed": feed, "sequence": sequence }))
        .collect()
}

/// Forked feeds as lines for people (empty when there are none).
pub(crate) fn forked_text(forked: &[(FeedId, u64)]) -> String {
    forked
        .iter()
        .map(|(feed, sequence)| {
            format!(
                "\n  forked: {feed} has two histories from #{sequence}; the one seen first is kept, and peers holding the other do not exchange it"
            )
        })
        .collect()
}

/// Messages per `Store::ingest` call of `potluck fixtures`.
const FIXTURE_BATCH: usize = 5_000;

/// `potluck fixtures`: a new home at `root` holding the messages of
/// `potluck::fixtures::generate`, ingested in order in batches.
fn fixtures(
    out: &mut Output,
    root: &std::path::Path,
    spec: &potluck::fixtures::FixtureSpec,
) -> Result<()> {
    spec.check()?;
    let home = Home::at(root);
    if home.secret_path().exists() {
        bail!(
            "{} already holds an identity; `potluck fixtures` only fills a new home",
            home.secret_path().display()
        );
    }
    home.create()?;
    Identity::create(&home)?;
    let store = Store::open(&home.store_path())?;
    let started = std::time::Instant::now();
    let mut messages = 0usize;
    let mut bytes = 0u64;
    let mut feeds = std::collections::HashSet::new();
    let mut batch = Vec::with_capacity(FIXTURE_BATCH);
    let mut stream = potluck::fixtures::generate(spec).peekable();
    while stream.peek().is_some() {
        batch.extend(stream.by_ref().take(FIXTURE_BATCH));
        let sent = batch.len();
        for msg in &batch {
            bytes += msg.bytes().len() as u64;
            feeds.insert(msg.author());
        }
        let report = store.ingest(std::mem::take(&mut batch))?;
        if let Some(r) = &report.rejected {
            bail!(
                "fixture message {} (sequence {} of {}) was rejected: {}",
                messages + r.index,
                r.sequence,
                r.author,
                r.error
            );
        }
        if report.accepted.len() != sent {
            bail!(
                "only {} of {sent} fixture messages were stored ({} duplicates, {} forks)",
                report.accepted.len(),
                report.duplicates,
                report.forks.len()
            );
        }
        messages += sent;
    }
    if messages != spec.messages {
        bail!("generated {messages} messages instead of {}", spec.messages);
    }
    store.flush()?;
    let size = store.size_on_disk()?;
    let seconds = started.elapsed().as_secs_f64();
    out.print(
        json!({
            "home": home.root().to_string_lossy(),
            "messages": messages,
            "feeds": feeds.len(),
            "bytes": bytes,
            "size_on_disk": size,
            "seconds": seconds,
        }),
        || {
            format!(
                "{messages} messages from {} feeds ({bytes} bytes encoded) in {}: \
                 {size} bytes on disk, {seconds:.1} s",
                feeds.len(),
                home.root().display()
            )
        },
    );
    Ok(())
}

fn contact(ctx: &Ctx, out: &mut Output, feed: &str, change: ContactChange) -> Result<()> {
    let target = FeedId::parse(feed)?;
    let app = ctx.open_creating(out, true)?;
    let (following, blocking) = app.contact(target, change, now_ms())?;
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

/// `potluck agenda`: my upcoming `going` and `maybe` answers.
fn agenda(ctx: &Ctx, out: &mut Output) -> Result<()> {
    let mut items = Vec::new();
    let mut text = Vec::new();
    for AgendaItem { state, mine } in ctx.open()?.agenda(now_ms())? {
        let (rsvp, status, stale) = (&mine.rsvp, mine.admission, mine.stale);
        let cancelled = state.status == EventStatus::Cancelled;
        let admission = match (status, mine.waitlist_position) {
            (Some(_), Some(place)) => format!(" [waitlisted, #{place} in line]"),
            (Some(s), None) => format!(" [{}]", s.as_str()),
            (None, _) => String::new(),
        };
        text.push(format!(
            "{}  {}  {}{}{}{}\n    {}",
            when::event_span(&state.event, None),
            when::sanitize_line(&state.event.title),
            rsvp.status.as_str(),
            admission,
            if stale {
                " (changed since you answered)"
            } else {
                ""
            },
            if cancelled { "  [CANCELLED]" } else { "" },
            when::short_id(&state.id.to_string()),
        ));
        items.push(json!({
            "event": state.id,
            "title": state.event.title,
            "start": state.event.rfc3339_start(),
            "tz": state.event.tz,
            "event_status": state.status.as_str(),
            "status": rsvp.status.as_str(),
            "guests": rsvp.guests,
            "admission": status.map(|s| s.as_str()),
            "answered_revision": rsvp.answered_revision,
            "changed_since_answer": stale,
        }));
    }
    out.print(Value::Array(items), || {
        if text.is_empty() {
            "nothing on your agenda".to_owned()
        } else {
            text.join("\n")
        }
    });
    Ok(())
}

/// `potluck ics`: RFC 5545 text for one event or every upcoming event.
fn ics(ctx: &Ctx, out: &mut Output, event: Option<&str>) -> Result<()> {
    let (text, count) = ctx.open_store()?.calendar(event, now_ms())?;
    if out.json {
        out.print(json!({ "events": count, "calendar": text }), String::new);
    } else {
        // The calendar is written exactly, CRLF line ends included.
        out.text.push_str(&text);
    }
    Ok(())
}

/// `potluck export`: a bundle of messages, exactly as signed.
fn export(
    ctx: &Ctx,
    out: &mut Output,
    feeds: &[String],
    for_clock: Option<&std::path::Path>,
    file: &std::path::Path,
) -> Result<()> {
    let clock = match for_clock {
        Some(path) => {
            let f = std::fs::File::open(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(potluck::bundle::ClockFile::read(f)?)
        }
        None => None,
    };
    // Check every feed id before touching anything.
    let wanted: Vec<FeedId> = feeds
        .iter()
        .map(|f| FeedId::parse(f))
        .collect::<Result<_, _>>()?;
    let opened = ctx.open_store()?;
    let store = opened.store();
    let feeds: Vec<FeedId> = if wanted.is_empty() {
        store.feeds()?.into_iter().map(|(f, _)| f).collect()
    } else {
        wanted
    };
    let mut messages = Vec::new();
    // Feeds that have something in the bundle (with --for, only those the
    // friend lacks messages of).
    let mut feeds_written = 0u64;
    for feed in &feeds {
        let from = clock
            .as_ref()
            .and_then(|c| c.feeds.get(feed))
            .map_or(1, |held| held.saturating_add(1));
        let before = messages.len();
        for msg in store.feed_messages(feed, from) {
            messages.push(msg?);
        }
        feeds_written += u64::from(messages.len() > before);
    }
    let tmp = file.with_extension("partial");
    let mut writer = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?,
    );
    let count = potluck::bundle::write_bundle(&mut writer, messages)?;
    drop(writer);
    std::fs::rename(&tmp, file).with_context(|| format!("cannot write {}", file.display()))?;
    out.print(
        json!({ "messages": count, "feeds": feeds_written, "file": file.to_string_lossy() }),
        || {
            format!(
                "wrote {} from {} to {}",
                when::plural(count as u64, "message", "messages"),
                when::plural(feeds_written, "feed", "feeds"),
                file.display()
            )
        },
    );
    Ok(())
}

/// `potluck clock`: what this node holds, feed by feed.
fn clock(ctx: &Ctx, out: &mut Output, file: &std::path::Path) -> Result<()> {
    let opened = ctx.open_store()?;
    let feeds = opened
        .store()
        .feeds()?
        .into_iter()
        .map(|(f, h)| (f, h.sequence))
        .collect();
    let clock = potluck::bundle::ClockFile::new(feeds);
    let text = serde_json::to_string_pretty(&clock)?;
    std::fs::write(file, text).with_context(|| format!("cannot write {}", file.display()))?;
    out.print(
        json!({ "feeds": clock.feeds.len(), "file": file.to_string_lossy() }),
        || {
            format!(
                "wrote the clock of {} to {}",
                when::plural(clock.feeds.len() as u64, "feed", "feeds"),
                file.display()
            )
        },
    );
    Ok(())
}

/// Counts the bytes read through it, for a progress line.
struct CountingReader<R> {
    inner: R,
    count: Arc<std::sync::atomic::AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// A progress line on stderr for long work (`import`, `sync`, `join`):
/// shown only when stderr is a terminal, never with `--json` and never
/// inside a running node (whose stderr is not the person's). Redrawn at
/// most every [`ProgressLine::EVERY`], and cleared when the work ends.
pub struct ProgressLine {
    what: String,
    enabled: bool,
    started: std::time::Instant,
    drawn: Option<std::time::Instant>,
}

impl ProgressLine {
    /// Least time between two redraws.
    const EVERY: std::time::Duration = std::time::Duration::from_millis(200);

    /// A line about `what` ("importing", "syncing with Ana").
    pub fn new(ctx: &Ctx, out: &Output, what: impl Into<String>) -> ProgressLine {
        use std::io::IsTerminal as _;
        ProgressLine {
            what: what.into(),
            enabled: ctx.node.is_none() && !out.json && std::io::stderr().is_terminal(),
            started: std::time::Instant::now(),
            drawn: None,
        }
    }

    /// Shows `messages` so far and, when known, the share done (`done` of
    /// `total`).
    pub fn show(&mut self, messages: u64, share: Option<(u64, u64)>) {
        let elapsed = self.started.elapsed();
        self.draw(|what| when::progress_text(what, messages, share, elapsed));
    }

    /// Shows `messages` so far of `total`.
    pub fn show_of_total(&mut self, messages: u64, total: u64) {
        let elapsed = self.started.elapsed();
        self.draw(|what| when::progress_of_total(what, messages, total, elapsed));
    }

    fn draw(&mut self, text: impl FnOnce(&str) -> String) {
        if !self.enabled || self.drawn.is_some_and(|at| at.elapsed() < Self::EVERY) {
            return;
        }
        self.drawn = Some(std::time::Instant::now());
        let text = text(&self.what);
        // Carriage return and "erase line": the line is redrawn in place.
        eprint!("\r\u{1b}[K{text}");
    }

    /// Clears the line, if one was drawn.
    pub fn finish(&mut self) {
        if self.enabled && self.drawn.take().is_some() {
            eprint!("\r\u{1b}[K");
        }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `potluck import`: validates and stores a bundle's messages, in batches,
/// stopping at the first invalid one.
fn import(ctx: &Ctx, out: &mut Output, file: &std::path::Path) -> Result<()> {
    const BATCH: usize = 1_000;
    let opened =
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let size = opened.metadata().map(|m| m.len()).ok();
    let consumed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let input = std::io::BufReader::new(CountingReader {
        inner: opened,
        count: consumed.clone(),
    });
    let mut reader = potluck::bundle::BundleReader::new(input);
    let mut progress = ProgressLine::new(ctx, out, "importing");
    // The first message is read before anything is opened or created: a
    // file that is no bundle changes nothing.
    let first = reader.next_message().map_err(|e| KindedError {
        kind: "invalid_file",
        message: format!("{}: {e}; nothing was imported", file.display()),
    })?;
    let app = ctx.open_creating(out, true)?;
    let (mut read, mut new, mut present, mut dropped) = (0u64, 0u64, 0u64, 0u64);
    let mut problem: Option<String> = None;
    let mut end = first.is_none();
    let mut pending = first;
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        batch.extend(pending.take());
        while !end && batch.len() < BATCH {
            match reader.next_message() {
                Ok(Some(msg)) => batch.push(msg),
                Ok(None) => {
                    end = true;
                    break;
                }
                Err(e) => {
                    problem = Some(e.to_string());
                    end = true;
                    break;
                }
            }
        }
        read += batch.len() as u64;
        let (report, blocked) = app.ingest(batch)?;
        progress.show(
            read,
            size.map(|total| (consumed.load(std::sync::atomic::Ordering::Relaxed), total)),
        );
        new += report.accepted.len() as u64;
        present += report.duplicates as u64;
        dropped += blocked as u64;
        if let Some(r) = report.rejected {
            problem = Some(format!(
                "the message {} #{} is invalid: {}",
                r.author, r.sequence, r.error
            ));
            break;
        }
        if end {
            break;
        }
    }
    progress.finish();
    let rejected = read - new - present - dropped;
    out.print(
        json!({
            "new": new,
            "present": present,
            "rejected": rejected,
            "blocked": dropped,
            "problem": problem,
        }),
        || {
            format!(
                "imported {}; {present} already present; {rejected} rejected; {dropped} from blocked feeds",
                when::plural(new, "new message", "new messages")
            )
        },
    );
    match problem {
        Some(p) => Err(KindedError {
            kind: "invalid_file",
            message: format!(
                "{}: {p}; the valid messages before it were imported",
                file.display()
            ),
        }
        .into()),
        None => Ok(()),
    }
}
