//! The `potluck` command. Parsing and printing live in `cli`; all logic
//! lives in the library. Errors become one line on stderr: exit 1, or 2
//! for unusable arguments.

mod cli;
mod net;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match cli::Args::try_parse() {
        Ok(args) => args,
        // Help and version go to stdout as usual; usage errors become one
        // line, like every other error.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            let rendered = e.to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first} (see `potluck --help`)");
            return ExitCode::from(2);
        }
    };
    // A node logs its connections; other commands report errors themselves.
    let default_level = if cli::is_serve(&args) {
        "info"
    } else {
        "error"
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("POTLUCK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .init();
    // Not `args()`: it panics on an argument that is not UTF-8, and a
    // path may be any bytes.
    let raw: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match cli::run(args, raw) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", cli::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
