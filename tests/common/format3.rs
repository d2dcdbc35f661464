//! A store in format 3 (before `groups.log`), for tests of the upgrade to
//! format 4: made by the current store, then turned back into format 3 by
//! hand. Format 3 kept each RSVP, admission and contact entry as a sled
//! key of its own (`r`/`a`/`c` ‖ group ‖ member, with the same values);
//! format 4 keeps them in `groups.log`, with a chain head per group in
//! sled under `J` and the file's length under `Mgroups_end`. Format 3
//! (and format 4 before index revision 4) also kept each event's tally
//! under a key of its own (`t ‖ event`), where revision 4 keeps it in the
//! chain head of the event's answers.

use std::path::Path;

use potluck::feed::message::Message;
use potluck::store::Store;

/// The index prefixes format 4 moved out of sled.
const GROUPED: [u8; 3] = [b'r', b'a', b'c'];

/// The tallies' prefix: a sled key each before index revision 4.
const TALLY: u8 = b't';

/// The bytes of a group's chain head without the summary (the tally) that
/// index revision 4 appends to it.
const CHAIN_HEAD_LEN: usize = 28;

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
            .filter(|(k, _)| GROUPED.contains(&k[0]) || k[0] == TALLY)
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
    grouped.iter().filter(|(k, _)| k[0] != TALLY).count()
}

/// Writes a store of format 4 at index revision 3 holding `messages` (each
/// feed's in sequence order) in `path`: each event's tally a sled key of
/// its own (`t ‖ event`), not in the chain head of the event's answers.
/// Returns how many tallies it holds.
pub fn write_revision3_store(path: &Path, messages: &[Message]) -> usize {
    {
        let store = Store::open(path).unwrap();
        let report = store.ingest(messages.to_vec()).unwrap();
        assert!(report.rejected.is_none(), "{:?}", report.rejected);
    }
    let (db, tree) = super::raw_tree(path);
    let heads: Vec<(sled::IVec, sled::IVec)> =
        tree.scan_prefix([b'J', b'r']).map(Result::unwrap).collect();
    let mut tallies = 0;
    for (k, v) in heads {
        assert!(
            v.len() > CHAIN_HEAD_LEN,
            "an event's answers without a tally"
        );
        let mut tally_key = vec![TALLY];
        tally_key.extend_from_slice(&k[2..]);
        tree.insert(tally_key, &v[CHAIN_HEAD_LEN..]).unwrap();
        tree.insert(k, &v[..CHAIN_HEAD_LEN]).unwrap();
        tallies += 1;
    }
    tree.insert(b"Mindex_revision", vec![3]).unwrap();
    db.flush().unwrap();
    tallies
}
