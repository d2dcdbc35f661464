//! Headless Chromium through ChromeDriver, for the tests that run the
//! page in a real browser (`tests/browser.rs`, `tests/browser_sign.rs`).
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs
//! them). Without them a browser test fails and says so, unless
//! `POTLUCK_SKIP_BROWSER=1` asks to skip it ([`tools_present`]).
//! ChromeDriver listens on a loopback port and takes commands from
//! 127.0.0.1 only; Chromium is started with the flags that keep it off
//! the network.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Longest wait for anything in the browser (replication included); long,
/// because a loaded CI machine runs three nodes and three browsers at once.
pub const WAIT: Duration = Duration::from_secs(60);
/// Pause between two looks at the browser.
pub const POLL: Duration = Duration::from_millis(100);

/// ChromeDriver on a loopback port, killed when dropped.
pub struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_driver() -> Driver {
    let port = super::free_tcp_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(POLL);
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// A headless Chromium with a profile of its own, kept off the network.
pub async fn browser(driver: &Driver, profile: &Path) -> Client {
    browser_with(driver, profile, &[]).await
}

/// [`browser`] with more command-line flags (`extra`), such as the
/// certificates it trusts.
pub async fn browser_with(driver: &Driver, profile: &Path, extra: &[String]) -> Client {
    let mut args = vec![
        "--headless".to_owned(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--window-size=1100,900".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    args.extend_from_slice(extra);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": args,
        }),
    );
    ClientBuilder::rustls()
        .expect("a TLS setup (unused: chromedriver speaks plain HTTP)")
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// Whether Chromium and ChromeDriver are there; without them, panics
/// with how to install them, unless `POTLUCK_SKIP_BROWSER` is set (then
/// says the test was skipped and returns false).
pub fn tools_present() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    if std::env::var_os("POTLUCK_SKIP_BROWSER").is_some() {
        eprintln!("SKIPPED: the browser test (POTLUCK_SKIP_BROWSER is set)");
        return false;
    }
    panic!(
        "the browser test needs {CHROMIUM} and {CHROMEDRIVER}: \
         `apt-get install -y chromium chromium-driver` (or set POTLUCK_SKIP_BROWSER=1 to skip it)"
    );
}

/// Saves what `client` shows as `{name}.png` in `dir`.
pub async fn screenshot(client: &Client, dir: &Path, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write a screenshot");
}

/// Where screenshots go (`target/screenshots/`), made if needed.
pub fn screenshots_dir() -> PathBuf {
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap_or(Path::new("target"))
        .join("screenshots");
    std::fs::create_dir_all(&shots).expect("make target/screenshots");
    shots
}
