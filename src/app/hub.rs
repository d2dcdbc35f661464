//! Hubs, for people: on a hub, member codes, the member list and removing
//! a member; on a member's node, joining a hub and the hubs it keeps.
//! The hub's protocol side is `node/hub.rs` and `proto/hub.rs`; what it
//! keeps is `store/hub.rs`.

use crate::feed::message::FeedId;
use crate::home::config::{ConfigFile, Invite, PeerAddr};
use crate::node::{ConnectionError, MemberSettings, PeerInfo};
use crate::proto::peerbook::{PeerRecord, PeerSource};
use crate::proto::replicate::{Holding, PeerMemory};
use crate::proto::wire::TOKEN_LEN;
use crate::store::hub::{Member, MemberCode};

use super::network::{JoinReport, check_network};
use super::views::{HubView, MembersSummary, person};
use super::{App, AppError, now_ms};

/// One day, in ms.
const DAY_MS: i64 = 86_400_000;

/// How a hub's member code may be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberCodeOptions {
    /// How many people may join with it.
    pub uses: u32,
    /// How long it works, in ms from now.
    pub valid_for_ms: i64,
    /// The operator's note, shown with the members who joined with it.
    pub note: Option<String>,
}

impl Default for MemberCodeOptions {
    /// One person, within a week.
    fn default() -> MemberCodeOptions {
        MemberCodeOptions {
            uses: 1,
            valid_for_ms: 7 * DAY_MS,
            note: None,
        }
    }
}

/// Longest note on a member code.
pub const MAX_CODE_NOTE: usize = 200;

/// A hub's member, for `potluck hub members` and the page.
#[derive(Clone, Debug)]
pub struct MemberView {
    /// The member's feed.
    pub feed: FeedId,
    /// The member for people: its name, else its short id.
    pub label: String,
    /// When it joined (ms since the Unix epoch).
    pub since_ms: i64,
    /// The note of the code it joined with.
    pub note: Option<String>,
    /// Bytes its connections made the hub store.
    pub stored_bytes: u64,
    /// Its storage quota, bytes.
    pub quota_bytes: u64,
    /// Connected to the hub now.
    pub connected: bool,
}

impl App {
    /// Whether this node is a hub: the running node says; with none
    /// running, `config.json` does, or a store that has members (a hub
    /// started with `serve --hub`).
    pub fn is_hub(&self) -> Result<bool, AppError> {
        if let Some(node) = &self.node
            && node.hub_limits().is_some()
        {
            return Ok(true);
        }
        if ConfigFile::load(self.home()?)?.hub_limits().is_some() {
            return Ok(true);
        }
        Ok(!self.store.members()?.is_empty())
    }

    /// On a hub, a new member code's secret, saved (as a hash) with its
    /// options; on any other node, none.
    pub(super) fn make_member_code(
        &self,
        config: &ConfigFile,
        options: &MemberCodeOptions,
    ) -> Result<Option<[u8; TOKEN_LEN]>, AppError> {
        let hub = self.node.as_ref().is_some_and(|n| n.hub_limits().is_some())
            || config.hub_limits().is_some()
            || !self.store.members()?.is_empty();
        if !hub {
            return Ok(None);
        }
        if options.uses == 0 || options.valid_for_ms <= 0 {
            return Err(AppError::Refused(
                "a member code must allow at least one use, for some time".into(),
            ));
        }
        if options
            .note
            .as_ref()
            .is_some_and(|n| n.len() > MAX_CODE_NOTE)
        {
            return Err(AppError::Refused(format!(
                "the note is longer than {MAX_CODE_NOTE} bytes"
            )));
        }
        let secret: [u8; TOKEN_LEN] = rand::random();
        let now = now_ms();
        let code = MemberCode {
            uses_left: options.uses,
            expires_ms: now.saturating_add(options.valid_for_ms),
            created_ms: now,
            note: options.note.clone(),
        };
        self.store.put_member_code(&secret, &code)?;
        Ok(Some(secret))
    }

    /// `potluck hub members`: the hub's members, oldest first.
    pub fn hub_members(&self) -> Result<Vec<MemberView>, AppError> {
        if !self.is_hub()? {
            return Err(AppError::NotAHub);
        }
        let quota = self
            .node
            .as_ref()
            .and_then(|n| n.hub_limits().cloned())
            .or(ConfigFile::load(self.home()?)?.hub_limits())
            .unwrap_or_default()
            .member_bytes;
        let connected: Vec<FeedId> = self
            .node
            .as_ref()
            .map(|n| n.peers().into_iter().map(|p| p.feed).collect())
            .unwrap_or_default();
        self.store
            .members()?
            .into_iter()
            .map(|m| {
                Ok(MemberView {
                    label: person(self.name_of(&m.feed)?.as_deref(), &m.feed),
                    feed: m.feed,
                    since_ms: m.since_ms,
                    note: m.note,
                    stored_bytes: m.stored_bytes.saturating_add(
                        self.node
                            .as_ref()
                            .map_or(0, |n| n.unsaved_member_bytes(&m.feed)),
                    ),
                    quota_bytes: quota,
                    connected: connected.contains(&m.feed),
                })
            })
            .collect()
    }

    /// `potluck hub remove FEED`: ends a membership. A live session of
    /// the member ends, and the hub refuses its connections from now on
    /// until `hub admit` takes it back. Returns whether it was a member.
    pub fn hub_remove(&self, feed: &FeedId) -> Result<bool, AppError> {
        if !self.is_hub()? {
            return Err(AppError::NotAHub);
        }
        let was = self.store.remove_member(feed, now_ms())?;
        if was && let Some(node) = &self.node {
            node.end_session_of(*feed);
        }
        Ok(was)
    }

    /// `potluck hub admit FEED`: makes a feed a member without a code.
    pub fn hub_admit(&self, feed: &FeedId, note: Option<String>) -> Result<(), AppError> {
        if !self.is_hub()? {
            return Err(AppError::NotAHub);
        }
        Ok(self.store.add_member(&Member {
            feed: *feed,
            since_ms: now_ms(),
            note,
            stored_bytes: 0,
            removed_ms: None,
        })?)
    }

    /// The hubs this node is a member of (`config.json`'s `"hubs"`).
    pub fn hubs(&self) -> Result<Vec<PeerAddr>, AppError> {
        Ok(ConfigFile::load(self.home()?)?.hub_addrs()?)
    }

    /// Our hubs for the network view: each connected or not (a direct
    /// session in `connected`), and how far it holds `me`'s feed (the
    /// live session's knowledge, else the memory of the last session).
    /// None for an app without a home (no `config.json` to read).
    pub(super) fn hub_views(
        &self,
        me: &FeedId,
        connected: &[PeerInfo],
    ) -> Result<Vec<HubView>, AppError> {
        if self.home.is_none() {
            return Ok(Vec::new());
        }
        let my_head = self.store.head(me)?.map_or(0, |h| h.sequence);
        let mut views = Vec::new();
        for addr in self.hubs()? {
            // `hub_addrs` takes only hubs with a feed.
            let Some(feed) = addr.feed else { continue };
            let session = connected
                .iter()
                .find(|p| p.feed == feed && p.via_hub.is_none());
            let remembered = || -> Result<Option<Holding>, AppError> {
                Ok(self
                    .store
                    .peer_memory(&feed)?
                    .and_then(|bytes| PeerMemory::decode(&bytes))
                    .and_then(|memory| memory.theirs_of(me)))
            };
            let holds = match session.and_then(|p| p.holds_mine) {
                Some(live) => Some(live),
                None => remembered()?,
            };
            views.push(HubView {
                label: self.peer_label(Some(&feed), &addr.addr)?,
                connected: session.is_some(),
                addr,
                feed,
                holds,
                my_head,
            });
        }
        Ok(views)
    }

    /// On a hub, how many members it has and how many are connected;
    /// otherwise (or for an app without a home) none.
    pub(super) fn members_summary(&self) -> Result<Option<MembersSummary>, AppError> {
        if self.home.is_none() || !self.is_hub()? {
            return Ok(None);
        }
        let members = self.hub_members()?;
        Ok(Some(MembersSummary {
            count: members.len(),
            connected: members.iter().filter(|m| m.connected).count(),
        }))
    }

    /// Joins a hub with its member code (`potluck hub add CODE`, or
    /// `potluck join` with a hub's code): one exchange that redeems the
    /// code, then the hub goes to `config.json`'s `"hubs"` and, on a
    /// running node, stays connected from now on. Blocking (see
    /// [`App::sync`]).
    pub fn join_hub(
        &self,
        invite: &Invite,
        mut progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<JoinReport, AppError> {
        let node = self.writer()?.clone();
        let hub = invite.peer.feed.ok_or(AppError::InviteWithoutFeed)?;
        let code = invite.member.ok_or_else(|| {
            AppError::Refused(
                "this invite is no hub's member code: join it with `potluck join CODE`".into(),
            )
        })?;
        check_network(invite, node.network_key())?;
        if hub == node.feed_id() {
            return Err(AppError::OwnFeed);
        }
        // Our hub from the first session on: a tunnel call it passes on
        // while we join is ours to answer.
        let before = node.member_settings();
        let mut joining = before.clone();
        if !joining.hubs.contains(&invite.peer) {
            joining.hubs.push(invite.peer.clone());
        }
        node.set_member_settings(joining);
        let peer = invite.peer.clone();
        let dialer = node.clone();
        let report = self.block_on(async move {
            let report = dialer.dial_with_code(&peer, code, true).await;
            progress(0, 0);
            report
        })?;
        let session = match report {
            Ok(report) => report,
            Err(ConnectionError::Duplicate(_)) => Default::default(),
            Err(source) => {
                node.set_member_settings(before);
                return Err(AppError::Sync {
                    peer: invite.peer.to_string(),
                    source,
                });
            }
        };
        self.flush()?;
        let home = self.home()?;
        let mut config = ConfigFile::load(home)?;
        let text = invite.peer.to_string();
        if !config.hubs.contains(&text) {
            config.hubs.push(text);
        }
        config.save(home)?;
        let mut record = self
            .store
            .peer_record(&invite.peer.addr)?
            .unwrap_or_else(|| {
                PeerRecord::new(invite.peer.addr.clone(), Some(hub), PeerSource::Configured)
            });
        record.succeeded(hub, now_ms());
        self.store.put_peer_record(&record)?;
        node.set_member_settings(MemberSettings {
            hubs: config.hub_addrs()?,
            tunnels_from_hub_members: config.tunnels_from_hub_members.unwrap_or(false),
        });
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(node.dial_loop(invite.peer.clone(), PeerSource::Configured));
        }
        Ok(JoinReport {
            inviter: hub,
            inviter_label: self.peer_label(Some(&hub), &invite.peer.addr)?,
            session: Some(session),
            through: None,
            follow_waits: false,
        })
    }
}
