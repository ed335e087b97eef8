//! Typing indicators keep nothing but when a user may next have a `start` relayed in a room, for a
//! minute (TTL).

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Store, TTL_ATTRIBUTE, keys};
use crate::error::Result;
use crate::ids::{RoomId, UserId};
use crate::time::{epoch_secs, now_ms};

/// At most one relayed `start` per user and room in this long.
pub const TYPING_EVERY_MS: i64 = 2_000;

impl Store {
    /// Whether `user`'s `start` in `room` is relayed: not when one was, less than `TYPING_EVERY_MS` ago.
    pub async fn typing_started(&self, room: &RoomId, user: &UserId) -> Result<bool> {
        let now = now_ms();
        let update = self
            .update_item(&keys::typing(room, user))
            .update_expression("SET next_at = :next, #ttl = :ttl")
            .condition_expression("attribute_not_exists(next_at) OR next_at <= :now")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":next", AttributeValue::N((now + TYPING_EVERY_MS).to_string()))
            .expression_attribute_values(":ttl", AttributeValue::N((epoch_secs() + 60).to_string()));
        self.update_if(update).await
    }

    /// A `stop`: the next `start` is relayed at once.
    pub async fn typing_stopped(&self, room: &RoomId, user: &UserId) -> Result<()> {
        self.delete_many(&[keys::typing(room, user)]).await
    }
}
