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
//! written by some sled, and what it records is taken at its word.

use std::io::Read as _;
use std::path::Path;
use std::time::{Duration, Instant};

use super::error::StoreError;

/// sled's segment size (tools that open the sled files directly must use
/// it too). sled reclaims a segment once half of it is stale,
/// so bigger segments waste less: 100,000 fixture messages took 154 MB of
/// sled files with the default 512 KiB, 105 MB with 8 MiB and 97 MB with
/// 16 MiB (the largest sled allows). The price is that even an empty
/// store occupies one segment.
pub const SLED_SEGMENT_SIZE: usize = 8 * 1024 * 1024;

/// sled's settings file, in the store directory.
const CONF_FILE: &str = "conf";

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
/// A `conf` that fails its checksum is [`StoreError::DatabaseDamaged`];
/// sled files written with another segment size are
/// [`StoreError::Format`]. A held lock is retried for up to [`LOCK_WAIT`]
/// before it is reported as [`StoreError::Locked`].
pub(super) fn open(path: &Path) -> Result<sled::Db, StoreError> {
    match read_conf(path) {
        Conf::Damaged => {
            return Err(StoreError::DatabaseDamaged {
                path: path.display().to_string(),
                reason: format!("its settings file `{CONF_FILE}` fails its checksum"),
            });
        }
        // sled cannot open files written with another segment size, and
        // says so in its own words; every store since format 2 uses ours.
        Conf::Intact {
            segment_size: Some(size),
        } if size != SLED_SEGMENT_SIZE => {
            return Err(StoreError::Format {
                path: path.display().to_string(),
                found: 1,
            });
        }
        Conf::Unread | Conf::Intact { .. } => {}
    }
    open_waiting_for_lock(path)
}

/// Opens sled in `path`, retrying a held lock for up to [`LOCK_WAIT`].
fn open_waiting_for_lock(path: &Path) -> Result<sled::Db, StoreError> {
    let started = Instant::now();
    loop {
        let result = sled::Config::new()
            .path(path)
            .cache_capacity(64 * 1024 * 1024)
            .segment_size(SLED_SEGMENT_SIZE)
            .open();
        match result {
            Ok(db) => return Ok(db),
            // sled reports a held lock file as an `Other` error.
            Err(sled::Error::Io(ref io))
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().contains("could not acquire lock") =>
            {
                if started.elapsed() >= LOCK_WAIT {
                    return Err(StoreError::Locked {
                        path: path.display().to_string(),
                    });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(other) => return Err(StoreError::Db(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings file sled writes with the store's settings.
    fn good_conf() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()).unwrap());
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
        drop(open(dir.path()).unwrap());
        let conf = dir.path().join(CONF_FILE);
        let mut bytes = std::fs::read(&conf).unwrap();
        bytes[0] ^= 0x80;
        std::fs::write(&conf, &bytes).unwrap();
        let err = open(dir.path()).err().map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("`conf` fails its checksum")),
            "{err:?}"
        );
        assert_eq!(std::fs::read(&conf).unwrap(), bytes);
    }

    #[test]
    fn no_conf_or_a_short_one_is_left_to_sled_and_a_long_one_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_conf(dir.path()), Conf::Unread);
        assert_eq!(conf_of(b"12345678"), Conf::Unread);
        assert_eq!(conf_of(&[0xFF; 9]), Conf::Damaged);
        assert_eq!(conf_of(&vec![b'a'; CONF_MAX as usize + 1]), Conf::Damaged);
    }
}
