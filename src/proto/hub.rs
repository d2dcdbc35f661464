//! A hub's decisions, sans-io: what the first packet of an inbound
//! connection asks for ([`Intake`]), and the tunnels between members
//! ([`Tunnels`]: who may open one, the tokens in flight, the limits, and
//! the refusals it remembers). The node moves the bytes; nothing here
//! reads a clock or a socket.
//!
//! A tunnel, step by step (docs/protocol.md, "Hubs"):
//! 1. member A connects to the hub and sends `Tunnel { target: B }` as its
//!    first packet;
//! 2. the hub checks A and B are members and B is connected, makes a
//!    token, and sends `TunnelCall { token, from: A }` in B's session;
//! 3. B either declines (`TunnelDecline`), or connects to the hub anew
//!    and sends `TunnelAccept { token }` as its first packet;
//! 4. the hub sends `TunnelReady` to both and from then on copies bytes
//!    between the two connections; A and B run their own Noise handshake
//!    inside, end to end.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::feed::message::FeedId;
use crate::proto::wire::{Packet, RefuseReason, TOKEN_LEN};

/// What an inbound connection's first packets ask for.
#[derive(Debug, PartialEq, Eq)]
pub enum Intake {
    /// An ordinary session: these packets are its first ones.
    Session(Vec<Packet>),
    /// Redeem a member code.
    Join([u8; TOKEN_LEN]),
    /// Open a tunnel to this member.
    Tunnel(FeedId),
    /// Be the called end of this tunnel.
    TunnelAccept([u8; TOKEN_LEN]),
}

/// Why an inbound connection's first frame makes no sense.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a connection's first frame must be a session's packets or one hub request alone")]
pub struct IntakeError;

/// Reads an inbound connection's first frame: a hub request must come
/// alone (its answer decides what follows); anything else starts a
/// session.
pub fn intake(first: Vec<Packet>) -> Result<Intake, IntakeError> {
    let request = match first.first() {
        Some(Packet::Join { token }) => Intake::Join(*token),
        Some(Packet::Tunnel { target }) => Intake::Tunnel(*target),
        Some(Packet::TunnelAccept { token }) => Intake::TunnelAccept(*token),
        _ => return Ok(Intake::Session(first)),
    };
    if first.len() == 1 {
        Ok(request)
    } else {
        Err(IntakeError)
    }
}

/// A hub's settings and limits: `config.json`'s `"hub"` object sets any
/// of them (`"hub": true` keeps every default).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubLimits {
    /// Bytes of messages one member's connections may make the hub
    /// store, in all; past it, the hub takes nothing new from that member
    /// (it still sends what it holds).
    pub member_bytes: u64,
    /// Bytes of the hub's message log past which it stores nothing new
    /// from anyone.
    pub total_bytes: u64,
    /// Tunnels one member may have open or pending at once.
    pub tunnels_per_member: usize,
    /// Tunnels open or pending through the hub at once.
    pub tunnels_total: usize,
    /// Minutes during which the hub refuses a tunnel that its called end
    /// declined, without asking it again.
    pub declined_minutes: u64,
    /// Established inbound connections (members' and strangers') the hub
    /// holds at once (an ordinary node holds 64, too few for a community
    /// of hundreds).
    pub connections: usize,
    /// Inbound connections from one IP address, which a household or a
    /// venue behind one router shares (an ordinary node allows 8).
    pub connections_per_address: usize,
}

impl Default for HubLimits {
    fn default() -> HubLimits {
        let tunnels = TunnelLimits::default();
        HubLimits {
            member_bytes: 256 * 1024 * 1024,
            total_bytes: 16 * 1024 * 1024 * 1024,
            tunnels_per_member: tunnels.per_member,
            tunnels_total: tunnels.total,
            declined_minutes: tunnels.declined_for.as_secs() / 60,
            connections: HUB_CONNECTIONS,
            connections_per_address: HUB_CONNECTIONS_PER_ADDRESS,
        }
    }
}

impl HubLimits {
    /// The tunnel part.
    pub fn tunnels(&self) -> TunnelLimits {
        TunnelLimits {
            per_member: self.tunnels_per_member,
            total: self.tunnels_total,
            declined_for: Duration::from_secs(self.declined_minutes.saturating_mul(60)),
            ..TunnelLimits::default()
        }
    }
}

/// Whether `bytes` more from a member fit its quota and the hub's total.
pub fn fits(limits: &HubLimits, member_used: u64, log_bytes: u64, bytes: u64) -> bool {
    member_used.saturating_add(bytes) <= limits.member_bytes
        && log_bytes.saturating_add(bytes) <= limits.total_bytes
}

/// Established inbound connections a hub holds at once by default.
pub const HUB_CONNECTIONS: usize = 1_024;
/// Inbound connections from one address a hub allows by default.
pub const HUB_CONNECTIONS_PER_ADDRESS: usize = 16;

/// Whether an address is one the internet routes to a single host (not
/// loopback, private, link-local, shared, documentation, benchmarking,
/// reserved, multicast or unspecified): the only kind a member is told to
/// dial.
pub fn is_global(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || (a == 192 && b == 0 && c == 0)
                || a >= 240)
        }
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_global(v4.into()),
            None => {
                let [first, second, ..] = v6.segments();
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
                    || (first == 0x2001 && second == 0xdb8))
            }
        },
    }
}

/// Whether a member takes a tunnel call from `from`, passed on by its hub
/// `hub`: from a feed it follows (`follows`), or from any member when it
/// said so (`from_any_member`); never from the hub itself.
pub fn takes_call(from: FeedId, hub: FeedId, follows: bool, from_any_member: bool) -> bool {
    from != hub && (follows || from_any_member)
}

/// Of two members told of each other, whether `me` dials `other`: always
/// when `other` does not follow us (it will not dial), else only the
/// smaller feed key, so that one session is opened, not two. Also when we
/// declined a call from `other` (`we_declined_it`, before we followed it):
/// its hub keeps it from calling us again for a while, so it is our turn.
pub fn dials_first(
    me: FeedId,
    other: FeedId,
    other_follows_me: bool,
    we_declined_it: bool,
) -> bool {
    !other_follows_me || me < other || we_declined_it
}

/// A hub's limits on tunnels (part of [`HubLimits`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelLimits {
    /// Tunnels open or being opened by one member at once.
    pub per_member: usize,
    /// Tunnels open or being opened through the hub at once.
    pub total: usize,
    /// How long the called member has to answer.
    pub answer_within: Duration,
    /// After a member declines a tunnel from another, the hub refuses
    /// that pair at once for this long.
    pub declined_for: Duration,
}

impl Default for TunnelLimits {
    fn default() -> TunnelLimits {
        TunnelLimits {
            per_member: 8,
            total: 1_024,
            answer_within: Duration::from_secs(10),
            declined_for: Duration::from_secs(600),
        }
    }
}

/// Most declined pairs remembered; the oldest go first.
const MAX_DECLINED: usize = 4_096;

/// A tunnel asked for and not yet answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Who asked.
    pub from: FeedId,
    /// Who is called.
    pub to: FeedId,
    /// When the call lapses.
    pub deadline: Instant,
}

/// The tunnels of a hub: pending calls, open tunnels per member, and the
/// pairs refused recently.
#[derive(Debug, Default)]
pub struct Tunnels {
    limits: TunnelLimits,
    pending: HashMap<[u8; TOKEN_LEN], Pending>,
    /// Tunnels open or pending, per member that asked.
    per_member: HashMap<FeedId, usize>,
    open: usize,
    declined: HashMap<(FeedId, FeedId), Instant>,
}

/// What the hub knows of the two ends when a tunnel is asked for.
#[derive(Clone, Copy, Debug)]
pub struct Ends {
    /// The asking side is a member.
    pub from_member: bool,
    /// The called side is a member.
    pub to_member: bool,
    /// The called side has a session with the hub now.
    pub to_online: bool,
}

impl Tunnels {
    /// No tunnels yet, under these limits.
    pub fn new(limits: TunnelLimits) -> Tunnels {
        Tunnels {
            limits,
            ..Tunnels::default()
        }
    }

    /// `from` asks for a tunnel to `to`: records the call under `token`
    /// (the node's random bytes) or says why not.
    pub fn request(
        &mut self,
        from: FeedId,
        to: FeedId,
        ends: Ends,
        token: [u8; TOKEN_LEN],
        now: Instant,
    ) -> Result<(), RefuseReason> {
        self.expire(now);
        if !ends.from_member || !ends.to_member || from == to {
            return Err(RefuseReason::NotAMember);
        }
        if self.declined.get(&(from, to)).is_some_and(|&t| t > now) {
            return Err(RefuseReason::Declined);
        }
        if !ends.to_online {
            return Err(RefuseReason::Offline);
        }
        let mine = self.per_member.get(&from).copied().unwrap_or(0);
        if mine >= self.limits.per_member || self.open >= self.limits.total {
            return Err(RefuseReason::TooManyTunnels);
        }
        self.pending.insert(
            token,
            Pending {
                from,
                to,
                deadline: now + self.limits.answer_within,
            },
        );
        *self.per_member.entry(from).or_insert(0) += 1;
        self.open += 1;
        Ok(())
    }

    /// `by` connected with `TunnelAccept { token }`: the call it answers,
    /// taken out of the pending ones (the tunnel stays counted until
    /// [`Tunnels::closed`]).
    pub fn accept(
        &mut self,
        token: &[u8; TOKEN_LEN],
        by: FeedId,
        now: Instant,
    ) -> Result<Pending, RefuseReason> {
        self.expire(now);
        match self.pending.get(token).copied() {
            Some(p) if p.to == by => {
                self.pending.remove(token);
                Ok(p)
            }
            // Someone else's token, or one that lapsed.
            _ => Err(RefuseReason::NotAMember),
        }
    }

    /// `by` declined the call `token`: the asking side is refused (and
    /// calls [`Tunnels::closed`] as for any tunnel), and so is the pair
    /// for [`TunnelLimits::declined_for`]. Returns the call.
    pub fn decline(
        &mut self,
        token: &[u8; TOKEN_LEN],
        by: FeedId,
        now: Instant,
    ) -> Option<Pending> {
        let call = *self.pending.get(token).filter(|p| p.to == by)?;
        self.pending.remove(token);
        if self.declined.len() >= MAX_DECLINED
            && let Some(oldest) = self
                .declined
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(k, _)| *k)
        {
            self.declined.remove(&oldest);
        }
        self.declined
            .insert((call.from, call.to), now + self.limits.declined_for);
        Some(call)
    }

    /// A call lapsed or a tunnel asked for by `from` ended.
    pub fn closed(&mut self, from: FeedId) {
        if let Some(n) = self.per_member.get_mut(&from) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_member.remove(&from);
            }
        }
        self.open = self.open.saturating_sub(1);
    }

    /// Whether the call `token` is still pending (its asking side waits).
    pub fn is_pending(&self, token: &[u8; TOKEN_LEN]) -> bool {
        self.pending.contains_key(token)
    }

    /// Drops lapsed calls and refusals. A lapsed call's asking side gives
    /// up by itself (it waits at most [`TunnelLimits::answer_within`]) and
    /// calls [`Tunnels::closed`].
    fn expire(&mut self, now: Instant) {
        self.pending.retain(|_, p| p.deadline > now);
        self.declined.retain(|_, until| *until > now);
    }

    /// Tunnels open or pending.
    pub fn open(&self) -> usize {
        self.open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: FeedId = FeedId([1; 32]);
    const B: FeedId = FeedId([2; 32]);
    const C: FeedId = FeedId([3; 32]);

    fn members() -> Ends {
        Ends {
            from_member: true,
            to_member: true,
            to_online: true,
        }
    }

    #[test]
    fn a_request_needs_both_members_and_the_target_online() {
        let now = Instant::now();
        let mut t = Tunnels::new(TunnelLimits::default());
        let stranger = Ends {
            from_member: false,
            ..members()
        };
        assert_eq!(
            t.request(A, B, stranger, [1; 16], now),
            Err(RefuseReason::NotAMember)
        );
        let not_member = Ends {
            to_member: false,
            ..members()
        };
        assert_eq!(
            t.request(A, B, not_member, [1; 16], now),
            Err(RefuseReason::NotAMember)
        );
        let offline = Ends {
            to_online: false,
            ..members()
        };
        assert_eq!(
            t.request(A, B, offline, [1; 16], now),
            Err(RefuseReason::Offline)
        );
        assert_eq!(
            t.request(A, A, members(), [1; 16], now),
            Err(RefuseReason::NotAMember)
        );
        assert_eq!(t.open(), 0);
        t.request(A, B, members(), [1; 16], now).unwrap();
        assert_eq!(t.open(), 1);
    }

    #[test]
    fn only_the_called_member_can_accept_and_only_in_time() {
        let now = Instant::now();
        let mut t = Tunnels::new(TunnelLimits::default());
        t.request(A, B, members(), [1; 16], now).unwrap();
        assert_eq!(t.accept(&[1; 16], C, now), Err(RefuseReason::NotAMember));
        assert_eq!(t.accept(&[2; 16], B, now), Err(RefuseReason::NotAMember));
        let call = t.accept(&[1; 16], B, now).unwrap();
        assert_eq!((call.from, call.to), (A, B));
        // Used once.
        assert!(t.accept(&[1; 16], B, now).is_err());
        t.request(A, B, members(), [3; 16], now).unwrap();
        let late = now + TunnelLimits::default().answer_within + Duration::from_millis(1);
        assert_eq!(t.accept(&[3; 16], B, late), Err(RefuseReason::NotAMember));
    }

    #[test]
    fn a_declined_pair_is_refused_at_once_for_a_while() {
        let now = Instant::now();
        let limits = TunnelLimits::default();
        let mut t = Tunnels::new(limits.clone());
        t.request(A, B, members(), [1; 16], now).unwrap();
        // Only the called side can decline.
        assert!(t.decline(&[1; 16], C, now).is_none());
        assert!(t.decline(&[1; 16], B, now).is_some());
        // The asking side's end counts it closed.
        assert_eq!(t.open(), 1);
        t.closed(A);
        assert_eq!(t.open(), 0);
        assert_eq!(
            t.request(A, B, members(), [2; 16], now),
            Err(RefuseReason::Declined)
        );
        // The other direction and other pairs are not affected.
        t.request(B, A, members(), [3; 16], now).unwrap();
        let later = now + limits.declined_for + Duration::from_secs(1);
        t.request(A, B, members(), [4; 16], later).unwrap();
    }

    #[test]
    fn tunnels_are_bounded_per_member_and_in_total() {
        let now = Instant::now();
        let mut t = Tunnels::new(TunnelLimits {
            per_member: 2,
            total: 3,
            ..TunnelLimits::default()
        });
        t.request(A, B, members(), [1; 16], now).unwrap();
        t.request(A, C, members(), [2; 16], now).unwrap();
        assert_eq!(
            t.request(A, B, members(), [3; 16], now),
            Err(RefuseReason::TooManyTunnels)
        );
        t.request(B, C, members(), [4; 16], now).unwrap();
        assert_eq!(
            t.request(C, A, members(), [5; 16], now),
            Err(RefuseReason::TooManyTunnels)
        );
        t.closed(A);
        t.request(C, A, members(), [5; 16], now).unwrap();
    }

    #[test]
    fn a_hub_request_must_come_alone() {
        assert_eq!(
            intake(vec![Packet::Tunnel { target: B }]),
            Ok(Intake::Tunnel(B))
        );
        assert_eq!(
            intake(vec![Packet::Join { token: [1; 16] }, Packet::Ping]),
            Err(IntakeError)
        );
        assert_eq!(
            intake(vec![Packet::Ping, Packet::Goodbye]),
            Ok(Intake::Session(vec![Packet::Ping, Packet::Goodbye]))
        );
    }

    #[test]
    fn a_hub_may_raise_its_connection_limits_in_config() {
        let raised: HubLimits =
            serde_json::from_str(r#"{"connections": 1200, "connections_per_address": 2}"#).unwrap();
        assert_eq!(raised.connections, 1200);
        assert_eq!(raised.connections_per_address, 2);
        // Absent: a hub's defaults, above an ordinary node's.
        let default: HubLimits = serde_json::from_str("{}").unwrap();
        assert_eq!(default.connections, HUB_CONNECTIONS);
        assert_eq!(default.connections_per_address, HUB_CONNECTIONS_PER_ADDRESS);
    }

    #[test]
    fn only_global_unicast_addresses_are_dialed() {
        for ip in ["1.2.3.1", "8.8.8.8", "2a00:1450::1", "::ffff:1.2.3.4"] {
            assert!(is_global(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "203.0.113.7",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:192.168.1.1",
        ] {
            assert!(!is_global(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn a_member_takes_calls_from_whom_it_follows_and_one_of_two_dials() {
        assert!(takes_call(A, C, true, false));
        assert!(takes_call(A, C, false, true));
        assert!(!takes_call(A, C, false, false));
        // The hub never calls in its own name.
        assert!(!takes_call(C, C, true, true));
        assert!(dials_first(A, B, true, false));
        assert!(!dials_first(B, A, true, false));
        assert!(dials_first(B, A, false, false));
        // B declined A's call before it followed A: A will not call again
        // soon (its hub remembers the refusal), so B dials.
        assert!(dials_first(B, A, true, true));
    }
}
