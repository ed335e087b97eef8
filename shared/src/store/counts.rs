//! A message's `thread_count`, kept by the projector. Each counted reply has a marker item
//! (`COUNTED_REPLY#`) put or deleted in the transaction that moves the count, on the condition that
//! it is absent or present: a reply is counted once by its id, however often, late or in whatever
//! order its record comes, and from however many shards at once. (A room's message count moves with
//! its log: `log`.)

use serde::{Deserialize, Serialize};

use super::messages::{number, tx_update};
use super::{PostRef, Store, failed_at, keys, tx::conditional_delete};
use crate::error::{Error, Result};
use crate::ids::{MessageId, RoomId};
use crate::model::Message;

/// A counted reply: which message's `thread_count` holds it.
#[derive(Serialize, Deserialize)]
pub(crate) struct CountedReply {
    pub parent: MessageId,
}

impl Store {
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
