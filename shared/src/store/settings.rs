//! A member's own settings, one item beside their rows, changed only where it was read (a version),
//! so two changes at once never lose one.

use serde::{Deserialize, Serialize};

use super::messages::value;
use super::{InboxRow, Store, keys};
use crate::error::{Error, Result};
use crate::ids::{OrgId, RoomId, UserId};
use crate::notifications::{RoomNotifications, Settings};

/// The settings as stored (one map attribute, so nothing of the item's own reads as a setting), with
/// the version a change is conditioned on.
#[derive(Default, Serialize, Deserialize)]
pub struct StoredSettings {
    #[serde(default)]
    pub settings: Settings,
    #[serde(default)]
    pub version: u64,
}

impl Store {
    /// A member's settings (the defaults until they change one).
    pub async fn settings(&self, org: &OrgId, user: &UserId) -> Result<StoredSettings> {
        Ok(self.get(&keys::settings(org, user)).await?.unwrap_or_default())
    }

    /// Stores `settings` over `read` (what they were made from): 409 when they changed meanwhile.
    pub async fn save_settings(
        &self,
        org: &OrgId,
        user: &UserId,
        read: &StoredSettings,
        settings: Settings,
    ) -> Result<()> {
        let stored = StoredSettings { settings, version: read.version + 1 };
        let mut put = self.new_item(&keys::settings(org, user), &stored)?;
        if read.version > 0 {
            put.condition_expression = Some("version = :read".into());
            put.expression_attribute_values = Some([(":read".to_owned(), value(&read.version)?)].into_iter().collect());
        }
        match self.put_if(put).await? {
            true => Ok(()),
            false => Err(Error::conflict("Your settings changed meanwhile: read them again")),
        }
    }

    /// A member's own notification settings for one of their rooms; 403 unless they are in it (their
    /// row is).
    pub async fn room_notifications(&self, org: &OrgId, user: &UserId, room: &RoomId) -> Result<RoomNotifications> {
        let row: Option<InboxRow> = self.get(&keys::user_room(org, user, room)).await?;
        row.map(|row| row.notifications).ok_or_else(not_in_room)
    }

    /// Sets them, on the member's row: one conditional update, 403 unless they are in the room.
    pub async fn set_room_notifications(
        &self,
        org: &OrgId,
        user: &UserId,
        room: &RoomId,
        settings: &RoomNotifications,
    ) -> Result<()> {
        let update = self.update_item(&keys::user_room(org, user, room)).condition_expression("attribute_exists(PK)");
        let update = match settings.is_default() {
            true => update.update_expression("REMOVE notifications"),
            false => {
                update.update_expression("SET notifications = :n").expression_attribute_values(":n", value(settings)?)
            }
        };
        match self.update_if(update).await? {
            true => Ok(()),
            false => Err(not_in_room()),
        }
    }
}

fn not_in_room() -> Error {
    Error::forbidden("You are not a member of this room")
}
