//! Issue 14: what strangers, faulty peers and damaged disks must not be
//! able to do to a node, tried end to end with the real binary. Each test
//! names the defect of the issue it covers; docs/security.md lists them.
//!
//! Every run of the binary is bounded by [`common::DEADLINE`] (the sandbox
//! kills and fails a command that takes longer), so a node that hangs
//! fails the test instead of stalling it.

mod common;

use std::path::Path;

use common::sandbox::{Sandbox, Server};

/// Offset of the signature inside an encoded message.
const SIGNATURE_AT: usize = 117;

/// The byte offsets (in `messages.log`) of every record's message bytes,
/// in log order. Records are a 4-byte big-endian length and the message.
fn log_records(log: &[u8]) -> Vec<(usize, usize)> {
    let mut records = Vec::new();
    let mut at = 0;
    while at + 4 <= log.len() {
        let len = u32::from_be_bytes(log[at..at + 4].try_into().unwrap()) as usize;
        assert!(at + 4 + len <= log.len(), "a record runs past the log");
        records.push((at + 4, len));
        at += 4 + len;
    }
    assert_eq!(at, log.len(), "the log is whole records");
    records
}

/// Flips bit `mask` of byte `offset` (within the message bytes) of record
/// `index` of the store's message log, as a damaged disk would.
fn flip_in_record(home: &Path, index: usize, offset: usize, mask: u8) {
    let path = home.join("store").join("messages.log");
    let mut log = std::fs::read(&path).unwrap();
    let (start, len) = log_records(&log)[index];
    assert!(offset < len);
    log[start + offset] ^= mask;
    std::fs::write(&path, log).unwrap();
}

/// A home of deterministic fixtures: 10 feeds, 600 messages.
fn fixture_home(sandbox: &Sandbox, name: &str) -> std::path::PathBuf {
    let home = sandbox.home(name);
    let run = sandbox.run(
        &sandbox.home("unused"),
        &[
            "fixtures",
            "--out",
            home.to_str().unwrap(),
            "--feeds",
            "10",
            "--messages",
            "600",
            "--seed",
            "3",
        ],
    );
    assert!(run.status.success(), "{run:?}");
    home
}

fn serve(sandbox: &Sandbox, home: &Path) -> Server {
    sandbox
        .spawn_serve(home, &["--listen", "127.0.0.1:0", "--no-discovery"])
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Defect 1: a node serves a message whose signature a damaged disk
/// changed. A one-off `sync` from a fresh home ends (within the sandbox's
/// deadline) with exit 1 and an error naming the bad signature, and the
/// fresh home holds a valid prefix that checks clean.
#[test]
fn sync_ends_with_an_error_on_a_bad_signature() {
    let sandbox = Sandbox::new();
    let served = fixture_home(&sandbox, "served");
    flip_in_record(&served, 300, SIGNATURE_AT + 10, 0x08);
    let mut server = serve(&sandbox, &served);
    let fresh = sandbox.home("fresh");
    assert!(sandbox.run(&fresh, &["init"]).status.success());

    let run = sandbox.run(&fresh, &["sync", &server.addr.to_string()]);
    let line = run.one_line_error();
    assert!(line.contains("bad signature"), "{line}");

    let fsck = sandbox.json(&fresh, &["fsck"]);
    assert_eq!(fsck["problems"], serde_json::json!([]), "{fsck}");
    let held = fsck["messages"].as_u64().unwrap();
    assert!(
        held < 600,
        "the bad message and what follows it are not taken: {fsck}"
    );
    server.assert_running();
}

/// A path that is not UTF-8 (Linux paths are any bytes but `/` and NUL).
#[cfg(unix)]
fn non_utf8(sandbox: &Sandbox, name: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut bytes = name.as_bytes().to_vec();
    bytes.extend_from_slice(b"-\xff\xfe");
    sandbox.dir().join(std::ffi::OsStr::from_bytes(&bytes))
}

/// Runs `potluck --home HOME` with `args`, any of which may be non-UTF-8.
#[cfg(unix)]
fn run_os(sandbox: &Sandbox, home: &Path, args: &[&std::ffi::OsStr]) -> common::sandbox::Run {
    let mut cmd = std::process::Command::new(common::sandbox::BIN);
    cmd.arg("--home").arg(home).args(args);
    common::sandbox::run_command(cmd, sandbox.dir())
}

/// Defect 10: paths that are not UTF-8 (`--home`, `export --out`,
/// `import FILE`, `ics --out`) work instead of panicking; while a node
/// runs, a command it would have to receive as text is refused in one line.
#[cfg(unix)]
#[test]
fn paths_that_are_not_utf8_work() {
    use std::ffi::OsStr;
    let sandbox = Sandbox::new();
    let home = non_utf8(&sandbox, "home");
    let os = |s: &'static str| OsStr::new(s);
    let run = run_os(&sandbox, &home, &[os("init"), os("--name"), os("Ana")]);
    assert!(run.status.success(), "{run:?}");
    let run = run_os(
        &sandbox,
        &home,
        &[
            os("announce"),
            os("--title"),
            os("Soup"),
            os("--start"),
            os(common::START),
        ],
    );
    assert!(run.status.success(), "{run:?}");

    let bundle = non_utf8(&sandbox, "soup.bundle");
    for json in [false, true] {
        let mut args = vec![os("export"), os("--out"), bundle.as_os_str()];
        if json {
            args.push(os("--json"));
        }
        let run = run_os(&sandbox, &home, &args);
        assert!(run.status.success(), "{run:?}");
        assert!(bundle.exists());
    }
    // A relative non-UTF-8 path too (the sandbox is the working directory).
    let relative = bundle.file_name().unwrap().to_owned();
    let run = run_os(&sandbox, &home, &[os("export"), os("--out"), &relative]);
    assert!(run.status.success(), "{run:?}");

    let other = sandbox.home("other");
    assert!(sandbox.run(&other, &["init"]).status.success());
    let run = run_os(
        &sandbox,
        &other,
        &[os("import"), bundle.as_os_str(), os("--json")],
    );
    assert!(run.status.success(), "{run:?}");
    assert_eq!(run.json()["new"], 2, "{run:?}");

    let calendar = non_utf8(&sandbox, "soup.ics");
    let run = run_os(
        &sandbox,
        &other,
        &[os("ics"), os("--out"), calendar.as_os_str()],
    );
    assert!(run.status.success(), "{run:?}");
    assert!(
        std::fs::read_to_string(&calendar)
            .unwrap()
            .contains("SUMMARY:Soup")
    );

    // While a node runs for the home, commands go to it as text.
    let mut server = serve(&sandbox, &other);
    let run = run_os(
        &sandbox,
        &other,
        &[os("export"), os("--out"), bundle.as_os_str()],
    );
    let line = run.one_line_error();
    assert!(line.contains("not valid UTF-8"), "{line}");
    server.assert_running();
}

/// Defect 10: `init --home DIR` on an existing directory leaves its mode
/// alone; a new home is still created owner-only.
#[cfg(unix)]
#[test]
fn init_leaves_an_existing_directory_mode_alone() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let shared = sandbox.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    assert!(sandbox.run(&shared, &["init"]).status.success());
    let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o1777);
    let secret = std::fs::metadata(shared.join("secret")).unwrap();
    assert_eq!(secret.permissions().mode() & 0o777, 0o600);

    let fresh = sandbox.path("fresh");
    assert!(sandbox.run(&fresh, &["init"]).status.success());
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

/// Defect 10: a `config.json` of `[]` is refused in one clear line; one
/// that starts with a UTF-8 byte order mark is read.
#[test]
fn config_json_must_be_an_object_and_may_have_a_bom() {
    let sandbox = Sandbox::new();
    let home = sandbox.home("home");
    assert!(sandbox.run(&home, &["init"]).status.success());
    let config = home.join("config.json");
    std::fs::write(&config, "[]").unwrap();
    let run = sandbox.run(&home, &["invite", "--addr", "127.0.0.1:7643"]);
    let line = run.one_line_error();
    assert!(line.contains("must be a JSON object"), "{line}");
    assert!(line.contains("an array"), "{line}");

    std::fs::write(&config, "\u{feff}{\"listen\": \"127.0.0.1:7643\"}\n").unwrap();
    let run = sandbox.run(&home, &["invite", "--addr", "127.0.0.1:7643"]);
    assert!(run.status.success(), "{run:?}");
}
