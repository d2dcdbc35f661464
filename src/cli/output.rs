//! Where a command's results go: text for people or one JSON document
//! (`--json`) on stdout, notes and progress for people on stderr, and
//! errors as one line (and with `--json` an error document, whose `kind`
//! scripts branch on).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use potluck::app::{AppError, when};
use potluck::feed::message::FeedId;

/// Where results go: text for people, or one JSON document. Buffered, so
/// that a command run inside the node can hand its output back.
pub struct Output {
    /// Whether the command asked for one JSON document (`--json`).
    pub(crate) json: bool,
    /// The command's result, for stdout.
    pub(crate) text: String,
    /// Lines for people on stderr: confirmations and hints that are not the
    /// command's result.
    pub(crate) notes: String,
    /// How many documents [`Output::print`] wrote with `--json`: a failure
    /// after exactly one carries it as the error's report.
    documents: usize,
}

impl Output {
    /// An empty output, for `--json` or not.
    pub(crate) fn new(json: bool) -> Output {
        Output {
            json,
            text: String::new(),
            notes: String::new(),
            documents: 0,
        }
    }

    /// An output that already holds `text`, the whole result of a command
    /// (with `--json`, its one document), for a failure that comes after it.
    pub(crate) fn holding(json: bool, text: String) -> Output {
        Output {
            text,
            documents: usize::from(json),
            ..Output::new(json)
        }
    }

    /// A line for people on stderr; left out with `--json`, where the
    /// document says it all.
    pub fn note(&mut self, line: impl AsRef<str>) {
        if !self.json {
            let _ = writeln!(self.notes, "{}", line.as_ref());
        }
    }

    /// One document: JSON, or text for people.
    pub fn print(&mut self, value: Value, text: impl FnOnce() -> String) {
        if self.json {
            self.documents += 1;
            self.line(value.to_string());
        } else {
            self.line(text());
        }
    }

    /// One raw line.
    pub fn line(&mut self, line: impl AsRef<str>) {
        let _ = writeln!(self.text, "{}", line.as_ref());
    }

    /// What a command that failed with `e` prints, as (stdout, stderr).
    /// stderr: the notes, then the `error:` line. stdout without `--json`:
    /// what the command printed before it failed. With `--json`, still one
    /// document: the error document, holding the report the command
    /// printed before it failed (`import`'s counts, `fsck`'s findings) as
    /// `report`; only `log`'s lines, one document each, stay as they are,
    /// with the error document as the last line.
    pub(crate) fn failed(self, e: &anyhow::Error) -> (String, String) {
        let message = one_line(e);
        let stderr = format!("{}error: {message}\n", self.notes);
        if !self.json {
            return (self.text, stderr);
        }
        let report = match self.documents {
            1 => serde_json::from_str::<Value>(self.text.trim()).ok(),
            _ => None,
        };
        let kind = error_kind(e);
        let stdout = match report {
            Some(report) => error_document(kind, &message, Some(report)),
            None => self.text + &error_document(kind, &message, None),
        };
        (stdout, stderr)
    }
}

/// Writes command output to stdout. A reader that went away (`potluck
/// events | head`) is not an error: there is nobody left to tell.
pub fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// Prints a command's output, or writes it to `file`.
/// With `--json`, the calendar goes to the file and a summary is printed.
pub(crate) fn emit(text: &str, file: Option<&(PathBuf, bool)>) -> Result<()> {
    let Some((path, json)) = file else {
        return write_stdout(text);
    };
    let write = |body: &str| {
        std::fs::write(path, body).with_context(|| format!("cannot write {}", path.display()))
    };
    if !json {
        write(text)?;
        // Like `export`, say what was written where.
        let events = text.matches("BEGIN:VEVENT").count() as u64;
        return write_stdout(&format!(
            "wrote {} to {}\n",
            when::plural(events, "event", "events"),
            path.display()
        ));
    }
    let mut doc: Value = serde_json::from_str(text.trim()).context("unreadable ics output")?;
    write(doc["calendar"].as_str().unwrap_or_default())?;
    if let Some(map) = doc.as_object_mut() {
        map.remove("calendar");
        map.insert("file".into(), json!(path.to_string_lossy()));
    }
    write_stdout(&format!("{doc}\n"))
}

/// Forked feeds (feed, sequence of the first proof) as JSON.
pub(crate) fn forked_json(forked: &[(FeedId, u64)]) -> Value {
    forked
        .iter()
        .map(|(feed, sequence)| json!({ "feed": feed, "sequence": sequence }))
        .collect()
}

/// Forked feeds as lines for people (empty when there are none).
pub(crate) fn forked_text(forked: &[(FeedId, u64)]) -> String {
    forked
        .iter()
        .map(|(feed, sequence)| {
            format!(
                "\n  forked: {feed} has two histories from #{sequence}; the one seen first is kept, and peers holding the other do not exchange it"
            )
        })
        .collect()
}

/// An error whose kind the command knows better than its causes' types
/// tell (e.g. a bad bundle file found while importing).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct KindedError {
    /// The `kind` of the JSON error document.
    pub kind: &'static str,
    /// What people read.
    pub message: String,
}

/// What went wrong, for `{"error": {"kind": …}}` (see `docs/cli.md`).
/// Scripts branch on it; the message is for people. The application
/// names the kind of its own failures ([`AppError::kind`]).
pub fn error_kind(e: &anyhow::Error) -> &'static str {
    for cause in e.chain() {
        if let Some(err) = cause.downcast_ref::<KindedError>() {
            return err.kind;
        }
        if let Some(err) = cause.downcast_ref::<AppError>() {
            return err.kind();
        }
        if cause.is::<potluck::content::ContentError>()
            || cause.is::<when::WhenError>()
            || cause.is::<potluck::feed::message::DecodeError>()
        {
            return "invalid_input";
        }
        if cause.is::<std::io::Error>() {
            return "io";
        }
    }
    "refused"
}

/// The line for a store whose database could not be opened: what is
/// damaged and what to run, in place of sled's own words about it
/// (offsets, backtraces), which help nobody at a terminal.
fn damaged_store_line(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|cause| {
        cause
            .downcast_ref::<AppError>()
            .and_then(AppError::damaged_store_line)
    })
}

/// The `--json` form of an error: one line, `{"error": {"kind": …,
/// "message": …}}`, and the command's `report` when it printed one before
/// it failed.
pub fn error_document(kind: &str, message: &str, report: Option<Value>) -> String {
    let mut error = json!({ "kind": kind, "message": message });
    if let (Some(report), Some(fields)) = (report, error.as_object_mut()) {
        fields.insert("report".into(), report);
    }
    format!("{}\n", json!({ "error": error }))
}

/// Reports a command line that failed before a command ran: one `error:`
/// line on stderr, and with `--json` the error document on stdout.
pub fn report_error(e: &anyhow::Error, json: bool) {
    let (stdout, stderr) = Output::new(json).failed(e);
    eprint!("{stderr}");
    let _ = write_stdout(&stdout);
}

/// A command line clap could not read. Returns the exit status (2), and
/// what goes to stdout and stderr: clap's whole message (what is missing,
/// "did you mean", the allowed values, the usage), plus with `--json` the
/// error document. `styled` keeps clap's colours for a terminal.
pub fn usage_failure(e: &clap::Error, json: bool, styled: bool) -> (u8, String, String) {
    let rendered = e.render();
    let stderr = if styled {
        rendered.ansi().to_string()
    } else {
        rendered.to_string()
    };
    let stdout = if json {
        let plain = rendered.to_string();
        let message = plain.trim_end().trim_start_matches("error: ");
        error_document("usage", message, None)
    } else {
        String::new()
    };
    (2, stdout, stderr)
}

/// True when a command line asks for `--json` (for errors found before it
/// could be parsed).
pub fn asks_for_json<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> bool {
    args.iter()
        .take_while(|a| a.as_ref() != "--")
        .any(|a| a.as_ref() == "--json")
}

/// An error and its causes on one line, without repeating a cause that the
/// message already ends with (our error types include their cause's text);
/// for a damaged store's database, what is damaged and what to run.
pub fn one_line(e: &anyhow::Error) -> String {
    if let Some(line) = damaged_store_line(e) {
        return line;
    }
    let mut line = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

/// A progress line on stderr for long work (`import`, `sync`, `join`):
/// shown only when stderr is a terminal, never with `--json` and never
/// inside a running node (whose stderr is not the person's). Redrawn at
/// most every [`ProgressLine::EVERY`], and cleared when the work ends.
pub struct ProgressLine {
    what: String,
    enabled: bool,
    started: std::time::Instant,
    drawn: Option<std::time::Instant>,
}

impl ProgressLine {
    /// Least time between two redraws.
    const EVERY: std::time::Duration = std::time::Duration::from_millis(200);

    /// A line about `what` ("importing", "syncing with Ana"), for a
    /// command that runs `in_node` (handed to a running node) or not.
    pub fn new(out: &Output, in_node: bool, what: impl Into<String>) -> ProgressLine {
        use std::io::IsTerminal as _;
        ProgressLine {
            what: what.into(),
            enabled: !in_node && !out.json && std::io::stderr().is_terminal(),
            started: std::time::Instant::now(),
            drawn: None,
        }
    }

    /// Shows `messages` so far and, when known, the share done (`done` of
    /// `total`).
    pub fn show(&mut self, messages: u64, share: Option<(u64, u64)>) {
        let elapsed = self.started.elapsed();
        self.draw(|what| when::progress_text(what, messages, share, elapsed));
    }

    /// Shows `messages` so far of `total`.
    pub fn show_of_total(&mut self, messages: u64, total: u64) {
        let elapsed = self.started.elapsed();
        self.draw(|what| when::progress_of_total(what, messages, total, elapsed));
    }

    fn draw(&mut self, text: impl FnOnce(&str) -> String) {
        if !self.enabled || self.drawn.is_some_and(|at| at.elapsed() < Self::EVERY) {
            return;
        }
        self.drawn = Some(std::time::Instant::now());
        let text = text(&self.what);
        // Carriage return and "erase line": the line is redrawn in place.
        eprint!("\r\u{1b}[K{text}");
    }

    /// Clears the line, if one was drawn.
    pub fn finish(&mut self) {
        if self.enabled && self.drawn.take().is_some() {
            eprint!("\r\u{1b}[K");
        }
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 19, defect 4: with `--json`, a failure is one document, and
    /// the report printed before it goes inside; `log`'s lines stay.
    #[test]
    fn a_failure_after_a_report_is_one_document() {
        let failure = || {
            anyhow::Error::from(KindedError {
                kind: "refused",
                message: "2 problems found".to_owned(),
            })
        };
        let mut out = Output::new(true);
        out.print(json!({ "ok": false }), String::new);
        let (stdout, stderr) = out.failed(&failure());
        assert_eq!(stderr, "error: 2 problems found\n");
        assert_eq!(
            serde_json::from_str::<Value>(&stdout).unwrap(),
            json!({ "error": { "kind": "refused", "message": "2 problems found", "report": { "ok": false } } })
        );
        assert_eq!(stdout.lines().count(), 1);

        // Lines of `log`: each stays, the error document comes last.
        let mut out = Output::new(true);
        out.line(r#"{"sequence":1}"#);
        out.line(r#"{"sequence":2}"#);
        let (stdout, _) = out.failed(&failure());
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 3, "{stdout}");
        assert!(lines[2].starts_with(r#"{"error":"#), "{stdout}");
        assert!(!lines[2].contains("report"), "{stdout}");

        // For people: what was printed, notes, then the error line.
        let mut out = Output::new(false);
        out.print(json!({}), || "checked 2 feeds".to_owned());
        out.note("a note");
        assert_eq!(
            out.failed(&failure()),
            (
                "checked 2 feeds\n".to_owned(),
                "a note\nerror: 2 problems found\n".to_owned()
            )
        );
    }
}
