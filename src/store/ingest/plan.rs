//! Passes 1 and 2 of a commit: where each message of a batch stands
//! against what the store holds of its feed (the next one, a duplicate, a
//! fork or the rest of a rival history), and where the batch must stop.

use std::collections::HashMap;

use super::report::{IngestReport, Rejection};
use crate::feed::message::{FeedId, Message, SIGNED_LEN};
use crate::feed::validate::{self, DecodedContent, FeedHead, ValidationError};
use crate::store::Store;
use crate::store::error::StoreError;

/// A batch's messages and its first bad signature, if any.
pub(super) type Batch = (Vec<Message>, Option<(usize, ValidationError)>);

/// Where a message stands relative to what the store holds of its feed.
pub(super) enum Position {
    /// The next message of the feed, with its content as validation
    /// decoded it (`None` when dropped), so that indexing reads it no more.
    Next(Option<DecodedContent>),
    /// Already held.
    Duplicate,
    /// A different message at a held sequence, or the next sequence with
    /// a `previous` that is not our head: another history of the feed.
    /// `kept` is our message (at the same sequence, or our head).
    Fork { kept: Vec<u8> },
    /// A later message of a history that forked from ours earlier in this
    /// batch: not stored, not an error.
    Rival,
}

impl Position {
    /// `msg` against the header and signature of the message already held
    /// (or being appended) at its sequence.
    fn against(held_signed: &[u8], msg: &Message) -> Position {
        if held_signed == msg.signed_bytes() {
            Position::Duplicate
        } else {
            Position::Fork {
                kept: held_signed.to_vec(),
            }
        }
    }
}

impl Store {
    /// Passes 1 and 2 over one batch of a group: classifies each message
    /// of the batch's valid prefix against the heads the group's earlier
    /// appends leave (updating them), and finds where the batch must stop
    /// (the earliest invalid message, by signature or otherwise).
    pub(super) fn plan_batch(
        &self,
        b: usize,
        msgs: &[Message],
        bad_signature: &Option<(usize, ValidationError)>,
        batches: &[Batch],
        heads: &mut HashMap<FeedId, Option<FeedHead>>,
        appending: &mut HashMap<(FeedId, u64), (usize, usize)>,
    ) -> Result<(IngestReport, Vec<Position>), StoreError> {
        let mut report = IngestReport::default();
        let mut positions = Vec::with_capacity(msgs.len());
        // Nothing from the first bad signature on counts, so the group's
        // heads never run ahead of what is appended.
        let signed = bad_signature.as_ref().map_or(msgs.len(), |(i, _)| *i);
        // Feeds that forked in this batch: the rest of the other history
        // is dropped (it can never chain onto ours), not a reason to stop.
        let mut forked: std::collections::HashSet<FeedId> = Default::default();
        let signed_at = |(b, i): (usize, usize)| batches[b].0[i].signed_bytes();
        for (i, msg) in msgs.iter().enumerate().take(signed) {
            let author = msg.author();
            let head = match heads.get(&author) {
                Some(h) => *h,
                None => {
                    let h = self.head(&author)?;
                    heads.insert(author, h);
                    h
                }
            };
            let earlier = appending
                .get(&(author, msg.sequence()))
                .map(|&at| signed_at(at));
            let position = match self.position(head.as_ref(), earlier, msg)? {
                Ok(p) => p,
                // After a fork in this batch, a message that does not chain
                // onto our history belongs to the other one.
                Err(
                    ValidationError::BadSequence { .. } | ValidationError::WrongPrevious { .. },
                ) if forked.contains(&author) => Position::Rival,
                Err(error) => {
                    // The next sequence, chained to something other than
                    // our head: the peer holds another history. Our head
                    // message and this one prove it (its signature checked).
                    let diverges = matches!(error, ValidationError::WrongPrevious { .. })
                        && head.is_some_and(|h| h.sequence.checked_add(1) == Some(msg.sequence()));
                    let kept = match head {
                        Some(h) if diverges => match appending.get(&(author, h.sequence)) {
                            Some(&at) => Some(signed_at(at).to_vec()),
                            None => self.verified_signed(&author, h.sequence)?,
                        },
                        _ => None,
                    };
                    match kept {
                        Some(kept) => Position::Fork { kept },
                        None => {
                            report.rejected = Some(Rejection {
                                index: i,
                                author,
                                sequence: msg.sequence(),
                                error,
                            });
                            return Ok((report, positions));
                        }
                    }
                }
            };
            let position = match position {
                // One proof per feed and batch is enough.
                Position::Fork { .. } if !forked.insert(author) => Position::Rival,
                other => other,
            };
            if let Position::Next(_) = position {
                appending.insert((author, msg.sequence()), (b, i));
                heads.insert(
                    author,
                    Some(FeedHead {
                        sequence: msg.sequence(),
                        id: msg.id(),
                    }),
                );
            }
            positions.push(position);
        }
        if let Some((i, error)) = bad_signature
            && let Some(msg) = msgs.get(*i)
        {
            report.rejected = Some(Rejection {
                index: *i,
                author: msg.author(),
                sequence: msg.sequence(),
                error: error.clone(),
            });
        }
        Ok((report, positions))
    }

    /// Classifies a message against the feed's head without checking its
    /// signature (pass 2 does that for every position). `earlier` is the
    /// header and signature of the message at the same sequence that this
    /// batch appends, if any. The outer error is the database's; the inner
    /// one is the message's.
    fn position(
        &self,
        head: Option<&FeedHead>,
        earlier: Option<&[u8]>,
        msg: &Message,
    ) -> Result<Result<Position, ValidationError>, StoreError> {
        // Only a message that may be the next one is indexed: only its
        // content is worth decoding (the verdict is the same either way).
        let may_be_next = earlier.is_none() && head.is_none_or(|h| msg.sequence() > h.sequence);
        let content = if may_be_next {
            validate::check_standalone_decoded(msg)
        } else {
            validate::check_standalone(msg).map(|()| None)
        };
        let content = match content {
            Ok(content) => content,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(held_signed) = earlier {
            return Ok(Ok(Position::against(held_signed, msg)));
        }
        if let Some(h) = head
            && (1..=h.sequence).contains(&msg.sequence())
            && let Some(slot) = self.slot(&msg.author(), msg.sequence())?
        {
            let held = self.log.read_prefix(slot.location, SIGNED_LEN)?;
            let position = Position::against(&held, msg);
            if let Position::Fork { .. } = position {
                // Only a held message that verifies proves a fork: a copy
                // the disk damaged differs from the genuine one too.
                match self.feed_record(&msg.author(), msg.sequence(), slot) {
                    Err(StoreError::Damaged { reason, .. }) => {
                        tracing::warn!(feed = %msg.author(), sequence = msg.sequence(), %reason, "our copy of this message is damaged; `potluck fsck --repair` cuts it so that it is fetched again");
                        return Ok(Ok(Position::Duplicate));
                    }
                    other => {
                        other?;
                    }
                }
            }
            return Ok(Ok(position));
        }
        Ok(validate::check_chain(head, msg).map(|()| Position::Next(content)))
    }

    /// Header and signature of message `sequence` of `author`, when it is
    /// held and verifies against the index (a damaged copy proves nothing).
    fn verified_signed(
        &self,
        author: &FeedId,
        sequence: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(slot) = self.slot(author, sequence)? else {
            return Ok(None);
        };
        match self.feed_record(author, sequence, slot) {
            Ok(msg) => Ok(Some(msg.signed_bytes().to_vec())),
            Err(StoreError::Damaged { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
