//! Counts the projector keeps: a room's `message_count` (the message list's `count`) and a message's
//! `thread_count`. Each counted post has a marker item (`COUNTED#`, `COUNTED_REPLY#`) put or deleted
//! in the transaction that moves its count, on the condition that it is absent or present: a post is
//! counted once by its id, however often, late or in whatever order its record comes, and from
//! however many shards at once.

use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::{Deserialize, Serialize};

use super::messages::{number, tx_update};
use super::{PostRef, Store, failed_at, keys, tx::conditional_delete};
use crate::error::{Error, Result};
use crate::ids::{MessageId, RoomId};
use crate::model::Message;

/// Messages counted in one transaction, with the count's update (a transaction holds 100 items).
const COUNTED_AT_ONCE: usize = 99;

/// A counted message's marker holds nothing but its key.
#[derive(Serialize)]
struct CountedMessage {}

/// A counted reply: which message's `thread_count` holds it.
#[derive(Serialize, Deserialize)]
struct CountedReply {
    parent: MessageId,
}

impl Store {
    /// Counts `messages` of `room` in its `message_count`, each once: one transaction of their
    /// markers and the count, sent again without those that were counted before.
    pub async fn count_messages(&self, room: &RoomId, messages: &[&MessageId]) -> Result<()> {
        for chunk in messages.chunks(COUNTED_AT_ONCE) {
            let mut pending: Vec<&MessageId> = chunk.to_vec();
            while !pending.is_empty() {
                let mut items = pending
                    .iter()
                    .map(|id| self.put_new(&keys::counted(room, id), &CountedMessage {}))
                    .collect::<Result<Vec<_>>>()?;
                items.push(self.room_count(room, i64::try_from(pending.len()).map_err(Error::internal)?)?);
                let reasons = match self.transact(items).await? {
                    Ok(()) => break,
                    Err(reasons) => reasons,
                };
                let before = pending.len();
                pending = pending
                    .into_iter()
                    .enumerate()
                    .filter(|(at, _)| !failed_at(&reasons, *at))
                    .map(|(_, id)| id)
                    .collect();
                if pending.len() == before {
                    return Err(Error::internal_msg("counting messages failed a condition it cannot fail"));
                }
            }
        }
        Ok(())
    }

    /// Takes a removed message out of its room's `message_count`, once.
    pub async fn uncount_message(&self, room: &RoomId, message: &MessageId) -> Result<()> {
        let items = vec![conditional_delete(self, &keys::counted(room, message))?, self.room_count(room, -1)?];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 0) => Ok(()),
            Err(_) => Err(Error::internal_msg("uncounting a message failed a condition it cannot fail")),
        }
    }

    fn room_count(&self, room: &RoomId, by: i64) -> Result<TransactWriteItem> {
        tx_update(
            self.update_builder(&keys::room_count(room))
                .update_expression("ADD message_count :by")
                .expression_attribute_values(":by", number(by)),
        )
    }

    /// Counts a stored reply in its message's `thread_count`, once. A reply whose message was
    /// deleted before it was stored is removed (its message's removal could not see it).
    pub async fn count_reply(&self, reply: &Message) -> Result<()> {
        let Some(parent) = &reply.parent else { return Ok(()) };
        let room = &reply.room_id;
        let counted = self.put_new(&keys::counted_reply(room, &reply.id), &CountedReply { parent: parent.clone() })?;
        match self.transact(vec![counted, self.thread_count(room, parent, 1)?]).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 0) => Ok(()),
            Err(reasons) if failed_at(&reasons, 1) => {
                let orphan = [PostRef::of(reply).key(room), keys::message_pointer(&reply.id)];
                self.delete_many(&orphan).await
            }
            Err(_) => Err(Error::internal_msg("counting a reply failed a condition it cannot fail")),
        }
    }

    /// Takes a removed reply out of its message's `thread_count`, once (the message may be gone too).
    pub async fn uncount_reply(&self, room: &RoomId, reply: &MessageId, parent: &MessageId) -> Result<()> {
        let key = keys::counted_reply(room, reply);
        let items = vec![conditional_delete(self, &key)?, self.thread_count(room, parent, -1)?];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 0) => Ok(()),
            Err(reasons) if failed_at(&reasons, 1) => self.delete_many(&[key]).await,
            Err(_) => Err(Error::internal_msg("uncounting a reply failed a condition it cannot fail")),
        }
    }

    fn thread_count(
        &self,
        room: &RoomId,
        parent: &MessageId,
        by: i64,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem> {
        tx_update(
            self.update_builder(&keys::message(room, parent))
                .update_expression("ADD thread_count :by")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":by", number(by)),
        )
    }
}
