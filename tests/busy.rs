//! A second connection of a feed that is already connected is refused
//! with a reason on the wire (`Refuse`, "already connected"), so that the
//! person whose second node (same identity, another machine or home) is
//! refused learns why: in the library's error, and in `potluck sync`'s
//! error line. Everything runs on 127.0.0.1; every wait is bounded by
//! [`DEADLINE`].

mod common;

use std::path::Path;
use std::sync::Arc;

use common::node::{TestNode, new_key, wait_until};
use common::sandbox::Sandbox;
use common::{DEADLINE, open_store};
use potluck::node::ConnectionError;
use potluck::proto::wire::RefuseReason;

/// Nodes of one identity: a first one connected to a hub, and its twin
/// (same key, its own store) dialing the same hub. The hub refuses the
/// twin and says why; the first node stays connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twin_node_is_told_the_hub_is_already_connected_to_its_feed() {
    let hub = TestNode::start().await;
    let key = new_key();
    let (_first_dir, first_store) = open_store();
    let first = TestNode::start_over(Arc::new(first_store), key.clone()).await;
    first.keep_connected_to(&hub, true);
    wait_until("the hub to connect to the first node", || {
        hub.is_connected_to(&first.feed())
    })
    .await;

    let (_twin_dir, twin_store) = open_store();
    let twin = TestNode::start_over(Arc::new(twin_store), key).await;
    let hub_addr = hub.pinned_addr();
    let dial = twin.node.clone().dial(&hub_addr, true);
    let refused = tokio::time::timeout(DEADLINE, dial)
        .await
        .expect("the hub answers within the deadline")
        .expect_err("the hub refuses a second connection of a connected feed");
    assert!(
        matches!(
            refused,
            ConnectionError::Refused(RefuseReason::AlreadyConnected)
        ),
        "{refused:?}"
    );
    let said = refused.to_string();
    assert!(
        said.contains("already connected to your feed over another connection"),
        "{said}"
    );
    assert!(
        hub.is_connected_to(&first.feed()),
        "the first node's connection goes on"
    );
}

/// Copies the directory `from` to `to` (files and folders).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The same through the binary: a home copied to another place is a
/// second node with the same identity. While the first serves, connected
/// to a hub, `potluck sync HUB` from the copy fails with one line that
/// says the hub is already connected to this feed.
#[test]
fn sync_from_a_copied_home_says_the_hub_is_already_connected_to_this_feed() {
    let sandbox = Sandbox::new();
    let serve_args = ["--listen", "127.0.0.1:0", "--no-discovery", "--no-web"];
    let hub_home = sandbox.home("hub");
    let hub = sandbox
        .spawn_serve(&hub_home, &serve_args)
        .unwrap_or_else(|e| panic!("{e}"));
    let first_home = sandbox.home("first");
    assert!(sandbox.run(&first_home, &["init"]).status.success());
    let twin_home = sandbox.home("twin");
    copy_dir(&first_home, &twin_home);

    let hub_addr = hub.addr.to_string();
    let mut first_args = serve_args.to_vec();
    first_args.extend(["--peer", hub_addr.as_str()]);
    let first = sandbox
        .spawn_serve(&first_home, &first_args)
        .unwrap_or_else(|e| panic!("{e}"));
    sandbox.json_until(
        &hub_home,
        &["peers"],
        "the hub to connect to the first node",
        |doc| {
            doc["connected"]
                .as_array()
                .is_some_and(|peers| peers.iter().any(|p| p["feed"] == first.feed.as_str()))
        },
    );

    let run = sandbox.run(&twin_home, &["sync", &hub_addr]);
    let line = run.one_line_error();
    assert!(
        line.contains("already connected to your feed over another connection"),
        "{line}"
    );
}
