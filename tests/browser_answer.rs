//! Answering from a browser, end to end (issue 21), in Debian's Chromium
//! with a fresh profile per guest: an organizer's node (Ana, a member of
//! the hub, running) announces a public event with capacity 1; guest 1
//! opens the hub's link, answers Going with a name, and Ana's node admits
//! them; guest 2 answers Going and is waitlisted; guest 1 changes to Not
//! going, and guest 2's page shows "admitted" without a reload. Ana's
//! `potluck event` and her local page show both guests by name.
//!
//! The same scenario runs twice: once with a mouse on a desktop-sized
//! window, once keyboard-only at a phone's width (390 px), where every
//! step is a key press on whatever has the focus, the focus is drawn,
//! and the page never scrolls sideways. Screenshots of the phone run go
//! to `target/screenshots/`.
//!
//! Every server listens on 127.0.0.1 (http on loopback is a secure
//! context, so WebCrypto signs there). Needs Chromium, or
//! `POTLUCK_SKIP_BROWSER=1` to skip (see `common/chrome.rs`). Every wait
//! is bounded by [`WAIT`].

mod common;

use std::time::Instant;

use common::chrome::{
    Driver, POLL, WAIT, browser, screenshot, screenshots_dir, start_driver, tools_present,
};
use common::http::{page_addr, request};
use common::public::{event_paths, hub_with_public_pages, organizer_with_event};
use common::sandbox::Sandbox;
use fantoccini::key::Key;
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, Locator};
use serde_json::json;

/// How a guest works the page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Input {
    /// Clicks, in a desktop-sized window.
    Mouse,
    /// Key presses only, in a window as wide as a phone.
    KeyboardAtPhoneWidth,
}

/// A phone's viewport (CSS pixels): an iPhone 12 to 15.
const PHONE: (u32, u32) = (390, 844);
/// The most key presses it may take to reach a control from anywhere on
/// the page.
const MOST_TABS: usize = 40;

/// A guest: a browser with a profile of its own on the event's page.
struct Guest {
    client: Client,
    input: Input,
    _profile: tempfile::TempDir,
}

async fn guest(driver: &Driver, url: &str, input: Input) -> Guest {
    let profile = tempfile::tempdir().expect("a browser profile directory");
    let client = browser(driver, profile.path()).await;
    client
        .update_timeouts(TimeoutConfiguration::new(Some(WAIT), Some(WAIT), None))
        .await
        .expect("set the browser's timeouts");
    if input == Input::KeyboardAtPhoneWidth {
        client
            .set_window_size(PHONE.0, PHONE.1)
            .await
            .expect("a phone-sized window");
    }
    client.goto(url).await.expect("open the event's page");
    let page = Guest {
        client,
        input,
        _profile: profile,
    };
    // The form shows once the script found a browser that can sign.
    page.wait_for(
        "the answer form",
        "return !document.getElementById('answer-form').hidden;",
    )
    .await;
    page
}

impl Guest {
    /// Waits (bounded) until `script` returns true in the page.
    async fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let value = self
                .client
                .execute(script, vec![])
                .await
                .unwrap_or_else(|e| panic!("in Chromium: {e}"));
            if value == json!(true) {
                return;
            }
            assert!(Instant::now() < deadline, "no {what} within {WAIT:?}");
            tokio::time::sleep(POLL).await;
        }
    }

    /// The text the page shows about the answer.
    async fn status(&self) -> String {
        self.client
            .execute(
                "return document.getElementById('answer-status').textContent;",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("in Chromium: {e}"))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the status says `words`.
    async fn wait_status(&self, words: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.status().await;
            if now.contains(words) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page never said {words:?}; it says {now:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Answers with the form as a person does: a choice, a name, send.
    async fn answer(&self, status: &str, name: Option<&str>) {
        match self.input {
            Input::Mouse => self.answer_with_mouse(status, name).await,
            Input::KeyboardAtPhoneWidth => self.answer_with_keys(status, name).await,
        }
    }

    async fn answer_with_mouse(&self, status: &str, name: Option<&str>) {
        let c = &self.client;
        c.find(Locator::Css(&format!("input[name=status][value={status}]")))
            .await
            .expect("the choice")
            .click()
            .await
            .expect("chosen");
        if let Some(name) = name {
            c.find(Locator::Css("#answer-name"))
                .await
                .expect("the name field")
                .send_keys(name)
                .await
                .expect("typed");
        }
        c.find(Locator::Css("#answer-form button"))
            .await
            .expect("the send button")
            .click()
            .await
            .expect("sent");
    }

    /// The same with the keyboard alone: Tab to the choices, the arrow
    /// keys (or Space) to choose, Tab to the name, type, Tab to the
    /// button, Enter.
    async fn answer_with_keys(&self, status: &str, name: Option<&str>) {
        self.tab_to("the choices", "input[name=status]").await;
        // Arrows move through a radio group and choose as they go; Space
        // chooses the first when none is chosen yet.
        let chosen = format!(
            "var e = document.activeElement; return e.name === 'status' && e.value === '{status}' && e.checked;"
        );
        for _ in 0..4 {
            if self.check(&chosen).await {
                break;
            }
            let focused_value = self.run("return document.activeElement.value;").await;
            let any_checked = self
                .check("return !!document.querySelector('input[name=status]:checked');")
                .await;
            let key = if !any_checked && focused_value == json!(status) {
                Key::Space
            } else {
                Key::Down
            };
            self.press(key).await;
        }
        assert!(
            self.check(&chosen).await,
            "the keys did not choose {status}"
        );
        if let Some(name) = name {
            self.tab_to("the name field", "#answer-name").await;
            self.type_keys(name).await;
        }
        self.tab_to("the send button", "#answer-form button").await;
        self.press(Key::Enter).await;
    }

    /// Runs `script` in the page.
    async fn run(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("in Chromium: {e}"))
    }

    async fn check(&self, script: &str) -> bool {
        self.run(script).await == json!(true)
    }

    /// Types `text` into whatever has the focus.
    async fn type_keys(&self, text: &str) {
        self.client
            .active_element()
            .await
            .expect("the focused element")
            .send_keys(text)
            .await
            .expect("keys typed");
    }

    async fn press(&self, key: Key) {
        self.type_keys(&char::from(key).to_string()).await;
    }

    /// Presses Tab until the element `selector` names has the focus
    /// (bounded by [`MOST_TABS`]), and checks that the focus is drawn
    /// on it and that it is in view.
    async fn tab_to(&self, what: &str, selector: &str) {
        let focused = format!("return document.activeElement.matches('{selector}');");
        for _ in 0..MOST_TABS {
            if self.check(&focused).await {
                let seen = self
                    .run(
                        "var e = document.activeElement; var s = getComputedStyle(e); \
                         var r = e.getBoundingClientRect(); \
                         return {visible: e.matches(':focus-visible'), outline: s.outlineStyle, \
                           width: parseFloat(s.outlineWidth), top: r.top, bottom: r.bottom, \
                           left: r.left, right: r.right, height: window.innerHeight, \
                           across: window.innerWidth};",
                    )
                    .await;
                let n = |k: &str| seen[k].as_f64().unwrap_or(f64::NAN);
                let drawn = seen["visible"] == json!(true)
                    && seen["outline"] != json!("none")
                    && n("width") >= 2.0;
                // Within a pixel: Chromium scrolls a focused control
                // into view to a fraction of a pixel.
                let in_view = n("top") >= -1.0
                    && n("bottom") <= n("height") + 1.0
                    && n("left") >= -1.0
                    && n("right") <= n("across") + 1.0;
                assert!(
                    drawn && in_view,
                    "{what} has the focus but is not drawn or not in view: {seen}"
                );
                return;
            }
            self.press(Key::Tab).await;
        }
        panic!("{what} ({selector}) not reached with {MOST_TABS} presses of Tab");
    }

    /// Checks that the page fits the window's width: nothing to scroll
    /// sideways, as on a phone.
    async fn fits_the_width(&self) {
        let sizes = self
            .run(
                "return [window.innerWidth, document.documentElement.scrollWidth, \
                 document.body.scrollWidth];",
            )
            .await;
        let n = |i: usize| sizes[i].as_u64().unwrap_or(u64::MAX);
        assert!(
            n(0) <= u64::from(PHONE.0),
            "the window is not phone-sized: {sizes}"
        );
        assert!(
            n(1) <= n(0) && n(2) <= n(0),
            "the page scrolls sideways at phone width: {sizes}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_answer_from_the_hub_link_and_see_the_organizers_decision_live() {
    if tools_present() {
        answer_scenario(Input::Mouse).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_answer_keyboard_only_at_phone_width() {
    if tools_present() {
        answer_scenario(Input::KeyboardAtPhoneWidth).await;
    }
}

/// The scenario of this file's doc, with guests who use `input`.
async fn answer_scenario(input: Input) {
    let sandbox = Sandbox::new();
    let (hub, code) = hub_with_public_pages(&sandbox, json!({}));
    let (ana, event) = organizer_with_event(&sandbox, &hub, &code);
    // Ana's node runs, a member holding a session with the hub: guests'
    // answers reach it through the hub, and its decisions go back.
    let ana_node = sandbox
        .spawn_serve(&ana, &["--listen", "127.0.0.1:0", "--no-discovery"])
        .unwrap_or_else(|e| panic!("{e}"));
    ana_node.wait_for_log("connected");

    let (page_path, _) = event_paths(&event);
    let public = hub.public.as_deref().expect("public pages");
    let url = format!("{}{}", public.trim_end_matches('/'), page_path);
    let driver = start_driver();

    let phone = input == Input::KeyboardAtPhoneWidth;
    let shots = screenshots_dir();

    let one = guest(&driver, &url, input).await;
    if phone {
        one.fits_the_width().await;
        screenshot(&one.client, &shots, "answer-phone-form").await;
    }
    one.answer("going", Some("Guest One")).await;
    one.wait_status("admitted").await;

    let two = guest(&driver, &url, input).await;
    two.answer("going", Some("Guest Two")).await;
    two.wait_status("waitlisted, position 1").await;
    if phone {
        two.fits_the_width().await;
        // What happened shows where the guest is: on a phone the status
        // line is below the button, and the page brings it into view.
        let in_view = two
            .check(
                "var r = document.getElementById('answer-status').getBoundingClientRect(); \
                 return r.height > 0 && r.top >= -1 && r.bottom <= window.innerHeight + 1;",
            )
            .await;
        assert!(in_view, "the answer's status is out of view after sending");
        screenshot(&two.client, &shots, "answer-phone-waitlisted").await;
    }

    // Guest 1 changes their answer from the same browser (the same feed);
    // guest 2's page, not reloaded, follows the organizer's decision.
    one.answer("not-going", None).await;
    one.wait_status("not going").await;
    two.wait_status("admitted").await;

    // The organizer sees both guests by name: `potluck event` (handed to
    // the running node) and the local page.
    let shown = sandbox.json(&ana, &["event", &event]);
    let rsvps = shown["rsvps"].as_array().expect("the answers");
    let answer_of = |name: &str| {
        let found: Vec<_> = rsvps.iter().filter(|r| r["name"] == name).collect();
        // One feed per browser: changing the answer continued it.
        assert_eq!(found.len(), 1, "{name}: {shown}");
        (
            found[0]["status"].as_str().unwrap_or_default().to_owned(),
            found[0]["admission"].as_str().map(str::to_owned),
        )
    };
    assert_eq!(answer_of("Guest One"), ("not-going".to_owned(), None));
    assert_eq!(
        answer_of("Guest Two"),
        ("going".to_owned(), Some("admitted".to_owned()))
    );
    assert_eq!(rsvps.len(), 2, "{shown}");
    let page = ana_node.page.as_deref().expect("Ana's page");
    let addr = page_addr(page);
    let local = request(addr, "GET", &addr.to_string(), &page_path);
    assert_eq!(local.status, 200, "{local:?}");
    assert!(
        local.body.contains("Guest One") && local.body.contains("Guest Two"),
        "{}",
        local.body
    );
    for g in [one, two] {
        let _ = g.client.close().await;
    }
}
