//! Desktop reminders from `potluck serve`, against a real session bus:
//! each test that needs one starts Debian's `dbus-daemon` on a unix
//! socket in its own temporary directory, registers a fake
//! `org.freedesktop.Notifications` service on it (in this process, with
//! zbus) that records every `Notify` call, and runs the real binary with
//! `DBUS_SESSION_BUS_ADDRESS` pointing there. Without a bus the node runs
//! as before, and says nothing above debug level about it.
//!
//! Every wait is bounded by [`DEADLINE`]; only unix sockets and loopback.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use common::DEADLINE;
use common::sandbox::{Node, POLL, Sandbox, Server};
use futures_util::StreamExt as _;

/// `dbus-daemon` on a unix socket of its own; killed when dropped.
struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    /// Starts `dbus-daemon --nofork --print-address` with a minimal
    /// session configuration listening on `DIR/bus`.
    fn start() -> Bus {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("bus");
        let config = dir.path().join("session.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                socket.display()
            ),
        )
        .unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .arg("--nofork")
            .arg("--print-address")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // It says, harmlessly, that it may not raise its fd limit.
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (Debian's dbus-daemon package; .ci/run installs it)");
        // The address is its first line; read it on a thread, bounded.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let address = rx
            .recv_timeout(DEADLINE)
            .expect("dbus-daemon printed its address")
            .trim()
            .to_owned();
        assert!(address.starts_with("unix:path="), "{address}");
        Bus {
            child,
            address,
            _dir: dir,
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `Notify` call as the fake service received it.
#[derive(Clone, Debug)]
struct Call {
    app_name: String,
    summary: String,
    body: String,
    expire_timeout: i32,
}

/// The arguments of `org.freedesktop.Notifications.Notify`.
type NotifyArgs = (
    String,
    u32,
    String,
    String,
    String,
    Vec<String>,
    HashMap<String, zbus::OwnedVariant>,
    i32,
);

/// A fake notification service on `address`, answering `Notify` with
/// increasing ids and recording each call. It runs on `runtime` until
/// the runtime is dropped.
fn fake_notifications(runtime: &tokio::runtime::Runtime, address: &str) -> Arc<Mutex<Vec<Call>>> {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let connection = runtime.block_on(async {
        tokio::time::timeout(
            DEADLINE,
            zbus::connection::Builder::address(address)
                .name("org.freedesktop.Notifications")
                .build(),
        )
        .await
        .expect("the bus answered in time")
        .expect("connected to the test bus")
    });
    let recorded = calls.clone();
    runtime.spawn(async move {
        let mut stream = zbus::MessageStream::from(&connection);
        let mut id = 0u32;
        while let Some(Ok(message)) = stream.next().await {
            let header = message.header();
            if header.message_type() != zbus::message::Type::MethodCall
                || header.member().map(|m| m.as_str()) != Some("Notify")
            {
                continue;
            }
            let args: NotifyArgs = message.body().deserialize().expect("Notify's arguments");
            recorded.lock().unwrap().push(Call {
                app_name: args.0,
                summary: args.3,
                body: args.4,
                expire_timeout: args.7,
            });
            id += 1;
            let _ = connection.reply(&header, &(id,)).await;
        }
    });
    calls
}

/// Waits until `calls` holds at least one; returns them.
fn wait_for_call(calls: &Mutex<Vec<Call>>, server: &Server) -> Vec<Call> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let now = calls.lock().unwrap().clone();
        if !now.is_empty() {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "no Notify call within {DEADLINE:?}: {}",
            server.stderr()
        );
        thread::sleep(POLL);
    }
}

/// Waits until `calls` holds one whose summary contains `needle`;
/// returns it.
fn wait_for_summary(calls: &Mutex<Vec<Call>>, server: &Server, needle: &str) -> Call {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let found = calls
            .lock()
            .unwrap()
            .iter()
            .find(|c| c.summary.contains(needle))
            .cloned();
        if let Some(call) = found {
            return call;
        }
        assert!(
            Instant::now() < deadline,
            "no Notify call saying {needle:?} within {DEADLINE:?}: {:?} {}",
            calls.lock().unwrap(),
            server.stderr()
        );
        thread::sleep(POLL);
    }
}

/// A restarted node (`again`) shows no reminder: `calls` still holds the
/// one call of the first run.
fn quiet_after_restart(mut again: Server, calls: &Mutex<Vec<Call>>) {
    again.wait_for_log("listening");
    thread::sleep(std::time::Duration::from_millis(1500));
    again.assert_running();
    assert_eq!(
        calls.lock().unwrap().len(),
        1,
        "{:?}",
        calls.lock().unwrap()
    );
    assert!(!again.stderr().contains("reminder: "), "{}", again.stderr());
    assert_eq!(again.terminate().code(), Some(0));
}

/// An RFC 3339 time `minutes` from now, in UTC.
fn in_minutes(minutes: i64) -> String {
    let now = jiff::Timestamp::now();
    now.checked_add(jiff::SignedDuration::from_mins(minutes))
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A node going to its own event that starts in 30 minutes: the hour
/// before has come, so the reminder is due at once.
fn going_to_an_event_soon(title: &str) -> (Node, String) {
    let node = Node::init("Ana");
    let id = node.announce(&["--title", title, "--start", &in_minutes(30)]);
    node.ok(&["rsvp", &id, "going"]);
    (node, id)
}

/// `serve` on loopback, no page, no discovery, with `envs`.
fn serve(node: &Node, envs: &[(&str, &str)]) -> Server {
    node.sandbox()
        .spawn_serve_with(
            &node.home,
            &["--listen", "127.0.0.1:0", "--no-web", "--no-discovery"],
            envs,
        )
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Issue 22: a running node shows a desktop notification through the
/// session bus for an event I am going to, an hour before; once, also
/// across a restart.
#[test]
fn an_event_within_the_hour_is_notified_on_the_session_bus_once() {
    let bus = Bus::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let calls = fake_notifications(&runtime, &bus.address);
    let (node, _) = going_to_an_event_soon("Soup <night> & bread");
    let env = [
        ("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str()),
        ("POTLUCK_LOG", "potluck=debug"),
    ];
    let mut server = serve(&node, &env);
    let got = wait_for_call(&calls, &server);
    assert_eq!(got.len(), 1, "{got:?}");
    let call = &got[0];
    assert_eq!(call.app_name, "potluck");
    assert!(
        call.summary.starts_with("Soup <night> & bread starts in "),
        "{call:?}"
    );
    // The body may be read as markup: the title is escaped there, and it
    // says when (in the computer's zone).
    assert_eq!(call.expire_timeout, -1);
    assert!(!call.body.contains('<'), "{call:?}");
    // The time, in the node's zone (UTC: tests run it without TZ).
    let year = &in_minutes(30)[..4];
    assert!(call.body.contains(year), "{call:?}");
    server.assert_running();
    server.wait_for_log("reminder: Soup <night> & bread starts in");
    assert!(node.home.join("reminders.json").exists());
    assert_eq!(server.terminate().code(), Some(0), "{}", server.stderr());

    // A restart does not notify again.
    quiet_after_restart(serve(&node, &env), &calls);
}

/// Issue 22: `"reminders": {"desktop": false}` keeps the bus quiet.
#[test]
fn desktop_false_sends_nothing_to_the_bus() {
    let bus = Bus::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let calls = fake_notifications(&runtime, &bus.address);
    let (node, _) = going_to_an_event_soon("Quiet soup");
    std::fs::write(
        node.home.join("config.json"),
        r#"{"reminders": {"desktop": false}}"#,
    )
    .unwrap();
    let mut server = serve(&node, &[("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str())]);
    // The planner still runs (the page hears it); the bus does not.
    server.wait_for_log("reminder: Quiet soup starts in");
    thread::sleep(std::time::Duration::from_millis(500));
    assert!(calls.lock().unwrap().is_empty());
    assert_eq!(server.terminate().code(), Some(0));
}

/// Issue 22: with no session bus (the variable unset, or naming a socket
/// nobody listens on) the node runs as before, with no error or warning.
#[test]
fn without_a_session_bus_the_node_runs_and_says_nothing() {
    for address in [None, Some("unix:path=/nonexistent/potluck-test-bus")] {
        let (node, id) = going_to_an_event_soon("Soup without a bus");
        let envs: Vec<(&str, &str)> = address
            .map(|a| vec![("DBUS_SESSION_BUS_ADDRESS", a)])
            .unwrap_or_default();
        let mut server = serve(&node, &envs);
        server.wait_for_log("reminder: Soup without a bus starts in");
        server.assert_running();
        // The node still answers commands.
        let doc = node.ok(&["event", &id]);
        assert_eq!(doc["title"], "Soup without a bus", "{doc}");
        let stderr = server.stderr();
        for word in ["ERROR", "WARN", "session bus", "notification"] {
            assert!(!stderr.contains(word), "{address:?}: {word}: {stderr}");
        }
        assert_eq!(server.terminate().code(), Some(0), "{}", server.stderr());
    }
}

/// Issue 22: open pages hear the node's reminders on their live stream
/// (`GET /events`, an SSE event named `reminder` with JSON data), which
/// the page's script shows as browser notifications where the person
/// asked for them.
#[test]
fn an_open_page_hears_the_reminder_on_its_live_stream() {
    use std::io::{Read, Write};
    let node = Node::init("Ana");
    let mut server = node
        .sandbox()
        .spawn_serve_with(
            &node.home,
            &[
                "--listen",
                "127.0.0.1:0",
                "--web",
                "127.0.0.1:0",
                "--no-discovery",
            ],
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let page = server.page.clone().expect("the page's address");
    let addr = common::http::page_addr(&page);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, DEADLINE).unwrap();
    stream.set_read_timeout(Some(POLL)).unwrap();
    write!(
        stream,
        "GET /events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    // The stream is open once its head came.
    let mut seen = String::new();
    let read_until = |stream: &mut std::net::TcpStream, seen: &mut String, needle: &str| {
        let deadline = Instant::now() + DEADLINE;
        let mut buf = [0u8; 4096];
        while !seen.contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on the stream: {seen}"
            );
            match stream.read(&mut buf) {
                Ok(0) => panic!("the stream ended: {seen}"),
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => {}
            }
        }
    };
    read_until(&mut stream, &mut seen, "\r\n\r\n");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    // Going to an event in 30 minutes, through the running node.
    let id = node.announce(&["--title", "Page soup", "--start", &in_minutes(30)]);
    node.ok(&["rsvp", &id, "going"]);
    read_until(&mut stream, &mut seen, "event: reminder\n");
    let at = seen.find("event: reminder\n").unwrap();
    read_until(&mut stream, &mut seen, "\n\n");
    let data = seen[at..]
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("the reminder's data");
    let value: serde_json::Value = serde_json::from_str(data).expect("JSON data");
    assert_eq!(value["kind"], "hour", "{value}");
    assert!(
        value["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("Page soup starts in ")),
        "{value}"
    );
    assert!(value["event"].is_string(), "{value}");
    // The page offers the opt-in, hidden until its script finds that the
    // browser can notify.
    let home = common::http::request(addr, "GET", &addr.to_string(), "/");
    assert!(
        home.body
            .contains("<button id=\"remind-browser\" type=\"button\" hidden>"),
        "{}",
        home.body
    );
    server.assert_running();
    assert_eq!(server.terminate().code(), Some(0), "{}", server.stderr());
}

/// Issue 22: a waitlisted answer of mine that gets a place is notified
/// on the session bus. Three running nodes on loopback: the organizer
/// (room for one), a guest who takes the place, and me, waitlisted until
/// the guest steps back.
#[test]
fn a_waitlisted_answer_admitted_is_notified_on_the_session_bus() {
    let bus = Bus::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let calls = fake_notifications(&runtime, &bus.address);
    let sandbox = Sandbox::new();
    let (ana, bea, me) = (sandbox.home("ana"), sandbox.home("bea"), sandbox.home("me"));
    for (home, name) in [(&ana, "Ana"), (&bea, "Bea"), (&me, "Me")] {
        sandbox.json(home, &["init", "--name", name]);
    }
    let loopback = ["--listen", "127.0.0.1:0", "--no-web", "--no-discovery"];
    let organizer = sandbox
        .spawn_serve_with(&ana, &loopback, &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let peer = organizer.addr.to_string();
    let with_peer: Vec<&str> = loopback.iter().copied().chain(["--peer", &peer]).collect();
    let _guest = sandbox
        .spawn_serve_with(&bea, &with_peer, &[])
        .unwrap_or_else(|e| panic!("{e}"));
    let mine = sandbox
        .spawn_serve_with(
            &me,
            &with_peer,
            &[("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str())],
        )
        .unwrap_or_else(|e| panic!("{e}"));

    // In three hours: no hour-before reminder yet.
    let start = in_minutes(180);
    let doc = sandbox.json(
        &ana,
        &[
            "announce",
            "--title",
            "Waitlist soup",
            "--start",
            &start,
            "--capacity",
            "1",
        ],
    );
    let id = doc["id"].as_str().expect("an event id").to_owned();
    // Polls `event ID` at `home` (which fails until the event has come)
    // until its tally's `key` is `n`.
    let tally_at = |home: &Path, what: &str, key: &str, n: u64| {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let run = sandbox.run(home, &["event", &id, "--json"]);
            if run.status.success() && run.json()["tally"][key] == n {
                return;
            }
            assert!(Instant::now() < deadline, "no {what}: {run:?}");
            thread::sleep(POLL);
        }
    };
    tally_at(&bea, "the event at the guest's", "going", 0);
    sandbox.json(&bea, &["rsvp", &id, "going"]);
    tally_at(&me, "the guest admitted, seen from mine", "admitted", 1);
    sandbox.json(&me, &["rsvp", &id, "going"]);
    tally_at(&me, "my answer waitlisted", "waitlisted", 1);
    // The planner has seen me waitlisted before the place comes.
    let deadline = Instant::now() + DEADLINE;
    while !std::fs::read_to_string(me.join("reminders.json"))
        .is_ok_and(|text| text.contains("waitlisted\":[\""))
    {
        assert!(Instant::now() < deadline, "{}", mine.stderr());
        thread::sleep(POLL);
    }
    assert!(
        calls
            .lock()
            .unwrap()
            .iter()
            .all(|c| !c.summary.contains("place"))
    );

    sandbox.json(&bea, &["rsvp", &id, "not-going"]);
    let call = wait_for_summary(&calls, &mine, "You have a place");
    assert_eq!(call.summary, "You have a place: Waitlist soup");
    assert!(call.body.contains("waitlist"), "{call:?}");
    assert_eq!(call.app_name, "potluck");
}

/// Issue 22: a reply by someone else to my comment is notified on the
/// session bus, once (also across a restart). Two running nodes on
/// loopback: mine, which commented on its event, and Bea's, which
/// replies.
#[test]
fn a_reply_to_my_comment_is_notified_on_the_session_bus_once() {
    let bus = Bus::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let calls = fake_notifications(&runtime, &bus.address);
    let sandbox = Sandbox::new();
    let (me, bea) = (sandbox.home("me"), sandbox.home("bea"));
    for (home, name) in [(&me, "Me"), (&bea, "Bea")] {
        sandbox.json(home, &["init", "--name", name]);
    }
    let loopback = ["--listen", "127.0.0.1:0", "--no-web", "--no-discovery"];
    let env = [("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str())];
    let mut mine = sandbox
        .spawn_serve_with(&me, &loopback, &env)
        .unwrap_or_else(|e| panic!("{e}"));
    let peer = mine.addr.to_string();
    let with_peer: Vec<&str> = loopback.iter().copied().chain(["--peer", &peer]).collect();
    let _bea_node = sandbox
        .spawn_serve_with(&bea, &with_peer, &[])
        .unwrap_or_else(|e| panic!("{e}"));

    // Not answered: no reminders of the event itself.
    let doc = sandbox.json(
        &me,
        &[
            "announce",
            "--title",
            "Soup talk",
            "--start",
            &in_minutes(600),
        ],
    );
    let id = doc["id"].as_str().expect("an event id").to_owned();
    let mine_doc = sandbox.json(&me, &["comment", &id, "Who brings bread?"]);
    let comment = mine_doc["comment"]
        .as_str()
        .expect("a comment id")
        .to_owned();
    sandbox.json_until(&bea, &["comments", &id], "my comment at Bea's", |doc| {
        doc["comments"][0]["id"] == comment.as_str()
    });
    // Bea's own comment that is no reply, and her reply.
    sandbox.json(&bea, &["comment", &id, "Hello all"]);
    sandbox.json(
        &bea,
        &[
            "comment",
            &id,
            "I do: <b>rye</b> & spelt",
            "--reply",
            &comment,
        ],
    );
    let call = wait_for_summary(&calls, &mine, "replied");
    assert_eq!(call.summary, "Bea replied to your comment");
    assert_eq!(call.app_name, "potluck");
    assert_eq!(
        call.body, "Soup talk: I do: &lt;b&gt;rye&lt;/b&gt; &amp; spelt",
        "{call:?}"
    );
    // Only the reply: my own comment and Bea's other one are no news.
    thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        calls.lock().unwrap().len(),
        1,
        "{:?}",
        calls.lock().unwrap()
    );
    assert_eq!(mine.terminate().code(), Some(0), "{}", mine.stderr());

    // A restart does not notify again.
    let again = sandbox
        .spawn_serve_with(&me, &loopback, &env)
        .unwrap_or_else(|e| panic!("{e}"));
    quiet_after_restart(again, &calls);
}
