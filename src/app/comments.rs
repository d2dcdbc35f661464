//! Talking about an event (docs/content.md, "Comments"): publishing
//! comments, replies, edits, deletions and the organizer's hiding with the
//! rules a person expects checked first, and reading the thread a page at
//! a time with what each person may see of it, and the links shared.

use std::collections::HashMap;

use serde::Serialize;

use crate::content::{
    Comment, CommentDelete, CommentEdit, CommentHide, CommentPolicy, KnownContent, MAX_SEEN,
    links_in,
};
use crate::feed::message::{FeedId, Message, MessageId};
use crate::store::index::{CommentState, EventState};

use super::{App, AppError, MIN_ID_PREFIX};

/// Comments per page of a thread unless asked otherwise.
pub const THREAD_PAGE: usize = 50;
/// Most comments one page may hold.
pub const MAX_THREAD_PAGE: usize = 500;
/// Most links a "links shared" list holds (the latest ones).
pub const MAX_LINKS_SHARED: usize = 200;
/// Most thread entries read to fill one page when the comment setting
/// leaves many out, so that no page reads a whole long thread.
const MAX_THREAD_SCAN: usize = 5_000;

/// What a thread shows of one comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommentShown {
    /// Its text, as written.
    Text,
    /// Its text, as its author last edited it.
    Edited,
    /// Removed by its author: no text.
    Removed,
    /// Hidden by the organizer: no text.
    Hidden,
}

/// One comment as a thread shows it.
#[derive(Clone, Debug, Serialize)]
pub struct CommentView {
    /// The comment's id.
    pub id: MessageId,
    /// Who wrote it.
    pub author: FeedId,
    /// Their display name, if known.
    pub name: Option<String>,
    /// The comment it answers, when that is a known comment on the same
    /// event; otherwise it is shown at the top level.
    pub reply_to: Option<MessageId>,
    /// Shown, edited, removed or hidden.
    pub shown: CommentShown,
    /// The text, unless removed or hidden. Plain: front ends escape it.
    pub text: Option<String>,
    /// The author's claimed time of writing, in ms since the epoch.
    pub timestamp: i64,
    /// The claimed time of the latest edit.
    pub edited: Option<i64>,
    /// Where it is in the thread, for the next page (see
    /// [`ThreadPage::after`]).
    #[serde(skip)]
    pub place: i64,
}

/// Where a page of a thread starts.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadPage {
    /// Start after this comment (the last of the page before); `None`:
    /// from the first.
    pub after: Option<MessageId>,
    /// Comments in the page, 1 to [`MAX_THREAD_PAGE`].
    pub limit: usize,
}

/// A page of an event's thread.
#[derive(Clone, Debug, Serialize)]
pub struct ThreadView {
    /// The event.
    pub event: MessageId,
    /// Its organizer.
    pub organizer: FeedId,
    /// Whose comments it shows.
    pub policy: CommentPolicy,
    /// The comments of this page, in thread order.
    pub comments: Vec<CommentView>,
    /// The last comment of the page when more follow: the next page
    /// starts after it.
    pub next_after: Option<MessageId>,
    /// Whether this node's person may comment (the setting lets them, and
    /// they have an identity).
    pub may_comment: bool,
}

/// A link from a comment of a thread.
#[derive(Clone, Debug, Serialize)]
pub struct SharedLink {
    /// The `http:` or `https:` link, as written.
    pub url: String,
    /// The comment it is in.
    pub comment: MessageId,
    /// Who shared it.
    pub author: FeedId,
    /// Their display name, if known.
    pub name: Option<String>,
}

/// Whose comments a thread shows: the organizer's always, others' as the
/// event's setting says (an `answered` thread looks each author's answer
/// up once).
struct Shown<'a> {
    app: &'a App,
    event: &'a EventState,
    answered: HashMap<FeedId, bool>,
}

impl<'a> Shown<'a> {
    fn new(app: &'a App, event: &'a EventState) -> Shown<'a> {
        Shown {
            app,
            event,
            answered: HashMap::new(),
        }
    }

    /// Whether the thread shows `author`'s comments.
    fn allows(&mut self, author: &FeedId) -> Result<bool, AppError> {
        if *author == self.event.author {
            return Ok(true);
        }
        match self.event.event.comments {
            CommentPolicy::Everyone => Ok(true),
            CommentPolicy::Nobody => Ok(false),
            CommentPolicy::Answered => {
                if let Some(&known) = self.answered.get(author) {
                    return Ok(known);
                }
                let answered = self.app.store.rsvp(&self.event.id, author)?.is_some();
                self.answered.insert(*author, answered);
                Ok(answered)
            }
        }
    }
}

impl App {
    /// The comment that a person typed, on `event`: a full comment id, or
    /// a unique prefix of at least [`MIN_ID_PREFIX`] characters after `%`
    /// among the event's comments.
    pub fn resolve_comment(&self, event: &MessageId, text: &str) -> Result<MessageId, AppError> {
        let trimmed = text.trim();
        let unknown = || AppError::UnknownComment(trimmed.into());
        if let Ok(id) = MessageId::parse(trimmed) {
            return match self.store.comment(&id)? {
                Some(state) if state.event == *event => Ok(id),
                _ => Err(unknown()),
            };
        }
        let body = trimmed.strip_prefix('%').unwrap_or(trimmed);
        if body.chars().count() < MIN_ID_PREFIX {
            return Err(AppError::PrefixTooShort(trimmed.into()));
        }
        let mut found = None;
        for item in self.store.thread(event, None, false) {
            let (_, id) = item?;
            let full = id.to_string();
            if full[1..].starts_with(body) {
                if found.is_some() {
                    return Err(AppError::Refused(format!(
                        "`{trimmed}` matches more than one comment; give more characters of the id"
                    )));
                }
                found = Some(id);
            }
        }
        found.ok_or_else(unknown)
    }

    /// Comments on `event` (optionally answering `reply`, a comment on the
    /// same event); the comment names the latest comments of the thread
    /// this node holds as seen, so that it comes after them everywhere.
    /// Refused when the event's setting would not show it.
    pub fn comment(
        &self,
        event: &MessageId,
        text: String,
        reply: Option<MessageId>,
        now_ms: i64,
    ) -> Result<Message, AppError> {
        let mut comment = Comment {
            event: *event,
            reply,
            seen: Vec::new(),
            text,
        };
        comment.validate()?;
        let me = self.feed_id()?;
        let state = self.event_state(event)?;
        if !Shown::new(self, &state).allows(&me)? {
            return Err(AppError::CommentsClosed {
                event: state.id,
                policy: state.event.comments,
            });
        }
        if let Some(reply) = reply {
            match self.store.comment(&reply)? {
                Some(parent) if parent.event == state.id => {}
                _ => return Err(AppError::UnknownComment(reply.to_string())),
            }
        }
        comment.seen = self
            .store
            .thread_latest(&state.id, MAX_SEEN)?
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        self.publish(&comment.to_content_bytes(), now_ms)
    }

    /// One's own comment, still there, for `verb` ("edit", "delete").
    fn own_comment(
        &self,
        comment: &MessageId,
        verb: &'static str,
    ) -> Result<CommentState, AppError> {
        let state = self
            .store
            .comment(comment)?
            .ok_or_else(|| AppError::UnknownComment(comment.to_string()))?;
        if state.author != self.feed_id()? {
            return Err(AppError::NotCommentAuthor {
                comment: *comment,
                verb,
            });
        }
        if state.deleted {
            return Err(AppError::CommentRemoved(*comment));
        }
        Ok(state)
    }

    /// Replaces the text of one's own comment.
    pub fn edit_comment(
        &self,
        comment: &MessageId,
        text: String,
        now_ms: i64,
    ) -> Result<Message, AppError> {
        let edit = CommentEdit {
            comment: *comment,
            text,
        };
        edit.validate()?;
        let state = self.own_comment(comment, "edit")?;
        if state.text == edit.text {
            return Err(AppError::NothingToChange("the comment already says this"));
        }
        self.publish(&edit.to_content_bytes(), now_ms)
    }

    /// Removes one's own comment, for good.
    pub fn delete_comment(&self, comment: &MessageId, now_ms: i64) -> Result<Message, AppError> {
        self.own_comment(comment, "delete")?;
        let delete = CommentDelete { comment: *comment };
        self.publish(&delete.to_content_bytes(), now_ms)
    }

    /// Hides a comment on an event we organize (`hidden`), or shows it
    /// again.
    pub fn hide_comment(
        &self,
        event: &MessageId,
        comment: &MessageId,
        hidden: bool,
        now_ms: i64,
    ) -> Result<Message, AppError> {
        let state = self.organized_event(event, "hide comments on")?;
        match self.store.comment(comment)? {
            Some(c) if c.event == state.id => {}
            _ => return Err(AppError::UnknownComment(comment.to_string())),
        }
        if self.store.is_hidden(&state.id, comment)? == hidden {
            return Err(AppError::NothingToChange(if hidden {
                "the comment is already hidden"
            } else {
                "the comment is not hidden"
            }));
        }
        let hide = CommentHide {
            event: state.id,
            comment: *comment,
            hidden,
        };
        self.publish(&hide.to_content_bytes(), now_ms)
    }

    /// A page of an event's thread, as the event's setting and the
    /// organizer's hiding let everyone see it. Reads the page's entries
    /// of the thread index, not the whole thread (more only when the
    /// setting leaves comments out, and at most `MAX_THREAD_SCAN`: a
    /// page that reaches that bound ends early, and the next one goes on
    /// from where it stopped).
    pub fn thread(&self, event: &MessageId, page: ThreadPage) -> Result<ThreadView, AppError> {
        let state = self.event_state(event)?;
        let limit = page.limit.clamp(1, MAX_THREAD_PAGE);
        let after = match page.after {
            Some(id) => Some(self.thread_place(&state.id, &id)?),
            None => None,
        };
        let mut shown = Shown::new(self, &state);
        let mut names: HashMap<FeedId, Option<String>> = HashMap::new();
        let mut comments = Vec::new();
        // Where the next page starts: after the last comment shown when
        // more follow, or after the last one read when the scan stopped
        // at its bound before the page was full.
        let mut next_after = None;
        let mut last_read = None;
        for (scanned, item) in self.store.thread(&state.id, after, false).enumerate() {
            let (place, id) = item?;
            if scanned == MAX_THREAD_SCAN {
                next_after = last_read;
                break;
            }
            last_read = Some(id);
            let Some(comment) = self.store.comment(&id)? else {
                continue;
            };
            if !shown.allows(&comment.author)? {
                continue;
            }
            if comments.len() == limit {
                next_after = comments.last().map(|c: &CommentView| c.id);
                break;
            }
            let view = self.comment_view(&state, id, place, comment, &mut names)?;
            comments.push(view);
        }
        let may_comment = match self.feed_id() {
            Ok(me) => shown.allows(&me)?,
            Err(_) => false,
        };
        Ok(ThreadView {
            event: state.id,
            organizer: state.author,
            policy: state.event.comments,
            comments,
            next_after,
            may_comment,
        })
    }

    /// The place in `event`'s thread of a comment on it.
    fn thread_place(
        &self,
        event: &MessageId,
        id: &MessageId,
    ) -> Result<(i64, MessageId), AppError> {
        match self.store.comment(id)? {
            Some(c) if c.event == *event => Ok((c.place, *id)),
            _ => Err(AppError::UnknownComment(id.to_string())),
        }
    }

    /// A comment as the thread of `event` shows it.
    fn comment_view(
        &self,
        event: &EventState,
        id: MessageId,
        place: i64,
        comment: CommentState,
        names: &mut HashMap<FeedId, Option<String>>,
    ) -> Result<CommentView, AppError> {
        let hidden = self.store.is_hidden(&event.id, &id)?;
        let shown = if comment.deleted {
            CommentShown::Removed
        } else if hidden {
            CommentShown::Hidden
        } else if comment.edited.is_some() {
            CommentShown::Edited
        } else {
            CommentShown::Text
        };
        let reply_to = match comment.reply {
            Some(parent) => self
                .store
                .comment(&parent)?
                .filter(|p| p.event == event.id)
                .map(|_| parent),
            None => None,
        };
        let name = match names.get(&comment.author) {
            Some(name) => name.clone(),
            None => {
                let name = self.name_of(&comment.author)?;
                names.insert(comment.author, name.clone());
                name
            }
        };
        Ok(CommentView {
            id,
            author: comment.author,
            name,
            reply_to,
            text: matches!(shown, CommentShown::Text | CommentShown::Edited)
                .then_some(comment.text),
            shown,
            timestamp: comment.timestamp,
            edited: comment.edited,
            place,
        })
    }

    /// The links shared in an event's thread, latest first: those in the
    /// comments the thread shows (not removed, not hidden), at most
    /// [`MAX_LINKS_SHARED`]. Reads only the comments that have links,
    /// the latest first, at most `MAX_THREAD_SCAN` of them.
    pub fn links_shared(&self, event: &MessageId) -> Result<Vec<SharedLink>, AppError> {
        let state = self.event_state(event)?;
        let with_links = self
            .store
            .thread(&state.id, None, true)
            .rev()
            .take(MAX_THREAD_SCAN);
        let mut shown = Shown::new(self, &state);
        let mut names: HashMap<FeedId, Option<String>> = HashMap::new();
        let mut links = Vec::new();
        for item in with_links {
            let (place, id) = item?;
            let Some(comment) = self.store.comment(&id)? else {
                continue;
            };
            if !shown.allows(&comment.author)? {
                continue;
            }
            let view = self.comment_view(&state, id, place, comment, &mut names)?;
            let Some(text) = &view.text else {
                continue;
            };
            for url in links_in(text) {
                if links.len() == MAX_LINKS_SHARED {
                    return Ok(links);
                }
                links.push(SharedLink {
                    url: url.to_owned(),
                    comment: id,
                    author: view.author,
                    name: view.name.clone(),
                });
            }
        }
        Ok(links)
    }
}

/// How long my comments are watched for replies (docs/reminders.md):
/// an event whose thread I last wrote in longer ago is not read for
/// them.
pub const REPLY_WATCH_MS: i64 = 30 * 24 * 60 * 60 * 1000;
/// Most messages of my own feed read back, from its head, to find my
/// comments (the first time; then only what I wrote since).
pub const MAX_OWN_SCAN: u64 = 2_000;
/// Most entries of one event's thread read for replies to me, the
/// latest first.
pub const MAX_REPLY_SCAN: usize = 500;

/// The events I commented on lately, with the time of my latest comment
/// on each, kept between reads so that my feed is read once and then
/// only from where it was read up to.
#[derive(Clone, Debug, Default)]
pub struct MyComments {
    /// My feed's sequence read up to.
    read_to: u64,
    /// Events I commented on, with my latest comment's claimed time.
    events: HashMap<MessageId, i64>,
}

impl MyComments {
    /// The events I commented on within [`REPLY_WATCH_MS`].
    pub fn events(&self) -> impl Iterator<Item = &MessageId> + '_ {
        self.events.keys()
    }
}

/// A reply by someone else to one of my comments, as the thread shows it
/// (not removed, not hidden, allowed by the event's setting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyToMe {
    /// The reply's id.
    pub id: MessageId,
    /// The event.
    pub event: MessageId,
    /// The event's title.
    pub title: String,
    /// Who replied.
    pub author: FeedId,
    /// Their name for people (`views::person`).
    pub name: String,
    /// The reply's text, as last edited.
    pub text: String,
    /// Its claimed time of writing, in ms since the epoch.
    pub timestamp: i64,
}

impl App {
    /// Replies by others to my comments, written since `since_ms`, on the
    /// events I commented on within `REPLY_WATCH_MS` of `now_ms`.
    /// Bounded: my feed is read back from its head only as far as
    /// `mine` had not read it (at most `MAX_OWN_SCAN` messages), and
    /// each such event's thread only from `since_ms` on (a comment's
    /// place is never before its claimed time), at most
    /// `MAX_REPLY_SCAN` entries, the latest first.
    pub fn replies_to_me(
        &self,
        mine: &mut MyComments,
        since_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<ReplyToMe>, AppError> {
        let me = self.feed_id()?;
        self.read_my_comments(&me, mine, now_ms)?;
        let mut replies = Vec::new();
        // Whether a comment replied to is mine (on the reply's event).
        let mut is_mine: HashMap<MessageId, bool> = HashMap::new();
        let mut names: HashMap<FeedId, String> = HashMap::new();
        for event in mine.events.keys() {
            let Some(state) = self.store.event(event)? else {
                continue;
            };
            let mut shown = Shown::new(self, &state);
            let from = (since_ms.saturating_sub(1), MessageId([0xFF; 32]));
            let entries = self
                .store
                .thread(event, Some(from), false)
                .rev()
                .take(MAX_REPLY_SCAN);
            for item in entries {
                let (_, id) = item?;
                let Some(comment) = self.store.comment(&id)? else {
                    continue;
                };
                let Some(parent) = comment.reply else {
                    continue;
                };
                if comment.author == me || comment.deleted || comment.timestamp < since_ms {
                    continue;
                }
                let parent_mine = match is_mine.get(&parent) {
                    Some(&known) => known,
                    None => {
                        let known = self
                            .store
                            .comment(&parent)?
                            .is_some_and(|p| p.author == me && p.event == comment.event);
                        is_mine.insert(parent, known);
                        known
                    }
                };
                if !parent_mine
                    || self.store.is_hidden(event, &id)?
                    || !shown.allows(&comment.author)?
                {
                    continue;
                }
                let name = match names.get(&comment.author) {
                    Some(name) => name.clone(),
                    None => {
                        let name = super::views::person(
                            self.name_of(&comment.author)?.as_deref(),
                            &comment.author,
                        );
                        names.insert(comment.author, name.clone());
                        name
                    }
                };
                replies.push(ReplyToMe {
                    id,
                    event: *event,
                    title: state.event.title.clone(),
                    author: comment.author,
                    name,
                    text: comment.text,
                    timestamp: comment.timestamp,
                });
            }
        }
        Ok(replies)
    }

    /// Adds to `mine` the comments I wrote since it last read my feed,
    /// reading back from the head (not before [`REPLY_WATCH_MS`] ago, at
    /// most [`MAX_OWN_SCAN`] messages), and forgets events I have not
    /// commented on within that time.
    fn read_my_comments(
        &self,
        me: &FeedId,
        mine: &mut MyComments,
        now_ms: i64,
    ) -> Result<(), AppError> {
        let horizon = now_ms.saturating_sub(REPLY_WATCH_MS);
        let Some(head) = self.store.head(me)? else {
            return Ok(());
        };
        let mut sequence = head.sequence;
        let mut read = 0;
        while sequence > mine.read_to && read < MAX_OWN_SCAN {
            let Some(msg) = self.store.feed_message(me, sequence)? else {
                break;
            };
            let at = msg.header().timestamp;
            if at < horizon {
                break;
            }
            if let Some(Ok(crate::content::Content::Comment(comment))) =
                msg.content().map(crate::content::parse)
            {
                let latest = mine.events.entry(comment.event).or_insert(at);
                *latest = (*latest).max(at);
            }
            sequence -= 1;
            read += 1;
        }
        mine.read_to = head.sequence;
        mine.events.retain(|_, at| *at >= horizon);
        Ok(())
    }
}

#[cfg(test)]
mod reply_tests {
    use crate::app::{Access, App, Past, now_ms};
    use crate::content::{Event, EventTime};
    use crate::feed::message::Message;
    use crate::home::Home;

    use super::MyComments;

    fn open() -> (tempfile::TempDir, App) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let app = App::open(&Home::at(dir.path().join("home")), Access::Create).expect("opened");
        (dir, app)
    }

    /// `from`'s feed, from `sequence` on, into `to`.
    fn sync(from: &App, to: &App, sequence: u64) {
        let feed = from.feed_id().expect("an identity");
        let msgs: Vec<Message> = from
            .store
            .feed_messages(&feed, sequence)
            .collect::<Result<_, _>>()
            .expect("its feed");
        to.ingest(msgs).expect("ingested");
    }

    #[test]
    fn only_others_recent_shown_replies_to_my_comments_are_read() {
        let (_d1, me) = open();
        let (_d2, bea) = open();
        let now = now_ms();
        let day = 24 * 60 * 60 * 1000;
        let start = EventTime::parse("start", "2099-01-26T18:00:00Z").expect("a time");
        let event = me
            .announce(&Event::new("Soup night", start), Past::Refuse, now)
            .expect("announced")
            .id();
        let mine = me
            .comment(&event, "Who brings bread?".into(), None, now)
            .expect("commented")
            .id();
        sync(&me, &bea, 1);
        let reply = |text: &str, at: i64| {
            bea.comment(&event, text.into(), Some(mine), at)
                .expect("replied")
                .id()
        };
        let old = reply("two days ago", now - 2 * day);
        let kept = reply("I do", now);
        let removed = reply("removed", now);
        let hidden = reply("hidden", now);
        bea.comment(&event, "not a reply".into(), None, now)
            .expect("commented");
        bea.delete_comment(&removed, now).expect("deleted");
        sync(&bea, &me, 1);
        me.hide_comment(&event, &hidden, true, now).expect("hidden");
        me.comment(&event, "my own reply".into(), Some(mine), now)
            .expect("replied to myself");

        let mut watched = MyComments::default();
        let replies = me
            .replies_to_me(&mut watched, now - day, now)
            .expect("read");
        let ids: Vec<_> = replies.iter().map(|r| r.id).collect();
        assert_eq!(ids, [kept], "{replies:?}");
        assert_ne!(old, kept);
        assert_eq!(replies[0].title, "Soup night");
        assert_eq!(replies[0].text, "I do");
        assert_eq!(watched.events().collect::<Vec<_>>(), [&event]);
        // Read again: my feed is not read back again, the reply still is.
        let again = me
            .replies_to_me(&mut watched, now - day, now)
            .expect("read");
        assert_eq!(again.len(), 1);
        // Thirty days after my last comment, the event is not watched.
        let later = now + super::REPLY_WATCH_MS + day;
        let none = me
            .replies_to_me(&mut watched, now - day, later)
            .expect("read");
        assert!(none.is_empty() && watched.events().next().is_none());
    }
}
