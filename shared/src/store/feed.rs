//! What a reconnecting client catches up from. Each room event gets the room's next `seq`, once (the
//! room's sequence item remembers the change it numbered last), and lands in the feed of every user
//! it is sent to, numbered there too: a user's feed holds, in order, the events their connections
//! were sent, for 7 days, and a sync token names a place in it. A change delivered again finds its
//! numbers and entries where it left them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::messages::tx_update;
use super::{Store, failed_at, from_item, keys};
use crate::error::{Error, Result};
use crate::ids::{OrgId, RoomId, UserId};
use crate::model::Room;
use crate::time::{epoch_secs, now_ms};

/// How long the feed keeps an event; a token older than this is refused (410).
pub const FEED_RETENTION_SECS: u64 = 7 * 24 * 3600;
/// Tries at numbering before giving up: only another room's events for the same user, appended at
/// the same moment by another stream shard, make one fail.
const ATTEMPTS: usize = 8;

/// Stream sequence numbers are decimal strings of up to 40 digits: padded, they compare as numbers.
fn padded(sequence_number: &str) -> String {
    format!("{sequence_number:0>40}")
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Sequence {
    seq: u64,
    change: String,
    first: u64,
    /// The room's members as of that change: who its events are for.
    #[serde(default)]
    members: Vec<UserId>,
}

/// A change's place in its room: the `seq`s of its events (`first..=last`), and the members they
/// are for. Kept by the caller, it is the guess the room's next change starts from.
#[derive(Clone, Debug)]
pub struct Numbered {
    pub first: u64,
    pub last: u64,
    pub members: Vec<UserId>,
}

/// An event in a user's feed: the event as pushed (without its token) and its place.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FeedEntry {
    pub seq: u64,
    pub at_ms: i64,
    pub event: String,
    pub ttl: u64,
}

impl FeedEntry {
    /// The event with its token: what a connection is sent and what a sync answers.
    pub fn event_with_token(&self) -> Result<Value> {
        let mut event: Value = serde_json::from_str(&self.event).map_err(Error::internal)?;
        event["token"] = Value::String(SyncToken { seq: self.seq, at_ms: self.at_ms }.to_string());
        Ok(event)
    }
}

/// A place in a user's feed: after entry `seq`, known at `at_ms` (every later entry is newer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncToken {
    pub seq: u64,
    pub at_ms: i64,
}

impl SyncToken {
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = || Error::bad_request("since is not a sync token");
        let (seq, at_ms) = text.split_once('.').ok_or_else(invalid)?;
        Ok(Self { seq: seq.parse().map_err(|_| invalid())?, at_ms: at_ms.parse().map_err(|_| invalid())? })
    }

    /// 410 once events after it may have expired: the client reloads instead.
    pub fn check_retained(&self) -> Result<()> {
        let oldest = now_ms() - i64::try_from(FEED_RETENTION_SECS * 1000).map_err(Error::internal)?;
        if self.at_ms < oldest {
            return Err(Error::Gone("the sync token is older than the 7 days of events kept: reload".into()));
        }
        Ok(())
    }
}

impl std::fmt::Display for SyncToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.seq, self.at_ms)
    }
}

/// What a user's feed head remembers of a room: the last change appended from it, where its
/// entries start, and when.
fn room_mark(change: &str, first: u64, at_ms: i64) -> String {
    format!("{change}|{first}|{at_ms}")
}

fn parse_mark(mark: &str) -> Option<(&str, u64, i64)> {
    let mut parts = mark.split('|');
    Some((parts.next()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

impl Store {
    /// Numbers the `count` events of `change` (its stream sequence number) in `room`: the room's next
    /// `seq`s the first time, the same ones when the change comes again (`None` once later changes of
    /// the room were numbered: it was published whole, as a room's changes are published in order).
    /// Also who they are for: the members as of the change, which the sequence item follows change
    /// by change (`members_now` when the change is the room's own), so an event reaches whoever was
    /// in the room when it happened, however late it is pushed. `known` is the room's previous
    /// change as its caller numbered it: right, it saves a read.
    pub async fn number_events(
        &self,
        room: &RoomId,
        change: &str,
        count: u64,
        members_now: Option<&[UserId]>,
        known: Option<Numbered>,
    ) -> Result<Option<Numbered>> {
        let key = keys::event_sequence(room);
        let change = padded(change);
        let mut current = match known {
            Some(known) => Some((known.last, known.members)),
            None => self.get::<Sequence>(&key).await?.map(|current| (current.seq, current.members)),
        };
        for _ in 0..ATTEMPTS {
            let members = match (members_now, &current) {
                (Some(members), _) => members.to_vec(),
                (None, Some((_, members))) if !members.is_empty() => members.clone(),
                (None, _) => {
                    self.get::<Room>(&keys::room(room)).await?.map(|room| room.room_user_ids).unwrap_or_default()
                }
            };
            let last = current.as_ref().map_or(0, |(seq, _)| *seq);
            let next = Sequence { seq: last + count, change: change.clone(), first: last + 1, members };
            let mut update = self
                .update_item(&key)
                .update_expression("SET seq = :seq, #change = :change, #first = :first, members = :members")
                .expression_attribute_names("#change", "change")
                .expression_attribute_names("#first", "first")
                .expression_attribute_values(":seq", AttributeValue::N(next.seq.to_string()))
                .expression_attribute_values(":change", AttributeValue::S(next.change.clone()))
                .expression_attribute_values(":first", AttributeValue::N(next.first.to_string()))
                .expression_attribute_values(
                    ":members",
                    serde_dynamo::to_attribute_value(&next.members).map_err(Error::internal)?,
                );
            update = match current {
                Some(_) => update
                    .condition_expression("seq = :last AND #change < :change")
                    .expression_attribute_values(":last", AttributeValue::N(last.to_string())),
                None => update.condition_expression("attribute_not_exists(seq)"),
            };
            let stored = match self.update_or_current(update).await? {
                Ok(()) => return Ok(Some(Numbered { first: next.first, last: next.seq, members: next.members })),
                Err(stored) => stored.map(from_item::<Sequence>).transpose()?,
            };
            match stored {
                // Numbered before: the same numbers, or none when a later change was numbered too.
                Some(stored) if stored.change >= change => {
                    let again = Numbered { first: stored.first, last: stored.seq, members: stored.members };
                    return Ok((stored.change == change).then_some(again));
                }
                // The guess was stale (another instance numbered since): from what is stored.
                stored => current = stored.map(|stored| (stored.seq, stored.members)),
            }
        }
        Err(Error::Unavailable("numbering a room's events kept conflicting".into()))
    }

    /// Appends `events` (each as pushed, without its token), all of one `change` in `room`, to
    /// `user`'s feed: the entries (the same ones when the change comes again) and the feed's last
    /// number after it. `known` is that number as the caller last saw it (0: unknown): right, the
    /// append is one request.
    pub async fn append_to_feed(
        &self,
        org: &OrgId,
        user: &UserId,
        room: &RoomId,
        change: &str,
        events: &[Value],
        known: u64,
    ) -> Result<(Vec<FeedEntry>, u64)> {
        let head_key = keys::feed_head(org, user);
        let change = padded(change);
        let mark_name = format!("room#{room}");
        let entries = |first: u64, at_ms: i64| -> Vec<FeedEntry> {
            let ttl = u64::try_from(at_ms / 1000).unwrap_or_default() + FEED_RETENTION_SECS;
            let numbered = events.iter().zip(first..);
            numbered.map(|(event, seq)| FeedEntry { seq, at_ms, event: event.to_string(), ttl }).collect()
        };
        let mut last = known;
        for _ in 0..ATTEMPTS {
            let at_ms = now_ms();
            let added = entries(last + 1, at_ms);
            let new_last = last + added.len() as u64;
            let mut head_update = self
                .update_builder(&head_key)
                .update_expression("SET seq = :seq, #mark = :mark")
                .expression_attribute_names("#mark", mark_name.clone())
                .expression_attribute_values(":seq", AttributeValue::N(new_last.to_string()))
                .expression_attribute_values(":mark", AttributeValue::S(room_mark(&change, last + 1, at_ms)))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
            head_update = match last {
                0 => head_update.condition_expression("attribute_not_exists(seq) AND attribute_not_exists(#mark)"),
                // Marks start with their change: one below `{change}|` is an earlier change's.
                _ => head_update
                    .condition_expression("seq = :last AND (attribute_not_exists(#mark) OR #mark < :change)")
                    .expression_attribute_values(":last", AttributeValue::N(last.to_string()))
                    .expression_attribute_values(":change", AttributeValue::S(format!("{change}|"))),
            };
            let mut items = vec![tx_update(head_update)?];
            for entry in &added {
                items.push(self.put(&keys::feed_entry(org, user, entry.seq), entry)?);
            }
            let reasons = match self.transact(items).await? {
                Ok(()) => return Ok((added, new_last)),
                Err(reasons) if failed_at(&reasons, 0) => reasons,
                Err(_) => return Err(Error::internal_msg("appending to a feed failed a condition it cannot fail")),
            };
            let head: HashMap<String, Value> =
                reasons[0].item().map(|item| from_item(item.clone())).transpose()?.unwrap_or_default();
            let stored_last = head.get("seq").and_then(Value::as_u64).unwrap_or_default();
            if let Some((appended, first, at_ms)) = head.get(&mark_name).and_then(Value::as_str).and_then(parse_mark)
                && appended >= change.as_str()
            {
                // Appended already: the same entries (or, were it an older change, none to send again).
                let again = if appended == change { entries(first, at_ms) } else { Vec::new() };
                return Ok((again, stored_last));
            }
            last = stored_last;
        }
        Err(Error::Unavailable("appending to a feed kept conflicting".into()))
    }

    /// Up to `limit` entries of `user`'s feed after `seq`, oldest first, and whether more follow.
    pub async fn feed_after(
        &self,
        org: &OrgId,
        user: &UserId,
        seq: u64,
        limit: usize,
    ) -> Result<(Vec<FeedEntry>, bool)> {
        let after = keys::feed_entry(org, user, seq).sk;
        let (items, _) =
            self.query_limited(keys::feed_pk(org, user), Some(("SK > :sk", after)), true, None, limit + 1).await?;
        let mut entries = items.into_iter().map(from_item).collect::<Result<Vec<FeedEntry>>>()?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let now = epoch_secs();
        Ok((entries.into_iter().filter(|entry| entry.ttl > now).collect(), more))
    }

    /// Where `user`'s feed ends now: the token of "from now on".
    pub async fn feed_end(&self, org: &OrgId, user: &UserId) -> Result<SyncToken> {
        let head: HashMap<String, Value> = self.get(&keys::feed_head(org, user)).await?.unwrap_or_default();
        Ok(SyncToken { seq: head.get("seq").and_then(Value::as_u64).unwrap_or_default(), at_ms: now_ms() })
    }
}
