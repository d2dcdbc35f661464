//! Comments end to end in a real browser (issue 22): two people, each
//! with their own node (`potluck serve` in its own home, connected with
//! `--peer`) and their own headless Chromium with a fresh profile.
//!
//! Ana organizes an event; it reaches Bea's node. Bea comments through
//! the form on her page, with a link and some markup in the text. Ana's
//! open page, never reloaded, shows the comment: the markup as text, the
//! link as a link marked `nofollow ugc`, and the link under "Links
//! shared". Ana replies with the reply form under Bea's comment; Bea's
//! open page, never reloaded since her comment, shows the reply marked as
//! a reply to her comment, and its link under "Links shared".
//!
//! "Never reloaded" is a marker set in the page's window by the test: a
//! reload or a navigation would drop it. Screenshots of both pages go to
//! `target/screenshots/` (`comments-ana.png`, `comments-bea.png`).
//!
//! Every server listens on 127.0.0.1; Chromium is started with the flags
//! that keep it off the network; every wait is bounded by [`WAIT`].
//! Needs Debian's `chromium` and `chromium-driver`, or
//! `POTLUCK_SKIP_BROWSER=1` to skip (see `common/chrome.rs`).

mod common;

use std::time::Instant;

use common::chrome::{
    POLL, WAIT, browser, screenshot, screenshots_dir, start_driver, tools_present,
};
use common::sandbox::{Sandbox, Server};
use fantoccini::{Client, Locator};
use potluck::feed::message::MessageId;
use serde_json::{Value, json};

const TITLE: &str = "Soup night";
const LINK: &str = "https://example.org/x";
const BEA_SAYS: &str =
    "Hello from Bea! Directions: https://example.org/x and <b>bold</b> stays text.";
const ANA_SAYS: &str = "Welcome Bea, recipes at https://example.org/recipes";
const ANA_LINK: &str = "https://example.org/recipes";

/// Finds the `li.comment` whose text contains `arguments[0]`
/// (`null` when none does); scripts below start with it.
const FIND_COMMENT: &str = "const item = Array.from(document.querySelectorAll('li.comment'))\
     .find(li => li.textContent.includes(arguments[0])) || null;";

/// What the page shows about the comment containing `needle`, or `null`:
/// its id, author, text, the `<b>` elements in its text, its links (with
/// `rel`), where its "in reply" link points, and its position in the
/// thread.
const DESCRIBE: &str = "if (!item) { return null; }
const text = item.querySelector('.text');
const reply = Array.from(item.querySelectorAll('.meta a')).find(a => a.textContent.trim() === 'in reply');
return {
  id: item.id,
  author: (item.querySelector('.meta strong') || {}).textContent || '',
  text: text ? text.textContent : '',
  bold: text ? text.querySelectorAll('b').length : -1,
  links: text ? Array.from(text.querySelectorAll('a')).map(a => ({ href: a.getAttribute('href'), rel: a.rel, text: a.textContent })) : [],
  reply_to: reply ? reply.getAttribute('href') : null,
  index: Array.from(document.querySelectorAll('li.comment')).indexOf(item),
};";

/// The links listed under "Links shared" in the thread (`[]` when it
/// shows no such list).
const LINKS_SHARED: &str = "const h = Array.from(document.querySelectorAll('#thread h3'))
  .find(h => h.textContent.trim() === 'Links shared');
const list = h && h.nextElementSibling;
if (!list) { return []; }
return Array.from(list.querySelectorAll('li')).map(li => {
  const a = li.querySelector('a');
  return { href: a.getAttribute('href'), rel: a.rel, item: li.textContent };
});";

/// The marker that proves a page was not reloaded.
const SET_MARK: &str = "window.__noReload = 1; return true;";
const GET_MARK: &str = "return window.__noReload === 1;";

async fn run(client: &Client, script: &str, args: Vec<Value>) -> Value {
    client
        .execute(script, args)
        .await
        .unwrap_or_else(|e| panic!("in Chromium: {e}"))
}

/// Everything that helps to tell why a wait failed: a screenshot, the
/// address, the thread, what the nodes said.
async fn why(client: &Client, nodes: &[&Server]) -> String {
    let shot = std::env::temp_dir().join("potluck-browser-comments-failure.png");
    if let Ok(png) = client.screenshot().await {
        let _ = std::fs::write(&shot, png);
    }
    let url = client
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    let thread = client
        .execute(
            "const c = document.getElementById('comments'); return c ? c.outerHTML : document.documentElement.outerHTML;",
            vec![],
        )
        .await
        .unwrap_or_default();
    let logs: Vec<String> = nodes.iter().map(|n| n.stderr()).collect();
    format!(
        "at {url} (screenshot: {}); the thread:\n{}\nthe nodes said:\n{}",
        shot.display(),
        thread.as_str().unwrap_or_default(),
        logs.join("\n---\n")
    )
}

/// Waits (bounded) until `script` (given `args`) returns something other
/// than `null` or `false`, and returns that; reloads the page between
/// tries only when `reload`.
async fn wait_for(
    client: &Client,
    what: &str,
    script: &str,
    args: Vec<Value>,
    reload: bool,
    nodes: &[&Server],
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        // A navigation under way can make a script fail: try again.
        if let Ok(value) = client.execute(script, args.clone()).await
            && !value.is_null()
            && value != json!(false)
        {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("no {what} within {WAIT:?} {}", why(client, nodes).await);
        }
        if reload {
            let _ = client.refresh().await;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Types `text` into the first element matching `field` and presses the
/// button matching `button`. Bounded retries: a live swap of the thread
/// between two steps (before the focus is in the field) replaces the
/// elements, and the step starts again.
async fn write_and_send(
    client: &Client,
    open: Option<&str>,
    field: &str,
    button: &str,
    text: &str,
    nodes: &[&Server],
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let attempt = async {
            if let Some(summary) = open {
                let summary = client.find(Locator::Css(summary)).await?;
                summary.click().await?;
            }
            let area = client.find(Locator::Css(field)).await?;
            area.click().await?;
            area.send_keys(text).await?;
            let typed = area.prop("value").await?;
            if typed.as_deref() != Some(text) {
                area.clear().await?;
                return Ok(false);
            }
            client.find(Locator::Css(button)).await?.click().await?;
            Ok::<bool, fantoccini::error::CmdError>(true)
        };
        if let Ok(true) = attempt.await {
            return;
        }
        if Instant::now() >= deadline {
            panic!(
                "could not type into {field} within {WAIT:?} {}",
                why(client, nodes).await
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the comment containing `needle` shows on `client`'s
/// page, says how long after `sent` it did, checks the page was not
/// reloaded, and returns what the page shows of it ([`DESCRIBE`]).
async fn shows_live(
    client: &Client,
    what: &str,
    needle: &str,
    sent: Instant,
    nodes: &[&Server],
) -> Value {
    let describe = format!("{FIND_COMMENT}\n{DESCRIBE}");
    let shown = wait_for(client, what, &describe, vec![json!(needle)], false, nodes).await;
    eprintln!("{what}: {:?} after the other page had it", sent.elapsed());
    assert_eq!(
        run(client, GET_MARK, vec![]).await,
        json!(true),
        "{what}: the page was reloaded"
    );
    shown
}

fn has_rel(rel: &Value, word: &str) -> bool {
    rel.as_str()
        .is_some_and(|r| r.split_ascii_whitespace().any(|w| w == word))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_and_a_reply_show_live_on_the_other_nodes_open_page() {
    if !tools_present() {
        return;
    }
    let shots = screenshots_dir();

    let sandbox = Sandbox::new();
    let (home_a, home_b) = (sandbox.home("ana"), sandbox.home("bea"));
    sandbox.json(&home_a, &["init", "--name", "Ana"]);
    sandbox.json(&home_b, &["init", "--name", "Bea"]);
    let node_a = sandbox.serve_with_page(&home_a, None);
    let node_b = sandbox.serve_with_page(&home_b, Some(&node_a));
    let nodes = [&node_a, &node_b];
    let event = sandbox.json(
        &home_a,
        &[
            "announce",
            "--title",
            TITLE,
            "--start",
            "2031-06-01T18:00:00Z",
        ],
    );
    let id = MessageId::parse(event["id"].as_str().expect("an event id")).expect("an event id");
    let path = potluck::web::event_path(&id);
    let at = |s: &Server| {
        format!(
            "{}{path}",
            s.page.as_deref().expect("a page").trim_end_matches('/')
        )
    };

    let driver = start_driver();
    let profiles = tempfile::tempdir().unwrap();
    let ana = browser(&driver, &profiles.path().join("ana")).await;
    let bea = browser(&driver, &profiles.path().join("bea")).await;
    let title_is = "const h = document.querySelector('h1'); return !!h && h.textContent.includes(arguments[0]);";

    // The event reaches Bea's node: her page shows it (reloaded until then).
    bea.goto(&at(&node_b)).await.unwrap();
    wait_for(
        &bea,
        "event on Bea's node",
        title_is,
        vec![json!(TITLE)],
        true,
        &nodes,
    )
    .await;
    ana.goto(&at(&node_a)).await.unwrap();
    wait_for(
        &ana,
        "event on Ana's page",
        title_is,
        vec![json!(TITLE)],
        false,
        &nodes,
    )
    .await;
    // From here on, Ana's page is not reloaded until she replies.
    run(&ana, SET_MARK, vec![]).await;

    // Bea comments with the form.
    write_and_send(
        &bea,
        None,
        "form.comment textarea",
        "form.comment button[type=submit]",
        BEA_SAYS,
        &nodes,
    )
    .await;
    // The form leads to her comment on the event's page (`#c-…`).
    let landed = "return location.hash.startsWith('#c-') && document.readyState === 'complete' && !!document.getElementById(location.hash.slice(1));";
    wait_for(
        &bea,
        "Bea's page at her comment",
        landed,
        vec![],
        false,
        &nodes,
    )
    .await;
    // From here on, Bea's page is not reloaded.
    run(&bea, SET_MARK, vec![]).await;
    let describe = format!("{FIND_COMMENT}\n{DESCRIBE}");
    let mine = run(&bea, &describe, vec![json!("Hello from Bea")]).await;
    assert_eq!(mine["author"], json!("Bea"), "{mine}");
    let sent = Instant::now();

    // Ana's open page shows it, without a reload.
    let seen = shows_live(
        &ana,
        "Bea's comment on Ana's open page",
        "Hello from Bea",
        sent,
        &nodes,
    )
    .await;
    assert_eq!(seen["id"], mine["id"], "{seen} {mine}");
    assert_eq!(seen["author"], json!("Bea"), "{seen}");
    assert_eq!(seen["reply_to"], Value::Null, "{seen}");
    // The markup is text: shown literally, no element made of it.
    assert_eq!(seen["bold"], json!(0), "markup became an element: {seen}");
    assert!(
        seen["text"]
            .as_str()
            .is_some_and(|t| t.contains("<b>bold</b>")),
        "{seen}"
    );
    let bold_elements = run(
        &ana,
        "return document.querySelectorAll('#thread b').length;",
        vec![],
    )
    .await;
    assert_eq!(bold_elements, json!(0));
    // The link is a link, marked as user content not vouched for.
    let links = seen["links"].as_array().expect("links");
    assert_eq!(links.len(), 1, "{seen}");
    assert_eq!(links[0]["href"], json!(LINK), "{seen}");
    assert_eq!(links[0]["text"], json!(LINK), "{seen}");
    for word in ["nofollow", "ugc", "noopener", "noreferrer"] {
        assert!(has_rel(&links[0]["rel"], word), "no {word}: {seen}");
    }
    // The thread's "Links shared" is in its live part: it has the link.
    let shared = run(&ana, LINKS_SHARED, vec![]).await;
    let shared = shared.as_array().expect("a list");
    assert!(
        shared.iter().any(|l| l["href"] == json!(LINK)
            && has_rel(&l["rel"], "ugc")
            && l["item"].as_str().is_some_and(|t| t.contains("Bea"))),
        "Links shared on Ana's page: {shared:?}"
    );
    // Ana's view of the comment offers a reply (she may comment) and the
    // organizer's hide, not Bea's edit or delete.
    let bea_item = seen["id"].as_str().expect("an id").to_owned();
    let buttons = run(
        &ana,
        "return Array.from(document.getElementById(arguments[0]).querySelectorAll('summary, button')).map(b => b.textContent.trim());",
        vec![json!(bea_item)],
    )
    .await;
    let offered = |label: &str| {
        buttons
            .as_array()
            .is_some_and(|b| b.contains(&json!(label)))
    };
    assert!(offered("Reply") && offered("Hide"), "{buttons}");
    assert!(!offered("Edit") && !offered("Delete"), "{buttons}");
    ana.execute(
        "document.getElementById(arguments[0]).scrollIntoView(); return true;",
        vec![json!(bea_item)],
    )
    .await
    .unwrap();
    screenshot(&ana, &shots, "comments-ana").await;

    // Ana replies with the reply form under Bea's comment.
    write_and_send(
        &ana,
        Some(&format!("#{bea_item} details summary")),
        &format!("#{bea_item} details textarea[name=text]"),
        &format!("#{bea_item} details button[type=submit]"),
        ANA_SAYS,
        &nodes,
    )
    .await;
    wait_for(
        &ana,
        "Ana's page at her reply",
        landed,
        vec![],
        false,
        &nodes,
    )
    .await;
    let sent = Instant::now();

    // Bea's open page shows the reply, marked as one to her comment.
    let reply = shows_live(
        &bea,
        "Ana's reply on Bea's open page",
        "Welcome Bea",
        sent,
        &nodes,
    )
    .await;
    assert_eq!(reply["author"], json!("Ana"), "{reply}");
    assert_eq!(reply["reply_to"], json!(format!("#{bea_item}")), "{reply}");
    let original = run(&bea, &describe, vec![json!("Hello from Bea")]).await;
    assert!(
        reply["index"].as_i64() > original["index"].as_i64(),
        "the reply comes before the comment: {reply} {original}"
    );
    assert_eq!(reply["links"][0]["href"], json!(ANA_LINK), "{reply}");
    assert!(has_rel(&reply["links"][0]["rel"], "ugc"), "{reply}");
    // "Links shared" on Bea's page took in the reply's link too.
    let shared = run(&bea, LINKS_SHARED, vec![]).await;
    let hrefs: Vec<&Value> = shared
        .as_array()
        .expect("a list")
        .iter()
        .map(|l| &l["href"])
        .collect();
    assert!(
        hrefs.contains(&&json!(ANA_LINK)) && hrefs.contains(&&json!(LINK)),
        "Links shared on Bea's page: {shared}"
    );
    // What is new to Bea since she last looked: Ana's reply, not her own
    // comment (the page she sent it from did not know it yet).
    let new_mark = "return document.getElementById(arguments[0]).classList.contains('new');";
    assert_eq!(
        run(&bea, new_mark, vec![json!(bea_item)]).await,
        json!(false),
        "Bea's own comment is marked new to her"
    );
    let reply_item = reply["id"].as_str().expect("the reply's id").to_owned();
    assert_eq!(
        run(&bea, new_mark, vec![json!(reply_item)]).await,
        json!(true),
        "Ana's reply is not marked new on Bea's page"
    );
    bea.execute(
        "document.getElementById(arguments[0]).scrollIntoView(); return true;",
        vec![json!(bea_item)],
    )
    .await
    .unwrap();
    screenshot(&bea, &shots, "comments-bea").await;

    for client in [ana, bea] {
        let _ = client.close().await;
    }
}
