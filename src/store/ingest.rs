//! The one way messages get in: [`Store::publish`] and [`Store::ingest`]
//! validate, append to the message log, and apply one atomic sled batch
//! (message, id, head, fork proofs and every index entry), then flush.

use std::collections::HashMap;
use std::sync::Mutex;

use ed25519_dalek::SigningKey;

use super::Store;
use super::error::StoreError;
use super::index::{self, ContactState, Kv};
use super::keys::{HEAD, LOG_END_KEY, POSITIONS_KEY, encode_head, feed_key, fork_key};
use super::positions::{ENTRY_LEN, Entry};
use super::staged::Staged;
use crate::feed::message::{FeedId, Message, MessageId, SIGNED_LEN};
use crate::feed::validate::{self, Checked, FeedHead, ValidationError};

/// A proof that an author wrote two histories of one feed: two messages
/// signed by the author, either at one sequence, or at consecutive
/// sequences where the later one's `previous` is not the earlier one's id
/// (where a peer's history meets ours). The headers say which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkProof {
    /// The forked feed.
    pub author: FeedId,
    /// The rival's sequence.
    pub sequence: u64,
    /// Header and signature of our message: at the same sequence (the
    /// first seen), or at the sequence before (our head then).
    pub kept: Vec<u8>,
    /// Header and signature of the rejected rival.
    pub rival: Vec<u8>,
}

/// Why ingest stopped before the end of its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Position of the offending message in the input.
    pub index: usize,
    /// Its claimed author.
    pub author: FeedId,
    /// Its claimed sequence.
    pub sequence: u64,
    /// What was wrong.
    pub error: ValidationError,
}

/// The outcome of [`Store::ingest`].
#[derive(Debug, Default)]
pub struct IngestReport {
    /// Messages appended, in input order.
    pub accepted: Vec<Message>,
    /// Messages already held (same id), skipped.
    pub duplicates: usize,
    /// Forks detected (the rival was rejected, the proof recorded).
    pub forks: Vec<ForkProof>,
    /// Messages after a fork in the same batch, of the other history:
    /// dropped, not stored.
    pub rivals: usize,
    /// The first invalid message; nothing after it was stored.
    pub rejected: Option<Rejection>,
    /// Events whose state, RSVPs or admissions changed, in first-touched order.
    pub touched_events: Vec<MessageId>,
    /// Follows and blocks among the accepted messages, in input order.
    pub contacts: Vec<ContactChange>,
}

/// A contact message that was appended: `author` now follows and/or
/// blocks `contact` as `state` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContactChange {
    /// Who wrote the contact message.
    pub author: FeedId,
    /// The feed it is about.
    pub contact: FeedId,
    /// The author's stance now.
    pub state: ContactState,
}

impl IngestReport {
    /// The message that [`Store::publish`] appended (its report holds
    /// exactly one accepted message).
    pub fn message(&self) -> Option<&Message> {
        self.accepted.last()
    }

    /// Adds what a later append reported (several appends, one report).
    pub fn merge(&mut self, later: IngestReport) {
        self.accepted.extend(later.accepted);
        self.duplicates += later.duplicates;
        self.forks.extend(later.forks);
        self.rivals += later.rivals;
        if self.rejected.is_none() {
            self.rejected = later.rejected;
        }
        for event in later.touched_events {
            if !self.touched_events.contains(&event) {
                self.touched_events.push(event);
            }
        }
        self.contacts.extend(later.contacts);
    }
}

/// A batch's messages and its first bad signature, if any.
type Batch = (Vec<Message>, Option<(usize, ValidationError)>);

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

/// Where a message stands relative to what the store holds of its feed.
enum Position {
    /// The next message of the feed.
    Next,
    /// Already held.
    Duplicate,
    /// A different message at a held sequence, or the next sequence with
    /// a `previous` that is not our head: another history of the feed.
    /// `kept` is our message (at the same sequence, or our head).
    Fork { kept: Vec<u8> },
    /// A later message of a history that forked from ours earlier in this
    /// batch: not stored, not an error.
    Rival,
}

impl Position {
    /// `msg` against the header and signature of the message already held
    /// (or being appended) at its sequence.
    fn against(held_signed: &[u8], msg: &Message) -> Position {
        if held_signed == msg.signed_bytes() {
            Position::Duplicate
        } else {
            Position::Fork {
                kept: held_signed.to_vec(),
            }
        }
    }
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
        let mut staged = Staged::over(&self.tree);
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
                    Position::Next => {
                        let location = pending.push(msg.bytes());
                        entries.push(Entry::of_message(msg, location));
                        stage_append(&mut staged, msg, &mut report, &mut touched)?;
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
                positions.commit(&entries, positions_synced);
            }
            let applied = |e: StoreError| GroupFailure {
                error: e,
                applied: true,
            };
            self.db.flush().map_err(|e| applied(e.into()))?;
            self.log.note_durable().map_err(|e| applied(e.into()))?;
        }
        Ok(reports)
    }

    /// Passes 1 and 2 over one batch of a group: classifies each message
    /// of the batch's valid prefix against the heads the group's earlier
    /// appends leave (updating them), and finds where the batch must stop
    /// (the earliest invalid message, by signature or otherwise).
    fn plan_batch(
        &self,
        b: usize,
        msgs: &[Message],
        bad_signature: &Option<(usize, ValidationError)>,
        batches: &[Batch],
        heads: &mut HashMap<FeedId, Option<FeedHead>>,
        appending: &mut HashMap<(FeedId, u64), (usize, usize)>,
    ) -> Result<(IngestReport, Vec<Position>), StoreError> {
        let mut report = IngestReport::default();
        let mut positions = Vec::with_capacity(msgs.len());
        // Nothing from the first bad signature on counts, so the group's
        // heads never run ahead of what is appended.
        let signed = bad_signature.as_ref().map_or(msgs.len(), |(i, _)| *i);
        // Feeds that forked in this batch: the rest of the other history
        // is dropped (it can never chain onto ours), not a reason to stop.
        let mut forked: std::collections::HashSet<FeedId> = Default::default();
        let signed_at = |(b, i): (usize, usize)| batches[b].0[i].signed_bytes();
        for (i, msg) in msgs.iter().enumerate().take(signed) {
            let author = msg.author();
            let head = match heads.get(&author) {
                Some(h) => *h,
                None => {
                    let h = self.head(&author)?;
                    heads.insert(author, h);
                    h
                }
            };
            let earlier = appending
                .get(&(author, msg.sequence()))
                .map(|&at| signed_at(at));
            let position = match self.position(head.as_ref(), earlier, msg)? {
                Ok(p) => p,
                // After a fork in this batch, a message that does not chain
                // onto our history belongs to the other one.
                Err(
                    ValidationError::BadSequence { .. } | ValidationError::WrongPrevious { .. },
                ) if forked.contains(&author) => Position::Rival,
                Err(error) => {
                    // The next sequence, chained to something other than
                    // our head: the peer holds another history. Our head
                    // message and this one prove it (its signature checked).
                    let diverges = matches!(error, ValidationError::WrongPrevious { .. })
                        && head.is_some_and(|h| h.sequence.checked_add(1) == Some(msg.sequence()));
                    let kept = match head {
                        Some(h) if diverges => match appending.get(&(author, h.sequence)) {
                            Some(&at) => Some(signed_at(at).to_vec()),
                            None => self.verified_signed(&author, h.sequence)?,
                        },
                        _ => None,
                    };
                    match kept {
                        Some(kept) => Position::Fork { kept },
                        None => {
                            report.rejected = Some(Rejection {
                                index: i,
                                author,
                                sequence: msg.sequence(),
                                error,
                            });
                            return Ok((report, positions));
                        }
                    }
                }
            };
            let position = match position {
                // One proof per feed and batch is enough.
                Position::Fork { .. } if !forked.insert(author) => Position::Rival,
                other => other,
            };
            if let Position::Next = position {
                appending.insert((author, msg.sequence()), (b, i));
                heads.insert(
                    author,
                    Some(FeedHead {
                        sequence: msg.sequence(),
                        id: msg.id(),
                    }),
                );
            }
            positions.push(position);
        }
        if let Some((i, error)) = bad_signature
            && let Some(msg) = msgs.get(*i)
        {
            report.rejected = Some(Rejection {
                index: *i,
                author: msg.author(),
                sequence: msg.sequence(),
                error: error.clone(),
            });
        }
        Ok((report, positions))
    }

    /// Classifies a message against the feed's head without checking its
    /// signature (pass 2 does that for every position). `earlier` is the
    /// header and signature of the message at the same sequence that this
    /// batch appends, if any. The outer error is the database's; the inner
    /// one is the message's.
    fn position(
        &self,
        head: Option<&FeedHead>,
        earlier: Option<&[u8]>,
        msg: &Message,
    ) -> Result<Result<Position, ValidationError>, StoreError> {
        if let Err(e) = validate::check_standalone(msg) {
            return Ok(Err(e));
        }
        if let Some(held_signed) = earlier {
            return Ok(Ok(Position::against(held_signed, msg)));
        }
        if let Some(h) = head
            && (1..=h.sequence).contains(&msg.sequence())
            && let Some(slot) = self.slot(&msg.author(), msg.sequence())?
        {
            let held = self.log.read_prefix(slot.location, SIGNED_LEN)?;
            let position = Position::against(&held, msg);
            if let Position::Fork { .. } = position {
                // Only a held message that verifies proves a fork: a copy
                // the disk damaged differs from the genuine one too.
                match self.feed_record(&msg.author(), msg.sequence(), slot) {
                    Err(StoreError::Damaged { reason, .. }) => {
                        tracing::warn!(feed = %msg.author(), sequence = msg.sequence(), %reason, "our copy of this message is damaged; `potluck fsck --repair` cuts it so that it is fetched again");
                        return Ok(Ok(Position::Duplicate));
                    }
                    other => {
                        other?;
                    }
                }
            }
            return Ok(Ok(position));
        }
        Ok(validate::check_chain(head, msg).map(|()| Position::Next))
    }

    /// Header and signature of message `sequence` of `author`, when it is
    /// held and verifies against the index (a damaged copy proves nothing).
    fn verified_signed(
        &self,
        author: &FeedId,
        sequence: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(slot) = self.slot(author, sequence)? else {
            return Ok(None);
        };
        match self.feed_record(author, sequence, slot) {
            Ok(msg) => Ok(Some(msg.signed_bytes().to_vec())),
            Err(StoreError::Damaged { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Stages a validated next message's sled writes: its feed's head and its
/// index entries (the log record and position entry are the caller's).
fn stage_append(
    staged: &mut Staged<'_>,
    msg: &Message,
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
    match index::apply(staged, msg)? {
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
#[path = "ingest_tests.rs"]
mod tests;
