//! A clock kept as its differences from a base that many sessions share
//! (sans-io).
//!
//! A session keeps three clocks: ours, the peer's, and ours as the peer
//! knows it. On a hub whose members are in sync all three are nearly the
//! hub's own clock, in every one of a thousand sessions: with 1,000 feeds
//! that was 165 KB a member (`benches/link_memory.rs`). A [`SharedClock`]
//! reads like a [`Clock`] but stores only where it differs from a shared,
//! immutable base, so a member in sync costs almost nothing. The base is a
//! matter of memory only: what a clock holds is the same whatever its base
//! (the tests below check this against a plain map).

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::iter::Peekable;
use std::sync::Arc;

use crate::feed::message::FeedId;

use super::{Clock, Link};

/// A clock stored as a shared base and this clock's own differences.
#[derive(Clone, Debug, Default)]
pub struct SharedClock {
    base: Arc<Clock>,
    /// Where this clock differs from `base`: its value, or `None` for a
    /// feed of `base` that this clock lacks.
    diff: BTreeMap<FeedId, Option<u64>>,
    len: usize,
}

impl SharedClock {
    /// The clock `clock`, stored against `base`.
    pub fn new(clock: Clock, base: Arc<Clock>) -> SharedClock {
        SharedClock::from_sorted(clock.into_iter(), base)
    }

    /// The clock of `entries` (in feed order, each feed once), stored
    /// against `base`: one walk over both.
    fn from_sorted(entries: impl Iterator<Item = (FeedId, u64)>, base: Arc<Clock>) -> SharedClock {
        let mut diff = Vec::new();
        let mut len = 0;
        let mut in_base = base.iter().peekable();
        for (feed, value) in entries {
            len += 1;
            // The base's feeds before this one are not in the clock.
            while let Some((absent, _)) = in_base.next_if(|(f, _)| **f < feed) {
                diff.push((*absent, None));
            }
            match in_base.next_if(|(f, _)| **f == feed) {
                Some((_, held)) if *held == value => {}
                _ => diff.push((feed, Some(value))),
            }
        }
        diff.extend(in_base.map(|(absent, _)| (*absent, None)));
        SharedClock {
            diff: diff.into_iter().collect(),
            base,
            len,
        }
    }

    /// The same clock, stored against `base` (nothing when it already is).
    pub fn rebase(&mut self, base: &Arc<Clock>) {
        if !Arc::ptr_eq(&self.base, base) {
            let entries: Vec<(FeedId, u64)> = self.iter().map(|(f, v)| (*f, *v)).collect();
            *self = SharedClock::from_sorted(entries.into_iter(), base.clone());
        }
    }

    /// The base this clock is stored against.
    pub fn base(&self) -> &Arc<Clock> {
        &self.base
    }

    /// How many entries this clock keeps of its own (its memory beyond the
    /// shared base).
    pub fn differences(&self) -> usize {
        self.diff.len()
    }

    /// The value of `feed`.
    pub fn get(&self, feed: &FeedId) -> Option<u64> {
        match self.diff.get(feed) {
            Some(value) => *value,
            None => self.base.get(feed).copied(),
        }
    }

    /// Does the clock name `feed`?
    pub fn contains_key(&self, feed: &FeedId) -> bool {
        self.get(feed).is_some()
    }

    /// Sets `feed` to `value`.
    pub fn insert(&mut self, feed: FeedId, value: u64) {
        if !self.contains_key(&feed) {
            self.len += 1;
        }
        if self.base.get(&feed) == Some(&value) {
            self.diff.remove(&feed);
        } else {
            self.diff.insert(feed, Some(value));
        }
    }

    /// Removes `feed`, returning its value.
    pub fn remove(&mut self, feed: &FeedId) -> Option<u64> {
        let old = self.get(feed)?;
        if self.base.contains_key(feed) {
            self.diff.insert(*feed, None);
        } else {
            self.diff.remove(feed);
        }
        self.len -= 1;
        Some(old)
    }

    /// Empties the clock (it keeps no base: [`SharedClock::rebase`] it
    /// once it is filled again).
    pub fn clear(&mut self) {
        *self = SharedClock::default();
    }

    /// How many feeds the clock names.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the clock names no feed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries in feed order, as a [`Clock`]'s iterator gives them.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            base: self.base.range(..).peekable(),
            diff: self.diff.range(..).peekable(),
        }
    }

    /// The entries from `feed` on (itself included), in feed order.
    pub fn iter_from(&self, feed: &FeedId) -> Iter<'_> {
        Iter {
            base: self.base.range(*feed..).peekable(),
            diff: self.diff.range(*feed..).peekable(),
        }
    }

    /// The feeds in order.
    pub fn keys(&self) -> impl Iterator<Item = &FeedId> {
        self.iter().map(|(feed, _)| feed)
    }

    /// A plain copy.
    pub fn to_clock(&self) -> Clock {
        self.iter().map(|(f, v)| (*f, *v)).collect()
    }
}

impl PartialEq for SharedClock {
    fn eq(&self, other: &SharedClock) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

/// The entries of a [`SharedClock`] in feed order: its base and its
/// differences, merged.
#[derive(Debug)]
pub struct Iter<'a> {
    base: Peekable<btree_map::Range<'a, FeedId, u64>>,
    diff: Peekable<btree_map::Range<'a, FeedId, Option<u64>>>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a FeedId, &'a u64);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let from_diff = match (self.base.peek(), self.diff.peek()) {
                (None, None) => return None,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some(&(b, _)), Some(&(d, _))) => {
                    if d == b {
                        // The difference replaces the base's entry.
                        self.base.next();
                    }
                    d <= b
                }
            };
            if !from_diff {
                return self.base.next();
            }
            if let Some((feed, Some(value))) = self.diff.next() {
                return Some((feed, value));
            }
        }
    }
}

/// The base a node's links keep their clocks against: one per node, so
/// that its sessions share it.
#[derive(Debug, Default)]
pub struct ClockBase {
    current: Arc<Clock>,
}

impl ClockBase {
    /// The base for a link that opens now.
    pub fn current(&self) -> Arc<Clock> {
        self.current.clone()
    }

    /// The base for a link that [wants a new one](Link::wants_new_base):
    /// the node's current base, or, when the link already has that one
    /// (the node's clock moved on since it was made), a new base made
    /// from the link's own clock, which then becomes the node's. Pass it
    /// to [`Link::rebase`].
    pub fn newer_for(&mut self, link: &Link) -> Arc<Clock> {
        if Arc::ptr_eq(&self.current, link.clock_base()) {
            self.current = Arc::new(link.own_clock());
        }
        self.current.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn f(n: u8) -> FeedId {
        FeedId([n; 32])
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u8, u64),
        Remove(u8),
        Clear,
        Rebase(Vec<(u8, u64)>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..24, 0u64..4).prop_map(|(k, v)| Op::Insert(k, v)),
            3 => (0u8..24).prop_map(Op::Remove),
            1 => Just(Op::Clear),
            2 => proptest::collection::vec((0u8..24, 0u64..4), 0..24).prop_map(Op::Rebase),
        ]
    }

    proptest! {
        /// Whatever its base and whatever is done to it, a shared clock
        /// holds what a plain map given the same changes holds.
        #[test]
        fn reads_as_a_plain_clock_whatever_its_base(
            start in proptest::collection::vec((0u8..24, 0u64..4), 0..24),
            base in proptest::collection::vec((0u8..24, 0u64..4), 0..24),
            ops in proptest::collection::vec(op(), 0..60),
        ) {
            let to_clock = |entries: &[(u8, u64)]| -> Clock {
                entries.iter().map(|&(k, v)| (f(k), v)).collect()
            };
            let mut model = to_clock(&start);
            let mut shared = SharedClock::new(model.clone(), Arc::new(to_clock(&base)));
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        model.insert(f(k), v);
                        shared.insert(f(k), v);
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(shared.remove(&f(k)), model.remove(&f(k)));
                    }
                    Op::Clear => {
                        model.clear();
                        shared.clear();
                    }
                    Op::Rebase(entries) => shared.rebase(&Arc::new(to_clock(&entries))),
                }
                prop_assert_eq!(shared.len(), model.len());
                prop_assert_eq!(shared.is_empty(), model.is_empty());
                prop_assert_eq!(shared.to_clock(), model.clone());
                for k in 0..24 {
                    prop_assert_eq!(shared.get(&f(k)), model.get(&f(k)).copied());
                    let from: Vec<(FeedId, u64)> =
                        shared.iter_from(&f(k)).map(|(f, v)| (*f, *v)).collect();
                    let expected: Vec<(FeedId, u64)> =
                        model.range(f(k)..).map(|(f, v)| (*f, *v)).collect();
                    prop_assert_eq!(from, expected);
                }
                prop_assert!(shared.differences() <= model.len() + shared.base().len());
            }
        }
    }

    #[test]
    fn a_clock_equal_to_its_base_keeps_nothing_of_its_own() {
        let clock: Clock = (0..100).map(|k| (f(k), u64::from(k))).collect();
        let base = Arc::new(clock.clone());
        let mut shared = SharedClock::new(clock.clone(), base.clone());
        assert_eq!(shared.differences(), 0);
        shared.insert(f(3), 50);
        shared.remove(&f(4));
        assert_eq!(shared.differences(), 2);
        // Back to the base's values: nothing of its own again.
        shared.insert(f(3), 3);
        shared.insert(f(4), 4);
        assert_eq!(shared.differences(), 0);
        assert_eq!(shared.to_clock(), clock);
        // A copy shares the base.
        let copy = shared.clone();
        assert!(Arc::ptr_eq(copy.base(), &base));
    }
}
