//! Keeps the node's port mapped on the home router, so that people in
//! other homes can dial it directly: PCP, then NAT-PMP (`crab_nat`), then
//! UPnP-IGD (`igd-next`). The schedule (when to map, renew, retry, what
//! to log) is `proto::portmap`'s; this task talks to the router, keeps
//! [`Node::mapped_address`] current and deletes the mapping when the node
//! stops. A router that is absent or refuses is said once, calmly, and
//! asked again later; it never stops the node.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crab_nat::{InternetProtocol, PortMapping, PortMappingOptions, PortMappingType, TimeoutConfig};
use igd_next::{PortMappingProtocol, SearchOptions};
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::proto::portmap::{self, LEASE, MAX_ROUTE_TEXT, Mapped, Method, Note, Schedule};

use super::Node;

/// How PCP and NAT-PMP requests are retried: about 2 s in all before a
/// router that does not answer is taken as absent.
const PMP_TIMEOUTS: TimeoutConfig = TimeoutConfig {
    initial_timeout: Duration::from_millis(250),
    max_retries: 2,
    max_retry_timeout: Some(Duration::from_secs(1)),
};
/// How long the UPnP search waits for a router's answer.
const UPNP_SEARCH: Duration = Duration::from_secs(3);
/// How long deleting the mapping may hold up the node's shutdown.
const DELETE_WITHIN: Duration = Duration::from_secs(3);
/// The name a UPnP router shows for the mapping.
const DESCRIPTION: &str = "potluck";

/// Why no mapping was made.
#[derive(Debug, Error)]
pub enum PortMapError {
    /// Nothing to map: the node listens on port 0.
    #[error("the node's port is 0")]
    NoPort,
    /// No router answered, or every one refused; what each protocol said.
    #[error("{0}")]
    Router(String),
}

/// A mapping held on the router, with what renewing and deleting it
/// need.
enum Held {
    /// PCP or NAT-PMP.
    Pmp {
        mapping: PortMapping,
        external_ip: IpAddr,
    },
    /// UPnP-IGD.
    Upnp {
        gateway: igd_next::Gateway,
        external: SocketAddr,
        local: SocketAddr,
    },
}

/// The channel that carries the mapped address (a field of [`Node`]).
pub(crate) fn mapped_channel() -> watch::Sender<Option<SocketAddr>> {
    watch::channel(None).0
}

impl Node {
    /// Where people outside the home reach this node: the router's public
    /// address and the port it maps to ours, while a mapping holds.
    pub fn mapped_address(&self) -> Option<SocketAddr> {
        *self.mapped.borrow()
    }

    /// Changes whenever [`Node::mapped_address`] does.
    pub fn watch_mapped_address(&self) -> watch::Receiver<Option<SocketAddr>> {
        self.mapped.subscribe()
    }

    /// Starts keeping `listen`'s port mapped on the router (see the
    /// module text); the task ends, deleting the mapping, when the node
    /// shuts down.
    pub fn start_port_mapping(self: &Arc<Self>, listen: SocketAddr) -> JoinHandle<()> {
        tokio::spawn(self.clone().port_map_loop(listen))
    }

    async fn port_map_loop(self: Arc<Self>, listen: SocketAddr) {
        let mut schedule = Schedule::new(Instant::now());
        let mut held: Option<Held> = None;
        let mut stop = self.subscribe_shutdown();
        loop {
            let at = schedule.next_at();
            tokio::select! {
                _ = stop.wait_for(|stopped| *stopped) => break,
                () = tokio::time::sleep_until(at.into()) => {}
            }
            if schedule.expired(Instant::now()) {
                held = None;
            }
            let outcome = match held.as_mut() {
                Some(h) => renew(h).await,
                None => match map(listen).await {
                    Ok((h, mapped)) => {
                        held = Some(h);
                        Ok(mapped)
                    }
                    Err(e) => Err(e),
                },
            };
            let now = Instant::now();
            let note = match &outcome {
                Ok(mapped) => schedule.mapped(now, *mapped),
                Err(e) => {
                    tracing::debug!(error = %e, "port mapping failed");
                    schedule.failed(now)
                }
            };
            self.mapped.send_replace(schedule.external(now));
            match (note, outcome) {
                (Note::Mapped(m), _) => tracing::info!(
                    external = %m.external,
                    method = %m.method,
                    lease_s = m.lease.as_secs(),
                    "port mapped on the router: people outside this network reach this node at {}",
                    m.external
                ),
                (Note::Failing { retry_in }, Err(e)) => tracing::info!(
                    error = %e,
                    retry_in_s = retry_in.as_secs(),
                    "no port mapping on the router (people outside this network cannot dial this node directly); trying again later"
                ),
                (Note::Lost(external), _) => {
                    held = None;
                    tracing::warn!(%external, "lost the port mapping on the router: its lease ran out and renewing failed; trying again later");
                }
                _ => {}
            }
        }
        self.mapped.send_replace(None);
        if let Some(h) = held {
            let external = external_of(&h);
            match tokio::time::timeout(DELETE_WITHIN, delete(h)).await {
                Ok(Ok(())) => tracing::info!(%external, "port mapping deleted"),
                Ok(Err(e)) => {
                    tracing::info!(%external, error = %e, "could not delete the port mapping; the router drops it when its lease ends")
                }
                Err(_) => {
                    tracing::info!(%external, "the router did not answer in time to delete the port mapping; it drops it when its lease ends")
                }
            }
        }
    }
}

fn external_of(held: &Held) -> SocketAddr {
    match held {
        Held::Pmp {
            mapping,
            external_ip,
        } => SocketAddr::new(*external_ip, mapping.external_port().get()),
        Held::Upnp { external, .. } => *external,
    }
}

fn lease_secs() -> u32 {
    u32::try_from(LEASE.as_secs()).unwrap_or(u32::MAX)
}

/// Maps `listen`'s port: PCP or NAT-PMP at the default gateway, else
/// UPnP-IGD.
async fn map(listen: SocketAddr) -> Result<(Held, Mapped), PortMapError> {
    let port = NonZeroU16::new(listen.port()).ok_or(PortMapError::NoPort)?;
    let mut said = Vec::new();
    match default_gateway() {
        Some(gateway) => match map_pmp(gateway, local_ip(listen, gateway.into()), port).await {
            Ok(done) => return Ok(done),
            Err(e) => said.push(format!("PCP/NAT-PMP at {gateway}: {e}")),
        },
        None => said.push("PCP/NAT-PMP: no default gateway".to_owned()),
    }
    match map_upnp(listen, port).await {
        Ok(done) => Ok(done),
        Err(e) => {
            said.push(format!("UPnP-IGD: {e}"));
            Err(PortMapError::Router(said.join("; ")))
        }
    }
}

/// The IPv4 default gateway (Linux; elsewhere none, and UPnP's search
/// finds the router).
fn default_gateway() -> Option<Ipv4Addr> {
    use std::io::Read;
    let file = std::fs::File::open("/proc/net/route").ok()?;
    let mut text = String::new();
    file.take(MAX_ROUTE_TEXT).read_to_string(&mut text).ok()?;
    portmap::default_gateway(&text)
}

/// Our address toward `router`: the one we listen on, or (listening on
/// every interface) the one the kernel would send from. Connecting a UDP
/// socket sends nothing.
fn local_ip(listen: SocketAddr, router: IpAddr) -> IpAddr {
    if !listen.ip().is_unspecified() {
        return listen.ip();
    }
    UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .and_then(|s| {
            s.connect((router, crab_nat::GATEWAY_PORT))?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(listen.ip())
}

fn pmp_options(port: NonZeroU16) -> PortMappingOptions {
    PortMappingOptions {
        external_port: Some(port),
        lifetime_seconds: Some(lease_secs()),
        timeout_config: Some(PMP_TIMEOUTS),
    }
}

/// PCP, then NAT-PMP when the router answered PCP with anything but a
/// mapping (one that does not answer at all is not asked twice).
async fn map_pmp(
    gateway: Ipv4Addr,
    client: IpAddr,
    port: NonZeroU16,
) -> Result<(Held, Mapped), String> {
    let gateway = crab_nat::GatewayAddress::from(gateway);
    let mapping = match PortMapping::new(
        gateway,
        client,
        InternetProtocol::Tcp,
        port,
        pmp_options(port),
    )
    .await
    {
        Ok(mapping) => mapping,
        Err(crab_nat::MappingFailure::Pcp(
            e @ (crab_nat::pcp::Failure::Timeout | crab_nat::pcp::Failure::Socket(_)),
        )) => return Err(e.to_string()),
        Err(pcp) => {
            crab_nat::natpmp::port_mapping(gateway, InternetProtocol::Tcp, port, pmp_options(port))
                .await
                .map_err(|e| format!("PCP: {pcp}; NAT-PMP: {e}"))?
        }
    };
    let external_ip = match mapping.mapping_type() {
        PortMappingType::Pcp { external_ip, .. } => external_ip,
        PortMappingType::NatPmp => crab_nat::natpmp::external_address(gateway, Some(PMP_TIMEOUTS))
            .await
            .map(IpAddr::V4)
            .map_err(|e| format!("mapped, but the public address is unknown: {e}"))?,
    };
    let held = Held::Pmp {
        mapping,
        external_ip,
    };
    let mapped = mapped_of(&held);
    Ok((held, mapped))
}

fn mapped_of(held: &Held) -> Mapped {
    let (method, lease) = match held {
        Held::Pmp { mapping, .. } => (
            match mapping.mapping_type() {
                PortMappingType::Pcp { .. } => Method::Pcp,
                PortMappingType::NatPmp => Method::NatPmp,
            },
            Duration::from_secs(u64::from(mapping.lifetime())),
        ),
        Held::Upnp { .. } => (Method::Upnp, LEASE),
    };
    Mapped {
        external: external_of(held),
        method,
        lease,
    }
}

/// UPnP-IGD: finds the router (SSDP), maps the same port outside, or any
/// port the router gives when that one is taken. Blocking calls (bounded
/// by their timeouts) on the blocking pool.
async fn map_upnp(listen: SocketAddr, port: NonZeroU16) -> Result<(Held, Mapped), String> {
    let bind_ip = if listen.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        listen.ip()
    };
    tokio::task::spawn_blocking(move || {
        let mut options = SearchOptions::default();
        options.bind_addr = SocketAddr::new(bind_ip, 0);
        options.timeout = Some(UPNP_SEARCH);
        options.single_search_timeout = Some(UPNP_SEARCH);
        // Only IPv4 ports need mapping (see `worth_mapping`).
        options.gateway_ip_version = igd_next::GatewayIpVersion::V4;
        let gateway = igd_next::search_gateway(options).map_err(|e| e.to_string())?;
        let local = SocketAddr::new(local_ip(listen, gateway.addr.ip()), port.get());
        let external_ip = gateway.get_external_ip().map_err(|e| e.to_string())?;
        let external_port = match gateway.add_port(
            PortMappingProtocol::TCP,
            port.get(),
            local,
            lease_secs(),
            DESCRIPTION,
        ) {
            Ok(()) => port.get(),
            Err(igd_next::AddPortError::PortInUse) => gateway
                .add_any_port(PortMappingProtocol::TCP, local, lease_secs(), DESCRIPTION)
                .map_err(|e| e.to_string())?,
            Err(e) => return Err(e.to_string()),
        };
        let held = Held::Upnp {
            gateway,
            external: SocketAddr::new(external_ip, external_port),
            local,
        };
        let mapped = mapped_of(&held);
        Ok((held, mapped))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Renews a held mapping for another lease.
async fn renew(held: &mut Held) -> Result<Mapped, PortMapError> {
    match held {
        Held::Pmp { mapping, .. } => {
            mapping
                .renew()
                .await
                .map_err(|e| PortMapError::Router(format!("renewing: {e}")))?;
        }
        Held::Upnp {
            gateway,
            external,
            local,
        } => {
            let (gateway, external, local) = (gateway.clone(), *external, *local);
            tokio::task::spawn_blocking(move || {
                gateway.add_port(
                    PortMappingProtocol::TCP,
                    external.port(),
                    local,
                    lease_secs(),
                    DESCRIPTION,
                )
            })
            .await
            .map_err(|e| PortMapError::Router(e.to_string()))?
            .map_err(|e| PortMapError::Router(format!("renewing: {e}")))?;
        }
    }
    Ok(mapped_of(held))
}

/// Deletes a held mapping.
async fn delete(held: Held) -> Result<(), String> {
    match held {
        Held::Pmp { mapping, .. } => mapping.try_drop().await.map_err(|(e, _)| e.to_string()),
        Held::Upnp {
            gateway, external, ..
        } => tokio::task::spawn_blocking(move || {
            gateway.remove_port(PortMappingProtocol::TCP, external.port())
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string()),
    }
}
