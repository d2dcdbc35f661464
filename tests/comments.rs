//! Comments on events through the app (docs/content.md, "Comments"):
//! threads written on nodes that were apart show in one order everywhere
//! once synced, the organizer's hiding and comment setting, edits and
//! deletions by their authors only, and a thread of 10,000 comments read
//! a page at a time.
//!
//! Nodes talk over 127.0.0.1 only. No test asserts how fast anything is.

mod common;

use std::sync::Arc;

use common::node::{TestNode, event, new_key, unstarted_node};
use common::{now_ms, open_store};
use ed25519_dalek::SigningKey;
use potluck::app::{App, AppError, CommentShown, Past, ThreadPage, ThreadView};
use potluck::content::{
    Comment, CommentHide, CommentPolicy, EventUpdate, KnownContent, RsvpStatus,
};
use potluck::feed::message::{Message, MessageId};
use potluck::proto::handshake::DEFAULT_NETWORK_KEY;
use potluck::store::Store;

/// A person with an app over their own store, whose node never listens.
struct Person {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    app: App,
}

impl std::ops::Deref for Person {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

fn offline_app() -> Person {
    let (dir, store) = open_store();
    let store = Arc::new(store);
    let app = App::new(unstarted_node(
        store.clone(),
        new_key(),
        DEFAULT_NETWORK_KEY,
    ));
    Person {
        _dir: dir,
        store,
        app,
    }
}

/// Everything `from` holds, ingested by `to` (as a sync would bring it).
fn copy_all(from: &Store, to: &App) {
    for (feed, _) in from.feeds().unwrap() {
        let msgs: Vec<Message> = from.feed_messages(&feed, 1).map(Result::unwrap).collect();
        to.ingest(msgs).unwrap();
    }
}

fn first_page(app: &App, event: &MessageId) -> ThreadView {
    app.thread(
        event,
        ThreadPage {
            after: None,
            limit: 50,
        },
    )
    .unwrap()
}

/// The ids and texts of a thread's first page.
fn shown(app: &App, event: &MessageId) -> Vec<(MessageId, Option<String>)> {
    first_page(app, event)
        .comments
        .into_iter()
        .map(|c| (c.id, c.text))
        .collect()
}

fn announce(app: &App) -> MessageId {
    app.announce(&event("Soup night", None, None), Past::Allow, now_ms())
        .unwrap()
        .id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_comment_while_offline_and_show_one_thread_once_synced() {
    let a = TestNode::start().await;
    let b = TestNode::start().await;
    let c = TestNode::start().await;
    let (app_a, app_b, app_c) = (
        App::new(a.node.clone()),
        App::new(b.node.clone()),
        App::new(c.node.clone()),
    );
    let event = announce(&app_a);
    let first = app_a
        .comment(&event, "Who brings bread?".into(), None, now_ms())
        .unwrap()
        .id();
    b.sync_settled(&a).await;
    c.sync_settled(&a).await;

    // Apart now, with clocks that disagree: B's is an hour slow.
    let t = now_ms();
    let from_b = app_b
        .comment(&event, "I do.".into(), Some(first), t - 3_600_000)
        .unwrap()
        .id();
    app_b
        .comment(&event, "Rye or wheat?".into(), None, t - 3_599_000)
        .unwrap();
    app_c
        .comment(&event, "I can bring soup".into(), None, t + 10)
        .unwrap();
    app_c
        .comment(
            &event,
            "<script>alert(1)</script>".into(),
            Some(first),
            t + 20,
        )
        .unwrap();
    app_a
        .comment(
            &event,
            "Thanks all, see https://a.test/map".into(),
            None,
            t + 5,
        )
        .unwrap();

    // They meet again, in some order.
    c.sync_settled(&b).await;
    b.sync_settled(&a).await;
    c.sync_settled(&a).await;
    b.sync_settled(&a).await;

    let thread = shown(&app_a, &event);
    assert_eq!(thread.len(), 6);
    assert_eq!(shown(&app_b, &event), thread);
    assert_eq!(shown(&app_c, &event), thread);
    // B's reply comes after what it answers, whatever B's clock said.
    let at = |id: MessageId| thread.iter().position(|(c, _)| *c == id).unwrap();
    assert!(at(first) < at(from_b));
    assert_eq!(at(first), 0);
    // Markup is kept as text, verbatim; the page escapes it.
    assert!(
        thread
            .iter()
            .any(|(_, t)| t.as_deref() == Some("<script>alert(1)</script>"))
    );
    let view = first_page(&app_c, &event);
    let reply = view.comments.iter().find(|c| c.id == from_b).unwrap();
    assert_eq!(reply.reply_to, Some(first));
    let links = app_b.links_shared(&event).unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].url, "https://a.test/map");
    // Each store's thread index is what a rebuild from its logs gives,
    // feed by feed, in another order than the messages arrived.
    for node in [&a, &b, &c] {
        let report = node.store().fsck().unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}

#[test]
fn the_organizer_hides_and_a_hide_by_anyone_else_is_ignored() {
    let organizer = offline_app();
    let guest = offline_app();
    let event = announce(&organizer);
    copy_all(&organizer.store, &guest);
    let rude = guest
        .comment(&event, "rude words http://spam.test".into(), None, now_ms())
        .unwrap()
        .id();
    // The guest cannot hide through the app, nor by a message of their own.
    assert!(matches!(
        guest.hide_comment(&event, &rude, true, now_ms()),
        Err(AppError::NotOrganizer { .. })
    ));
    let forged = CommentHide {
        event,
        comment: rude,
        hidden: true,
    };
    guest.publish(&forged.to_content_bytes(), now_ms()).unwrap();
    copy_all(&guest.store, &organizer);
    assert_eq!(
        first_page(&organizer, &event).comments[0].shown,
        CommentShown::Text
    );

    organizer
        .hide_comment(&event, &rude, true, now_ms())
        .unwrap();
    copy_all(&organizer.store, &guest);
    for app in [&organizer, &guest] {
        let view = first_page(app, &event);
        assert_eq!(view.comments[0].shown, CommentShown::Hidden);
        assert_eq!(view.comments[0].text, None, "hidden text is not shown");
        assert!(app.links_shared(&event).unwrap().is_empty());
    }
    // Shown again.
    organizer
        .hide_comment(&event, &rude, false, now_ms())
        .unwrap();
    assert_eq!(
        first_page(&organizer, &event).comments[0].shown,
        CommentShown::Text
    );
}

#[test]
fn edits_and_deletions_are_the_authors_own() {
    let organizer = offline_app();
    let guest = offline_app();
    let event = announce(&organizer);
    copy_all(&organizer.store, &guest);
    let said = guest
        .comment(&event, "I'll bring bred".into(), None, now_ms())
        .unwrap()
        .id();
    copy_all(&guest.store, &organizer);
    assert!(matches!(
        organizer.edit_comment(&said, "changed".into(), now_ms()),
        Err(AppError::NotCommentAuthor { verb: "edit", .. })
    ));
    assert!(matches!(
        organizer.delete_comment(&said, now_ms()),
        Err(AppError::NotCommentAuthor { verb: "delete", .. })
    ));
    guest
        .edit_comment(&said, "I'll bring bread".into(), now_ms())
        .unwrap();
    let view = first_page(&guest, &event);
    assert_eq!(view.comments[0].shown, CommentShown::Edited);
    assert_eq!(view.comments[0].text.as_deref(), Some("I'll bring bread"));
    guest.delete_comment(&said, now_ms()).unwrap();
    copy_all(&guest.store, &organizer);
    for app in [&organizer, &guest] {
        let view = first_page(app, &event);
        assert_eq!(view.comments[0].shown, CommentShown::Removed);
        assert_eq!(view.comments[0].text, None);
    }
    assert!(matches!(
        guest.edit_comment(&said, "back".into(), now_ms()),
        Err(AppError::CommentRemoved(_))
    ));
}

#[test]
fn the_comment_setting_decides_whose_comments_are_shown() {
    let organizer = offline_app();
    let guest = offline_app();
    let stranger = offline_app();
    let event = announce(&organizer);
    copy_all(&organizer.store, &guest);
    copy_all(&organizer.store, &stranger);
    guest
        .rsvp(&event, RsvpStatus::Maybe, 0, None, now_ms())
        .unwrap();
    guest
        .comment(&event, "from a guest".into(), None, now_ms())
        .unwrap();
    stranger
        .comment(&event, "from a stranger".into(), None, now_ms())
        .unwrap();
    organizer
        .comment(&event, "from the organizer".into(), None, now_ms())
        .unwrap();
    copy_all(&guest.store, &organizer);
    copy_all(&stranger.store, &organizer);
    let texts = |app: &Person| -> Vec<String> {
        first_page(app, &event)
            .comments
            .into_iter()
            .filter_map(|c| c.text)
            .collect()
    };
    assert_eq!(texts(&organizer).len(), 3);

    let set = |policy| {
        let mut update = EventUpdate::new(event);
        update.comments = potluck::content::Change::Set(policy);
        organizer
            .update(&event, update, Past::Allow, now_ms())
            .unwrap();
    };
    set(CommentPolicy::Answered);
    assert_eq!(texts(&organizer), ["from a guest", "from the organizer"]);
    copy_all(&organizer.store, &stranger);
    assert!(matches!(
        stranger.comment(&event, "again".into(), None, now_ms()),
        Err(AppError::CommentsClosed { .. })
    ));
    set(CommentPolicy::Nobody);
    assert_eq!(texts(&organizer), ["from the organizer"]);
    copy_all(&organizer.store, &guest);
    let closed = guest.comment(&event, "me too".into(), None, now_ms());
    assert!(
        matches!(closed, Err(AppError::CommentsClosed { .. })),
        "{closed:?}"
    );
    assert!(
        closed
            .unwrap_err()
            .to_string()
            .contains("commenting is closed")
    );
    organizer
        .comment(&event, "still me".into(), None, now_ms())
        .unwrap();
    set(CommentPolicy::Everyone);
    assert_eq!(texts(&organizer).len(), 4);
}

#[test]
fn a_reply_to_a_comment_of_another_event_or_an_unknown_one_is_at_the_top_level() {
    let organizer = offline_app();
    let event = announce(&organizer);
    let other = announce(&organizer);
    let elsewhere = organizer
        .comment(&other, "elsewhere".into(), None, now_ms())
        .unwrap()
        .id();
    // The app refuses such replies; a message written by hand says it.
    assert!(matches!(
        organizer.comment(&event, "re".into(), Some(elsewhere), now_ms()),
        Err(AppError::UnknownComment(_))
    ));
    for reply in [elsewhere, MessageId([9; 32])] {
        let by_hand = Comment {
            event,
            reply: Some(reply),
            seen: vec![reply],
            text: "re".into(),
        };
        organizer
            .publish(&by_hand.to_content_bytes(), now_ms())
            .unwrap();
    }
    let view = first_page(&organizer, &event);
    assert_eq!(view.comments.len(), 2);
    assert!(view.comments.iter().all(|c| c.reply_to.is_none()));
}

#[test]
fn ten_thousand_comments_on_one_event_come_a_page_at_a_time() {
    let organizer = offline_app();
    let event = announce(&organizer);
    let keys: Vec<SigningKey> = (0..20).map(|_| new_key()).collect();
    let mut heads: Vec<(u64, MessageId)> = vec![(0, MessageId::default()); keys.len()];
    let base = now_ms();
    let mut batch = Vec::new();
    for n in 0..10_000i64 {
        let person = (n as usize * 7) % keys.len();
        let comment = Comment {
            event,
            reply: None,
            seen: Vec::new(),
            text: format!("comment number {n}"),
        };
        let (sequence, previous) = heads[person];
        // Claimed times out of order: the thread sorts them.
        let at = base + (n * 7919) % 10_000;
        let msg = Message::sign(
            &keys[person],
            sequence + 1,
            previous,
            at,
            &comment.to_content_bytes(),
        )
        .unwrap();
        heads[person] = (sequence + 1, msg.id());
        batch.push(msg);
        if batch.len() == 1_000 {
            organizer.ingest(std::mem::take(&mut batch)).unwrap();
        }
    }
    let page = first_page(&organizer, &event);
    assert_eq!(page.comments.len(), 50);
    assert!(page.comments.windows(2).all(|w| w[0].place <= w[1].place));
    assert_eq!(page.comments[0].timestamp, base);
    let next = organizer
        .thread(
            &event,
            ThreadPage {
                after: page.next_after,
                limit: 50,
            },
        )
        .unwrap();
    assert_eq!(next.comments.len(), 50);
    assert!(next.comments[0].place >= page.comments[49].place);
    assert!(
        next.comments
            .iter()
            .all(|c| page.comments.iter().all(|p| p.id != c.id))
    );

    // Closed to all but the organizer, who wrote none of them: a page
    // reads a bounded part of the thread and says where to go on.
    let mut update = EventUpdate::new(event);
    update.comments = potluck::content::Change::Set(CommentPolicy::Nobody);
    organizer
        .update(&event, update, Past::Allow, now_ms())
        .unwrap();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = organizer
            .thread(&event, ThreadPage { after, limit: 50 })
            .unwrap();
        assert!(page.comments.is_empty());
        pages += 1;
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages < 10, "the pages end");
    }
    assert!(pages > 1, "no page reads the whole thread");
}
