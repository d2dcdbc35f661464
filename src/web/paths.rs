//! Where an event is in the page's addresses.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::feed::message::MessageId;

/// The key of an event in the page's addresses: its 32 id bytes in
/// unpadded base64url (a `MessageId`'s text holds `/` and `+`).
pub fn event_key(id: &MessageId) -> String {
    URL_SAFE_NO_PAD.encode(id.0)
}

/// The event id in a page address made by [`event_key`].
pub fn parse_event_key(key: &str) -> Option<MessageId> {
    if key.len() != 43 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(key).ok()?;
    Some(MessageId(bytes.try_into().ok()?))
}

/// The page address of an event.
pub fn event_path(id: &MessageId) -> String {
    format!("/e/{}", event_key(id))
}
