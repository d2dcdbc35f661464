//! The one way messages get in: [`Store::publish`] and [`Store::ingest`]
//! validate, append to the message log, and apply one atomic sled batch
//! (message, id, head, fork proofs and every index entry), then flush.

use std::collections::HashMap;
use std::sync::Mutex;

use ed25519_dalek::SigningKey;

mod plan;
mod report;

pub use report::{ContactChange, ForkProof, IngestReport, Rejection};

use self::plan::{Batch, Position};
use super::Store;
use super::error::StoreError;
use super::index::{self, Kv};
use super::keys::{HEAD, LOG_END_KEY, POSITIONS_KEY, encode_head, feed_key, fork_key};
use super::positions::{ENTRY_LEN, Entry};
use super::staged::Staged;
use crate::content;
use crate::feed::message::{FeedId, Message, MessageId};
use crate::feed::validate::{Checked, DecodedContent, FeedHead, ValidationError};

/// A commit that failed, and whether its batch had reached sled (then
/// its messages are in the index, but perhaps not on disk).
pub(super) struct GroupFailure {
    error: StoreError,
    applied: bool,
}

impl<E: Into<StoreError>> From<E> for GroupFailure {
    fn from(error: E) -> GroupFailure {
        GroupFailure {
            error: error.into(),
            applied: false,
        }
    }
}

/// A batch waiting for a group commit, and then its outcome.
pub(super) struct Queued {
    batch: Mutex<Option<Checked>>,
    result: Mutex<Option<Result<IngestReport, StoreError>>>,
}

/// Locks a mutex whose holder may have panicked: every value guarded here
/// is replaced whole, never left half-changed.
fn lock_ignoring_poison<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    /// Signs `content` as the next message of `key`'s feed, appends and
    /// indexes it, and returns once it is durable. The report holds the
    /// message ([`IngestReport::message`]) and what it touched.
    pub fn publish(
        &self,
        key: &SigningKey,
        content: &[u8],
        timestamp: i64,
    ) -> Result<IngestReport, StoreError> {
        let _writer = self.lock();
        // Batches queued meanwhile first: one may hold this feed.
        self.commit_queued();
        let author = FeedId(key.verifying_key().to_bytes());
        let head = self.head(&author)?;
        if let Some((holds, published)) = self.behind_published(&author, head.as_ref()) {
            return Err(StoreError::OwnFeedBehind {
                feed: author,
                holds,
                published,
            });
        }
        let (sequence, previous) = match head {
            Some(h) => (h.sequence + 1, h.id),
            None => (1, MessageId::default()),
        };
        let msg = Message::sign(key, sequence, previous, timestamp, content)
            .map_err(ValidationError::from)?;
        let report = self.ingest_locked(Checked::new(vec![msg]))?;
        if let Some(rejection) = report.rejected {
            return Err(StoreError::Rejected(rejection.error));
        }
        if report.accepted.len() != 1 {
            return Err(StoreError::Bug("a published message was not appended"));
        }
        // The message is durable whatever happens to the mark; a mark
        // left behind only makes the check above weaker.
        if let Err(e) = self.published.set(author, report.accepted[0].sequence()) {
            tracing::warn!(path = %self.published.path.display(), error = %e, "cannot record how far this home published its feed");
        }
        Ok(report)
    }

    /// The one ingest path: validates messages (signatures in batches),
    /// appends the valid ones with their index entries in one atomic
    /// batch, and flushes.
    ///
    /// Messages of one feed must come in sequence order; feeds may be
    /// interleaved. Ingest stops at the first invalid message: the valid
    /// ones before it are stored, nothing after it is.
    pub fn ingest(&self, msgs: Vec<Message>) -> Result<IngestReport, StoreError> {
        self.ingest_checked(Checked::new(msgs))
    }

    /// [`Store::ingest`] for messages whose signatures were already checked
    /// (so that checking the next batch can overlap storing this one).
    ///
    /// **Group commit.** Batches that arrive while another commit runs
    /// (from other connections, the CLI, a file) wait in a queue; the next
    /// caller to get the writer lock commits every waiting batch together:
    /// one log write and sync, one sled batch and one flush for all of
    /// them, each with its own report, as if committed one after another.
    pub fn ingest_checked(&self, batch: Checked) -> Result<IngestReport, StoreError> {
        let queued = std::sync::Arc::new(Queued {
            batch: Mutex::new(Some(batch)),
            result: Mutex::new(None),
        });
        lock_ignoring_poison(&self.queue).push(queued.clone());
        let _writer = self.lock();
        if let Some(result) = lock_ignoring_poison(&queued.result).take() {
            return result;
        }
        self.commit_queued();
        lock_ignoring_poison(&queued.result)
            .take()
            .unwrap_or(Err(StoreError::Bug("a queued batch was not committed")))
    }

    /// Commits every queued batch (the caller holds the writer lock) and
    /// leaves each its result. If the group fails, each batch is tried
    /// alone, so that each caller gets its own outcome.
    pub(super) fn commit_queued(&self) {
        let waiting: Vec<std::sync::Arc<Queued>> =
            std::mem::take(&mut *lock_ignoring_poison(&self.queue));
        if waiting.is_empty() {
            return;
        }
        let batches: Vec<Batch> = waiting
            .iter()
            .map(|q| {
                lock_ignoring_poison(&q.batch)
                    .take()
                    .unwrap_or_default()
                    .into_parts()
            })
            .collect();
        let alone = |batch: &Batch| {
            self.commit_group(std::slice::from_ref(batch))
                .map(|mut reports| reports.pop().unwrap_or_default())
                .map_err(|f| f.error)
        };
        if let [batch] = &batches[..] {
            *lock_ignoring_poison(&waiting[0].result) = Some(alone(batch));
            return;
        }
        match self.commit_group(&batches) {
            Ok(reports) => {
                for (q, report) in waiting.iter().zip(reports) {
                    *lock_ignoring_poison(&q.result) = Some(Ok(report));
                }
            }
            // Nothing of the group reached the index: each batch alone.
            Err(GroupFailure {
                error,
                applied: false,
            }) => {
                tracing::debug!(%error, batches = waiting.len(), "a group commit failed; committing its batches one by one");
                for (q, batch) in waiting.iter().zip(&batches) {
                    *lock_ignoring_poison(&q.result) = Some(alone(batch));
                }
            }
            // The group reached the index but its flush failed: trying
            // again would find its messages held and call them
            // duplicates, so every batch gets the failure.
            Err(GroupFailure {
                error,
                applied: true,
            }) => {
                let reason = error.to_string();
                let mut first = Some(error);
                for q in &waiting {
                    let error = first.take().unwrap_or_else(|| StoreError::CommitFailed {
                        reason: reason.clone(),
                    });
                    *lock_ignoring_poison(&q.result) = Some(Err(error));
                }
            }
        }
    }

    fn ingest_locked(&self, batch: Checked) -> Result<IngestReport, StoreError> {
        // Batches that queued meanwhile go first, in their own commit.
        self.commit_queued();
        self.commit_group(&[batch.into_parts()])
            .map(|mut reports| reports.pop().unwrap_or_default())
            .map_err(|f| f.error)
    }

    /// Validates and appends batches, in order, in one commit: one log
    /// write and sync, one atomic sled batch, one flush. Each batch gets
    /// its own report, the same as if it had been committed alone after
    /// the ones before it.
    fn commit_group(&self, batches: &[Batch]) -> Result<Vec<IngestReport>, GroupFailure> {
        // Heads as the group's earlier appends leave them.
        let mut heads: HashMap<FeedId, Option<FeedHead>> = HashMap::new();
        // Where each message this group appends sits (batch, index): a
        // message repeated later (a bundle may hold a record twice, two
        // peers may send it) is a duplicate of it, not a break in the chain.
        let mut appending: HashMap<(FeedId, u64), (usize, usize)> = HashMap::new();
        let mut plans = Vec::with_capacity(batches.len());
        for (b, (msgs, bad_signature)) in batches.iter().enumerate() {
            plans.push(self.plan_batch(
                b,
                msgs,
                bad_signature,
                batches,
                &mut heads,
                &mut appending,
            )?);
        }
        // Stage the valid prefix of every batch and apply them atomically.
        let mut staged = Staged::over(&self.tree, &self.groups);
        let mut pending = self.log.begin();
        let mut entries = Vec::new();
        let mut reports = Vec::with_capacity(batches.len());
        for ((msgs, _), (mut report, positions)) in batches.iter().zip(plans) {
            let mut touched = std::collections::HashSet::new();
            for (msg, position) in msgs.iter().zip(positions) {
                match position {
                    Position::Duplicate => report.duplicates += 1,
                    Position::Rival => report.rivals += 1,
                    Position::Fork { kept } => {
                        let proof = ForkProof {
                            author: msg.author(),
                            sequence: msg.sequence(),
                            kept,
                            rival: msg.signed_bytes().to_vec(),
                        };
                        let key = fork_key(&proof.author, proof.sequence);
                        if staged.get(&key)?.is_none() {
                            let mut value = proof.kept.clone();
                            value.extend_from_slice(&proof.rival);
                            staged.put(key, value);
                            tracing::warn!(feed = %proof.author, sequence = proof.sequence, "fork detected; keeping the first message");
                        }
                        report.forks.push(proof);
                    }
                    Position::Next(content) => {
                        let location = pending.push(msg.bytes());
                        entries.push(Entry::of_message(msg, location));
                        stage_append(&mut staged, msg, content, &mut report, &mut touched)?;
                        report.accepted.push(msg.clone());
                    }
                }
            }
            reports.push(report);
        }
        if !pending.is_empty() {
            // The records must be on disk before any entry points at them.
            self.log.write(&pending)?;
            staged.put(LOG_END_KEY.to_vec(), pending.end().to_be_bytes().to_vec());
        }
        // The grouped entries' records too.
        let grouped = staged.prepare_groups()?;
        self.groups.write(&grouped)?;
        // Enough new position entries: write them, with those waiting,
        // before the batch that records them as durable.
        let positions_synced = {
            let positions = self.positions_read()?;
            let waiting = positions.unsynced().len() / ENTRY_LEN;
            let every = self
                .positions_sync_every
                .load(std::sync::atomic::Ordering::Relaxed);
            if !entries.is_empty() && waiting + entries.len() >= every {
                let mut bytes = Vec::with_capacity((waiting + entries.len()) * ENTRY_LEN);
                bytes.extend_from_slice(positions.unsynced());
                for entry in &entries {
                    bytes.extend_from_slice(&entry.encode());
                }
                self.positions_file
                    .write_and_sync(positions.synced(), &bytes)?;
                let count = positions.entries() + entries.len() as u64;
                staged.put(POSITIONS_KEY.to_vec(), count.to_be_bytes().to_vec());
                true
            } else {
                false
            }
        };
        if !staged.is_empty() {
            {
                // Held across the batch, so that no reader sees a head
                // whose messages the position index does not have yet.
                let mut positions = self.positions_write()?;
                self.tree.apply_batch(staged.into_batch())?;
                // sled now points into the records, whether or not the
                // flush below succeeds, so they must never be overwritten.
                self.log.mark_committed(&pending);
                self.groups.committed(grouped);
                positions.commit(&entries, positions_synced);
            }
            let applied = |e: StoreError| GroupFailure {
                error: e,
                applied: true,
            };
            self.db.flush().map_err(|e| applied(e.into()))?;
            self.log.note_durable().map_err(|e| applied(e.into()))?;
            self.groups.note_durable().map_err(applied)?;
        }
        Ok(reports)
    }
}

/// Stages a validated next message's sled writes: its feed's head and its
/// index entries (the log record and position entry are the caller's).
/// `content` is the message's content as validation decoded it.
fn stage_append(
    staged: &mut Staged<'_>,
    msg: &Message,
    content: Option<DecodedContent>,
    report: &mut IngestReport,
    touched: &mut std::collections::HashSet<MessageId>,
) -> Result<(), StoreError> {
    let author = msg.author();
    staged.put(
        feed_key(HEAD, &author),
        encode_head(&FeedHead {
            sequence: msg.sequence(),
            id: msg.id(),
        }),
    );
    match index::apply_parsed(staged, msg, content.map(content::parse_decoded))? {
        index::Indexed::Applied { event, contact } => {
            if let Some(event) = event
                && touched.insert(event)
            {
                report.touched_events.push(event);
            }
            if let Some((contact, state)) = contact {
                report.contacts.push(ContactChange {
                    author,
                    contact,
                    state,
                });
            }
        }
        index::Indexed::Ignored(why) => {
            tracing::debug!(id = %msg.id(), why, "message stored, not indexed");
        }
        index::Indexed::Invalid(e) => {
            tracing::info!(id = %msg.id(), error = %e, "message stored, but its content is invalid; not indexed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
