//! A guest who answers from a browser, signed here as `feed.js` signs in
//! the browser (tests/browser_sign.rs checks that the two agree byte for
//! byte): a key and the head of the feed it signed so far. Used by
//! tests/web_answer.rs and, through `#[path]`, by benches/public_web.rs.
//! Depends on the library alone.

use ed25519_dalek::SigningKey;
use potluck::content::{About, KnownContent, Rsvp, RsvpStatus};
use potluck::feed::message::{FeedId, Message, MessageId};

/// A guest's key and what it signed so far, as `feed.js` keeps them.
pub struct Guest {
    pub key: SigningKey,
    pub head: Option<Message>,
}

impl Guest {
    /// The guest whose key's seed is 32 bytes of `seed`.
    pub fn new(seed: u8) -> Guest {
        Guest::from_seed([seed; 32])
    }

    /// The guest whose key's seed is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Guest {
        Guest {
            key: SigningKey::from_bytes(&seed),
            head: None,
        }
    }

    /// Its feed id, `@….ed25519`.
    pub fn feed(&self) -> String {
        self.feed_id().to_string()
    }

    /// Its feed.
    pub fn feed_id(&self) -> FeedId {
        FeedId(self.key.verifying_key().to_bytes())
    }

    /// Signs `content` as the next message of the feed.
    pub fn sign(&mut self, content: &[u8]) -> Message {
        let (sequence, previous) = match &self.head {
            Some(h) => (h.sequence() + 1, h.id()),
            None => (1, MessageId::default()),
        };
        let msg = Message::sign(&self.key, sequence, previous, 1_800_000_000_000, content)
            .expect("signed");
        self.head = Some(msg.clone());
        msg
    }

    /// Signs the guest's name, an `about`.
    pub fn about(&mut self, name: &str) -> Message {
        let about = About {
            name: name.into(),
            description: None,
        };
        self.sign(&about.to_content_bytes())
    }

    /// Signs an answer to `event` (an event id, `%….sha256`).
    pub fn rsvp(&mut self, event: &str, status: RsvpStatus) -> Message {
        let rsvp = Rsvp {
            event: MessageId::parse(event).expect("an event id"),
            status,
            guests: 0,
            note: None,
            revision: Some(0),
        };
        self.sign(&rsvp.to_content_bytes())
    }
}

/// The body `feed.js` posts to `/e/{key}/answer`: `{"messages":
/// ["<base64>", …]}`.
pub fn answer_body(msgs: &[&Message]) -> String {
    use base64::Engine as _;
    let encoded: Vec<String> = msgs
        .iter()
        .map(|m| base64::engine::general_purpose::STANDARD.encode(m.bytes()))
        .collect();
    serde_json::json!({ "messages": encoded }).to_string()
}
