//! Every key of the single table is formatted here and nowhere else.

use crate::ids::{OrgId, RoomId, UserId};

pub const PK: &str = "PK";
pub const SK: &str = "SK";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

const META: &str = "META";
pub const MEMBER_PREFIX: &str = "MEMBER#";
pub const ROOM_PREFIX: &str = "ROOM#";

pub fn org(org: &OrgId) -> Key {
    Key {
        pk: format!("ORG#{org}"),
        sk: META.into(),
    }
}

pub fn member(org: &OrgId, user: &UserId) -> Key {
    Key {
        pk: format!("ORG#{org}"),
        sk: format!("{MEMBER_PREFIX}{user}"),
    }
}

pub fn members_pk(org: &OrgId) -> String {
    format!("ORG#{org}")
}

pub fn room(room: &RoomId) -> Key {
    Key {
        pk: format!("ROOM#{room}"),
        sk: META.into(),
    }
}

/// The item that makes a member set unique within an org; `digest` names the sorted set.
pub fn member_set(org: &OrgId, digest: &str) -> Key {
    Key {
        pk: format!("ORG#{org}"),
        sk: format!("ROOMSET#{digest}"),
    }
}

pub fn user_rooms_pk(org: &OrgId, user: &UserId) -> String {
    format!("ORG#{org}#USER#{user}")
}

pub fn user_room(org: &OrgId, user: &UserId, room: &RoomId) -> Key {
    Key {
        pk: user_rooms_pk(org, user),
        sk: format!("{ROOM_PREFIX}{room}"),
    }
}

/// A key that no item ever has: the cheapest read that proves the table answers.
pub fn probe() -> Key {
    Key {
        pk: "PING".into(),
        sk: META.into(),
    }
}
