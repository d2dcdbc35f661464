//! A hub with public pages and an organizer who is its member, for the
//! tests of answers from a browser (`tests/web_answer.rs`,
//! `tests/browser_answer.rs`).

use std::path::PathBuf;

use serde_json::{Value, json};

use super::sandbox::{Sandbox, Server};

/// A hub serving public pages on 127.0.0.1 with `"web_answers":
/// answers`, and a member code for five people.
pub fn hub_with_public_pages(sandbox: &Sandbox, answers: Value) -> (Server, String) {
    let home = sandbox.home("hub");
    sandbox.json(&home, &["init", "--name", "Riverside hub"]);
    let config = json!({
        "hub": true,
        "discovery": false,
        "public_web": "127.0.0.1:0",
        "web_answers": answers,
    });
    std::fs::write(home.join("config.json"), config.to_string()).unwrap();
    let hub = sandbox
        .spawn_serve(
            &home,
            &["--listen", "127.0.0.1:0", "--no-web", "--no-discovery"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(hub.public.is_some(), "no public pages line");
    let code = sandbox.json(
        &home,
        &["invite", "--addr", &hub.addr.to_string(), "--uses", "5"],
    )["code"]
        .as_str()
        .expect("a member code")
        .to_owned();
    (hub, code)
}

/// Ana, a member of the hub (by `code`), who announces "Soup night" with
/// capacity 1 and syncs it to the hub. Her home and the event id.
pub fn organizer_with_event(sandbox: &Sandbox, hub: &Server, code: &str) -> (PathBuf, String) {
    let ana = sandbox.home("ana");
    sandbox.json(&ana, &["init", "--name", "Ana"]);
    sandbox.json(&ana, &["hub", "add", code]);
    let event = announce(sandbox, &ana, "Soup night", &["--capacity", "1"]);
    sync_with_hub(sandbox, &ana, hub);
    (ana, event)
}

/// `potluck announce` at [`super::START`]; the event id.
pub fn announce(sandbox: &Sandbox, home: &std::path::Path, title: &str, more: &[&str]) -> String {
    let mut args = vec![
        "announce",
        "--title",
        title,
        "--start",
        super::START,
        "--end",
        super::END,
    ];
    args.extend_from_slice(more);
    sandbox.json(home, &args)["id"]
        .as_str()
        .expect("an event id")
        .to_owned()
}

/// One sync of `home` with the hub.
pub fn sync_with_hub(sandbox: &Sandbox, home: &std::path::Path, hub: &Server) {
    sandbox.json(home, &["sync", &format!("{}@{}", hub.feed, hub.addr)]);
}

/// The public page path of event `id`, and of its answer endpoint.
pub fn event_paths(id: &str) -> (String, String) {
    let page = potluck::web::event_path(
        &potluck::feed::message::MessageId::parse(id).expect("an event id"),
    );
    let answer = format!("{page}/answer");
    (page, answer)
}
