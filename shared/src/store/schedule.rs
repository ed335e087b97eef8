//! Scheduled messages. Each is stored twice in one transaction: in the bucket of the minute it is due
//! (what the scheduler reads and claims) and in its sender's pending list. The scheduler claims an
//! item with a condition before sending it, and sends it with an idempotency key of its own, so two
//! runs never send it twice and a run that dies after claiming leaves it to the next one.

use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::messages::number;
use super::{Store, failed_at, from_item, key_item, keys};
use crate::error::{Error, Result};
use crate::ids::{MessageId, OrgId, RoomId, UserId};

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
    /// When to send it: RFC 3339, and epoch milliseconds for keys and comparisons.
    pub timer: String,
    pub due_ms: i64,
    /// A scheduler's claim lasts until this epoch millisecond; 0 while unclaimed.
    #[serde(default)]
    pub claimed_until_ms: i64,
}

impl Scheduled {
    fn bucket_key(&self) -> keys::Key {
        keys::scheduled(self.due_ms, &self.schedule_id)
    }

    fn sender_key(&self) -> keys::Key {
        keys::scheduled_for_sender(&self.room_id, &self.sender_id, self.due_ms, &self.schedule_id)
    }
}

impl Store {
    /// Stores a scheduled message, and moves the scheduler's cursor back to its minute if needed.
    pub async fn schedule(&self, item: &Scheduled) -> Result<()> {
        // Before the transaction: a crash in between leaves the cursor early, which costs a rescan.
        self.lower_schedule_cursor(item.due_ms.div_euclid(60_000)).await?;
        let items = vec![self.put_new(&item.bucket_key(), item)?, self.put(&item.sender_key(), item)?];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(Error::internal_msg("scheduling failed a condition it cannot fail")),
        }
    }

    async fn lower_schedule_cursor(&self, minute: i64) -> Result<()> {
        let update = self
            .update_item(&keys::schedule_cursor())
            .update_expression("SET #minute = :minute")
            .condition_expression("attribute_not_exists(#minute) OR #minute > :minute")
            .expression_attribute_names("#minute", "minute")
            .expression_attribute_values(":minute", number(minute));
        self.update_if(update).await.map(drop)
    }

    /// The first minute the scheduler has not finished, if anything was ever scheduled.
    pub async fn schedule_cursor(&self) -> Result<Option<i64>> {
        #[derive(Deserialize)]
        struct Cursor {
            minute: i64,
        }
        Ok(self.get::<Cursor>(&keys::schedule_cursor()).await?.map(|cursor| cursor.minute))
    }

    /// Moves the cursor from `from` to `to`, unless a new schedule moved it meanwhile.
    pub async fn advance_schedule_cursor(&self, from: i64, to: i64) -> Result<()> {
        let update = self
            .update_item(&keys::schedule_cursor())
            .update_expression("SET #minute = :to")
            .condition_expression("#minute = :from")
            .expression_attribute_names("#minute", "minute")
            .expression_attribute_values(":to", number(to))
            .expression_attribute_values(":from", number(from));
        self.update_if(update).await.map(drop)
    }

    /// The sender's pending messages for a room, soonest first.
    pub async fn scheduled_by(&self, room: &RoomId, user: &UserId) -> Result<Vec<Scheduled>> {
        let items = self.query_all(keys::room_pk(room), &keys::scheduled_prefix(user), true).await?;
        items.into_iter().map(from_item).collect()
    }

    /// Everything in a minute's bucket, soonest first.
    pub async fn scheduled_in(&self, minute: i64) -> Result<Vec<Scheduled>> {
        let items = self.query_all(keys::schedule_bucket(minute), keys::DUE_PREFIX, true).await?;
        items.into_iter().map(from_item).collect()
    }

    /// Claims a due item until `until_ms`: only when no other run holds a live claim on it.
    pub async fn claim_scheduled(&self, item: &Scheduled, now_ms: i64, until_ms: i64) -> Result<bool> {
        let update = self
            .update_item(&item.bucket_key())
            .update_expression("SET claimed_until_ms = :until")
            .condition_expression("attribute_exists(PK) AND claimed_until_ms < :now")
            .expression_attribute_values(":until", number(until_ms))
            .expression_attribute_values(":now", number(now_ms));
        self.update_if(update).await
    }

    /// Removes a scheduled message once it was sent (or can never be).
    pub async fn finish_scheduled(&self, item: &Scheduled) -> Result<()> {
        let items = vec![self.delete(&item.bucket_key())?, self.delete(&item.sender_key())?];
        self.transact(items).await?.map_err(|_| Error::internal_msg("finishing a schedule failed a condition"))
    }

    /// Cancels a pending message of `user`'s; 404 when it is not pending (sent, being sent, or never
    /// scheduled). A claimed one can no longer be cancelled, so a cancelled one is never sent.
    pub async fn cancel_scheduled(&self, room: &RoomId, user: &UserId, id: &MessageId) -> Result<()> {
        let not_found = || Error::not_found("No such pending message");
        let item = self.scheduled_by(room, user).await?.into_iter().find(|s| s.schedule_id == *id);
        let item = item.ok_or_else(not_found)?;
        let unclaimed = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&item.bucket_key())))
            .condition_expression("attribute_exists(PK) AND claimed_until_ms = :zero")
            .expression_attribute_values(":zero", number(0))
            .build()
            .map_err(Error::internal)?;
        let items = vec![TransactWriteItem::builder().delete(unclaimed).build(), self.delete(&item.sender_key())?];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 0) => Err(not_found()),
            Err(_) => Err(Error::internal_msg("cancelling failed a condition it cannot fail")),
        }
    }
}
