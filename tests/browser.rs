//! End to end in a real browser: three people, each with their own node
//! (`potluck serve` in its own home) and their own headless Chromium,
//! driven through ChromeDriver.
//!
//! The organizer announces an event with room for one through the page;
//! the second person's page shows it and answers **Going** (admitted); the
//! third answers **Going** and is waitlisted; the second drops out; the
//! third's page, never reloaded, shows "admitted".
//!
//! A member joins a hub by pasting its member code on the network page,
//! which then shows the hub connected and holding the member's messages.
//!
//! "Remind me in this browser" asks for permission only when pressed,
//! and a reminder of the node then shows as a browser notification (the
//! Notification API replaced by a recorder).
//!
//! Needs Debian's `chromium` and `chromium-driver`, or
//! `POTLUCK_SKIP_BROWSER=1` to skip (see `common/chrome.rs`). Screenshots
//! of the main pages go to `target/screenshots/`.
//!
//! Every server listens on 127.0.0.1; Chromium is started with the flags
//! that keep it off the network; every wait is bounded.

mod common;

use std::time::Instant;

use common::chrome::{
    POLL, WAIT, browser, screenshot, screenshots_dir, start_driver, tools_present,
};
use common::sandbox::{Sandbox, Server};
use fantoccini::{Client, Locator};
use serde_json::json;

/// Text of the first element matching `css`, or "" when there is none.
async fn text_of(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until `css`'s text contains `needle`, reloading the page between
/// tries only when `reload` (otherwise the page must change by itself).
async fn wait_for_text(client: &Client, css: &str, needle: &str, reload: bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = text_of(client, css).await;
        if text.contains(needle) {
            return text;
        }
        if Instant::now() >= deadline {
            // Everything that helps to tell why, before failing.
            let shot = std::env::temp_dir().join("potluck-browser-failure.png");
            if let Ok(png) = client.screenshot().await {
                let _ = std::fs::write(&shot, png);
            }
            let url = client.current_url().await.map(|u| u.to_string());
            let source = client.source().await.unwrap_or_default();
            panic!(
                "{css} never said {needle:?}; it says {text:?} at {} (screenshot: {}); the page:\n{source}",
                url.unwrap_or_default(),
                shot.display()
            );
        }
        if reload {
            client.refresh().await.expect("reload");
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn click_button(client: &Client, label: &str) {
    client
        .find(Locator::XPath(&format!(
            "//button[normalize-space(.)='{label}']"
        )))
        .await
        .unwrap_or_else(|e| panic!("no button {label:?}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("cannot click {label:?}: {e}"));
}

/// Sets a form field by id through the DOM (date and time inputs take
/// typed text in the browser's locale; the value is what is submitted).
async fn set_field(client: &Client, id: &str, value: &str) {
    client
        .execute(
            "const f = document.getElementById(arguments[0]); f.value = arguments[1]; return f.value;",
            vec![json!(id), json!(value)],
        )
        .await
        .unwrap_or_else(|e| panic!("cannot set #{id}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_people_a_waitlist_and_a_live_admission_in_the_browser() {
    if !tools_present() {
        return;
    }
    let shots = screenshots_dir();

    let sandbox = Sandbox::new();
    let (home_o, home_b, home_c) = (sandbox.home("ana"), sandbox.home("bea"), sandbox.home("cy"));
    for (home, name) in [(&home_o, "Ana"), (&home_b, "Bea"), (&home_c, "Cy")] {
        sandbox.json(home, &["init", "--name", name]);
    }
    let organizer = sandbox.serve_with_page(&home_o, None);
    let node_b = sandbox.serve_with_page(&home_b, Some(&organizer));
    let node_c = sandbox.serve_with_page(&home_c, Some(&organizer));
    let page = |s: &Server| s.page.clone().expect("a page address");
    // A path on a node's page.
    let at = |s: &Server, path: &str| format!("{}{path}", page(s).trim_end_matches('/'));

    let driver = start_driver();
    let profiles = tempfile::tempdir().unwrap();
    let ana = browser(&driver, &profiles.path().join("ana")).await;
    let bea = browser(&driver, &profiles.path().join("bea")).await;
    let cy = browser(&driver, &profiles.path().join("cy")).await;

    // The organizer announces through the page, with room for one.
    ana.goto(&format!("{}new", page(&organizer))).await.unwrap();
    screenshot(&ana, &shots, "new-event").await;
    set_field(&ana, "title", "Soup night").await;
    set_field(&ana, "date", "2031-06-01").await;
    set_field(&ana, "start", "18:00").await;
    set_field(&ana, "end", "21:00").await;
    set_field(&ana, "zone", "America/New_York").await;
    set_field(&ana, "location", "Community hall").await;
    set_field(
        &ana,
        "description",
        "Bring a bowl. Recipes: https://example.org/soup",
    )
    .await;
    set_field(&ana, "capacity", "1").await;
    click_button(&ana, "Announce").await;
    let deadline = Instant::now() + WAIT;
    let event_path = loop {
        let url = ana.current_url().await.unwrap();
        if url.path().starts_with("/e/") {
            break url.path().to_owned();
        }
        if Instant::now() >= deadline {
            screenshot(&ana, &shots, "failed-announce").await;
            panic!(
                "announcing did not lead to the event's page: {url} {}",
                ana.source().await.unwrap_or_default()
            );
        }
        tokio::time::sleep(POLL).await;
    };
    // 18:00 in New York on 1 June 2031 is daylight saving time (UTC-4):
    // 22:00 for a viewer in UTC (the nodes run without TZ), not 23:00.
    let shown = text_of(&ana, "main").await;
    assert!(shown.contains("18:00"), "{shown}");
    assert!(shown.contains("22:00"), "{shown}");

    // The second person's node receives it; their page answers Going.
    bea.goto(&at(&node_b, &event_path)).await.unwrap();
    wait_for_text(&bea, "h1", "Soup night", true).await;
    for label in ["Going", "Maybe", "Not going"] {
        let found = bea
            .find(Locator::XPath(&format!(
                "//button[normalize-space(.)='{label}']"
            )))
            .await;
        assert!(found.is_ok(), "no button named exactly {label:?}");
    }
    click_button(&bea, "Going").await;
    wait_for_text(&bea, "#my-status", "admitted", false).await;

    // The third is waitlisted.
    cy.goto(&at(&node_c, &event_path)).await.unwrap();
    wait_for_text(&cy, "h1", "Soup night", true).await;
    click_button(&cy, "Going").await;
    wait_for_text(&cy, "#my-status", "waitlisted", false).await;
    screenshot(&cy, &shots, "event-waitlisted").await;

    // From here on, Cy's page is never reloaded: a marker set now would
    // vanish with a reload.
    cy.execute("window.potluckMarker = 'still here'; return true;", vec![])
        .await
        .unwrap();
    click_button(&bea, "Not going").await;
    let status = wait_for_text(&cy, "#my-status", "admitted", false).await;
    assert!(!status.contains("waitlisted"), "{status}");
    let marker = cy
        .execute("return window.potluckMarker || null;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, json!("still here"), "Cy's page was reloaded");
    screenshot(&cy, &shots, "event-admitted-live").await;

    // The organizer's pages, for the README.
    ana.goto(&at(&organizer, &event_path)).await.unwrap();
    wait_for_text(&ana, "#people", "Cy", true).await;
    screenshot(&ana, &shots, "event-organizer").await;
    ana.goto(&page(&organizer)).await.unwrap();
    wait_for_text(&ana, "main", "Soup night", true).await;
    screenshot(&ana, &shots, "upcoming").await;
    ana.goto(&format!("{}network", page(&organizer)))
        .await
        .unwrap();
    screenshot(&ana, &shots, "network").await;
    cy.goto(&format!("{}agenda", page(&node_c))).await.unwrap();
    wait_for_text(&cy, "main", "Soup night", true).await;
    screenshot(&cy, &shots, "agenda").await;
    // A phone-sized window.
    cy.set_window_size(390, 844).await.unwrap();
    cy.goto(&at(&node_c, &event_path)).await.unwrap();
    wait_for_text(&cy, "h1", "Soup night", false).await;
    screenshot(&cy, &shots, "event-phone").await;

    for client in [ana, bea, cy] {
        let _ = client.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_code_pasted_on_the_page_joins_a_hub_that_then_holds_my_messages() {
    if !tools_present() {
        return;
    }
    let shots = screenshots_dir();

    let sandbox = Sandbox::new();
    let (home_hub, home_d) = (sandbox.home("hub"), sandbox.home("dee"));
    sandbox.json(&home_hub, &["init", "--name", "Town hub"]);
    sandbox.json(&home_d, &["init", "--name", "Dee"]);
    let hub = sandbox
        .spawn_serve(
            &home_hub,
            &["--listen", "127.0.0.1:0", "--no-discovery", "--hub"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let node_d = sandbox.serve_with_page(&home_d, None);
    // Through the running hub: a member code naming its loopback address.
    let code = sandbox.json(&home_hub, &["invite"])["code"]
        .as_str()
        .expect("a code")
        .to_owned();

    let driver = start_driver();
    let profiles = tempfile::tempdir().unwrap();
    let dee = browser(&driver, &profiles.path().join("dee")).await;
    let page = node_d.page.clone().expect("a page address");
    dee.goto(&format!("{page}network")).await.unwrap();
    wait_for_text(&dee, "#hubs", "You belong to no hub", false).await;
    set_field(&dee, "hub-code", &code).await;
    click_button(&dee, "Join hub").await;
    // Connected, and holding Dee's one message (her name).
    wait_for_text(&dee, "#hubs .badge.admitted", "connected", true).await;
    let hubs = text_of(&dee, "#hubs").await;
    assert!(hubs.contains("holds your one message"), "{hubs}");
    wait_for_text(&dee, "#peers", "direct", true).await;
    screenshot(&dee, &shots, "network-hubs").await;
    drop(hub);
    let _ = dee.close().await;
}

/// A stand-in for the browser's Notification API, installed by the test
/// (WebDriver scripts are not the page's, so the CSP does not apply):
/// it counts permission requests, grants them, and records notifications
/// in `window.__notes` instead of showing them.
const FAKE_NOTIFICATIONS: &str = r#"
window.__asked = 0;
window.__notes = [];
function Fake(title, options) {
  window.__notes.push({ title: title, body: options.body, tag: options.tag });
  this.addEventListener = function () {};
}
Fake.permission = 'default';
Fake.requestPermission = function () {
  window.__asked += 1;
  Fake.permission = 'granted';
  return Promise.resolve('granted');
};
window.Notification = Fake;
"#;

/// Issue 22: "Remind me in this browser" asks for permission only when
/// pressed; then a reminder of the running node (an event I go to starts
/// within the hour) reaches the open page and is shown as a browser
/// notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remind_me_in_this_browser_asks_when_pressed_and_shows_reminders() {
    if !tools_present() {
        return;
    }
    let sandbox = Sandbox::new();
    let home = sandbox.home("ana");
    sandbox.json(&home, &["init", "--name", "Ana"]);
    let node = sandbox.serve_with_page(&home, None);
    let driver = start_driver();
    let profiles = tempfile::tempdir().unwrap();
    let client = browser(&driver, &profiles.path().join("ana")).await;
    client
        .goto(node.page.as_deref().expect("a page"))
        .await
        .unwrap();
    // The script shows the button where the browser can notify.
    wait_for_text(
        &client,
        "#remind-browser",
        "Remind me in this browser",
        false,
    )
    .await;
    client.execute(FAKE_NOTIFICATIONS, vec![]).await.unwrap();
    let asked = |client: &Client| {
        let client = client.clone();
        async move {
            client
                .execute("return window.__asked", vec![])
                .await
                .unwrap()
        }
    };
    assert_eq!(asked(&client).await, json!(0), "asked before the button");
    click_button(&client, "Remind me in this browser").await;
    wait_for_text(
        &client,
        "#remind-browser",
        "Reminders on in this browser",
        false,
    )
    .await;
    assert_eq!(asked(&client).await, json!(1));

    // An event I go to, starting in 30 minutes: due at once.
    let start = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_mins(30))
        .unwrap()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let doc = sandbox.json(
        &home,
        &["announce", "--title", "Browser soup", "--start", &start],
    );
    let id = doc["id"].as_str().unwrap().to_owned();
    sandbox.json(&home, &["rsvp", &id, "going"]);
    let deadline = Instant::now() + WAIT;
    let notes = loop {
        let notes = client
            .execute("return window.__notes", vec![])
            .await
            .unwrap();
        if notes.as_array().is_some_and(|n| !n.is_empty()) {
            break notes;
        }
        assert!(
            Instant::now() < deadline,
            "no notification: {}",
            node.stderr()
        );
        tokio::time::sleep(POLL).await;
    };
    let notes = notes.as_array().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    let title = notes[0]["title"].as_str().unwrap_or_default();
    assert!(title.starts_with("Browser soup starts in "), "{notes:?}");
    assert!(
        notes[0]["tag"]
            .as_str()
            .is_some_and(|t| t.starts_with("potluck hour ")),
        "{notes:?}"
    );
    assert!(
        notes[0]["body"].as_str().is_some_and(|b| !b.is_empty()),
        "{notes:?}"
    );
    client.close().await.unwrap();
}
