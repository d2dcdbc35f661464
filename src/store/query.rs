//! Reads: feeds and their messages (each checked against the index as it
//! is read), fork proofs, events, RSVPs, admissions, names and contacts.

use std::collections::{BTreeSet, VecDeque};

use base64::Engine as _;

use super::Store;
use super::error::StoreError;
use super::groups::HeadsRead;
use super::index::{self, AboutState, ContactState, CorruptEntry, EventState, RsvpState, Tally};
use super::ingest::ForkProof;
use super::keys::{FORK, HEAD, decode_head, feed_key, feed_of_key, sequence_of_key};
use super::msglog::{LEN_PREFIX, LogError, MAX_ADJACENT_BYTES, follows};
use super::positions::{Slot, id_prefix};
use crate::feed::message::{FeedId, Message, MessageId, SIGNED_LEN};
use crate::feed::validate::FeedHead;

impl Store {
    /// Reads message `sequence` of `author` from where its slot in the
    /// position index points, and checks that it is the message that was
    /// stored (see [`checked_record`]).
    pub(super) fn feed_record(
        &self,
        author: &FeedId,
        sequence: u64,
        slot: Slot,
    ) -> Result<Message, StoreError> {
        match self.log.read(slot.location) {
            Ok(bytes) => checked_record(author, sequence, slot, bytes),
            Err(LogError::BadLocation { .. }) => Err(damaged(
                author,
                sequence,
                "no whole record where the index points",
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Where message `sequence` of `author` is, if the store holds it.
    pub(super) fn slot(&self, author: &FeedId, sequence: u64) -> Result<Option<Slot>, StoreError> {
        Ok(self
            .positions_read()?
            .slot(&self.positions_file, author, sequence)?)
    }

    /// The head of a feed, if the store holds any of it.
    pub fn head(&self, author: &FeedId) -> Result<Option<FeedHead>, StoreError> {
        let key = feed_key(HEAD, author);
        match self.tree.get(&key)? {
            Some(v) => decode_head(&key, &v).map(Some),
            None => Ok(None),
        }
    }

    /// Every feed held, with its head.
    pub fn feeds(&self) -> Result<Vec<(FeedId, FeedHead)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([HEAD]) {
            let (k, v) = item?;
            let author = feed_of_key(&k).ok_or_else(|| StoreError::CorruptLog {
                key: hex::encode(&k),
                reason: "short head key".into(),
            })?;
            out.push((author, decode_head(&k, &v)?));
        }
        Ok(out)
    }

    /// Feeds with a recorded fork proof, with the sequence of the first.
    pub fn forked_feeds(&self) -> Result<Vec<(FeedId, u64)>, StoreError> {
        let mut out: Vec<(FeedId, u64)> = Vec::new();
        for item in self.tree.scan_prefix([FORK]) {
            let (k, _) = item?;
            let (Some(feed), Some(sequence)) = (feed_of_key(&k), sequence_of_key(&k)) else {
                continue;
            };
            if out.last().is_none_or(|(f, _)| *f != feed) {
                out.push((feed, sequence));
            }
        }
        Ok(out)
    }

    /// The message with this id. The first call reads the whole position
    /// file once and makes a map of every message id's first 8 bytes
    /// (about 20 bytes a message, kept while the store is open); the node
    /// itself never asks.
    pub fn message(&self, id: &MessageId) -> Result<Option<Message>, StoreError> {
        let candidates = self.positions_write()?.find_id(&self.positions_file, id)?;
        for (author, sequence) in candidates {
            let Some(slot) = self.slot(&author, sequence)? else {
                continue;
            };
            let msg = self.feed_record(&author, sequence, slot)?;
            if msg.id() == *id {
                return Ok(Some(msg));
            }
        }
        Ok(None)
    }

    /// The message at `sequence` of `author`'s feed, checked as
    /// [`Store::feed_messages`] checks it.
    pub fn feed_message(
        &self,
        author: &FeedId,
        sequence: u64,
    ) -> Result<Option<Message>, StoreError> {
        match self.slot(author, sequence)? {
            Some(slot) => self.feed_record(author, sequence, slot).map(Some),
            None => Ok(None),
        }
    }

    /// The messages of a feed from `from_sequence` on, in order. Each is
    /// checked against the index as it is read: a message the disk damaged
    /// is an [`StoreError::Damaged`] item, never returned as if whole.
    pub fn feed_messages(
        &self,
        author: &FeedId,
        from_sequence: u64,
    ) -> impl Iterator<Item = Result<Message, StoreError>> + '_ {
        self.feed_range(author, from_sequence, u64::MAX)
    }

    /// The messages of a feed from `first` to `last` (both included, or
    /// to where the feed ends), checked as [`Store::feed_messages`]
    /// checks them. Read 64 at a time: each run of entries
    /// that follow each other in the position file with one read, and
    /// each run of records that follow each other in the log (up to
    /// 256 KiB) with one more, as a sync sends a feed.
    pub fn feed_range(
        &self,
        author: &FeedId,
        first: u64,
        last: u64,
    ) -> impl Iterator<Item = Result<Message, StoreError>> + '_ {
        FeedReader {
            store: self,
            author: *author,
            next: first.max(1),
            last,
            ahead: VecDeque::new(),
            one_by_one: false,
            done: false,
        }
    }

    /// Fork proofs recorded against a feed.
    pub fn forks(&self, author: &FeedId) -> Result<Vec<ForkProof>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(feed_key(FORK, author)) {
            let (k, v) = item?;
            let sequence = sequence_of_key(&k).ok_or_else(|| StoreError::CorruptLog {
                key: hex::encode(&k),
                reason: "short fork key".into(),
            })?;
            if v.len() != 2 * SIGNED_LEN {
                return Err(StoreError::CorruptLog {
                    key: hex::encode(&k),
                    reason: "fork proof is not two signed headers".into(),
                });
            }
            out.push(ForkProof {
                author: *author,
                sequence,
                kept: v[..SIGNED_LEN].to_vec(),
                rival: v[SIGNED_LEN..].to_vec(),
            });
        }
        Ok(out)
    }

    /// The current state of an event.
    pub fn event(&self, id: &MessageId) -> Result<Option<EventState>, StoreError> {
        index::read(&self.reader(), &index::event_key(id))
    }

    /// The current RSVPs of an event, one per person.
    pub fn rsvps(&self, event: &MessageId) -> Result<Vec<(FeedId, RsvpState)>, StoreError> {
        self.entries_by_feed(index::prefix::RSVP, &event.0)
    }

    /// One person's current answer to an event.
    pub fn rsvp(
        &self,
        event: &MessageId,
        author: &FeedId,
    ) -> Result<Option<RsvpState>, StoreError> {
        index::read(&self.reader(), &index::rsvp_key(event, author))
    }

    /// The events `author` has answered (going, maybe or not going), each
    /// with what the author last answered, in event id order. Read from
    /// the author's own answers (`q`), so the work grows with how many
    /// events the author answered, not with how many the store holds.
    pub fn answered_by(
        &self,
        author: &FeedId,
    ) -> Result<Vec<(MessageId, index::AnsweredState)>, StoreError> {
        self.group_entries(index::prefix::ANSWERED, &author.0, MessageId)
    }

    /// The grouped entries (RSVPs, admissions, contacts) of one group, by
    /// member feed, decoded.
    fn entries_by_feed<T: index::IndexValue>(
        &self,
        prefix: u8,
        group: &[u8; 32],
    ) -> Result<Vec<(FeedId, T)>, StoreError> {
        self.group_entries(prefix, group, FeedId)
    }

    /// The entries of one group, decoded, each member made a `M`.
    fn group_entries<M, T: index::IndexValue>(
        &self,
        prefix: u8,
        group: &[u8; 32],
        member_as: impl Fn([u8; 32]) -> M,
    ) -> Result<Vec<(M, T)>, StoreError> {
        let group = (prefix, *group);
        let mut out = Vec::new();
        for (member, value) in self
            .groups
            .members(&self.tree, &HeadsRead::default(), &group)?
        {
            let state = index::decode_entry(&super::groups::entry_key(&group, &member), &value)?;
            out.push((member_as(member), state));
        }
        Ok(out)
    }

    /// The organizer's latest decision per person, for an event.
    pub fn admissions(
        &self,
        event: &MessageId,
    ) -> Result<Vec<(FeedId, index::AdmissionState)>, StoreError> {
        self.entries_by_feed(index::prefix::ADMISSION, &event.0)
    }

    /// The tally of an event's current RSVPs.
    pub fn tally(&self, event: &MessageId) -> Result<Tally, StoreError> {
        Ok(index::read(&self.reader(), &index::tally_key(event))?.unwrap_or_default())
    }

    /// What a person says about themselves.
    pub fn about(&self, feed: &FeedId) -> Result<Option<AboutState>, StoreError> {
        index::read(&self.reader(), &index::about_key(feed))
    }

    /// Events that have not finished by `now_ms` (end, or start when there
    /// is no end, at or after now), sorted by start; with a `limit`, the
    /// first `limit` of them.
    ///
    /// With a limit the work does not grow with the number of upcoming
    /// events: the ones going on now started within the last
    /// [`index::LONG_EVENT_MS`] or are long events, and the rest are the
    /// first entries of the by-start index from now on.
    pub fn upcoming_events(
        &self,
        now_ms: i64,
        limit: Option<usize>,
    ) -> Result<Vec<EventState>, StoreError> {
        let Some(limit) = limit else {
            let from = time_bound(index::prefix::EVENT_BY_FINISH, now_ms);
            return self
                .states_of(self.time_entries(from, vec![index::prefix::EVENT_BY_FINISH + 1])?);
        };
        let ids = self
            .upcoming_event_ids(now_ms)?
            .take(limit)
            .collect::<Result<Vec<_>, _>>()?;
        ids.iter().map(|id| self.indexed_event(id)).collect()
    }

    /// The ids of the events that have not finished by `now_ms`, in the
    /// order of [`Store::upcoming_events`], read from the indexes as the
    /// iterator advances: a caller that filters them (a hub's public
    /// pages) stops reading where its page is full.
    ///
    /// The ones going on now are read at once (they started within the
    /// last [`index::LONG_EVENT_MS`] or are long events); the rest are
    /// the by-start index from now on.
    pub fn upcoming_event_ids(
        &self,
        now_ms: i64,
    ) -> Result<impl Iterator<Item = Result<MessageId, StoreError>> + '_, StoreError> {
        let recent = now_ms.saturating_sub(index::LONG_EVENT_MS);
        let started_recently = self.time_entries(
            time_bound(index::prefix::EVENT_BY_START, recent),
            time_bound(index::prefix::EVENT_BY_START, now_ms),
        )?;
        let long = self.time_entries(
            vec![index::prefix::LONG_EVENT],
            time_bound(index::prefix::LONG_EVENT, recent),
        )?;
        // Going on now: started before now, not finished yet.
        let mut now_on: Vec<_> = started_recently
            .into_iter()
            .chain(long)
            .filter(|&(_, _, finish)| finish >= now_ms)
            .collect();
        now_on.sort_unstable();
        // Everything starting from now on comes after what is going on.
        let later = self
            .tree
            .range(
                time_bound(index::prefix::EVENT_BY_START, now_ms)
                    ..vec![index::prefix::EVENT_BY_START + 1],
            )
            .map(|item| {
                let (k, v) = item?;
                Ok(decode_time_entry(&k, &v)?.1)
            });
        Ok(now_on.into_iter().map(|(_, id, _)| Ok(id)).chain(later))
    }

    /// Events that finished before `now_ms`, sorted by start; with a
    /// `limit`, the last (most recent) `limit` of them.
    pub fn past_events(
        &self,
        now_ms: i64,
        limit: Option<usize>,
    ) -> Result<Vec<EventState>, StoreError> {
        let Some(limit) = limit else {
            let to = time_bound(index::prefix::EVENT_BY_FINISH, now_ms);
            return self.states_of(self.time_entries(vec![index::prefix::EVENT_BY_FINISH], to)?);
        };
        // Walk back from now by start, skipping what is still going on.
        let mut found = Vec::new();
        let earlier = self.tree.range(
            vec![index::prefix::EVENT_BY_START]..time_bound(index::prefix::EVENT_BY_START, now_ms),
        );
        for item in earlier.rev() {
            if found.len() == limit {
                break;
            }
            let (k, v) = item?;
            let entry = decode_time_entry(&k, &v)?;
            if entry.2 < now_ms {
                found.push(entry);
            }
        }
        found.reverse();
        self.states_of(found)
    }

    /// Every known event, sorted by start.
    pub fn all_events(&self) -> Result<Vec<EventState>, StoreError> {
        self.states_of(self.time_entries(
            vec![index::prefix::EVENT_BY_START],
            vec![index::prefix::EVENT_BY_START + 1],
        )?)
    }

    /// The time-index entries in `from..to` as `(start, event, finish)`,
    /// sorted by start.
    fn time_entries(
        &self,
        from: Vec<u8>,
        to: Vec<u8>,
    ) -> Result<Vec<(i64, MessageId, i64)>, StoreError> {
        let mut found = Vec::new();
        for item in self.tree.range(from..to) {
            let (k, v) = item?;
            found.push(decode_time_entry(&k, &v)?);
        }
        found.sort_unstable();
        Ok(found)
    }

    /// The states of events named by a time index, in the given order.
    fn states_of(&self, events: Vec<(i64, MessageId, i64)>) -> Result<Vec<EventState>, StoreError> {
        events
            .into_iter()
            .map(|(_, id, _)| self.indexed_event(&id))
            .collect()
    }

    /// The state of an event a time index names (missing: the index is
    /// damaged).
    fn indexed_event(&self, id: &MessageId) -> Result<EventState, StoreError> {
        Ok(self.event(id)?.ok_or_else(|| CorruptEntry {
            key: hex::encode(index::event_key(id)),
            reason: "a time index names a missing event".into(),
        })?)
    }

    /// Known events whose id's base64 text starts with `text` (base64
    /// characters only, at least one whole group of four), at most
    /// `limit` of them. Whole 4-character groups decode to a byte prefix
    /// to scan; the rest is matched on the text form. Reading people's
    /// typed ids (the `%` sigil, a minimum length) is the application's.
    pub fn events_with_id_prefix(
        &self,
        text: &str,
        limit: usize,
    ) -> Result<Vec<MessageId>, StoreError> {
        if !text.is_ascii() {
            return Ok(Vec::new());
        }
        let whole = text.len() / 4 * 4;
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&text[..whole]) else {
            return Ok(Vec::new());
        };
        let mut scan = vec![index::prefix::EVENT];
        scan.extend_from_slice(&bytes);
        let mut found = Vec::new();
        for item in self.tree.scan_prefix(scan) {
            let (k, _) = item?;
            let Some(raw) = k.get(1..33).and_then(|s| <[u8; 32]>::try_from(s).ok()) else {
                continue;
            };
            let id = MessageId(raw);
            if id.base64().starts_with(text) {
                found.push(id);
                if found.len() >= limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// The feeds `me` blocks: never stored, sent or shown.
    pub fn blocked_by(&self, me: &FeedId) -> Result<BTreeSet<FeedId>, StoreError> {
        Ok(self
            .contacts(me)?
            .into_iter()
            .filter(|(_, c)| c.blocking)
            .map(|(f, _)| f)
            .collect())
    }

    /// The feeds `author` follows or blocks, per its latest contact messages.
    pub fn contacts(&self, author: &FeedId) -> Result<Vec<(FeedId, ContactState)>, StoreError> {
        self.entries_by_feed(index::prefix::CONTACT, &author.0)
    }
}

/// The first key of time index `prefix` at or after `instant_ms`.
fn time_bound(prefix: u8, instant_ms: i64) -> Vec<u8> {
    [&[prefix][..], &index::instant_bytes(instant_ms)].concat()
}

/// A time-index entry as `(start, event, finish)`: by-start and long-event
/// entries have the start in the key and the finish as value, by-finish
/// entries the other way round.
fn decode_time_entry(key: &[u8], value: &[u8]) -> Result<(i64, MessageId, i64), StoreError> {
    let corrupt = || CorruptEntry {
        key: hex::encode(key),
        reason: "time entry is not an instant, an event id and an instant".into(),
    };
    let in_key = key
        .get(1..9)
        .and_then(index::instant_of_bytes)
        .ok_or_else(corrupt)?;
    let id = index::event_of_time_key(key).ok_or_else(corrupt)?;
    let in_value = index::instant_of_bytes(value).ok_or_else(corrupt)?;
    Ok(if key.first() == Some(&index::prefix::EVENT_BY_FINISH) {
        (in_value, id, in_key)
    } else {
        (in_key, id, in_value)
    })
}

/// Reads of an event's thread of comments (docs/content.md, "Comments"):
/// a page is a range read of the thread index, however long the thread.
impl Store {
    /// A comment's state.
    pub fn comment(&self, id: &MessageId) -> Result<Option<index::CommentState>, StoreError> {
        index::read(&self.reader(), &index::comment_key(id))
    }

    /// The comments of an event's thread in order, as (place, id), from
    /// just after `after` (a place and id from an earlier page) or from
    /// the start; read as the iterator advances. With `links_only`, only
    /// the comments whose text has a web link.
    pub fn thread(
        &self,
        event: &MessageId,
        after: Option<(i64, MessageId)>,
        links_only: bool,
    ) -> impl DoubleEndedIterator<Item = Result<(i64, MessageId), StoreError>> + '_ {
        let thread = if links_only {
            index::prefix::THREAD_LINKS
        } else {
            index::prefix::THREAD
        };
        let start = match after {
            // The smallest key after the one of `after`.
            Some((place, id)) => {
                let mut key = index::thread_key(thread, event, place, &id);
                key.push(0);
                key
            }
            None => index::thread_prefix(thread, event),
        };
        // Above every key of the thread: a place and an id are 40 bytes.
        let mut end = index::thread_prefix(thread, event);
        end.extend_from_slice(&[0xFF; 41]);
        self.tree.range(start..end).map(|item| {
            let (k, _) = item?;
            decode_thread_key(&k)
        })
    }

    /// The last `count` comments of an event's thread, latest first.
    pub fn thread_latest(
        &self,
        event: &MessageId,
        count: usize,
    ) -> Result<Vec<(i64, MessageId)>, StoreError> {
        self.thread(event, None, false).rev().take(count).collect()
    }

    /// Whether the organizer of `event` hid `comment`.
    pub fn is_hidden(&self, event: &MessageId, comment: &MessageId) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(index::hidden_key(event, comment))?)
    }
}

/// The place and comment id of a thread key.
fn decode_thread_key(key: &[u8]) -> Result<(i64, MessageId), StoreError> {
    index::place_of_thread_key(key).ok_or_else(|| {
        CorruptEntry {
            key: hex::encode(key),
            reason: "a thread key does not end in a place and a comment id".into(),
        }
        .into()
    })
}

/// Most messages [`Store::feed_range`] reads at once.
const READ_AHEAD: usize = 64;

/// [`Store::feed_range`]'s iterator.
struct FeedReader<'a> {
    store: &'a Store,
    author: FeedId,
    /// The next sequence to read.
    next: u64,
    /// The last sequence wanted.
    last: u64,
    /// Read, not yet handed out.
    ahead: VecDeque<Result<Message, StoreError>>,
    /// Reading ahead failed: each message is read alone from then on,
    /// which finds and tells which one is damaged.
    one_by_one: bool,
    done: bool,
}

impl Iterator for FeedReader<'_> {
    type Item = Result<Message, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(item) = self.ahead.pop_front() {
            return Some(item);
        }
        if self.done || self.next > self.last {
            return None;
        }
        if !self.one_by_one {
            self.read_ahead();
            if let Some(item) = self.ahead.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
        }
        let item = match self.store.slot(&self.author, self.next) {
            Ok(Some(slot)) => self.store.feed_record(&self.author, self.next, slot),
            Ok(None) => return None,
            Err(e) => {
                self.done = true;
                Err(e)
            }
        };
        self.next = self.next.saturating_add(1);
        Some(item)
    }
}

impl FeedReader<'_> {
    /// Reads up to [`READ_AHEAD`] messages into `ahead`; sets `done` at
    /// the feed's end, and `one_by_one` if the position index could not
    /// be read ahead.
    fn read_ahead(&mut self) {
        let want = usize::try_from(self.last.saturating_sub(self.next).saturating_add(1))
            .unwrap_or(usize::MAX)
            .min(READ_AHEAD);
        let store = self.store;
        let slots = store.positions_read().and_then(|positions| {
            Ok(positions.slots(&store.positions_file, &self.author, self.next, want)?)
        });
        let slots = match slots {
            Ok(slots) => slots,
            Err(_) => {
                self.one_by_one = true;
                return;
            }
        };
        if slots.is_empty() {
            self.done = true;
            return;
        }
        for run in adjacent_runs(&slots) {
            let first = self.next;
            let locations: Vec<_> = run.iter().map(|slot| slot.location).collect();
            match store.log.read_adjacent(&locations) {
                Ok(records) => {
                    for ((k, slot), bytes) in run.iter().enumerate().zip(records) {
                        let sequence = first + k as u64;
                        self.ahead
                            .push_back(checked_record(&self.author, sequence, *slot, bytes));
                    }
                }
                // Each alone, so that each gets its own answer.
                Err(_) => {
                    for (k, slot) in run.iter().enumerate() {
                        let sequence = first + k as u64;
                        self.ahead
                            .push_back(store.feed_record(&self.author, sequence, *slot));
                    }
                }
            }
            self.next = first + run.len() as u64;
        }
    }
}

/// `slots` cut into runs whose records follow each other in the log and
/// take at most [`MAX_ADJACENT_BYTES`] together (a record beyond that
/// alone is a run of one).
fn adjacent_runs(slots: &[Slot]) -> impl Iterator<Item = &[Slot]> {
    let mut rest = slots;
    std::iter::from_fn(move || {
        let first = rest.first()?;
        let mut bytes = record_bytes(first);
        let len = 1 + rest
            .windows(2)
            .take_while(|pair| {
                bytes = bytes.saturating_add(record_bytes(&pair[1]));
                follows(pair[0].location, pair[1].location) && bytes <= MAX_ADJACENT_BYTES
            })
            .count();
        let (run, after) = rest.split_at(len);
        rest = after;
        Some(run)
    })
}

/// A record's bytes in the log, with its length prefix.
fn record_bytes(slot: &Slot) -> usize {
    (slot.location.len as usize).saturating_add(LEN_PREFIX as usize)
}

/// The message in `bytes`, read for `sequence` of `author` where `slot`
/// points, if it is the message that was stored: a record that decodes,
/// naming this feed and sequence, with content (if present) matching the
/// content hash, and whose id starts as the slot says (so a changed
/// header or signature shows). Anything else is [`StoreError::Damaged`]:
/// what is read for sending or export is never something a peer would
/// refuse.
fn checked_record(
    author: &FeedId,
    sequence: u64,
    slot: Slot,
    bytes: Vec<u8>,
) -> Result<Message, StoreError> {
    let msg = Message::decode(bytes)
        .map_err(|_| damaged(author, sequence, "the record is not a message"))?;
    if msg.author() != *author || msg.sequence() != sequence {
        return Err(damaged(
            author,
            sequence,
            "the record holds another message",
        ));
    }
    if let Some(content) = msg.content()
        && blake3::hash(content).as_bytes() != &msg.header().content_hash
    {
        return Err(damaged(
            author,
            sequence,
            "its content does not match its hash",
        ));
    }
    if id_prefix(&msg.id()) != slot.id_prefix {
        return Err(damaged(author, sequence, "its header or signature changed"));
    }
    Ok(msg)
}

/// Message `sequence` of `author` is damaged on disk, for `reason`.
fn damaged(author: &FeedId, sequence: u64, reason: &str) -> StoreError {
    StoreError::Damaged {
        author: *author,
        sequence,
        reason: reason.to_owned(),
    }
}
