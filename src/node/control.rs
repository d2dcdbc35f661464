//! The local control socket: while `potluck serve` owns the store, other
//! `potluck` commands hand their arguments to the node over a Unix socket
//! in the home (owner-only), and the node runs them against its store.
//!
//! One request per connection: a JSON line `{"args": [...]}`. The answer
//! is a stream of JSON lines, so that output of any size gets through
//! while each line stays small, and the client holds one line at a time:
//!
//! - `{"stderr": "..."}` and `{"stdout": "..."}`: the next piece of the
//!   command's stderr or stdout, in order (stderr first), each at most
//!   64 KiB of text;
//! - `{"code": N}`: the exit status, always last.
//!
//! A line may carry several of these fields (a node from before the
//! stream sent one line with all three). An answer that ends before its
//! `code`, or a line over 4 MiB, is an error, never output cut short in
//! silence.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::home::Home;

/// Largest request line, and largest line of an answer a client reads.
const MAX_LINE: usize = 4 * 1024 * 1024;
/// Most text in one line of an answer. JSON escapes at most six bytes
/// for one, so a line stays far below [`MAX_LINE`].
const CHUNK: usize = 64 * 1024;
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

/// One line of an answer: a piece of stdout or stderr, or the exit status
/// that ends the answer.
#[derive(Debug, Default, Serialize, Deserialize)]
struct AnswerLine<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stderr: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stdout: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<i32>,
}

/// Which of the client's outputs a piece of an answer is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The client's stdout.
    Stdout,
    /// The client's stderr.
    Stderr,
}

/// `text` in pieces of at most `max` bytes, cut at character boundaries.
fn pieces(text: &str, max: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            // A character longer than `max`: it goes whole.
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, after) = rest.split_at(end);
        rest = after;
        Some(piece)
    })
}

impl<'a> AnswerLine<'a> {
    /// A line carrying `piece` of `stream`.
    fn text(stream: Stream, piece: &'a str) -> AnswerLine<'a> {
        let piece = Some(Cow::Borrowed(piece));
        match stream {
            Stream::Stderr => AnswerLine {
                stderr: piece,
                ..AnswerLine::default()
            },
            Stream::Stdout => AnswerLine {
                stdout: piece,
                ..AnswerLine::default()
            },
        }
    }
}

/// The lines of the answer `response`, each ending in a newline.
fn answer_lines(response: &ControlResponse) -> impl Iterator<Item = Vec<u8>> + '_ {
    pieces(&response.stderr, CHUNK)
        .map(|p| AnswerLine::text(Stream::Stderr, p))
        .chain(pieces(&response.stdout, CHUNK).map(|p| AnswerLine::text(Stream::Stdout, p)))
        .chain(std::iter::once(AnswerLine {
            code: Some(response.code),
            ..AnswerLine::default()
        }))
        .map(|line| {
            // A struct of strings and a number always serializes.
            let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
            bytes.push(b'\n');
            bytes
        })
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
        for line in answer_lines(&response) {
            write.write_all(&line).await?;
        }
        write.shutdown().await
    }

    /// True when a node answers on the control socket at `path`.
    pub fn is_running(path: &Path) -> bool {
        std::os::unix::net::UnixStream::connect(path).is_ok()
    }

    /// Sends `args` to a running node; its whole answer, or `None` when no
    /// node is running. [`forward_each`] passes output of any size on
    /// without holding it.
    pub fn forward(path: &Path, args: &[String]) -> Result<Option<ControlResponse>, ControlError> {
        let mut response = ControlResponse::default();
        let code = forward_each(path, args, |stream, text| {
            match stream {
                Stream::Stdout => response.stdout.push_str(text),
                Stream::Stderr => response.stderr.push_str(text),
            }
            Ok::<(), ControlError>(())
        })?;
        Ok(code.map(|code| ControlResponse { code, ..response }))
    }

    /// Sends `args` to a running node and hands each piece of its answer
    /// to `piece` as it arrives (whose error ends the answer); returns the
    /// exit status, or `None` when no node is running.
    pub fn forward_each<E: From<ControlError>>(
        path: &Path,
        args: &[String],
        mut piece: impl FnMut(Stream, &str) -> Result<(), E>,
    ) -> Result<Option<i32>, E> {
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
        let mut reader = std::io::BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            (&mut reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
                .map_err(io)?;
            if line.last() != Some(&b'\n') {
                let why = if line.len() == MAX_LINE {
                    format!("a line of it is longer than {MAX_LINE} bytes")
                } else {
                    "it ended before its exit status (did the node stop?)".to_owned()
                };
                return Err(ControlError::BadResponse(why).into());
            }
            let answer: AnswerLine<'_> = serde_json::from_slice(&line)
                .map_err(|e| ControlError::BadResponse(e.to_string()))?;
            if let Some(text) = &answer.stderr {
                piece(Stream::Stderr, text)?;
            }
            if let Some(text) = &answer.stdout {
                piece(Stream::Stdout, text)?;
            }
            if let Some(code) = answer.code {
                return Ok(Some(code));
            }
        }
    }
}

#[cfg(unix)]
pub use imp::{bind, forward, forward_each, is_running, serve};

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::io::{BufRead as _, Write as _};

    #[test]
    fn pieces_are_cut_at_character_boundaries() {
        let text = "aé€😀".repeat(1000);
        let parts: Vec<&str> = pieces(&text, 7).collect();
        assert!(parts.iter().all(|p| !p.is_empty() && p.len() <= 7));
        assert_eq!(parts.concat(), text);
        assert_eq!(pieces("", 7).count(), 0);
        assert_eq!(pieces("😀😀", 2).collect::<Vec<_>>(), ["😀", "😀"]);
    }

    /// A node on a socket in a temporary directory that reads one request
    /// and writes `answer` (bytes exactly), then closes.
    fn node_answering(
        answer: Vec<u8>,
    ) -> (tempfile::TempDir, PathBuf, std::thread::JoinHandle<()>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let node = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut request = String::new();
            std::io::BufReader::new(&stream)
                .read_line(&mut request)
                .unwrap();
            let _ = (&stream).write_all(&answer);
        });
        (dir, path, node)
    }

    #[test]
    fn an_answer_streams_in_order_and_must_end_with_its_code() {
        let response = ControlResponse {
            code: 3,
            stdout: "out ".repeat(CHUNK),
            stderr: "note\n".to_owned(),
        };
        let answer: Vec<u8> = answer_lines(&response).flatten().collect();
        assert!(answer.split(|b| *b == b'\n').all(|l| l.len() < MAX_LINE));
        let (_dir, path, node) = node_answering(answer.clone());
        let back = forward(&path, &[]).unwrap().unwrap();
        node.join().unwrap();
        assert_eq!(
            (back.code, back.stdout, back.stderr),
            (response.code, response.stdout, response.stderr)
        );

        // Cut before its exit status: an error, not a short answer.
        let cut = answer[..answer.len() - 20].to_vec();
        let (_dir, path, node) = node_answering(cut);
        let err = forward(&path, &[]).unwrap_err();
        node.join().unwrap();
        assert!(
            err.to_string().contains("ended before its exit status"),
            "{err}"
        );

        // A line over the limit is refused, not read on without end.
        let (_dir, path, node) = node_answering(vec![b' '; MAX_LINE + 10]);
        let err = forward(&path, &[]).unwrap_err();
        node.join().unwrap();
        assert!(err.to_string().contains("longer than"), "{err}");
    }

    /// A node from before the stream answered with one line holding all.
    #[test]
    fn a_one_line_answer_is_read_too() {
        let old = br#"{"code": 0, "stdout": "out\n", "stderr": "err\n"}"#;
        let mut answer = old.to_vec();
        answer.push(b'\n');
        let (_dir, path, node) = node_answering(answer);
        let back = forward(&path, &[]).unwrap().unwrap();
        node.join().unwrap();
        assert_eq!(
            (back.code, back.stdout.as_str(), back.stderr.as_str()),
            (0, "out\n", "err\n")
        );
    }
}
