//! The store's files (format 4): the position index beside the message
//! log, made again when it is lost, damaged or behind; checked by fsck and
//! remade by reindex; and the upgrades of format-2 and format-3 stores on
//! open.

mod common;

use std::path::Path;

use ed25519_dalek::SigningKey;
use potluck::content::{Contact, Event, EventTime, KnownContent, Rsvp, RsvpStatus};
use potluck::feed::message::{FeedId, Message, MessageId};
use potluck::store::Store;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn feed(n: u8) -> FeedId {
    FeedId(key(n).verifying_key().to_bytes())
}

/// A chain of `n` `about` messages by `key`, starting at sequence 1.
fn chain(key: &SigningKey, n: u64) -> Vec<Message> {
    let mut prev = MessageId::default();
    (1..=n)
        .map(|seq| {
            let body = format!(r#"{{"type":"about","name":"n{seq}"}}"#);
            let m = Message::sign(key, seq, prev, seq as i64, body.as_bytes()).unwrap();
            prev = m.id();
            m
        })
        .collect()
}

/// Three feeds of 30 messages, ingested in batches of 9 with the position
/// file written every 10 entries, so that it holds some and misses some.
fn filled_store(path: &Path) -> Vec<Message> {
    let store = Store::open(path).unwrap();
    store.set_positions_sync_every(10);
    let mut all = Vec::new();
    for n in 1..=3 {
        all.extend(chain(&key(n), 30));
    }
    // Interleave the feeds, each in order.
    all.sort_by_key(|m| (m.sequence(), m.author().0));
    for batch in all.chunks(9) {
        let report = store.ingest(batch.to_vec()).unwrap();
        assert_eq!(report.accepted.len(), batch.len());
    }
    all
}

/// Every message is where it should be, by feed and by id, and fsck is
/// clean.
fn assert_holds(store: &Store, all: &[Message]) {
    for n in 1..=3 {
        let held: Vec<Message> = store
            .feed_messages(&feed(n), 1)
            .map(Result::unwrap)
            .collect();
        let want: Vec<&Message> = all.iter().filter(|m| m.author() == feed(n)).collect();
        assert_eq!(held.iter().collect::<Vec<_>>(), want);
    }
    for m in all.iter().step_by(7) {
        assert_eq!(store.message(&m.id()).unwrap().as_ref(), Some(m));
    }
    let report = store.fsck().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

fn idx(path: &Path) -> std::path::PathBuf {
    path.join("messages.idx")
}

#[test]
fn a_closed_store_reads_its_positions_back_and_writes_nothing_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let all = filled_store(&path);
    // Closing wrote every entry.
    assert_eq!(std::fs::metadata(idx(&path)).unwrap().len(), 90 * 64);
    let before = std::fs::read(idx(&path)).unwrap();
    {
        let store = Store::open(&path).unwrap();
        assert_holds(&store, &all);
    }
    assert_eq!(std::fs::read(idx(&path)).unwrap(), before);
}

#[test]
fn a_lost_or_garbled_position_file_is_made_again_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let all = filled_store(&path);
    let good = std::fs::read(idx(&path)).unwrap();

    std::fs::remove_file(idx(&path)).unwrap();
    {
        let store = Store::open(&path).unwrap();
        assert_holds(&store, &all);
    }
    assert_eq!(std::fs::read(idx(&path)).unwrap(), good);

    // An entry that is not one (its reserved bytes set).
    let mut garbled = good.clone();
    garbled[64 * 5 + 13] = 0xff;
    std::fs::write(idx(&path), &garbled).unwrap();
    {
        let store = Store::open(&path).unwrap();
        assert_holds(&store, &all);
    }
    assert_eq!(std::fs::read(idx(&path)).unwrap(), good);

    // Cut short (a file from before the last sync).
    std::fs::write(idx(&path), &good[..64 * 20]).unwrap();
    let store = Store::open(&path).unwrap();
    assert_holds(&store, &all);
}

#[test]
fn fsck_finds_a_position_entry_that_points_elsewhere_and_reindex_mends_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let all = filled_store(&path);
    // Entry 4 now points at record 3's bytes: a well-formed entry, wrong.
    let mut file = std::fs::read(idx(&path)).unwrap();
    let record3: [u8; 12] = file[64 * 3..64 * 3 + 12].try_into().unwrap();
    file[64 * 4..64 * 4 + 12].copy_from_slice(&record3);
    std::fs::write(idx(&path), &file).unwrap();

    let store = Store::open(&path).unwrap();
    let report = store.fsck().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("position index differs from the message log")),
        "{:?}",
        report.problems
    );
    store.reindex().unwrap();
    assert_holds(&store, &all);
}

#[test]
fn a_store_killed_between_position_writes_makes_the_rest_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let all = filled_store(&path);
    // What a crash leaves: the file as of an earlier commit, and sled
    // saying it holds more than that only if that write landed.
    let good = std::fs::read(idx(&path)).unwrap();
    std::fs::write(idx(&path), &good[..64 * 27]).unwrap();
    {
        let store = Store::open(&path).unwrap();
        assert_holds(&store, &all);
        // And it goes on from there.
        store.ingest(chain(&key(4), 5)).unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.head(&feed(4)).unwrap().unwrap().sequence, 5);
    assert_holds(&store, &all);
}

/// Key 9's first message: an event, "Soup night".
fn soup_night() -> Message {
    let event = Event::new(
        "Soup night",
        EventTime::parse("start", "2030-01-01T18:00:00Z").unwrap(),
    );
    Message::sign(
        &key(9),
        1,
        MessageId::default(),
        1,
        &event.to_content_bytes(),
    )
    .unwrap()
}

#[test]
fn a_format_2_store_is_upgraded_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let announce = soup_night();
    let mut all = chain(&key(1), 4);
    all.push(announce.clone());
    // Format 2: messages in the log, and in sled `L` author ‖ sequence
    // and `I` id → location, `H` heads, `M` meta; plus an index entry of
    // the old encoding, which the upgrade replaces.
    let mut stray = vec![b'n'];
    stray.extend_from_slice(&feed(1).0);
    common::format2::write_store(&path, &all, &[(stray, br#"{"name":"old"}"#.to_vec())]);
    {
        let store = Store::open(&path).unwrap();
        for m in &all {
            assert_eq!(store.message(&m.id()).unwrap().as_ref(), Some(m));
        }
        assert_eq!(
            store.feed_messages(&feed(1), 1).count(),
            4,
            "the feed reads back in order"
        );
        assert_eq!(store.about(&feed(1)).unwrap().unwrap().name, "n4");
        assert!(store.event(&announce.id()).unwrap().is_some());
        let report = store.fsck().unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        store.ingest(chain(&key(2), 2)).unwrap();
    }
    // Upgraded once: the old per-message keys are gone and it reopens as
    // format 4.
    {
        let (_db, tree) = common::raw_tree(&path);
        assert_eq!(tree.get(b"Mformat").unwrap().unwrap().as_ref(), &[4]);
        assert!(tree.scan_prefix([b'L']).next().is_none());
        assert!(tree.scan_prefix([b'I']).next().is_none());
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.head(&feed(2)).unwrap().unwrap().sequence, 2);
    assert!(store.fsck().unwrap().problems.is_empty());
}

#[test]
fn a_format_3_store_is_upgraded_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let announce = soup_night();
    let mut all = vec![announce.clone()];
    // Ten guests (keys 11 to 20) answer; the first follows the organizer.
    for n in 1..=10u8 {
        let rsvp = Rsvp {
            event: announce.id(),
            status: if n % 3 == 0 {
                RsvpStatus::Maybe
            } else {
                RsvpStatus::Going
            },
            guests: 0,
            note: None,
            revision: None,
        };
        all.push(
            Message::sign(
                &key(10 + n),
                1,
                MessageId::default(),
                2,
                &rsvp.to_content_bytes(),
            )
            .unwrap(),
        );
    }
    let follow = Contact {
        contact: feed(9),
        following: true,
        blocking: false,
    };
    let second = Message::sign(&key(11), 2, all[1].id(), 3, &follow.to_content_bytes()).unwrap();
    all.push(second);
    let in_sled = common::format3::write_store(&path, &all);
    assert_eq!(
        in_sled, 11,
        "ten RSVPs and a contact, as format 3 kept them"
    );
    {
        let store = Store::open(&path).unwrap();
        let rsvps = store.rsvps(&announce.id()).unwrap();
        assert_eq!(rsvps.len(), 10);
        assert_eq!(store.tally(&announce.id()).unwrap().going, 7);
        assert_eq!(store.contacts(&feed(11)).unwrap().len(), 1);
        let report = store.fsck().unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
    // Upgraded once: sled holds no grouped entry any more, only a chain
    // head per group, and the store reopens as format 4.
    {
        let (_db, tree) = common::raw_tree(&path);
        assert_eq!(tree.get(b"Mformat").unwrap().unwrap().as_ref(), &[4]);
        for p in [b'r', b'q', b'a', b'c'] {
            assert!(tree.scan_prefix([p]).next().is_none(), "{}", p as char);
        }
        assert_eq!(
            tree.scan_prefix([b'J']).count(),
            12,
            "the event's answers, each guest's answers, the first guest's contacts"
        );
        assert!(tree.get(b"Mreindexing").unwrap().is_none());
    }
    assert!(path.join("groups.log").metadata().unwrap().len() > 0);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.rsvps(&announce.id()).unwrap().len(), 10);
    assert!(store.fsck().unwrap().problems.is_empty());
}

/// Three events, each answered by eight guests (some bringing one, some
/// changing their answer), in feed order.
fn three_answered_events() -> (Vec<Message>, Vec<MessageId>) {
    let start = EventTime::parse("start", "2030-01-01T18:00:00Z").unwrap();
    let mut all = Vec::new();
    let mut events = Vec::new();
    for organizer in 1..=3u8 {
        let event = Event::new(format!("Supper {organizer}"), start.clone());
        let msg = Message::sign(
            &key(organizer),
            1,
            MessageId::default(),
            1,
            &event.to_content_bytes(),
        )
        .unwrap();
        events.push(msg.id());
        all.push(msg);
    }
    for guest in 11..=18u8 {
        let mut previous = MessageId::default();
        let mut sequence = 0;
        for (i, event) in events.iter().enumerate() {
            // Guests 11 and 12 answer the first event twice: the tally
            // counts their second answer only.
            let answers = if i == 0 && guest <= 12 { 2 } else { 1 };
            for again in 0..answers {
                let rsvp = Rsvp {
                    event: *event,
                    status: if (usize::from(guest) + i + again) % 3 == 0 {
                        RsvpStatus::Maybe
                    } else {
                        RsvpStatus::Going
                    },
                    guests: u32::from(guest % 2),
                    note: None,
                    revision: None,
                };
                sequence += 1;
                let msg =
                    Message::sign(&key(guest), sequence, previous, 2, &rsvp.to_content_bytes())
                        .unwrap();
                previous = msg.id();
                all.push(msg);
            }
        }
    }
    (all, events)
}

#[test]
fn a_store_of_index_revision_3_moves_its_tallies_into_the_heads_of_the_answers_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (all, events) = three_answered_events();
    // What the current store indexes from the same messages.
    let (expected, tallies) = {
        let store = Store::open(&dir.path().join("current")).unwrap();
        store.ingest(all.clone()).unwrap();
        let tallies: Vec<_> = events.iter().map(|e| store.tally(e).unwrap()).collect();
        (store.index_snapshot().unwrap(), tallies)
    };
    assert_eq!(tallies[0].going + tallies[0].maybe, 8, "{tallies:?}");

    let path = dir.path().join("store");
    assert_eq!(common::format3::write_revision3_store(&path, &all), 3);
    let groups_written = std::fs::metadata(path.join("groups.log"))
        .unwrap()
        .modified()
        .unwrap();
    {
        // One tally already moved, as a move killed after its first
        // batch leaves the store: the open moves the other two.
        let (db, tree) = common::raw_tree(&path);
        assert_eq!(tree.scan_prefix([b't']).count(), 3, "a key per tally");
        let (tally_key, tally) = tree.scan_prefix([b't']).next().unwrap().unwrap();
        let mut head_key = vec![b'J', b'r'];
        head_key.extend_from_slice(&tally_key[1..]);
        let mut head = tree.get(&head_key).unwrap().unwrap().to_vec();
        head.extend_from_slice(&tally);
        tree.insert(head_key, head).unwrap();
        tree.remove(tally_key).unwrap();
        // And a tally of an event nobody answered, which no index rule
        // writes: dropped by the move, not kept as a stray key.
        let mut orphan = vec![b't'];
        orphan.extend_from_slice(&[0x55; 32]);
        tree.insert(orphan, tally.to_vec()).unwrap();
        db.flush().unwrap();
    }
    {
        let store = Store::open(&path).unwrap();
        let moved: Vec<_> = events.iter().map(|e| store.tally(e).unwrap()).collect();
        assert_eq!(moved, tallies);
        assert_eq!(store.index_snapshot().unwrap(), expected);
        let report = store.fsck().unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
    // Moved once, without a rebuild: no tally key in sled any more, the
    // revision is 4, and `groups.log` is the one the store wrote.
    let groups_now = std::fs::metadata(path.join("groups.log"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(groups_now, groups_written, "groups.log was written again");
    {
        let (_db, tree) = common::raw_tree(&path);
        assert!(tree.scan_prefix([b't']).next().is_none());
        assert_eq!(
            tree.get(b"Mindex_revision").unwrap().unwrap().as_ref(),
            &[4]
        );
        for item in tree.scan_prefix([b'J', b'r']) {
            let (_, head) = item.unwrap();
            assert_eq!(head.len(), 28 + 32, "a chain head and a tally");
        }
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.index_snapshot().unwrap(), expected);
}

#[test]
fn an_interrupted_index_rebuild_is_finished_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let all = filled_store(&path);
    let before = {
        let store = Store::open(&path).unwrap();
        store.index_snapshot().unwrap()
    };
    assert!(!before.is_empty());
    // What a crash in the middle of a rebuild leaves: the mark, and only
    // some of the index entries.
    {
        let (db, tree) = common::raw_tree(&path);
        for key in before.keys().step_by(2) {
            tree.remove(key).unwrap();
        }
        tree.insert(b"Mreindexing", vec![1]).unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.index_snapshot().unwrap(), before);
    assert_holds(&store, &all);
}

/// One feed of 30 messages in batches of 9; returns them.
fn one_feed_store(path: &Path) -> Vec<Message> {
    let store = Store::open(path).unwrap();
    let all = chain(&key(1), 30);
    for batch in all.chunks(9) {
        store.ingest(batch.to_vec()).unwrap();
    }
    all
}

/// Where entry `i` of the position file says its message is.
fn entry_location(path: &Path, i: usize) -> (usize, usize) {
    let idx = std::fs::read(idx(path)).unwrap();
    let e = 64 * i;
    let offset = u64::from_be_bytes(idx[e..e + 8].try_into().unwrap()) as usize;
    let len = u32::from_be_bytes(idx[e + 8..e + 12].try_into().unwrap()) as usize;
    (offset, len)
}

fn set_durable_positions(path: &Path, n: u64) {
    let (db, tree) = common::raw_tree(path);
    tree.insert(b"Mpositions", &n.to_be_bytes()).unwrap();
    db.flush().unwrap();
}

#[test]
fn a_last_durable_entry_that_does_not_match_its_record_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let all = one_feed_store(&path);
    let feed1: Vec<Message> = all.clone();
    // A flipped bit in the length of the last durable entry (as after a
    // crash, sled says 20 are durable; the rest come from the log), then
    // an offset near the end of the number range.
    set_durable_positions(&path, 20);
    let good = std::fs::read(idx(&path)).unwrap();
    let mut flipped = good.clone();
    flipped[64 * 19 + 11] ^= 0x04;
    let mut far = good.clone();
    let last = far.len() - 64;
    far[last..last + 8].copy_from_slice(&(u64::MAX - 8).to_be_bytes());
    for damaged in [flipped, far] {
        std::fs::write(idx(&path), &damaged).unwrap();
        let store = Store::open(&path).unwrap();
        let held: Vec<Message> = store
            .feed_messages(&feed(1), 1)
            .map(Result::unwrap)
            .collect();
        assert_eq!(held, feed1);
        assert!(store.fsck().unwrap().problems.is_empty());
    }
}

#[test]
fn a_damaged_length_in_the_log_is_found_by_fsck_and_cut_by_repair() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    one_feed_store(&path);
    // Record 5 (message #6) loses its length prefix.
    let (offset, _) = entry_location(&path, 5);
    let mut log = std::fs::read(path.join("messages.log")).unwrap();
    log[offset - 4..offset].copy_from_slice(&0u32.to_be_bytes());
    std::fs::write(path.join("messages.log"), &log).unwrap();
    let store = Store::open(&path).unwrap();
    let report = store.fsck().unwrap();
    assert_eq!(
        report.damaged.get(&feed(1)),
        Some(&6),
        "{:?}",
        report.problems
    );
    let repaired = store.repair().unwrap();
    assert_eq!(repaired.cut, vec![(feed(1), 6, 30)]);
    let after = store.fsck().unwrap();
    assert!(after.problems.is_empty(), "{:?}", after.problems);
    assert_eq!(after.refetching, vec![(feed(1), 5, 30)]);
    assert_eq!(store.head(&feed(1)).unwrap().unwrap().sequence, 5);
}

#[test]
fn reindex_over_a_damaged_message_indexes_what_it_can_and_repair_cuts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    one_feed_store(&path);
    // A byte of message #10's content changed on disk.
    let (offset, len) = entry_location(&path, 9);
    let mut log = std::fs::read(path.join("messages.log")).unwrap();
    log[offset + len - 3] ^= 0x01;
    std::fs::write(path.join("messages.log"), &log).unwrap();
    {
        let store = Store::open(&path).unwrap();
        store.reindex().unwrap();
        // Indexed up to the damage.
        assert_eq!(store.about(&feed(1)).unwrap().unwrap().name, "n9");
    }
    let store = Store::open(&path).expect("opens after the reindex");
    let report = store.fsck().unwrap();
    assert_eq!(report.damaged.get(&feed(1)), Some(&10));
    store.repair().unwrap();
    assert!(store.fsck().unwrap().problems.is_empty());
    assert_eq!(store.head(&feed(1)).unwrap().unwrap().sequence, 9);
}

/// A person running any command on a home whose store is of format 2 is
/// told why it waits, once; the command then works on the upgraded store.
#[test]
fn the_command_line_says_when_it_upgrades_a_store() {
    let sandbox = common::sandbox::Sandbox::new();
    let home = sandbox.home("ana");
    let init = sandbox.run(&home, &["init"]);
    assert!(init.status.success(), "{}", init.stderr);
    let store = home.join("store");
    std::fs::remove_dir_all(&store).unwrap();
    common::format2::write_store(&store, &chain(&key(3), 3), &[]);

    let first = sandbox.run(&home, &["whoami"]);
    assert!(first.status.success(), "{}", first.stderr);
    assert!(
        first
            .stderr
            .contains("upgrading the store from format 2 to 4"),
        "{}",
        first.stderr
    );
    let again = sandbox.run(&home, &["fsck"]);
    assert!(again.status.success(), "{}", again.stderr);
    assert!(!again.stderr.contains("upgrading"), "{}", again.stderr);
    assert!(again.stdout.contains("3 messages"), "{}", again.stdout);
}

/// sled's settings file damaged before the store wrote its first message
/// (say, torn by a crash as the store was made): the store is damaged, and
/// the rebuild from the log, of which there is none yet, makes it anew.
#[test]
fn a_store_damaged_before_it_had_a_log_is_rebuilt_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(Store::open(&path).unwrap());
    std::fs::remove_file(path.join("messages.log")).unwrap();
    let conf = path.join("conf");
    let mut bytes = std::fs::read(&conf).unwrap();
    bytes[0] ^= 0x80;
    std::fs::write(&conf, &bytes).unwrap();
    assert!(matches!(
        Store::open(&path),
        Err(potluck::store::StoreError::DatabaseDamaged { .. })
    ));

    let rebuilt = Store::rebuild_from_log(&path, 1).unwrap();
    assert_eq!((rebuilt.restored, rebuilt.skipped), (0, 0));
    assert_eq!(std::fs::read(rebuilt.moved_to.join("conf")).unwrap(), bytes);
    let store = Store::open(&path).unwrap();
    assert!(store.feeds().unwrap().is_empty());
    assert_eq!(store.fsck().unwrap().problems, Vec::<String>::new());
}
