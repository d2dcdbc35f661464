//! Where a command runs ([`Ctx`]): in this process over the home's store,
//! or inside a running node that was handed the command. Opening the
//! store, the identity (created on first use, with a [`welcome`]) and the
//! node that publishing goes through.

use std::sync::Arc;

use anyhow::{Context, Result};

use potluck::app::App;
use potluck::content::{About, KnownContent};
use potluck::feed::message::FeedId;
use potluck::home::Home;
use potluck::home::config::ConfigFile;
use potluck::home::identity::Identity;
use potluck::node::{Node, NodeConfig, Timing};
use potluck::store::Store;

use super::output::Output;

/// Where a command runs: in this process, or inside a running node.
pub struct Ctx {
    /// The home.
    pub home: Home,
    /// The running node, when the command was handed to it.
    pub node: Option<Arc<Node>>,
    /// Where the running node listens, when the command was handed to it.
    pub serving: Option<Serving>,
}

/// What a running node knows about itself that a command may need.
#[derive(Clone, Debug)]
pub struct Serving {
    /// The address it accepts peers on.
    pub listen: std::net::SocketAddr,
    /// The web page's address (with the access token when one is needed),
    /// unless the page is off.
    pub page: Option<String>,
}

impl Ctx {
    /// The application with our identity: inside the running node, or
    /// over the store opened here (a node that never opens a socket, so
    /// that publishing takes the same path).
    pub fn open(&self) -> Result<App> {
        match &self.node {
            Some(node) => Ok(App::new(node.clone())),
            None => {
                let identity = Identity::load(&self.home)?;
                let store = Arc::new(open_store(&self.home)?);
                Ok(App::new(offline_node(store, &identity, &self.home)?))
            }
        }
    }

    /// The application with our identity, which is created when the home
    /// has none: the rule for every command that takes part (serve, join,
    /// sync, import, announce, name, follow and the like). See
    /// [`identity_or_create`]. `ask_name`: whether a new identity's
    /// [`welcome`] asks for a name (not when the command is about to set
    /// it).
    pub fn open_creating(&self, out: &Output, ask_name: bool) -> Result<App> {
        if self.node.is_some() {
            return self.open();
        }
        let (identity, created) = identity_or_create(&self.home)?;
        let store = Arc::new(open_identity_store(&self.home, created)?);
        if created {
            welcome(&self.home, &store, &identity, out.json, ask_name)?;
        }
        Ok(App::new(offline_node(store, &identity, &self.home)?))
    }

    /// The application for reading (no identity needed).
    pub fn open_store(&self) -> Result<App> {
        match &self.node {
            Some(node) => Ok(App::new(node.clone())),
            None => Ok(App::read_only(Arc::new(open_store(&self.home)?))),
        }
    }

    /// Our own feed id, from the running node or the key file.
    pub fn own_feed(&self) -> Result<FeedId> {
        Ok(match &self.node {
            Some(node) => node.feed_id(),
            None => Identity::load(&self.home)?.feed_id(),
        })
    }
}

/// Opens the store of a home that has been initialised.
pub fn open_store(home: &Home) -> Result<Store> {
    if !home.secret_path().exists() && !home.store_path().exists() {
        // Never create a store in a home that was never initialised.
        return Err(potluck::home::identity::IdentityError::Missing {
            home: home.root().to_path_buf(),
        }
        .into());
    }
    // A key whose store is gone, in a home from before stores recorded
    // how far they published: whatever was published is unknown, so at
    // least one message is assumed, and publishing waits for `recover`.
    let lost = home.secret_path().exists()
        && !home.store_path().exists()
        && !Store::has_published_mark(&home.store_path());
    let store = Store::open(&home.store_path())?;
    if lost {
        store.mark_published_at_least(Identity::load(home)?.feed_id(), 1)?;
    }
    Ok(store)
}

/// The store of a home whose identity was just `created` (it has
/// published nothing), or else checked for having been lost
/// ([`open_store`]).
pub fn open_identity_store(home: &Home, created: bool) -> Result<Store> {
    if created {
        Ok(Store::open(&home.store_path())?)
    } else {
        open_store(home)
    }
}

/// The home's identity, created (with the home) when there is none.
/// Returns whether it was created, so that the caller can [`welcome`] the
/// new person once the store is open.
pub fn identity_or_create(home: &Home) -> Result<(Identity, bool)> {
    match Identity::load(home) {
        Ok(identity) => Ok((identity, false)),
        Err(potluck::home::identity::IdentityError::Missing { .. }) => {
            home.create()?;
            Ok((Identity::create(home)?, true))
        }
        Err(e) => Err(e.into()),
    }
}

/// How to set a name, for an identity that has none.
pub(crate) const NAME_HINT: &str =
    "set your name with `potluck name \"Ana\"` so others see it instead of your feed id";

/// Longest name line read at the prompt, in bytes.
const MAX_NAME_LINE: u64 = 1024;

/// Greets a new identity on stderr. In a terminal, asks for the name
/// others will see (a node without one shows up as a long feed id in
/// everyone's lists) and publishes it; otherwise, or when the person
/// skips it, says how to set it later. Quiet with `--json`.
pub fn welcome(
    home: &Home,
    store: &Store,
    identity: &Identity,
    json: bool,
    ask_name: bool,
) -> Result<()> {
    use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
    if json {
        return Ok(());
    }
    eprintln!(
        "created a new identity {} in {}",
        identity.feed_id(),
        home.root().display()
    );
    if !ask_name {
        return Ok(());
    }
    let later = NAME_HINT;
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        eprintln!("{later}");
        return Ok(());
    }
    eprint!("your name, as others will see it (Enter to skip): ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let read = std::io::stdin()
        .lock()
        .take(MAX_NAME_LINE)
        .read_line(&mut line);
    let name = line.trim();
    if read.is_err() || name.is_empty() {
        eprintln!("{later}");
        return Ok(());
    }
    let about = About {
        name: name.to_owned(),
        description: None,
    };
    match about.validate() {
        Ok(()) => {
            store.publish(identity.signing_key(), &about.to_content_bytes(), now_ms())?;
            eprintln!("name set to {name}");
        }
        Err(e) => eprintln!("{e}; {later}"),
    }
    Ok(())
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The tokio runtime of a command that runs a node or dials a peer.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The node's settings: our key, the network and policy of `config.json`,
/// and the default timing.
pub(crate) fn node_config(identity: &Identity, config: &ConfigFile) -> Result<NodeConfig> {
    Ok(NodeConfig {
        identity: identity.signing_key().clone(),
        network: config.network_key()?,
        policy: config.policy(),
        timing: Timing::default(),
    })
}

/// A node over an open store that never opens a socket: for ingesting
/// bundles through the same path as gossip when no node is running.
pub fn offline_node(store: Arc<Store>, identity: &Identity, home: &Home) -> Result<Arc<Node>> {
    let config = ConfigFile::load(home)?;
    Ok(Node::new(store, node_config(identity, &config)?))
}
