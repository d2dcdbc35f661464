//! Unit tests of the seams the one door made: opening a home, resolving
//! typed event ids, and the steps of a join.

use crate::content::{Event, EventTime};
use crate::feed::message::FeedId;
use crate::home::Home;
use crate::home::config::{ConfigFile, Invite, PeerAddr};
use crate::proto::handshake::NetworkKey;
use crate::proto::peerbook::PeerSource;

use super::{Access, App, AppError, Past};

fn home() -> (tempfile::TempDir, Home) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let home = Home::at(dir.path().join("home"));
    (dir, home)
}

fn event(title: &str) -> Event {
    Event::new(
        title,
        EventTime::parse("start", "2099-01-26T18:00:00Z").expect("a valid time"),
    )
}

fn invite_from(feed: FeedId, network: Option<NetworkKey>) -> Invite {
    Invite {
        peer: PeerAddr {
            feed: Some(feed),
            addr: "127.0.0.1:9".into(),
        },
        network,
        member: None,
        hubs: Vec::new(),
    }
}

#[test]
fn an_empty_home_gets_an_identity_once_and_a_lost_key_is_refused() {
    let (_dir, home) = home();
    assert!(matches!(
        App::open(&home, Access::Write),
        Err(AppError::Identity(_))
    ));
    let app = App::open(&home, Access::Create).expect("a new identity");
    assert!(app.created_identity());
    let me = app.feed_id().expect("an identity");
    app.announce(&event("Soup night"), Past::Refuse, super::now_ms())
        .expect("published");
    drop(app);
    let again = App::open(&home, Access::Create).expect("the same identity");
    assert!(!again.created_identity());
    assert_eq!(again.feed_id().expect("an identity"), me);
    drop(again);
    std::fs::remove_file(home.secret_path()).expect("the key file removed");
    for access in [Access::Create, Access::Write] {
        assert!(
            matches!(App::open(&home, access), Err(AppError::IdentityLost { .. })),
            "{access:?} must refuse a home whose key is gone"
        );
    }
    // Reading needs no key; starting over is explicit.
    assert!(App::open(&home, Access::Read).is_ok());
    let fresh = App::open(&home, Access::NewIdentity).expect("a new person, on purpose");
    assert!(fresh.created_identity());
    assert_ne!(fresh.feed_id().expect("an identity"), me);
}

#[test]
fn typed_event_ids_resolve_in_full_by_prefix_or_with_a_clear_error() {
    let (_dir, home) = home();
    let app = App::open(&home, Access::Create).expect("opened");
    let id = app
        .announce(&event("Soup night"), Past::Refuse, super::now_ms())
        .expect("published")
        .id();
    let text = id.to_string();
    assert_eq!(app.resolve_event(&text).expect("the full id"), id);
    assert_eq!(app.resolve_event(&text[..8]).expect("a prefix"), id);
    assert!(matches!(
        app.resolve_event(&text[..4]),
        Err(AppError::PrefixTooShort(_))
    ));
    assert!(matches!(
        app.resolve_event("%zzzzzzzzzz"),
        Err(AppError::UnknownEvent(_))
    ));
    let unknown = crate::feed::message::MessageId([7; 32]);
    assert!(matches!(
        app.event(&unknown),
        Err(AppError::UnknownEvent(_))
    ));
}

#[test]
fn an_event_already_over_is_announced_only_when_asked() {
    let (_dir, home) = home();
    let app = App::open(&home, Access::Create).expect("opened");
    let mut old = event("Last year's soup");
    old.start = EventTime::parse("start", "2001-01-26T18:00:00Z").expect("a valid time");
    assert!(matches!(
        app.announce(&old, Past::Refuse, super::now_ms()),
        Err(AppError::AlreadyOver { .. })
    ));
    assert!(app.announce(&old, Past::Allow, super::now_ms()).is_ok());
}

#[test]
fn a_join_follows_the_inviter_and_remembers_it_once() {
    let (_dir, home) = home();
    let app = App::open(&home, Access::Create).expect("opened");
    let me = app.feed_id().expect("an identity");
    let inviter = FeedId([9; 32]);
    // Refusals first: nothing is written for them.
    assert!(matches!(
        app.join(&invite_from(me, None), false, |_, _| {}),
        Err(AppError::OwnFeed)
    ));
    assert!(matches!(
        app.join(
            &invite_from(inviter, Some(NetworkKey([1; 32]))),
            false,
            |_, _| {}
        ),
        Err(AppError::OtherNetwork { private: true })
    ));
    let mut no_feed = invite_from(inviter, None);
    no_feed.peer.feed = None;
    assert!(matches!(
        app.join(&no_feed, false, |_, _| {}),
        Err(AppError::InviteWithoutFeed)
    ));
    assert!(app.contacts().expect("contacts").is_empty());
    // Twice: one follow, one peer book record, one configured peer.
    for _ in 0..2 {
        let joined = app
            .join(&invite_from(inviter, None), false, |_, _| {})
            .expect("joined");
        assert_eq!(joined.inviter, inviter);
        assert!(joined.session.is_none());
    }
    let contacts = app.contacts().expect("contacts");
    assert_eq!(contacts.len(), 1);
    assert!(contacts[0].following && contacts[0].feed == inviter);
    let book = app.network().expect("the network").book;
    assert_eq!(book.len(), 1);
    assert_eq!(book[0].record.source, PeerSource::Invite);
    let config = ConfigFile::load(&home).expect("config.json");
    assert_eq!(config.peers.len(), 1);
}

#[test]
fn a_new_home_takes_the_invites_network_and_an_old_one_refuses_another() {
    let (_dir, home) = home();
    let private = NetworkKey([3; 32]);
    let invite = invite_from(FeedId([9; 32]), Some(private.clone()));
    App::prepare_join(&home, &invite).expect("a new home takes the network");
    let app = App::open(&home, Access::Create).expect("opened");
    assert!(app.join(&invite, false, |_, _| {}).is_ok());
    drop(app);
    let public = invite_from(FeedId([8; 32]), None);
    assert!(matches!(
        App::prepare_join(&home, &public),
        Err(AppError::OtherNetwork { private: false })
    ));
}

#[test]
fn a_hub_holding_is_said_in_words_from_its_clock_entry() {
    use super::HubView;
    use crate::proto::replicate::Holding;
    let feed = FeedId([7; 32]);
    let hub = |holds, my_head| HubView {
        addr: PeerAddr {
            feed: Some(feed),
            addr: "127.0.0.1:9".into(),
        },
        feed,
        label: "hub".into(),
        connected: false,
        holds,
        my_head,
    };
    let words = |holds, my_head| hub(holds, my_head).holding_words();
    assert_eq!(
        words(Some(Holding::Holds(4)), 4),
        "holds all your 4 messages"
    );
    assert_eq!(words(Some(Holding::Holds(1)), 1), "holds your one message");
    assert_eq!(
        words(Some(Holding::Holds(2)), 5),
        "holds 2 of your 5 messages"
    );
    assert_eq!(
        words(Some(Holding::Holds(0)), 1),
        "holds 0 of your 1 message"
    );
    assert!(words(Some(Holding::Refuses), 3).starts_with("takes none of your 3 messages"));
    assert!(words(None, 3).starts_with("not known yet"));
    assert!(words(Some(Holding::Holds(9)), 0).contains("published nothing"));
}

/// The hub's public list through the app: members' events only, in
/// order, unlisted ones left out but reachable, a page at a time.
#[test]
fn a_hubs_public_list_shows_members_listed_events_a_page_at_a_time() {
    use super::{PublicNetwork, Reach};

    let (_hub_dir, hub_home) = home();
    std::fs::create_dir_all(hub_home.root()).expect("the hub's home");
    std::fs::write(ConfigFile::path(&hub_home), r#"{"hub": true}"#).expect("config.json");
    let hub = App::open(&hub_home, Access::Create).expect("the hub");
    let at = |day: u32| {
        EventTime::parse("start", &format!("2099-01-{day:02}T18:00:00Z")).expect("a valid time")
    };
    // A member's events (one unlisted, one public) and a stranger's.
    let (_member_dir, member_home) = home();
    let member = App::open(&member_home, Access::Create).expect("a member");
    let (_other_dir, other_home) = home();
    let stranger = App::open(&other_home, Access::Create).expect("a stranger");
    let mut ids = Vec::new();
    for (day, unlisted, public) in [(3, false, false), (4, true, false), (5, false, true)] {
        let e = Event {
            unlisted,
            public,
            ..Event::new(format!("Day {day}"), at(day))
        };
        ids.push(
            member
                .announce(&e, Past::Refuse, super::now_ms())
                .expect("announced")
                .id(),
        );
    }
    let theirs = stranger
        .announce(
            &Event::new("Not a member's", at(2)),
            Past::Refuse,
            super::now_ms(),
        )
        .expect("announced")
        .id();
    for app in [&member, &stranger] {
        let me = app.feed_id().expect("an identity");
        let msgs = app
            .store
            .feed_messages(&me, 1)
            .collect::<Result<Vec<_>, _>>()
            .expect("its feed");
        hub.ingest(msgs).expect("ingested");
    }
    hub.hub_admit(&member.feed_id().expect("an identity"), None)
        .expect("admitted");
    let own = hub
        .announce(
            &Event::new("The hub's own", at(6)),
            Past::Refuse,
            super::now_ms(),
        )
        .expect("announced")
        .id();
    let now = super::now_ms();
    let titles = |network, skip, limit| {
        let (events, more) = hub
            .public_events(network, now, skip, limit)
            .expect("listed");
        let titles: Vec<String> = events.iter().map(|e| e.state.event.title.clone()).collect();
        assert!(
            events.iter().all(|e| e.mine.is_none()),
            "nobody's answer is shown"
        );
        (titles, more)
    };
    assert_eq!(
        titles(PublicNetwork::Open, 0, 10),
        (
            vec!["Day 3".into(), "Day 5".into(), "The hub's own".into()],
            false
        )
    );
    assert_eq!(
        titles(PublicNetwork::Open, 1, 1),
        (vec!["Day 5".into()], true)
    );
    assert_eq!(
        titles(PublicNetwork::Open, 2, 1),
        (vec!["The hub's own".into()], false)
    );
    assert_eq!(
        titles(PublicNetwork::PrivateAllowed, 0, 10),
        (vec!["Day 5".into()], false)
    );
    assert_eq!(
        titles(PublicNetwork::PrivateClosed, 0, 10),
        (Vec::new(), false)
    );

    let reach = |network, id| hub.public_event(network, id).map(|(_, reach)| reach);
    assert_eq!(
        reach(PublicNetwork::Open, &ids[1]).expect("by its link"),
        Reach::LinkOnly
    );
    assert_eq!(
        reach(PublicNetwork::Open, &own).expect("the hub's"),
        Reach::Listed
    );
    for (network, id) in [
        (PublicNetwork::Open, &theirs),
        (PublicNetwork::PrivateAllowed, &ids[0]),
        (PublicNetwork::PrivateClosed, &ids[2]),
    ] {
        assert!(
            matches!(reach(network, id), Err(AppError::UnknownEvent(_))),
            "{network:?}: {id}"
        );
    }
}
