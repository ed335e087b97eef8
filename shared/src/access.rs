//! Who the caller is to a room: read once, in one round trip, before a room route touches anything.

use crate::error::{Error, Result};
use crate::ids::{MessageId, OrgId, RoomId, UserId};
use crate::model::{Member, Message, Room};
use crate::store::{PostRef, Store};

/// The caller's org membership and the room; also the org memberships of the users a request names.
pub struct RoomAccess {
    pub me: Member,
    pub room: Room,
    /// The org membership of each named user, in the order named.
    pub others: Vec<Option<Member>>,
}

impl RoomAccess {
    /// 403 when the caller is not in the org; 404 when the room does not exist in this org.
    pub async fn load(store: &Store, org: &OrgId, room: &RoomId, caller: &UserId, others: &[UserId]) -> Result<Self> {
        Ok(Self::bundle(store, org, room, caller, others, &[]).await?.0)
    }

    /// As `load`, with the posts named (each `None` where it does not exist); the caller decides who
    /// may see them.
    pub async fn with_posts(
        store: &Store,
        org: &OrgId,
        room: &RoomId,
        caller: &UserId,
        posts: &[PostRef],
    ) -> Result<(Self, Vec<Option<Message>>)> {
        Self::bundle(store, org, room, caller, &[], posts).await
    }

    /// As `load`, for a member of the room, with one of its messages (404 when it does not exist).
    pub async fn member_with_message(
        store: &Store,
        org: &OrgId,
        room: &RoomId,
        caller: &UserId,
        message: &MessageId,
    ) -> Result<(Self, Message)> {
        let (access, mut posts) =
            Self::with_posts(store, org, room, caller, &[PostRef::Message(message.clone())]).await?;
        access.require_member()?;
        let message = posts.pop().flatten().ok_or_else(|| Error::not_found("message not found"))?;
        Ok((access, message))
    }

    async fn bundle(
        store: &Store,
        org: &OrgId,
        room: &RoomId,
        caller: &UserId,
        others: &[UserId],
        posts: &[PostRef],
    ) -> Result<(Self, Vec<Option<Message>>)> {
        let mut users = Vec::with_capacity(others.len() + 1);
        users.push(caller.clone());
        users.extend_from_slice(others);
        let (room, mut members, posts) = store.room_bundle(org, room, &users, posts).await?;
        let me = members.remove(0).ok_or_else(|| Error::forbidden("You are not a member of this organization"))?;
        let room = room.filter(|room| room.org_id == *org).ok_or_else(|| Error::not_found("No such Room"))?;
        Ok((Self { me, room, others: members }, posts))
    }

    pub fn is_room_member(&self) -> bool {
        self.room.has_member(&self.me.id)
    }

    /// Everything inside a room is for its members.
    pub fn require_member(&self) -> Result<()> {
        if self.is_room_member() { Ok(()) } else { Err(Error::forbidden("You are not a member of this room")) }
    }

    /// Room members see and add to the room; org owners and admins may do so in any room of the org.
    pub fn require_member_or_manager(&self) -> Result<()> {
        if self.is_room_member() || self.me.role.is_manager() {
            Ok(())
        } else {
            Err(Error::forbidden("You are not a member of this room"))
        }
    }
}
