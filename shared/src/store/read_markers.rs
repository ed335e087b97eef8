//! Read markers: each member's newest read message in a room, one item each under the room, so a
//! room's receipts are one Query and a change of one is an event for the room.

use serde::{Deserialize, Serialize};

use super::messages::value;
use super::{Order, Store, from_item, keys};
use crate::error::Result;
use crate::ids::{MessageId, OrgId, RoomId, UserId};
use crate::model::Message;
use crate::paging::PageRequest;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadMarker {
    pub org_id: OrgId,
    pub room_id: RoomId,
    pub user_id: UserId,
    /// Everything up to and including it is read.
    pub last_read_message_id: MessageId,
    pub read_at: String,
}

impl Store {
    /// Sets a member's marker, forwards or back (back marks later messages unread again).
    pub async fn set_read_marker(&self, marker: &ReadMarker) -> Result<()> {
        let update = self
            .update_item(&keys::read_marker(&marker.room_id, &marker.user_id))
            .update_expression(
                "SET org_id = :org, room_id = :room, user_id = :user, last_read_message_id = :id, read_at = :at",
            )
            .expression_attribute_values(":org", value(&marker.org_id)?)
            .expression_attribute_values(":room", value(&marker.room_id)?)
            .expression_attribute_values(":user", value(&marker.user_id)?)
            .expression_attribute_values(":id", value(&marker.last_read_message_id)?)
            .expression_attribute_values(":at", value(&marker.read_at)?);
        self.update_if(update).await.map(drop)
    }

    /// Every marker set in the room (members who never read have none).
    pub async fn read_markers(&self, room: &RoomId) -> Result<Vec<ReadMarker>> {
        let items = self.query_all(keys::room_pk(room), keys::READ_PREFIX, true).await?;
        items.into_iter().map(from_item).collect()
    }

    /// The room's newest message, if it has any.
    pub async fn newest_message(&self, room: &RoomId) -> Result<Option<Message>> {
        let first = PageRequest { limit: 1, cursor: None };
        let page = self.query_page(keys::room_pk(room), keys::MESSAGE_PREFIX, Order::NewestFirst, &first).await?;
        page.items.into_iter().next().map(from_item).transpose()
    }
}
