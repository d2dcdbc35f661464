//! The control socket as front ends use it: a command line typed while a
//! node runs for the home is handed to that node, which owns the store,
//! and run there ([`ControlSocket::serve`]); the typing process prints
//! the answer as it arrives.

use crate::home::Home;
use crate::node::control;

#[cfg(unix)]
use super::App;
use super::AppError;

pub use crate::node::control::{ControlError, ControlResponse, Handler, Stream};

/// Whether a node runs for `home` (it answers on its control socket).
pub fn is_running(home: &Home) -> bool {
    #[cfg(unix)]
    {
        control::is_running(&control::socket_path(home))
    }
    #[cfg(not(unix))]
    {
        let _ = home;
        false
    }
}

/// Hands `args` to the node running for `home` and each piece of its
/// answer to `piece` as it arrives; the exit status, or `None` when no
/// node runs.
#[cfg(unix)]
pub fn forward_each<E: From<ControlError>>(
    home: &Home,
    args: &[String],
    piece: impl FnMut(Stream, &str) -> Result<(), E>,
) -> Result<Option<i32>, E> {
    control::forward_each(&control::socket_path(home), args, piece)
}

/// The control socket of `home`, bound (owner-only) before the node is
/// announced, so that a second `serve` for the same home is refused.
#[cfg(unix)]
pub struct ControlSocket {
    listener: tokio::net::UnixListener,
    path: std::path::PathBuf,
}

#[cfg(unix)]
impl ControlSocket {
    /// Binds the socket of `home`, refusing when a live node holds it.
    /// Needs a tokio runtime.
    pub fn bind(home: &Home) -> Result<ControlSocket, AppError> {
        // `serve` binds it before the home is opened, on a first run too.
        home.create()?;
        let path = control::socket_path(home);
        Ok(ControlSocket {
            listener: control::bind(&path)?,
            path,
        })
    }

    /// Answers handed-over commands with `handler` until `app`'s node
    /// shuts down; removes the socket afterwards.
    pub async fn serve(self, app: &App, handler: Handler) {
        let Ok(node) = app.writer() else {
            return;
        };
        control::serve(self.listener, self.path, handler, node.subscribe_shutdown()).await
    }
}
