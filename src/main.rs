//! The `potluck` command. Parsing and printing live in `cli`; all logic
//! lives in the library. Errors become one line on stderr (exit 1), or
//! clap's whole message for unusable arguments (exit 2); with `--json`,
//! stdout also gets an error document.

mod cli;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let args = match cli::Args::try_parse() {
        Ok(args) => args,
        // Help and version go to stdout as usual.
        Err(e) if !e.use_stderr() => e.exit(),
        // clap's whole message: what is missing, "did you mean", the
        // allowed values and the usage.
        Err(e) => {
            let json = cli::asks_for_json(&std::env::args_os().collect::<Vec<_>>());
            let styled = std::io::stderr().is_terminal();
            let (code, stdout, stderr) = cli::usage_failure(&e, json, styled);
            eprint!("{stderr}");
            let _ = cli::write_stdout(&stdout);
            return ExitCode::from(code);
        }
    };
    // A node logs its connections; other commands report errors themselves.
    // Other commands show potluck's own errors only, and the notice that
    // opening the store takes a while because it is being upgraded: the
    // lines of the libraries below (sled's, on a damaged store) are for
    // whoever asks with `POTLUCK_LOG`, the person gets the error line.
    let quiet = format!("potluck=error,{}=info", potluck::app::UPGRADE_LOG);
    let default_level = if cli::is_serve(&args) {
        "info"
    } else {
        quiet.as_str()
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour only for a person: not in a file or the journal.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("POTLUCK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .init();
    // Not `args()`: it panics on an argument that is not UTF-8, and a
    // path may be any bytes.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let json = cli::wants_json(&args);
    match cli::run(args, raw) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            cli::report_error(&e, json);
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates an arena of its own (up to 8 per
/// core), and each keeps what its thread freed. The node's threads take
/// turns at ingest, so a 1M-message sync peaked at 441 MB with them and
/// at 283 MB with two arenas, at the same speed (docs/performance.md).
/// `MALLOC_ARENA_MAX` in the environment still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` only sets a parameter of the allocator, and
        // this runs first in `main`, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Other allocators are left as they are.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
