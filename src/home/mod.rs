//! The home directory: where a node keeps its identity and its store.
//!
//! Resolution order: the `--home` flag, then `POTLUCK_HOME`, then the
//! platform's data directory (`~/.local/share/potluck` on Linux).

pub mod config;
pub mod identity;
pub mod recovery_code;

use std::path::{Path, PathBuf};

use thiserror::Error;

/// Environment variable that overrides the default home.
pub const HOME_ENV: &str = "POTLUCK_HOME";

/// A failure to locate or create the home directory.
#[derive(Debug, Error)]
pub enum HomeError {
    /// Neither a flag, the variable, nor the platform gave a directory.
    #[error("cannot find a data directory for potluck: pass --home DIR or set {HOME_ENV}")]
    NoDataDir,
    /// The directory could not be created.
    #[error("cannot create home directory {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The home directory of one node.
#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Picks the home: `explicit` (from `--home` or `POTLUCK_HOME`, which
    /// clap merges) or the platform default.
    pub fn resolve(explicit: Option<PathBuf>) -> Result<Home, HomeError> {
        let root = match explicit {
            Some(dir) => dir,
            None => dirs::data_dir()
                .ok_or(HomeError::NoDataDir)?
                .join("potluck"),
        };
        Ok(Home { root })
    }

    /// A home at an exact directory (tests, benches).
    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// Creates the directory (owner-only on Unix) if it does not exist.
    /// An existing directory is used as it is: its mode is the owner's
    /// choice (a shared 1777 directory must stay shared), and what needs
    /// protecting inside it (the key, config.json, the control socket) is
    /// created owner-only anyway.
    pub fn create(&self) -> Result<(), HomeError> {
        let err = |source| HomeError::Create {
            path: self.root.clone(),
            source,
        };
        if self.root.is_dir() {
            return Ok(());
        }
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&self.root).map_err(err)
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The secret key file.
    pub fn secret_path(&self) -> PathBuf {
        self.root.join("secret")
    }

    /// The sled store directory.
    pub fn store_path(&self) -> PathBuf {
        self.root.join("store")
    }

    /// The web page's access token (needed only when the page listens
    /// beyond this computer).
    pub fn page_token_path(&self) -> PathBuf {
        self.root.join("page-token")
    }
}

/// Writes a file only its owner can read, whole or not at all (a
/// temporary file, synced, then renamed over `path`).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_parent(path)
}

/// Makes a rename or a new file in `path`'s directory durable: the file's
/// own sync does not cover the directory entry that names it.
pub fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)?.sync_all()
}
