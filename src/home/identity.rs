//! The node's ed25519 identity and its secret key file.
//!
//! The key file is JSON (`{"curve":"ed25519","secret":"<base64 seed>","id":"@…"}`),
//! written once with mode 0600 and never overwritten. A key file that group
//! or others can read is refused: a leaked key lets anyone write as you.
//!
//! A key made elsewhere (the browser page's export: this key file, or a
//! recovery code) is read by [`Identity::from_export`] with the same rules
//! as the home's own key file, and written with the same care.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::feed::message::FeedId;
use crate::home::Home;

/// A failure to create or load the identity.
#[derive(Debug, Error)]
pub enum IdentityError {
    /// No key file in the home.
    #[error(
        "no identity in {home} yet: run `potluck init --name \"Ana\"` (serve, join, sync, \
         import, announce, name and follow create one too)"
    )]
    Missing {
        /// The home directory.
        home: PathBuf,
    },
    /// `init` found a key already there.
    #[error("an identity already exists at {path}; refusing to overwrite it")]
    AlreadyExists {
        /// The key file.
        path: PathBuf,
    },
    /// The key file is readable by group or others.
    #[error(
        "key file {path} has mode {mode:o}, readable by others; run `chmod 600 {path}` and retry"
    )]
    InsecurePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file exists but does not hold a key.
    #[error("key file {path} is damaged: {reason}")]
    Corrupt {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key to import (a key file or a recovery code made elsewhere) is
    /// not a usable key. Found before anything is written.
    #[error("cannot import the key in {from}: {reason}; nothing was written")]
    NotAKey {
        /// Where it came from (a file, standard input).
        from: String,
        /// What is wrong, for people.
        reason: String,
    },
    /// Reading or writing the key file failed.
    #[error("cannot access key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Largest key file read: one is about 150 bytes, so never read a huge
/// file whole.
pub const MAX_KEY_FILE_LEN: u64 = 4096;

/// The only curve of a potluck key.
const CURVE: &str = "ed25519";

/// The key file as written. `id` is read as text, so that a malformed id
/// is named as such rather than as a JSON error.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    curve: String,
    secret: String,
    id: String,
    /// The latest sequence the exporter had signed: a browser's key file
    /// says it, so that a node taking the key waits until it holds that
    /// much of the feed before it publishes (else it would fork the feed).
    /// A node's own key file leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    published: Option<u64>,
}

/// A key exported elsewhere, as [`Identity::from_export`] reads it.
pub struct ExportedKey {
    /// The identity.
    pub identity: Identity,
    /// How far the exporter had published the feed, when the export says
    /// (a key file from the browser page; a recovery code cannot).
    pub published: Option<u64>,
}

/// The most a key file's `published` may say: a clock's largest sequence.
const MAX_PUBLISHED: u64 = crate::proto::wire::MAX_CLOCK_SEQUENCE;

/// A node's signing identity.
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// Wraps an existing key (tests, benches).
    pub fn from_key(key: SigningKey) -> Identity {
        Identity { key }
    }

    /// A fresh random identity.
    pub fn generate() -> Identity {
        Identity {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The public feed id.
    pub fn feed_id(&self) -> FeedId {
        FeedId(self.key.verifying_key().to_bytes())
    }

    /// Creates a new identity in `home`, refusing if a key file exists.
    pub fn create(home: &Home) -> Result<Identity, IdentityError> {
        let identity = Identity::generate();
        identity.write_new(home)?;
        Ok(identity)
    }

    /// Writes this identity as `home`'s key file (mode 0600), refusing if
    /// one exists: a key file is never overwritten, whatever replaces it.
    pub fn write_new(&self, home: &Home) -> Result<(), IdentityError> {
        let path = home.secret_path();
        let file = KeyFile {
            curve: CURVE.into(),
            secret: B64.encode(self.key.to_bytes()),
            id: self.feed_id().to_string(),
            published: None,
        };
        let io = |source| IdentityError::Io {
            path: path.clone(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut out = match options.open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(IdentityError::AlreadyExists { path });
            }
            Err(e) => return Err(io(e)),
        };
        let text = serde_json::to_string_pretty(&file).map_err(|e| IdentityError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        out.write_all(text.as_bytes()).map_err(io)?;
        out.write_all(b"\n").map_err(io)?;
        out.sync_all().map_err(io)?;
        // The file's own sync does not cover the name that makes it the
        // home's key.
        crate::home::sync_parent(&path).map_err(io)
    }

    /// The identity in a key exported elsewhere: the text of a key file
    /// (JSON, as [`Identity::write_new`] writes it and the browser page
    /// exports it) or a recovery code (see [`recovery_code`]). `from`
    /// names where the text came from, for the error.
    ///
    /// [`recovery_code`]: crate::home::recovery_code
    pub fn from_export(text: &str, from: &str) -> Result<ExportedKey, IdentityError> {
        let not_a_key = |reason: String| IdentityError::NotAKey {
            from: from.to_owned(),
            reason,
        };
        if text.len() as u64 > MAX_KEY_FILE_LEN {
            return Err(not_a_key(format!(
                "over {MAX_KEY_FILE_LEN} bytes is far too large for a key file or a recovery code"
            )));
        }
        // A key file is a JSON object; anything else can only be a code.
        if text.trim_start().starts_with('{') {
            Identity::from_key_file(text).map_err(not_a_key)
        } else {
            crate::home::recovery_code::decode(text)
                .map(|seed| ExportedKey {
                    identity: Identity::from_key(SigningKey::from_bytes(&seed)),
                    published: None,
                })
                .map_err(not_a_key)
        }
    }

    /// The identity in a key file's text, checked whole: the curve, a
    /// base64 seed of 32 bytes, and an id that is the seed's own (a file
    /// whose id names another feed was put together wrongly, and taking
    /// its seed would write as someone the file does not name).
    fn from_key_file(text: &str) -> Result<ExportedKey, String> {
        let file: KeyFile = serde_json::from_str(text)
            .map_err(|e| format!("not a key file (JSON with curve, secret and id): {e}"))?;
        if file.curve != CURVE {
            return Err(format!(
                "the curve is `{}`, and potluck keys are `{CURVE}`",
                shown(&file.curve)
            ));
        }
        let secret = B64
            .decode(file.secret.trim())
            .map_err(|e| format!("the secret is not base64: {e}"))?;
        let seed: [u8; 32] = secret
            .as_slice()
            .try_into()
            .map_err(|_| format!("the secret is {} bytes, not 32", secret.len()))?;
        let identity = Identity::from_key(SigningKey::from_bytes(&seed));
        let id = FeedId::parse(&file.id).map_err(|_| {
            format!(
                "the id `{}` is no feed id (@<base64 of 32 bytes>.ed25519)",
                shown(&file.id)
            )
        })?;
        if identity.feed_id() != id {
            return Err(format!(
                "the id {id} does not match the secret, whose feed is {}",
                identity.feed_id()
            ));
        }
        if let Some(published) = file.published
            && !(1..=MAX_PUBLISHED).contains(&published)
        {
            return Err(format!(
                "`published` is {published}; a feed's sequences run from 1 to {MAX_PUBLISHED}"
            ));
        }
        Ok(ExportedKey {
            identity,
            published: file.published,
        })
    }

    /// This identity's recovery code (what the browser page shows).
    pub fn recovery_code(&self) -> String {
        crate::home::recovery_code::encode(&self.key.to_bytes())
    }

    /// Loads the identity from `home`.
    pub fn load(home: &Home) -> Result<Identity, IdentityError> {
        let path = home.secret_path();
        if !path.exists() {
            return Err(IdentityError::Missing {
                home: home.root().to_path_buf(),
            });
        }
        check_permissions(&path)?;
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len > MAX_KEY_FILE_LEN {
            return Err(IdentityError::Corrupt {
                path,
                reason: format!("{len} bytes is far too large for a key file"),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| IdentityError::Io {
            path: path.clone(),
            source,
        })?;
        Identity::from_key_file(&text)
            .map(|key| key.identity)
            .map_err(|reason| IdentityError::Corrupt { path, reason })
    }

    /// Loads the identity, or creates one if the home has none
    /// (what `serve` does on a fresh machine).
    pub fn load_or_create(home: &Home) -> Result<Identity, IdentityError> {
        match Identity::load(home) {
            Err(IdentityError::Missing { .. }) => Identity::create(home),
            other => other,
        }
    }
}

/// A value read from a key file, for an error line: escaped (it may hold
/// a line break or a terminal's escape sequence) and cut short.
fn shown(text: &str) -> String {
    const MOST: usize = 60;
    let mut out: String = text
        .chars()
        .take(MOST)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().nth(MOST).is_some() {
        out.push('…');
    }
    out
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), IdentityError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), IdentityError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_load_refuse_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        assert!(matches!(
            Identity::load(&home),
            Err(IdentityError::Missing { .. })
        ));
        let made = Identity::create(&home).unwrap();
        let loaded = Identity::load(&home).unwrap();
        assert_eq!(made.feed_id(), loaded.feed_id());
        let before = std::fs::read(home.secret_path()).unwrap();
        assert!(matches!(
            Identity::create(&home),
            Err(IdentityError::AlreadyExists { .. })
        ));
        assert_eq!(before, std::fs::read(home.secret_path()).unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn key_file_mode_is_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        Identity::create(&home).unwrap();
        let mode = std::fs::metadata(home.secret_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(home.secret_path(), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        assert!(matches!(
            Identity::load(&home),
            Err(IdentityError::InsecurePermissions { mode: 0o644, .. })
        ));
    }

    #[test]
    fn an_exported_key_is_read_strictly() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        let made = Identity::create(&home).unwrap();
        let text = std::fs::read_to_string(home.secret_path()).unwrap();
        let read = Identity::from_export(&text, "key.json").unwrap();
        assert_eq!(read.identity.feed_id(), made.feed_id());
        assert_eq!(read.published, None, "a node's key file says nothing of it");
        let code = Identity::from_export(&made.recovery_code(), "code.txt").unwrap();
        assert_eq!(code.identity.feed_id(), made.feed_id());
        assert_eq!(code.published, None);

        let other = Identity::generate();
        let seed = B64.encode(made.key.to_bytes());
        let id = made.feed_id().to_string();
        let file = |curve: &str, secret: &str, id: &str| {
            serde_json::json!({ "curve": curve, "secret": secret, "id": id }).to_string()
        };
        for (text, expected) in [
            (file("x25519", &seed, &id), "the curve is `x25519`"),
            (file("ed25519", "not base64!", &id), "not base64"),
            (
                file("ed25519", &B64.encode([1u8; 16]), &id),
                "16 bytes, not 32",
            ),
            (file("ed25519", &seed, "@nobody"), "is no feed id"),
            (
                file("ed25519", &seed, &other.feed_id().to_string()),
                "does not match the secret",
            ),
            (format!("{{{text}"), "not a key file"),
            (
                serde_json::json!({ "curve": "ed25519", "secret": seed, "id": id, "published": 0 })
                    .to_string(),
                "`published` is 0",
            ),
            ("ABCD-EFGH".to_owned(), "56 letters and digits"),
        ] {
            let error = Identity::from_export(&text, "key.json").err().unwrap();
            assert!(matches!(error, IdentityError::NotAKey { .. }), "{error}");
            let message = error.to_string();
            assert!(message.contains(expected), "{message}");
            assert!(message.contains("key.json"), "{message}");
        }
    }

    #[test]
    fn a_browsers_key_file_says_how_far_it_published() {
        let made = Identity::generate();
        let text = serde_json::json!({
            "curve": "ed25519",
            "secret": B64.encode(made.key.to_bytes()),
            "id": made.feed_id().to_string(),
            "published": 3,
        })
        .to_string();
        let read = Identity::from_export(&text, "key.json").unwrap();
        assert_eq!(read.identity.feed_id(), made.feed_id());
        assert_eq!(read.published, Some(3));
    }

    #[test]
    fn damaged_key_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        Identity::create(&home).unwrap();
        // Too long to be a key file, and not JSON at all.
        for damaged in [" ".repeat(5000), "not json".to_owned()] {
            std::fs::write(home.secret_path(), &damaged).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(
                    home.secret_path(),
                    std::fs::Permissions::from_mode(0o600),
                )
                .unwrap();
            }
            assert!(matches!(
                Identity::load(&home),
                Err(IdentityError::Corrupt { .. })
            ));
        }
    }
}
