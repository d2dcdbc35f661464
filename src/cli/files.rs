//! The commands about files and the store itself: `export`, `clock`,
//! `import` (sync by file), `ics`, `fsck`, `reindex` and the developer's
//! `fixtures`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use potluck::app::{BundleReader, ClockFile, CountingReader, FixtureSpec, now_ms, when};
use potluck::feed::message::FeedId;

use super::ctx::Ctx;
use super::output::{KindedError, Output, ProgressLine, forked_json, forked_text};

/// `potluck fsck`: re-verifies every message and checks the indexes;
/// with `repair`, cuts damaged feeds back and rebuilds the indexes (or a
/// damaged database from its message log) first.
pub(crate) fn fsck(ctx: &Ctx, out: &mut Output, repair: bool) -> Result<()> {
    let outcome = potluck::app::fsck(&ctx.home, ctx.running.as_ref(), repair)?;
    // What a repair did, for the one document printed at the end.
    let mut done = serde_json::Map::new();
    let mut done_text = Vec::new();
    if let Some(rebuilt) = &outcome.rebuilt {
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
    }
    if let Some(repaired) = &outcome.repaired {
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
    let report = &outcome.report;
    let forked = &outcome.forked;
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
        "forked": forked_json(forked),
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
        text.push_str(&forked_text(forked));
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

/// `potluck export`: a bundle of messages, exactly as signed.
pub(crate) fn export(
    ctx: &Ctx,
    out: &mut Output,
    feeds: &[String],
    for_clock: Option<&Path>,
    file: &Path,
) -> Result<()> {
    let clock = match for_clock {
        Some(path) => {
            let f = std::fs::File::open(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Some(ClockFile::read(f).map_err(potluck::app::AppError::from)?)
        }
        None => None,
    };
    // Check every feed id before touching anything.
    let wanted: Vec<FeedId> = feeds
        .iter()
        .map(|f| FeedId::parse(f))
        .collect::<Result<_, _>>()?;
    let (count, feeds_written) = ctx.open_store()?.export(&wanted, clock.as_ref(), file)?;
    out.print(
        json!({ "messages": count, "feeds": feeds_written, "file": file.to_string_lossy() }),
        || {
            format!(
                "wrote {} from {} to {}",
                when::plural(count, "message", "messages"),
                when::plural(feeds_written, "feed", "feeds"),
                file.display()
            )
        },
    );
    Ok(())
}

/// `potluck clock`: what this node holds, feed by feed.
pub(crate) fn clock(ctx: &Ctx, out: &mut Output, file: &Path) -> Result<()> {
    let clock = ctx.open_store()?.clock()?;
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

/// `potluck import`: validates and stores a bundle's messages, in batches,
/// stopping at the first invalid one.
pub(crate) fn import(ctx: &Ctx, out: &mut Output, file: &Path) -> Result<()> {
    let opened =
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let size = opened.metadata().map(|m| m.len()).ok();
    let consumed = Arc::new(AtomicU64::new(0));
    let input = std::io::BufReader::new(CountingReader::new(opened, consumed.clone()));
    let mut reader = BundleReader::new(input);
    let mut progress = ProgressLine::new(out, ctx.running.is_some(), "importing");
    // The first message is read before anything is opened or created: a
    // file that is no bundle changes nothing.
    let first = reader.next_message().map_err(|e| KindedError {
        kind: "invalid_file",
        message: format!("{}: {e}; nothing was imported", file.display()),
    })?;
    let app = ctx.open_creating(out, true)?;
    let report = app.import(&mut reader, first, |read| {
        progress.show(
            read,
            size.map(|total| (consumed.load(Ordering::Relaxed), total)),
        );
    })?;
    let (new, present, rejected, dropped) =
        (report.new, report.present, report.rejected, report.blocked);
    let problem = report.problem;
    progress.finish();
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

/// `potluck ics`: RFC 5545 text for one event or every upcoming event.
pub(crate) fn ics(ctx: &Ctx, out: &mut Output, event: Option<&str>) -> Result<()> {
    let app = ctx.open_store()?;
    let event = event.map(|text| app.resolve_event(text)).transpose()?;
    let (text, count) = app.calendar(event.as_ref(), now_ms())?;
    if out.json {
        out.print(json!({ "events": count, "calendar": text }), String::new);
    } else {
        // The calendar is written exactly, CRLF line ends included.
        out.text.push_str(&text);
    }
    Ok(())
}

/// `potluck reindex`: the position index and every index rebuilt from the
/// logs.
pub(crate) fn reindex(ctx: &Ctx, out: &mut Output) -> Result<()> {
    let entries = ctx.open_store()?.reindex()?;
    out.print(json!({ "entries": entries }), || {
        format!(
            "rebuilt where each message is, and {}, from the logs",
            when::plural(entries as u64, "index entry", "index entries")
        )
    });
    Ok(())
}

/// `potluck fixtures`: a new home at `root` holding the messages of
/// `potluck::fixtures::generate`, ingested in batches, 100,000 at a time ordered by feed.
pub(crate) fn fixtures(out: &mut Output, root: &Path, spec: &FixtureSpec) -> Result<()> {
    let report = potluck::app::fixtures(root, spec)?;
    let (messages, bytes, size, seconds) = (
        report.messages,
        report.bytes,
        report.size_on_disk,
        report.seconds,
    );
    let feeds = report.feeds;
    let home_dir = report.home;
    out.print(
        json!({
            "home": home_dir.to_string_lossy(),
            "messages": messages,
            "feeds": feeds,
            "bytes": bytes,
            "size_on_disk": size,
            "seconds": seconds,
        }),
        || {
            format!(
                "{messages} messages from {} feeds ({bytes} bytes encoded) in {}: \
                 {size} bytes on disk, {seconds:.1} s",
                feeds,
                home_dir.display()
            )
        },
    );
    Ok(())
}
