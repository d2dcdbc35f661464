//! The `potluck` command. Parsing and printing live in `cli`; all logic
//! lives in the library. Errors become one line on stderr (exit 1), or
//! clap's whole message for unusable arguments (exit 2); with `--json`,
//! stdout also gets an error document.

mod cli;

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
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

/// jemalloc, not glibc's allocator: a sync's ingest frees and allocates
/// sled's pages and index entries of every size from several threads,
/// and glibc's heap grew and slowed with the store. A 10M-message sync
/// took 440 s and peaked at 248 MB with jemalloc, 813 s and 276 MB with
/// glibc's limited to two arenas (docs/performance.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at its first allocation (as measured): two
/// arenas, as the node's threads take turns at ingest; freed pages are
/// given back once a second has passed (jemalloc does so as it
/// allocates: an idle process keeps them until its next work), and none
/// is kept half-returned.
/// `_RJEM_MALLOC_CONF` in the environment adds to them.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static JEMALLOC_SETTINGS: &[u8; 47] = b"narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0\0";
