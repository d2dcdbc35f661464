//! The node's ed25519 identity and its secret key file.
//!
//! The key file is JSON (`{"curve":"ed25519","secret":"<base64 seed>","id":"@…"}`),
//! written once with mode 0600 and never overwritten. A key file that group
//! or others can read is refused: a leaked key lets anyone write as you.

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
    /// Reading or writing the key file failed.
    #[error("cannot access key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    curve: String,
    secret: String,
    id: FeedId,
}

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
        let path = home.secret_path();
        let identity = Identity::generate();
        let file = KeyFile {
            curve: "ed25519".into(),
            secret: B64.encode(identity.key.to_bytes()),
            id: identity.feed_id(),
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
        Ok(identity)
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
        // A key file is about 150 bytes; never read a huge file whole.
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len > 4096 {
            return Err(IdentityError::Corrupt {
                path,
                reason: format!("{len} bytes is far too large for a key file"),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| IdentityError::Io {
            path: path.clone(),
            source,
        })?;
        let corrupt = |reason: String| IdentityError::Corrupt {
            path: path.clone(),
            reason,
        };
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
        if file.curve != "ed25519" {
            return Err(corrupt(format!("unknown curve `{}`", file.curve)));
        }
        let seed: [u8; 32] = B64
            .decode(file.secret.trim())
            .map_err(|e| corrupt(format!("secret is not base64: {e}")))?
            .try_into()
            .map_err(|_| corrupt("secret is not 32 bytes".into()))?;
        let identity = Identity {
            key: SigningKey::from_bytes(&seed),
        };
        if identity.feed_id() != file.id {
            return Err(corrupt("the id does not match the secret".into()));
        }
        Ok(identity)
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
