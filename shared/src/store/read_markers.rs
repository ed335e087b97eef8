//! Read markers: each member's newest read message in a room. Their inbox row holds it (whoever
//! moved it: their mark, or their own message); a mark of their own is also an item under the room,
//! whose change is the room's `read_marker` event.

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
}

impl Store {
    /// The room's newest message, if it has any.
    pub async fn newest_message(&self, room: &RoomId) -> Result<Option<Message>> {
        let first = PageRequest { limit: 1, cursor: None };
        let page = self.query_page(keys::room_pk(room), keys::MESSAGE_PREFIX, Order::NewestFirst, &first).await?;
        page.items.into_iter().next().map(from_item).transpose()
    }
}
