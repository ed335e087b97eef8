//! Who may see and change a room: the Rocket.Chat premises mapped to org roles.

use dm_shared::ids::{OrgId, RoomId, UserId};
use dm_shared::model::{Member, Room};
use dm_shared::{AppState, Error, Result};

/// The caller's standing towards a room, read in one round trip together with the org memberships
/// of the users the request names.
pub struct RoomAccess {
    pub me: Member,
    pub room: Room,
    /// The org membership of each named user, in the order named.
    pub others: Vec<Option<Member>>,
}

impl RoomAccess {
    /// 403 when the caller is not in the org; 404 when the room does not exist in this org.
    pub async fn load(
        state: &AppState,
        org: &OrgId,
        room: &RoomId,
        caller: &UserId,
        others: &[UserId],
    ) -> Result<Self> {
        let mut users = Vec::with_capacity(others.len() + 1);
        users.push(caller.clone());
        users.extend_from_slice(others);
        let (room, mut members) = state.store.room_with_members(org, room, &users).await?;
        let me = members
            .remove(0)
            .ok_or_else(|| Error::forbidden("You are not a member of this organization"))?;
        let room = room
            .filter(|room| room.org_id == *org)
            .ok_or_else(|| Error::not_found("No such Room"))?;
        Ok(Self {
            me,
            room,
            others: members,
        })
    }

    /// Room members see and add to the room; org owners and admins may do so in any room of the org.
    pub fn require_member_or_manager(&self) -> Result<()> {
        if self.room.has_member(&self.me.id) || self.me.role.is_manager() {
            Ok(())
        } else {
            Err(Error::forbidden("You are not a member of this room"))
        }
    }
}

/// A member may leave; the room's creator (while still in it) and org owners and admins may remove
/// anyone.
pub fn may_remove(access: &RoomAccess, member: &UserId) -> bool {
    let me = &access.me.id;
    let creator_in_room = access.room.created_by == *me && access.room.has_member(me);
    me == member || creator_in_room || access.me.role.is_manager()
}
