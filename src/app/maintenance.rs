//! Keeping the store: checking and repairing it (`fsck`), rebuilding its
//! indexes (`reindex`), moving feeds by file (`export`, `clock`,
//! `import`), a feed's raw log, and the developer's fixture homes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::feed::bundle::{BundleReader, ClockFile, write_bundle};
use crate::feed::message::{FeedId, Message};
use crate::fixtures::FixtureSpec;
use crate::home::Home;
use crate::home::identity::Identity;
use crate::store::{FsckReport, Store, StoreError};

use super::{Access, App, AppError, now_ms};

/// What a repair did before the check.
#[derive(Clone, Debug, Default)]
pub struct Repaired {
    /// Feeds cut back: feed, first sequence removed, the head before.
    pub cut: Vec<(FeedId, u64, u64)>,
    /// Index entries rebuilt.
    pub index_entries: usize,
}

/// A damaged database moved aside and rebuilt from its message log.
#[derive(Clone, Debug)]
pub struct Rebuilt {
    /// Where the damaged database went.
    pub moved_to: PathBuf,
    /// Messages restored.
    pub restored: u64,
    /// Records not restored: damaged, or after damage in their feed.
    pub skipped: u64,
    /// Why reading the old log stopped early, if it did.
    pub log_problem: Option<String>,
}

/// What `fsck` found (and, with a repair, did first).
#[derive(Debug)]
pub struct FsckOutcome {
    /// The database was rebuilt from its log before anything else.
    pub rebuilt: Option<Rebuilt>,
    /// What the repair did.
    pub repaired: Option<Repaired>,
    /// The check.
    pub report: FsckReport,
    /// Forked feeds: (feed, sequence of the first proof).
    pub forked: Vec<(FeedId, u64)>,
}

/// `potluck fsck`: re-verifies every message and checks the indexes of
/// `home`'s store (through `running`, the running node's app, when there
/// is one); with `repair`, first cuts damaged feeds back and rebuilds the
/// indexes, or rebuilds a database too damaged to open from its log.
pub fn fsck(home: &Home, running: Option<&App>, repair: bool) -> Result<FsckOutcome, AppError> {
    if repair && running.is_some() {
        return Err(AppError::NodeRunning(
            "stop `potluck serve` first: a repair cuts feeds that its connections may be sending",
        ));
    }
    let mut rebuilt = None;
    // A repair rebuilds the indexes in place, which wants the store's
    // whole cache; a check alone reads each page once. (An open that
    // finds an upgrade or an interrupted rebuild to finish does it with
    // the small cache: slower, and rare.)
    let access = if repair { Access::Read } else { Access::Check };
    let app = match running {
        Some(app) => app.clone(),
        None => match App::open(home, access) {
            Err(AppError::Store(StoreError::DatabaseDamaged { .. })) if repair => {
                let report = Store::rebuild_from_log(&home.store_path(), now_ms())?;
                rebuilt = Some(Rebuilt {
                    moved_to: report.moved_to,
                    restored: report.restored,
                    skipped: report.skipped,
                    log_problem: report.log_problem,
                });
                App::open(home, Access::Read)?
            }
            other => other?,
        },
    };
    let repaired = if repair {
        let report = app.store.repair()?;
        Some(Repaired {
            cut: report.cut,
            index_entries: report.index_entries,
        })
    } else {
        None
    };
    Ok(FsckOutcome {
        rebuilt,
        repaired,
        report: app.store.fsck()?,
        forked: app.store.forked_feeds()?,
    })
}

/// What `import` did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ImportReport {
    /// Messages new to this store.
    pub new: u64,
    /// Messages it held already.
    pub present: u64,
    /// Messages refused (the first invalid one ends the import).
    pub rejected: u64,
    /// Messages of feeds we block, dropped.
    pub blocked: u64,
    /// Why the import stopped early: the messages before it were imported.
    pub problem: Option<String>,
}

/// What `fixtures` wrote.
#[derive(Clone, Debug)]
pub struct FixtureReport {
    /// The new home.
    pub home: PathBuf,
    /// Messages stored.
    pub messages: usize,
    /// Distinct feeds.
    pub feeds: usize,
    /// Bytes of the encoded messages.
    pub bytes: u64,
    /// The store's size on disk.
    pub size_on_disk: u64,
    /// How long it took.
    pub seconds: f64,
}

/// Messages per [`App::ingest`] call of `import`.
const IMPORT_BATCH: usize = 1_000;

/// Messages per `Store::ingest` call of `fixtures`.
const FIXTURE_BATCH: usize = 5_000;

/// Messages of the fixture stream `fixtures` takes at a time and orders by
/// feed before ingesting them (about 35 MB). The stream interleaves
/// 50,000 feeds at random; ingested in that order, every batch answers for
/// thousands of authors, and each answer reads its author's answers from
/// `groups.log`, which at millions of messages no longer fit the cache
/// (a store fed by that many authors at once is the slow case of the
/// grouped entries; docs/performance.md). Ordered by feed within a
/// window, each author's answers come in a run, as a sync brings them;
/// the store indexes the same messages to the same entries (nothing in a
/// fixture depends on the order across feeds).
const FIXTURE_WINDOW: usize = if cfg!(test) { 700 } else { 100_000 };

impl App {
    /// `potluck reindex`: the position index and every index rebuilt from
    /// the logs. Returns how many index entries were written.
    pub fn reindex(&self) -> Result<usize, AppError> {
        Ok(self.store.reindex()?)
    }

    /// Every message of `feed`, in order, exactly as signed, and the
    /// sequences at which its author signed two different messages.
    pub fn feed_log(
        &self,
        feed: &FeedId,
    ) -> Result<
        (
            Vec<u64>,
            impl Iterator<Item = Result<Message, AppError>> + '_,
        ),
        AppError,
    > {
        let forks = self.store.forks(feed)?.iter().map(|p| p.sequence).collect();
        let messages = self
            .store
            .feed_messages(feed, 1)
            .map(|m| m.map_err(AppError::from));
        Ok((forks, messages))
    }

    /// `potluck export`: writes a bundle of `feeds` (none: every feed),
    /// or with `clock` only what a friend with that clock lacks, to
    /// `file` (through a `.partial` file, renamed when whole). Returns how
    /// many messages and feeds it holds.
    pub fn export(
        &self,
        feeds: &[FeedId],
        clock: Option<&ClockFile>,
        file: &Path,
    ) -> Result<(u64, u64), AppError> {
        let feeds: Vec<FeedId> = if feeds.is_empty() {
            self.store.feeds()?.into_iter().map(|(f, _)| f).collect()
        } else {
            feeds.to_vec()
        };
        let mut messages = Vec::new();
        // Feeds that have something in the bundle (with a clock, only
        // those the friend lacks messages of).
        let mut feeds_written = 0u64;
        for feed in &feeds {
            let from = clock
                .and_then(|c| c.feeds.get(feed))
                .map_or(1, |held| held.saturating_add(1));
            let before = messages.len();
            for msg in self.store.feed_messages(feed, from) {
                messages.push(msg?);
            }
            feeds_written += u64::from(messages.len() > before);
        }
        let tmp = file.with_extension("partial");
        let mut writer = std::io::BufWriter::new(
            std::fs::File::create(&tmp).map_err(AppError::file("write", &tmp))?,
        );
        let count = write_bundle(&mut writer, messages)?;
        drop(writer);
        std::fs::rename(&tmp, file).map_err(AppError::file("write", file))?;
        Ok((count, feeds_written))
    }

    /// What this node holds, feed by feed.
    pub fn clock(&self) -> Result<ClockFile, AppError> {
        let feeds = self
            .store
            .feeds()?
            .into_iter()
            .map(|(f, h)| (f, h.sequence))
            .collect();
        Ok(ClockFile::new(feeds))
    }

    /// `potluck import`: validates and stores the messages of `reader`
    /// (a bundle, whose first message was read already: `first`), in
    /// batches, through the same path as gossip, stopping at the first
    /// invalid one; `progress` hears how far it got after each batch.
    pub fn import<R: std::io::Read>(
        &self,
        reader: &mut BundleReader<R>,
        first: Option<Message>,
        mut progress: impl FnMut(u64),
    ) -> Result<ImportReport, AppError> {
        let mut report = ImportReport::default();
        let mut read = 0u64;
        let mut end = first.is_none();
        let mut pending = first;
        loop {
            let mut batch = Vec::with_capacity(IMPORT_BATCH);
            batch.extend(pending.take());
            while !end && batch.len() < IMPORT_BATCH {
                match reader.next_message() {
                    Ok(Some(msg)) => batch.push(msg),
                    Ok(None) => {
                        end = true;
                        break;
                    }
                    Err(e) => {
                        report.problem = Some(e.to_string());
                        end = true;
                        break;
                    }
                }
            }
            read += batch.len() as u64;
            let (ingested, blocked) = self.ingest(batch)?;
            progress(read);
            report.new += ingested.accepted.len() as u64;
            report.present += ingested.duplicates as u64;
            report.blocked += blocked as u64;
            if let Some(r) = ingested.rejected {
                report.problem = Some(format!(
                    "the message {} #{} is invalid: {}",
                    r.author, r.sequence, r.error
                ));
                break;
            }
            if end {
                break;
            }
        }
        report.rejected = read - report.new - report.present - report.blocked;
        Ok(report)
    }
}

/// Counts the bytes read through it, for a progress line.
pub struct CountingReader<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> CountingReader<R> {
    /// Counts what is read of `inner` into `count`.
    pub fn new(inner: R, count: Arc<AtomicU64>) -> CountingReader<R> {
        CountingReader { inner, count }
    }
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// `potluck fixtures`: a new home at `root` holding the messages of
/// [`crate::fixtures::generate`], ingested in batches, 100,000 at a
/// time ordered by feed.
pub fn fixtures(root: &Path, spec: &FixtureSpec) -> Result<FixtureReport, AppError> {
    spec.check().map_err(|e| AppError::Refused(e.to_string()))?;
    let home = Home::at(root);
    if home.secret_path().exists() {
        return Err(AppError::Refused(format!(
            "{} already holds an identity; `potluck fixtures` only fills a new home",
            home.secret_path().display()
        )));
    }
    home.create()?;
    Identity::create(&home)?;
    let store = Store::open(&home.store_path())?;
    let started = std::time::Instant::now();
    let mut messages = 0usize;
    let mut bytes = 0u64;
    let mut feeds = std::collections::HashSet::new();
    let mut window: std::collections::VecDeque<Message> = Default::default();
    let mut stream = crate::fixtures::generate(spec).peekable();
    while stream.peek().is_some() || !window.is_empty() {
        if window.is_empty() {
            let mut next: Vec<Message> = stream.by_ref().take(FIXTURE_WINDOW).collect();
            // Stable: each feed keeps its sequence order.
            next.sort_by_key(Message::author);
            window = next.into();
        }
        let take = FIXTURE_BATCH.min(window.len());
        let mut batch: Vec<Message> = window.drain(..take).collect();
        let sent = batch.len();
        for msg in &batch {
            bytes += msg.bytes().len() as u64;
            feeds.insert(msg.author());
        }
        let report = store.ingest(std::mem::take(&mut batch))?;
        if let Some(r) = &report.rejected {
            return Err(AppError::Refused(format!(
                "fixture message {} (sequence {} of {}) was rejected: {}",
                messages + r.index,
                r.sequence,
                r.author,
                r.error
            )));
        }
        if report.accepted.len() != sent {
            return Err(AppError::Refused(format!(
                "only {} of {sent} fixture messages were stored ({} duplicates, {} forks)",
                report.accepted.len(),
                report.duplicates,
                report.forks.len()
            )));
        }
        messages += sent;
    }
    if messages != spec.messages {
        return Err(AppError::Refused(format!(
            "generated {messages} messages instead of {}",
            spec.messages
        )));
    }
    store.flush()?;
    Ok(FixtureReport {
        home: home.root().to_path_buf(),
        messages,
        feeds: feeds.len(),
        bytes,
        size_on_disk: store.size_on_disk()?,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event's state, answers and tally, as text, sorted (so that
    /// two stores compare whatever order their events are listed in).
    fn indexed(store: &Store) -> Vec<String> {
        let mut out = Vec::new();
        for event in store.all_events().unwrap() {
            out.push(format!(
                "{:?} {:?} {:?}",
                event,
                store.rsvps(&event.id).unwrap(),
                store.tally(&event.id).unwrap()
            ));
        }
        out.sort();
        out
    }

    #[test]
    fn fixtures_ordered_by_feed_in_windows_index_as_the_stream_in_order() {
        let spec = FixtureSpec {
            feeds: 40,
            messages: 3_000,
            seed: 7,
        };
        let dir = tempfile::tempdir().unwrap();
        let report = fixtures(&dir.path().join("windows"), &spec).unwrap();
        assert_eq!(report.messages, 3_000);
        let windows = Store::open(&Home::at(dir.path().join("windows")).store_path()).unwrap();

        let in_order = Store::open(&dir.path().join("in-order")).unwrap();
        let stream: Vec<Message> = crate::fixtures::generate(&spec).collect();
        for chunk in stream.chunks(FIXTURE_BATCH) {
            let report = in_order.ingest(chunk.to_vec()).unwrap();
            assert_eq!(report.accepted.len(), chunk.len());
        }

        let (a, b) = (indexed(&windows), indexed(&in_order));
        assert!(a.len() > 10, "{} events", a.len());
        assert!(
            a.iter().any(|e| !e.contains("[]")),
            "some events have answers"
        );
        assert_eq!(a, b);
    }
}
