//! Storage faults: the message log's file is replaced by one that tears
//! writes, fails them with `ENOSPC` or `EIO`, fails syncs, and loses
//! everything written since the last successful sync in a simulated
//! crash. After each fault the store must open (with the real file),
//! pass `fsck`, and hold every message a publish or ingest reported as
//! stored; a full disk must be a clear error that damages nothing.
//!
//! The faulty file models the page cache and the disk apart: reads see
//! every write, a crash keeps only what a successful sync covered (plus,
//! when asked, the first bytes of an unsynced write: a torn write). A
//! failed sync drops what it should have written, and a later successful
//! sync does not bring it back, as Linux does (PostgreSQL's "fsyncgate"):
//! a store that retried a failed sync and counted the batch would lose it
//! here.
//!
//! sled's own files are not behind the trait. The faults are in the
//! message log, the file whose bytes are the messages, and (in the seeded
//! mix) in `groups.log`, the file of the RSVP, admission and contact
//! entries: the foreign feed's messages alternate names and follows, so
//! that most batches write to both.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use potluck::content::{Contact, KnownContent};
use potluck::store::msglog::LogError;
use potluck::store::{LogFile, RealLogFile, Store, StoreError};
use potluck::{FeedId, Message, MessageId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const LOG_FILE: &str = "messages.log";
/// The store's file of grouped index entries (RSVPs, admissions, contacts).
const GROUPS_FILE: &str = "groups.log";

/// The simulated disk under one message log file.
#[derive(Default)]
struct Disk {
    /// What reads see (the page cache).
    cache: Vec<u8>,
    /// What a crash leaves (the disk).
    durable: Vec<u8>,
    /// Ranges of `cache` written since the last sync (dirty pages).
    dirty: Vec<(usize, usize)>,
    /// Writes and syncs so far.
    ops: u32,
    /// The power goes off after this many more writes and syncs: every
    /// later operation fails with `EIO` and changes nothing.
    power_cut_after: Option<u32>,
    /// The write with this index fails with the errno after landing the
    /// given share (in percent) of its bytes.
    failing_write: Option<(u32, i32, usize)>,
    /// The sync with this index fails with the errno.
    failing_sync: Option<(u32, i32)>,
    /// A full disk: writes that would make the file longer than this land
    /// up to it and fail with `ENOSPC`.
    capacity: Option<usize>,
    writes: u32,
    syncs: u32,
}

impl Disk {
    /// A disk holding what the real file at `path` holds, all of it synced.
    fn load(path: &Path) -> Arc<Mutex<Disk>> {
        let bytes = std::fs::read(path).unwrap_or_default();
        Arc::new(Mutex::new(Disk {
            durable: bytes.clone(),
            cache: bytes,
            ..Disk::default()
        }))
    }

    /// Counts an operation; `EIO` once the power is off.
    fn tick(&mut self) -> io::Result<()> {
        if let Some(left) = self.power_cut_after {
            if left == 0 {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            self.power_cut_after = Some(left - 1);
        }
        self.ops += 1;
        Ok(())
    }

    fn land(&mut self, data: &[u8], offset: usize) {
        let end = offset + data.len();
        if self.cache.len() < end {
            self.cache.resize(end, 0);
        }
        self.cache[offset..end].copy_from_slice(data);
        self.dirty.push((offset, end));
    }

    /// What the file holds after a crash now: what was synced, and with
    /// `torn`, up to that many first bytes of the first unsynced write.
    fn crash_image(&self, torn: Option<usize>) -> Vec<u8> {
        let mut image = self.durable.clone();
        if let (Some(n), Some(&(start, end))) = (torn, self.dirty.first()) {
            let end = end.min(start.saturating_add(n)).min(self.cache.len());
            if image.len() < end {
                image.resize(end, 0);
            }
            image[start..end].copy_from_slice(&self.cache[start..end]);
        }
        image
    }
}

/// The fault-injecting [`LogFile`].
struct FaultyFile(Arc<Mutex<Disk>>);

impl FaultyFile {
    fn disk(&self) -> std::sync::MutexGuard<'_, Disk> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl LogFile for FaultyFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.disk().cache.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let disk = self.disk();
        if disk.power_cut_after == Some(0) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let start = offset as usize;
        let bytes = disk
            .cache
            .get(start..start + buf.len())
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(bytes);
        Ok(())
    }

    fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let mut disk = self.disk();
        disk.tick()?;
        let offset = offset as usize;
        let index = disk.writes;
        disk.writes += 1;
        if let Some((at, errno, percent)) = disk.failing_write
            && at == index
        {
            let landed = data.len() * percent / 100;
            disk.land(&data[..landed], offset);
            return Err(io::Error::from_raw_os_error(errno));
        }
        if let Some(capacity) = disk.capacity
            && offset + data.len() > capacity
        {
            let landed = capacity.saturating_sub(offset).min(data.len());
            disk.land(&data[..landed], offset);
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        disk.land(data, offset);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut disk = self.disk();
        disk.tick()?;
        let len = len as usize;
        disk.cache.resize(len, 0);
        disk.dirty.retain(|&(start, _)| start < len);
        for range in &mut disk.dirty {
            range.1 = range.1.min(len);
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut disk = self.disk();
        disk.tick()?;
        let index = disk.syncs;
        disk.syncs += 1;
        let dirty = std::mem::take(&mut disk.dirty);
        if let Some((at, errno)) = disk.failing_sync
            && at == index
        {
            // The pages are marked clean without reaching the disk.
            return Err(io::Error::from_raw_os_error(errno));
        }
        let len = disk.cache.len();
        disk.durable.resize(len, 0);
        for (start, end) in dirty {
            let bytes = disk.cache[start..end].to_vec();
            disk.durable[start..end].copy_from_slice(&bytes);
        }
        Ok(())
    }
}

/// Opens the store at `path` with its message log on `disk`.
fn open_faulty(path: &Path, disk: &Arc<Mutex<Disk>>) -> Store {
    open_faulty_file(path, disk, LOG_FILE)
}

/// Opens the store at `path` with its file `name` (`messages.log` or
/// `groups.log`) on `disk`, the other one real.
fn open_faulty_file(path: &Path, disk: &Arc<Mutex<Disk>>, name: &'static str) -> Store {
    let disk = disk.clone();
    Store::open_with_log_file(path, &move |file: &Path| {
        if file.file_name().is_some_and(|n| n == name) {
            Ok(Box::new(FaultyFile(disk.clone())) as Box<dyn LogFile>)
        } else {
            RealLogFile::open_boxed(file)
        }
    })
    .unwrap()
}

/// Simulates a crash of the store at `path` (already dropped): its log
/// file becomes what the disk kept.
fn crash(path: &Path, disk: &Arc<Mutex<Disk>>, torn: Option<usize>) {
    crash_file(path, disk, torn, LOG_FILE);
}

/// [`crash`] for the store's file `name`.
fn crash_file(path: &Path, disk: &Arc<Mutex<Disk>>, torn: Option<usize>, name: &str) {
    let image = disk.lock().unwrap().crash_image(torn);
    std::fs::write(path.join(name), image).unwrap();
}

/// Everything a writer was told is stored.
#[derive(Default)]
struct Durable {
    messages: Vec<Message>,
}

impl Durable {
    /// Opens the store at `path` with the real file and checks that it
    /// passes fsck and holds every message reported stored.
    fn check(&self, path: &Path, context: &str) {
        let store = Store::open(path).unwrap_or_else(|e| panic!("{context}: open: {e}"));
        let report = store.fsck().unwrap();
        assert!(
            report.problems.is_empty(),
            "{context}: fsck: {:?}",
            report.problems
        );
        for m in &self.messages {
            let held = store
                .message(&m.id())
                .unwrap_or_else(|e| panic!("{context}: read {}: {e}", m.id()));
            assert_eq!(
                held.map(|h| h.bytes().to_vec()),
                Some(m.bytes().to_vec()),
                "{context}: lost {} #{}",
                m.author(),
                m.sequence()
            );
        }
    }
}

fn own_key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

fn foreign_key() -> SigningKey {
    SigningKey::from_bytes(&[2; 32])
}

/// Publishes one message of the own feed.
fn publish(store: &Store, n: u64) -> Result<Message, StoreError> {
    let body = format!(r#"{{"type":"about","name":"own {n}"}}"#);
    let report = store.publish(&own_key(), body.as_bytes(), n as i64)?;
    Ok(report
        .message()
        .expect("publish reports its message")
        .clone())
}

/// Ingests the next `count` messages of the foreign feed, in one batch.
fn ingest(store: &Store, count: u64) -> Result<Vec<Message>, StoreError> {
    let key = foreign_key();
    let feed = FeedId(key.verifying_key().to_bytes());
    let (mut sequence, mut previous) = store
        .head(&feed)?
        .map_or((1, MessageId::default()), |h| (h.sequence + 1, h.id));
    let mut batch = Vec::new();
    for _ in 0..count {
        // Names and follows: a follow is a grouped entry, in groups.log.
        let body = if sequence % 2 == 0 {
            Contact {
                contact: FeedId([sequence as u8; 32]),
                following: true,
                blocking: false,
            }
            .to_content_bytes()
        } else {
            format!(r#"{{"type":"about","name":"foreign {sequence}"}}"#).into_bytes()
        };
        let msg = Message::sign(&key, sequence, previous, 0, &body).unwrap();
        previous = msg.id();
        sequence += 1;
        batch.push(msg);
    }
    let report = store.ingest(batch)?;
    assert!(report.rejected.is_none(), "{:?}", report.rejected);
    assert_eq!(report.accepted.len() as u64, count);
    Ok(report.accepted)
}

fn is_errno(e: &StoreError, errno: i32) -> bool {
    match e {
        StoreError::Log(LogError::Io { source, .. } | LogError::DiskFull { source, .. }) => {
            source.raw_os_error() == Some(errno)
        }
        _ => false,
    }
}

#[test]
fn the_faulty_file_keeps_only_what_a_successful_sync_covered() {
    // The harness itself: without this, the tests below could pass over a
    // store that never syncs.
    let disk = Arc::new(Mutex::new(Disk::default()));
    let file = FaultyFile(disk.clone());
    file.write_all_at(b"synced", 0).unwrap();
    file.sync_data().unwrap();
    file.write_all_at(b" lost", 6).unwrap();
    assert_eq!(disk.lock().unwrap().crash_image(None), b"synced");
    assert_eq!(disk.lock().unwrap().crash_image(Some(3)), b"synced lo");
    // A failed sync loses its pages for good, even when a later one works.
    disk.lock().unwrap().failing_sync = Some((1, libc::EIO));
    assert!(file.sync_data().is_err());
    file.sync_data().unwrap();
    let mut read = [0u8; 11];
    file.read_exact_at(&mut read, 0).unwrap();
    assert_eq!(&read, b"synced lost", "reads still see the lost bytes");
    assert_eq!(&disk.lock().unwrap().crash_image(None), b"synced\0\0\0\0\0");
}

#[test]
fn a_torn_write_is_an_error_and_the_next_append_writes_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut durable = Durable::default();
    for (round, (errno, percent)) in [(libc::EIO, 50), (libc::ENOSPC, 10), (libc::EIO, 0)]
        .into_iter()
        .enumerate()
    {
        let disk = Disk::load(&path.join(LOG_FILE));
        let store = open_faulty(&path, &disk);
        durable.messages.push(publish(&store, 1).unwrap());
        let own = FeedId(own_key().verifying_key().to_bytes());
        let head = store.head(&own).unwrap();
        {
            let mut d = disk.lock().unwrap();
            d.failing_write = Some((d.writes, errno, percent));
        }
        let e = publish(&store, 2).unwrap_err();
        assert!(is_errno(&e, errno), "{e}");
        // Nothing of it counts: the head is where it was, and the store
        // reads back whole before any crash.
        assert_eq!(store.head(&own).unwrap(), head);
        assert!(store.fsck().unwrap().problems.is_empty());
        // In the first round the machine crashes now, with the torn bytes
        // on disk past the committed end: the next open cuts them off.
        let (store, disk) = if round == 0 {
            drop(store);
            crash(&path, &disk, Some(usize::MAX));
            let log_len = || std::fs::metadata(path.join(LOG_FILE)).unwrap().len();
            let torn_len = log_len();
            durable.check(&path, "crash right after a torn write");
            assert!(log_len() < torn_len, "the torn bytes were not on disk");
            let disk = Disk::load(&path.join(LOG_FILE));
            (open_faulty(&path, &disk), disk)
        } else {
            (store, disk)
        };
        // The next appends go over the torn bytes.
        durable.messages.extend(ingest(&store, 3).unwrap());
        durable.messages.push(publish(&store, 3).unwrap());
        drop(store);
        crash(&path, &disk, None);
        durable.check(
            &path,
            &format!("round {round}: torn write, errno {errno}, {percent}%"),
        );
    }
    assert_eq!(durable.messages.len(), 15);
}

#[test]
fn writes_lost_in_a_crash_were_never_reported_stored() {
    // The power goes off after every possible number of log operations in
    // a run of publishes and ingests: what the disk kept is what was
    // synced, sometimes with the first bytes of a write that was not.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut durable = Durable::default();
    let mut cut_short = 0;
    for cut_after in 0..12u32 {
        let disk = Disk::load(&path.join(LOG_FILE));
        let store = open_faulty(&path, &disk);
        disk.lock().unwrap().power_cut_after = Some(cut_after);
        let mut failed = false;
        for step in 0..4u64 {
            let result = if step % 2 == 0 {
                publish(&store, step).map(|m| vec![m])
            } else {
                ingest(&store, 1 + step)
            };
            match result {
                Ok(stored) => durable.messages.extend(stored),
                Err(e) => {
                    assert!(is_errno(&e, libc::EIO), "{e}");
                    failed = true;
                    break;
                }
            }
        }
        cut_short += usize::from(failed);
        drop(store);
        let torn = (cut_after % 3 != 0).then_some(cut_after as usize * 5);
        crash(&path, &disk, torn);
        durable.check(&path, &format!("power cut after {cut_after} operations"));
    }
    assert!(
        cut_short >= 8,
        "the power cut interrupted only {cut_short} runs"
    );
}

#[test]
fn a_failed_sync_is_an_error_and_its_batch_never_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut durable = Durable::default();
    let own = FeedId(own_key().verifying_key().to_bytes());
    for errno in [libc::EIO, libc::ENOSPC] {
        let disk = Disk::load(&path.join(LOG_FILE));
        let store = open_faulty(&path, &disk);
        durable.messages.push(publish(&store, 1).unwrap());
        let head = store.head(&own).unwrap();
        {
            let mut d = disk.lock().unwrap();
            d.failing_sync = Some((d.syncs, errno));
        }
        let e = publish(&store, 2).unwrap_err();
        assert!(is_errno(&e, errno), "{e}");
        if errno == libc::ENOSPC {
            assert!(
                matches!(e, StoreError::Log(LogError::DiskFull { .. })),
                "{e}"
            );
        }
        assert_eq!(store.head(&own).unwrap(), head, "a failed sync counted");
        // Going on is safe: the next batch is written again over the bytes
        // whose write-back failed, and synced.
        durable.messages.extend(ingest(&store, 4).unwrap());
        durable.messages.push(publish(&store, 3).unwrap());
        drop(store);
        crash(&path, &disk, None);
        durable.check(&path, &format!("failed sync, errno {errno}"));
    }
}

#[test]
fn a_full_disk_is_a_clear_error_that_damages_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut durable = Durable::default();
    let disk = Disk::load(&path.join(LOG_FILE));
    let store = open_faulty(&path, &disk);
    durable.messages.push(publish(&store, 1).unwrap());
    durable.messages.extend(ingest(&store, 5).unwrap());
    // Room for a little less than one more message.
    {
        let mut d = disk.lock().unwrap();
        d.capacity = Some(d.cache.len() + 100);
    }
    let e = publish(&store, 2).unwrap_err();
    assert!(
        matches!(e, StoreError::Log(LogError::DiskFull { .. })),
        "{e}"
    );
    let text = e.to_string();
    assert!(
        text.contains("is full") && text.contains("were not stored"),
        "unclear: {text}"
    );
    let e = ingest(&store, 10).unwrap_err();
    assert!(
        matches!(e, StoreError::Log(LogError::DiskFull { .. })),
        "{e}"
    );
    // No damage, before any restart: everything stored reads back whole.
    let report = store.fsck().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    for m in &durable.messages {
        assert_eq!(store.message(&m.id()).unwrap().as_ref(), Some(m));
    }
    // Space comes back: publishing works again, in the same process.
    disk.lock().unwrap().capacity = None;
    durable.messages.push(publish(&store, 2).unwrap());
    durable.messages.extend(ingest(&store, 10).unwrap());
    drop(store);
    crash(&path, &disk, Some(30));
    durable.check(&path, "after a full disk");
    assert_eq!(durable.messages.len(), 17);
}

#[test]
fn a_seeded_mix_of_faults_and_crashes_never_loses_a_stored_message() {
    seeded_mix(LOG_FILE, 14);
}

#[test]
fn a_seeded_mix_of_faults_in_the_grouped_entries_file_never_loses_a_stored_message() {
    seeded_mix(GROUPS_FILE, 15);
}

/// 16 rounds, each: open with one fault planned in the store's file
/// `name`, publish and ingest, crash (perhaps tearing the last write),
/// and check.
fn seeded_mix(name: &'static str, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut durable = Durable::default();
    let (mut io_errors, mut disk_full) = (0, 0);
    let room = if name == GROUPS_FILE { 200 } else { 1500 };
    for round in 0..16 {
        let disk = Disk::load(&path.join(name));
        let store = open_faulty_file(&path, &disk, name);
        let errno = if rng.gen_bool(0.5) {
            libc::EIO
        } else {
            libc::ENOSPC
        };
        let fault = rng.gen_range(0..5);
        {
            let mut d = disk.lock().unwrap();
            match fault {
                0 => d.power_cut_after = Some(rng.gen_range(0..10)),
                1 => d.failing_write = Some((rng.gen_range(0..4), errno, rng.gen_range(0..100))),
                2 => d.failing_sync = Some((rng.gen_range(0..4), errno)),
                // groups.log grows by a record of about 100 bytes a batch.
                3 => d.capacity = Some(d.cache.len() + rng.gen_range(0..room)),
                _ => {}
            }
        }
        for step in 0..4u64 {
            let result = if rng.gen_bool(0.5) {
                publish(&store, step).map(|m| vec![m])
            } else {
                ingest(&store, rng.gen_range(1..6))
            };
            match result {
                Ok(stored) => durable.messages.extend(stored),
                Err(StoreError::Log(LogError::DiskFull { .. })) => disk_full += 1,
                Err(StoreError::Log(LogError::Io { source, .. }))
                    if source.raw_os_error() == Some(libc::EIO) =>
                {
                    io_errors += 1;
                }
                Err(other) => panic!("round {round}: unexpected error {other}"),
            }
        }
        drop(store);
        let torn = rng.gen_bool(0.5).then(|| rng.gen_range(0..600));
        crash_file(&path, &disk, torn, name);
        durable.check(&path, &format!("{name}: round {round}, fault {fault}"));
    }
    println!("{name}: {io_errors} I/O errors, {disk_full} full disks");
    // Each schedule meets each fault often.
    // (groups.log is written by fewer batches: those with a follow.)
    let (least_io, least_full) = if name == GROUPS_FILE { (3, 4) } else { (5, 10) };
    assert!(
        io_errors >= least_io && disk_full >= least_full,
        "only {io_errors} I/O errors and {disk_full} full disks"
    );
    assert!(
        durable.messages.len() >= 50,
        "{} stored",
        durable.messages.len()
    );
}
