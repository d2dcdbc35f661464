//! The command line: argument parsing, and printing results for people
//! (default) or scripts (`--json`). Every command checks its input fully
//! before it opens the store for writing, so bad input changes nothing.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use potluck::admission;
use potluck::content::{
    About, Change, Contact, Event, EventCancel, EventTime, EventUpdate, Rsvp, RsvpStatus,
    display_time, rfc3339_in_zone,
};
use potluck::control::ControlResponse;
use potluck::home::{HOME_ENV, Home};
use potluck::identity::Identity;
use potluck::index::{EventState, EventStatus};
use potluck::message::{FeedId, Message};
use potluck::node::Node;
use potluck::store::Store;

use crate::net;

/// potluck: announce gatherings and collect RSVPs, peer to peer.
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
    /// Creates an identity on first run.
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
    /// Start, RFC 3339 with offset, e.g. 2027-01-30T16:00:00-05:00.
    #[arg(long)]
    start: String,
    /// End, RFC 3339 with offset; not before the start.
    #[arg(long)]
    end: Option<String>,
    /// IANA time zone to show times in, e.g. America/New_York.
    #[arg(long)]
    tz: Option<String>,
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
    /// New start, RFC 3339 with offset.
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
    let home = Home::resolve(args.home.clone())?;
    if let Command::Serve {
        listen,
        peers,
        discovery,
    } = args.command
    {
        net::serve(&home, listen, peers, discovery)?;
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
    if let Command::Events {
        local: true,
        local_zone: None,
        ..
    } = &args.command
    {
        raw.push("--local-zone".into());
        raw.push(local_zone().into());
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
        } else {
            write_stdout(&answer.stdout)?;
        }
        return Ok(u8::try_from(answer.code).unwrap_or(1));
    }
    let _ = raw;
    let ctx = Ctx { home, node: None };
    let mut out = Output::new(args.json);
    let result = run_command(&ctx, args.command, &mut out);
    match result {
        Ok(()) => emit(&out.text, ics_out.as_ref()).map(|()| 0),
        Err(e) => {
            write_stdout(&out.text)?;
            Err(e)
        }
    }
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
        return write(text);
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
pub fn run_in_node(home: &Home, node: &Arc<Node>, args: Vec<String>) -> ControlResponse {
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
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            return ControlResponse {
                code: 2,
                stdout: String::new(),
                stderr: format!("{first} (see `potluck --help`)\n"),
            };
        }
    };
    let ctx = Ctx {
        home: home.clone(),
        node: Some(node.clone()),
    };
    let mut out = Output::new(args.json);
    let result = match args.command {
        Command::Init { .. } => Err(anyhow::anyhow!(
            "an identity already exists here, and a node is running for this home"
        )),
        command => run_command(&ctx, command, &mut out),
    };
    match result {
        Ok(()) => ControlResponse {
            code: 0,
            stdout: out.text,
            stderr: String::new(),
        },
        Err(e) => ControlResponse {
            code: 1,
            stdout: out.text,
            stderr: format!("error: {}\n", one_line(&e)),
        },
    }
}

fn run_command(ctx: &Ctx, command: Command, out: &mut Output) -> Result<()> {
    match command {
        Command::Init { name, network_key } => init(ctx, out, name, network_key),
        Command::Serve { .. } => bail!("a potluck node is already running for this home"),
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
            let about = About {
                name,
                description: None,
            };
            about.validate()?;
            let node = ctx.open()?;
            node.publish(&about.to_content_bytes())?;
            out.print(json!({ "id": node.feed_id()?, "name": about.name }), || {
                format!("name set to {}", about.name)
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
            let zone = local.then(|| local_zone.unwrap_or_else(self::local_zone));
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
        Command::Reindex => {
            let opened = ctx.open_store()?;
            let store = opened.store();
            let entries = store.reindex()?;
            out.print(json!({ "entries": entries }), || {
                format!("rebuilt {entries} index entries from the logs")
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
}

impl Output {
    fn new(json: bool) -> Output {
        Output {
            json,
            text: String::new(),
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
}

/// An open store plus, when a command publishes, the identity.
pub enum Opened {
    /// This process opened the store.
    Direct {
        /// The store.
        store: Arc<Store>,
        /// Our identity, if loaded.
        identity: Option<Box<Identity>>,
    },
    /// The running node's store.
    Node(Arc<Node>),
}

impl Ctx {
    /// The store and the identity.
    pub fn open(&self) -> Result<Opened> {
        match &self.node {
            Some(node) => Ok(Opened::Node(node.clone())),
            None => {
                let identity = Identity::load(&self.home)?;
                let store = open_store(&self.home)?;
                Ok(Opened::Direct {
                    store: Arc::new(store),
                    identity: Some(Box::new(identity)),
                })
            }
        }
    }

    /// The store alone (read-only commands need no identity).
    pub fn open_store(&self) -> Result<Opened> {
        match &self.node {
            Some(node) => Ok(Opened::Node(node.clone())),
            None => Ok(Opened::Direct {
                store: Arc::new(open_store(&self.home)?),
                identity: None,
            }),
        }
    }
}

impl Opened {
    /// The store.
    pub fn store(&self) -> &Store {
        match self {
            Opened::Direct { store, .. } => store,
            Opened::Node(node) => node.store(),
        }
    }

    /// Our feed id (requires [`Ctx::open`]).
    fn feed_id(&self) -> Result<FeedId> {
        match self {
            Opened::Direct {
                identity: Some(identity),
                ..
            } => Ok(identity.feed_id()),
            Opened::Direct { identity: None, .. } => bail!("no identity loaded"),
            Opened::Node(node) => Ok(node.feed_id()),
        }
    }

    /// Publishes content as the next message of our feed: durable on
    /// return, and pushed to connected peers when a node runs.
    pub fn publish(&self, content: &[u8]) -> Result<Message> {
        match self {
            Opened::Direct {
                store,
                identity: Some(identity),
            } => {
                let msg = store.publish(identity.signing_key(), content, now_ms())?;
                // As organizer, decide on requests at once (a running
                // node does the same in `Node::publish`).
                if let Some(event) = admission::touched_event(&msg) {
                    admission::settle(
                        store,
                        identity.signing_key(),
                        &[event],
                        &[msg.id()],
                        now_ms(),
                    )?;
                }
                Ok(msg)
            }
            Opened::Direct { identity: None, .. } => bail!("no identity loaded"),
            Opened::Node(node) => Ok(node.publish(content, now_ms())?),
        }
    }

    fn name_of(&self, feed: &FeedId) -> Result<Option<String>> {
        Ok(self.store().about(feed)?.map(|a| a.name))
    }
}

/// Opens the store of a home that has been initialised.
pub fn open_store(home: &Home) -> Result<Store> {
    if !home.secret_path().exists() && !home.store_path().exists() {
        // Never create a store in a home that was never initialised.
        bail!(
            "no identity in {}: run `potluck init` first",
            home.root().display()
        );
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
        bail!(
            "an identity already exists at {}; refusing to overwrite it",
            home.secret_path().display()
        );
    }
    home.create()?;
    if let Some(network) = network {
        let mut config = potluck::config::ConfigFile::load(home)?;
        config.network_key = Some(network.to_hex());
        config.save(home)?;
    }
    let identity = Identity::create(home)?;
    let store = Store::open(&home.store_path())?;
    if let Some(about) = &about {
        store.publish(identity.signing_key(), &about.to_content_bytes(), now_ms())?;
    }
    let id = identity.feed_id();
    let name = about.map(|a| a.name);
    out.print(json!({ "id": id, "name": name }), || id.to_string());
    Ok(())
}

fn whoami(ctx: &Ctx, out: &mut Output) -> Result<()> {
    let node = ctx.open()?;
    let id = node.feed_id()?;
    let name = node.name_of(&id)?;
    out.print(json!({ "id": id, "name": name }), || match &name {
        Some(n) => format!("{id} ({n})"),
        None => id.to_string(),
    });
    Ok(())
}

fn optional(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn announce(ctx: &Ctx, out: &mut Output, f: EventFields) -> Result<()> {
    let event = Event {
        title: f.title,
        start: EventTime::parse("start", &f.start)?,
        end: f
            .end
            .as_deref()
            .map(|e| EventTime::parse("end", e))
            .transpose()?,
        tz: optional(f.tz),
        location: optional(f.location),
        url: optional(f.url),
        description: optional(f.description),
        capacity: f.capacity,
    };
    event.validate()?;
    let node = ctx.open()?;
    let msg = node.publish(&event.to_content_bytes())?;
    let id = msg.id();
    out.print(json!({ "id": id }), || id.to_string());
    Ok(())
}

/// Turns an update flag into a change: absent keeps, "" clears.
fn change_text(value: Option<String>) -> Change<String> {
    match value {
        None => Change::Keep,
        Some(v) if v.is_empty() => Change::Clear,
        Some(v) => Change::Set(v),
    }
}

fn update(ctx: &Ctx, out: &mut Output, event: &str, f: UpdateFields) -> Result<()> {
    let end = match f.end {
        None => Change::Keep,
        Some(e) if e.is_empty() => Change::Clear,
        Some(e) => Change::Set(EventTime::parse("end", &e)?),
    };
    let start = f
        .start
        .as_deref()
        .map(|s| EventTime::parse("start", s))
        .transpose()?;
    let capacity = match f.capacity {
        None => Change::Keep,
        Some(0) => Change::Clear,
        Some(n) => Change::Set(n),
    };
    let node = ctx.open()?;
    let state = own_event(&node, event, "update")?;
    let update = EventUpdate {
        event: state.id,
        title: f.title,
        start,
        end,
        tz: change_text(f.tz),
        location: change_text(f.location),
        url: change_text(f.url),
        description: change_text(f.description),
        capacity,
    };
    if update.is_empty() {
        bail!("nothing to change: give at least one field, e.g. --title or --start");
    }
    update.validate()?;
    // The merged event must still be valid (e.g. end not before start),
    // and must differ: a no-op update would only bump the revision.
    if state.event.apply(&update)? == state.event {
        bail!("nothing to change: the event already has these values");
    }
    node.publish(&update.to_content_bytes())?;
    let revision = state.revision + 1;
    out.print(json!({ "id": state.id, "revision": revision }), || {
        format!("updated {} (revision {revision})", state.id)
    });
    Ok(())
}

fn cancel(ctx: &Ctx, out: &mut Output, event: &str, reason: Option<String>) -> Result<()> {
    let node = ctx.open()?;
    let state = own_event(&node, event, "cancel")?;
    let cancel = EventCancel {
        event: state.id,
        reason: optional(reason),
    };
    cancel.validate()?;
    node.publish(&cancel.to_content_bytes())?;
    out.print(json!({ "id": state.id, "status": "cancelled" }), || {
        format!("cancelled {}", state.id)
    });
    Ok(())
}

/// Resolves an event that we organise and that is still scheduled.
fn own_event(node: &Opened, event: &str, verb: &str) -> Result<EventState> {
    let id = node.store().resolve_event(event)?;
    let state = node
        .store()
        .event(&id)?
        .with_context(|| format!("event {id} vanished from the index"))?;
    if state.author != node.feed_id()? {
        bail!(
            "only the organizer ({}) can {verb} event {id}",
            state.author
        );
    }
    if state.status == EventStatus::Cancelled {
        bail!("event {id} is cancelled; it cannot be changed any more");
    }
    Ok(state)
}

fn rsvp(
    ctx: &Ctx,
    out: &mut Output,
    event: &str,
    status: RsvpStatus,
    guests: u32,
    note: Option<String>,
) -> Result<()> {
    let mut rsvp = Rsvp {
        event: Default::default(),
        status,
        guests,
        note: optional(note),
        revision: None,
    };
    // Check the fields before touching the store, with a placeholder id.
    rsvp.validate()?;
    let node = ctx.open()?;
    let id = node.store().resolve_event(event)?;
    let state = node
        .store()
        .event(&id)?
        .with_context(|| format!("event {id} vanished from the index"))?;
    if state.status == EventStatus::Cancelled {
        bail!("event {id} is cancelled; RSVPs are closed");
    }
    rsvp.event = id;
    rsvp.revision = Some(state.revision);
    node.publish(&rsvp.to_content_bytes())?;
    out.print(
        json!({ "event": id, "status": status.as_str(), "guests": guests }),
        || format!("RSVP {} to \"{}\"", status.as_str(), state.event.title),
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
    let opened = ctx.open_store()?;
    let store = opened.store();
    // One more than shown, to know whether there are more.
    let fetch = (limit > 0).then_some(limit.saturating_add(1));
    let mut list = if all {
        store.all_events()?
    } else if past {
        store.past_events(now_ms(), fetch)?
    } else {
        store.upcoming_events(now_ms(), fetch)?
    };
    let more = limit > 0 && list.len() > limit;
    if more {
        if past {
            list.remove(0);
        } else {
            list.truncate(limit);
        }
    }
    let mut docs = Vec::with_capacity(list.len());
    for state in &list {
        docs.push(event_json(store, state, false, zone.as_deref())?);
    }
    if out.json {
        out.line(Value::Array(docs).to_string());
        return Ok(());
    }
    if list.is_empty() {
        out.line("no events");
    }
    for (state, doc) in list.iter().zip(&docs) {
        let tally = &doc["tally"];
        let flag = if state.status == EventStatus::Cancelled {
            " [CANCELLED]"
        } else {
            ""
        };
        out.line(format!(
            "{}  {}{}\n    going {} (headcount {}), maybe {}, not going {}   {}",
            display_time(
                state.event.start.as_str(),
                zone.as_deref().or(state.event.tz.as_deref())
            ),
            state.event.title,
            flag,
            tally["going"],
            tally["headcount"],
            tally["maybe"],
            tally["not_going"],
            state.id
        ));
    }
    if more {
        out.line(format!(
            "(showing {limit}; `--limit N` shows more, `--limit 0` all)"
        ));
    }
    Ok(())
}

/// The JSON contract of an event (see `docs/content.md`).
/// The viewer's IANA time zone (UTC when the system does not say).
fn local_zone() -> String {
    jiff::tz::TimeZone::system()
        .iana_name()
        .unwrap_or("UTC")
        .to_owned()
}

/// The JSON contract of an event (see `docs/content.md`). Times are in
/// the event's zone, or in `zone` when given (`events --local`).
fn event_json(
    store: &Store,
    state: &EventState,
    with_rsvps: bool,
    zone: Option<&str>,
) -> Result<Value> {
    let e = &state.event;
    let tally = store.tally(&state.id)?;
    // The RSVPs themselves are read only when listed, or when admission
    // counts need them (an event with a capacity).
    let rsvps = if with_rsvps || state.event.capacity.is_some() {
        store.rsvps(&state.id)?
    } else {
        Vec::new()
    };
    let admissions = admission::view(store, state, &rsvps, &tally)?;
    let show_zone = zone.or(e.tz.as_deref());
    let mut doc = json!({
        "id": state.id,
        "author": state.author,
        "organizer_name": store.about(&state.author)?.map(|a| a.name),
        "title": e.title,
        "start": rfc3339_in_zone(e.start.as_str(), show_zone),
        "end": e.end.as_ref().map(|end| rfc3339_in_zone(end.as_str(), show_zone)),
        "tz": e.tz,
        "location": e.location,
        "url": e.url,
        "description": e.description,
        "capacity": e.capacity,
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
    if with_rsvps {
        let mut list = Vec::new();
        for (author, r) in &rsvps {
            list.push(json!({
                "author": author,
                "name": store.about(author)?.map(|a| a.name),
                "status": r.status.as_str(),
                "guests": r.guests,
                "note": r.note,
                "admission": admissions.statuses.get(author).map(|s| s.as_str()),
                "answered_revision": r.answered_revision,
                "stale": r.is_stale(state),
            }));
        }
        doc["rsvps"] = Value::Array(list);
    }
    Ok(doc)
}

fn show_event(ctx: &Ctx, out: &mut Output, event: &str) -> Result<()> {
    let opened = ctx.open_store()?;
    let store = opened.store();
    let id = store.resolve_event(event)?;
    let state = store
        .event(&id)?
        .with_context(|| format!("event {id} vanished from the index"))?;
    let doc = event_json(store, &state, true, None)?;
    if out.json {
        out.line(doc.to_string());
        return Ok(());
    }
    let e = &state.event;
    let mut text = String::new();
    // Writing to a String cannot fail.
    macro_rules! w { ($($t:tt)*) => { let _ = writeln!(text, $($t)*); } }
    macro_rules! wn { ($($t:tt)*) => { let _ = write!(text, $($t)*); } }
    w!("{}", e.title);
    w!("  id:        {}", state.id);
    let organizer = doc["organizer_name"].as_str().map(str::to_owned);
    w!(
        "  organizer: {}{}",
        state.author,
        organizer.map(|n| format!(" ({n})")).unwrap_or_default()
    );
    w!("  starts:    {}", e.display_start());
    if let Some(end) = e.display_end() {
        w!("  ends:      {end}");
    }
    for (label, value) in [
        ("location", &e.location),
        ("url", &e.url),
        ("about", &e.description),
    ] {
        if let Some(v) = value {
            w!("  {label:<9}  {v}");
        }
    }
    if let Some(c) = e.capacity {
        w!("  capacity:  {c}");
    }
    wn!("  status:    {}", state.status.as_str());
    if let Some(r) = &state.cancel_reason {
        wn!(" ({r})");
    }
    w!(" · revision {}", state.revision);
    let t = &doc["tally"];
    w!(
        "  going {} (headcount {}), maybe {}, not going {}",
        t["going"],
        t["headcount"],
        t["maybe"],
        t["not_going"]
    );
    if e.capacity.is_some() {
        w!(
            "  admitted {} (headcount {}), waitlisted {}, pending {}",
            t["admitted"],
            t["admitted_headcount"],
            t["waitlisted"],
            t["pending"]
        );
    }
    for r in doc["rsvps"].as_array().into_iter().flatten() {
        let who = r["name"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| r["author"].as_str().unwrap_or_default().to_owned());
        let guests = r["guests"].as_u64().unwrap_or(0);
        let plus = if guests > 0 {
            format!(" +{guests}")
        } else {
            String::new()
        };
        let mut note = r["note"]
            .as_str()
            .map(|n| format!(" \"{n}\""))
            .unwrap_or_default();
        if e.capacity.is_some()
            && let Some(admission) = r["admission"].as_str()
        {
            note.push_str(&format!(" [{admission}]"));
        }
        if r["stale"].as_bool() == Some(true) {
            note.push_str(" (answered before the time or place changed)");
        }
        w!(
            "    {:<10} {who}{plus}{note}",
            r["status"].as_str().unwrap_or_default()
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
            "checked {} feeds, {} messages, {} index entries",
            report.feeds, report.messages, report.index_entries
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

/// The four contact commands.
#[derive(Clone, Copy)]
enum ContactChange {
    Follow,
    Unfollow,
    Block,
    Unblock,
}

fn contact(ctx: &Ctx, out: &mut Output, feed: &str, change: ContactChange) -> Result<()> {
    let target = FeedId::parse(feed)?;
    let opened = ctx.open()?;
    let me = opened.feed_id()?;
    if target == me {
        bail!("that is your own feed");
    }
    let current = opened
        .store()
        .contacts(&me)?
        .into_iter()
        .find(|(f, _)| *f == target)
        .map(|(_, c)| (c.following, c.blocking))
        .unwrap_or((false, false));
    let (following, blocking) = match change {
        ContactChange::Follow => (true, false),
        ContactChange::Unfollow => (false, current.1),
        ContactChange::Block => (false, true),
        ContactChange::Unblock => (current.0, false),
    };
    let contact = Contact {
        contact: target,
        following,
        blocking,
    };
    contact.validate()?;
    opened.publish(&contact.to_content_bytes())?;
    out.print(
        json!({ "contact": target, "following": following, "blocking": blocking }),
        || {
            let verb = match change {
                ContactChange::Follow => "following",
                ContactChange::Unfollow => "no longer following",
                ContactChange::Block => "blocking",
                ContactChange::Unblock => "no longer blocking",
            };
            format!("{verb} {target}")
        },
    );
    Ok(())
}

/// `potluck agenda`: my upcoming `going` and `maybe` answers.
fn agenda(ctx: &Ctx, out: &mut Output) -> Result<()> {
    let opened = ctx.open()?;
    let me = opened.feed_id()?;
    let store = opened.store();
    let mut items = Vec::new();
    let mut text = Vec::new();
    for state in store.upcoming_events(now_ms(), None)? {
        let Some(rsvp) = store.rsvp(&state.id, &me)? else {
            continue;
        };
        if rsvp.status == RsvpStatus::NotGoing {
            continue;
        }
        let decided = store
            .admissions(&state.id)?
            .into_iter()
            .find(|(f, _)| *f == me)
            .map(|(_, a)| a);
        let status = admission::status_of(&state, &rsvp, decided.as_ref());
        let stale = rsvp.is_stale(&state);
        let cancelled = state.status == EventStatus::Cancelled;
        text.push(format!(
            "{}  {}  {}{}{}{}",
            state.event.display_start(),
            state.event.title,
            rsvp.status.as_str(),
            status
                .map(|s| format!(" [{}]", s.as_str()))
                .unwrap_or_default(),
            if stale {
                " (changed since you answered)"
            } else {
                ""
            },
            if cancelled { " CANCELLED" } else { "" },
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
    let opened = ctx.open_store()?;
    let store = opened.store();
    let states = match event {
        Some(text) => {
            let id = store.resolve_event(text)?;
            vec![
                store
                    .event(&id)?
                    .with_context(|| format!("event {id} vanished from the index"))?,
            ]
        }
        None => store.upcoming_events(now_ms(), None)?,
    };
    let mut events = Vec::with_capacity(states.len());
    for state in &states {
        let mut attendees = Vec::new();
        for (feed, rsvp) in store.rsvps(&state.id)? {
            attendees.push(potluck::ics::IcsAttendee {
                feed,
                name: store.about(&feed)?.map(|a| a.name),
                status: rsvp.status,
            });
        }
        events.push(potluck::ics::IcsEvent {
            state,
            organizer_name: store.about(&state.author)?.map(|a| a.name),
            attendees,
        });
    }
    let text = potluck::ics::calendar(&events, jiff::Timestamp::now());
    if out.json {
        out.print(
            json!({ "events": events.len(), "calendar": text }),
            String::new,
        );
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
    for feed in &feeds {
        let from = clock
            .as_ref()
            .and_then(|c| c.feeds.get(feed))
            .map_or(1, |held| held.saturating_add(1));
        for msg in store.feed_messages(feed, from) {
            messages.push(msg?);
        }
    }
    let tmp = file.with_extension("partial");
    let mut writer = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?,
    );
    let count = potluck::bundle::write_bundle(&mut writer, messages)?;
    drop(writer);
    std::fs::rename(&tmp, file).with_context(|| format!("cannot write {}", file.display()))?;
    out.print(
        json!({ "messages": count, "feeds": feeds.len(), "file": file.to_string_lossy() }),
        || {
            format!(
                "wrote {count} messages of {} feeds to {}",
                feeds.len(),
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
                "wrote the clock of {} feeds to {}",
                clock.feeds.len(),
                file.display()
            )
        },
    );
    Ok(())
}

/// `potluck import`: validates and stores a bundle's messages, in batches,
/// stopping at the first invalid one.
fn import(ctx: &Ctx, out: &mut Output, file: &std::path::Path) -> Result<()> {
    const BATCH: usize = 1_000;
    let input = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?,
    );
    let mut reader = potluck::bundle::BundleReader::new(input);
    let node = match &ctx.node {
        Some(node) => node.clone(),
        None => {
            let Opened::Direct {
                store,
                identity: Some(identity),
            } = ctx.open()?
            else {
                bail!("no identity loaded");
            };
            // A node that never opens a socket: the same ingest path.
            crate::net::offline_node(store, &identity, &ctx.home)?
        }
    };
    let (mut read, mut new, mut present, mut dropped) = (0u64, 0u64, 0u64, 0u64);
    let mut problem: Option<String> = None;
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        let mut end = false;
        while batch.len() < BATCH {
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
        let (report, blocked) = node.ingest_messages(batch)?;
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
                "imported {new} new messages; {present} already present; {rejected} rejected; {dropped} from blocked feeds"
            )
        },
    );
    match problem {
        Some(p) => bail!(
            "{}: {p}; the valid messages before it were imported",
            file.display()
        ),
        None => Ok(()),
    }
}
