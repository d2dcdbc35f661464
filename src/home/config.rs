//! The node's configuration file, `config.json` in the home, and peer
//! addresses.
//!
//! ```json
//! {
//!   "network_key": "<64 hex digits>",        // default: the public network
//!   "listen": "0.0.0.0:7643",
//!   "peers": ["@<feed>.ed25519@host:7643", "host:7643"],
//!   "replication": "open",                    // or {"hops": 2}
//!   "port_mapping": true,                     // default: on beyond loopback
//!   "hub": true,                              // a hub; then, optionally:
//!   "public_web": "0.0.0.0:8080",             // its public pages of members' events
//!   "public_web_private_network": false,      // show `public` events on a private network
//!   "public_url": "https://events.example.org", // their address, for link previews
//!   "web_answers": {"new_guests_per_ip_per_hour": 10}, // limits on answers from browsers
//!   "public_tls": {"cert": "/etc/potluck/fullchain.pem", "key": "/etc/potluck/key.pem"},
//!                                             // serve them over HTTPS
//!   "public_trusted_proxy": "127.0.0.1",      // or behind this reverse proxy
//!   "reminders": {"calendar_alarm_minutes": 60, "desktop": true}
//!                                             // the .ics alarm (0 or null: none) and
//!                                             // the running node's desktop notifications
//! }
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::feed::message::FeedId;
use crate::home::{Home, write_private};
use crate::proto::handshake::{DEFAULT_NETWORK_KEY, NetworkKey};
use crate::proto::replicate::Policy;
use crate::proto::wire::TOKEN_LEN;

/// Default TCP port of a node.
pub const DEFAULT_PORT: u16 = 7643;
/// Default listen address: every interface, so people on the same network
/// can reach you.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:7643";
/// Default address of the web page: this computer only. When it is taken
/// (another home's node), `serve` takes the next free port.
pub const DEFAULT_WEB: &str = "127.0.0.1:7645";
/// Largest config file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A configuration problem.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file cannot be read or written.
    #[error("cannot access config file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("config file {path} is not valid: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A peer address cannot be parsed.
    #[error(
        "`{0}` is not a peer address: use HOST:PORT, @FEED.ed25519@HOST:PORT to pin the feed you expect, or @FEED.ed25519 alone to go through your hubs"
    )]
    BadPeer(String),
    /// An invite code cannot be read.
    #[error("that is not a valid invite code: {0}")]
    BadInvite(String),
    /// The network key is not 64 hex digits.
    #[error("network key must be 64 hex digits (32 bytes)")]
    BadNetworkKey,
    /// `public_url` is not a web address people can open.
    #[error(
        "\"public_url\" must be the http:// or https:// address people open the public pages at, like https://events.example.org (got `{0}`)"
    )]
    BadPublicUrl(String),
    /// `public_trusted_proxy` is not an IP address.
    #[error(
        "\"public_trusted_proxy\" must be the IP address the reverse proxy connects from, like 127.0.0.1 (got `{0}`)"
    )]
    BadTrustedProxy(String),
    /// `reminders.calendar_alarm_minutes` is out of range.
    #[error(
        "\"reminders\": \"calendar_alarm_minutes\" must be a whole number of minutes from 0 (no alarm) to {max} (a week), or null (no alarm); got {0}",
        max = MAX_ALARM_MINUTES
    )]
    BadAlarmMinutes(i64),
}

/// Default of `reminders.calendar_alarm_minutes`: calendars remind an
/// hour before each event.
pub const DEFAULT_ALARM_MINUTES: u32 = 60;

/// Most minutes before an event that `reminders.calendar_alarm_minutes`
/// may say: a week.
pub const MAX_ALARM_MINUTES: i64 = 7 * 24 * 60;

/// `"reminders"` of config.json: the calendar's alarm and the running
/// node's desktop notifications. Every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemindersSetting {
    /// Minutes before an event that the `.ics` files' `VALARM` goes off.
    /// Absent: [`DEFAULT_ALARM_MINUTES`]; `0` or `null`: no alarm.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub calendar_alarm_minutes: Option<Option<i64>>,
    /// Desktop notifications from `potluck serve` (default true; off by
    /// itself where there is no session bus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desktop: Option<bool>,
}

/// A field that is present, `null` included (`Some(None)`); absent is
/// the `default` (`None`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A peer to dial: an address and, optionally, the feed we expect there.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    /// The feed we expect to reach; a different one aborts the connection.
    pub feed: Option<FeedId>,
    /// `host:port`.
    pub addr: String,
}

impl PeerAddr {
    /// Parses `HOST:PORT` or `@FEED.ed25519@HOST:PORT`.
    pub fn parse(text: &str) -> Result<PeerAddr, ConfigError> {
        let text = text.trim();
        let bad = || ConfigError::BadPeer(text.chars().take(120).collect());
        let (feed, addr) = match text.strip_prefix('@') {
            Some(_) => {
                let split = text.find(".ed25519@").ok_or_else(bad)?;
                let feed = FeedId::parse(&text[..split + ".ed25519".len()]).map_err(|_| bad())?;
                (Some(feed), &text[split + ".ed25519@".len()..])
            }
            None => (None, text),
        };
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(bad());
        }
        Ok(PeerAddr {
            feed,
            addr: addr.to_owned(),
        })
    }
}

impl PeerAddr {
    /// A feed to reach through our hubs (`@FEED.ed25519` alone, for
    /// `potluck sync`): no address of its own.
    pub fn through_hubs(feed: FeedId) -> PeerAddr {
        PeerAddr {
            feed: Some(feed),
            addr: String::new(),
        }
    }

    /// Whether this is a feed to reach through our hubs.
    pub fn is_through_hubs(&self) -> bool {
        self.addr.is_empty()
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.feed {
            Some(feed) if self.addr.is_empty() => write!(f, "{feed} (through a hub)"),
            Some(feed) => write!(f, "{feed}@{}", self.addr),
            None => f.write_str(&self.addr),
        }
    }
}

/// An invite: how to reach the inviter, and (on a private network) the
/// network key. Never a secret key of anyone's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invite {
    /// The inviter's address and feed.
    pub peer: PeerAddr,
    /// The network key, for a private network.
    pub network: Option<NetworkKey>,
    /// A hub's member code: the secret that makes the joiner a member of
    /// the inviting hub.
    pub member: Option<[u8; TOKEN_LEN]>,
    /// The inviter's hubs, through which a newcomer on another network
    /// reaches it.
    pub hubs: Vec<PeerAddr>,
}

/// Most hubs an invite carries.
pub const MAX_INVITE_HUBS: usize = 8;

/// The text before every invite code.
pub const INVITE_PREFIX: &str = "potluck-invite:";

#[derive(Serialize, Deserialize)]
struct InviteBody {
    v: u32,
    addr: String,
    feed: FeedId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    network: Option<String>,
    /// base64url of a hub's member code secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    member: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<String>,
}

impl Invite {
    /// The one-line code: `potluck-invite:` and base64url of a small JSON
    /// object (`v`, `addr`, `feed`, optional `network`).
    pub fn to_code(&self) -> String {
        use base64::Engine as _;
        let body = InviteBody {
            v: 1,
            addr: self.peer.addr.clone(),
            feed: self.peer.feed.unwrap_or(FeedId([0; 32])),
            network: self.network.as_ref().map(NetworkKey::to_hex),
            member: self
                .member
                .map(|t| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t)),
            hubs: self.hubs.iter().map(PeerAddr::to_string).collect(),
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        format!(
            "{INVITE_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        )
    }

    /// Parses a code made by [`Invite::to_code`].
    pub fn parse(code: &str) -> Result<Invite, ConfigError> {
        use base64::Engine as _;
        let bad = |why: &str| ConfigError::BadInvite(why.to_owned());
        let body = code
            .trim()
            .strip_prefix(INVITE_PREFIX)
            .ok_or_else(|| bad("it does not start with `potluck-invite:`"))?;
        if body.len() > 4096 {
            return Err(bad("it is far too long"));
        }
        let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| bad("it is damaged (not base64url); copy the whole code"))?;
        let body: InviteBody =
            serde_json::from_slice(&json).map_err(|_| bad("it is damaged; copy the whole code"))?;
        if body.v != 1 {
            return Err(bad("it was made by a newer version of potluck"));
        }
        let peer = PeerAddr::parse(&format!("{}@{}", body.feed, body.addr))
            .map_err(|_| bad("its address is not HOST:PORT"))?;
        let network = match body.network {
            Some(hex) => {
                Some(NetworkKey::from_hex(&hex).map_err(|_| bad("its network key is damaged"))?)
            }
            None => None,
        };
        let member = match body.member {
            Some(text) => Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(text)
                    .ok()
                    .and_then(|b| <[u8; TOKEN_LEN]>::try_from(b).ok())
                    .ok_or_else(|| bad("its member code is damaged"))?,
            ),
            None => None,
        };
        if body.hubs.len() > MAX_INVITE_HUBS {
            return Err(bad("it names too many hubs"));
        }
        let hubs = body
            .hubs
            .iter()
            .map(|h| match PeerAddr::parse(h) {
                Ok(p) if p.feed.is_some() => Ok(p),
                _ => Err(bad("one of its hubs is not @FEED@HOST:PORT")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Invite {
            peer,
            network,
            member,
            hubs,
        })
    }
}

/// How the replication policy is written in the file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReplicationSetting {
    /// `"open"`.
    #[default]
    Open,
    /// `{"hops": N}`.
    Hops {
        /// Follow hops to replicate.
        hops: u8,
    },
}

/// The file's contents. Every field is optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The network key in hex; absent means the public network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_key: Option<String>,
    /// Listen address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Peers to dial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    /// Replication policy.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "replication_text"
    )]
    pub replication: Option<ReplicationSetting>,
    /// LAN discovery on (the default) or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<bool>,
    /// UDP port for LAN announcements (default 7644).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_port: Option<u16>,
    /// Where to send announcements (default: the broadcast address
    /// `255.255.255.255` at the discovery port).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discovery_targets: Vec<String>,
    /// Where `serve` serves the web page: `IP:PORT`, or `"off"`. Absent:
    /// [`DEFAULT_WEB`], or the next free port after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<String>,
    /// What strangers may make the node store, and how much replication
    /// memory of peers it keeps (any subset of
    /// [`crate::proto::quota::QuotaLimits`]'s fields; the rest keep their
    /// defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<crate::proto::quota::QuotaLimits>,
    /// Hub mode: `true`, or an object setting any of
    /// [`crate::proto::hub::HubLimits`]' fields; absent or `false`: not a
    /// hub.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hub: Option<HubSetting>,
    /// The hubs this node is a member of (`@FEED@HOST:PORT`): it keeps a
    /// connection to each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hubs: Vec<String>,
    /// Take tunnels from any member of our hubs, not only from feeds we
    /// follow (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnels_from_hub_members: Option<bool>,
    /// Ask the home router (PCP, NAT-PMP, UPnP-IGD) to forward the node's
    /// port, so that other homes can dial it directly. Absent: on when
    /// the node listens on IPv4 beyond loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_mapping: Option<bool>,
    /// On a hub: where `serve` serves the read-only public pages of
    /// members' events (`IP:PORT`, like `--public-web`). Absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_web: Option<String>,
    /// On a hub of a private network: show events their organizer marked
    /// `public` on the public pages (default false: a private network's
    /// events never appear there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_web_private_network: Option<bool>,
    /// The address people use for the public pages
    /// (`https://events.example.org`), for the links that previews show
    /// (`og:url`). Absent: the pages name no address of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// On a hub with public pages: the limits on answers from browsers
    /// (any subset of [`crate::proto::guests::GuestLimits`]' fields; the
    /// rest keep their defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_answers: Option<crate::proto::guests::GuestLimits>,
    /// On a hub: serve the public pages over HTTPS with this certificate
    /// and key (like `--tls-cert`/`--tls-key`). Absent: plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_tls: Option<TlsFiles>,
    /// On a hub behind a reverse proxy (Caddy): the proxy's IP address.
    /// Requests from it are counted against the client its
    /// `X-Forwarded-For` names. Absent: that header is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_trusted_proxy: Option<String>,
    /// Reminders: the calendar files' alarm and desktop notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminders: Option<RemindersSetting>,
}

/// A certificate and its key, as files (`"public_tls"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The certificate chain, PEM, the server's own first
    /// (`fullchain.pem`).
    pub cert: std::path::PathBuf,
    /// Its private key, PEM.
    pub key: std::path::PathBuf,
}

/// How hub mode is written in the file: `true`/`false`, or the limits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum HubSetting {
    /// `true` (a hub with the default limits) or `false`.
    On(bool),
    /// A hub with these limits.
    Limits(crate::proto::hub::HubLimits),
}

impl<'de> Deserialize<'de> for HubSetting {
    /// `true`, `false`, or an object of limits whose own error (an unknown
    /// key, a wrong type) is the one reported.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<HubSetting, D::Error> {
        use serde::de::Error as _;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(on) => Ok(HubSetting::On(on)),
            object @ serde_json::Value::Object(_) => serde_json::from_value(object)
                .map(HubSetting::Limits)
                .map_err(|e| D::Error::custom(format!("in \"hub\": {e}"))),
            _ => Err(D::Error::custom(
                "\"hub\" must be true, false, or an object of limits such as {\"member_bytes\": 100000000}",
            )),
        }
    }
}

/// `"open"` or `{"hops": N}`.
mod replication_text {
    use super::ReplicationSetting;
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(
        v: &Option<ReplicationSetting>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(ReplicationSetting::Hops { hops }) => {
                serde_json::json!({ "hops": hops }).serialize(s)
            }
            _ => "open".serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<ReplicationSetting>, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        if value == "open" {
            return Ok(Some(ReplicationSetting::Open));
        }
        if let Some(hops) = value.get("hops").and_then(|h| h.as_u64()) {
            let hops = u8::try_from(hops).map_err(|_| D::Error::custom("hops must be 0-255"))?;
            return Ok(Some(ReplicationSetting::Hops { hops }));
        }
        Err(D::Error::custom(
            r#"replication must be "open" or {"hops": N}"#,
        ))
    }
}

/// Refuses a key written twice in any object of a JSON text. serde_json
/// keeps the last of two equal keys (into a `Value`, or a struct through
/// one), so this walks the text itself once, before it is read for real.
mod unique_keys {
    use std::collections::HashSet;
    use std::fmt;

    use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

    /// `Ok` when no object in `text` has a key twice; otherwise what to
    /// tell the person (or serde_json's syntax error, which parsing the
    /// text again would give too).
    pub(super) fn check(text: &str) -> Result<(), String> {
        let mut reader = serde_json::Deserializer::from_str(text);
        Walk { place: Place::Top }
            .deserialize(&mut reader)
            .and_then(|()| reader.end())
            .map_err(|e| e.to_string())
    }

    /// Where a value is, for the message: the top level, or the path of
    /// keys and array indexes to its object (`quotas`, `peers[1]`).
    enum Place {
        Top,
        Inside(String),
    }

    impl Place {
        /// The place of the value under `key` in this object.
        fn key(&self, key: &str) -> Place {
            Place::Inside(match self {
                Place::Top => key.to_owned(),
                Place::Inside(path) => format!("{path}.{key}"),
            })
        }

        /// The place of element `index` of this array.
        fn index(&self, index: usize) -> Place {
            Place::Inside(match self {
                Place::Top => format!("[{index}]"),
                Place::Inside(path) => format!("{path}[{index}]"),
            })
        }
    }

    impl fmt::Display for Place {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Place::Top => f.write_str("at the top level"),
                Place::Inside(path) => write!(f, "in `{path}`"),
            }
        }
    }

    /// Reads one value, checking the keys of every object in it.
    struct Walk {
        place: Place,
    }

    impl<'de> DeserializeSeed<'de> for Walk {
        type Value = ();

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Walk {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if seen.contains(&key) {
                    // serde_json adds where: "at line L column C".
                    return Err(de::Error::custom(format_args!(
                        "the key `{key}` is written twice {}, the second time",
                        self.place
                    )));
                }
                let place = self.place.key(&key);
                seen.insert(key);
                map.next_value_seed(Walk { place })?;
            }
            Ok(())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut index = 0usize;
            while seq
                .next_element_seed(Walk {
                    place: self.place.index(index),
                })?
                .is_some()
            {
                index += 1;
            }
            Ok(())
        }

        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
}

impl ConfigFile {
    /// Path of the config file in a home.
    pub fn path(home: &Home) -> std::path::PathBuf {
        home.root().join("config.json")
    }

    /// Parses the text of a config file. A UTF-8 byte order mark before
    /// it is skipped (some editors write one); anything but a JSON object
    /// is refused, naming what was found (serde would otherwise read an
    /// empty array as a struct of defaults).
    ///
    /// A key written twice in one object is refused, naming the key and
    /// the object: serde_json would silently keep the last value.
    pub fn parse(text: &str) -> Result<ConfigFile, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        unique_keys::check(text)?;
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let found = match &value {
            serde_json::Value::Object(_) => None,
            serde_json::Value::Array(_) => Some("an array"),
            serde_json::Value::String(_) => Some("a string"),
            serde_json::Value::Number(_) => Some("a number"),
            serde_json::Value::Bool(_) => Some("a boolean"),
            serde_json::Value::Null => Some("null"),
        };
        if let Some(found) = found {
            return Err(format!(
                "it must be a JSON object such as {{\"peers\": []}}, but it is {found}"
            ));
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    /// Reads the file; a missing file is the default configuration.
    pub fn load(home: &Home) -> Result<ConfigFile, ConfigError> {
        let path = ConfigFile::path(home);
        let shown = path.display().to_string();
        let io = |source| ConfigError::Io {
            path: shown.clone(),
            source,
        };
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
            Err(e) => return Err(io(e)),
        };
        let mut text = String::new();
        use std::io::Read;
        file.take(MAX_CONFIG_BYTES)
            .read_to_string(&mut text)
            .map_err(io)?;
        let config = ConfigFile::parse(&text).map_err(|reason| ConfigError::Invalid {
            path: shown.clone(),
            reason,
        })?;
        config.validate().map_err(|e| ConfigError::Invalid {
            path: shown,
            reason: e.to_string(),
        })?;
        Ok(config)
    }

    /// Writes the file (owner-only: it may hold a private network key).
    pub fn save(&self, home: &Home) -> Result<(), ConfigError> {
        let path = ConfigFile::path(home);
        let text = serde_json::to_string_pretty(self).map_err(|e| ConfigError::Invalid {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        write_private(&path, text.as_bytes()).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.network_key()?;
        for p in &self.peers {
            PeerAddr::parse(p)?;
        }
        self.hub_addrs()?;
        self.public_base_url()?;
        self.calendar_alarm_minutes()?;
        for t in &self.discovery_targets {
            t.parse::<std::net::SocketAddr>()
                .map_err(|_| ConfigError::BadPeer(t.clone()))?;
        }
        Ok(())
    }

    /// The network key.
    pub fn network_key(&self) -> Result<NetworkKey, ConfigError> {
        match &self.network_key {
            Some(hex) => NetworkKey::from_hex(hex).map_err(|_| ConfigError::BadNetworkKey),
            None => Ok(DEFAULT_NETWORK_KEY),
        }
    }

    /// The configured peers.
    pub fn peer_addrs(&self) -> Result<Vec<PeerAddr>, ConfigError> {
        self.peers.iter().map(|p| PeerAddr::parse(p)).collect()
    }

    /// The hubs we are a member of; each names its feed.
    pub fn hub_addrs(&self) -> Result<Vec<PeerAddr>, ConfigError> {
        self.hubs
            .iter()
            .map(|h| match PeerAddr::parse(h)? {
                p if p.feed.is_some() => Ok(p),
                _ => Err(ConfigError::BadPeer(format!(
                    "{h} (a hub must be written @FEED@HOST:PORT)"
                ))),
            })
            .collect()
    }

    /// `public_url` without a trailing `/`, checked: an `http://` or
    /// `https://` address with a host and no white space or quotes (it
    /// goes into the pages' links as it is).
    pub fn public_base_url(&self) -> Result<Option<String>, ConfigError> {
        let Some(url) = &self.public_url else {
            return Ok(None);
        };
        let bad = || ConfigError::BadPublicUrl(url.chars().take(120).collect());
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(bad)?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty()
            || url
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>'))
        {
            return Err(bad());
        }
        Ok(Some(url.trim_end_matches('/').to_owned()))
    }

    /// `public_trusted_proxy`, checked: an IP address.
    pub fn public_trusted_proxy(&self) -> Result<Option<std::net::IpAddr>, ConfigError> {
        self.public_trusted_proxy
            .as_deref()
            .map(|text| {
                text.trim()
                    .parse()
                    .map_err(|_| ConfigError::BadTrustedProxy(text.chars().take(60).collect()))
            })
            .transpose()
    }

    /// How many minutes before an event the calendar files' alarm goes
    /// off, checked; `None`: no alarm (`0` or `null`). Absent:
    /// [`DEFAULT_ALARM_MINUTES`].
    pub fn calendar_alarm_minutes(&self) -> Result<Option<u32>, ConfigError> {
        let given = self
            .reminders
            .as_ref()
            .and_then(|r| r.calendar_alarm_minutes);
        match given {
            None => Ok(Some(DEFAULT_ALARM_MINUTES)),
            Some(None) | Some(Some(0)) => Ok(None),
            Some(Some(minutes)) if (1..=MAX_ALARM_MINUTES).contains(&minutes) => {
                Ok(u32::try_from(minutes).ok())
            }
            Some(Some(minutes)) => Err(ConfigError::BadAlarmMinutes(minutes)),
        }
    }

    /// Whether `potluck serve` shows desktop notifications (`"reminders":
    /// {"desktop": false}` turns them off; on by default).
    pub fn desktop_reminders(&self) -> bool {
        self.reminders
            .as_ref()
            .and_then(|r| r.desktop)
            .unwrap_or(true)
    }

    /// The hub's limits when this node is a hub.
    pub fn hub_limits(&self) -> Option<crate::proto::hub::HubLimits> {
        match &self.hub {
            Some(HubSetting::On(true)) => Some(Default::default()),
            Some(HubSetting::Limits(limits)) => Some(limits.clone()),
            Some(HubSetting::On(false)) | None => None,
        }
    }

    /// The replication policy.
    pub fn policy(&self) -> Policy {
        match self.replication {
            Some(ReplicationSetting::Hops { hops }) => Policy::Hops(hops),
            _ => Policy::Open,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14, defect 10: `[]` is refused with a clear reason, and a
    /// byte order mark is accepted.
    #[test]
    fn config_text_must_be_an_object_and_may_start_with_a_bom() {
        for (text, found) in [
            ("[]", "an array"),
            ("null", "null"),
            ("\"x\"", "a string"),
            ("7", "a number"),
        ] {
            let reason = ConfigFile::parse(text).unwrap_err();
            assert!(reason.contains("must be a JSON object"), "{text}: {reason}");
            assert!(reason.ends_with(found), "{text}: {reason}");
        }
        assert_eq!(
            ConfigFile::parse("\u{feff}{\"listen\": \"127.0.0.1:1\"}").unwrap(),
            ConfigFile {
                listen: Some("127.0.0.1:1".into()),
                ..ConfigFile::default()
            }
        );
        assert_eq!(ConfigFile::parse("{}").unwrap(), ConfigFile::default());
        assert!(ConfigFile::parse(r#"{"nonsense": 1}"#).is_err());
    }

    /// Issue 19, defect 1: a key written twice, at the top level or in
    /// any nested object, is refused with the key and where it is.
    #[test]
    fn a_key_written_twice_is_refused_wherever_it_is() {
        for (text, key, place) in [
            (
                r#"{"listen": "127.0.0.1:1", "listen": "127.0.0.1:2"}"#,
                "listen",
                "at the top level",
            ),
            (
                r#"{"quotas": {"new_feeds_per_peer_per_hour": 1, "new_feeds_per_peer_per_hour": 2}}"#,
                "new_feeds_per_peer_per_hour",
                "in `quotas`",
            ),
            (
                r#"{"replication": {"hops": 1, "hops": 2}}"#,
                "hops",
                "in `replication`",
            ),
            (
                r#"{"peers": ["127.0.0.1:1", {"a": {"b": 1, "b": 2}}]}"#,
                "b",
                "in `peers[1].a`",
            ),
        ] {
            let reason = ConfigFile::parse(text).unwrap_err();
            assert!(
                reason.starts_with(&format!(
                    "the key `{key}` is written twice {place}, the second time at line 1 column"
                )),
                "{text}: {reason}"
            );
        }
        // The same key in two different objects is fine.
        let config = ConfigFile::parse(r#"{"replication": {"hops": 2}, "quotas": {}}"#).unwrap();
        assert_eq!(config.policy(), Policy::Hops(2));
        // Syntax errors still read as serde_json's.
        assert!(
            ConfigFile::parse("{\"listen\": ")
                .unwrap_err()
                .contains("EOF")
        );
    }

    #[test]
    fn peer_addresses() {
        let plain = PeerAddr::parse("127.0.0.1:7643").unwrap();
        assert_eq!(plain.feed, None);
        let feed = FeedId([3; 32]);
        let pinned = PeerAddr::parse(&format!("{feed}@[::1]:9000")).unwrap();
        assert_eq!(pinned.feed, Some(feed));
        assert_eq!(pinned.addr, "[::1]:9000");
        assert_eq!(PeerAddr::parse(&pinned.to_string()).unwrap(), pinned);
        for bad in ["", "host", "host:x", ":80", "@abc@host:1", "@x.ed25519@h:1"] {
            assert!(PeerAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invites_round_trip_and_reject_junk() {
        let invite = Invite {
            peer: PeerAddr::parse(&format!("{}@192.0.2.4:7643", FeedId([5; 32]))).unwrap(),
            network: Some(NetworkKey([9; 32])),
            member: None,
            hubs: Vec::new(),
        };
        let code = invite.to_code();
        assert!(code.starts_with(INVITE_PREFIX));
        assert!(!code.contains(' '));
        assert_eq!(Invite::parse(&code).unwrap(), invite);
        let public = Invite {
            network: None,
            ..invite.clone()
        };
        assert_eq!(Invite::parse(&public.to_code()).unwrap(), public);
        // A hub's member code, and a member's invite naming its hubs.
        let hub = PeerAddr::parse(&format!("{}@203.0.113.9:7643", FeedId([6; 32]))).unwrap();
        let member = Invite {
            member: Some([3; TOKEN_LEN]),
            hubs: vec![hub.clone()],
            ..invite.clone()
        };
        assert_eq!(Invite::parse(&member.to_code()).unwrap(), member);
        let eleven = Invite {
            hubs: vec![hub; MAX_INVITE_HUBS + 1],
            ..invite.clone()
        };
        assert!(Invite::parse(&eleven.to_code()).is_err());
        for bad in [
            "",
            "hello",
            "potluck-invite:",
            "potluck-invite:!!!",
            &code[..code.len() - 5],
            "potluck-invite:eyJ2IjoyfQ",
        ] {
            assert!(
                matches!(Invite::parse(bad), Err(ConfigError::BadInvite(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn config_round_trips_and_rejects_junk() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        assert_eq!(ConfigFile::load(&home).unwrap(), ConfigFile::default());
        let config = ConfigFile {
            network_key: Some("ab".repeat(32)),
            listen: Some("127.0.0.1:0".into()),
            peers: vec!["127.0.0.1:9".into()],
            replication: Some(ReplicationSetting::Hops { hops: 2 }),
            discovery: Some(false),
            discovery_port: Some(17644),
            discovery_targets: vec!["127.255.255.255:17644".into()],
            web: Some("127.0.0.1:17645".into()),
            quotas: Some(crate::proto::quota::QuotaLimits {
                new_feeds_per_peer_per_hour: 5,
                ..Default::default()
            }),
            hub: Some(HubSetting::Limits(crate::proto::hub::HubLimits {
                member_bytes: 1_000,
                ..Default::default()
            })),
            hubs: vec![format!("{}@203.0.113.9:7643", FeedId([6; 32]))],
            tunnels_from_hub_members: Some(true),
            port_mapping: Some(false),
            public_web: Some("0.0.0.0:8080".into()),
            public_web_private_network: Some(true),
            public_url: Some("https://events.example.org".into()),
            web_answers: Some(crate::proto::guests::GuestLimits {
                new_guests_per_ip_per_hour: 3,
                ..Default::default()
            }),
            public_tls: Some(TlsFiles {
                cert: "/etc/potluck/fullchain.pem".into(),
                key: "/etc/potluck/key.pem".into(),
            }),
            public_trusted_proxy: Some("127.0.0.1".into()),
            reminders: Some(RemindersSetting {
                calendar_alarm_minutes: Some(Some(15)),
                desktop: Some(false),
            }),
        };
        config.save(&home).unwrap();
        let back = ConfigFile::load(&home).unwrap();
        assert_eq!(back, config);
        assert_eq!(back.policy(), Policy::Hops(2));
        assert_eq!(back.hub_limits().map(|l| l.member_bytes), Some(1_000));
        assert_eq!(back.hub_addrs().unwrap().len(), 1);
        assert_eq!(
            back.public_trusted_proxy().unwrap(),
            Some(std::net::IpAddr::from([127, 0, 0, 1]))
        );
        let proxy_by_name = ConfigFile {
            public_trusted_proxy: Some("localhost".into()),
            ..ConfigFile::default()
        };
        assert!(matches!(
            proxy_by_name.public_trusted_proxy(),
            Err(ConfigError::BadTrustedProxy(_))
        ));
        for (text, hub) in [
            (r#"{"hub":true}"#, true),
            (r#"{"hub":false}"#, false),
            ("{}", false),
        ] {
            std::fs::write(ConfigFile::path(&home), text).unwrap();
            assert_eq!(
                ConfigFile::load(&home).unwrap().hub_limits().is_some(),
                hub,
                "{text}"
            );
        }
        // A hub must name its feed.
        std::fs::write(ConfigFile::path(&home), r#"{"hubs":["203.0.113.9:7643"]}"#).unwrap();
        assert!(ConfigFile::load(&home).is_err());
        std::fs::write(ConfigFile::path(&home), r#"{"hub":{"member_byte":1}}"#).unwrap();
        let err = ConfigFile::load(&home).unwrap_err().to_string();
        assert!(err.contains("member_byte"), "{err}");
        std::fs::write(ConfigFile::path(&home), r#"{"hub":"yes"}"#).unwrap();
        let err = ConfigFile::load(&home).unwrap_err().to_string();
        assert!(err.contains("true, false, or an object"), "{err}");
        std::fs::write(ConfigFile::path(&home), r#"{"peers":["nope"]}"#).unwrap();
        assert!(matches!(
            ConfigFile::load(&home),
            Err(ConfigError::Invalid { .. })
        ));
        std::fs::write(ConfigFile::path(&home), r#"{"colour":"red"}"#).unwrap();
        assert!(ConfigFile::load(&home).is_err());
    }

    #[test]
    fn the_public_url_must_be_a_web_address() {
        let with = |url: &str| ConfigFile {
            public_url: Some(url.into()),
            ..ConfigFile::default()
        };
        assert_eq!(
            with("https://events.example.org/")
                .public_base_url()
                .unwrap(),
            Some("https://events.example.org".into())
        );
        assert_eq!(
            with("http://192.0.2.7:8080/hub").public_base_url().unwrap(),
            Some("http://192.0.2.7:8080/hub".into())
        );
        for bad in [
            "events.example.org",
            "https://",
            "ftp://x",
            "https://a b",
            "https://x/\"<",
        ] {
            assert!(
                matches!(
                    with(bad).public_base_url(),
                    Err(ConfigError::BadPublicUrl(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(ConfigFile::default().public_base_url().unwrap(), None);
    }

    /// Issue 22: `reminders.calendar_alarm_minutes` defaults to an hour,
    /// `0` and `null` mean no alarm, and a value out of range is refused
    /// by `load` with the key, the range and the value.
    #[test]
    fn calendar_alarm_minutes_default_none_and_range() {
        let alarm = |text: &str| ConfigFile::parse(text).unwrap().calendar_alarm_minutes();
        assert_eq!(alarm("{}").unwrap(), Some(DEFAULT_ALARM_MINUTES));
        assert_eq!(alarm(r#"{"reminders": {}}"#).unwrap(), Some(60));
        assert_eq!(
            alarm(r#"{"reminders": {"calendar_alarm_minutes": 15}}"#).unwrap(),
            Some(15)
        );
        assert_eq!(
            alarm(r#"{"reminders": {"calendar_alarm_minutes": 0}}"#).unwrap(),
            None
        );
        assert_eq!(
            alarm(r#"{"reminders": {"calendar_alarm_minutes": null}}"#).unwrap(),
            None
        );
        assert_eq!(
            alarm(r#"{"reminders": {"calendar_alarm_minutes": 10080}}"#).unwrap(),
            Some(10080)
        );
        for bad in [-5, 10081, i64::MAX] {
            let text = format!(r#"{{"reminders": {{"calendar_alarm_minutes": {bad}}}}}"#);
            let err = alarm(&text).unwrap_err();
            assert!(matches!(err, ConfigError::BadAlarmMinutes(m) if m == bad));
            let shown = err.to_string();
            assert!(shown.contains("calendar_alarm_minutes"), "{shown}");
            assert!(shown.contains(&bad.to_string()), "{shown}");
        }
        // Not a number, or an unknown key: refused when parsed.
        assert!(ConfigFile::parse(r#"{"reminders": {"calendar_alarm_minutes": "60"}}"#).is_err());
        assert!(ConfigFile::parse(r#"{"reminders": {"alarm": 60}}"#).is_err());
        // load() refuses an out-of-range value with the file named.
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path());
        std::fs::write(
            ConfigFile::path(&home),
            r#"{"reminders": {"calendar_alarm_minutes": -1}}"#,
        )
        .unwrap();
        let err = ConfigFile::load(&home).unwrap_err().to_string();
        assert!(err.contains("config.json") && err.contains("-1"), "{err}");
        // The desktop switch: on unless set false.
        assert!(ConfigFile::default().desktop_reminders());
        assert!(
            !ConfigFile::parse(r#"{"reminders": {"desktop": false}}"#)
                .unwrap()
                .desktop_reminders()
        );
        // A null survives a save and load.
        let config =
            ConfigFile::parse(r#"{"reminders": {"calendar_alarm_minutes": null}}"#).unwrap();
        let text = serde_json::to_string(&config).unwrap();
        assert_eq!(ConfigFile::parse(&text).unwrap(), config);
    }
}
