//! Reaching peers: one exchange (`sync`), taking an invite (`join`),
//! fetching our own feed back (`recover`), making an invite code, and the
//! network as people read it (with names). The same steps whether a node
//! runs (its runtime and connections are used) or not (a runtime of the
//! call's own, for the exchange).

use std::future::Future;

use crate::feed::message::FeedId;
use crate::home::Home;
use crate::home::config::{ConfigFile, DEFAULT_LISTEN, Invite, PeerAddr};
use crate::node::{CatchUp, ConnectionError, SessionReport};
use crate::proto::handshake::{DEFAULT_NETWORK_KEY, NetworkKey};
use crate::proto::peerbook::{PeerRecord, PeerSource};
use crate::store::admission::AdmissionStatus;

use super::hub::MemberCodeOptions;
use super::open::{HomeState, lost};
use super::views::{ConnectedPeer, ContactChange, KnownAddress, NetworkView, person};
use super::{App, AppError, Change, now_ms, when};

/// Longest a `sync` waits for the organizer's answers to the requests it
/// brought (the organizer's node decides as soon as it stores them).
const ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Pause between two looks for those answers.
const ANSWER_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// What `sync` did.
#[derive(Clone, Debug)]
pub struct SyncReport {
    /// The exchanges, summed.
    pub session: SessionReport,
    /// Our `going` requests to the peer's events that it has not decided
    /// on yet.
    pub unanswered_requests: u64,
    /// The peer for people: its name, else its short id, else the address.
    pub peer_label: String,
}

/// What `join` did.
#[derive(Clone, Debug)]
pub struct JoinReport {
    /// The inviter, now followed.
    pub inviter: FeedId,
    /// The inviter for people.
    pub inviter_label: String,
    /// The first exchange with the inviter, when one was waited for.
    pub session: Option<SessionReport>,
    /// The inviter's hub that first exchange went through, when the
    /// inviter could not be reached directly.
    pub through: Option<String>,
    /// The inviter is not followed yet: our own feed is still to be
    /// fetched back ([`App::own_feed_behind`]), and a follow published
    /// before would fork it. `potluck follow` it once the feed is back.
    pub follow_waits: bool,
}

/// An invite code and the address in it.
#[derive(Clone, Debug)]
pub struct InviteView {
    /// The code (`potluck-invite:…`).
    pub code: String,
    /// The address it names.
    pub addr: String,
    /// The address is on loopback: the code works only on this computer.
    pub loopback_only: bool,
    /// The address came from `config.json` (no node runs, none was given).
    pub from_config: bool,
}

/// How `recover` ended.
#[derive(Clone, Debug)]
pub enum RecoverOutcome {
    /// The store held everything already.
    NothingToRecover {
        /// Our feed's head in the store.
        holds: u64,
    },
    /// Recovered from a peer.
    Recovered {
        /// How far the feed is now held (at least as far as it was
        /// published).
        holds: u64,
        /// The peer it came from.
        from: String,
    },
    /// The loss was accepted: publishing goes on from what is held.
    StartedOver {
        /// Our feed's head in the store.
        holds: u64,
    },
}

impl App {
    /// Runs `work` on the running node's runtime, or on a runtime of its
    /// own when no node runs. Like every network method of `App` it
    /// blocks: inside a runtime it must be called from its blocking pool
    /// (`spawn_blocking`, as the page and the control socket do), never
    /// from an async task, where tokio refuses to block.
    pub(super) fn block_on<T>(&self, work: impl Future<Output = T>) -> Result<T, AppError> {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => Ok(handle.block_on(work)),
            Err(_) => Ok(tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| AppError::Runtime {
                    what: "starting the async runtime",
                    reason: e.to_string(),
                })?
                .block_on(work)),
        }
    }

    /// One exchange with `peer`, both ways; `progress` hears the
    /// catch-up (messages received, of how many). Blocking (see
    /// [`App::sync`]). Already connected: the
    /// connection carries everything live, and an empty report is given.
    pub fn exchange(
        &self,
        peer: &PeerAddr,
        mut progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<SessionReport, AppError> {
        let node = self.writer()?.clone();
        let changes = self.subscribe();
        let report = self.block_on(async move {
            // The node reports a connection's catch-up every second.
            let watcher = changes.map(|mut changes| {
                tokio::spawn(async move {
                    while let Some(change) = changes.next().await {
                        if let Change::Progress(CatchUp {
                            received,
                            remaining,
                            ..
                        }) = change
                        {
                            progress(received, received.saturating_add(remaining));
                        }
                    }
                })
            });
            let report = if peer.is_through_hubs() {
                node.dial_through_hubs(peer.feed, true).await
            } else {
                node.dial(peer, true).await
            };
            if let Some(watcher) = watcher {
                watcher.abort();
                let _ = watcher.await;
            }
            report
        })?;
        match report {
            Err(ConnectionError::Duplicate(feed)) => Ok(SessionReport {
                peer: Some(feed),
                ..SessionReport::default()
            }),
            other => other.map_err(|source| AppError::Sync {
                peer: peer.to_string(),
                source,
            }),
        }
    }

    /// `potluck sync`: one exchange, and when the peer organizes an event
    /// we asked a place at and has not answered yet, a little wait (at
    /// most five seconds) and another exchange, so that one sync
    /// brings back the decision. Blocking: from inside a runtime, call it
    /// on the blocking pool (`spawn_blocking`).
    pub fn sync(
        &self,
        peer: &PeerAddr,
        progress: impl FnMut(u64, u64) + Send + Clone + 'static,
    ) -> Result<SyncReport, AppError> {
        let mut report = self.exchange(peer, progress.clone())?;
        let mut waiting = match report.peer {
            Some(organizer) => self.unanswered_requests(&organizer)?,
            None => 0,
        };
        let deadline = std::time::Instant::now() + ANSWER_WAIT;
        while waiting > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(ANSWER_POLL);
            let again = self.exchange(peer, progress.clone())?;
            report.received += again.received;
            report.sent += again.sent;
            report.bytes_in += again.bytes_in;
            report.bytes_out += again.bytes_out;
            if let Some(organizer) = report.peer {
                waiting = self.unanswered_requests(&organizer)?;
            }
        }
        self.flush()?;
        let peer_label = self.peer_label(report.peer.as_ref(), &peer.addr)?;
        Ok(SyncReport {
            session: report,
            unanswered_requests: waiting,
            peer_label,
        })
    }

    /// Our `going` requests to upcoming events organized by `organizer`
    /// that it has not decided on yet.
    fn unanswered_requests(&self, organizer: &FeedId) -> Result<u64, AppError> {
        let pending = self
            .agenda(now_ms())?
            .iter()
            .filter(|item| {
                item.state.author == *organizer
                    && item.mine.admission == Some(AdmissionStatus::Pending)
            })
            .count();
        Ok(pending as u64)
    }

    /// A peer for people: its name when known, else its short feed id,
    /// else the address dialled.
    pub(super) fn peer_label(&self, feed: Option<&FeedId>, addr: &str) -> Result<String, AppError> {
        let Some(feed) = feed else {
            return Ok(addr.to_owned());
        };
        let name = self.name_of(feed)?;
        Ok(person(name.as_deref(), feed))
    }

    /// Readies `home` for `invite` before it is opened: the invite must be
    /// for the home's network, unless the home is new, which takes the
    /// invite's network; the inviter joins the configured peers. The one
    /// first step of a join by any front end that may make a home.
    pub fn prepare_join(home: &Home, invite: &Invite) -> Result<(), AppError> {
        let state = HomeState::of(home);
        if state == HomeState::KeyLost {
            // Refused before config.json changes.
            return Err(lost(home));
        }
        let mut config = ConfigFile::load(home)?;
        if state == HomeState::Empty {
            home.create()?;
            if let Some(key) = &invite.network {
                config.network_key = Some(key.to_hex());
            }
        } else {
            check_network(invite, &config.network_key()?)?;
        }
        remember_inviter(home, config, invite)
    }

    /// Takes an invite on this node: it must be for our network; follows
    /// the inviter (unless we already do), so that the first exchange
    /// carries the follow; remembers its address in the peer book and in
    /// `config.json`; with `wait`, exchanges once with it (the report says
    /// what came); and, on a running node, keeps it connected from now on.
    /// A home whose own feed is still to be fetched back (an imported
    /// key, a lost store) follows only after the exchange, once it
    /// brought the feed back, and not at all while it did not.
    pub fn join(
        &self,
        invite: &Invite,
        wait: bool,
        progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<JoinReport, AppError> {
        if invite.member.is_some() {
            return self.join_hub(invite, progress);
        }
        let node = self.writer()?.clone();
        let inviter = invite.peer.feed.ok_or(AppError::InviteWithoutFeed)?;
        check_network(invite, node.network_key())?;
        let me = node.feed_id();
        if inviter == me {
            return Err(AppError::OwnFeed);
        }
        if let Some(home) = &self.home {
            remember_inviter(home, ConfigFile::load(home)?, invite)?;
        }
        let following = self
            .store
            .contacts(&me)?
            .iter()
            .any(|(f, c)| *f == inviter && c.following);
        let follow_first = !following && self.own_feed_behind()?.is_none();
        if follow_first {
            self.contact(inviter, ContactChange::Follow, now_ms())?;
        }
        let mut record = self
            .store
            .peer_record(&invite.peer.addr)?
            .unwrap_or_else(|| {
                PeerRecord::new(invite.peer.addr.clone(), Some(inviter), PeerSource::Invite)
            });
        self.store.put_peer_record(&record)?;
        let mut through = None;
        let session = if wait {
            let report = match self.exchange(&invite.peer, progress) {
                Ok(report) => {
                    record.succeeded(inviter, now_ms());
                    self.store.put_peer_record(&record)?;
                    report
                }
                // The inviter is on another network: its hubs hold its
                // feed and take ours.
                Err(direct) if !invite.hubs.is_empty() => {
                    let mut reached = None;
                    for hub in &invite.hubs {
                        if let Ok(report) = self.exchange(hub, |_, _| {}) {
                            reached = Some((hub.to_string(), report));
                            break;
                        }
                    }
                    let Some((hub, report)) = reached else {
                        return Err(direct);
                    };
                    through = Some(hub);
                    report
                }
                Err(e) => return Err(e),
            };
            self.flush()?;
            Some(report)
        } else {
            None
        };
        // The exchange may have brought our feed back: the follow can
        // go out now (with the next exchange, or live on a running node).
        let follow_after = !following && !follow_first;
        let follow_waits = follow_after && self.own_feed_behind()?.is_some();
        if follow_after && !follow_waits {
            self.contact(inviter, ContactChange::Follow, now_ms())?;
        }
        // Inside a running node's runtime (a command handed to it, or the
        // page): keep the inviter connected from now on.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(node.dial_loop(invite.peer.clone(), PeerSource::Invite));
        }
        Ok(JoinReport {
            inviter,
            inviter_label: self.peer_label(Some(&inviter), &invite.peer.addr)?,
            session,
            through,
            follow_waits,
        })
    }

    /// The invite code that brings someone into this network. The address
    /// in it is, in this order: `addr`; the address the running node
    /// listens on; or, with no node running, the listen address of
    /// `config.json`. An address on every interface becomes this
    /// computer's address on the network.
    pub fn invite(&self, addr: Option<String>) -> Result<InviteView, AppError> {
        self.invite_with(addr, &MemberCodeOptions::default())
    }

    /// [`App::invite`], and on a hub a member code with these options (a
    /// member's invite carries its hubs instead).
    pub fn invite_with(
        &self,
        addr: Option<String>,
        options: &MemberCodeOptions,
    ) -> Result<InviteView, AppError> {
        let config = ConfigFile::load(self.home()?)?;
        let me = self.feed_id()?;
        let from_config = addr.is_none() && self.serving().is_none();
        let addr = match addr {
            Some(addr) => addr,
            None => {
                let listen = match self.serving() {
                    Some(serving) => serving.listen,
                    None => config
                        .listen
                        .as_deref()
                        .unwrap_or(DEFAULT_LISTEN)
                        .parse()
                        .map_err(|_| AppError::BadAddress {
                            what: "listen address in config.json",
                            text: config.listen.clone().unwrap_or_default(),
                            example: "0.0.0.0:7643",
                        })?,
                };
                guess_address(listen)?
            }
        };
        let peer = PeerAddr::parse(&format!("{me}@{addr}"))?;
        let network = config
            .network_key
            .is_some()
            .then(|| config.network_key())
            .transpose()?;
        let loopback_only = addr
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        Ok(InviteView {
            code: Invite {
                peer,
                network,
                member: self.make_member_code(&config, options)?,
                hubs: config.hub_addrs()?,
            }
            .to_code(),
            addr,
            loopback_only,
            from_config,
        })
    }

    /// `potluck recover`: fetches our own feed back from `addrs` (none:
    /// the configured peers and the peer book) until the store holds
    /// everything this home published, so that publishing can go on
    /// without forking the feed; or, with `start_over`, accepts the loss.
    pub fn recover(&self, addrs: &[String], start_over: bool) -> Result<RecoverOutcome, AppError> {
        let me = self.feed_id()?;
        if start_over {
            let holds = self.store.accept_published_loss(&me)?;
            return Ok(RecoverOutcome::StartedOver { holds });
        }
        let Some((_, published)) = self.own_feed_behind()? else {
            let holds = self.store.head(&me)?.map_or(0, |h| h.sequence);
            return Ok(RecoverOutcome::NothingToRecover { holds });
        };
        let mut peers = Vec::new();
        if addrs.is_empty() {
            peers.extend(ConfigFile::load(self.home()?)?.peer_addrs()?);
            for record in self.store.peer_records()? {
                if !peers.iter().any(|p: &PeerAddr| p.addr == record.addr) {
                    peers.push(PeerAddr {
                        feed: record.feed,
                        addr: record.addr,
                    });
                }
            }
        } else {
            for addr in addrs {
                peers.push(PeerAddr::parse(addr)?);
            }
        }
        if peers.is_empty() {
            return Err(AppError::Refused(format!(
                "no peer to recover {me} from: name one (`potluck recover HOST:PORT`), or `potluck import` a bundle of your feed"
            )));
        }
        let mut failures = Vec::new();
        for peer in &peers {
            match self.exchange(peer, |_, _| {}) {
                Ok(_) => self.flush()?,
                Err(AppError::Sync { source, .. }) => failures.push(format!("{peer}: {source}")),
                Err(e) => failures.push(format!("{peer}: {e}")),
            }
            if self.own_feed_behind()?.is_none() {
                // The peer may hold more than was known to be published
                // (an imported key's feed, known only to start at #1).
                let holds = self.store.head(&me)?.map_or(published, |h| h.sequence);
                return Ok(RecoverOutcome::Recovered {
                    holds,
                    from: peer.to_string(),
                });
            }
        }
        let holds = self
            .own_feed_behind()?
            .map_or(published, |(holds, _)| holds);
        Err(AppError::Refused(format!(
            "{me} is still behind after {}: the store holds #{holds} of it, and it was published at least up to #{published}{}; try a peer or hub that holds it, `potluck import` a bundle of your feed, or `potluck recover --start-over`",
            when::plural(peers.len() as u64, "peer", "peers"),
            if failures.is_empty() {
                String::new()
            } else {
                format!(" ({})", failures.join("; "))
            }
        )))
    }

    /// While publishing waits for our own feed to be fetched back (a
    /// lost store, an imported key): `(held, published)`, how far the
    /// store holds it and how far it was published at least. `None` once
    /// publishing goes on.
    pub fn own_feed_behind(&self) -> Result<Option<(u64, u64)>, AppError> {
        Ok(self.store.own_feed_behind(&self.feed_id()?)?)
    }

    /// Who I am, who is connected (empty without a running node), every
    /// known address and forked feeds, with names.
    pub fn network(&self) -> Result<NetworkView, AppError> {
        let me = self.node.as_ref().map(|n| n.feed_id());
        let my_name = match &me {
            Some(me) => self.name_of(me)?,
            None => None,
        };
        // A node that never opened a socket has no peers.
        let connected = self.node.as_ref().map(|n| n.peers()).unwrap_or_default();
        let mut peers = Vec::with_capacity(connected.len());
        for info in &connected {
            let name = self.name_of(&info.feed)?;
            peers.push(ConnectedPeer {
                info: info.clone(),
                name,
            });
        }
        let mut book = Vec::new();
        for record in self.store.peer_records()? {
            let name = match &record.feed {
                Some(feed) => self.name_of(feed)?,
                None => None,
            };
            book.push(KnownAddress { record, name });
        }
        let (contacts, hubs) = match &me {
            Some(me) => (self.contacts()?, self.hub_views(me, &connected)?),
            None => (Vec::new(), Vec::new()),
        };
        Ok(NetworkView {
            me,
            my_name,
            node_running: self.serving().is_some(),
            connected: peers,
            book,
            forked: self.store.forked_feeds()?,
            contacts,
            hubs,
            members: self.members_summary()?,
        })
    }
}

/// Adds the inviter to the configured peers of `config` (once), and saves
/// it in `home`: `serve` keeps configured peers connected.
pub(super) fn remember_inviter(
    home: &Home,
    mut config: ConfigFile,
    invite: &Invite,
) -> Result<(), AppError> {
    if invite.member.is_some() {
        // A hub's member code: the hub goes to `hubs` (see `App::join_hub`).
        config.save(home)?;
        return Ok(());
    }
    // The inviter's hubs too: through them a newcomer on another network
    // reaches the inviter.
    for peer in std::iter::once(&invite.peer).chain(&invite.hubs) {
        let peer_text = peer.to_string();
        if !config.peers.contains(&peer_text) && !config.hubs.contains(&peer_text) {
            config.peers.push(peer_text);
        }
    }
    config.save(home)?;
    Ok(())
}

/// An invite must be for the network a home is on.
pub(super) fn check_network(invite: &Invite, current: &NetworkKey) -> Result<(), AppError> {
    let network = invite.network.as_ref().unwrap_or(&DEFAULT_NETWORK_KEY);
    if network != current {
        return Err(AppError::OtherNetwork {
            private: invite.network.is_some(),
        });
    }
    Ok(())
}

/// This computer's address for others to dial: the listen address, or,
/// when that is every interface, the address of the interface that has a
/// route out (found with a UDP socket's `connect`, which sends nothing).
fn guess_address(listen: std::net::SocketAddr) -> Result<String, AppError> {
    if !listen.ip().is_unspecified() {
        return Ok(listen.to_string());
    }
    let probe = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:7643").map(|()| s))
        .and_then(|s| s.local_addr());
    match probe {
        Ok(local) if !local.ip().is_unspecified() => {
            Ok(std::net::SocketAddr::new(local.ip(), listen.port()).to_string())
        }
        _ => Err(AppError::Refused(
            "cannot tell this computer's address: pass --addr HOST:PORT".into(),
        )),
    }
}
