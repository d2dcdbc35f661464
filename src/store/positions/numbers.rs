//! One feed's entry numbers in the position index: which entry of
//! `messages.idx` describes each of its messages, in sequence order.
//!
//! A sync brings a feed's messages in runs (a 100k sync from 1,000 feeds
//! left runs of 87 messages on average), so their entry numbers are
//! runs of consecutive numbers, and a run is held as its first message's
//! index and entry number: 8 bytes for the run, not 4 bytes a message.
//! Messages that came one at a time between other feeds' (a hub's live
//! gossip) make runs of one; such a feed is held as a plain list of
//! numbers, 4 bytes a message. So for any order of arrival a feed takes
//! about 4 bytes a message at most, beyond a slack of a few runs: a feed
//! of up to 10 messages that each came between other feeds' ones stays
//! as runs, up to 128 bytes where a list would take 4 a message.

/// Runs a feed may hold beyond what its list would cost before it turns
/// to a list, so that a feed whose first messages came one at a time
/// does not turn at once, and is not turned back and forth.
const SLACK_RUNS: usize = 8;

/// A run of consecutive entry numbers: the feed's message at
/// `first_index` (sequence `first_index + 1`) is at entry `first_number`,
/// the next at the next entry, and so on up to the next run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::store) struct Run {
    first_index: u32,
    first_number: u32,
}

/// A feed's entry numbers (see the module docs).
#[derive(Clone, Debug)]
pub(in crate::store) enum EntryNumbers {
    /// Runs of consecutive numbers, in order, and the feed's length.
    Runs { runs: Vec<Run>, len: u32 },
    /// Every number: cheaper than runs when messages came interleaved.
    Listed(Vec<u32>),
}

/// The numbers of a feed that holds nothing.
pub(in crate::store) static EMPTY: EntryNumbers = EntryNumbers::Runs {
    runs: Vec::new(),
    len: 0,
};

impl Default for EntryNumbers {
    fn default() -> Self {
        EntryNumbers::Runs {
            runs: Vec::new(),
            len: 0,
        }
    }
}

impl PartialEq for EntryNumbers {
    /// The same numbers, however they are held.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for EntryNumbers {}

/// Where each run of consecutive numbers in `numbers` starts.
fn run_starts(numbers: &[u32]) -> impl Iterator<Item = usize> + '_ {
    (0..numbers.len()).filter(|&i| i == 0 || u64::from(numbers[i - 1]) + 1 != u64::from(numbers[i]))
}

/// Whether `runs` runs would take more than half of what a list of `len`
/// numbers takes, and the slack. Half, because the runs' array grows by
/// doubling while a commit's numbers are listed exactly: so beyond the
/// slack, a feed's numbers take about 4 bytes a message at most, however
/// its messages came.
fn runs_cost_more(runs: usize, len: usize) -> bool {
    runs > len / 4 + SLACK_RUNS
}

impl EntryNumbers {
    /// How many messages the feed holds.
    pub fn len(&self) -> usize {
        match self {
            EntryNumbers::Runs { len, .. } => *len as usize,
            EntryNumbers::Listed(numbers) => numbers.len(),
        }
    }

    /// Whether the feed holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry number of the feed's message at `index` (sequence
    /// `index + 1`).
    pub fn get(&self, index: usize) -> Option<u32> {
        match self {
            EntryNumbers::Runs { runs, len } => {
                let index = u32::try_from(index).ok().filter(|i| i < len)?;
                // The last run that starts at or before `index`.
                let at = runs.partition_point(|r| r.first_index <= index);
                let run = runs.get(at.checked_sub(1)?)?;
                Some(run.first_number + (index - run.first_index))
            }
            EntryNumbers::Listed(numbers) => numbers.get(index).copied(),
        }
    }

    /// Every number, in sequence order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            EntryNumbers::Runs { runs, len } => {
                Box::new(runs.iter().enumerate().flat_map(move |(i, run)| {
                    let end = runs.get(i + 1).map_or(*len, |next| next.first_index);
                    (0..end - run.first_index).map(move |k| run.first_number + k)
                }))
            }
            EntryNumbers::Listed(numbers) => Box::new(numbers.iter().copied()),
        }
    }

    /// Adds the number of the feed's next message. A feed already holding
    /// 2^32 − 1 messages takes no more (its index would be a file of at
    /// least 256 GiB).
    pub fn push(&mut self, number: u32) {
        match self {
            EntryNumbers::Runs { runs, len } => {
                if *len == u32::MAX {
                    return;
                }
                let continues = runs.last().is_some_and(|run| {
                    u64::from(run.first_number) + u64::from(*len - run.first_index)
                        == u64::from(number)
                });
                if !continues {
                    runs.push(Run {
                        first_index: *len,
                        first_number: number,
                    });
                }
                *len += 1;
                if runs_cost_more(runs.len(), *len as usize) {
                    let listed: Vec<u32> = self.iter().collect();
                    *self = EntryNumbers::Listed(listed);
                }
            }
            EntryNumbers::Listed(numbers) => {
                if numbers.len() < u32::MAX as usize {
                    numbers.push(number);
                }
            }
        }
    }

    /// Keeps the feed's first `len` messages.
    pub fn truncate(&mut self, new_len: usize) {
        if new_len >= self.len() {
            return;
        }
        if new_len == 0 {
            *self = EntryNumbers::default();
            return;
        }
        match self {
            EntryNumbers::Runs { runs, len } => {
                // new_len < *len, a u32.
                let new_len = new_len as u32;
                let keep = runs.partition_point(|r| r.first_index < new_len);
                runs.truncate(keep);
                *len = new_len;
            }
            EntryNumbers::Listed(numbers) => numbers.truncate(new_len),
        }
    }

    /// Makes room for `count` more numbers at once, when they are listed
    /// (a commit knows how many it adds: growing by doubling left up to
    /// half of a list unused). Runs grow as they come; they are few.
    pub fn reserve_exact(&mut self, count: usize) {
        if let EntryNumbers::Listed(numbers) = self {
            numbers.reserve_exact(count);
        }
    }

    /// Turns a list into runs where runs are cheaper (runs stay runs), and
    /// leaves no room to spare.
    pub fn shrink_to_fit(&mut self) {
        match self {
            EntryNumbers::Runs { runs, .. } => runs.shrink_to_fit(),
            EntryNumbers::Listed(numbers) => {
                if runs_cost_more(run_starts(numbers).count(), numbers.len()) {
                    numbers.shrink_to_fit();
                } else {
                    // Fewer than 2^32 numbers (`push` takes no more).
                    let mut runs: Vec<Run> = run_starts(numbers)
                        .map(|i| Run {
                            first_index: i as u32,
                            first_number: numbers[i],
                        })
                        .collect();
                    runs.shrink_to_fit();
                    *self = EntryNumbers::Runs {
                        runs,
                        len: numbers.len() as u32,
                    };
                }
            }
        }
    }

    /// Bytes held on the heap.
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        match self {
            EntryNumbers::Runs { runs, .. } => runs.capacity() * size_of::<Run>(),
            EntryNumbers::Listed(numbers) => numbers.capacity() * size_of::<u32>(),
        }
    }

    /// Whether the numbers are held as runs.
    #[cfg(test)]
    pub fn is_runs(&self) -> bool {
        matches!(self, EntryNumbers::Runs { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies `ops` to both an `EntryNumbers` and a plain list, checking
    /// they agree after each.
    fn check_against_a_list(ops: &[(bool, u32)]) {
        let mut held = EntryNumbers::default();
        let mut model: Vec<u32> = Vec::new();
        for &(is_push, value) in ops {
            if is_push {
                held.push(value);
                model.push(value);
            } else {
                let len = value as usize % (model.len() + 1);
                held.truncate(len);
                model.truncate(len);
            }
            assert_eq!(held.len(), model.len());
            assert_eq!(held.iter().collect::<Vec<_>>(), model);
            for (i, &n) in model.iter().enumerate() {
                assert_eq!(held.get(i), Some(n));
            }
            assert_eq!(held.get(model.len()), None);
        }
        let mut shrunk = held.clone();
        shrunk.shrink_to_fit();
        assert_eq!(shrunk, held);
        assert_eq!(shrunk.iter().collect::<Vec<_>>(), model);
    }

    #[test]
    fn numbers_read_back_as_pushed_and_cut() {
        // Runs, a cut inside a run, a cut at a run's start, runs again.
        let mut ops: Vec<(bool, u32)> = (10..20).map(|n| (true, n)).collect();
        ops.extend((50..55).map(|n| (true, n)));
        ops.push((false, 12));
        ops.extend((100..103).map(|n| (true, n)));
        ops.push((false, 10));
        ops.extend([(true, 7), (true, 8), (true, u32::MAX - 1), (true, u32::MAX)]);
        check_against_a_list(&ops);
        // Interleaved: turns into a list, and is cut back to nothing.
        let mut ops: Vec<(bool, u32)> = (0..100).map(|n| (true, n * 2)).collect();
        ops.push((false, 0));
        ops.extend((0..5).map(|n| (true, n)));
        check_against_a_list(&ops);
    }

    #[test]
    fn numbers_agree_with_a_list_for_seeded_random_operations() {
        // A small generator, so the test needs no seed from outside.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200 {
            let mut ops = Vec::new();
            let mut number = (next() % 1000) as u32;
            for _ in 0..(next() % 300) {
                match next() % 10 {
                    0 => ops.push((false, next() as u32)),
                    1..=3 => {
                        number = (next() % 100_000) as u32;
                        ops.push((true, number));
                    }
                    _ => {
                        number = number.saturating_add(1);
                        ops.push((true, number));
                    }
                }
            }
            check_against_a_list(&ops);
        }
    }

    #[test]
    fn runs_take_8_bytes_each_and_interleaved_feeds_no_more_than_a_list() {
        // 10,000 messages in 100 runs, as a sync brings them: 100 runs.
        let mut synced = EntryNumbers::default();
        for run in 0..100u32 {
            for k in 0..100 {
                synced.push(run * 1_000 + k);
            }
        }
        synced.shrink_to_fit();
        assert!(synced.is_runs());
        assert_eq!(synced.heap_bytes(), 100 * 8);
        // 10,000 messages each between other feeds' ones: a list, 4 bytes
        // a message.
        let mut interleaved = EntryNumbers::default();
        for k in 0..10_000u32 {
            interleaved.push(k * 3);
        }
        interleaved.shrink_to_fit();
        assert!(!interleaved.is_runs());
        assert_eq!(interleaved.heap_bytes(), 10_000 * 4);
        // A list that became runs (a feed sent again in order after a
        // cut) is held as runs once shrunk.
        let mut list = EntryNumbers::Listed((0..1_000).collect());
        list.shrink_to_fit();
        assert!(list.is_runs());
        assert_eq!(list.iter().count(), 1_000);
        assert_eq!(list.heap_bytes(), 8);
    }
}
