//! The commands about events and answers: `announce`, `update`, `cancel`,
//! `rsvp`, `events`, `event` and `agenda`. Typed times are read here (in
//! the event's zone, else the computer's); the rules live in the library.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use potluck::app::{
    AgendaItem, AppError, EventList, EventStatus, EventSummary, Past, RsvpView, now_ms, person,
    rsvp_draft, text_change, when,
};
use potluck::content::{
    Change, Event, EventTime, EventUpdate, KnownContent, RsvpStatus, rfc3339_in_zone,
};

use super::args::{EventFields, UpdateFields};
use super::ctx::Ctx;
use super::output::{KindedError, Output};

/// `potluck announce`: publishes a new event and prints its id.
pub(crate) fn announce(ctx: &Ctx, out: &mut Output, f: EventFields) -> Result<()> {
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
        unlisted: f.unlisted,
        public: f.public,
        closed_to_web: f.closed_to_web,
        comments: f.comments.map(Into::into).unwrap_or_default(),
    };
    event.validate()?;
    potluck::app::check_not_over(&event, past(f.past), now_ms())
        .map_err(|e| over(e, "announce"))?;
    let msg = ctx
        .open_creating(out, true)?
        .announce(&event, past(f.past), now_ms())
        .map_err(|e| over(e, "announce"))?;
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

/// `potluck update EVENT`: publishes a revision of an event we organize.
pub(crate) fn update(ctx: &Ctx, out: &mut Output, event: &str, f: UpdateFields) -> Result<()> {
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
    let event = app.resolve_event(event)?;
    let state = app.own_event(&event, "update")?;
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
        unlisted: flag_change(f.unlisted),
        public: flag_change(f.public),
        closed_to_web: flag_change(f.closed_to_web),
        comments: f
            .comments
            .map_or(Change::Keep, |who| Change::Set(who.into())),
    };
    let revision = app
        .update(&event, update, past(f.past), now_ms())
        .map_err(|e| over(e, "move"))?;
    let id = event;
    out.print(json!({ "id": id, "revision": revision }), || {
        format!(
            "updated \"{}\" {} (revision {revision})",
            when::sanitize_line(&state.event.title),
            when::short_id(&id.to_string())
        )
    });
    Ok(())
}

/// `potluck cancel EVENT`: cancels an event we organize.
pub(crate) fn cancel(
    ctx: &Ctx,
    out: &mut Output,
    event: &str,
    reason: Option<String>,
) -> Result<()> {
    let app = ctx.open()?;
    let event = app.resolve_event(event)?;
    let state = app.cancel(&event, reason, now_ms())?;
    let (id, title) = (state.id, state.event.title);
    out.print(json!({ "id": id, "status": "cancelled" }), || {
        format!(
            "cancelled \"{}\" {}",
            when::sanitize_line(&title),
            when::short_id(&id.to_string())
        )
    });
    Ok(())
}

/// `potluck rsvp EVENT STATUS`: publishes our answer to an event.
pub(crate) fn rsvp(
    ctx: &Ctx,
    out: &mut Output,
    event: &str,
    status: RsvpStatus,
    guests: u32,
    note: Option<String>,
) -> Result<()> {
    // Check the fields before opening the store.
    rsvp_draft(status, guests, note.clone())?;
    let app = ctx.open()?;
    let event = app.resolve_event(event)?;
    let state = app.rsvp(&event, status, guests, note, now_ms())?;
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

/// `potluck events`: upcoming, past or all events with their tallies;
/// times in each event's zone, or in `zone` (`--local`).
pub(crate) fn events(
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

/// `potluck event EVENT`: one event with every current RSVP.
pub(crate) fn show_event(ctx: &Ctx, out: &mut Output, event: &str) -> Result<()> {
    let app = ctx.open_store()?;
    let detail = app.event(&app.resolve_event(event)?)?;
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

/// `potluck agenda`: my upcoming `going` and `maybe` answers.
pub(crate) fn agenda(ctx: &Ctx, out: &mut Output) -> Result<()> {
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

/// A flag of `update`: given, it is set (to true or false).
fn flag_change(value: Option<bool>) -> Change<bool> {
    value.map_or(Change::Keep, Change::Set)
}

fn optional(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
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

/// `--past` as the app takes it.
fn past(allowed: bool) -> Past {
    if allowed { Past::Allow } else { Past::Refuse }
}

/// The already-over refusal with what the command line offers instead.
fn over(e: AppError, verb: &str) -> anyhow::Error {
    match e {
        AppError::AlreadyOver { span } => KindedError {
            kind: "refused",
            message: format!(
                "{span} is in the past, and `potluck events` lists only events that have not finished \
                 (past ones are in `potluck events --past`); give --past to {verb} it anyway"
            ),
        }
        .into(),
        e => e.into(),
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
pub(crate) fn local_zone() -> Result<String> {
    when::local_zone_name().ok_or_else(unnamed_zone_error)
}

/// The computer's zone has no IANA name: say how to name one.
pub(crate) fn unnamed_zone_error() -> anyhow::Error {
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
        "unlisted": e.unlisted,
        "public": e.public,
        "closed_to_web": e.closed_to_web,
        "comments": e.comments.as_str(),
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
