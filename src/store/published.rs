//! How far this home published its own feeds ([`PublishedMark`]), kept
//! beside the store so that a lost store is not taken for a new feed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use super::Store;
use super::error::StoreError;
use crate::feed::message::FeedId;
use crate::feed::validate::FeedHead;

/// How far this home has published each of its own feeds, kept in a small
/// JSON file beside the store directory (`NAME.published`, e.g.
/// `HOME/store.published`: `{"@….ed25519": 12}`), so that it survives the
/// store's loss. A store that holds less of a feed than was published
/// from it refuses to publish more to it: the next message would start a
/// second history that every peer holding the first rejects as a fork.
pub(super) struct PublishedMark {
    pub(super) path: std::path::PathBuf,
    heads: Mutex<BTreeMap<FeedId, u64>>,
}

impl PublishedMark {
    /// The mark of the store at `store_dir`.
    fn path_for(store_dir: &Path) -> std::path::PathBuf {
        let mut name = store_dir
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "store".into());
        name.push(".published");
        store_dir.with_file_name(name)
    }

    pub(super) fn load(store_dir: &Path) -> Result<PublishedMark, StoreError> {
        let (mark, found) = PublishedMark::read(store_dir)?;
        if !found {
            // Every store has one from its first open: a key and a
            // missing store without it is a home from before the mark.
            mark.write(&BTreeMap::new()).map_err(|e| mark.error(e))?;
        }
        Ok(mark)
    }

    /// The mark of the store at `store_dir`, empty when it has no file
    /// (and whether it had one); writes nothing.
    fn read(store_dir: &Path) -> Result<(PublishedMark, bool), StoreError> {
        let path = PublishedMark::path_for(store_dir);
        let bad = |reason: String| StoreError::PublishedMark {
            path: path.display().to_string(),
            reason,
        };
        let (heads, found) = match std::fs::read(&path) {
            Ok(bytes) if bytes.len() > 1024 * 1024 => return Err(bad("larger than 1 MiB".into())),
            Ok(bytes) => (
                serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?,
                true,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (BTreeMap::new(), false),
            Err(e) => return Err(bad(e.to_string())),
        };
        let mark = PublishedMark {
            path,
            heads: Mutex::new(heads),
        };
        Ok((mark, found))
    }

    /// The error of a failed write of this mark.
    fn error(&self, e: std::io::Error) -> StoreError {
        StoreError::PublishedMark {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        }
    }

    /// Whether the store at `store_dir` has a mark file.
    fn exists_for(store_dir: &Path) -> bool {
        PublishedMark::path_for(store_dir).exists()
    }

    fn get(&self, feed: &FeedId) -> Option<u64> {
        self.heads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(feed)
            .copied()
    }

    /// Sets `feed`'s mark and writes the file (whole, synced, renamed into
    /// place, so it is never half written).
    pub(super) fn set(&self, feed: FeedId, sequence: u64) -> std::io::Result<()> {
        let mut heads = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        heads.insert(feed, sequence);
        self.write(&heads)
    }

    fn write(&self, heads: &BTreeMap<FeedId, u64>) -> std::io::Result<()> {
        let text = serde_json::to_vec(heads).map_err(std::io::Error::other)?;
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        {
            use std::io::Write as _;
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&text)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        crate::home::sync_parent(&self.path)
    }
}

impl Store {
    /// `(held, published)` when the store holds less of `feed` than this
    /// home published of it.
    pub(super) fn behind_published(
        &self,
        feed: &FeedId,
        head: Option<&FeedHead>,
    ) -> Option<(u64, u64)> {
        let holds = head.map_or(0, |h| h.sequence);
        let published = self.published.get(feed)?;
        (holds < published).then_some((holds, published))
    }

    /// When the store holds less of our own `feed` than this home
    /// published: `(held, published)`. Publishing is refused until then.
    pub fn own_feed_behind(&self, feed: &FeedId) -> Result<Option<(u64, u64)>, StoreError> {
        Ok(self.behind_published(feed, self.head(feed)?.as_ref()))
    }

    /// True when the store at `path` was opened before by a potluck that
    /// records how far its home published (every store since this one).
    pub fn has_published_mark(path: &Path) -> bool {
        PublishedMark::exists_for(path)
    }

    /// Records, before the store at `path` is opened (it need not exist
    /// yet), that this home published `feed` at least up to `sequence`:
    /// for a home whose store is gone and whose record of it predates the
    /// mark, or whose key was made elsewhere (an import), so that whatever
    /// was published is unknown. Written before the store exists, so that
    /// no crash can leave a store without it, which the next open would
    /// take for a whole one and let publish over the feed.
    pub fn mark_published_before_open(
        path: &Path,
        feed: FeedId,
        sequence: u64,
    ) -> Result<(), StoreError> {
        let (mark, _) = PublishedMark::read(path)?;
        if mark.get(&feed).unwrap_or(0) >= sequence {
            return Ok(());
        }
        mark.set(feed, sequence).map_err(|e| mark.error(e))
    }

    /// Records the published mark of `feed`, or says which file failed.
    fn set_published(&self, feed: FeedId, sequence: u64) -> Result<(), StoreError> {
        self.published
            .set(feed, sequence)
            .map_err(|e| self.published.error(e))
    }

    /// Accepts that `feed`'s messages after what the store holds are lost:
    /// publishing goes on from the store's head (peers that hold the lost
    /// messages will see a fork).
    pub fn accept_published_loss(&self, feed: &FeedId) -> Result<u64, StoreError> {
        let holds = self.head(feed)?.map_or(0, |h| h.sequence);
        self.set_published(*feed, holds)?;
        Ok(holds)
    }
}
