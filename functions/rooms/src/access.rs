//! Who may remove a member: the Rocket.Chat premises mapped to org roles.

use dm_shared::access::RoomAccess;
use dm_shared::ids::UserId;

/// A member may leave; the room's creator (while still in it) and org owners and admins may remove
/// anyone.
pub fn may_remove(access: &RoomAccess, member: &UserId) -> bool {
    let me = &access.me.id;
    let creator_in_room = access.room.created_by == *me && access.room.has_member(me);
    me == member || creator_in_room || access.me.role.is_manager()
}
