//! [`Staged`]: sled writes gathered for one atomic batch, which the index
//! rules read back before the batch is applied.

use std::collections::BTreeMap;

use super::error::StoreError;
use super::index::Kv;

/// Writes staged for one atomic batch, readable before they are applied.
pub(super) struct Staged<'a> {
    tree: &'a sled::Tree,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Kv for Staged<'_> {
    type Error = StoreError;
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => Ok(self.tree.get(key)?.map(|v| v.to_vec())),
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
        for item in self.tree.scan_prefix(prefix) {
            keys.insert(item?.0.to_vec());
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
    /// Nothing staged yet over `tree`.
    pub(super) fn over(tree: &'a sled::Tree) -> Staged<'a> {
        Staged {
            tree,
            writes: BTreeMap::new(),
        }
    }

    /// Whether nothing is staged.
    pub(super) fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The writes staged, as one batch.
    pub(super) fn into_batch(mut self) -> sled::Batch {
        self.take_batch()
    }

    /// The writes staged so far as a batch, leaving none staged.
    pub(super) fn take_batch(&mut self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (k, v) in std::mem::take(&mut self.writes) {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        batch
    }
}
