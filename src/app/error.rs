//! Why an application request failed ([`AppError`]), and the stable kind
//! of each failure that front ends show scripts ([`AppError::kind`]).

use std::path::PathBuf;

use thiserror::Error;

use crate::content::{CommentPolicy, ContentError};
use crate::feed::bundle::BundleError;
use crate::feed::message::{DecodeError, FeedId, MessageId};
use crate::home::HomeError;
use crate::home::config::ConfigError;
use crate::home::identity::IdentityError;
use crate::node::ConnectionError;
use crate::node::control::ControlError;
use crate::proto::handshake::HandshakeError;
use crate::store::StoreError;

use super::when::WhenError;

/// Shortest event id prefix accepted, in characters after `%`: shorter
/// ones match too many events to be meant.
pub const MIN_ID_PREFIX: usize = 6;

/// Why an application request failed.
#[derive(Debug, Error)]
pub enum AppError {
    /// The store failed or refused (I/O, damage, a fork...).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The content is not valid (a field too long, end before start...).
    #[error(transparent)]
    Content(#[from] ContentError),
    /// A typed time or zone could not be read.
    #[error(transparent)]
    When(#[from] WhenError),
    /// The home's key file is missing, damaged or unsafe.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// `config.json` or an address or code in it is malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The home directory cannot be found or made.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// A connection to a peer failed.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// An exchange with a peer (`sync`, the first one of `join`,
    /// `recover`) failed.
    #[error("sync with {peer} failed")]
    Sync {
        /// The peer, as dialled.
        peer: String,
        /// Why.
        #[source]
        source: ConnectionError,
    },
    /// A network key or handshake setting is malformed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// A bundle or clock file is malformed.
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// A feed or message id is malformed.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The control socket of a running node failed.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// A file the request reads or writes.
    #[error("cannot {verb} {path}: {source}")]
    File {
        /// What was attempted ("read", "write").
        verb: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The home holds a store (this person's published messages) but its
    /// key file is gone: a new identity would take over nothing and
    /// leave every event, organizer right and answer behind.
    #[error(
        "the key file {key} is missing, but {home} holds what this home published (its store, \
         or the record of how far it published); a new identity would not own any of it. \
         Restore the key file from a backup (copy it back to {key}, mode 600), or, to start \
         over as a new person, run `potluck init --new-identity` (the old feed stays in the \
         store, read-only)"
    )]
    IdentityLost {
        /// The home.
        home: PathBuf,
        /// Where the key file belongs.
        key: PathBuf,
    },
    /// No known event matches the given id or prefix.
    #[error("no known event matches `{0}`")]
    UnknownEvent(String),
    /// More than one known event matches the prefix.
    #[error("`{text}` matches {count} events; give more characters of the id")]
    AmbiguousEvent {
        /// The prefix given.
        text: String,
        /// How many events match.
        count: usize,
    },
    /// The prefix is too short to name an event.
    #[error(
        "`{0}` is too short: give the full event id or at least {MIN_ID_PREFIX} characters after `%`"
    )]
    PrefixTooShort(String),
    /// The event (as announced or as it would be after a change) has
    /// already finished: no list of upcoming events would show it.
    #[error("{span} is already over, so it would never show among the upcoming events")]
    AlreadyOver {
        /// The event's time, for people.
        span: String,
    },
    /// Publishing needs the identity, and this app was opened without it.
    #[error("no identity loaded: this request can only read")]
    ReadOnly,
    /// Only an event's organizer may change or cancel it.
    #[error("only the organizer ({organizer}) can {verb} event {event}")]
    NotOrganizer {
        /// The event.
        event: MessageId,
        /// Its organizer.
        organizer: FeedId,
        /// What was attempted ("update", "cancel").
        verb: &'static str,
    },
    /// The event is cancelled: no changes, no RSVPs.
    #[error("event {event} is cancelled; {what}")]
    Cancelled {
        /// The event.
        event: MessageId,
        /// What is closed ("it cannot be changed any more", "RSVPs are closed").
        what: &'static str,
    },
    /// An update that would change nothing.
    #[error("nothing to change: {0}")]
    NothingToChange(&'static str),
    /// A follow, block (or the reverse) of one's own feed.
    #[error("that is your own feed")]
    OwnFeed,
    /// A hub's command on a node that is not a hub.
    #[error(
        "this node is not a hub: start it with `potluck serve --hub`, or set \"hub\": true in config.json"
    )]
    NotAHub,
    /// An invite that names no feed to follow.
    #[error("the invite names no feed")]
    InviteWithoutFeed,
    /// An invite for another network than this node's.
    #[error(
        "this invite is for {}, and this home is on another one; join with a new home: potluck join CODE --home DIR",
        if *.private { "a private network" } else { "the public network" }
    )]
    OtherNetwork {
        /// The invite is for a private network.
        private: bool,
    },
    /// A port `serve` needs is taken by another program; `hint` says how
    /// to pick another.
    #[error("cannot {what} on {addr}: the port is in use; {hint}")]
    PortInUse {
        /// What was to listen there ("listen", "serve the page").
        what: &'static str,
        /// The address asked for.
        addr: String,
        /// How to pick another port, or go without.
        hint: &'static str,
    },
    /// A socket `serve` needs could not be opened.
    #[error("cannot {what} on {addr}: {source}")]
    Socket {
        /// What was to listen there ("listen", "serve the page").
        what: &'static str,
        /// The address asked for.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// An address given in a setting or flag is not `IP:PORT`.
    #[error("the {what} `{text}` is not IP:PORT (e.g. {example})")]
    BadAddress {
        /// Which setting ("page address", "discovery target").
        what: &'static str,
        /// What was given.
        text: String,
        /// A good one, for people.
        example: &'static str,
    },
    /// A task of the running node died, or its runtime could not start.
    #[error("{what} failed: {reason}")]
    Runtime {
        /// What was being done.
        what: &'static str,
        /// Why, as the runtime says.
        reason: String,
    },
    /// A request that needs a running node (its page, its address).
    #[error("{0}")]
    NotRunning(&'static str),
    /// A request that must not run while a node runs for the home.
    #[error("{0}")]
    NodeRunning(&'static str),
    /// No comment of the event matches the given id or prefix.
    #[error("no known comment on this event matches `{0}`")]
    UnknownComment(String),
    /// The event's setting would not show a comment by this person.
    #[error(
        "commenting is closed for event {event}: its organizer shows {}",
        match policy {
            CommentPolicy::Answered => "only the comments of people who answered it (answer it first, with `potluck rsvp`)",
            _ => "no comments but their own",
        }
    )]
    CommentsClosed {
        /// The event.
        event: MessageId,
        /// Its comment setting.
        policy: CommentPolicy,
    },
    /// Only a comment's author may edit or delete it.
    #[error("comment {comment} is not yours: only its author can {verb} it")]
    NotCommentAuthor {
        /// The comment.
        comment: MessageId,
        /// What was attempted ("edit", "delete").
        verb: &'static str,
    },
    /// The comment was removed by its author.
    #[error("comment {0} was removed; it cannot be changed any more")]
    CommentRemoved(MessageId),
    /// The request cannot be done as asked; the text says why and what
    /// to do instead.
    #[error("{0}")]
    Refused(String),
}

impl AppError {
    /// The kind of failure, for the `{"error": {"kind": …}}` document of
    /// `--json` (`docs/cli.md` lists them). Scripts branch on it; the
    /// message is for people.
    pub fn kind(&self) -> &'static str {
        match self {
            AppError::Store(e) => match e {
                StoreError::Locked { .. } => "busy",
                _ => "storage",
            },
            AppError::Content(_)
            | AppError::When(_)
            | AppError::Config(_)
            | AppError::Handshake(_)
            | AppError::Decode(_)
            | AppError::PrefixTooShort(_) => "invalid_input",
            AppError::Identity(IdentityError::Missing { .. }) | AppError::ReadOnly => "no_identity",
            AppError::Identity(IdentityError::AlreadyExists { .. }) => "exists",
            AppError::Identity(IdentityError::NotAKey { .. }) => "invalid_file",
            AppError::Identity(_) | AppError::IdentityLost { .. } => "identity",
            AppError::Connection(_) | AppError::Sync { .. } => "network",
            AppError::Bundle(_) => "invalid_file",
            AppError::Home(_)
            | AppError::File { .. }
            | AppError::Control(_)
            | AppError::Socket { .. }
            | AppError::Runtime { .. } => "io",
            AppError::UnknownEvent(_)
            | AppError::AmbiguousEvent { .. }
            | AppError::UnknownComment(_) => "not_found",
            AppError::NotOrganizer { .. }
            | AppError::AlreadyOver { .. }
            | AppError::Cancelled { .. }
            | AppError::NothingToChange(_)
            | AppError::OwnFeed
            | AppError::InviteWithoutFeed
            | AppError::NotAHub
            | AppError::OtherNetwork { .. }
            | AppError::PortInUse { .. }
            | AppError::BadAddress { .. }
            | AppError::NotRunning(_)
            | AppError::NodeRunning(_)
            | AppError::CommentsClosed { .. }
            | AppError::NotCommentAuthor { .. }
            | AppError::CommentRemoved(_)
            | AppError::Refused(_) => "refused",
        }
    }

    /// For a store whose database could not be opened, the one line a
    /// person reads instead of sled's own words (offsets, backtraces):
    /// what is damaged and what to run.
    pub fn damaged_store_line(&self) -> Option<String> {
        match self {
            AppError::Store(StoreError::DatabaseDamaged { path, reason }) => Some(format!(
                "the store's database in {path} is damaged ({reason}); run `potluck fsck --repair` to rebuild it from the message log (the damaged files are moved aside)"
            )),
            _ => None,
        }
    }

    /// A file error, for the path and what was done with it.
    pub(crate) fn file(
        verb: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> AppError {
        let path = path.to_path_buf();
        move |source| AppError::File { verb, path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_failures_have_the_kinds_scripts_branch_on() {
        assert_eq!(AppError::UnknownEvent("%abcdef".into()).kind(), "not_found");
        assert_eq!(
            AppError::AmbiguousEvent {
                text: "%abcdef".into(),
                count: 2
            }
            .kind(),
            "not_found"
        );
        assert_eq!(
            AppError::PrefixTooShort("%ab".into()).kind(),
            "invalid_input"
        );
        assert_eq!(AppError::ReadOnly.kind(), "no_identity");
        assert_eq!(
            AppError::AlreadyOver {
                span: "yesterday".into()
            }
            .kind(),
            "refused"
        );
    }
}
