//! Talk about an event: `comment` from anyone, `comment-edit` and
//! `comment-delete` by a comment's author, `comment-hide` by the event's
//! organizer, and who may comment at all ([`CommentPolicy`], a field of
//! the event).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::shorten;
use super::json::{JsonWriter, Object, to_bool, to_message_id, to_message_ids, to_string};
use super::{ContentError, KnownContent};
use crate::feed::message::MessageId;

/// Longest comment text, in bytes of UTF-8 (8 KiB); the whole content
/// must also fit in a message.
pub const MAX_COMMENT_TEXT_BYTES: usize = 8192;
/// Most ids in a comment's `seen`: the latest comments of the thread its
/// author had seen.
pub const MAX_SEEN: usize = 8;

/// Whose comments on an event nodes show, as the organizer set it (the
/// event's `comments` field; absent means [`CommentPolicy::Everyone`]).
/// The organizer's own comments are always shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommentPolicy {
    /// `"everyone"`: anyone's comments.
    #[default]
    Everyone,
    /// `"answered"`: the comments of people with an RSVP to the event.
    Answered,
    /// `"nobody"`: only the organizer's.
    Nobody,
}

impl CommentPolicy {
    /// The JSON word.
    pub fn as_str(self) -> &'static str {
        match self {
            CommentPolicy::Everyone => "everyone",
            CommentPolicy::Answered => "answered",
            CommentPolicy::Nobody => "nobody",
        }
    }

    /// True for the default, which an event does not write.
    pub fn is_everyone(&self) -> bool {
        *self == CommentPolicy::Everyone
    }
}

impl FromStr for CommentPolicy {
    type Err = ContentError;

    /// Parses the exact JSON word.
    fn from_str(s: &str) -> Result<Self, ContentError> {
        match s {
            "everyone" => Ok(CommentPolicy::Everyone),
            "answered" => Ok(CommentPolicy::Answered),
            "nobody" => Ok(CommentPolicy::Nobody),
            _ => Err(ContentError::BadCommentPolicy(shorten(s))),
        }
    }
}

impl fmt::Display for CommentPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A comment on an event, `{"type":"comment", ...}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    /// The id of the `event` message talked about.
    pub event: MessageId,
    /// The comment this one answers, if any.
    pub reply: Option<MessageId>,
    /// The latest comments of the thread the author had seen (at most
    /// [`MAX_SEEN`]): this comment comes after them in every node's order.
    pub seen: Vec<MessageId>,
    /// Plain text, not empty, at most [`MAX_COMMENT_TEXT_BYTES`] bytes.
    pub text: String,
}

/// A new text for one's own comment, `{"type":"comment-edit", ...}`: it
/// supersedes the text before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentEdit {
    /// The comment edited.
    pub comment: MessageId,
    /// Its new text, as a comment's.
    pub text: String,
}

/// The removal of one's own comment, `{"type":"comment-delete", ...}`:
/// nodes show it as removed, for good.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentDelete {
    /// The comment removed.
    pub comment: MessageId,
}

/// The organizer hiding (or showing again) a comment on their event,
/// `{"type":"comment-hide", ...}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommentHide {
    /// The organizer's event.
    pub event: MessageId,
    /// The comment.
    pub comment: MessageId,
    /// True to hide it, false to show it again.
    pub hidden: bool,
}

/// A comment's text is not empty and fits its limit.
fn check_text(text: &str) -> Result<(), ContentError> {
    if text.trim().is_empty() {
        return Err(ContentError::EmptyCommentText);
    }
    if text.len() > MAX_COMMENT_TEXT_BYTES {
        return Err(ContentError::CommentTextTooLong { bytes: text.len() });
    }
    Ok(())
}

/// A JSON array of ids.
fn ids_json(ids: &[MessageId]) -> String {
    let quoted: Vec<String> = ids.iter().map(|id| format!("\"{id}\"")).collect();
    format!("[{}]", quoted.join(","))
}

impl KnownContent for Comment {
    const TYPE: &'static str = "comment";

    fn from_object(obj: &Object) -> Result<Comment, ContentError> {
        Ok(Comment {
            event: obj.required("event", to_message_id)?,
            reply: obj.optional("reply", to_message_id)?,
            seen: obj
                .optional("seen", to_message_ids(MAX_SEEN))?
                .unwrap_or_default(),
            text: obj.required("text", to_string)?,
        })
    }

    fn check_fields(&self) -> Result<(), ContentError> {
        if self.seen.len() > MAX_SEEN {
            return Err(ContentError::TooManySeen(self.seen.len()));
        }
        check_text(&self.text)
    }

    /// `reply` and an empty `seen` are left out.
    fn write_fields(&self, w: &mut JsonWriter) {
        w.str("event", &self.event.to_string());
        w.opt_str("reply", self.reply.map(|r| r.to_string()).as_deref());
        if !self.seen.is_empty() {
            w.raw("seen", &ids_json(&self.seen));
        }
        w.str("text", &self.text);
    }
}

impl KnownContent for CommentEdit {
    const TYPE: &'static str = "comment-edit";

    fn from_object(obj: &Object) -> Result<CommentEdit, ContentError> {
        Ok(CommentEdit {
            comment: obj.required("comment", to_message_id)?,
            text: obj.required("text", to_string)?,
        })
    }

    fn check_fields(&self) -> Result<(), ContentError> {
        check_text(&self.text)
    }

    fn write_fields(&self, w: &mut JsonWriter) {
        w.str("comment", &self.comment.to_string());
        w.str("text", &self.text);
    }
}

/// Every constraint of a delete is carried by its field type.
impl KnownContent for CommentDelete {
    const TYPE: &'static str = "comment-delete";

    fn from_object(obj: &Object) -> Result<CommentDelete, ContentError> {
        Ok(CommentDelete {
            comment: obj.required("comment", to_message_id)?,
        })
    }

    fn write_fields(&self, w: &mut JsonWriter) {
        w.str("comment", &self.comment.to_string());
    }
}

/// Every constraint of a hide is carried by its field types.
impl KnownContent for CommentHide {
    const TYPE: &'static str = "comment-hide";

    fn from_object(obj: &Object) -> Result<CommentHide, ContentError> {
        Ok(CommentHide {
            event: obj.required("event", to_message_id)?,
            comment: obj.required("comment", to_message_id)?,
            hidden: obj.required("hidden", to_bool("hidden"))?,
        })
    }

    /// `hidden` is always written.
    fn write_fields(&self, w: &mut JsonWriter) {
        w.str("event", &self.event.to_string());
        w.str("comment", &self.comment.to_string());
        w.raw("hidden", if self.hidden { "true" } else { "false" });
    }
}
