//! [`Staged`]: index writes gathered for one atomic batch, which the index
//! rules read back before the batch is applied. Grouped entries (RSVPs,
//! admissions, contacts) are read from and, at commit, written to
//! `groups.log` ([`super::groups`]); a group's summary (an event's tally)
//! from and to its chain head; every other key to sled.

use std::collections::BTreeMap;

use super::error::StoreError;
use super::groups::{self, GroupWrites, Groups, HeadsRead, Prepared, Summaries};
use super::index::Kv;
use super::keys::GROUPS_END_KEY;

/// Writes staged for one atomic batch, readable before they are applied.
pub(super) struct Staged<'a> {
    tree: &'a sled::Tree,
    groups: &'a Groups,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// The chain heads read since the last batch was taken.
    heads: HeadsRead,
}

impl Kv for Staged<'_> {
    type Error = StoreError;
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None if groups::split_key(key).is_some() => {
                self.groups.get(self.tree, &self.heads, key)
            }
            None => match groups::summarized_group(key) {
                Some(group) => self.groups.summary(self.tree, &self.heads, &group),
                None => Ok(self.tree.get(key)?.map(|v| v.to_vec())),
            },
        }
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }
    fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }
    fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut keys = std::collections::BTreeSet::new();
        match prefix.first() {
            Some(&p) if groups::is_grouped(p) => {
                let group: [u8; 32] =
                    prefix
                        .get(1..33)
                        .and_then(|g| g.try_into().ok())
                        .ok_or(StoreError::Bug(
                            "grouped entries are listed one group at a time",
                        ))?;
                for member in self
                    .groups
                    .members(self.tree, &self.heads, &(p, group))?
                    .into_keys()
                {
                    let key = groups::entry_key(&(p, group), &member);
                    if key.starts_with(prefix) {
                        keys.insert(key);
                    }
                }
            }
            Some(&p) if groups::is_summary(p) => {
                for item in self.groups.summary_entries(self.tree, p) {
                    let (key, _) = item?;
                    if key.starts_with(prefix) {
                        keys.insert(key);
                    }
                }
            }
            _ => {
                for item in self.tree.scan_prefix(prefix) {
                    keys.insert(item?.0.to_vec());
                }
            }
        }
        let staged = self
            .writes
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix));
        for (k, v) in staged {
            match v {
                Some(_) => keys.insert(k.clone()),
                None => keys.remove(k),
            };
        }
        Ok(keys.into_iter().collect())
    }
}

impl<'a> Staged<'a> {
    /// Nothing staged yet over `tree` and its grouped entries in `groups`.
    pub(super) fn over(tree: &'a sled::Tree, groups: &'a Groups) -> Staged<'a> {
        Staged {
            tree,
            groups,
            writes: BTreeMap::new(),
            heads: HeadsRead::default(),
        }
    }

    /// Whether nothing is staged.
    pub(super) fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Takes the staged writes to grouped entries and groups' summaries
    /// out, as records to write to `groups.log` ([`Groups::write`], before
    /// the batch), whose chain heads and the file's new length are staged
    /// in their place.
    pub(super) fn prepare_groups(&mut self) -> Result<Prepared, StoreError> {
        let mut writes = GroupWrites::new();
        let mut summaries = Summaries::new();
        let keys: Vec<Vec<u8>> = self
            .writes
            .keys()
            .filter(|k| groups::split_key(k).is_some() || groups::summarized_group(k).is_some())
            .cloned()
            .collect();
        for key in keys {
            let Some(value) = self.writes.remove(&key) else {
                continue;
            };
            if let Some((group, member)) = groups::split_key(&key) {
                writes.entry(group).or_default().insert(member, value);
            } else if let Some(group) = groups::summarized_group(&key) {
                // A summary removed is an empty one.
                summaries.insert(group, value.unwrap_or_default());
            }
        }
        let prepared = self
            .groups
            .prepare(self.tree, &self.heads, writes, summaries)?;
        for (k, v) in &prepared.sled {
            self.writes.insert(k.clone(), v.clone());
        }
        if let Some(end) = prepared.end() {
            self.writes
                .insert(GROUPS_END_KEY.to_vec(), Some(end.to_be_bytes().to_vec()));
        }
        Ok(prepared)
    }

    /// The writes staged, as one batch (after [`Staged::prepare_groups`]).
    pub(super) fn into_batch(mut self) -> sled::Batch {
        self.take_batch()
    }

    /// The writes staged so far as a batch, leaving none staged (after
    /// [`Staged::prepare_groups`]).
    pub(super) fn take_batch(&mut self) -> sled::Batch {
        // The batch is about to be applied: the heads read go stale.
        self.heads.forget();
        let mut batch = sled::Batch::default();
        for (k, v) in std::mem::take(&mut self.writes) {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        batch
    }

    /// Prepares the grouped entries, writes their records, applies every
    /// staged write to the tree as one batch, and counts the records: for
    /// rebuilds, whose caller flushes and orders the rest.
    pub(super) fn apply(&mut self) -> Result<(), StoreError> {
        let prepared = self.prepare_groups()?;
        self.groups.write(&prepared)?;
        self.tree.apply_batch(self.take_batch())?;
        self.groups.committed(prepared);
        Ok(())
    }
}
