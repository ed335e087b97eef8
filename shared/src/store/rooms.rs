//! Rooms, their member sets and each user's list of rooms.
//!
//! A room's member set is unique within its org: the member-set item (keyed by a digest of the sorted
//! ids) is written with a condition in the same transaction as the room and every user's-room item, so
//! concurrent creates of one set make one room, and a membership change moves the set atomically.

use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};

use super::messages::value;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::PostRef;
use super::{Item, Store, failed_at, from_item, key_item, keys, string_attr, to_item};
use crate::error::{Error, Result};
use crate::ids::{OrgId, RoomId, UserId};
use crate::model::{Member, Message, Room};

/// A transaction holds at most 100 items; a create writes the room and its member-set item besides
/// one user's-room item per member.
pub const MAX_ROOM_MEMBERS: usize = 98;

/// The digest that names a member set: order and duplicates do not matter.
pub fn member_digest(members: &[UserId]) -> String {
    let mut ids: Vec<&str> = members.iter().map(UserId::as_str).collect();
    ids.sort_unstable();
    ids.dedup();
    // `#` never occurs in a user id, so no two sets join to the same text.
    let digest = Sha256::digest(ids.join("#").as_bytes());
    digest.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[derive(Serialize, Deserialize)]
struct MemberSet {
    room_id: RoomId,
}

#[derive(Debug, PartialEq, Eq)]
pub enum CreatedRoom {
    New(RoomId),
    Existing(RoomId),
}

/// Who to add to and remove from a room.
#[derive(Debug, Default)]
pub struct MembershipChange {
    pub add: Vec<UserId>,
    pub remove: Vec<UserId>,
}

/// A membership change as applied: the room after it, and who really joined or left.
#[derive(Debug)]
pub struct MembershipChanged {
    pub room: Room,
    pub added: Vec<UserId>,
    pub removed: Vec<UserId>,
}

fn existing_room(item: Option<&Item>) -> Option<RoomId> {
    item.and_then(|item| string_attr(item, "room_id")).and_then(|id| RoomId::parse(id).ok())
}

impl Store {
    /// A room as stored, if there is one.
    pub async fn room(&self, room: &RoomId) -> Result<Option<Room>> {
        self.get(&keys::room(room)).await
    }

    /// Everyone who shares a room with `user` in `org`: whom their presence concerns. One Query of
    /// their rooms and one batch read of those rooms.
    pub async fn room_mates(&self, org: &OrgId, user: &UserId) -> Result<Vec<UserId>> {
        let rows = self.query_all(keys::user_rooms_pk(org, user), keys::ROOM_PREFIX, true).await?;
        let rooms: Vec<keys::Key> = rows
            .iter()
            .filter_map(|row| string_attr(row, "room_id").and_then(|id| RoomId::parse(id).ok()))
            .map(|room| keys::room(&room))
            .collect();
        let mut mates: Vec<UserId> = Vec::new();
        for room in self.get_many(&rooms).await?.into_iter().flatten() {
            for mate in from_item::<Room>(room)?.room_user_ids {
                if mate != *user && !mates.contains(&mate) {
                    mates.push(mate);
                }
            }
        }
        Ok(mates)
    }

    /// The member-set item, written only where no room holds the set yet; a failed condition hands
    /// back the room that does.
    fn member_set_put(&self, org: &OrgId, members: &[UserId], room: &RoomId) -> Result<TransactWriteItem> {
        let key = keys::member_set(org, &member_digest(members));
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(&key, &MemberSet { room_id: room.clone() })?))
            .condition_expression("attribute_not_exists(PK)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The room that holds a member set, when the failed condition did not hand it back.
    async fn room_of_set(&self, org: &OrgId, members: &[UserId], returned: Option<&Item>) -> Result<RoomId> {
        if let Some(room) = existing_room(returned) {
            return Ok(room);
        }
        let set: Option<MemberSet> = self.get(&keys::member_set(org, &member_digest(members))).await?;
        set.map(|set| set.room_id).ok_or_else(|| Error::internal_msg("a member set vanished while it was read"))
    }

    /// The ids of `users` that are not members of `org` (one batch read).
    pub async fn non_members(&self, org: &OrgId, users: &[UserId]) -> Result<Vec<UserId>> {
        let keys: Vec<_> = users.iter().map(|user| keys::member(org, user)).collect();
        let found = self.get_many(&keys).await?;
        let members: Vec<Option<Member>> = found.into_iter().map(current_member).collect::<Result<_>>()?;
        Ok(users.iter().zip(members).filter(|(_, member)| member.is_none()).map(|(user, _)| user.clone()).collect())
    }

    /// Creates `room`, or finds the room that already has exactly its members.
    pub async fn create_room(&self, room: &Room) -> Result<CreatedRoom> {
        let members = &room.room_user_ids;
        let mut items = vec![
            self.member_set_put(&room.org_id, members, &room.room_id)?,
            self.put_new(&keys::room(&room.room_id), room)?,
        ];
        let large = super::inbox::is_large(members.len());
        for user in members {
            items.push(self.row_put(&room.org_id, user, &room.room_id, &room.created_at, large)?);
        }
        match self.transact(items).await? {
            Ok(()) => Ok(CreatedRoom::New(room.room_id.clone())),
            Err(reasons) if failed_at(&reasons, 0) => {
                let returned = reasons.first().and_then(|reason| reason.item());
                Ok(CreatedRoom::Existing(self.room_of_set(&room.org_id, members, returned).await?))
            }
            Err(_) => Err(Error::internal_msg("creating a room failed a condition it cannot fail")),
        }
    }

    /// The room, the org memberships of `users` and the posts asked for, in one round trip.
    pub async fn room_bundle(
        &self,
        org: &OrgId,
        room: &RoomId,
        users: &[UserId],
        posts: &[PostRef],
    ) -> Result<(Option<Room>, Vec<Option<Member>>, Vec<Option<Message>>)> {
        let mut keys = vec![keys::room(room), keys::log_head(room)];
        keys.extend(posts.iter().map(|post| post.key(room)));
        keys.extend(users.iter().map(|user| keys::member(org, user)));
        let mut found = self.get_many(&keys).await?.into_iter();
        let room: Option<Room> = found.next().flatten().map(from_item).transpose()?;
        let message_count = Store::message_count_of(found.next().flatten())?;
        let room = room.map(|room| Room { message_count, ..room });
        let posts =
            found.by_ref().take(posts.len()).map(|item| item.map(from_item).transpose()).collect::<Result<_>>()?;
        let members = found.map(current_member).collect::<Result<_>>()?;
        Ok((room, members, posts))
    }

    /// Applies `change` to `room` in one transaction: the room, its member-set item and the users'
    /// room items move together. A concurrent change makes it read the room again and retry. When the
    /// new member set already has another room, that room keeps the set and this one holds none:
    /// a change never fails, nor names another room, for landing on someone else's set.
    pub async fn change_membership(&self, mut room: Room, change: &MembershipChange) -> Result<MembershipChanged> {
        let mut claim_set = true;
        for _ in 0..6 {
            // When the newcomers joined: this attempt's, as messages sent meanwhile were not theirs.
            let joined_at = crate::time::now();
            let added: Vec<UserId> = dedup(change.add.iter().filter(|user| !room.has_member(user)));
            let removed: Vec<UserId> = dedup(change.remove.iter().filter(|user| room.has_member(user)));
            if added.is_empty() && removed.is_empty() {
                return Ok(MembershipChanged { room, added, removed });
            }
            let old_members = room.room_user_ids.clone();
            let mut new_members: Vec<UserId> =
                old_members.iter().filter(|user| !removed.contains(user)).cloned().collect();
            new_members.extend(added.iter().cloned());
            if new_members.len() > MAX_ROOM_MEMBERS {
                return Err(Error::bad_request(format!("a room holds at most {MAX_ROOM_MEMBERS} members")));
            }
            let holds = claim_set && !new_members.is_empty();

            let update = Update::builder()
                .table_name(self.table())
                .set_key(Some(key_item(&keys::room(&room.room_id))))
                .update_expression("SET room_user_ids = :members, version = :next, holds_member_set = :holds")
                .condition_expression("version = :version")
                .expression_attribute_values(":members", value(&new_members)?)
                .expression_attribute_values(":next", value(&(room.version + 1))?)
                .expression_attribute_values(":version", value(&room.version)?)
                .expression_attribute_values(":holds", AttributeValue::Bool(holds))
                .build()
                .map_err(Error::internal)?;
            let mut items = vec![TransactWriteItem::builder().update(update).build()];
            if room.holds_member_set && !old_members.is_empty() {
                items.push(self.delete(&keys::member_set(&room.org_id, &member_digest(&old_members)))?);
            }
            let set_index = items.len();
            if holds {
                items.push(self.member_set_put(&room.org_id, &new_members, &room.room_id)?);
            }
            let large = super::inbox::is_large(new_members.len());
            for user in &added {
                items.push(self.row_put(&room.org_id, user, &room.room_id, &joined_at, large)?);
            }
            if large != super::inbox::is_large(old_members.len()) {
                let staying: Vec<UserId> = old_members.iter().filter(|user| !removed.contains(user)).cloned().collect();
                items.extend(self.resize_items(&room, &staying, large).await?);
            }
            for user in &removed {
                items.push(self.delete(&keys::user_room(&room.org_id, user, &room.room_id))?);
                let left = super::log::LeftRoom::new(&room.room_id);
                items.push(self.put(&keys::left_room(&room.org_id, user, &room.room_id), &left)?);
            }

            match self.transact(items).await? {
                Ok(()) => {
                    room.room_user_ids = new_members;
                    room.version += 1;
                    room.holds_member_set = holds;
                    return Ok(MembershipChanged { room, added, removed });
                }
                Err(reasons) if failed_at(&reasons, 0) => {
                    room =
                        self.get(&keys::room(&room.room_id)).await?.ok_or_else(|| Error::not_found("No such Room"))?;
                }
                Err(reasons) if holds && failed_at(&reasons, set_index) => claim_set = false,
                Err(_) => {
                    return Err(Error::internal_msg("a membership change failed a condition it cannot fail"));
                }
            }
        }
        Err(Error::Throttled("the room kept changing while it was updated".into()))
    }
}

/// A member item as a member, unless it is leaving the org.
pub(super) fn current_member(item: Option<Item>) -> Result<Option<Member>> {
    Ok(item.map(from_item::<Member>).transpose()?.filter(|member| !member.deleted))
}

fn dedup<'a>(users: impl Iterator<Item = &'a UserId>) -> Vec<UserId> {
    let mut out: Vec<UserId> = Vec::new();
    for user in users {
        if !out.contains(user) {
            out.push(user.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_ignores_order_and_duplicates() {
        let ids = |list: &[&str]| list.iter().map(|id| UserId::parse(*id).unwrap()).collect::<Vec<_>>();
        let a = member_digest(&ids(&["alice", "bob"]));
        assert_eq!(a, member_digest(&ids(&["bob", "alice", "bob"])));
        assert_ne!(a, member_digest(&ids(&["alice", "bob", "carol"])));
        assert_eq!(a.len(), 64);
    }
}
