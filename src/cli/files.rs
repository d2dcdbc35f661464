//! The commands about files and the store itself: `export`, `clock`,
//! `import` (sync by file), `ics`, `fsck`, `reindex` and the developer's
//! `fixtures`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use potluck::app::when;
use potluck::feed::message::FeedId;
use potluck::home::Home;
use potluck::home::identity::Identity;
use potluck::store::Store;

use super::ctx::{Ctx, now_ms};
use super::output::{KindedError, Output, ProgressLine, forked_json, forked_text};

/// `potluck fsck`: re-verifies every message and checks the indexes;
/// with `repair`, cuts damaged feeds back and rebuilds the indexes (or a
/// damaged database from its message log) first.
pub(crate) fn fsck(ctx: &Ctx, out: &mut Output, repair: bool) -> Result<()> {
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
            Some(potluck::feed::bundle::ClockFile::read(f)?)
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
    let count = potluck::feed::bundle::write_bundle(&mut writer, messages)?;
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
pub(crate) fn clock(ctx: &Ctx, out: &mut Output, file: &Path) -> Result<()> {
    let opened = ctx.open_store()?;
    let feeds = opened
        .store()
        .feeds()?
        .into_iter()
        .map(|(f, h)| (f, h.sequence))
        .collect();
    let clock = potluck::feed::bundle::ClockFile::new(feeds);
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
    const BATCH: usize = 1_000;
    let opened =
        std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let size = opened.metadata().map(|m| m.len()).ok();
    let consumed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let input = std::io::BufReader::new(CountingReader {
        inner: opened,
        count: consumed.clone(),
    });
    let mut reader = potluck::feed::bundle::BundleReader::new(input);
    let mut progress = ProgressLine::new(out, ctx.node.is_some(), "importing");
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

/// `potluck ics`: RFC 5545 text for one event or every upcoming event.
pub(crate) fn ics(ctx: &Ctx, out: &mut Output, event: Option<&str>) -> Result<()> {
    let (text, count) = ctx.open_store()?.calendar(event, now_ms())?;
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
    let app = ctx.open_store()?;
    let entries = app.store().reindex()?;
    out.print(json!({ "entries": entries }), || {
        format!(
            "rebuilt where each message is, and {}, from the logs",
            when::plural(entries as u64, "index entry", "index entries")
        )
    });
    Ok(())
}

/// Messages per `Store::ingest` call of `potluck fixtures`.
const FIXTURE_BATCH: usize = 5_000;

/// `potluck fixtures`: a new home at `root` holding the messages of
/// `potluck::fixtures::generate`, ingested in order in batches.
pub(crate) fn fixtures(
    out: &mut Output,
    root: &Path,
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
