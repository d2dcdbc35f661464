//! The local control socket: while `potluck serve` owns the store, other
//! `potluck` commands hand their arguments to the node over a Unix socket
//! in the home (owner-only), and the node runs them against its store.
//!
//! One request per connection: a JSON line `{"args": [...]}`, answered by
//! a JSON line `{"code": N, "stdout": "...", "stderr": "..."}`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::home::Home;

/// Largest request or response line.
const MAX_LINE: usize = 4 * 1024 * 1024;
/// How long a client waits for the node (a `sync` may take a while).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(600);

/// A command forwarded to the node.
#[derive(Debug, Serialize, Deserialize)]
pub struct ControlRequest {
    /// The command line, without the program name.
    pub args: Vec<String>,
}

/// What the node answered.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ControlResponse {
    /// Exit status for the client.
    pub code: i32,
    /// Text for the client's stdout.
    pub stdout: String,
    /// Text for the client's stderr.
    pub stderr: String,
}

/// A control socket problem.
#[derive(Debug, Error)]
pub enum ControlError {
    /// Another node already serves this home.
    #[error("a potluck node is already running for {0}")]
    AlreadyRunning(String),
    /// The socket failed.
    #[error("control socket {path}: {source}")]
    Io {
        /// The socket path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The node answered with something unreadable.
    #[error("the running node sent a bad answer: {0}")]
    BadResponse(String),
}

/// Path of the control socket in a home.
pub fn socket_path(home: &Home) -> PathBuf {
    home.root().join("control.sock")
}

/// Runs one request; the node's side of the socket.
pub type Handler = Arc<dyn Fn(Vec<String>) -> ControlResponse + Send + Sync>;

#[cfg(unix)]
mod imp {
    use super::*;
    use tokio::net::{UnixListener, UnixStream};

    /// Binds the socket (owner-only), refusing if a live node holds it.
    pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
        let io = |source| ControlError::Io {
            path: path.display().to_string(),
            source,
        };
        if path.exists() {
            if is_running(path) {
                return Err(ControlError::AlreadyRunning(path.display().to_string()));
            }
            // A socket left behind by a node that died.
            std::fs::remove_file(path).map_err(io)?;
        }
        let listener = UnixListener::bind(path).map_err(io)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        Ok(listener)
    }

    /// Serves requests until `stop` fires; removes the socket afterwards.
    pub async fn serve(
        listener: UnixListener,
        path: PathBuf,
        handler: Handler,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.changed() => break,
            };
            let Ok((stream, _)) = accepted else { continue };
            let handler = handler.clone();
            tokio::spawn(async move {
                if let Err(e) = answer(stream, handler).await {
                    tracing::debug!(error = %e, "control request failed");
                }
            });
        }
        let _ = std::fs::remove_file(&path);
    }

    async fn answer(stream: UnixStream, handler: Handler) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut line = String::new();
        let n = BufReader::new(read.take(MAX_LINE as u64))
            .read_line(&mut line)
            .await?;
        let response = match serde_json::from_str::<ControlRequest>(&line[..n]) {
            Ok(req) => tokio::task::spawn_blocking(move || handler(req.args))
                .await
                .unwrap_or_else(|e| ControlResponse {
                    code: 1,
                    stdout: String::new(),
                    stderr: format!("error: the node failed to run the command: {e}\n"),
                }),
            Err(e) => ControlResponse {
                code: 2,
                stdout: String::new(),
                stderr: format!("error: bad control request: {e}\n"),
            },
        };
        let mut out = serde_json::to_vec(&response).unwrap_or_default();
        out.push(b'\n');
        write.write_all(&out).await?;
        write.shutdown().await
    }

    /// True when a node answers on the control socket at `path`.
    pub fn is_running(path: &Path) -> bool {
        std::os::unix::net::UnixStream::connect(path).is_ok()
    }

    /// Sends `args` to a running node; `None` when no node is running.
    pub fn forward(path: &Path, args: &[String]) -> Result<Option<ControlResponse>, ControlError> {
        use std::io::{BufRead, Read, Write};
        let io = |source| ControlError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut stream = match std::os::unix::net::UnixStream::connect(path) {
            Ok(s) => s,
            Err(_) => return Ok(None),
        };
        stream.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
        let mut req = serde_json::to_vec(&ControlRequest {
            args: args.to_vec(),
        })
        .map_err(|e| ControlError::BadResponse(e.to_string()))?;
        req.push(b'\n');
        stream.write_all(&req).map_err(io)?;
        let mut line = String::new();
        std::io::BufReader::new(stream.take(MAX_LINE as u64))
            .read_line(&mut line)
            .map_err(io)?;
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| ControlError::BadResponse(e.to_string()))
    }
}

#[cfg(unix)]
pub use imp::{bind, forward, is_running, serve};
