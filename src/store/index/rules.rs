//! The indexing rules: what each kind of message changes in the indexes
//! ([`apply`], or [`apply_parsed`] when the content is already parsed).
//!
//! Only an event's organizer may change it (an update, a cancel) or decide
//! on the requests to it (an admission); [`by_organizer`] is that one
//! check for all three.

use super::codec::{read, write};
use super::comments;
use super::keys::{
    about_key, admission_key, answered_key, contact_key, event_key, instant_bytes, prefix,
    rsvp_key, tally_key, time_key,
};
use super::kv::Kv;
use super::state::{
    AboutState, AdmissionState, AnsweredState, ContactState, EventState, EventStatus, RsvpState,
    Tally,
};
use crate::content::{
    self, About, Admission, Contact, Content, Decision, Event, EventUpdate, Rsvp,
};
use crate::feed::message::{FeedId, Message, MessageId};

/// What indexing did with a message (for logs and reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Indexed {
    /// The message changed an index; `event` is the event it concerns.
    Applied {
        /// The event whose state, RSVPs or admissions changed.
        event: Option<MessageId>,
        /// For a contact message: the feed it is about and the author's
        /// new stance towards it.
        contact: Option<(FeedId, ContactState)>,
    },
    /// Valid message, but nothing to index: unknown type, dropped content,
    /// or an update by someone other than the organizer.
    Ignored(&'static str),
    /// The content has a known type but invalid fields.
    Invalid(content::ContentError),
}

impl Indexed {
    /// Applied, changing `event`'s state, RSVPs, admissions or thread.
    pub(super) fn for_event(event: MessageId) -> Indexed {
        Indexed::Applied {
            event: Some(event),
            contact: None,
        }
    }
}

/// Indexes one message, which must be the next of its feed. Never fails
/// on what the message says; only on a damaged index.
pub fn apply<K: Kv>(kv: &mut K, msg: &Message) -> Result<Indexed, K::Error> {
    apply_parsed(kv, msg, msg.content().map(content::parse))
}

/// [`apply`] with the message's content already parsed: `parsed` is
/// [`content::parse`] of its content (as the ingest path has it from
/// validation), `None` when the content was dropped.
pub fn apply_parsed<K: Kv>(
    kv: &mut K,
    msg: &Message,
    parsed: Option<Result<Content, content::ContentError>>,
) -> Result<Indexed, K::Error> {
    let parsed = match parsed {
        None => return Ok(Indexed::Ignored("content dropped")),
        Some(Ok(c)) => c,
        Some(Err(e)) => return Ok(Indexed::Invalid(e)),
    };
    let author = msg.author();
    match parsed {
        Content::Event(event) => Ok(announce(kv, msg, event)),
        Content::EventUpdate(update) => by_organizer(
            kv,
            update.event,
            &author,
            OrganizerAct::Update,
            |kv, state| update_event(kv, state, &update),
        ),
        Content::EventCancel(cancel) => by_organizer(
            kv,
            cancel.event,
            &author,
            OrganizerAct::Cancel,
            |kv, state| Ok(cancel_event(kv, state, cancel.reason)),
        ),
        Content::Admission(admission) => by_organizer(
            kv,
            admission.event,
            &author,
            OrganizerAct::Admission,
            |kv, _| admit(kv, msg, admission),
        ),
        Content::Rsvp(rsvp) => answer(kv, msg, rsvp),
        Content::About(about) => Ok(rename(kv, &author, about)),
        Content::Contact(contact) => Ok(set_contact(kv, &author, contact)),
        Content::Comment(comment) => comments::comment(kv, msg, comment),
        Content::CommentEdit(edit) => comments::edit(kv, msg, edit),
        Content::CommentDelete(delete) => comments::delete(kv, msg, delete),
        Content::CommentHide(hide) => comments::hide(kv, msg, hide),
        Content::Unknown { .. } => Ok(Indexed::Ignored("unknown content type")),
    }
}

/// A new event: its state and its time entries.
fn announce<K: Kv>(kv: &mut K, msg: &Message, event: Event) -> Indexed {
    let state = EventState {
        id: msg.id(),
        author: msg.author(),
        event,
        revision: 0,
        status: EventStatus::Scheduled,
        cancel_reason: None,
        plan_revision: 0,
    };
    put_time_entries(kv, &state);
    write(kv, event_key(&state.id), &state);
    Indexed::for_event(state.id)
}

/// A person's answer replaces their earlier one, in the entry and in the
/// event's tally.
fn answer<K: Kv>(kv: &mut K, msg: &Message, rsvp: Rsvp) -> Result<Indexed, K::Error> {
    let entry = RsvpState {
        status: rsvp.status,
        guests: rsvp.guests,
        note: rsvp.note,
        sequence: msg.sequence(),
        message: msg.id(),
        answered_revision: rsvp.revision,
        timestamp: msg.header().timestamp,
    };
    let rkey = rsvp_key(&rsvp.event, &msg.author());
    // The earlier answer is read from the author's own answers (a group
    // the author's run of messages shares), never from the event's.
    let akey = answered_key(&msg.author(), &rsvp.event);
    let tkey = tally_key(&rsvp.event);
    let mut tally = read::<K, Tally>(kv, &tkey)?.unwrap_or_default();
    if let Some(old) = read::<K, AnsweredState>(kv, &akey)? {
        tally.count(old, -1);
    }
    tally.add(&entry, 1);
    write(kv, akey, &AnsweredState::from(&entry));
    write(kv, rkey, &entry);
    write(kv, tkey, &tally);
    Ok(Indexed::for_event(rsvp.event))
}

/// What a person says about themselves replaces what they said before.
fn rename<K: Kv>(kv: &mut K, author: &FeedId, about: About) -> Indexed {
    let state = AboutState {
        name: about.name,
        description: about.description,
    };
    write(kv, about_key(author), &state);
    Indexed::Applied {
        event: None,
        contact: None,
    }
}

/// A person's stance towards a feed replaces their earlier one.
fn set_contact<K: Kv>(kv: &mut K, author: &FeedId, contact: Contact) -> Indexed {
    let state = ContactState {
        following: contact.following,
        blocking: contact.blocking,
    };
    write(kv, contact_key(author, &contact.contact), &state);
    Indexed::Applied {
        event: None,
        contact: Some((contact.contact, state)),
    }
}

/// Which of an organizer's acts a message is, to say why one is ignored.
#[derive(Clone, Copy)]
pub(super) enum OrganizerAct {
    Update,
    Cancel,
    Admission,
    Hide,
}

impl OrganizerAct {
    /// Why this act is ignored when its event is not known.
    fn of_unknown_event(self) -> &'static str {
        match self {
            OrganizerAct::Update => "update of an unknown event",
            OrganizerAct::Cancel => "cancel of an unknown event",
            OrganizerAct::Admission => "admission for an unknown event",
            OrganizerAct::Hide => "hiding on an unknown event",
        }
    }

    /// Why this act is ignored when someone else organizes its event.
    fn not_by_organizer(self) -> &'static str {
        match self {
            OrganizerAct::Update => "update by someone other than the organizer",
            OrganizerAct::Cancel => "cancel by someone other than the organizer",
            OrganizerAct::Admission => "admission by someone other than the organizer",
            OrganizerAct::Hide => "hiding by someone other than the organizer",
        }
    }
}

/// The one organizer check: runs `then` on the state of `event` if
/// `author` organizes it; otherwise `act` is ignored, saying why.
pub(super) fn by_organizer<K: Kv>(
    kv: &mut K,
    event: MessageId,
    author: &FeedId,
    act: OrganizerAct,
    then: impl FnOnce(&mut K, EventState) -> Result<Indexed, K::Error>,
) -> Result<Indexed, K::Error> {
    match read::<K, EventState>(kv, &event_key(&event))? {
        None => Ok(Indexed::Ignored(act.of_unknown_event())),
        Some(state) if state.author != *author => Ok(Indexed::Ignored(act.not_by_organizer())),
        Some(state) => then(kv, state),
    }
}

/// The organizer's update merged into the event; a change of start, end
/// or location starts a new plan, which earlier answers did not answer.
fn update_event<K: Kv>(
    kv: &mut K,
    mut state: EventState,
    update: &EventUpdate,
) -> Result<Indexed, K::Error> {
    let merged = match state.event.apply(update) {
        Ok(m) => m,
        Err(e) => return Ok(Indexed::Invalid(e)),
    };
    delete_time_entries(kv, &state);
    let plan_changed = merged.start != state.event.start
        || merged.end != state.event.end
        || merged.location != state.event.location;
    state.event = merged;
    state.revision = state.revision.saturating_add(1);
    if plan_changed {
        state.plan_revision = state.revision;
    }
    put_time_entries(kv, &state);
    write(kv, event_key(&state.id), &state);
    Ok(Indexed::for_event(state.id))
}

/// The organizer cancelled the event, with the reason given.
fn cancel_event<K: Kv>(kv: &mut K, mut state: EventState, reason: Option<String>) -> Indexed {
    state.status = EventStatus::Cancelled;
    state.cancel_reason = reason;
    state.revision = state.revision.saturating_add(1);
    write(kv, event_key(&state.id), &state);
    Indexed::for_event(state.id)
}

/// The organizer's decision about one person's request (in `msg`, whose
/// sequence orders the waitlist) replaces the one before; waitlisted again
/// (for a new answer), the person keeps their place in line.
fn admit<K: Kv>(kv: &mut K, msg: &Message, admission: Admission) -> Result<Indexed, K::Error> {
    let key = admission_key(&admission.event, &admission.author);
    let since = match read::<K, AdmissionState>(kv, &key)? {
        Some(old)
            if old.decision == Decision::Waitlisted
                && admission.decision == Decision::Waitlisted =>
        {
            old.sequence
        }
        _ => msg.sequence(),
    };
    let entry = AdmissionState {
        rsvp: admission.rsvp,
        decision: admission.decision,
        sequence: since,
    };
    write(kv, key, &entry);
    Ok(Indexed::for_event(admission.event))
}

/// Events lasting longer than this (a day) are also in the
/// [`prefix::LONG_EVENT`] index. An event that started before now minus
/// this and is still going on must be one of them.
pub const LONG_EVENT_MS: i64 = 24 * 60 * 60 * 1000;

/// The time-index entries of an event: by start and by finish, and, for a
/// long event, in the long-event index.
fn time_entries(state: &EventState) -> Vec<(Vec<u8>, [u8; 8])> {
    let (start, finish) = (state.event.start_ms(), state.event.finish_ms());
    let mut entries = vec![
        (
            time_key(prefix::EVENT_BY_START, start, &state.id),
            instant_bytes(finish),
        ),
        (
            time_key(prefix::EVENT_BY_FINISH, finish, &state.id),
            instant_bytes(start),
        ),
    ];
    if finish.saturating_sub(start) > LONG_EVENT_MS {
        entries.push((
            time_key(prefix::LONG_EVENT, start, &state.id),
            instant_bytes(finish),
        ));
    }
    entries
}

fn put_time_entries<K: Kv>(kv: &mut K, state: &EventState) {
    for (key, value) in time_entries(state) {
        kv.put(key, value.to_vec());
    }
}

fn delete_time_entries<K: Kv>(kv: &mut K, state: &EventState) {
    for (key, _) in time_entries(state) {
        kv.delete(key);
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::content::{KnownContent, RsvpStatus};
    use crate::store::index::codec::RSVP_FIXED_LEN;
    use crate::store::index::{IndexValue, MemKv};

    /// The content of every message in the test vectors, valid or not,
    /// as bytes (what follows the header and signature).
    fn vector_contents() -> Vec<Vec<u8>> {
        let mut contents = Vec::new();
        for text in [
            include_str!("../../../tests/vectors/messages.json"),
            include_str!("../../../tests/vectors/invalid.json"),
        ] {
            let vectors: Vec<serde_json::Value> = serde_json::from_str(text).unwrap();
            for v in vectors {
                let bytes = hex::decode(v["message_hex"].as_str().unwrap()).unwrap();
                if let Some(content) = bytes.get(crate::feed::message::SIGNED_LEN..) {
                    contents.push(content.to_vec());
                }
                if let Some(content) = v["content"].as_str() {
                    contents.push(content.as_bytes().to_vec());
                }
            }
        }
        contents
    }

    /// Content of every known type about `event` (by `organizer`), valid
    /// and with invalid fields, as the vectors do not hold every type.
    fn contents_about(event: MessageId, organizer: FeedId) -> Vec<Vec<u8>> {
        [
            format!(r#"{{"type":"rsvp","event":"{event}","status":"going","guests":2}}"#),
            format!(r#"{{"type":"rsvp","event":"{event}","status":"perhaps"}}"#),
            format!(r#"{{"type":"event-update","event":"{event}","title":"Stew","end":null}}"#),
            format!(r#"{{"type":"event-update","event":"{event}","start":"soon"}}"#),
            format!(
                r#"{{"type":"admission","event":"{event}","author":"{organizer}","rsvp":"{event}","decision":"waitlisted"}}"#
            ),
            format!(r#"{{"type":"contact","contact":"{organizer}","following":true}}"#),
            r#"{"type":"about","name":"Bo","n":1e400}"#.to_owned(),
            format!(r#"{{"type":"comment","event":"{event}","text":"hi"}}"#),
            format!(r#"{{"type":"comment-edit","comment":"{event}","text":"hello"}}"#),
            format!(r#"{{"type":"comment-delete","comment":"{event}"}}"#),
            format!(r#"{{"type":"comment-hide","event":"{event}","comment":"{event}"}}"#),
            format!(r#"{{"type":"event-cancel","event":"{event}","reason":"rain"}}"#),
        ]
        .map(String::into_bytes)
        .to_vec()
    }

    /// The ingest path (content checked and decoded once, then parsed
    /// from the decoded object) gives what validating and then indexing
    /// the bytes gave: the same verdict, the same [`Indexed`], the same
    /// index entries. Two feeds, so that the organizer's acts are indexed
    /// both by the organizer and by someone else.
    #[test]
    fn indexing_decoded_content_is_indexing_the_bytes() {
        use crate::feed::validate::{check_standalone, check_standalone_decoded};
        let keys = [1u8, 2].map(|n| SigningKey::from_bytes(&[n; 32]));
        let mut heads = [(0u64, MessageId::default()); 2];
        let (mut old_kv, mut new_kv) = (MemKv::default(), MemKv::default());
        let mut indexed = 0;
        let mut step = |who: usize, content: &[u8], dropped: bool| -> Option<MessageId> {
            let (sequence, previous) = heads[who];
            let msg = Message::sign(&keys[who], sequence + 1, previous, 1000, content).ok()?;
            let msg = if dropped { msg.without_content() } else { msg };
            let decoded = check_standalone_decoded(&msg);
            assert_eq!(
                decoded.as_ref().map(|_| ()).map_err(Clone::clone),
                check_standalone(&msg),
                "{}",
                String::from_utf8_lossy(content)
            );
            let decoded = decoded.ok()?;
            let old = apply(&mut old_kv, &msg).unwrap();
            let new = apply_parsed(&mut new_kv, &msg, decoded.map(content::parse_decoded)).unwrap();
            assert_eq!(old, new, "{}", String::from_utf8_lossy(content));
            assert_eq!(old_kv, new_kv, "{}", String::from_utf8_lossy(content));
            heads[who] = (sequence + 1, msg.id());
            indexed += 1;
            Some(msg.id())
        };
        for content in vector_contents() {
            step(0, &content, false);
            step(1, &content, true);
        }
        let event = br#"{"type":"event","title":"Soup","start":"2027-01-10T18:00:00+01:00"}"#;
        let event = step(0, event, false).unwrap();
        let organizer = FeedId(keys[0].verifying_key().to_bytes());
        for content in contents_about(event, organizer) {
            step(1, &content, false);
            step(0, &content, false);
        }
        assert!(indexed > 60, "only {indexed} messages were indexed");
        let kinds: std::collections::BTreeSet<String> = old_kv
            .0
            .keys()
            .map(|k| k[..1].escape_ascii().to_string())
            .collect();
        assert!(
            kinds.len() >= 5,
            "too few kinds of index entries: {kinds:?}"
        );
    }

    #[test]
    fn indexing_rsvps_writes_binary_entries_that_read_back() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let author = FeedId(key.verifying_key().to_bytes());
        let event = MessageId([8; 32]);
        let rsvp = |status, note: Option<&str>| Rsvp {
            event,
            status,
            guests: 3,
            note: note.map(str::to_owned),
            revision: Some(2),
        };
        let first = Message::sign(
            &key,
            1,
            MessageId::default(),
            1000,
            &rsvp(RsvpStatus::Going, Some("soup")).to_content_bytes(),
        )
        .unwrap();
        let second = Message::sign(
            &key,
            2,
            first.id(),
            2000,
            &rsvp(RsvpStatus::Maybe, None).to_content_bytes(),
        )
        .unwrap();
        let mut kv = MemKv::default();
        apply(&mut kv, &first).unwrap();
        let entry = read::<MemKv, RsvpState>(&kv, &rsvp_key(&event, &author))
            .unwrap()
            .unwrap();
        assert_eq!(entry.note.as_deref(), Some("soup"));
        assert_eq!(entry.message, first.id());
        let tally: Tally = read(&kv, &tally_key(&event)).unwrap().unwrap();
        assert_eq!((tally.going, tally.headcount), (1, 4));

        apply(&mut kv, &second).unwrap();
        let stored = kv.get(&rsvp_key(&event, &author)).unwrap().unwrap();
        assert_eq!(stored.len(), RSVP_FIXED_LEN);
        let entry = RsvpState::decode(&stored).unwrap();
        assert_eq!(
            entry,
            RsvpState {
                status: RsvpStatus::Maybe,
                guests: 3,
                note: None,
                sequence: 2,
                message: second.id(),
                answered_revision: Some(2),
                timestamp: 2000,
            }
        );
        let tally: Tally = read(&kv, &tally_key(&event)).unwrap().unwrap();
        assert_eq!(
            tally,
            Tally {
                going: 0,
                maybe: 1,
                not_going: 0,
                headcount: 0
            }
        );
    }
}
