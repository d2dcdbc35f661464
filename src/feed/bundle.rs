//! Sync by file: bundles of messages exactly as signed, and clock files
//! that say what a node already holds (so a friend exports only what is
//! missing). Format in `docs/protocol.md`, "Bundles".
//!
//! ```text
//! bundle = "POTLUCK-BUNDLE\n" (15 bytes) ‖ version (u8 = 1)
//!          ‖ { length (u32 BE, 1..=16,565) ‖ message }*
//!          ‖ 0 (u32 BE) ‖ count of messages (u64 BE)
//! ```
//!
//! Decoding is pure and bounded: a length over the message limit, a
//! missing end marker or a wrong count is reported after the valid prefix.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::feed::message::{DecodeError, FeedId, MAX_MESSAGE_LEN, Message};

/// The first bytes of every bundle.
pub const MAGIC: &[u8; 15] = b"POTLUCK-BUNDLE\n";
/// The bundle format version this node writes and reads.
pub const VERSION: u8 = 1;
/// Largest clock file read.
pub const MAX_CLOCK_FILE: u64 = 64 * 1024 * 1024;

/// What is wrong with a bundle or clock file.
#[derive(Debug, Error)]
pub enum BundleError {
    /// Not a bundle at all.
    #[error("not a potluck bundle (it does not start with the bundle header)")]
    NotABundle,
    /// A version this node cannot read.
    #[error("bundle format version {0} is not supported (this node reads version {VERSION})")]
    Version(u8),
    /// The file ends early.
    #[error("the bundle is truncated after {0} messages (no end marker)")]
    Truncated(u64),
    /// A record length is impossible.
    #[error("bad record length {len} after {after} messages")]
    BadLength {
        /// The length read.
        len: u32,
        /// Messages before it.
        after: u64,
    },
    /// A record does not decode as a message.
    #[error("record {index} is not a message: {source}")]
    BadMessage {
        /// Its position.
        index: u64,
        /// Why.
        source: DecodeError,
    },
    /// The end marker's count disagrees with the records.
    #[error("the bundle says it holds {said} messages but holds {found}")]
    CountMismatch {
        /// Count in the end marker.
        said: u64,
        /// Records read.
        found: u64,
    },
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A clock file is not valid.
    #[error("not a potluck clock file: {0}")]
    BadClock(String),
}

/// Writes a bundle of `messages` to `out`; returns how many were written.
pub fn write_bundle<W: Write>(
    out: &mut W,
    messages: impl IntoIterator<Item = Message>,
) -> Result<u64, BundleError> {
    out.write_all(MAGIC)?;
    out.write_all(&[VERSION])?;
    let mut count = 0u64;
    for msg in messages {
        let bytes = msg.bytes();
        // Bounded by MAX_MESSAGE_LEN, far below u32::MAX.
        out.write_all(&(bytes.len() as u32).to_be_bytes())?;
        out.write_all(bytes)?;
        count += 1;
    }
    out.write_all(&0u32.to_be_bytes())?;
    out.write_all(&count.to_be_bytes())?;
    out.flush()?;
    Ok(count)
}

/// Reads a bundle. Returns the messages of the valid prefix, and the
/// problem that stopped reading, if any (never panics on bad input).
pub fn read_bundle<R: Read>(input: &mut R) -> (Vec<Message>, Option<BundleError>) {
    let mut reader = BundleReader::new(input);
    let mut messages = Vec::new();
    loop {
        match reader.next_message() {
            Ok(Some(msg)) => messages.push(msg),
            Ok(None) => return (messages, None),
            Err(e) => return (messages, Some(e)),
        }
    }
}

/// Reads a bundle one message at a time, so a large file never has to be
/// held in memory whole.
pub struct BundleReader<R> {
    input: R,
    started: bool,
    done: bool,
    found: u64,
}

impl<R: Read> BundleReader<R> {
    /// A reader over `input`; the header is checked on the first call.
    pub fn new(input: R) -> BundleReader<R> {
        BundleReader {
            input,
            started: false,
            done: false,
            found: 0,
        }
    }

    /// The next message, `None` at the end marker, or what is wrong.
    pub fn next_message(&mut self) -> Result<Option<Message>, BundleError> {
        if self.done {
            return Ok(None);
        }
        if !self.started {
            let mut magic = [0u8; 15];
            read_exact_or(&mut self.input, &mut magic, BundleError::NotABundle)?;
            if &magic != MAGIC {
                return Err(BundleError::NotABundle);
            }
            let mut version = [0u8; 1];
            read_exact_or(&mut self.input, &mut version, BundleError::NotABundle)?;
            if version[0] != VERSION {
                return Err(BundleError::Version(version[0]));
            }
            self.started = true;
        }
        let found = self.found;
        let mut len = [0u8; 4];
        read_exact_or(&mut self.input, &mut len, BundleError::Truncated(found))?;
        let len = u32::from_be_bytes(len);
        if len == 0 {
            let mut said = [0u8; 8];
            read_exact_or(&mut self.input, &mut said, BundleError::Truncated(found))?;
            let said = u64::from_be_bytes(said);
            self.done = true;
            return if said == found {
                Ok(None)
            } else {
                Err(BundleError::CountMismatch { said, found })
            };
        }
        if len as usize > MAX_MESSAGE_LEN {
            return Err(BundleError::BadLength { len, after: found });
        }
        let mut bytes = vec![0u8; len as usize];
        read_exact_or(&mut self.input, &mut bytes, BundleError::Truncated(found))?;
        let msg = Message::decode(bytes).map_err(|source| BundleError::BadMessage {
            index: found,
            source,
        })?;
        self.found += 1;
        Ok(Some(msg))
    }
}

fn read_exact_or<R: Read>(
    input: &mut R,
    buf: &mut [u8],
    eof: BundleError,
) -> Result<(), BundleError> {
    match input.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(eof),
        Err(e) => Err(e.into()),
    }
}

/// A clock file: what a node holds, feed by feed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockFile {
    /// Format marker and version.
    pub potluck_clock: u32,
    /// Feed → latest sequence held.
    pub feeds: BTreeMap<FeedId, u64>,
}

impl ClockFile {
    /// A clock of the given heads.
    pub fn new(feeds: BTreeMap<FeedId, u64>) -> ClockFile {
        ClockFile {
            potluck_clock: 1,
            feeds,
        }
    }

    /// Parses a clock file (at most [`MAX_CLOCK_FILE`] bytes).
    pub fn read<R: Read>(input: R) -> Result<ClockFile, BundleError> {
        let mut text = String::new();
        input
            .take(MAX_CLOCK_FILE)
            .read_to_string(&mut text)
            .map_err(|e| BundleError::BadClock(e.to_string()))?;
        let clock: ClockFile =
            serde_json::from_str(&text).map_err(|e| BundleError::BadClock(e.to_string()))?;
        if clock.potluck_clock != 1 {
            return Err(BundleError::BadClock(format!(
                "version {} is not supported",
                clock.potluck_clock
            )));
        }
        Ok(clock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::message::MessageId;
    use ed25519_dalek::SigningKey;

    fn feed(n: u64) -> Vec<Message> {
        let key = SigningKey::from_bytes(&[3; 32]);
        let mut prev = MessageId::default();
        (1..=n)
            .map(|seq| {
                let m = Message::sign(&key, seq, prev, 0, br#"{"type":"x"}"#).unwrap();
                prev = m.id();
                m
            })
            .collect()
    }

    #[test]
    fn round_trip() {
        let msgs = feed(5);
        let mut buf = Vec::new();
        assert_eq!(write_bundle(&mut buf, msgs.clone()).unwrap(), 5);
        let (back, problem) = read_bundle(&mut buf.as_slice());
        assert!(problem.is_none());
        assert_eq!(back, msgs);
    }

    #[test]
    fn damage_is_reported_after_the_valid_prefix() {
        let msgs = feed(5);
        let mut buf = Vec::new();
        write_bundle(&mut buf, msgs.clone()).unwrap();
        // Cut inside the fourth message.
        let cut = 16 + 3 * (4 + msgs[0].bytes().len()) + 10;
        let (back, problem) = read_bundle(&mut &buf[..cut]);
        assert_eq!(back.len(), 3);
        assert!(matches!(problem, Some(BundleError::Truncated(3))));
        // No end marker.
        let (back, problem) = read_bundle(&mut &buf[..buf.len() - 12]);
        assert_eq!(back.len(), 5);
        assert!(matches!(problem, Some(BundleError::Truncated(5))));
        // An impossible length.
        let mut bad = buf.clone();
        bad[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
        let (back, problem) = read_bundle(&mut bad.as_slice());
        assert!(back.is_empty());
        assert!(matches!(problem, Some(BundleError::BadLength { .. })));
        // Not a bundle.
        let (_, problem) = read_bundle(&mut &b"hello"[..]);
        assert!(matches!(problem, Some(BundleError::NotABundle)));
        // Wrong count.
        let mut bad = buf.clone();
        let n = bad.len();
        bad[n - 1] = 9;
        let (back, problem) = read_bundle(&mut bad.as_slice());
        assert_eq!(back.len(), 5);
        assert!(matches!(
            problem,
            Some(BundleError::CountMismatch { said: 9, found: 5 })
        ));
    }

    #[test]
    fn clock_files_round_trip_and_reject_junk() {
        let clock = ClockFile::new([(FeedId([1; 32]), 7)].into());
        let text = serde_json::to_string(&clock).unwrap();
        assert_eq!(ClockFile::read(text.as_bytes()).unwrap(), clock);
        assert!(ClockFile::read(&b"{}"[..]).is_err());
        assert!(ClockFile::read(&br#"{"potluck_clock":2,"feeds":{}}"#[..]).is_err());
    }
}
