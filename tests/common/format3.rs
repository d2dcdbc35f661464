//! A store in format 3 (before `groups.log`), for tests of the upgrade to
//! format 4: made by the current store, then turned back into format 3 by
//! hand. Format 3 kept each RSVP, admission and contact entry as a sled
//! key of its own (`r`/`a`/`c` ‖ group ‖ member, with the same values);
//! format 4 keeps them in `groups.log`, with a chain head per group in
//! sled under `J` and the file's length under `Mgroups_end`.

use std::path::Path;

use potluck::feed::message::Message;
use potluck::store::Store;

/// The index prefixes format 4 moved out of sled.
const GROUPED: [u8; 3] = [b'r', b'a', b'c'];

/// Writes a format-3 store holding `messages` (each feed's in sequence
/// order) in `path`; returns how many grouped entries it holds in sled.
pub fn write_store(path: &Path, messages: &[Message]) -> usize {
    let grouped: Vec<(Vec<u8>, Vec<u8>)> = {
        let store = Store::open(path).unwrap();
        let report = store.ingest(messages.to_vec()).unwrap();
        assert!(report.rejected.is_none(), "{:?}", report.rejected);
        store
            .index_snapshot()
            .unwrap()
            .into_iter()
            .filter(|(k, _)| GROUPED.contains(&k[0]))
            .collect()
    };
    let (db, tree) = super::raw_tree(path);
    for (k, v) in &grouped {
        tree.insert(k.as_slice(), v.as_slice()).unwrap();
    }
    let heads: Vec<sled::IVec> = tree
        .scan_prefix([b'J'])
        .keys()
        .map(Result::unwrap)
        .collect();
    for k in heads {
        tree.remove(k).unwrap();
    }
    tree.remove(b"Mgroups_end").unwrap();
    tree.insert(b"Mformat", vec![3]).unwrap();
    db.flush().unwrap();
    drop(tree);
    drop(db);
    for name in ["groups.log", "groups.log.committed"] {
        let _ = std::fs::remove_file(path.join(name));
    }
    grouped.len()
}
