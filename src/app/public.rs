//! A hub's public pages, for the people who open a link: which events they
//! show ([`reach`], the rule, pure) and the queries behind them. The pages
//! themselves are a front end (`web/public.rs`); they read only through
//! these calls.
//!
//! The rule, as organizers read it in docs/hub.md:
//!
//! - only events of the hub's members (and of the hub itself) ever appear;
//! - on the public network, a member's events are listed unless the
//!   organizer marked one `unlisted`, which is then reachable by its link
//!   only;
//! - on a private network nothing appears, unless the operator turned the
//!   public pages on for it (`"public_web_private_network": true`) and the
//!   organizer marked the event `public` (then `unlisted` still keeps it
//!   off the list).

use std::collections::HashMap;

use crate::content::Event;
use crate::feed::message::{FeedId, MessageId};
use crate::home::config::ConfigFile;
use crate::proto::handshake::DEFAULT_NETWORK_KEY;

use super::views::{EventDetail, EventSummary};
use super::{App, AppError};
use crate::store::index::EventState;

/// Most entries of the upcoming-events index one page of the public list
/// reads. Each costs an index read or two; events the list leaves out
/// (unlisted ones, those of non-members) still cost theirs, so without a
/// bound a store full of them would make every request slow. Past the
/// bound, the list ends there.
pub const MAX_PUBLIC_SCAN: usize = 10_000;

/// Which events a hub's public pages may show, as the hub's network and
/// its operator decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicNetwork {
    /// The public network (no `network_key`): members' events, unless
    /// unlisted.
    Open,
    /// A private network whose operator turned the public pages on for it:
    /// members' events marked `public`.
    PrivateAllowed,
    /// A private network without the operator's consent: none.
    PrivateClosed,
}

impl PublicNetwork {
    /// The hub's setting, from its `config.json`.
    pub fn of_config(config: &ConfigFile) -> Result<PublicNetwork, AppError> {
        Ok(if config.network_key()? == DEFAULT_NETWORK_KEY {
            PublicNetwork::Open
        } else if config.public_web_private_network == Some(true) {
            PublicNetwork::PrivateAllowed
        } else {
            PublicNetwork::PrivateClosed
        })
    }
}

/// Where a hub's public pages show an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// In the list of upcoming events, and at its link.
    Listed,
    /// At its link only.
    LinkOnly,
    /// Nowhere: its link is "not found", as for an unknown event.
    Hidden,
}

/// Where a hub's public pages show `event`, whose organizer is a member of
/// the hub (or the hub) when `by_member`, on `network`. See the module
/// documentation for the rule.
pub fn reach(event: &Event, by_member: bool, network: PublicNetwork) -> Reach {
    let shown = by_member
        && match network {
            PublicNetwork::Open => true,
            PublicNetwork::PrivateAllowed => event.public,
            PublicNetwork::PrivateClosed => false,
        };
    match (shown, event.unlisted) {
        (false, _) => Reach::Hidden,
        (true, true) => Reach::LinkOnly,
        (true, false) => Reach::Listed,
    }
}

/// Whose events a hub's public pages may show: its members' and its own.
/// Each feed is looked up once per request.
struct Organizers<'a> {
    app: &'a App,
    hub: Option<FeedId>,
    known: HashMap<FeedId, bool>,
}

impl Organizers<'_> {
    fn new(app: &App) -> Organizers<'_> {
        Organizers {
            app,
            hub: app.node.as_ref().map(|n| n.feed_id()),
            known: HashMap::new(),
        }
    }

    fn includes(&mut self, feed: &FeedId) -> Result<bool, AppError> {
        if self.hub.as_ref() == Some(feed) {
            return Ok(true);
        }
        if let Some(&known) = self.known.get(feed) {
            return Ok(known);
        }
        let member = self.app.store.member(feed)?.is_some();
        self.known.insert(*feed, member);
        Ok(member)
    }
}

impl App {
    /// Whether this node is on a private network (a `network_key` of its
    /// own). An app without a node reads `config.json`; one without either
    /// counts as on the public network.
    pub fn network_is_private(&self) -> bool {
        match (&self.node, &self.home) {
            (Some(node), _) => *node.network_key() != DEFAULT_NETWORK_KEY,
            (None, Some(home)) => ConfigFile::load(home)
                .and_then(|c| c.network_key())
                .is_ok_and(|key| key != DEFAULT_NETWORK_KEY),
            (None, None) => false,
        }
    }

    /// The hub's public list: the upcoming events its public pages list
    /// ([`reach`] gives [`Reach::Listed`]), soonest first, after skipping
    /// the first `skip` of them; at most `limit`, and whether there are
    /// more. No viewer's answer is in them (`mine` is `None`): the page is
    /// everyone's. Reads the upcoming-events index in order, at most
    /// [`MAX_PUBLIC_SCAN`] entries of it.
    pub fn public_events(
        &self,
        network: PublicNetwork,
        now_ms: i64,
        skip: usize,
        limit: usize,
    ) -> Result<(Vec<EventSummary>, bool), AppError> {
        if network == PublicNetwork::PrivateClosed || limit == 0 {
            return Ok((Vec::new(), false));
        }
        let mut organizers = Organizers::new(self);
        let mut listed = Vec::new();
        let mut skipped = 0;
        let mut more = false;
        for id in self.store.upcoming_event_ids(now_ms)?.take(MAX_PUBLIC_SCAN) {
            let state = self.event_state(&id?)?;
            let by_member = organizers.includes(&state.author)?;
            if reach(&state.event, by_member, network) != Reach::Listed {
                continue;
            }
            if skipped < skip {
                skipped += 1;
                continue;
            }
            if listed.len() == limit {
                more = true;
                break;
            }
            listed.push(state);
        }
        let summaries = listed
            .into_iter()
            .map(|state| self.summarize(state, None, None))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((summaries, more))
    }

    /// One event for the hub's public pages, with every answer and no
    /// viewer's own, and whether the list shows it too. An event they do
    /// not show is [`AppError::UnknownEvent`], like one the hub does not
    /// know: its link tells a stranger nothing.
    pub fn public_event(
        &self,
        network: PublicNetwork,
        event: &MessageId,
    ) -> Result<(EventDetail, Reach), AppError> {
        let (state, shown) = self.shown_event(network, event)?;
        Ok((self.detail_for(state, None)?, shown))
    }

    /// An event the public pages show, and where; one they do not is
    /// [`AppError::UnknownEvent`], like one the hub does not know.
    pub(super) fn shown_event(
        &self,
        network: PublicNetwork,
        event: &MessageId,
    ) -> Result<(EventState, Reach), AppError> {
        let unknown = || AppError::UnknownEvent(event.to_string());
        let state = self.store.event(event)?.ok_or_else(unknown)?;
        let by_member = Organizers::new(self).includes(&state.author)?;
        match reach(&state.event, by_member, network) {
            Reach::Hidden => Err(unknown()),
            shown => Ok((state, shown)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::EventTime;

    fn event(unlisted: bool, public: bool) -> Event {
        Event {
            unlisted,
            public,
            ..Event::new(
                "Soup",
                EventTime::parse("start", "2099-01-26T18:00:00Z").expect("a time"),
            )
        }
    }

    #[test]
    fn on_the_public_network_members_events_are_listed_unless_unlisted() {
        let open = PublicNetwork::Open;
        assert_eq!(reach(&event(false, false), true, open), Reach::Listed);
        assert_eq!(reach(&event(true, false), true, open), Reach::LinkOnly);
        // `public` asks for nothing more where everything is public.
        assert_eq!(reach(&event(false, true), true, open), Reach::Listed);
        assert_eq!(reach(&event(true, true), true, open), Reach::LinkOnly);
    }

    #[test]
    fn a_private_network_shows_only_public_events_and_only_with_the_operators_consent() {
        for unlisted in [false, true] {
            for public in [false, true] {
                let e = event(unlisted, public);
                assert_eq!(
                    reach(&e, true, PublicNetwork::PrivateClosed),
                    Reach::Hidden,
                    "unlisted {unlisted}, public {public}"
                );
            }
        }
        let allowed = PublicNetwork::PrivateAllowed;
        assert_eq!(reach(&event(false, false), true, allowed), Reach::Hidden);
        assert_eq!(reach(&event(true, false), true, allowed), Reach::Hidden);
        assert_eq!(reach(&event(false, true), true, allowed), Reach::Listed);
        assert_eq!(reach(&event(true, true), true, allowed), Reach::LinkOnly);
    }

    #[test]
    fn events_of_non_members_never_show() {
        for network in [
            PublicNetwork::Open,
            PublicNetwork::PrivateAllowed,
            PublicNetwork::PrivateClosed,
        ] {
            for (unlisted, public) in [(false, false), (true, false), (false, true), (true, true)] {
                assert_eq!(
                    reach(&event(unlisted, public), false, network),
                    Reach::Hidden,
                    "{network:?}, unlisted {unlisted}, public {public}"
                );
            }
        }
    }

    #[test]
    fn the_network_setting_comes_from_the_config() {
        let open = ConfigFile::default();
        assert_eq!(
            PublicNetwork::of_config(&open).expect("valid"),
            PublicNetwork::Open
        );
        let private = ConfigFile {
            network_key: Some("ab".repeat(32)),
            ..ConfigFile::default()
        };
        assert_eq!(
            PublicNetwork::of_config(&private).expect("valid"),
            PublicNetwork::PrivateClosed
        );
        let allowed = ConfigFile {
            public_web_private_network: Some(true),
            ..private.clone()
        };
        assert_eq!(
            PublicNetwork::of_config(&allowed).expect("valid"),
            PublicNetwork::PrivateAllowed
        );
        // The operator's setting means nothing on the public network.
        let needless = ConfigFile {
            public_web_private_network: Some(true),
            ..ConfigFile::default()
        };
        assert_eq!(
            PublicNetwork::of_config(&needless).expect("valid"),
            PublicNetwork::Open
        );
    }
}
