//! The key-value view indexing reads and writes through ([`Kv`]), one in
//! memory ([`MemKv`]), and the error every view can carry: an entry that
//! does not decode ([`CorruptEntry`]).

use std::collections::BTreeMap;

use thiserror::Error;

/// An index entry that cannot be decoded: the store is damaged.
#[derive(Debug, Error)]
#[error("index entry {key} is damaged: {reason} (run `potluck reindex`)")]
pub struct CorruptEntry {
    /// The key, in hex.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// A key-value view the indexer reads and writes. Reads must see the
/// writes made earlier through the same view.
pub trait Kv {
    /// The backend's error.
    type Error: From<CorruptEntry>;
    /// Reads a key.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Self::Error>;
    /// Writes a key.
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>);
    /// Deletes a key.
    fn delete(&mut self, key: Vec<u8>);
    /// The keys that start with `prefix`, in order, including the writes
    /// made earlier through the same view.
    fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, Self::Error>;
}

/// An in-memory [`Kv`], used to rebuild and check indexes.
#[derive(Default, Debug, PartialEq, Eq)]
pub struct MemKv(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl Kv for MemKv {
    type Error = CorruptEntry;
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, CorruptEntry> {
        Ok(self.0.get(key).cloned())
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.0.insert(key, value);
    }
    fn delete(&mut self, key: Vec<u8>) {
        self.0.remove(&key);
    }
    fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, CorruptEntry> {
        Ok(self
            .0
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect())
    }
}
