//! The indexing rules of comments: a comment's state and its place in its
//! event's thread, its author's edits and deletion, and the organizer's
//! hiding.
//!
//! **The place of a comment** (docs/content.md, "The order of a thread")
//! is the latest of its claimed timestamp and one millisecond after the
//! claimed timestamp of every comment it names (in `seen` or `reply`)
//! that is a known comment on the same event. The thread is read in
//! order of (place, comment id). Each place depends only on the set of
//! comments held, not on the order they arrived in: when a comment
//! arrives after comments that name it, those move later as needed, by
//! the [`prefix::NAMED_BY`] entries that every comment leaves for what it
//! names. Only those: a place depends on the timestamps of what a comment
//! names, not on their places, so a late comment moves only the comments
//! that name it directly, at most once each. (With places chained, a
//! hostile pair of feeds could make each of n late comments move a chain
//! of n, n² writes in one ingest.)

use super::codec::{read, write};
use super::keys::{comment_key, hidden_key, named_by_key, named_by_prefix, prefix, thread_key};
use super::kv::{CorruptEntry, Kv};
use super::rules::{Indexed, OrganizerAct, by_organizer};
use super::state::CommentState;
use crate::content::{Comment, CommentDelete, CommentEdit, CommentHide, links_in};
use crate::feed::message::{FeedId, Message, MessageId};

/// A new comment: its state, its place in the thread (moving the comments
/// that named it and arrived earlier), and what it names.
pub(super) fn comment<K: Kv>(
    kv: &mut K,
    msg: &Message,
    comment: Comment,
) -> Result<Indexed, K::Error> {
    let id = msg.id();
    let mut named = comment.seen;
    named.extend(comment.reply);
    named.sort_unstable();
    named.dedup();
    let timestamp = msg.header().timestamp;
    let mut place = timestamp;
    for earlier in &named {
        kv.put(named_by_key(earlier, &id), Vec::new());
        if let Some(state) = read::<K, CommentState>(kv, &comment_key(earlier))?
            && state.event == comment.event
        {
            place = place.max(state.timestamp.saturating_add(1));
        }
    }
    let state = CommentState {
        event: comment.event,
        author: msg.author(),
        reply: comment.reply,
        text: comment.text,
        timestamp,
        place,
        edited: None,
        deleted: false,
    };
    put_comment(kv, &id, &state)?;
    move_later_ones(kv, id, &state)?;
    Ok(Indexed::for_event(state.event))
}

/// Moves the comments that name `first` (and arrived before it) to just
/// after its timestamp, where they are not already later. Not the ones
/// after those: a place depends on the timestamps of what a comment
/// names, which never change, so nothing else moves.
fn move_later_ones<K: Kv>(
    kv: &mut K,
    first: MessageId,
    state: &CommentState,
) -> Result<(), K::Error> {
    let after = state.timestamp.saturating_add(1);
    for key in kv.keys_with_prefix(&named_by_prefix(&first))? {
        let later = MessageId(key_tail(&key)?);
        let Some(mut later_state) = read::<K, CommentState>(kv, &comment_key(&later))? else {
            continue;
        };
        if later_state.event != state.event || later_state.place >= after {
            continue;
        }
        delete_places(kv, &later, &later_state);
        later_state.place = after;
        put_comment(kv, &later, &later_state)?;
    }
    Ok(())
}

/// The comment id at the end of a [`prefix::NAMED_BY`] key.
fn key_tail(key: &[u8]) -> Result<[u8; 32], CorruptEntry> {
    key.get(33..)
        .and_then(|tail| tail.try_into().ok())
        .ok_or_else(|| CorruptEntry {
            key: hex::encode(key),
            reason: "a named-by key does not end in a comment id".into(),
        })
}

/// A new text for a comment by its author; others' edits, and edits of
/// a deleted comment, are ignored.
pub(super) fn edit<K: Kv>(
    kv: &mut K,
    msg: &Message,
    edit: CommentEdit,
) -> Result<Indexed, K::Error> {
    by_comment_author(kv, &edit.comment, &msg.author(), |kv, mut state| {
        state.text = edit.text;
        state.edited = Some(msg.header().timestamp);
        put_comment(kv, &edit.comment, &state)?;
        Ok(Indexed::for_event(state.event))
    })
}

/// A comment removed by its author, for good: its text is dropped.
pub(super) fn delete<K: Kv>(
    kv: &mut K,
    msg: &Message,
    delete: CommentDelete,
) -> Result<Indexed, K::Error> {
    by_comment_author(kv, &delete.comment, &msg.author(), |kv, mut state| {
        state.text.clear();
        state.deleted = true;
        put_comment(kv, &delete.comment, &state)?;
        Ok(Indexed::for_event(state.event))
    })
}

/// The organizer hides a comment on their event, or shows it again. The
/// comment need not be known yet: the mark waits for it.
pub(super) fn hide<K: Kv>(
    kv: &mut K,
    msg: &Message,
    hide: CommentHide,
) -> Result<Indexed, K::Error> {
    by_organizer(
        kv,
        hide.event,
        &msg.author(),
        OrganizerAct::Hide,
        |kv, state| {
            let key = hidden_key(&state.id, &hide.comment);
            if hide.hidden {
                kv.put(key, Vec::new());
            } else {
                kv.delete(key);
            }
            // The links of a hidden comment leave the links index (a
            // thread of hidden link spam would otherwise be read through
            // for every page), and come back when it is shown again.
            if let Some(comment) = read::<K, CommentState>(kv, &comment_key(&hide.comment))?
                && comment.event == state.id
            {
                put_comment(kv, &hide.comment, &comment)?;
            }
            Ok(Indexed::for_event(state.id))
        },
    )
}

/// Runs `then` on the state of `comment` if `author` wrote it and has not
/// deleted it; otherwise the message is ignored, saying why.
fn by_comment_author<K: Kv>(
    kv: &mut K,
    comment: &MessageId,
    author: &FeedId,
    then: impl FnOnce(&mut K, CommentState) -> Result<Indexed, K::Error>,
) -> Result<Indexed, K::Error> {
    match read::<K, CommentState>(kv, &comment_key(comment))? {
        None => Ok(Indexed::Ignored("change of an unknown comment")),
        Some(state) if state.author != *author => Ok(Indexed::Ignored(
            "change of a comment by someone other than its author",
        )),
        Some(state) if state.deleted => Ok(Indexed::Ignored("change of a deleted comment")),
        Some(state) => then(kv, state),
    }
}

/// Writes a comment's state and its thread entries: the thread, and the
/// links index when it has links and the organizer has not hidden it.
fn put_comment<K: Kv>(kv: &mut K, id: &MessageId, state: &CommentState) -> Result<(), K::Error> {
    kv.put(
        thread_key(prefix::THREAD, &state.event, state.place, id),
        Vec::new(),
    );
    let links_key = thread_key(prefix::THREAD_LINKS, &state.event, state.place, id);
    if links_in(&state.text).is_empty() || kv.get(&hidden_key(&state.event, id))?.is_some() {
        kv.delete(links_key);
    } else {
        kv.put(links_key, Vec::new());
    }
    write(kv, comment_key(id), state);
    Ok(())
}

/// Deletes a comment's thread entries at its current place.
fn delete_places<K: Kv>(kv: &mut K, id: &MessageId, state: &CommentState) {
    for thread in [prefix::THREAD, prefix::THREAD_LINKS] {
        kv.delete(thread_key(thread, &state.event, state.place, id));
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use proptest::prelude::*;

    use super::*;
    use crate::content::{Event, EventTime, KnownContent};
    use crate::store::index::keys::thread_prefix;
    use crate::store::index::{MemKv, apply, place_of_thread_key};

    /// Feeds of signed messages, each in sequence order.
    struct Feeds {
        keys: Vec<SigningKey>,
        feeds: Vec<Vec<Message>>,
    }

    impl Feeds {
        fn new(people: u8) -> Feeds {
            Feeds {
                keys: (1..=people)
                    .map(|n| SigningKey::from_bytes(&[n; 32]))
                    .collect(),
                feeds: (0..people).map(|_| Vec::new()).collect(),
            }
        }

        fn add(&mut self, person: usize, timestamp: i64, content: &[u8]) -> MessageId {
            let feed = &mut self.feeds[person];
            let previous = feed.last().map(Message::id).unwrap_or_default();
            let msg = Message::sign(
                &self.keys[person],
                feed.len() as u64 + 1,
                previous,
                timestamp,
                content,
            )
            .unwrap();
            let id = msg.id();
            feed.push(msg);
            id
        }

        fn event(&mut self, person: usize) -> MessageId {
            let event = Event::new(
                "Soup night",
                EventTime::parse("start", "2030-01-01T18:00:00Z").unwrap(),
            );
            self.add(person, 1, &event.to_content_bytes())
        }

        fn comment(
            &mut self,
            person: usize,
            timestamp: i64,
            event: MessageId,
            reply: Option<MessageId>,
            seen: Vec<MessageId>,
            text: &str,
        ) -> MessageId {
            let comment = Comment {
                event,
                reply,
                seen,
                text: text.into(),
            };
            self.add(person, timestamp, &comment.to_content_bytes())
        }

        /// Indexes every message, taking the next one of the feed that
        /// `choices` names in turn (each feed stays in sequence order).
        fn index(&self, choices: &[usize]) -> MemKv {
            let mut kv = MemKv::default();
            let mut next = vec![0; self.feeds.len()];
            let mut choices = choices.iter().cycle();
            loop {
                let open: Vec<usize> = (0..self.feeds.len())
                    .filter(|&f| next[f] < self.feeds[f].len())
                    .collect();
                if open.is_empty() {
                    return kv;
                }
                let feed = open[choices.next().copied().unwrap_or(0) % open.len()];
                apply(&mut kv, &self.feeds[feed][next[feed]]).unwrap();
                next[feed] += 1;
            }
        }
    }

    fn thread(kv: &MemKv, event: &MessageId) -> Vec<MessageId> {
        kv.keys_with_prefix(&thread_prefix(prefix::THREAD, event))
            .unwrap()
            .iter()
            .map(|k| place_of_thread_key(k).unwrap().1)
            .collect()
    }

    #[test]
    fn a_comment_comes_after_what_it_saw_even_with_an_earlier_clock() {
        let mut feeds = Feeds::new(2);
        let event = feeds.event(0);
        let first = feeds.comment(0, 5_000, event, None, vec![], "first");
        // A slow clock: claimed before the comment it answers.
        let answer = feeds.comment(1, 1_000, event, Some(first), vec![first], "answer");
        for choices in [[0], [1]] {
            let kv = feeds.index(&choices);
            assert_eq!(thread(&kv, &event), [first, answer]);
            let state: CommentState = read(&kv, &comment_key(&answer)).unwrap().unwrap();
            assert_eq!(state.place, 5_001);
        }
    }

    #[test]
    fn naming_a_comment_of_another_event_does_not_order_it() {
        let mut feeds = Feeds::new(2);
        let event = feeds.event(0);
        let other = feeds.event(0);
        let elsewhere = feeds.comment(0, 9_000, other, None, vec![], "elsewhere");
        let here = feeds.comment(1, 1_000, event, Some(elsewhere), vec![elsewhere], "here");
        let kv = feeds.index(&[1, 0]);
        let state: CommentState = read(&kv, &comment_key(&here)).unwrap().unwrap();
        assert_eq!(state.place, 1_000);
        assert_eq!(thread(&kv, &event), [here]);
        assert_eq!(thread(&kv, &other), [elsewhere]);
    }

    #[test]
    fn only_the_author_edits_or_deletes_and_only_the_organizer_hides() {
        let mut feeds = Feeds::new(2);
        let event = feeds.event(0);
        let guest = feeds.comment(1, 10, event, None, vec![], "see https://a.test");
        let not_theirs = CommentEdit {
            comment: guest,
            text: "vandalized".into(),
        };
        feeds.add(0, 11, &not_theirs.to_content_bytes());
        let by_guest = CommentHide {
            event,
            comment: guest,
            hidden: true,
        };
        feeds.add(1, 12, &by_guest.to_content_bytes());
        let kv = feeds.index(&[1, 0]);
        let state: CommentState = read(&kv, &comment_key(&guest)).unwrap().unwrap();
        assert_eq!(
            (state.text.as_str(), state.edited),
            ("see https://a.test", None)
        );
        assert!(kv.get(&hidden_key(&event, &guest)).unwrap().is_none());
        assert_eq!(
            kv.keys_with_prefix(&thread_prefix(prefix::THREAD_LINKS, &event))
                .unwrap()
                .len(),
            1
        );

        let edit = CommentEdit {
            comment: guest,
            text: "no link now".into(),
        };
        feeds.add(1, 13, &edit.to_content_bytes());
        let by_organizer = CommentHide {
            event,
            comment: guest,
            hidden: true,
        };
        feeds.add(0, 14, &by_organizer.to_content_bytes());
        let kv = feeds.index(&[0]);
        let state: CommentState = read(&kv, &comment_key(&guest)).unwrap().unwrap();
        assert_eq!(
            (state.text.as_str(), state.edited),
            ("no link now", Some(13))
        );
        assert!(kv.get(&hidden_key(&event, &guest)).unwrap().is_some());
        assert!(
            kv.keys_with_prefix(&thread_prefix(prefix::THREAD_LINKS, &event))
                .unwrap()
                .is_empty()
        );

        feeds.add(1, 15, &CommentDelete { comment: guest }.to_content_bytes());
        feeds.add(1, 16, &edit.to_content_bytes());
        let kv = feeds.index(&[1]);
        let state: CommentState = read(&kv, &comment_key(&guest)).unwrap().unwrap();
        assert!(state.deleted);
        assert_eq!(
            state.text, "",
            "a deleted comment keeps no text, and is not edited again"
        );
        assert_eq!(
            thread(&kv, &event),
            [guest],
            "it keeps its place, shown as removed"
        );
    }

    /// A hidden comment's links leave the links index, whichever comes
    /// first, and come back when the organizer shows it again.
    #[test]
    fn a_hidden_comment_leaves_the_links_index_until_shown_again() {
        let mut feeds = Feeds::new(2);
        let event = feeds.event(0);
        let spam = feeds.comment(1, 10, event, None, vec![], "buy https://spam.test");
        let hide = |hidden| CommentHide {
            event,
            comment: spam,
            hidden,
        };
        feeds.add(0, 11, &hide(true).to_content_bytes());
        let links = |kv: &MemKv| {
            kv.keys_with_prefix(&thread_prefix(prefix::THREAD_LINKS, &event))
                .unwrap()
                .len()
        };
        // The comment first, then the hide; and the hide first.
        let comment_first = feeds.index(&[1, 0]);
        let hide_first = feeds.index(&[0]);
        assert_eq!(links(&comment_first), 0);
        assert_eq!(comment_first, hide_first);
        assert_eq!(
            thread(&comment_first, &event),
            [spam],
            "still in the thread"
        );
        feeds.add(0, 12, &hide(false).to_content_bytes());
        assert_eq!(links(&feeds.index(&[0])), 1);
    }

    /// The n² a hostile pair of feeds could cause if places chained: a
    /// chain of n comments (each naming the one before and one comment of
    /// another feed, which that feed sends late, each with a later
    /// clock). Each late comment moves only the one that names it.
    #[test]
    fn a_late_comment_moves_only_the_comments_that_name_it() {
        const N: i64 = 50;
        let mut feeds = Feeds::new(2);
        let event = feeds.event(0);
        let late: Vec<MessageId> = (1..=N)
            .map(|i| feeds.comment(1, 1_000 * i, event, None, vec![], "late"))
            .collect();
        let mut chain: Vec<MessageId> = Vec::new();
        for (i, named) in late.iter().enumerate() {
            let mut seen = vec![*named];
            seen.extend(chain.last().copied());
            chain.push(feeds.comment(0, 10 + i as i64, event, None, seen, "chain"));
        }
        let mut kv = MemKv::default();
        for msg in &feeds.feeds[0] {
            apply(&mut kv, msg).unwrap();
        }
        let places = |kv: &MemKv| -> Vec<i64> {
            chain
                .iter()
                .map(|id| {
                    read::<MemKv, CommentState>(kv, &comment_key(id))
                        .unwrap()
                        .unwrap()
                        .place
                })
                .collect()
        };
        let mut moves = 0;
        for msg in &feeds.feeds[1] {
            let before = places(&kv);
            apply(&mut kv, msg).unwrap();
            let after = places(&kv);
            moves += before.iter().zip(&after).filter(|(b, a)| b != a).count();
        }
        assert_eq!(moves, N as usize, "one move per late comment");
        // And the same index as when the late ones come first.
        assert_eq!(kv, feeds.index(&[1]));
    }

    /// Three people writing a thread while apart: each saw some of the
    /// comments before, with clocks that disagree.
    fn offline_thread(plan: &[(u8, u8, u8, i64)]) -> (Feeds, MessageId) {
        let mut feeds = Feeds::new(3);
        let event = feeds.event(0);
        let mut written: Vec<MessageId> = Vec::new();
        for (n, &(person, saw, reply, clock)) in plan.iter().enumerate() {
            let seen: Vec<MessageId> = written
                .iter()
                .enumerate()
                .filter(|(i, _)| saw & (1 << (i % 8)) != 0)
                .map(|(_, id)| *id)
                .rev()
                .take(crate::content::MAX_SEEN)
                .collect();
            let reply = (!written.is_empty() && reply % 3 == 0)
                .then(|| written[usize::from(reply) % written.len()]);
            let id = feeds.comment(
                usize::from(person % 3),
                clock,
                event,
                reply,
                seen,
                &format!("comment {n}"),
            );
            written.push(id);
        }
        (feeds, event)
    }

    proptest! {
        #[test]
        fn the_index_of_a_thread_does_not_depend_on_arrival_order(
            plan in prop::collection::vec((0u8..3, any::<u8>(), any::<u8>(), 0i64..50), 1..25),
            first in prop::collection::vec(0usize..3, 1..40),
            second in prop::collection::vec(0usize..3, 1..40),
        ) {
            let (feeds, event) = offline_thread(&plan);
            let one = feeds.index(&first);
            let other = feeds.index(&second);
            prop_assert_eq!(thread(&one, &event), thread(&other, &event));
            prop_assert_eq!(&one, &other);
            // Every reply is after its parent's timestamp, and after the
            // parent itself unless the parent was moved by what it named
            // (two wrong clocks in a row: docs/content.md).
            for id in thread(&one, &event) {
                let state: CommentState = read(&one, &comment_key(&id)).unwrap().unwrap();
                if let Some(reply) = state.reply {
                    let parent: CommentState = read(&one, &comment_key(&reply)).unwrap().unwrap();
                    prop_assert!(parent.timestamp < state.place);
                    if parent.place == parent.timestamp {
                        prop_assert!(parent.place < state.place);
                    }
                }
            }
        }
    }
}
