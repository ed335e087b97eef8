//! Scheduled messages. Each is stored in one transaction: in its bucket (one per minute, org and
//! sender: what the scheduler claims from), in its sender's pending list, with its bucket listed in
//! the bucket index, and counted against the sender's caps. The scheduler claims an item with a
//! condition before sending it, and sends it with an idempotency key of its own, so two runs never
//! send it twice and a run that dies after claiming leaves it to a later one.

use std::time::{Duration, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::messages::{number, tx_update};
use super::{Item, Order, Store, failed_at, from_item, key_item, keys, string_attr};
use crate::error::{Error, Result};
use crate::ids::{MessageId, OrgId, RoomId, UserId};
use crate::paging::{Page, PageRequest};

/// The most messages one sender may have waiting, in all and in one room.
pub const MAX_SCHEDULED: u32 = 1_000;
pub const MAX_SCHEDULED_IN_ROOM: u32 = 100;

/// A message to send later.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scheduled {
    pub schedule_id: MessageId,
    pub org_id: OrgId,
    pub room_id: RoomId,
    pub sender_id: UserId,
    pub message: String,
    #[serde(default)]
    pub media: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
    /// When to send it: RFC 3339, and epoch milliseconds for keys and comparisons.
    pub timer: String,
    pub due_ms: i64,
    /// A scheduler's claim lasts until this epoch millisecond; 0 while unclaimed.
    #[serde(default)]
    pub claimed_until_ms: i64,
    /// Claims so far: an item that keeps failing is given up after a few.
    #[serde(default)]
    pub attempts: u32,
}

/// A new schedule id: a ULID whose time is the due time, so ids sort (and bucket) by it.
pub fn schedule_id(due_ms: i64) -> MessageId {
    let due = UNIX_EPOCH + Duration::from_millis(u64::try_from(due_ms).unwrap_or_default());
    // A ULID is alphanumeric: it always parses as an id.
    MessageId::parse(ulid::Ulid::from_datetime(due).to_string()).unwrap_or_else(|_| MessageId::generate())
}

/// The due time a schedule id carries; `None` for an id that is no schedule id.
fn due_of(id: &MessageId) -> Option<i64> {
    let ulid = ulid::Ulid::from_string(id.as_str()).ok()?;
    i64::try_from(ulid.timestamp_ms()).ok()
}

fn minute_of(due_ms: i64) -> i64 {
    due_ms.div_euclid(60_000)
}

/// A bucket of due messages: one minute, one org, one sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub minute: i64,
    pub org: OrgId,
    pub sender: UserId,
}

impl Bucket {
    fn parse(sort_key: &str) -> Option<Self> {
        let mut parts = sort_key.splitn(3, '#');
        let minute = parts.next()?.parse().ok()?;
        let org = OrgId::parse(parts.next()?).ok()?;
        let sender = UserId::parse(parts.next()?).ok()?;
        Some(Self { minute, org, sender })
    }
}

impl Scheduled {
    fn bucket_key(&self) -> keys::Key {
        keys::scheduled(minute_of(self.due_ms), &self.org_id, &self.sender_id, &self.schedule_id)
    }
}

/// The pieces every end of a scheduled message removes: its sender's list entry and its counts.
fn settle(store: &Store, room: &RoomId, user: &UserId, id: &MessageId) -> Result<Vec<TransactWriteItem>> {
    let lower = |key: keys::Key| {
        tx_update(
            store
                .update_builder(&key)
                .update_expression("ADD pending :minus")
                .expression_attribute_values(":minus", number(-1)),
        )
    };
    Ok(vec![
        store.delete(&keys::scheduled_for_sender(room, user, id))?,
        lower(keys::scheduled_count(user))?,
        lower(keys::scheduled_count_in_room(room, user))?,
    ])
}

impl Store {
    /// Stores a scheduled message: 400 when its sender already has `MAX_SCHEDULED` waiting, or
    /// `MAX_SCHEDULED_IN_ROOM` in this room.
    pub async fn schedule(&self, item: &Scheduled) -> Result<()> {
        let minute = minute_of(item.due_ms);
        let raise = |key: keys::Key, cap: u32| {
            tx_update(
                self.update_builder(&key)
                    .update_expression("ADD pending :one")
                    .condition_expression("attribute_not_exists(pending) OR pending < :cap")
                    .expression_attribute_values(":one", number(1))
                    .expression_attribute_values(":cap", number(i64::from(cap))),
            )
        };
        let items = vec![
            self.put_new(&item.bucket_key(), item)?,
            self.put(&keys::scheduled_for_sender(&item.room_id, &item.sender_id, &item.schedule_id), item)?,
            self.put(&keys::schedule_bucket_entry(minute, &item.org_id, &item.sender_id), &serde_json::json!({}))?,
            raise(keys::scheduled_count(&item.sender_id), MAX_SCHEDULED)?,
            raise(keys::scheduled_count_in_room(&item.room_id, &item.sender_id), MAX_SCHEDULED_IN_ROOM)?,
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 3) => Err(Error::bad_request(format!(
                "You have {MAX_SCHEDULED} scheduled messages waiting, the most one sender may; cancel one first"
            ))),
            Err(reasons) if failed_at(&reasons, 4) => Err(Error::bad_request(format!(
                "You have {MAX_SCHEDULED_IN_ROOM} scheduled messages waiting in this room, the most one room takes; cancel one first"
            ))),
            Err(_) => Err(Error::internal_msg("scheduling failed a condition it cannot fail")),
        }
    }

    /// A page of the sender's pending messages for a room, soonest first.
    pub async fn scheduled_by(&self, room: &RoomId, user: &UserId, page: &PageRequest) -> Result<Page<Scheduled>> {
        let prefix = keys::scheduled_prefix(user);
        self.query_page(keys::room_pk(room), &prefix, Order::OldestFirst, page).await?.try_map(from_item)
    }

    /// A page of the buckets due by `minute`, oldest first, from `after` (a sort key of the index).
    pub async fn due_buckets(
        &self,
        minute: i64,
        after: Option<String>,
        limit: usize,
    ) -> Result<(Vec<Bucket>, Option<String>)> {
        let start = after.map(|sk| key_item(&keys::Key { pk: keys::SCHEDULE_BUCKETS.into(), sk }));
        let due_by = Some(("SK < :sk", format!("{:012}", minute + 1)));
        let (items, next) = self.query_limited(keys::SCHEDULE_BUCKETS.into(), due_by, true, start, limit).await?;
        let buckets = items.iter().filter_map(|item| string_attr(item, keys::SK)).filter_map(|sk| Bucket::parse(&sk));
        Ok((buckets.collect(), next.and_then(|key| string_attr(&key, keys::SK))))
    }

    /// One page of a bucket, soonest first, from `after` (an item's key); and where the next page
    /// starts, if there is more.
    pub async fn bucket_page(
        &self,
        bucket: &Bucket,
        after: Option<Item>,
        limit: usize,
    ) -> Result<(Vec<Scheduled>, Option<Item>)> {
        let pk = keys::schedule_bucket(bucket.minute, &bucket.org, &bucket.sender);
        let due = Some(("begins_with(SK, :sk)", keys::DUE_PREFIX.to_owned()));
        let (items, next) = self.query_limited(pk, due, true, after, limit).await?;
        Ok((items.into_iter().map(from_item).collect::<Result<_>>()?, next))
    }

    /// Forgets an empty bucket of a minute long past: nothing can be scheduled into it any more.
    pub async fn forget_bucket(&self, bucket: &Bucket) -> Result<()> {
        self.delete_many(&[keys::schedule_bucket_entry(bucket.minute, &bucket.org, &bucket.sender)]).await
    }

    /// Claims a due item until `until_ms`: only when no other run holds a live claim on it. Counts
    /// the attempt.
    pub async fn claim_scheduled(&self, item: &Scheduled, now_ms: i64, until_ms: i64) -> Result<bool> {
        let update = self
            .update_item(&item.bucket_key())
            .update_expression("SET claimed_until_ms = :until ADD attempts :one")
            .condition_expression("attribute_exists(PK) AND claimed_until_ms < :now")
            .expression_attribute_values(":until", number(until_ms))
            .expression_attribute_values(":now", number(now_ms))
            .expression_attribute_values(":one", number(1));
        self.update_if(update).await
    }

    /// Removes a scheduled message once it was sent (or can never be); a second finish changes
    /// nothing.
    pub async fn finish_scheduled(&self, item: &Scheduled) -> Result<()> {
        let mut items = vec![super::tx::conditional_delete(self, &item.bucket_key())?];
        items.extend(settle(self, &item.room_id, &item.sender_id, &item.schedule_id)?);
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 0) => Ok(()),
            Err(_) => Err(Error::internal_msg("finishing a schedule failed a condition it cannot fail")),
        }
    }

    /// Cancels a pending message of `user`'s in `room` without reading it (its id says where it is);
    /// 404 when it is not pending (sent, being sent, another's, or never scheduled). A claimed one can
    /// no longer be cancelled, so a cancelled one is never sent.
    pub async fn cancel_scheduled(&self, org: &OrgId, room: &RoomId, user: &UserId, id: &MessageId) -> Result<()> {
        let not_found = || Error::not_found("No such pending message");
        let due = due_of(id).ok_or_else(not_found)?;
        let unclaimed = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&keys::scheduled(minute_of(due), org, user, id))))
            .condition_expression("attribute_exists(PK) AND claimed_until_ms = :zero AND room_id = :room")
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(":room", AttributeValue::S(room.to_string()))
            .build()
            .map_err(Error::internal)?;
        let mut items = vec![TransactWriteItem::builder().delete(unclaimed).build()];
        items.extend(settle(self, room, user, id)?);
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 0) => Err(not_found()),
            Err(_) => Err(Error::internal_msg("cancelling failed a condition it cannot fail")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_id_carries_its_due_time_and_sorts_by_it() {
        let early = schedule_id(1_800_000_000_000);
        let late = schedule_id(1_800_000_000_001);
        assert_eq!(due_of(&early), Some(1_800_000_000_000));
        assert!(early < late);
        assert_eq!(due_of(&MessageId::parse("not-a-ulid").unwrap()), None);
    }

    #[test]
    fn bucket_entries_parse_back() {
        let (org, user) = (OrgId::parse("o-1").unwrap(), UserId::parse("u_1").unwrap());
        let key = keys::schedule_bucket_entry(29_000_000, &org, &user);
        assert_eq!(Bucket::parse(&key.sk), Some(Bucket { minute: 29_000_000, org, sender: user }));
        assert_eq!(Bucket::parse("garbage"), None);
    }
}
