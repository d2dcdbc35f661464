//! Opening sled's files in a store directory, with the store's settings.

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

/// How long [`open`] waits for a lock that a store just closed in this
/// process may still hold: sled finishes closing in its own threads after
/// the last handle is dropped.
const LOCK_WAIT: Duration = Duration::from_secs(1);

/// The segment size recorded in sled's `conf` file in `dir`, if there is
/// one (a small text file of `key: value` lines).
fn persisted_segment_size(dir: &Path) -> Option<usize> {
    let mut bytes = Vec::new();
    std::fs::File::open(dir.join("conf"))
        .ok()?
        .take(4096)
        .read_to_end(&mut bytes)
        .ok()?;
    // The text is followed by a binary checksum.
    String::from_utf8_lossy(&bytes)
        .lines()
        .find_map(|line| line.strip_prefix("segment_size: "))
        .and_then(|v| v.trim().parse().ok())
}

/// Opens sled in the store directory `path` with the store's settings. A
/// held lock is retried for up to [`LOCK_WAIT`] before it is reported as
/// [`StoreError::Locked`]; sled files written with another segment size
/// are [`StoreError::Format`].
pub(super) fn open(path: &Path) -> Result<sled::Db, StoreError> {
    // sled cannot open files written with another segment size, and says
    // so in its own words; every store since format 2 uses ours.
    if let Some(size) = persisted_segment_size(path)
        && size != SLED_SEGMENT_SIZE
    {
        return Err(StoreError::Format {
            path: path.display().to_string(),
            found: 1,
        });
    }
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
