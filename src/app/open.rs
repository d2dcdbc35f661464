//! Opening a home: the one composition root (identity, store, node), with
//! the rules about a home's identity in one place.
//!
//! - Only an empty home gets a new identity. A home whose key file is
//!   gone but which holds a store, or a record of what it published,
//!   refuses ([`AppError::IdentityLost`]): a new identity would take over
//!   nothing, and everything the person published would be left behind.
//! - Opening holds the home's open lock (`HOME/open.lock`) while it looks
//!   at the key and the store and opens them, so that a command run while
//!   `potluck serve` creates the home sees either nothing or a whole home,
//!   never a key without its store (which the lost-store rule would take
//!   for a store that was lost).

use std::path::Path;
use std::sync::Arc;

use crate::home::Home;
use crate::home::config::ConfigFile;
use crate::home::identity::{ExportedKey, Identity, IdentityError, MAX_KEY_FILE_LEN};
use crate::node::{Node, NodeConfig, Timing};
use crate::proto::handshake::NetworkKey;
use crate::store::Store;

use super::{App, AppError};

/// What a front end needs of a home.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reading only: no identity is needed (nor loaded).
    Read,
    /// Reading only, to check every message and index once (`fsck`): as
    /// [`Access::Read`], with a store whose page cache is small, since a
    /// check reads each page once.
    Check,
    /// Publishing: the home's identity must exist.
    Write,
    /// Publishing, creating the identity (and the home) when the home is
    /// empty: the rule for every command that takes part (serve, join,
    /// sync, import, announce, name, follow and the like).
    Create,
    /// Like `Create`, also when the home holds a store whose key is gone:
    /// starting over as a new person, on purpose (`init --new-identity`).
    NewIdentity,
}

/// Longest wait for another process that is opening the same home.
const OPEN_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl App {
    /// Opens `home` for `access`: the identity (created when allowed),
    /// the store, and a node over them that opens no socket until
    /// [`App::start`]. [`App::created_identity`] tells whether the
    /// identity is new.
    pub fn open(home: &Home, access: Access) -> Result<App, AppError> {
        App::open_with(home, access, None)
    }

    /// Makes `home`, which must be empty, the home of a key made
    /// elsewhere (`potluck init --import-key`: the browser page's export)
    /// and opens it for publishing. Its feed may already hold messages
    /// that this home has never seen, so the home starts as one whose
    /// store lost its feed: nothing is published until the feed is
    /// fetched back ([`App::recover`], or any exchange that brings it:
    /// `join`, `hub add`, `sync`, `serve`) or the loss is accepted
    /// (`recover --start-over`). A home with an identity refuses
    /// ([`IdentityError::AlreadyExists`]), as does one whose key was lost.
    pub fn open_imported(home: &Home, key: ImportedKey) -> Result<App, AppError> {
        App::open_with(home, Access::Write, Some(key.0))
    }

    fn open_with(
        home: &Home,
        access: Access,
        imported: Option<ExportedKey>,
    ) -> Result<App, AppError> {
        let creating = matches!(access, Access::Create | Access::NewIdentity) || imported.is_some();
        if HomeState::of(home) == HomeState::Empty && !creating {
            // Never create a store in a home that was never initialised.
            return Err(IdentityError::Missing {
                home: home.root().to_path_buf(),
            }
            .into());
        }
        if creating {
            home.create()?;
        }
        let _lock = OpenLock::take(home)?;
        // Looked at again under the lock: another process may have made
        // the home meanwhile.
        let state = HomeState::of(home);
        // How much of the feed the imported key published, at least: what
        // the export says (a browser's key file), else one message.
        let imported_published = imported
            .as_ref()
            .map(|key| key.published.unwrap_or(1).max(1));
        let identity = match (state, imported) {
            (HomeState::Empty, Some(ExportedKey { identity, .. })) => {
                identity.write_new(home)?;
                Some(identity)
            }
            (HomeState::Identity, Some(_)) => {
                return Err(IdentityError::AlreadyExists {
                    path: home.secret_path(),
                }
                .into());
            }
            (HomeState::KeyLost, Some(_)) => return Err(lost(home)),
            (state, None) => App::identity_for(home, state, access)?,
        };
        let created = identity.is_some() && state != HomeState::Identity;
        // A key whose store is gone, in a home from before stores recorded
        // how far they published, or a key imported from elsewhere:
        // whatever was published is unknown, so at least one message is
        // assumed, and publishing waits for `recover`. Marked on any open,
        // reading ones too, and before the store is made: a store without
        // the mark would be taken for a whole one by the next open.
        let store_lost = imported_published.is_some()
            || (state == HomeState::Identity
                && !home.store_path().exists()
                && !Store::has_published_mark(&home.store_path()));
        if store_lost {
            let feed = match &identity {
                Some(identity) => identity.feed_id(),
                None => Identity::load(home)?.feed_id(),
            };
            let at_least = imported_published.unwrap_or(1);
            Store::mark_published_before_open(&home.store_path(), feed, at_least)?;
        }
        let store = Arc::new(if access == Access::Check {
            Store::open_to_check(&home.store_path())?
        } else {
            Store::open(&home.store_path())?
        });
        let mut app = match identity {
            Some(identity) => {
                let node = Node::new(store, node_config(home, &identity)?);
                // Our hubs, for a tunnel even from a command without a
                // running node.
                let config = ConfigFile::load(home)?;
                node.set_member_settings(crate::node::MemberSettings {
                    hubs: config.hub_addrs()?,
                    tunnels_from_hub_members: config.tunnels_from_hub_members.unwrap_or(false),
                });
                App::new(node)
            }
            None => App::read_only(store),
        };
        app.home = Some(home.clone());
        app.created = created;
        Ok(app)
    }
}

impl App {
    /// The identity an open of a home in `state` for `access` uses:
    /// loaded, created (only where the rules above allow), or none for
    /// reading.
    fn identity_for(
        home: &Home,
        state: HomeState,
        access: Access,
    ) -> Result<Option<Identity>, AppError> {
        Ok(match (state, access) {
            (HomeState::Identity, Access::Read | Access::Check) => None,
            (HomeState::Identity, _) => Some(Identity::load(home)?),
            (HomeState::KeyLost, Access::Read | Access::Check) => None,
            (HomeState::KeyLost, Access::NewIdentity) => Some(Identity::create(home)?),
            (HomeState::KeyLost, _) => return Err(lost(home)),
            (HomeState::Empty, Access::Create | Access::NewIdentity) => {
                Some(Identity::create(home)?)
            }
            (HomeState::Empty, _) => {
                return Err(IdentityError::Missing {
                    home: home.root().to_path_buf(),
                }
                .into());
            }
        })
    }
}

/// A key made elsewhere, read and checked, for [`App::open_imported`]:
/// the browser page's key file or recovery code (docs/browser-keys.md).
pub struct ImportedKey(ExportedKey);

impl ImportedKey {
    /// Reads the key in `path`: a key file, or a text file holding a
    /// recovery code. Anything else is refused, naming what is wrong.
    pub fn read(path: &Path) -> Result<ImportedKey, AppError> {
        let file = std::fs::File::open(path).map_err(AppError::file("read", path))?;
        ImportedKey::read_from(file, &path.display().to_string())
    }

    /// Reads a key, as [`ImportedKey::read`] takes them, from `input`,
    /// which people know as `from` (standard input, say).
    pub fn read_from(input: impl std::io::Read, from: &str) -> Result<ImportedKey, AppError> {
        use std::io::Read as _;
        // One byte more than a key file may have, so that a larger input
        // is refused as such rather than read whole.
        let mut bytes = Vec::new();
        input
            .take(MAX_KEY_FILE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(AppError::file("read", Path::new(from)))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| IdentityError::NotAKey {
            from: from.to_owned(),
            reason: "it is not text (a key file is JSON, a recovery code letters and digits)"
                .into(),
        })?;
        Ok(ImportedKey(Identity::from_export(text, from)?))
    }
}

/// What a home holds, as far as its identity goes: the one rule for
/// whether a new identity may be made in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HomeState {
    /// No key file, no store, no record of publishing: a new person may
    /// start here.
    Empty,
    /// A key file.
    Identity,
    /// No key file, but a store or a record of what this home published:
    /// the key was lost, and a new one would own none of it.
    KeyLost,
}

impl HomeState {
    pub(crate) fn of(home: &Home) -> HomeState {
        if home.secret_path().exists() {
            HomeState::Identity
        } else if home.store_path().exists() || Store::has_published_mark(&home.store_path()) {
            HomeState::KeyLost
        } else {
            HomeState::Empty
        }
    }
}

impl App {
    /// Sets the network of a home that has no identity yet (`init
    /// --network-key HEX`: a private network's key, 64 hex digits).
    pub fn set_network(home: &Home, network_key_hex: Option<&str>) -> Result<(), AppError> {
        let Some(hex) = network_key_hex else {
            return Ok(());
        };
        let network = NetworkKey::from_hex(hex)?;
        if HomeState::of(home) == HomeState::KeyLost {
            // Refused before config.json changes.
            return Err(lost(home));
        }
        home.create()?;
        let mut config = ConfigFile::load(home)?;
        config.network_key = Some(network.to_hex());
        config.save(home)?;
        Ok(())
    }
}

/// The refusal of a home whose key is lost.
pub(crate) fn lost(home: &Home) -> AppError {
    AppError::IdentityLost {
        home: home.root().to_path_buf(),
        key: home.secret_path(),
    }
}

/// The node's settings: our key, the network and policy of `config.json`,
/// and the default timing.
fn node_config(home: &Home, identity: &Identity) -> Result<NodeConfig, AppError> {
    let config = ConfigFile::load(home)?;
    Ok(NodeConfig {
        identity: identity.signing_key().clone(),
        network: config.network_key()?,
        policy: config.policy(),
        timing: Timing::default(),
    })
}

/// The home's open lock, held while a process opens the home.
struct OpenLock {
    _file: std::fs::File,
}

impl OpenLock {
    fn take(home: &Home) -> Result<OpenLock, AppError> {
        let path = home.root().join("open.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(AppError::file("open", &path))?;
        let started = std::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(OpenLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < OPEN_LOCK_WAIT => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                // Another process has been opening the home for long (a
                // store upgrade takes minutes): the store is in use.
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(AppError::Store(crate::store::StoreError::Locked {
                        path: home.store_path().display().to_string(),
                    }));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(AppError::file("lock", &path)(e));
                }
            }
        }
    }
}

/// The page's access token, made by `potluck page-token`.
pub struct PageToken;

impl PageToken {
    /// The token of `home`, if one was made; an error when its file is
    /// damaged.
    pub fn read(home: &Home) -> Result<Option<String>, AppError> {
        let path = home.page_token_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let token = text.trim();
                if token.len() < 32 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(AppError::Refused(format!(
                        "{} is damaged; make a new token with `potluck page-token --new`",
                        path.display()
                    )));
                }
                Ok(Some(token.to_owned()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(AppError::file("read", &path)(e)),
        }
    }

    /// Makes a new token for `home` (replacing one only when `replace`),
    /// kept readable only by its owner. Returns it and its file.
    pub fn make(home: &Home, replace: bool) -> Result<(String, std::path::PathBuf), AppError> {
        let path = home.page_token_path();
        if !replace && PageToken::read(home)?.is_some() {
            return Err(AppError::Refused(format!(
                "a page token exists already ({}); `potluck page-token --new` replaces it",
                path.display()
            )));
        }
        home.create()?;
        let token = new_secret();
        write_private(&path, format!("{token}\n").as_bytes())?;
        Ok((token, path))
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    crate::home::write_private(path, bytes).map_err(AppError::file("write", path))
}

/// A fresh random secret (32 bytes, hex): page tokens, CSRF secrets.
pub fn new_secret() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}
