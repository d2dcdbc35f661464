//! Store behaviour: forks, duplicates, the valid prefix of a bad batch,
//! durability across reopen, and fsck/reindex on damaged indexes.

mod common;

use common::open_store;
use ed25519_dalek::SigningKey;
use potluck::content::{Event, EventTime, KnownContent, Rsvp, RsvpStatus};
use potluck::feed::message::{Message, MessageId};
use potluck::feed::validate::{Checked, ValidationError};
use potluck::store::Store;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn about(name: &str) -> Vec<u8> {
    format!(r#"{{"type":"about","name":"{name}"}}"#).into_bytes()
}

/// A chain of `n` messages by `key`, starting at sequence 1.
fn chain(key: &SigningKey, n: u64, tag: &str) -> Vec<Message> {
    let mut prev = MessageId::default();
    (1..=n)
        .map(|seq| {
            let m =
                Message::sign(key, seq, prev, seq as i64, &about(&format!("{tag}{seq}"))).unwrap();
            prev = m.id();
            m
        })
        .collect()
}

#[test]
fn fork_keeps_the_first_and_records_proof() {
    let (_dir, store) = open_store();
    let k = key(1);
    let a = chain(&k, 2, "a");
    let b = chain(&k, 2, "b");
    let report = store.ingest(a.clone()).unwrap();
    assert_eq!(report.accepted.len(), 2);
    let report = store.ingest(vec![b[0].clone()]).unwrap();
    assert!(report.accepted.is_empty());
    assert_eq!(report.forks.len(), 1);
    assert!(report.rejected.is_none());
    let head = store.head(&a[0].author()).unwrap().unwrap();
    assert_eq!(head.id, a[1].id());
    let proofs = store.forks(&a[0].author()).unwrap();
    assert_eq!(proofs.len(), 1);
    assert_eq!(proofs[0].sequence, 1);
    assert_eq!(proofs[0].kept, a[0].signed_bytes());
    assert_eq!(proofs[0].rival, b[0].signed_bytes());
    assert_eq!(store.message(&b[0].id()).unwrap(), None);
}

/// Issue 14, defect 2: a peer's history that meets ours with another
/// `previous` is a fork: proof kept, the rest of that history dropped, and
/// the other feeds in the batch still stored.
#[test]
fn a_history_that_diverges_after_our_head_is_a_fork_not_a_rejection() {
    let (_dir, store) = open_store();
    let k = key(1);
    let ours = chain(&k, 3, "a");
    let theirs = chain(&k, 5, "b");
    let other = chain(&key(2), 2, "o");
    store.ingest(ours.clone()).unwrap();
    let input = vec![
        theirs[3].clone(),
        other[0].clone(),
        theirs[4].clone(),
        other[1].clone(),
    ];
    let report = store.ingest(input).unwrap();
    assert!(report.rejected.is_none(), "{:?}", report.rejected);
    assert_eq!(report.accepted.len(), 2, "the other feed");
    assert_eq!(report.rivals, 1);
    let proofs = store.forks(&k_feed(&k)).unwrap();
    assert_eq!(proofs.len(), 1);
    assert_eq!(proofs[0].sequence, 4);
    assert_eq!(proofs[0].kept, ours[2].signed_bytes());
    assert_eq!(proofs[0].rival, theirs[3].signed_bytes());
    assert_eq!(store.head(&k_feed(&k)).unwrap().unwrap().id, ours[2].id());
    assert_eq!(store.forked_feeds().unwrap(), vec![(k_feed(&k), 4)]);
}

fn k_feed(k: &SigningKey) -> potluck::feed::message::FeedId {
    potluck::feed::message::FeedId(k.verifying_key().to_bytes())
}

#[test]
fn a_fork_with_a_forged_signature_is_rejected_not_recorded() {
    let (_dir, store) = open_store();
    let k = key(1);
    let a = chain(&k, 1, "a");
    store.ingest(a).unwrap();
    let mut forged = chain(&k, 1, "b")[0].bytes().to_vec();
    forged[150] ^= 1; // inside the signature
    let forged = Message::decode(forged).unwrap();
    let report = store.ingest(vec![forged.clone()]).unwrap();
    assert!(report.forks.is_empty());
    assert!(matches!(
        report.rejected.unwrap().error,
        ValidationError::BadSignature { .. }
    ));
    assert!(store.forks(&forged.author()).unwrap().is_empty());
}

#[test]
fn duplicates_are_skipped() {
    let (_dir, store) = open_store();
    let a = chain(&key(2), 3, "a");
    store.ingest(a.clone()).unwrap();
    let report = store.ingest(a.clone()).unwrap();
    assert_eq!(report.duplicates, 3);
    assert!(report.accepted.is_empty());
    assert!(report.rejected.is_none());
}

/// A message repeated within one batch (a bundle holding a record twice)
/// is a duplicate; what follows it is still stored (issue 14, defect 8).
#[test]
fn a_message_repeated_in_one_batch_is_a_duplicate() {
    let (_dir, store) = open_store();
    let a = chain(&key(2), 4, "a");
    let other = chain(&key(3), 1, "o");
    let input = vec![
        a[0].clone(),
        a[1].clone(),
        a[1].clone(),
        other[0].clone(),
        a[0].clone(),
        a[2].clone(),
        a[3].clone(),
    ];
    let report = store.ingest(input).unwrap();
    assert!(report.rejected.is_none(), "{:?}", report.rejected);
    assert_eq!(report.accepted.len(), 5);
    assert_eq!(report.duplicates, 2);
    assert_eq!(store.head(&a[0].author()).unwrap().unwrap().sequence, 4);
    assert_eq!(store.fsck().unwrap().problems, Vec::<String>::new());
}

/// A rival of a message appended earlier in the same batch is a fork: the
/// first stays, the proof is recorded.
#[test]
fn a_fork_within_one_batch_keeps_the_first() {
    let (_dir, store) = open_store();
    let k = key(8);
    let a = chain(&k, 2, "a");
    let b = chain(&k, 1, "b");
    let report = store
        .ingest(vec![a[0].clone(), b[0].clone(), a[1].clone()])
        .unwrap();
    assert!(report.rejected.is_none(), "{:?}", report.rejected);
    assert_eq!(report.accepted.len(), 2);
    assert_eq!(report.forks.len(), 1);
    let proofs = store.forks(&a[0].author()).unwrap();
    assert_eq!(proofs.len(), 1);
    assert_eq!(proofs[0].kept, a[0].signed_bytes());
    assert_eq!(proofs[0].rival, b[0].signed_bytes());
}

#[test]
fn ingest_keeps_the_valid_prefix_and_nothing_after_the_first_invalid() {
    let (_dir, store) = open_store();
    let a = chain(&key(3), 5, "a");
    let other = chain(&key(4), 1, "o");
    let mut tampered = a[2].bytes().to_vec();
    let last = tampered.len() - 3;
    tampered[last] ^= 0x01;
    let input = vec![
        a[0].clone(),
        a[1].clone(),
        Message::decode(tampered).unwrap(),
        other[0].clone(), // valid, but after the invalid one
        a[3].clone(),
    ];
    let report = store.ingest(input).unwrap();
    assert_eq!(report.accepted.len(), 2);
    let rejected = report.rejected.unwrap();
    assert_eq!(rejected.index, 2);
    assert_eq!(rejected.error, ValidationError::ContentHashMismatch);
    assert_eq!(store.head(&a[0].author()).unwrap().unwrap().sequence, 2);
    assert_eq!(store.head(&other[0].author()).unwrap(), None);
}

#[test]
fn a_bad_signature_deep_in_a_large_batch_cuts_there() {
    let (_dir, store) = open_store();
    let mut a = chain(&key(5), 700, "a");
    let mut bytes = a[600].bytes().to_vec();
    bytes[75] ^= 0x10; // timestamp field: the chain holds, the signature does not
    a[600] = Message::decode(bytes).unwrap();
    let report = store.ingest(a).unwrap();
    let rejected = report.rejected.unwrap();
    assert_eq!(rejected.index, 600);
    assert!(matches!(
        rejected.error,
        ValidationError::BadSignature { .. }
    ));
    assert_eq!(report.accepted.len(), 600);
}

/// Messages filtered after their signatures were checked (as a connection
/// drops feeds it does not replicate) still report the bad signature.
#[test]
fn a_bad_signature_survives_filtering_and_is_rejected() {
    let (_dir, store) = open_store();
    let mut a = chain(&key(7), 4, "a");
    let mut bytes = a[3].bytes().to_vec();
    bytes[150] ^= 0x02; // inside the signature
    a[3] = Message::decode(bytes).unwrap();
    let mut checked = Checked::new(a);
    checked.retain(|_| true);
    let report = store.ingest_checked(checked).unwrap();
    assert_eq!(report.accepted.len(), 3);
    let rejected = report.rejected.expect("the bad signature is reported");
    assert_eq!(rejected.index, 3);
    assert!(matches!(
        rejected.error,
        ValidationError::BadSignature { .. }
    ));
}

/// Issue 14, defect 3: a store that holds less of a feed than was
/// published from it refuses to publish more, until it holds it again.
#[test]
fn a_store_behind_what_was_published_refuses_to_publish() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let k = key(9);
    let published: Vec<Message> = {
        let store = Store::open(&path).unwrap();
        (0..2)
            .map(|i| {
                store
                    .publish(&k, &about(&format!("v{i}")), i)
                    .unwrap()
                    .accepted[0]
                    .clone()
            })
            .collect()
    };
    std::fs::remove_dir_all(&path).unwrap();
    let store = Store::open(&path).unwrap();
    let author = published[0].author();
    assert_eq!(store.own_feed_behind(&author).unwrap(), Some((0, 2)));
    assert!(matches!(
        store.publish(&k, &about("fork"), 3),
        Err(potluck::store::StoreError::OwnFeedBehind {
            holds: 0,
            published: 2,
            ..
        })
    ));
    assert_eq!(store.head(&author).unwrap(), None, "nothing was published");
    store.ingest(published.clone()).unwrap();
    assert_eq!(store.own_feed_behind(&author).unwrap(), None);
    let next = store.publish(&k, &about("next"), 3).unwrap().accepted[0].clone();
    assert_eq!(next.sequence(), 3);
    assert_eq!(next.header().previous, published[1].id());
}

/// A mark written before the store exists (an imported key: at least one
/// message) holds for the store opened after it, and never lowers a
/// mark that is higher.
#[test]
fn a_mark_written_before_the_store_is_opened_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let k = key(10);
    let author = potluck::feed::message::FeedId(k.verifying_key().to_bytes());
    Store::mark_published_before_open(&path, author, 3).unwrap();
    Store::mark_published_before_open(&path, author, 1).unwrap();
    assert!(!path.exists(), "no store is made");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.own_feed_behind(&author).unwrap(), Some((0, 3)));
    assert!(matches!(
        store.publish(&k, &about("fork"), 1),
        Err(potluck::store::StoreError::OwnFeedBehind { published: 3, .. })
    ));
}

#[test]
fn published_messages_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let k = key(6);
    let ids: Vec<MessageId> = {
        let store = Store::open(&path).unwrap();
        (0..5)
            .map(|i| {
                store
                    .publish(&k, &about(&format!("n{i}")), i)
                    .unwrap()
                    .accepted[0]
                    .id()
            })
            .collect()
    };
    let store = Store::open(&path).unwrap();
    for id in &ids {
        assert!(store.message(id).unwrap().is_some());
    }
    assert_eq!(
        store
            .about(&potluck::feed::message::FeedId(
                k.verifying_key().to_bytes()
            ))
            .unwrap()
            .unwrap()
            .name,
        "n4"
    );
    assert!(store.fsck().unwrap().problems.is_empty());
}

#[test]
fn fsck_finds_a_damaged_index_and_reindex_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let k = key(7);
    {
        let store = Store::open(&path).unwrap();
        let event = Event::new(
            "Soup night",
            EventTime::parse("start", "2030-01-01T18:00:00Z").unwrap(),
        );
        let e = store.publish(&k, &event.to_content_bytes(), 1).unwrap();
        let rsvp = Rsvp {
            event: e.accepted[0].id(),
            status: RsvpStatus::Going,
            guests: 1,
            note: None,
            revision: None,
        };
        store.publish(&k, &rsvp.to_content_bytes(), 2).unwrap();
        assert!(store.fsck().unwrap().problems.is_empty());
    }
    // Damage the tally behind the store's back, through sled directly.
    {
        let (db, tree) = common::raw_tree(&path);
        // The tally is kept after the chain head of the event's answers
        // (28 bytes), in sled under `J r event`.
        let (head_key, head) = tree.scan_prefix([b'J', b'r']).next().unwrap().unwrap();
        // A plausible, well-formed tally that the logs do not support.
        use potluck::store::index::{IndexValue, Tally};
        let wrong = Tally {
            going: 9,
            maybe: 0,
            not_going: 0,
            headcount: 9,
        };
        let mut damaged = head[..28].to_vec();
        damaged.extend_from_slice(&wrong.encode());
        tree.insert(head_key, damaged).unwrap();
        tree.insert(b"n-stray", b"{}".to_vec()).unwrap();
        db.flush().unwrap();
    }
    // Opened only to be checked (a small cache, as `potluck fsck` opens
    // it), the store's damage is found all the same.
    let checked = Store::open_to_check(&path).unwrap();
    let report = checked.fsck().unwrap();
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    drop(checked);
    let store = Store::open(&path).unwrap();
    let report = store.fsck().unwrap();
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    store.reindex().unwrap();
    assert!(store.fsck().unwrap().problems.is_empty());
    let events = store.all_events().unwrap();
    assert_eq!(store.tally(&events[0].id).unwrap().headcount, 2);
}

/// A store whose indexes were made by a potluck that did not keep events'
/// `unlisted` mark (index revision 0) rebuilds them once on open: else a
/// hub's public pages would list an event its organizer marked unlisted.
#[test]
fn indexes_of_an_older_revision_are_rebuilt_once_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let k = key(8);
    let id = {
        let store = Store::open(&path).unwrap();
        let mut event = Event::new(
            "Quiet dinner",
            EventTime::parse("start", "2030-01-01T18:00:00Z").unwrap(),
        );
        event.unlisted = true;
        let e = store.publish(&k, &event.to_content_bytes(), 1).unwrap();
        e.accepted[0].id()
    };
    // What an older potluck left: the event indexed without the mark, and
    // no revision.
    {
        let (db, tree) = common::raw_tree(&path);
        assert_eq!(
            tree.get(b"Mindex_revision").unwrap().as_deref(),
            Some(&[4u8][..]),
            "a new store starts at the current revision"
        );
        let (key, value) = tree.scan_prefix([b'e']).next().unwrap().unwrap();
        let mut state: serde_json::Value = serde_json::from_slice(&value).unwrap();
        let fields = state["event"].as_object_mut().expect("the event's fields");
        assert_eq!(
            fields.remove("unlisted"),
            Some(serde_json::Value::Bool(true))
        );
        tree.insert(key, serde_json::to_vec(&state).unwrap())
            .unwrap();
        tree.remove(b"Mindex_revision").unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(&path).unwrap();
    let state = store.event(&id).unwrap().expect("the event");
    assert!(state.event.unlisted, "the rebuilt index has the mark again");
    assert!(store.fsck().unwrap().problems.is_empty());
    drop(store);
    let (_db, tree) = common::raw_tree(&path);
    assert_eq!(
        tree.get(b"Mindex_revision").unwrap().as_deref(),
        Some(&[4u8][..]),
        "rebuilt once: the revision is current"
    );
}

#[test]
fn an_unindexed_tail_of_the_message_log_is_dropped_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let k = key(1);
    let msgs = chain(&k, 6, "t");
    {
        let store = Store::open(&path).unwrap();
        store.ingest(msgs[..3].to_vec()).unwrap();
    }
    // What a crash between writing the log and applying the index leaves:
    // records in the file that no index entry points at.
    let log = path.join("messages.log");
    let committed = std::fs::metadata(&log).unwrap().len();
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend_from_slice(&[0, 0, 1, 0]);
    bytes.extend_from_slice(&[0xAB; 300]);
    std::fs::write(&log, &bytes).unwrap();

    let store = Store::open(&path).unwrap();
    assert_eq!(std::fs::metadata(&log).unwrap().len(), committed);
    let report = store.ingest(msgs[3..].to_vec()).unwrap();
    assert_eq!(report.accepted.len(), 3);
    for m in &msgs {
        assert_eq!(store.message(&m.id()).unwrap().as_ref(), Some(m));
    }
    assert!(store.fsck().unwrap().problems.is_empty());
}

#[test]
fn a_shortened_message_log_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let store = Store::open(&path).unwrap();
        store.ingest(chain(&key(1), 3, "s")).unwrap();
    }
    let log = path.join("messages.log");
    let len = std::fs::metadata(&log).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    file.set_len(len - 10).unwrap();
    drop(file);
    let err = Store::open(&path)
        .err()
        .expect("a shortened log must not open");
    let text = err.to_string();
    assert!(text.contains("messages.log"), "{text}");
    assert!(text.contains("damaged or replaced"), "{text}");
}

/// A store of 40 feeds of 25 messages each, closed and opened again (an
/// open may write sled's own upkeep), with its directory.
fn a_closed_and_reopened_store() -> (tempfile::TempDir, std::path::PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        let store = Store::open(&path).unwrap();
        for k in 0..40u8 {
            let feed = chain(&key(k.wrapping_add(100)), 25, "scratch");
            assert_eq!(store.ingest(feed).unwrap().accepted.len(), 25);
        }
    }
    let store = Store::open(&path).unwrap();
    (dir, path, store)
}

/// `fsck` and `repair` rebuild the indexes into a sled database of their
/// own: `fsck` does not write the store's sled file at all (a scratch tree
/// in it left free segments that sled overwrites at every later open),
/// and neither leaves a scratch behind.
#[test]
fn a_check_writes_nothing_into_the_stores_own_sled_and_leaves_no_scratch() {
    let (_dir, path, store) = a_closed_and_reopened_store();
    let sled_file = || std::fs::read(path.join("db")).unwrap();
    let before = sled_file();
    for _ in 0..2 {
        let report = store.fsck().unwrap();
        assert_eq!(report.problems, Vec::<String>::new());
        assert_eq!(report.messages, 1_000);
    }
    assert!(sled_file() == before, "a check wrote into the store's sled");
    // A repair rebuilds the indexes in place (so writes the store's sled),
    // after looking for damage through the same scratch.
    assert!(store.repair().unwrap().cut.is_empty());
    for left in ["fsck-scratch", "groups-scratch.log"] {
        assert!(!path.join(left).exists(), "{left} was left behind");
    }
}

/// What a check killed midway leaves (its scratch database, and from
/// earlier versions a scratch tree inside the store's sled) is removed by
/// the next check, which is clean.
#[test]
fn the_scratch_of_a_killed_check_is_removed_by_the_next() {
    let (_dir, path, store) = a_closed_and_reopened_store();
    drop(store);
    {
        let (db, _tree) = common::raw_tree(&path);
        let earlier = db.open_tree("fsck-scratch").unwrap();
        earlier.insert(b"e-left-over", b"junk").unwrap();
        db.flush().unwrap();
    }
    {
        let scratch = sled::Config::new()
            .path(path.join("fsck-scratch"))
            .open()
            .unwrap();
        scratch.insert(b"e-left-over", b"junk").unwrap();
        scratch.flush().unwrap();
    }
    std::fs::write(path.join("groups-scratch.log"), b"torn").unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.fsck().unwrap().problems, Vec::<String>::new());
    drop(store);
    assert!(!path.join("fsck-scratch").exists());
    assert!(!path.join("groups-scratch.log").exists());
    let (db, _tree) = common::raw_tree(&path);
    let names: Vec<Vec<u8>> = db.tree_names().iter().map(|n| n.to_vec()).collect();
    assert!(
        !names.contains(&b"fsck-scratch".to_vec()),
        "the earlier scratch tree is still there"
    );
}

/// A store made before the segment size changed (its sled files with
/// 8 MiB segments) opens with them, takes messages, reopens and checks
/// clean, and keeps its segment size: sled cannot change it.
#[test]
fn a_store_with_the_earlier_sled_segment_size_works_and_keeps_it() {
    use potluck::store::{EARLIER_SLED_SEGMENT_SIZE, segment_size_of};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(
        sled::Config::new()
            .path(&path)
            .segment_size(EARLIER_SLED_SEGMENT_SIZE)
            .open()
            .unwrap(),
    );
    let feed = chain(&key(4), 30, "e");
    {
        let store = Store::open(&path).unwrap();
        let report = store.ingest(feed[..20].to_vec()).unwrap();
        assert_eq!(report.accepted.len(), 20);
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.head(&feed[0].author()).unwrap().unwrap().sequence, 20);
    assert_eq!(
        store.ingest(feed[20..].to_vec()).unwrap().accepted.len(),
        10
    );
    assert_eq!(store.fsck().unwrap().problems, Vec::<String>::new());
    drop(store);
    assert_eq!(segment_size_of(&path), EARLIER_SLED_SEGMENT_SIZE);
}

#[test]
fn a_store_of_an_older_format_is_refused_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    {
        // Format 1 kept message bytes in sled (with sled's default
        // segment size) and had no format mark.
        let db = sled::open(&path).unwrap();
        let tree = db.open_tree("potluck").unwrap();
        let mut key = vec![b'L'];
        key.extend_from_slice(&[1; 40]);
        tree.insert(key, vec![0; 200]).unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(&path)
        .err()
        .expect("an old store must not open");
    assert!(err.to_string().contains("format 1"), "{err}");
}

/// Many threads ingest at once (what group commit gathers): each its own
/// feed, and all of them the same shared feed. Every message is stored
/// exactly once, each batch's report counts it once, and fsck is clean.
#[test]
fn concurrent_ingests_store_every_message_once() {
    let (_dir, store) = open_store();
    let store = std::sync::Arc::new(store);
    let shared = chain(&key(100), 60, "s");
    let threads: Vec<_> = (0..6u8)
        .map(|t| {
            let store = store.clone();
            let shared = shared.clone();
            std::thread::spawn(move || {
                let own = chain(&key(t + 1), 40, "o");
                let (mut accepted_shared, mut duplicates) = (0, 0);
                for i in 0..10 {
                    let mut batch = own[i * 4..i * 4 + 4].to_vec();
                    batch.extend_from_slice(&shared[i * 6..i * 6 + 6]);
                    let report = store.ingest(batch).unwrap();
                    assert!(report.rejected.is_none(), "{:?}", report.rejected);
                    accepted_shared += report
                        .accepted
                        .iter()
                        .filter(|m| m.author() == shared[0].author())
                        .count();
                    duplicates += report.duplicates;
                }
                (accepted_shared, duplicates)
            })
        })
        .collect();
    let (mut accepted, mut duplicates) = (0, 0);
    for t in threads {
        let (a, d) = t.join().unwrap();
        accepted += a;
        duplicates += d;
    }
    assert_eq!(accepted, 60);
    assert_eq!(duplicates, 60 * 5);
    for t in 0..6u8 {
        let feed = potluck::feed::message::FeedId(key(t + 1).verifying_key().to_bytes());
        assert_eq!(store.head(&feed).unwrap().unwrap().sequence, 40);
    }
    let held: Vec<Message> = store
        .feed_messages(&shared[0].author(), 1)
        .map(Result::unwrap)
        .collect();
    assert_eq!(held, shared);
    assert!(store.fsck().unwrap().problems.is_empty());
}

/// The records of the message log at `path`: (offset of the message
/// bytes, their length), in order.
fn log_records(path: &std::path::Path) -> Vec<(u64, usize)> {
    let log = std::fs::read(path).unwrap();
    let mut records = Vec::new();
    let mut at = 0;
    while at + 4 <= log.len() {
        let len = u32::from_be_bytes(log[at..at + 4].try_into().unwrap()) as usize;
        records.push((at as u64 + 4, len));
        at += 4 + len;
    }
    assert_eq!(at, log.len(), "the log is whole records");
    records
}

/// Reading a feed ahead (a run of position entries, then a run of
/// records, each with one read) gives what reading each message alone
/// gives, for any range: feeds whose records follow each other in the
/// log and feeds whose records are spread between others', longer and
/// shorter than one read ahead, ranges that start or end anywhere.
#[test]
fn a_feed_read_ahead_gives_what_each_message_read_alone_gives() {
    let (_dir, store) = open_store();
    let (a, b, c) = (key(1), key(2), key(3));
    let a_all = chain(&a, 180, "a");
    let (b_all, c_all) = (chain(&b, 70, "b"), chain(&c, 70, "c"));
    // A's first 150 in one run; B and C one message each in turn; the
    // rest of A after them.
    store.ingest(a_all[..150].to_vec()).unwrap();
    for (mb, mc) in b_all.iter().zip(&c_all) {
        store.ingest(vec![mb.clone(), mc.clone()]).unwrap();
    }
    store.ingest(a_all[150..].to_vec()).unwrap();
    let ranges = [
        (1, u64::MAX),
        (0, 3),
        (1, 1),
        (5, 70),
        (63, 66),
        (64, 65),
        (100, 400),
        (150, 151),
        (181, 200),
        (7, 6),
    ];
    for (feed, msgs) in [(&a, &a_all), (&b, &b_all), (&c, &c_all)] {
        let author = msgs[0].author();
        for (first, last) in ranges {
            let ahead: Vec<Message> = store
                .feed_range(&author, first, last)
                .collect::<Result<_, _>>()
                .unwrap();
            let held = msgs.len() as u64;
            let alone: Vec<Message> = (first.max(1)..=last.min(held))
                .map(|s| store.feed_message(&author, s).unwrap().unwrap())
                .collect();
            assert_eq!(
                ahead,
                alone,
                "{first}..={last} of {:?}",
                feed.verifying_key()
            );
            let expected: Vec<Message> = msgs
                .iter()
                .filter(|m| (first..=last).contains(&m.sequence()))
                .cloned()
                .collect();
            assert_eq!(ahead, expected);
        }
    }
}

/// A damaged record in the middle of a run read ahead is a `Damaged` item
/// for its own sequence, with the reason reading it alone gives, and the
/// messages around it are still read: a changed byte of its content, and
/// a changed length prefix (the run can then not be read at once).
#[test]
fn a_damaged_record_read_ahead_is_named_and_the_rest_still_read() {
    use std::os::unix::fs::FileExt;
    for (what, reason) in [
        ("content", "its content does not match its hash"),
        ("length", "no whole record where the index points"),
    ] {
        let (dir, store) = open_store();
        let msgs = chain(&key(1), 100, "a");
        let author = msgs[0].author();
        store.ingest(msgs.clone()).unwrap();
        let path = dir.path().join("store").join("messages.log");
        let (offset, len) = log_records(&path)[39];
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let at = match what {
            "content" => offset + len as u64 - 3,
            _ => offset - 1,
        };
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, at).unwrap();
        file.write_all_at(&[byte[0] ^ 0x01], at).unwrap();
        let items: Vec<_> = store.feed_range(&author, 1, 100).collect();
        assert_eq!(items.len(), 100, "{what}");
        for (i, item) in items.iter().enumerate() {
            match item {
                Ok(m) => assert_eq!(m, &msgs[i], "{what}"),
                Err(potluck::store::StoreError::Damaged {
                    sequence,
                    reason: why,
                    ..
                }) => {
                    assert_eq!((*sequence, why.as_str()), (40, reason), "{what}");
                    assert_eq!(i, 39);
                }
                Err(e) => panic!("{what}: {e}"),
            }
        }
        assert!(items[39].is_err(), "{what}: the damage is found");
        // Alone, the same answer.
        let alone = store.feed_message(&author, 40).unwrap_err().to_string();
        assert_eq!(alone, items[39].as_ref().unwrap_err().to_string(), "{what}");
    }
}
