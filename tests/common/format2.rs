//! A store in format 2 (before the position index), written directly, for
//! tests of the upgrade to format 3: the messages in `messages.log` (each
//! record its length, big-endian u32, then its bytes) and, in sled's
//! `potluck` tree, where each one is under `L` author ‖ sequence and under
//! `I` id (offset ‖ length, big-endian), each feed's head under `H`
//! (sequence ‖ id), and `Mformat` = 2 and `Mlog_end`. No index entries:
//! the upgrade makes them again from the log.

use std::path::Path;

use potluck::feed::message::Message;

/// Appends `msg` to `log` as a record and returns the location format 2's
/// sled entries held: the offset of its bytes ‖ their length, big-endian.
pub fn append_record(log: &mut Vec<u8>, msg: &Message) -> Vec<u8> {
    let len = u32::try_from(msg.bytes().len()).expect("a message is small");
    log.extend_from_slice(&len.to_be_bytes());
    let offset = log.len() as u64;
    log.extend_from_slice(msg.bytes());
    let mut location = offset.to_be_bytes().to_vec();
    location.extend_from_slice(&len.to_be_bytes());
    location
}

/// Writes a format-2 store holding `messages` (each feed's in sequence
/// order, from 1) in `path`, and `extra` raw entries in its sled tree.
pub fn write_store(path: &Path, messages: &[Message], extra: &[(Vec<u8>, Vec<u8>)]) {
    std::fs::create_dir_all(path).unwrap();
    let (db, tree) = super::raw_tree(path);
    let mut log = Vec::new();
    for m in messages {
        let location = append_record(&mut log, m);
        let mut l = vec![b'L'];
        l.extend_from_slice(&m.author().0);
        l.extend_from_slice(&m.sequence().to_be_bytes());
        tree.insert(l, location.clone()).unwrap();
        let mut i = vec![b'I'];
        i.extend_from_slice(&m.id().0);
        tree.insert(i, location).unwrap();
        let mut h = vec![b'H'];
        h.extend_from_slice(&m.author().0);
        let mut head = m.sequence().to_be_bytes().to_vec();
        head.extend_from_slice(&m.id().0);
        tree.insert(h, head).unwrap();
    }
    for (k, v) in extra {
        tree.insert(k.as_slice(), v.as_slice()).unwrap();
    }
    tree.insert(b"Mformat", vec![2]).unwrap();
    tree.insert(b"Mlog_end", (log.len() as u64).to_be_bytes().to_vec())
        .unwrap();
    std::fs::write(path.join("messages.log"), &log).unwrap();
    db.flush().unwrap();
}
