//! Room bookmarks: each is its own item, its name is in the room's set (room info shows them) and
//! its link is among the room's links, all changed in one transaction.

use serde::{Deserialize, Serialize};

use super::index::LinkEntry;
use super::messages::{string_set, tx_update, value};
use super::{Store, failed_at, from_item, keys};
use crate::error::{Error, Result};
use crate::ids::{MessageId, RoomId, UserId};

/// The most bookmarks a room holds.
pub const MAX_BOOKMARKS: usize = 100;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bookmark {
    /// Names the bookmark's entry among the room's links.
    pub id: MessageId,
    pub name: String,
    pub link: String,
    pub created_at: String,
    pub created_by: UserId,
}

impl Store {
    /// Saves a bookmark; 409 when the room has one of that name, 400 when it has 100.
    pub async fn save_bookmark(&self, room: &RoomId, bookmark: &Bookmark) -> Result<()> {
        let room_update = self
            .update_builder(&keys::room(room))
            .update_expression("ADD bookmarks :name")
            .condition_expression(
                "attribute_exists(PK) AND (attribute_not_exists(bookmarks) OR size(bookmarks) < :max)",
            )
            .expression_attribute_values(":name", string_set(&[&bookmark.name]))
            .expression_attribute_values(":max", value(&MAX_BOOKMARKS)?);
        let link = LinkEntry { url: bookmark.link.clone(), message_id: bookmark.id.clone(), parent: None };
        let items = vec![
            self.put_new(&keys::bookmark(room, &bookmark.name), bookmark)?,
            tx_update(room_update)?,
            self.put(&keys::link(room, &bookmark.id, 0), &link)?,
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 0) => {
                Err(Error::conflict("A bookmark of that name exists in this room"))
            }
            Err(reasons) if failed_at(&reasons, 1) => {
                Err(Error::bad_request(format!("a room holds at most {MAX_BOOKMARKS} bookmarks")))
            }
            Err(_) => Err(Error::internal_msg("saving a bookmark failed a condition it cannot fail")),
        }
    }

    /// The room's bookmarks, oldest first.
    pub async fn bookmarks(&self, room: &RoomId) -> Result<Vec<Bookmark>> {
        let items = self.query_all(keys::room_pk(room), keys::BOOKMARK_PREFIX, true).await?;
        let mut bookmarks = items.into_iter().map(from_item).collect::<Result<Vec<Bookmark>>>()?;
        bookmarks.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(bookmarks)
    }

    /// Deletes a bookmark with its name in the room's set and its link; 404 when there is none.
    pub async fn delete_bookmark(&self, room: &RoomId, name: &str) -> Result<()> {
        let not_found = || Error::not_found("bookmark not found");
        let bookmark: Bookmark = self.get(&keys::bookmark(room, name)).await?.ok_or_else(not_found)?;
        let room_update = self
            .update_builder(&keys::room(room))
            .update_expression("DELETE bookmarks :name")
            .expression_attribute_values(":name", string_set(&[name]));
        let items = vec![
            super::tx::conditional_delete(self, &keys::bookmark(room, name))?,
            tx_update(room_update)?,
            self.delete(&keys::link(room, &bookmark.id, 0))?,
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 0) => Err(not_found()),
            Err(_) => Err(Error::internal_msg("deleting a bookmark failed a condition it cannot fail")),
        }
    }
}
