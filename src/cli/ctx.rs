//! Where a command runs ([`Ctx`]): in this process over the home, or
//! inside a running node that was handed the command. Either way the
//! command gets an [`App`]; a new identity gets a [`welcome`].

use std::cell::RefCell;

use anyhow::{Context, Result};

use potluck::app::{Access, App, Home, now_ms};

use super::output::Output;

/// Where a command runs: in this process, or inside a running node.
pub struct Ctx {
    /// The home.
    pub home: Home,
    /// The running node's app, when the command was handed to it.
    pub running: Option<App>,
    /// The app this process opened last, kept until [`Ctx::finish`] so
    /// that the process exits without tearing its store down.
    opened: RefCell<Option<App>>,
}

impl Ctx {
    /// A command run in this process over `home`.
    pub fn here(home: Home) -> Ctx {
        Ctx {
            home,
            running: None,
            opened: RefCell::default(),
        }
    }

    /// A command handed over to the node that runs `app`.
    pub fn in_node(home: Home, app: App) -> Ctx {
        Ctx {
            home,
            running: Some(app),
            opened: RefCell::default(),
        }
    }

    /// Ends a command run in this process: saves what closing its store
    /// would save, then leaves the store open for the exit that follows
    /// (see [`App::save_before_exit`]; on a 10M-message store the
    /// teardown was a tenth of `potluck whoami`). Call it last: a store
    /// left open keeps its home locked until the process ends.
    pub fn finish(self) {
        if let Some(app) = self.opened.into_inner() {
            if let Err(e) = app.save_before_exit() {
                tracing::warn!(error = %e, "could not save the store before exiting; the next open makes again what it lacks");
            }
            std::mem::forget(app);
        }
    }

    /// The app with our identity (which must exist): the running node's,
    /// or one opened here.
    pub fn open(&self) -> Result<App> {
        self.open_for(Access::Write)
    }

    /// The app with our identity, which is created when the home is
    /// empty: the rule for every command that takes part (serve, join,
    /// sync, import, announce, name, follow and the like). `ask_name`:
    /// whether a new identity's [`welcome`] asks for a name (not when the
    /// command is about to set it).
    pub fn open_creating(&self, out: &Output, ask_name: bool) -> Result<App> {
        let app = self.open_for(Access::Create)?;
        if app.created_identity() {
            welcome(&self.home, &app, out.json, ask_name)?;
        }
        Ok(app)
    }

    /// The app for reading (no identity needed).
    pub fn open_store(&self) -> Result<App> {
        self.open_for(Access::Read)
    }

    fn open_for(&self, access: Access) -> Result<App> {
        if let Some(app) = &self.running {
            return Ok(app.clone());
        }
        // The app opened before is closed first, if the command let go of
        // it, as it was before apps were kept: a second open of a home
        // waits for the first to close.
        drop(self.opened.take());
        let app = App::open(&self.home, access)?;
        *self.opened.borrow_mut() = Some(app.clone());
        Ok(app)
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
pub fn welcome(home: &Home, app: &App, json: bool, ask_name: bool) -> Result<()> {
    use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
    if json {
        return Ok(());
    }
    eprintln!(
        "created a new identity {} in {}",
        app.feed_id()?,
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
    // Through the app, like every publish: admissions and live peers hear it.
    match app.set_name(name.to_owned(), now_ms()) {
        Ok(()) => eprintln!("name set to {name}"),
        Err(potluck::app::AppError::Content(e)) => eprintln!("{e}; {later}"),
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// The tokio runtime of `serve`.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
