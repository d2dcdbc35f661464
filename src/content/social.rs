//! What an author says about themselves and their relations to others:
//! `about` (a name) and `contact` (follow, block).

use super::json::{JsonWriter, Object, to_bool, to_feed_id, to_string};
use super::{ContentError, KnownContent, check_chars};
use crate::feed::message::FeedId;

/// Longest name in an `about`, in Unicode scalar values.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest description in an `about`, in Unicode scalar values.
pub const MAX_ABOUT_DESCRIPTION_CHARS: usize = 1000;

/// The author's own name and description, `{"type":"about", ...}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct About {
    /// 1 to [`MAX_NAME_CHARS`] characters, not only white space.
    pub name: String,
    /// At most [`MAX_ABOUT_DESCRIPTION_CHARS`] characters.
    pub description: Option<String>,
}

/// The author's relation to another feed, `{"type":"contact", ...}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// The other feed.
    pub contact: FeedId,
    /// Whether the author follows it (absent = false).
    pub following: bool,
    /// Whether the author blocks it (absent = false).
    pub blocking: bool,
}

impl KnownContent for About {
    const TYPE: &'static str = "about";

    fn from_object(obj: &Object) -> Result<About, ContentError> {
        Ok(About {
            name: obj.required("name", to_string)?,
            description: obj.optional("description", to_string)?,
        })
    }

    fn check_fields(&self) -> Result<(), ContentError> {
        if self.name.trim().is_empty() {
            return Err(ContentError::NameEmpty);
        }
        check_chars(&self.name, MAX_NAME_CHARS, |chars| {
            ContentError::NameTooLong { chars }
        })?;
        if let Some(description) = &self.description {
            check_chars(description, MAX_ABOUT_DESCRIPTION_CHARS, |chars| {
                ContentError::AboutDescriptionTooLong { chars }
            })?;
        }
        Ok(())
    }

    fn write_fields(&self, w: &mut JsonWriter) {
        w.str("name", &self.name);
        w.opt_str("description", self.description.as_deref());
    }
}

/// Every constraint of a contact is carried by its field types, so the
/// default [`KnownContent::check_fields`] holds.
impl KnownContent for Contact {
    const TYPE: &'static str = "contact";

    fn from_object(obj: &Object) -> Result<Contact, ContentError> {
        Ok(Contact {
            contact: obj.required("contact", to_feed_id)?,
            following: obj
                .optional("following", to_bool("following"))?
                .unwrap_or(false),
            blocking: obj
                .optional("blocking", to_bool("blocking"))?
                .unwrap_or(false),
        })
    }

    /// Both booleans are always written.
    fn write_fields(&self, w: &mut JsonWriter) {
        w.str("contact", &self.contact.to_string());
        w.raw("following", if self.following { "true" } else { "false" });
        w.raw("blocking", if self.blocking { "true" } else { "false" });
    }
}
