//! Answering from a browser, end to end (issue 21), in Debian's Chromium
//! with a fresh profile per guest: an organizer's node (Ana, a member of
//! the hub, running) announces a public event with capacity 1; guest 1
//! opens the hub's link, answers Going with a name, and Ana's node admits
//! them; guest 2 answers Going and is waitlisted; guest 1 changes to Not
//! going, and guest 2's page shows "admitted" without a reload. Ana's
//! `potluck event` and her local page show both guests by name.
//!
//! Every server listens on 127.0.0.1 (http on loopback is a secure
//! context, so WebCrypto signs there). Needs Chromium, or
//! `POTLUCK_SKIP_BROWSER=1` to skip (see `common/chrome.rs`). Every wait
//! is bounded by [`WAIT`].

mod common;

use std::time::Instant;

use common::chrome::{Driver, POLL, WAIT, browser, start_driver, tools_present};
use common::http::{page_addr, request};
use common::public::{event_paths, hub_with_public_pages, organizer_with_event};
use common::sandbox::Sandbox;
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, Locator};
use serde_json::json;

/// A guest: a browser with a profile of its own on the event's page.
struct Guest {
    client: Client,
    _profile: tempfile::TempDir,
}

async fn guest(driver: &Driver, url: &str) -> Guest {
    let profile = tempfile::tempdir().expect("a browser profile directory");
    let client = browser(driver, profile.path()).await;
    client
        .update_timeouts(TimeoutConfiguration::new(Some(WAIT), Some(WAIT), None))
        .await
        .expect("set the browser's timeouts");
    client.goto(url).await.expect("open the event's page");
    let page = Guest {
        client,
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_answer_from_the_hub_link_and_see_the_organizers_decision_live() {
    if !tools_present() {
        return;
    }
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

    let one = guest(&driver, &url).await;
    one.answer("going", Some("Guest One")).await;
    one.wait_status("admitted").await;

    let two = guest(&driver, &url).await;
    two.answer("going", Some("Guest Two")).await;
    two.wait_status("waitlisted, position 1").await;

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
