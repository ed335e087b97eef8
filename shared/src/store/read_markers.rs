//! Read markers: each member's newest read message in a room, one item each under the room, so a
//! room's receipts are one Query and a change of one is an event for the room.

use serde::{Deserialize, Serialize};

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
    /// Moved by the member's own send: their message says as much, so no event is made of it.
    #[serde(default)]
    pub by_send: bool,
}

impl Store {
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
