//! The command line: argument parsing, and printing results for people
//! (default) or scripts (`--json`). Every command checks its input fully
//! before it opens the store for writing, so bad input changes nothing.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use potluck::content::{
    About, Change, Event, EventCancel, EventTime, EventUpdate, Rsvp, RsvpStatus,
};
use potluck::home::{HOME_ENV, Home};
use potluck::identity::Identity;
use potluck::index::{EventState, EventStatus};
use potluck::message::{FeedId, Message};
use potluck::store::Store;

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
    Init {
        /// Your display name, published in your feed.
        #[arg(long)]
        name: Option<String>,
    },
    /// Print your feed id and name.
    Whoami,
    /// Publish your display name.
    Name {
        /// The name people see next to your RSVPs.
        name: String,
    },
    /// Announce an event; prints its id.
    Announce(EventFields),
    /// Change an event you announced. An empty value clears an optional
    /// field (e.g. --location ""); --capacity 0 removes the capacity.
    Update {
        /// Event id, or a unique prefix of at least 6 characters.
        event: String,
        #[command(flatten)]
        fields: UpdateFields,
    },
    /// Cancel an event you announced.
    Cancel {
        /// Event id, or a unique prefix of at least 6 characters.
        event: String,
        /// Why it is cancelled.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Answer an event: going, maybe or no.
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
    Events {
        /// Events that have already finished instead.
        #[arg(long, conflicts_with = "all")]
        past: bool,
        /// Every known event.
        #[arg(long)]
        all: bool,
    },
    /// Show one event with every current RSVP.
    Event {
        /// Event id, or a unique prefix of at least 6 characters.
        event: String,
    },
    /// Print a feed's messages, one JSON object per line (default: yours).
    Log {
        /// Feed id, `@…ed25519`.
        feed: Option<String>,
    },
    /// Re-verify every message and check the indexes against the logs.
    Fsck,
    /// Rebuild every index from the logs.
    Reindex,
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

/// Runs one command.
pub fn run(args: Args) -> Result<()> {
    let home = Home::resolve(args.home)?;
    let out = Output { json: args.json };
    match args.command {
        Command::Init { name } => init(&home, &out, name),
        Command::Whoami => whoami(&home, &out),
        Command::Name { name } => {
            let about = About {
                name,
                description: None,
            };
            about.validate()?;
            let node = Node::open(&home)?;
            node.publish(&about.to_content_bytes())?;
            out.print(
                json!({ "id": node.identity.feed_id(), "name": about.name }),
                || format!("name set to {}", about.name),
            );
            Ok(())
        }
        Command::Announce(fields) => announce(&home, &out, fields),
        Command::Update { event, fields } => update(&home, &out, &event, fields),
        Command::Cancel { event, reason } => cancel(&home, &out, &event, reason),
        Command::Rsvp {
            event,
            status,
            guests,
            note,
        } => rsvp(&home, &out, &event, status.into(), guests, note),
        Command::Events { past, all } => events(&home, &out, past, all),
        Command::Event { event } => show_event(&home, &out, &event),
        Command::Log { feed } => log(&home, feed),
        Command::Fsck => fsck(&home, &out),
        Command::Reindex => {
            let store = open_store(&home)?;
            let entries = store.reindex()?;
            out.print(json!({ "entries": entries }), || {
                format!("rebuilt {entries} index entries from the logs")
            });
            Ok(())
        }
    }
}

/// Where results go: text for people, or one JSON document.
struct Output {
    json: bool,
}

impl Output {
    fn print(&self, value: Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value}");
        } else {
            println!("{}", text());
        }
    }
}

/// An open store plus the local identity.
struct Node {
    store: Store,
    identity: Identity,
}

impl Node {
    fn open(home: &Home) -> Result<Node> {
        let identity = Identity::load(home)?;
        let store = open_store(home)?;
        Ok(Node { store, identity })
    }

    /// Publishes content as the next message of our feed; durable on return.
    fn publish(&self, content: &[u8]) -> Result<Message> {
        Ok(self
            .store
            .publish(self.identity.signing_key(), content, now_ms())?)
    }

    fn name_of(&self, feed: &FeedId) -> Result<Option<String>> {
        Ok(self.store.about(feed)?.map(|a| a.name))
    }
}

fn open_store(home: &Home) -> Result<Store> {
    if !home.secret_path().exists() && !home.store_path().exists() {
        // Never create a store in a home that was never initialised.
        bail!(
            "no identity in {}: run `potluck init` first",
            home.root().display()
        );
    }
    Ok(Store::open(&home.store_path())?)
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn init(home: &Home, out: &Output, name: Option<String>) -> Result<()> {
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

fn whoami(home: &Home, out: &Output) -> Result<()> {
    let node = Node::open(home)?;
    let id = node.identity.feed_id();
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

fn announce(home: &Home, out: &Output, f: EventFields) -> Result<()> {
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
    let node = Node::open(home)?;
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

fn update(home: &Home, out: &Output, event: &str, f: UpdateFields) -> Result<()> {
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
    let node = Node::open(home)?;
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

fn cancel(home: &Home, out: &Output, event: &str, reason: Option<String>) -> Result<()> {
    let node = Node::open(home)?;
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
fn own_event(node: &Node, event: &str, verb: &str) -> Result<EventState> {
    let id = node.store.resolve_event(event)?;
    let state = node
        .store
        .event(&id)?
        .with_context(|| format!("event {id} vanished from the index"))?;
    if state.author != node.identity.feed_id() {
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
    home: &Home,
    out: &Output,
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
    };
    // Check the fields before touching the store, with a placeholder id.
    rsvp.validate()?;
    let node = Node::open(home)?;
    let id = node.store.resolve_event(event)?;
    let state = node
        .store
        .event(&id)?
        .with_context(|| format!("event {id} vanished from the index"))?;
    if state.status == EventStatus::Cancelled {
        bail!("event {id} is cancelled; RSVPs are closed");
    }
    rsvp.event = id;
    node.publish(&rsvp.to_content_bytes())?;
    out.print(
        json!({ "event": id, "status": status.as_str(), "guests": guests }),
        || format!("RSVP {} to \"{}\"", status.as_str(), state.event.title),
    );
    Ok(())
}

fn events(home: &Home, out: &Output, past: bool, all: bool) -> Result<()> {
    let store = open_store(home)?;
    let list = if all {
        store.all_events()?
    } else if past {
        store.past_events(now_ms())?
    } else {
        store.upcoming_events(now_ms())?
    };
    let mut docs = Vec::with_capacity(list.len());
    for state in &list {
        docs.push(event_json(&store, state, false)?);
    }
    if out.json {
        println!("{}", Value::Array(docs));
        return Ok(());
    }
    if list.is_empty() {
        println!("no events");
    }
    for (state, doc) in list.iter().zip(&docs) {
        let tally = &doc["tally"];
        let flag = if state.status == EventStatus::Cancelled {
            " [CANCELLED]"
        } else {
            ""
        };
        println!(
            "{}  {}{}\n    going {} (headcount {}), maybe {}, not going {}   {}",
            state.event.display_start(),
            state.event.title,
            flag,
            tally["going"],
            tally["headcount"],
            tally["maybe"],
            tally["not_going"],
            state.id
        );
    }
    Ok(())
}

/// The JSON contract of an event (see `docs/content.md`).
fn event_json(store: &Store, state: &EventState, with_rsvps: bool) -> Result<Value> {
    let e = &state.event;
    let tally = store.tally(&state.id)?;
    let mut doc = json!({
        "id": state.id,
        "author": state.author,
        "organizer_name": store.about(&state.author)?.map(|a| a.name),
        "title": e.title,
        "start": e.rfc3339_start(),
        "end": e.rfc3339_end(),
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
        },
    });
    if with_rsvps {
        let mut rsvps = Vec::new();
        for (author, r) in store.rsvps(&state.id)? {
            rsvps.push(json!({
                "author": author,
                "name": store.about(&author)?.map(|a| a.name),
                "status": r.status.as_str(),
                "guests": r.guests,
                "note": r.note,
            }));
        }
        doc["rsvps"] = Value::Array(rsvps);
    }
    Ok(doc)
}

fn show_event(home: &Home, out: &Output, event: &str) -> Result<()> {
    let store = open_store(home)?;
    let id = store.resolve_event(event)?;
    let state = store
        .event(&id)?
        .with_context(|| format!("event {id} vanished from the index"))?;
    let doc = event_json(&store, &state, true)?;
    if out.json {
        println!("{doc}");
        return Ok(());
    }
    let e = &state.event;
    println!("{}", e.title);
    println!("  id:        {}", state.id);
    let organizer = doc["organizer_name"].as_str().map(str::to_owned);
    println!(
        "  organizer: {}{}",
        state.author,
        organizer.map(|n| format!(" ({n})")).unwrap_or_default()
    );
    println!("  starts:    {}", e.display_start());
    if let Some(end) = e.display_end() {
        println!("  ends:      {end}");
    }
    for (label, value) in [
        ("location", &e.location),
        ("url", &e.url),
        ("about", &e.description),
    ] {
        if let Some(v) = value {
            println!("  {label:<9}  {v}");
        }
    }
    if let Some(c) = e.capacity {
        println!("  capacity:  {c}");
    }
    print!("  status:    {}", state.status.as_str());
    if let Some(r) = &state.cancel_reason {
        print!(" ({r})");
    }
    println!(" · revision {}", state.revision);
    let t = &doc["tally"];
    println!(
        "  going {} (headcount {}), maybe {}, not going {}",
        t["going"], t["headcount"], t["maybe"], t["not_going"]
    );
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
        let note = r["note"]
            .as_str()
            .map(|n| format!(" \"{n}\""))
            .unwrap_or_default();
        println!(
            "    {:<10} {who}{plus}{note}",
            r["status"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

fn log(home: &Home, feed: Option<String>) -> Result<()> {
    let store = open_store(home)?;
    let feed = match feed {
        Some(text) => FeedId::parse(&text)?,
        None => Identity::load(home)?.feed_id(),
    };
    for proof in store.forks(&feed)? {
        eprintln!(
            "warning: feed {feed} is forked at #{}: its author signed two different messages",
            proof.sequence
        );
    }
    for msg in store.feed_messages(&feed, 1) {
        println!("{}", msg?.to_json());
    }
    Ok(())
}

fn fsck(home: &Home, out: &Output) -> Result<()> {
    let store = open_store(home)?;
    let report = store.fsck()?;
    out.print(
        json!({
            "ok": report.problems.is_empty(),
            "feeds": report.feeds,
            "messages": report.messages,
            "index_entries": report.index_entries,
            "problems": report.problems,
        }),
        || {
            let mut text = format!(
                "checked {} feeds, {} messages, {} index entries",
                report.feeds, report.messages, report.index_entries
            );
            for p in &report.problems {
                text.push_str("\n  problem: ");
                text.push_str(p);
            }
            text
        },
    );
    if !report.problems.is_empty() {
        bail!(
            "{} problems found; `potluck reindex` rebuilds the indexes from the logs",
            report.problems.len()
        );
    }
    Ok(())
}
