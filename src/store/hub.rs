//! What a hub keeps about its members: who is a member, and the member
//! codes it handed out (each usable a number of times, until a deadline).
//! Both are data, not advice: written and flushed before the hub answers,
//! so a member the hub welcomed stays one after a crash, and a code used
//! up stays used up.

use serde::{Deserialize, Serialize};

use super::Store;
use super::error::StoreError;
use super::index::compose_key;
use super::keys::{MEMBER, MEMBER_CODE, feed_key, feed_of_key};
use crate::feed::message::FeedId;
use crate::proto::wire::TOKEN_LEN;

/// A hub's member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The member's feed.
    pub feed: FeedId,
    /// When it joined (ms since the Unix epoch).
    pub since_ms: i64,
    /// The note of the code it joined with, if any.
    pub note: Option<String>,
    /// Bytes of messages its connections made the hub store.
    #[serde(default)]
    pub stored_bytes: u64,
    /// When the operator removed it (then it is no member, and the hub
    /// refuses its connections until it is admitted again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_ms: Option<i64>,
}

/// A member code the hub made: the hub keeps only the hash of its
/// secret, so the store does not hold working codes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberCode {
    /// Uses left.
    pub uses_left: u32,
    /// When the code stops working (ms since the Unix epoch).
    pub expires_ms: i64,
    /// When it was made.
    pub created_ms: i64,
    /// The operator's note ("for Ana"), shown in the member list.
    pub note: Option<String>,
}

/// Why a member code was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redeemed {
    /// The feed is a member now (or was already).
    Member,
    /// No such code, or it was used up, or it expired.
    Refused,
}

/// The store key of a code: a hash of its secret, so that a copy of the
/// store does not give anyone a working code.
fn code_key(secret: &[u8; TOKEN_LEN]) -> Vec<u8> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"potluck-member-code-v1:");
    hasher.update(secret);
    compose_key(MEMBER_CODE, &[&hasher.finalize().as_bytes()[..16]])
}

fn corrupt(key: &[u8], e: impl std::fmt::Display) -> StoreError {
    StoreError::CorruptLog {
        key: hex::encode(key),
        reason: e.to_string(),
    }
}

impl Store {
    /// Saves a new member code under its secret's hash, durably.
    pub fn put_member_code(
        &self,
        secret: &[u8; TOKEN_LEN],
        code: &MemberCode,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(code).map_err(|e| corrupt(b"C", e))?;
        self.tree.insert(code_key(secret), bytes)?;
        self.flush()
    }

    /// Takes one use of the code `secret` for `feed` and makes it a
    /// member, durably, unless the code is unknown, used up or expired.
    /// A feed that is already a member stays one and uses nothing.
    pub fn redeem_member_code(
        &self,
        secret: &[u8; TOKEN_LEN],
        feed: FeedId,
        now_ms: i64,
    ) -> Result<Redeemed, StoreError> {
        let key = code_key(secret);
        // One redemption at a time: two joiners must not both take the
        // last use of a code.
        let _one = self.hub_lock.lock().unwrap_or_else(|p| p.into_inner());
        // A member stays one, whatever the code (joining twice with a
        // code used up by the first join works).
        if self.member(&feed)?.is_some() {
            return Ok(Redeemed::Member);
        }
        let Some(bytes) = self.tree.get(&key)? else {
            return Ok(Redeemed::Refused);
        };
        let mut code: MemberCode = serde_json::from_slice(&bytes).map_err(|e| corrupt(&key, e))?;
        if code.uses_left == 0 || code.expires_ms <= now_ms {
            return Ok(Redeemed::Refused);
        }
        // A removed member comes back only if the operator admits it.
        if self.was_removed(&feed)? {
            return Ok(Redeemed::Refused);
        }
        code.uses_left -= 1;
        let member = Member {
            feed,
            since_ms: now_ms,
            note: code.note.clone(),
            stored_bytes: 0,
            removed_ms: None,
        };
        let mut batch = sled::Batch::default();
        if code.uses_left == 0 {
            batch.remove(key);
        } else {
            let bytes = serde_json::to_vec(&code).map_err(|e| corrupt(&key, e))?;
            batch.insert(key, bytes);
        }
        let bytes = serde_json::to_vec(&member).map_err(|e| corrupt(b"G", e))?;
        batch.insert(feed_key(MEMBER, &feed), bytes);
        self.tree.apply_batch(batch)?;
        self.flush()?;
        Ok(Redeemed::Member)
    }

    /// Makes `member.feed` a member without a code (the operator's `hub
    /// admit`), durably. A feed with a record already (a member, or one
    /// removed) keeps it, what it stored included; only its removal ends.
    pub fn add_member(&self, member: &Member) -> Result<(), StoreError> {
        let _one = self.hub_lock.lock().unwrap_or_else(|p| p.into_inner());
        let record = match self.member_record(&member.feed)? {
            Some(old) => Member {
                removed_ms: None,
                note: member.note.clone().or(old.note.clone()),
                ..old
            },
            None => member.clone(),
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| corrupt(b"G", e))?;
        self.tree.insert(feed_key(MEMBER, &member.feed), bytes)?;
        self.flush()
    }

    /// Adds `bytes` to what `feed`'s connections made the hub store (not
    /// flushed: a crash loses only some counting). Nothing for a feed
    /// that is no member (any more).
    pub fn add_member_bytes(&self, feed: &FeedId, bytes: u64) -> Result<(), StoreError> {
        let _one = self.hub_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut member) = self.member(feed)? {
            member.stored_bytes = member.stored_bytes.saturating_add(bytes);
            let bytes = serde_json::to_vec(&member).map_err(|e| corrupt(b"G", e))?;
            self.tree.insert(feed_key(MEMBER, feed), bytes)?;
        }
        Ok(())
    }

    /// Ends `feed`'s membership, durably, and remembers that the operator
    /// ended it ([`Store::was_removed`]). Returns whether it was a member.
    pub fn remove_member(&self, feed: &FeedId, now_ms: i64) -> Result<bool, StoreError> {
        let _one = self.hub_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut member) = self.member(feed)? else {
            return Ok(false);
        };
        member.removed_ms = Some(now_ms);
        let bytes = serde_json::to_vec(&member).map_err(|e| corrupt(b"G", e))?;
        self.tree.insert(feed_key(MEMBER, feed), bytes)?;
        self.flush()?;
        Ok(true)
    }

    /// The record of `feed`, member or removed.
    fn member_record(&self, feed: &FeedId) -> Result<Option<Member>, StoreError> {
        let key = feed_key(MEMBER, feed);
        match self.tree.get(&key)? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| corrupt(&key, e)),
            None => Ok(None),
        }
    }

    /// The member record of `feed`, if it is a member.
    pub fn member(&self, feed: &FeedId) -> Result<Option<Member>, StoreError> {
        Ok(self.member_record(feed)?.filter(|m| m.removed_ms.is_none()))
    }

    /// Whether the operator removed `feed` from the members (and has not
    /// admitted it again).
    pub fn was_removed(&self, feed: &FeedId) -> Result<bool, StoreError> {
        Ok(self
            .member_record(feed)?
            .is_some_and(|m| m.removed_ms.is_some()))
    }

    /// Every member, oldest first.
    pub fn members(&self) -> Result<Vec<Member>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([MEMBER]) {
            let (k, v) = item?;
            if feed_of_key(&k).is_none() {
                continue;
            }
            let member = serde_json::from_slice::<Member>(&v).map_err(|e| corrupt(&k, e))?;
            if member.removed_ms.is_none() {
                out.push(member);
            }
        }
        out.sort_by_key(|m| m.since_ms);
        Ok(out)
    }

    /// Bytes in the message log (what a hub's total limit bounds).
    pub fn log_bytes(&self) -> u64 {
        self.log.committed()
    }

    /// Member codes that still work at `now_ms` (their records; the
    /// secrets are not kept).
    pub fn member_codes(&self, now_ms: i64) -> Result<Vec<MemberCode>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([MEMBER_CODE]) {
            let (k, v) = item?;
            let code: MemberCode = serde_json::from_slice(&v).map_err(|e| corrupt(&k, e))?;
            if code.uses_left > 0 && code.expires_ms > now_ms {
                out.push(code);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        (dir, store)
    }

    #[test]
    fn a_code_makes_members_as_often_as_it_may_then_stops() {
        let (_dir, store) = store();
        let code = MemberCode {
            uses_left: 2,
            expires_ms: 10_000,
            created_ms: 0,
            note: Some("for the garden group".into()),
        };
        store.put_member_code(&[1; 16], &code).unwrap();
        let (a, b, c) = (FeedId([1; 32]), FeedId([2; 32]), FeedId([3; 32]));
        assert_eq!(
            store.redeem_member_code(&[1; 16], a, 5).unwrap(),
            Redeemed::Member
        );
        // A member again uses nothing.
        assert_eq!(
            store.redeem_member_code(&[1; 16], a, 5).unwrap(),
            Redeemed::Member
        );
        assert_eq!(
            store.redeem_member_code(&[1; 16], b, 5).unwrap(),
            Redeemed::Member
        );
        assert_eq!(
            store.redeem_member_code(&[1; 16], c, 5).unwrap(),
            Redeemed::Refused
        );
        // A member joining again with the used-up code is still one.
        assert_eq!(
            store.redeem_member_code(&[1; 16], b, 5).unwrap(),
            Redeemed::Member
        );
        assert_eq!(
            store.redeem_member_code(&[9; 16], c, 5).unwrap(),
            Redeemed::Refused
        );
        let members = store.members().unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].note.as_deref(), Some("for the garden group"));
        assert!(store.remove_member(&a, 6).unwrap());
        assert!(!store.remove_member(&a, 6).unwrap());
        assert!(store.member(&a).unwrap().is_none());
        assert!(store.was_removed(&a).unwrap());
        assert_eq!(store.members().unwrap().len(), 1);
        assert!(store.member_codes(5).unwrap().is_empty());
        // Admitted again, it keeps what it stored.
        store.add_member_bytes(&b, 70).unwrap();
        store
            .add_member(&Member {
                feed: a,
                since_ms: 9,
                note: None,
                stored_bytes: 0,
                removed_ms: None,
            })
            .unwrap();
        assert!(store.member(&a).unwrap().is_some());
        assert_eq!(store.member(&b).unwrap().unwrap().stored_bytes, 70);
    }

    #[test]
    fn an_expired_code_makes_no_member() {
        let (_dir, store) = store();
        let code = MemberCode {
            uses_left: 5,
            expires_ms: 1_000,
            created_ms: 0,
            note: None,
        };
        store.put_member_code(&[2; 16], &code).unwrap();
        assert_eq!(store.member_codes(999).unwrap().len(), 1);
        let a = FeedId([1; 32]);
        assert_eq!(
            store.redeem_member_code(&[2; 16], a, 1_000).unwrap(),
            Redeemed::Refused
        );
        assert!(store.members().unwrap().is_empty());
    }

    #[test]
    fn members_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let a = FeedId([1; 32]);
        {
            let store = Store::open(&dir.path().join("store")).unwrap();
            store
                .add_member(&Member {
                    feed: a,
                    since_ms: 1,
                    note: None,
                    stored_bytes: 0,
                    removed_ms: None,
                })
                .unwrap();
        }
        let store = Store::open(&dir.path().join("store")).unwrap();
        assert_eq!(store.members().unwrap()[0].feed, a);
    }
}
