//! Opening sled's files in a store directory, with the store's settings,
//! and telling damage to them from a store written another way.
//!
//! sled keeps its settings in a small file, `conf`: a few `key: value`
//! lines (segment size, compression, sled's version) and a CRC-32 of them
//! (little-endian). sled itself only warns when the checksum fails, and
//! then refuses the damaged text in words meant for other failures
//! ("created using a sled version earlier than 0.29", "cannot change the
//! io buffer size"), after logging them. So the store checks the checksum
//! before sled reads the file: a `conf` that fails it was damaged on disk
//! and the store is [`StoreError::DatabaseDamaged`], which `potluck fsck
//! --repair` rebuilds from the message log; one that passes it was
//! written by some sled, and what it records is taken at its word. The
//! one damage that is not: sled writes `conf` (its text, then the
//! checksum, two writes) when it creates its files, before its data file
//! `db`; a process killed between the two leaves text without its
//! checksum and no `db`. Such a `conf` describes no files and is removed,
//! as if the kill had come a moment earlier: sled writes it anew.
//!
//! `conf` also records the segment size, which sled cannot change and
//! the store has used two of ([`SLED_SEGMENT_SIZE`] and, for stores made
//! before it, [`EARLIER_SLED_SEGMENT_SIZE`]): sled is opened with the
//! recorded one. A data file with data and no `conf` is damage, not a new
//! store: opened with the wrong size, sled reads no data and overwrites
//! the segments it takes for free.
//!
//! sled also writes a snapshot of where its pages are when it opens
//! files that have grown: to `snap.<lsn>.generating`, which it syncs and
//! then renames to `snap.<lsn>`. Recovery takes the newest `snap.*` file,
//! and sled 0.34 counts a `.generating` one among them: a process killed
//! while it wrote one (a few writes, before the sync) leaves a torn
//! snapshot that every later open reads as [`sled::Error::Corruption`].
//! No snapshot is ever read from a `.generating` file that sled finished,
//! so [`open`] removes such leftovers first (while no sled holds the
//! store), which is what sled finds when the kill comes a moment before
//! the file is created: it recovers from the snapshot before and its log.

use std::io::Read as _;
use std::path::Path;
use std::time::{Duration, Instant};

use super::error::StoreError;

/// sled's segment size for new stores (tools that open the sled files
/// of a store directly must use the store's own: [`segment_size_of`]).
///
/// sled reclaims a segment once half of it is stale, so bigger segments
/// wasted less while sled held a key per message (100,000 fixture
/// messages took 154 MB of sled files with the default 512 KiB and 105 MB
/// with 8 MiB). But sled 0.34 also overwrites every free segment of its
/// file in full at every open, so the open's cost grows with the segment
/// size: on a store synced with 1M messages, `potluck whoami` took 110 ms
/// with 8 MiB segments, 60 ms with 4 MiB, 40 ms with 2 MiB and 30 ms with
/// 1 MiB, while sled now holds only per-event and per-feed keys and its
/// files stayed within the noise of each other (docs/performance.md).
pub const SLED_SEGMENT_SIZE: usize = 2 * 1024 * 1024;

/// The segment size of the stores made before [`SLED_SEGMENT_SIZE`]
/// (store formats 2 to 4, until December 2026). sled cannot change the
/// segment size of its files, so such a store keeps it.
pub const EARLIER_SLED_SEGMENT_SIZE: usize = 8 * 1024 * 1024;

/// sled's settings file, in the store directory.
const CONF_FILE: &str = "conf";

/// sled's data file, in the store directory (sled locks it while open).
const DATA_FILE: &str = "db";

/// The end of the name of a snapshot sled has not finished writing.
const UNFINISHED_SNAPSHOT: &str = ".generating";

/// Bytes of `conf` read at most: sled writes about 60.
const CONF_MAX: u64 = 4096;

/// How long [`open`] waits for a lock that a store just closed in this
/// process may still hold: sled finishes closing in its own threads after
/// the last handle is dropped.
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// What sled's settings file in a store directory is.
#[derive(Debug, PartialEq, Eq)]
enum Conf {
    /// No file, or one sled does not read (8 bytes or fewer, or one that
    /// cannot be read): sled writes it anew, or reports its own error.
    Unread,
    /// As some sled wrote it (its checksum matches), with the segment
    /// size it records, if it records one that is a number.
    Intact {
        /// The recorded segment size.
        segment_size: Option<usize>,
    },
    /// Its checksum does not match its text: damaged on disk.
    Damaged,
}

/// Reads sled's settings file in `dir`.
fn read_conf(dir: &Path) -> Conf {
    let mut bytes = Vec::new();
    match std::fs::File::open(dir.join(CONF_FILE))
        .and_then(|file| file.take(CONF_MAX + 1).read_to_end(&mut bytes))
    {
        Ok(_) => conf_of(&bytes),
        Err(_) => Conf::Unread,
    }
}

/// What the bytes of a settings file are.
fn conf_of(bytes: &[u8]) -> Conf {
    // sled reads a file of 8 bytes or fewer as no file.
    if bytes.len() <= 8 {
        return Conf::Unread;
    }
    if bytes.len() as u64 > CONF_MAX {
        return Conf::Damaged;
    }
    let (text, sum) = bytes.split_at(bytes.len() - 4);
    let sum: [u8; 4] = sum.try_into().unwrap_or_default();
    if crc32(text) != u32::from_le_bytes(sum) {
        return Conf::Damaged;
    }
    Conf::Intact {
        segment_size: String::from_utf8_lossy(text)
            .lines()
            .find_map(|line| line.strip_prefix("segment_size: "))
            .and_then(|v| v.trim().parse().ok()),
    }
}

/// CRC-32 (ISO-HDLC, the zlib one), as sled sums its settings file.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Opens sled in the store directory `path` with the store's settings.
///
/// A `conf` that fails its checksum is [`StoreError::DatabaseDamaged`],
/// unless sled never made its data file (then it is removed, see the
/// module docs); so is a missing or empty `conf` beside a data file with
/// data, whose segment size cannot be known; sled files written with a
/// segment size the store never used are
/// [`StoreError::Format`]. Snapshots sled never finished are removed
/// first. A held lock is retried for up to [`LOCK_WAIT`] before it is
/// reported as [`StoreError::Locked`].
pub(super) fn open(path: &Path, cache: u64) -> Result<sled::Db, StoreError> {
    match read_conf(path) {
        Conf::Damaged if no_data_file(path) => {
            // The creation of sled's files was cut short (module docs).
            tracing::info!(dir = %path.display(), "removing the settings file of sled files that were never created");
            if let Err(e) = std::fs::remove_file(path.join(CONF_FILE)) {
                return Err(StoreError::DatabaseDamaged {
                    path: path.display().to_string(),
                    reason: format!("its settings file `{CONF_FILE}` fails its checksum ({e})"),
                });
            }
        }
        Conf::Damaged => {
            return Err(StoreError::DatabaseDamaged {
                path: path.display().to_string(),
                reason: format!("its settings file `{CONF_FILE}` fails its checksum"),
            });
        }
        // sled cannot open files written with another segment size, and
        // says so in its own words; every store since format 2 uses one
        // of ours.
        Conf::Intact {
            segment_size: Some(size),
        } if !is_ours(size) => {
            return Err(StoreError::Format {
                path: path.display().to_string(),
                found: 1,
            });
        }
        // Without a settings file sled would take the segment size it is
        // given, and two are in use: opened with the wrong one, sled reads
        // no data and overwrites the segments it thinks are free. Files
        // with data and no settings were damaged on disk.
        Conf::Unread if has_data(path) => {
            return Err(StoreError::DatabaseDamaged {
                path: path.display().to_string(),
                reason: format!(
                    "its settings file `{CONF_FILE}` is missing or empty, so the segment size of its data file is unknown"
                ),
            });
        }
        Conf::Unread | Conf::Intact { .. } => {}
    }
    remove_unfinished_snapshots(path);
    open_waiting_for_lock(path, segment_size_of(path), cache)
}

/// Whether the store ever made sled files with this segment size.
fn is_ours(segment_size: usize) -> bool {
    segment_size == SLED_SEGMENT_SIZE || segment_size == EARLIER_SLED_SEGMENT_SIZE
}

/// The segment size to open the sled files in the store directory `dir`
/// with: the one their settings file records, when it is intact and one
/// of the store's; else [`SLED_SEGMENT_SIZE`], which sled writes into a
/// new settings file.
pub fn segment_size_of(dir: &Path) -> usize {
    match read_conf(dir) {
        Conf::Intact {
            segment_size: Some(size),
        } if is_ours(size) => size,
        _ => SLED_SEGMENT_SIZE,
    }
}

/// Whether sled's data file `db` in `dir` may hold data: it is there and
/// not empty, or it cannot be told.
fn has_data(dir: &Path) -> bool {
    match std::fs::symlink_metadata(dir.join(DATA_FILE)) {
        Ok(meta) => meta.len() > 0,
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// Whether sled's data file `db` is certainly not in `dir`.
fn no_data_file(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir.join(DATA_FILE))
        .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// Removes the snapshots sled began in `dir` and never finished
/// (`snap.*.generating`, see the module docs), unless a sled holds the
/// store (its lock on the `db` file): then they may be its own, being
/// written, and sled's open reports the lock. Failing to remove one is
/// no error here: sled then reads it, as it would have.
fn remove_unfinished_snapshots(dir: &Path) {
    let unfinished: Vec<_> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| {
                        name.starts_with("snap.") && name.ends_with(UNFINISHED_SNAPSHOT)
                    })
            })
            .collect(),
        Err(_) => return,
    };
    if unfinished.is_empty() {
        return;
    }
    // sled locks the whole `db` file (flock) for as long as it is open;
    // held here, no sled is writing a snapshot. Released when dropped.
    let Ok(db) = std::fs::File::open(dir.join(DATA_FILE)) else {
        return;
    };
    if db.try_lock().is_err() {
        return;
    }
    for path in unfinished {
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(file = %path.display(), "removed a snapshot sled did not finish writing")
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot remove a snapshot sled did not finish writing")
            }
        }
    }
}

/// Bytes of sled's page cache for the store (as sled counts them: the
/// pages' size on disk; a page in memory takes more).
///
/// 32 MiB, not more: the writes of a sync, a hub's traffic and a check
/// read pages all over a tree far larger than any cache (sled holds
/// 280-340 MB at 10M messages), so a larger cache mostly holds memory.
/// 3M syncs with 64, 32 and 16 MiB peaked at 242-255, 198-208 and 177 MB
/// with the same CPU a message (docs/performance.md).
pub(super) const SLED_CACHE: u64 = 32 << 20;

/// Bytes of sled's page cache for a store opened only to be checked
/// ([`super::Store::open_to_check`]): the check reads heads and walks the
/// indexes in key order, each page once, so a cache saves it little.
pub(super) const SLED_CHECK_CACHE: u64 = 4 << 20;

/// Opens sled in `path` with `segment_size` and a cache of `cache`
/// bytes, retrying a held lock for up to [`LOCK_WAIT`].
pub(super) fn open_waiting_for_lock(
    path: &Path,
    segment_size: usize,
    cache: u64,
) -> Result<sled::Db, StoreError> {
    let result = retrying_a_held_lock(|| {
        sled::Config::new()
            .path(path)
            .cache_capacity(cache)
            .segment_size(segment_size)
            .open()
    });
    match result {
        Ok(db) => Ok(db),
        Err(ref e) if is_held_lock(e) => Err(StoreError::Locked {
            path: path.display().to_string(),
        }),
        Err(other) => Err(StoreError::Db(other)),
    }
}

/// Runs sled's `open` until it gets the files' lock or [`LOCK_WAIT`] has
/// passed. Another process may hold the lock, and so may, briefly, the
/// threads of a `Db` this process just dropped.
fn retrying_a_held_lock<T>(mut open: impl FnMut() -> sled::Result<T>) -> sled::Result<T> {
    let started = Instant::now();
    loop {
        match open() {
            Err(ref e) if is_held_lock(e) && started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

/// sled reports a held lock file as an `Other` I/O error.
fn is_held_lock(e: &sled::Error) -> bool {
    matches!(e, sled::Error::Io(io)
        if io.kind() == std::io::ErrorKind::WouldBlock
            || io.to_string().contains("could not acquire lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings file sled writes with the store's settings.
    fn good_conf() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path(), SLED_CACHE).unwrap());
        std::fs::read(dir.path().join(CONF_FILE)).unwrap()
    }

    #[test]
    fn the_checksum_is_zlibs_crc32() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn sleds_own_conf_is_intact_and_every_flipped_bit_is_damage() {
        let good = good_conf();
        assert_eq!(
            conf_of(&good),
            Conf::Intact {
                segment_size: Some(SLED_SEGMENT_SIZE)
            }
        );
        for at in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[at] ^= 1 << bit;
                assert_eq!(conf_of(&bad), Conf::Damaged, "byte {at} bit {bit}");
            }
        }
    }

    #[test]
    fn a_damaged_conf_is_database_damage_and_is_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path(), SLED_CACHE).unwrap());
        let conf = dir.path().join(CONF_FILE);
        let mut bytes = std::fs::read(&conf).unwrap();
        bytes[0] ^= 0x80;
        std::fs::write(&conf, &bytes).unwrap();
        let err = open(dir.path(), SLED_CACHE).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("`conf` fails its checksum")),
            "{err:?}"
        );
        assert_eq!(std::fs::read(&conf).unwrap(), bytes);
    }

    /// sled files in a new directory, with a finished snapshot (sled
    /// writes one when it opens files that grew), closed.
    fn sled_with_a_snapshot() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..2u8 {
            let db = open(dir.path(), SLED_CACHE).unwrap();
            db.insert([round], vec![round; 100]).unwrap();
            db.flush().unwrap();
        }
        dir
    }

    /// The names of the `snap.*` files in `dir`, in order.
    fn snapshots(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("snap."))
            .collect();
        names.sort();
        names
    }

    /// What a writer killed inside sled's snapshot write leaves: the
    /// newest snapshot file, torn.
    fn plant_a_torn_snapshot(dir: &Path) -> std::path::PathBuf {
        let torn = dir.join(format!("snap.{:016X}{UNFINISHED_SNAPSHOT}", u64::MAX >> 1));
        let finished = dir.join(&snapshots(dir)[0]);
        let bytes = std::fs::read(finished).unwrap();
        std::fs::write(&torn, &bytes[..bytes.len() / 2]).unwrap();
        torn
    }

    #[test]
    fn a_snapshot_sled_did_not_finish_is_removed_and_the_files_open() {
        let dir = sled_with_a_snapshot();
        let finished = snapshots(dir.path());
        assert_eq!(finished.len(), 1, "{finished:?}");
        let torn = plant_a_torn_snapshot(dir.path());
        // What sled 0.34 does with it on its own.
        let sled_alone = retrying_a_held_lock(|| {
            sled::Config::new()
                .path(dir.path())
                .segment_size(SLED_SEGMENT_SIZE)
                .open()
        });
        assert!(
            matches!(sled_alone, Err(sled::Error::Corruption { .. })),
            "{:?}",
            sled_alone.err()
        );
        let db = open(dir.path(), SLED_CACHE).unwrap();
        assert!(!torn.exists());
        for round in 0..2u8 {
            assert_eq!(db.get([round]).unwrap().unwrap(), vec![round; 100]);
        }
    }

    #[test]
    fn a_conf_cut_short_before_sled_made_its_data_file_is_written_anew() {
        let dir = tempfile::tempdir().unwrap();
        let good = good_conf();
        // What sled leaves when killed between its two writes of `conf`.
        std::fs::write(dir.path().join(CONF_FILE), &good[..good.len() - 4]).unwrap();
        let db = open(dir.path(), SLED_CACHE).unwrap();
        drop(db);
        assert_eq!(std::fs::read(dir.path().join(CONF_FILE)).unwrap(), good);
    }

    #[test]
    fn an_unfinished_snapshot_of_an_open_store_is_left_alone() {
        let dir = sled_with_a_snapshot();
        let db = open(dir.path(), SLED_CACHE).unwrap();
        let torn = plant_a_torn_snapshot(dir.path());
        remove_unfinished_snapshots(dir.path());
        assert!(torn.exists(), "removed under a running sled");
        drop(db);
    }

    /// sled files in `dir` with `size` segments, written by `fill` and
    /// flushed, made by sled directly (not through [`open`]).
    fn sled_made_with(dir: &Path, size: usize, fill: impl FnOnce(&sled::Db)) {
        let db = retrying_a_held_lock(|| sled::Config::new().path(dir).segment_size(size).open())
            .unwrap();
        fill(&db);
        db.flush().unwrap();
    }

    #[test]
    fn files_made_with_the_earlier_segment_size_open_with_it_and_keep_it() {
        let dir = tempfile::tempdir().unwrap();
        sled_made_with(dir.path(), EARLIER_SLED_SEGMENT_SIZE, |db| {
            db.insert(b"kept", b"value").unwrap();
        });
        let conf_before = std::fs::read(dir.path().join(CONF_FILE)).unwrap();
        assert_eq!(segment_size_of(dir.path()), EARLIER_SLED_SEGMENT_SIZE);
        let db = open(dir.path(), SLED_CACHE).unwrap();
        assert_eq!(db.get(b"kept").unwrap().unwrap(), b"value");
        db.insert(b"more", b"written").unwrap();
        db.flush().unwrap();
        drop(db);
        assert_eq!(
            std::fs::read(dir.path().join(CONF_FILE)).unwrap(),
            conf_before
        );
        // A new store gets the new size.
        let new = tempfile::tempdir().unwrap();
        assert_eq!(segment_size_of(new.path()), SLED_SEGMENT_SIZE);
        drop(open(new.path(), SLED_CACHE).unwrap());
        assert_eq!(segment_size_of(new.path()), SLED_SEGMENT_SIZE);
        assert_ne!(SLED_SEGMENT_SIZE, EARLIER_SLED_SEGMENT_SIZE);
    }

    /// A missing or emptied `conf` beside a data file with data is
    /// damage: no segment size is guessed (the wrong one reads nothing and
    /// overwrites the data), and the data file is left as it was. With the
    /// settings back, every key is there.
    #[test]
    fn files_with_data_and_no_settings_are_damaged_and_left_as_they_are() {
        for size in [EARLIER_SLED_SEGMENT_SIZE, SLED_SEGMENT_SIZE] {
            for emptied in [None, Some(&b""[..]), Some(&b"12345678"[..])] {
                let dir = tempfile::tempdir().unwrap();
                sled_made_with(dir.path(), size, |db| {
                    for i in 0..2_000u32 {
                        db.insert(i.to_be_bytes(), vec![7; 300]).unwrap();
                    }
                });
                let conf = dir.path().join(CONF_FILE);
                let settings = std::fs::read(&conf).unwrap();
                let data = std::fs::read(dir.path().join(DATA_FILE)).unwrap();
                match emptied {
                    None => std::fs::remove_file(&conf).unwrap(),
                    Some(bytes) => std::fs::write(&conf, bytes).unwrap(),
                }
                let err = open(dir.path(), SLED_CACHE).err().map(|e| e.to_string());
                assert!(
                    err.as_deref()
                        .is_some_and(|e| e.contains("segment size of its data file is unknown")),
                    "{size} {emptied:?}: {err:?}"
                );
                assert!(std::fs::read(dir.path().join(DATA_FILE)).unwrap() == data);
                std::fs::write(&conf, &settings).unwrap();
                let db = open(dir.path(), SLED_CACHE).unwrap();
                assert_eq!(db.len(), 2_000, "{size} {emptied:?}");
            }
        }
    }

    #[test]
    fn an_empty_data_file_without_settings_is_a_new_store() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DATA_FILE), b"").unwrap();
        let db = open(dir.path(), SLED_CACHE).unwrap();
        db.insert(b"k", b"v").unwrap();
        drop(db);
        assert_eq!(segment_size_of(dir.path()), SLED_SEGMENT_SIZE);
    }

    #[test]
    fn files_of_a_segment_size_the_store_never_used_are_another_format() {
        let dir = tempfile::tempdir().unwrap();
        drop(
            sled::Config::new()
                .path(dir.path())
                .segment_size(512 * 1024)
                .open()
                .unwrap(),
        );
        assert_eq!(segment_size_of(dir.path()), SLED_SEGMENT_SIZE);
        let err = open(dir.path(), SLED_CACHE).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("format 1")),
            "{err:?}"
        );
    }

    #[test]
    fn no_conf_or_a_short_one_is_left_to_sled_and_a_long_one_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_conf(dir.path()), Conf::Unread);
        assert_eq!(conf_of(b"12345678"), Conf::Unread);
        assert_eq!(conf_of(&[0xFF; 9]), Conf::Damaged);
        assert_eq!(conf_of(&vec![b'a'; CONF_MAX as usize + 1]), Conf::Damaged);
    }

    /// The data file's length, and the bytes of it that hold blocks.
    fn sizes(dir: &Path) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(dir.join(DATA_FILE)).unwrap();
        (meta.len(), meta.blocks() * 512)
    }

    /// The vendored sled builds with upstream's default features. A first
    /// copy of its `Cargo.toml` lost them, and without `no_metrics` sled
    /// times every operation into histograms: 21 MB allocated and written
    /// at each open, and a clock read and atomic adds per operation.
    #[test]
    fn the_vendored_sled_keeps_its_metrics_off() {
        let manifest = include_str!("../../vendor/sled/Cargo.toml");
        let default = manifest
            .lines()
            .find(|line| line.starts_with("default = "))
            .expect("vendor/sled/Cargo.toml names sled's default features");
        assert_eq!(default, r#"default = ["no_metrics"]"#);
    }

    /// The vendored sled's first change (vendor/sled/PATCHED.md): sled
    /// marks free segments at every open, and upstream writes each one
    /// full of zeros (40 MB and a sync at every open of the 10M
    /// benchmark's store). Punched holes read the same and hold no blocks.
    #[test]
    fn an_open_leaves_free_segments_as_holes_and_keeps_every_key() {
        let dir = tempfile::tempdir().unwrap();
        {
            // A tree written and dropped leaves its segments free, as a
            // check's scratch tree once did.
            let db = open(dir.path(), SLED_CACHE).unwrap();
            let scratch = db.open_tree("scratch").unwrap();
            for i in 0u32..20_000 {
                scratch.insert(i.to_be_bytes(), vec![7u8; 1000]).unwrap();
            }
            db.flush().unwrap();
            db.drop_tree("scratch").unwrap();
            // Live data after them, so that an open cannot just cut them
            // off the file's end.
            for i in 0u32..2_000 {
                db.insert(i.to_be_bytes(), i.to_le_bytes().repeat(250))
                    .unwrap();
            }
            db.flush().unwrap();
        }
        let (_, before) = sizes(dir.path());
        assert!(
            before > 8 * SLED_SEGMENT_SIZE as u64,
            "the churn filled segments: {before} bytes"
        );
        for _ in 0..2 {
            let db = open(dir.path(), SLED_CACHE).unwrap();
            assert_eq!(db.len(), 2_000);
            for i in 0u32..2_000 {
                assert_eq!(
                    db.get(i.to_be_bytes()).unwrap().unwrap(),
                    i.to_le_bytes().repeat(250)
                );
            }
            assert!(db.open_tree("scratch").unwrap().is_empty());
            drop(db);
            // Upstream writes every free segment full of zeros, so the
            // file keeps its blocks (an open may also cut free segments
            // off the file's end, which frees theirs either way).
            let (length, allocated) = sizes(dir.path());
            assert!(
                allocated < before / 4,
                "free segments hold no blocks: {allocated} bytes of {length} allocated, {before} before the first open"
            );
        }
    }
}
