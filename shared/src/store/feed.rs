//! What a reconnecting client catches up from. Each room event gets the room's next `seq`, once (the
//! room's sequence item remembers the change it numbered last), and lands in the feed of every user
//! it is sent to, numbered there too (every recipient's entries in one transaction): a user's feed
//! holds, in order, the events their connections were sent, for 7 days, and a sync token names a
//! place in it. A change delivered again finds its numbers and entries where it left them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
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
/// DynamoDB's limit on the items of one transaction.
const TRANSACTION_ITEMS: usize = 100;

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

/// A user's share of a change: the events that go to their feed, and the feed's last number as the
/// caller last saw it (0: unknown).
#[derive(Clone, Debug)]
pub struct Share {
    pub user: UserId,
    pub events: Vec<Value>,
    pub known: u64,
}

impl Share {
    /// The share's events as the entries numbered from `first`, appended at `at_ms`.
    fn entries(&self, first: u64, at_ms: i64) -> Vec<FeedEntry> {
        let ttl = u64::try_from(at_ms / 1000).unwrap_or_default() + FEED_RETENTION_SECS;
        let numbered = self.events.iter().zip(first..);
        numbered.map(|(event, seq)| FeedEntry { seq, at_ms, event: event.to_string(), ttl }).collect()
    }
}

/// What a share became: its user's entries, and their feed's last number after them.
#[derive(Clone, Debug)]
pub struct Appended {
    pub user: UserId,
    pub entries: Vec<FeedEntry>,
    pub last: u64,
}

/// Shares split into transactions of at most DynamoDB's 100 items (a head and its entries each).
fn parts(shares: Vec<(usize, Share)>) -> Vec<Vec<(usize, Share)>> {
    let mut parts: Vec<Vec<(usize, Share)>> = Vec::new();
    let mut items = 0;
    for share in shares {
        let size = 1 + share.1.events.len();
        match parts.last_mut() {
            Some(part) if items + size <= TRANSACTION_ITEMS => part.push(share),
            _ => {
                items = 0;
                parts.push(vec![share]);
            }
        }
        items += size;
    }
    parts
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

    /// Appends each share's events (each as pushed, without its token), all of one `change` in
    /// `room`, to its user's feed, every user's in one transaction (as many as DynamoDB's limit on
    /// items needs): for each user, the entries (the same ones when the change comes again) and the
    /// feed's last number after it, in the order of `shares`. A share's `known` is that number as the
    /// caller last saw it (0: unknown): right, the append is one request for everyone.
    pub async fn append_to_feeds(
        &self,
        org: &OrgId,
        room: &RoomId,
        change: &str,
        shares: Vec<Share>,
    ) -> Result<Vec<Appended>> {
        let change = padded(change);
        let mark_name = format!("room#{room}");
        let mut pending: Vec<(usize, Share)> = shares.into_iter().enumerate().collect();
        let mut done: Vec<(usize, Appended)> = Vec::with_capacity(pending.len());
        for _ in 0..ATTEMPTS {
            let mut next = Vec::new();
            for part in parts(pending) {
                let at_ms = now_ms();
                let mut items = Vec::new();
                let mut heads = Vec::with_capacity(part.len());
                let mut added = Vec::with_capacity(part.len());
                for (_, share) in &part {
                    heads.push(items.len());
                    let entries = share.entries(share.known + 1, at_ms);
                    items.push(self.head_update(org, share, &mark_name, &change, entries.len() as u64, at_ms)?);
                    for entry in &entries {
                        items.push(self.put(&keys::feed_entry(org, &share.user, entry.seq), entry)?);
                    }
                    added.push(entries);
                }
                let reasons = match self.transact(items).await? {
                    Ok(()) => {
                        for ((at, share), entries) in part.into_iter().zip(added) {
                            let last = share.known + entries.len() as u64;
                            done.push((at, Appended { user: share.user, entries, last }));
                        }
                        continue;
                    }
                    Err(reasons) if heads.iter().any(|head| failed_at(&reasons, *head)) => reasons,
                    Err(_) => return Err(Error::internal_msg("appending to feeds failed a condition it cannot fail")),
                };
                for ((at, mut share), head) in part.into_iter().zip(heads) {
                    if !failed_at(&reasons, head) {
                        // Cancelled for another user's head: again as it was.
                        next.push((at, share));
                        continue;
                    }
                    let stored: HashMap<String, Value> =
                        reasons[head].item().map(|item| from_item(item.clone())).transpose()?.unwrap_or_default();
                    let stored_last = stored.get("seq").and_then(Value::as_u64).unwrap_or_default();
                    let mark = stored.get(&mark_name).and_then(Value::as_str).and_then(parse_mark);
                    match mark {
                        Some((appended, first, at_ms)) if appended >= change.as_str() => {
                            // Appended already: the same entries (or, were it an older change, none to send again).
                            let entries = if appended == change { share.entries(first, at_ms) } else { Vec::new() };
                            done.push((at, Appended { user: share.user, entries, last: stored_last }));
                        }
                        _ => {
                            share.known = stored_last;
                            next.push((at, share));
                        }
                    }
                }
            }
            pending = next;
            if pending.is_empty() {
                done.sort_by_key(|(at, _)| *at);
                return Ok(done.into_iter().map(|(_, appended)| appended).collect());
            }
        }
        Err(Error::Unavailable("appending to feeds kept conflicting".into()))
    }

    /// The update of `share`'s feed head that appends `count` entries of `change` after its `known`
    /// last, if the head is still there and has nothing of this change or a later one of the room.
    fn head_update(
        &self,
        org: &OrgId,
        share: &Share,
        mark_name: &str,
        change: &str,
        count: u64,
        at_ms: i64,
    ) -> Result<TransactWriteItem> {
        let last = share.known;
        let update = self
            .update_builder(&keys::feed_head(org, &share.user))
            .update_expression("SET seq = :seq, #mark = :mark")
            .expression_attribute_names("#mark", mark_name)
            .expression_attribute_values(":seq", AttributeValue::N((last + count).to_string()))
            .expression_attribute_values(":mark", AttributeValue::S(room_mark(change, last + 1, at_ms)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let update = match last {
            0 => update.condition_expression("attribute_not_exists(seq) AND attribute_not_exists(#mark)"),
            // Marks start with their change: one below `{change}|` is an earlier change's.
            _ => update
                .condition_expression("seq = :last AND (attribute_not_exists(#mark) OR #mark < :change)")
                .expression_attribute_values(":last", AttributeValue::N(last.to_string()))
                .expression_attribute_values(":change", AttributeValue::S(format!("{change}|"))),
        };
        tx_update(update)
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
