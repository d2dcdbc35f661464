//! Port mapping on the home router, sans-io: when to ask for a mapping,
//! when to renew it, how long to wait after a failure, which lines to
//! log, and where the default gateway is (from the text of Linux's
//! `/proc/net/route`). The node (`node/portmap.rs`) talks to the router
//! (PCP, NAT-PMP, UPnP-IGD) and reads the clock; this module decides.
//!
//! ```text
//!   Trying ──mapped──► Mapped ──renew at half the lease──► Renewing
//!     ▲  │                ▲                                   │  │
//!     │  └─failed─► Failed(retry at backoff)   renewed ◄──────┘  │
//!     └──────────────────────────── lease over, renewal failed ──┘
//! ```

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::peerbook::doubling;

/// The lease asked of the router. Routers may grant less.
pub const LEASE: Duration = Duration::from_secs(3600);
/// Shortest lease taken as given: a router granting less is renewed as if
/// it had granted this much (before its lease ends, see [`Schedule`]).
pub const MIN_LEASE: Duration = Duration::from_secs(60);
/// First wait after a failure; doubles up to [`MAX_RETRY`].
pub const FIRST_RETRY: Duration = Duration::from_secs(30);
/// Longest wait between two tries while the router refuses or is absent.
pub const MAX_RETRY: Duration = Duration::from_secs(30 * 60);

/// How a mapping was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Port Control Protocol (RFC 6887).
    Pcp,
    /// NAT Port Mapping Protocol (RFC 6886).
    NatPmp,
    /// UPnP Internet Gateway Device.
    Upnp,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Pcp => "PCP",
            Method::NatPmp => "NAT-PMP",
            Method::Upnp => "UPnP-IGD",
        })
    }
}

/// A mapping the router granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// Where others reach us: the router's public address and port.
    pub external: SocketAddr,
    /// How it was made.
    pub method: Method,
    /// The lease granted.
    pub lease: Duration,
}

/// What the node should log after an outcome (each said once, not at
/// every retry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// Nothing new to say (a renewal that changed nothing, a failure
    /// like the previous one).
    Quiet,
    /// A mapping was made, or its address or method changed.
    Mapped(Mapped),
    /// The first failure of a run of failures, with the next try.
    Failing {
        /// When the next try is.
        retry_in: Duration,
    },
    /// A mapping was lost: its lease ran out and renewing failed.
    Lost(SocketAddr),
}

#[derive(Clone, Debug)]
enum State {
    /// No mapping; the next try is at `at`.
    Waiting { at: Instant },
    /// A mapping, renewed at `renew_at`, gone at `expires`.
    Mapped {
        mapped: Mapped,
        renew_at: Instant,
        expires: Instant,
    },
}

/// One node's port mapping schedule: the state machine of the module
/// text. Feed it outcomes ([`Schedule::mapped`], [`Schedule::failed`])
/// with the time; ask it when to act next ([`Schedule::next_at`]) and
/// what the current address is ([`Schedule::external`]).
#[derive(Clone, Debug)]
pub struct Schedule {
    state: State,
    /// Failures in a row.
    failures: u32,
}

impl Schedule {
    /// A schedule whose first try is now.
    pub fn new(now: Instant) -> Schedule {
        Schedule {
            state: State::Waiting { at: now },
            failures: 0,
        }
    }

    /// When to try (map, or renew) next.
    pub fn next_at(&self) -> Instant {
        match &self.state {
            State::Waiting { at } => *at,
            State::Mapped { renew_at, .. } => *renew_at,
        }
    }

    /// The current mapping, while its lease lasts.
    pub fn current(&self, now: Instant) -> Option<Mapped> {
        match &self.state {
            State::Mapped {
                mapped, expires, ..
            } if now < *expires => Some(*mapped),
            _ => None,
        }
    }

    /// Where others reach us now, if mapped.
    pub fn external(&self, now: Instant) -> Option<SocketAddr> {
        self.current(now).map(|m| m.external)
    }

    /// The router granted (or renewed) `mapped` at `now`: renew at half
    /// the lease.
    pub fn mapped(&mut self, now: Instant, mapped: Mapped) -> Note {
        let before = self.current(now);
        let lease = mapped.lease.max(MIN_LEASE);
        // Half the lease, as RFC 6886 suggests; a short grant (below
        // MIN_LEASE) still gets renewed before it ends.
        let renew_in = (lease / 2).min(mapped.lease.saturating_sub(Duration::from_secs(5)));
        self.state = State::Mapped {
            mapped,
            renew_at: now + renew_in.max(Duration::from_secs(1)),
            expires: now + mapped.lease,
        };
        self.failures = 0;
        match before {
            Some(old) if old.external == mapped.external && old.method == mapped.method => {
                Note::Quiet
            }
            _ => Note::Mapped(mapped),
        }
    }

    /// A try (to map or renew) failed at `now`. While a mapping's lease
    /// lasts it is kept and renewing is tried again, after the backoff
    /// but no later than halfway to the lease's end; otherwise the next
    /// try waits, doubling from [`FIRST_RETRY`] to [`MAX_RETRY`].
    pub fn failed(&mut self, now: Instant) -> Note {
        let wait = doubling(FIRST_RETRY, MAX_RETRY, self.failures);
        self.failures = self.failures.saturating_add(1);
        let first = self.failures == 1;
        match self.state.clone() {
            State::Mapped {
                mapped, expires, ..
            } if now < expires => {
                // Halfway, so that a short lease (renewed 5 s before its
                // end) or a run of failures late in a long one still gets
                // tries while the router holds the mapping, as RFC 6887
                // retransmits a renewal until the lease ends; a try at the
                // end itself would come too late. At least a second apart,
                // so the tries near the end stay few.
                let halfway = now + (expires - now) / 2;
                let retry = (now + wait).min(halfway.max(now + Duration::from_secs(1)));
                self.state = State::Mapped {
                    mapped,
                    renew_at: retry.min(expires),
                    expires,
                };
                Note::Quiet
            }
            State::Mapped { mapped, .. } => {
                self.state = State::Waiting { at: now + wait };
                Note::Lost(mapped.external)
            }
            State::Waiting { .. } => {
                self.state = State::Waiting { at: now + wait };
                if first {
                    Note::Failing { retry_in: wait }
                } else {
                    Note::Quiet
                }
            }
        }
    }

    /// The lease ran out without a renewal (checked when the node wakes
    /// at [`Schedule::next_at`]): same as a failed renewal.
    pub fn expired(&self, now: Instant) -> bool {
        matches!(self.state, State::Mapped { expires, .. } if now >= expires)
    }
}

/// Largest `/proc/net/route` text read (a line per route; a home
/// computer has a handful).
pub const MAX_ROUTE_TEXT: u64 = 64 * 1024;

/// The IPv4 default gateway in the text of Linux's `/proc/net/route`
/// (columns `Iface Destination Gateway Flags ...`, addresses as
/// little-endian hex): the first route to `0.0.0.0/0` that is up and has
/// a gateway. `None` when there is none or the text is not that table.
pub fn default_gateway(route_text: &str) -> Option<Ipv4Addr> {
    // Flags: RTF_UP 0x1, RTF_GATEWAY 0x2.
    const UP_GATEWAY: u32 = 0x3;
    route_text.lines().skip(1).find_map(|line| {
        let mut cols = line.split_whitespace();
        let _iface = cols.next()?;
        let destination = u32::from_str_radix(cols.next()?, 16).ok()?;
        let gateway = u32::from_str_radix(cols.next()?, 16).ok()?;
        let flags = u32::from_str_radix(cols.next()?, 16).ok()?;
        let mask = cols.nth(3).and_then(|m| u32::from_str_radix(m, 16).ok());
        let default = destination == 0 && mask.is_none_or(|m| m == 0);
        (default && gateway != 0 && flags & UP_GATEWAY == UP_GATEWAY)
            .then(|| Ipv4Addr::from(gateway.to_le_bytes()))
    })
}

/// Whether mapping is worth trying for a node listening on `listen`:
/// not on loopback (nobody outside could reach it), and only on IPv4 (a
/// home router maps IPv4 ports; IPv6 needs no mapping).
pub fn worth_mapping(listen: SocketAddr) -> bool {
    listen.is_ipv4() && !listen.ip().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(port: u16, lease_secs: u64) -> Mapped {
        Mapped {
            external: SocketAddr::from(([1, 2, 3, 1], port)),
            method: Method::Pcp,
            lease: Duration::from_secs(lease_secs),
        }
    }

    #[test]
    fn a_mapping_is_renewed_at_half_its_lease_and_said_once() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0);
        assert_eq!(s.next_at(), t0);
        assert_eq!(s.external(t0), None);
        let m = mapping(7643, 3600);
        assert_eq!(s.mapped(t0, m), Note::Mapped(m));
        assert_eq!(s.next_at(), t0 + Duration::from_secs(1800));
        assert_eq!(s.external(t0), Some(m.external));
        // Renewed, nothing changed: nothing to say.
        let t1 = t0 + Duration::from_secs(1800);
        assert_eq!(s.mapped(t1, m), Note::Quiet);
        assert_eq!(s.next_at(), t1 + Duration::from_secs(1800));
        // The router gave another port: said.
        let other = mapping(40000, 3600);
        assert_eq!(s.mapped(t1, other), Note::Mapped(other));
        assert_eq!(s.external(t1), Some(other.external));
    }

    #[test]
    fn a_short_lease_is_renewed_before_it_ends() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0);
        s.mapped(t0, mapping(1, 20));
        assert!(s.next_at() < t0 + Duration::from_secs(20));
        assert!(s.next_at() >= t0 + Duration::from_secs(1));
        let mut s = Schedule::new(t0);
        s.mapped(t0, mapping(1, 0));
        assert_eq!(s.next_at(), t0 + Duration::from_secs(1));
        assert_eq!(s.external(t0), None, "a zero lease maps nothing");
    }

    #[test]
    fn failures_back_off_and_are_said_once_per_run() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0);
        assert_eq!(
            s.failed(t0),
            Note::Failing {
                retry_in: FIRST_RETRY
            }
        );
        assert_eq!(s.next_at(), t0 + FIRST_RETRY);
        assert_eq!(s.failed(t0), Note::Quiet);
        assert_eq!(s.next_at(), t0 + FIRST_RETRY * 2);
        for _ in 0..40 {
            assert_eq!(s.failed(t0), Note::Quiet);
        }
        assert_eq!(s.next_at(), t0 + MAX_RETRY);
        // A success resets the backoff; the next run of failures is said.
        s.mapped(t0, mapping(1, 3600));
        let t1 = t0 + Duration::from_secs(7200);
        assert!(s.expired(t1));
        assert_eq!(s.failed(t1), Note::Lost(mapping(1, 3600).external));
        assert_eq!(s.next_at(), t1 + FIRST_RETRY);
        assert_eq!(s.failed(t1), Note::Quiet);
    }

    #[test]
    fn a_failed_renewal_keeps_the_mapping_until_its_lease_ends() {
        let t0 = Instant::now();
        let mut s = Schedule::new(t0);
        let m = mapping(7643, 100);
        s.mapped(t0, m);
        let t1 = t0 + Duration::from_secs(50);
        assert!(!s.expired(t1));
        assert_eq!(s.failed(t1), Note::Quiet);
        assert_eq!(s.external(t1), Some(m.external));
        // Retried after the backoff (30 s) but no later than halfway to
        // the end (75 s), then halfway again, at least a second apart,
        // until the lease is over.
        assert_eq!(s.next_at(), t0 + Duration::from_secs(75));
        let mut tries = 1;
        while !s.expired(s.next_at()) {
            let at = s.next_at();
            assert_eq!(s.external(at), Some(m.external));
            assert_eq!(s.failed(at), Note::Quiet);
            assert!(s.next_at() > at && s.next_at() <= t0 + Duration::from_secs(100));
            tries += 1;
            assert!(tries < 20, "retrying ever faster toward the end");
        }
        assert!(
            tries >= 5,
            "only {tries} tries in the last half of the lease"
        );
        let end = s.next_at();
        assert_eq!(end, t0 + Duration::from_secs(100));
        assert_eq!(s.external(end), None);
        assert_eq!(s.failed(end), Note::Lost(m.external));
    }

    #[test]
    fn a_short_lease_whose_renewal_failed_is_tried_again_before_it_ends() {
        // A router granting 20 s: renewed at 15 s. That renewal fails
        // (after about 2 s of the node's own resends): the next try is
        // while the router still holds the mapping, not at its end, when
        // it is gone.
        let t0 = Instant::now();
        let mut s = Schedule::new(t0);
        let m = mapping(7643, 20);
        s.mapped(t0, m);
        assert_eq!(s.next_at(), t0 + Duration::from_secs(15));
        let t1 = t0 + Duration::from_secs(17);
        assert_eq!(s.failed(t1), Note::Quiet);
        let retry = s.next_at();
        assert!(
            retry > t1 && retry < t0 + Duration::from_secs(20),
            "{:?}",
            retry - t0
        );
        assert!(!s.expired(retry));
        // It works: renewed for another 20 s, nothing new to say.
        assert_eq!(s.mapped(retry, m), Note::Quiet);
        assert_eq!(s.external(t0 + Duration::from_secs(25)), Some(m.external));
    }

    #[test]
    fn the_default_gateway_is_read_from_proc_net_route() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t014DA8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            eth0\t004DA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(default_gateway(text), Some(Ipv4Addr::new(192, 168, 77, 1)));
        // A default route without a gateway (a point-to-point link), a
        // route that is down, and junk: none.
        let no_gateway = "Iface Destination Gateway Flags RefCnt Use Metric Mask\n\
            ppp0 00000000 00000000 0001 0 0 0 00000000\n";
        assert_eq!(default_gateway(no_gateway), None);
        let down = "h\neth0 00000000 014DA8C0 0002 0 0 0 00000000\n";
        assert_eq!(default_gateway(down), None);
        for junk in ["", "header only", "h\nx y z w\n", "h\neth0 zz 014DA8C0 3\n"] {
            assert_eq!(default_gateway(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn only_ipv4_beyond_loopback_is_worth_mapping() {
        assert!(worth_mapping("0.0.0.0:7643".parse().unwrap()));
        assert!(worth_mapping("192.168.1.5:7643".parse().unwrap()));
        assert!(!worth_mapping("127.0.0.1:7643".parse().unwrap()));
        assert!(!worth_mapping("[::1]:7643".parse().unwrap()));
        assert!(!worth_mapping("[::]:7643".parse().unwrap()));
    }
}
