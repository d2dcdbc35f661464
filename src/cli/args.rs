//! The command line's grammar: every command, flag and help text, as clap
//! reads them. Nothing here runs a command.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

use potluck::app::HOME_ENV;
use potluck::content::{CommentPolicy, RsvpStatus};

/// Announce gatherings and collect RSVPs, peer to peer.
#[derive(Parser, Debug)]
#[command(name = "potluck", version, about, long_about = None)]
pub struct Args {
    /// Home directory (identity and store). Default: the platform's data
    /// directory, e.g. ~/.local/share/potluck.
    #[arg(long, global = true, env = HOME_ENV, value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,
    /// Print one JSON document instead of text (for scripts).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `potluck hub …`.
#[derive(Subcommand, Debug)]
pub enum HubCommand {
    /// On a hub: list its members, with what each stored.
    Members,
    /// On a hub: remove a member; its open session ends and its
    /// connections are refused from now on.
    Remove {
        /// The member's feed id, `@…ed25519`.
        feed: String,
    },
    /// On a hub: make a feed a member without a code (again, after
    /// `remove`).
    Admit {
        /// The feed id, `@…ed25519`.
        feed: String,
        /// A note kept with the member.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
    /// Join a hub with its member code: it keeps your feed for others
    /// while you are offline.
    Add {
        /// The member code from the hub's `potluck invite`.
        code: String,
    },
    /// List the hubs this node belongs to.
    List,
}

/// Every command, with its own arguments.
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Create the home directory and a new identity (or one a browser
    /// exported, with --import-key), and print its feed id.
    #[command(display_order = 1)]
    Init(InitArgs),
    /// Run the node: accept peers, dial configured ones, and replicate live.
    /// Creates an identity on first run, and serves the web page.
    #[command(display_order = 12)]
    Serve(ServeArgs),
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
        /// HOST:PORT, or @FEED.ed25519@HOST:PORT to insist on that feed, or
        /// @FEED.ed25519 alone to reach that member through your hubs.
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
        /// On a hub: how many people may join with this member code.
        #[arg(long, default_value_t = 1, value_name = "N")]
        uses: u32,
        /// On a hub: how long the member code works: 30m, 12h, 7d.
        #[arg(long, default_value = "7d", value_name = "TIME")]
        expires: String,
        /// On a hub: a note kept with the members who join with it
        /// ("the garden group").
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
    /// Hubs: members of this hub, or the hubs this node belongs to.
    #[command(display_order = 16, subcommand)]
    Hub(HubCommand),
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
    /// Comment on an event, or reply to a comment (--reply); change your
    /// own comment (--edit, --delete), or, as the organizer, hide one
    /// (--hide, --unhide).
    #[command(display_order = 7)]
    Comment(CommentArgs),
    /// Show an event's comments in thread order, a page at a time.
    #[command(display_order = 7)]
    Comments {
        /// Event id, or a unique prefix of at least 6 characters.
        event: String,
        /// Start after this comment (the last one of the page before).
        #[arg(long, value_name = "COMMENT")]
        after: Option<String>,
        /// Comments in the page (1-500).
        #[arg(long, default_value_t = potluck::app::THREAD_PAGE)]
        limit: usize,
        /// List the links shared in the thread instead (latest first).
        #[arg(long, conflicts_with_all = ["after"])]
        links: bool,
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
        #[arg(long, default_value_t = potluck::app::EVENTS_PAGE)]
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
    /// Rebuild every index from the logs: where each message is, and the
    /// events, RSVPs, names and contacts.
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

/// The flags of `serve`.
#[derive(ClapArgs, Debug)]
pub struct ServeArgs {
    /// Address to listen on (default from config.json, else 0.0.0.0:7643).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// A peer to keep connected: HOST:PORT or @FEED.ed25519@HOST:PORT.
    /// Repeatable; adds to the peers in config.json.
    #[arg(long = "peer", value_name = "ADDR")]
    pub peers: Vec<String>,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    #[command(flatten)]
    pub web: WebArgs,
    /// Run as a community hub: store and forward members' feeds, and
    /// make member codes with `potluck invite` (docs/hub.md). Same as
    /// `"hub": true` in config.json.
    #[arg(long)]
    pub hub: bool,
    /// On a hub: serve read-only public pages of the members' events
    /// at this address (e.g. 0.0.0.0:8080), for anyone with a link;
    /// default from config.json's "public_web", else none. Which
    /// events they show: docs/hub.md, "Public pages".
    #[arg(long, value_name = "ADDR")]
    pub public_web: Option<String>,
    /// Serve the public pages over HTTPS with this certificate chain
    /// (PEM, the server's certificate first: an ACME client's
    /// fullchain.pem); with --tls-key. Default from config.json's
    /// "public_tls". SIGHUP reads both files again (docs/hub.md, "HTTPS").
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
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
    /// LAN, or on loopback only when listening on loopback). On one
    /// machine, 127.255.255.255:PORT reaches every local node.
    #[arg(long = "discovery-target", value_name = "ADDR")]
    pub discovery_targets: Vec<String>,
}

/// The arguments of `init`.
#[derive(ClapArgs, Debug)]
pub(crate) struct InitArgs {
    /// Your display name, published in your feed.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Join a private network: 64 hex digits shared by its members
    /// (default: the public network).
    #[arg(long, value_name = "HEX")]
    pub(crate) network_key: Option<String>,
    /// Start over as a new person in a home whose key file is lost but
    /// whose store remains (the old feed stays there, read-only).
    /// Restoring the key file from a backup keeps everything instead.
    #[arg(long)]
    pub(crate) new_identity: bool,
    /// Take the identity a browser page exported ("keep this answer on
    /// your own computer") into this new home: FILE is the key file, or a
    /// text file holding the recovery code; `-` reads either from standard
    /// input. The feed goes on without forking: nothing is published until
    /// it is fetched back from a node that holds it (--from, `potluck hub
    /// add CODE`, `potluck join CODE` or `potluck recover HOST:PORT`).
    #[arg(long, value_name = "FILE", conflicts_with = "new_identity")]
    pub(crate) import_key: Option<PathBuf>,
    /// With --import-key: fetch the feed at once from this peer or hub
    /// (HOST:PORT or @FEED.ed25519@HOST:PORT), as `potluck recover ADDR`
    /// does. Repeatable.
    #[arg(long = "from", value_name = "ADDR", requires = "import_key")]
    pub(crate) from: Vec<String>,
}

/// The fields of `announce`.
#[derive(ClapArgs, Debug)]
pub(crate) struct EventFields {
    /// Title, 1-200 characters.
    #[arg(long)]
    pub(crate) title: String,
    /// Start: "2027-01-30 18:00" (or 2027-01-30T18:00, seconds optional)
    /// in the --tz zone, else this computer's; or RFC 3339 with an offset,
    /// e.g. 2027-01-30T18:00:00-05:00.
    #[arg(long)]
    pub(crate) start: String,
    /// End, written like the start; not before it.
    #[arg(long)]
    pub(crate) end: Option<String>,
    /// IANA time zone of the event, e.g. America/New_York: wall-clock
    /// times are read in it and people see times in it. Default: this
    /// computer's zone, when a time is given without an offset.
    #[arg(long)]
    pub(crate) tz: Option<String>,
    /// Allow an event that has already finished (it then shows only in
    /// `potluck events --past`).
    #[arg(long)]
    pub(crate) past: bool,
    /// The zone of the computer the command was typed on (set by the
    /// command when it hands itself to a running node).
    #[arg(long, hide = true)]
    pub(crate) local_zone: Option<String>,
    /// Where it happens.
    #[arg(long)]
    pub(crate) location: Option<String>,
    /// A link with more information.
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// Details, at most 8 KiB.
    #[arg(long)]
    pub(crate) description: Option<String>,
    /// Most people (with guests) who can come.
    #[arg(long)]
    pub(crate) capacity: Option<u32>,
    /// Keep it off the lists of hubs' public pages. On the public network
    /// a hub's public pages (`serve --hub --public-web`) list its members'
    /// events; an unlisted one is shown only to whoever has its link.
    #[arg(long)]
    pub(crate) unlisted: bool,
    /// Show it on the public pages of a private network's hubs whose
    /// operator turned them on (`"public_web_private_network": true`).
    /// On a private network nothing is shown there without it.
    #[arg(long)]
    pub(crate) public: bool,
    /// Take no answers from browsers on hubs' public pages (by default a
    /// public event takes them; people with a node can still answer).
    #[arg(long)]
    pub(crate) closed_to_web: bool,
    /// Whose comments nodes show: everyone (the default), people who
    /// answered, or nobody but the organizer.
    #[arg(long, value_enum, value_name = "WHO")]
    pub(crate) comments: Option<CommentsArg>,
}

/// `comment EVENT TEXT`, and what else it can do to a comment.
#[derive(ClapArgs, Debug)]
pub(crate) struct CommentArgs {
    /// Event id, or a unique prefix of at least 6 characters.
    pub(crate) event: String,
    /// The text (plain; at most 8 KiB). Not with --delete, --hide or
    /// --unhide.
    pub(crate) text: Option<String>,
    /// Reply to this comment (its id, or a unique prefix of 6 or more
    /// characters).
    #[arg(long, value_name = "COMMENT", group = "comment_action")]
    pub(crate) reply: Option<String>,
    /// Replace the text of your own comment.
    #[arg(long, value_name = "COMMENT", group = "comment_action")]
    pub(crate) edit: Option<String>,
    /// Remove your own comment; it shows as removed.
    #[arg(long, value_name = "COMMENT", group = "comment_action")]
    pub(crate) delete: Option<String>,
    /// Organizer: hide a comment on your event; its text is not shown.
    #[arg(long, value_name = "COMMENT", group = "comment_action")]
    pub(crate) hide: Option<String>,
    /// Organizer: show a hidden comment again.
    #[arg(long, value_name = "COMMENT", group = "comment_action")]
    pub(crate) unhide: Option<String>,
}

/// The fields of `update`: each one given is changed.
#[derive(ClapArgs, Debug)]
pub(crate) struct UpdateFields {
    /// New title.
    #[arg(long)]
    pub(crate) title: Option<String>,
    /// New start, written as for `announce` (a wall-clock time is read in
    /// the event's zone, else this computer's).
    #[arg(long)]
    pub(crate) start: Option<String>,
    /// New end ("" clears it).
    #[arg(long)]
    pub(crate) end: Option<String>,
    /// New time zone ("" clears it).
    #[arg(long)]
    pub(crate) tz: Option<String>,
    /// New location ("" clears it).
    #[arg(long)]
    pub(crate) location: Option<String>,
    /// New link ("" clears it).
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// New description ("" clears it).
    #[arg(long)]
    pub(crate) description: Option<String>,
    /// New capacity (0 removes it).
    #[arg(long)]
    pub(crate) capacity: Option<u32>,
    /// Unlisted on hubs' public pages (`--unlisted` or `--unlisted true`)
    /// or listed again (`--unlisted false`); see `announce --unlisted`.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) unlisted: Option<bool>,
    /// Shown on a private network's public hub pages (`--public` or
    /// `--public true`) or not (`--public false`); see `announce --public`.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) public: Option<bool>,
    /// Closed to answers from browsers (`--closed-to-web` or `--closed-to-web
    /// true`) or open again (`--closed-to-web false`); see `announce
    /// --closed-to-web`.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) closed_to_web: Option<bool>,
    /// Whose comments nodes show from now on; see `announce --comments`.
    #[arg(long, value_enum, value_name = "WHO")]
    pub(crate) comments: Option<CommentsArg>,
    /// Allow moving the event into the past.
    #[arg(long)]
    pub(crate) past: bool,
    /// See `announce --local-zone`.
    #[arg(long, hide = true)]
    pub(crate) local_zone: Option<String>,
}

/// Whose comments an event shows, as typed (`--comments answered`).
#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum CommentsArg {
    /// Anyone's.
    Everyone,
    /// Those of people who answered the event.
    Answered,
    /// Only the organizer's.
    Nobody,
}

impl From<CommentsArg> for CommentPolicy {
    fn from(who: CommentsArg) -> CommentPolicy {
        match who {
            CommentsArg::Everyone => CommentPolicy::Everyone,
            CommentsArg::Answered => CommentPolicy::Answered,
            CommentsArg::Nobody => CommentPolicy::Nobody,
        }
    }
}

/// An answer as typed (`rsvp EVENT going`).
#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum StatusArg {
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
