//! The things the API talks about, as stored and as shown.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{MessageId, OrgId, RoomId, UserId};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    #[default]
    Member,
}

impl Role {
    /// Owners and admins manage the org's members and every room's membership.
    pub fn is_manager(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// The org's one rule for roles: a role is given and taken only by a role above it, and owners
    /// by owners. An owner may give any role to anyone and act on any member (another owner too);
    /// an admin only on members, and only the member role (no admin makes an admin or an owner);
    /// a member on no one.
    pub fn governs(self, role: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => role == Role::Member,
            Role::Member => false,
        }
    }
}

/// The editable part of a member's profile (the seed's profile fields).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    pub first_name: String,
    pub last_name: String,
    pub display_name: String,
    pub user_name: String,
    pub bio: String,
    pub phone: String,
    pub pronouns: String,
    pub image_url: String,
    /// The member's status text ("in a meeting"), as the seed names it.
    pub status: String,
    pub time_zone: String,
    /// Whether others see when the member is online.
    pub presence: Visibility,
}

/// Whether others see a member's presence: `hidden` shows them `offline`, always.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Visible,
    Hidden,
}

/// A member of an org, as stored and as the members list shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    #[serde(rename = "_id")]
    pub id: UserId,
    pub org_id: OrgId,
    pub role: Role,
    #[serde(default)]
    pub email: String,
    #[serde(flatten)]
    pub profile: Profile,
    pub joined_at: String,
    #[serde(default)]
    pub deleted: bool,
}

impl Member {
    /// What others see them called: their display name, else their user name, else their id.
    pub fn name(&self) -> &str {
        [&self.profile.display_name, &self.profile.user_name]
            .into_iter()
            .find(|name| !name.is_empty())
            .map_or(self.id.as_str(), String::as_str)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Org {
    pub org_id: OrgId,
    pub name: String,
    pub created_at: String,
    pub created_by: UserId,
}

/// A DM room. `room_user_ids` keeps join order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Room {
    pub room_id: RoomId,
    pub org_id: OrgId,
    pub room_user_ids: Vec<UserId>,
    /// Bookmark names: a string set, so concurrent saves never overwrite each other.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "serde_dynamo::string_set")]
    pub bookmarks: Vec<String>,
    /// Pinned message ids: a string set, so a pin and an unpin never overwrite each other.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "serde_dynamo::string_set")]
    pub pinned: Vec<String>,
    /// Messages in the room: read from the head of the room's event log, which counts message events
    /// as it publishes them (never stored on the room item).
    #[serde(default, skip_serializing)]
    pub message_count: u64,
    pub created_at: String,
    pub created_by: UserId,
    /// Bumped by every membership change; a change applies only to the version it read.
    #[serde(default)]
    pub version: u64,
    /// Whether the room holds the member-set item of its members (what makes a create of the same
    /// set answer this room). A membership change that lands on another room's set leaves that set
    /// to the other room: the rule is for creating rooms, never for leaving or joining one.
    #[serde(default = "holds_by_default")]
    pub holds_member_set: bool,
}

/// Rooms stored before `holds_member_set` held their set: a change that collided was refused then.
fn holds_by_default() -> bool {
    true
}

impl Room {
    pub fn has_member(&self, user: &UserId) -> bool {
        self.room_user_ids.contains(user)
    }

    /// The pinned message ids in the order the messages were sent.
    pub fn pinned_ids(&self) -> Vec<&str> {
        sorted(&self.pinned)
    }

    /// The bookmark names, sorted.
    pub fn bookmark_names(&self) -> Vec<&str> {
        sorted(&self.bookmarks)
    }
}

/// A string set as a sorted list: DynamoDB keeps sets unordered.
fn sorted(set: &[String]) -> Vec<&str> {
    let mut out: Vec<&str> = set.iter().map(String::as_str).collect();
    out.sort_unstable();
    out
}

/// A message, or a reply in a message's thread, as stored. What a list shows lives on the item
/// (reaction counts, `thread_count`, `read_by`), so a page is one Query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    /// The message a thread reply answers; `None` for a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<MessageId>,
    pub room_id: RoomId,
    pub org_id: OrgId,
    pub sender_id: UserId,
    pub message: String,
    #[serde(default)]
    pub media: Vec<String>,
    pub created_at: String,
    #[serde(default)]
    pub edited: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
    #[serde(default)]
    pub pinned: bool,
    /// Who has read it: a string set, so one member's flag never touches another's.
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "serde_dynamo::string_set")]
    pub read_by: Vec<String>,
    #[serde(default)]
    pub saved_by: Vec<UserId>,
    /// Members it is meant for, as its sender named them (each a member of the room when named).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
    #[serde(default)]
    pub thread_count: u64,
    /// Reactions per emoji, kept by the reaction transactions. Never empty: it holds the entry
    /// `EMPTY_MAP_KEY` (see there).
    #[serde(default)]
    pub reactions: BTreeMap<String, i64>,
    /// When each emoji was first used on it: the order lists show them in.
    #[serde(default)]
    pub reacted_at: BTreeMap<String, String>,
}

/// A key no emoji can be (emoji hold no whitespace) that keeps a message's reaction maps from ever
/// being empty: DynamoDB Local's stream reports an empty map without its type, which the SDK cannot
/// read, and a map must exist before one of its entries can be set.
pub const EMPTY_MAP_KEY: &str = " ";

impl Message {
    /// A new message (or reply, with `parent`) from `sender`, not stored yet.
    pub fn new(
        org: OrgId,
        room: RoomId,
        parent: Option<MessageId>,
        sender: UserId,
        text: String,
        media: Vec<String>,
    ) -> Self {
        Self {
            id: MessageId::generate(),
            parent,
            room_id: room,
            org_id: org,
            sender_id: sender,
            message: text,
            media,
            created_at: crate::time::now(),
            edited: false,
            edited_at: None,
            pinned: false,
            read_by: Vec::new(),
            saved_by: Vec::new(),
            mentions: Vec::new(),
            thread_count: 0,
            reactions: BTreeMap::from([(EMPTY_MAP_KEY.to_owned(), 0)]),
            reacted_at: BTreeMap::from([(EMPTY_MAP_KEY.to_owned(), String::new())]),
        }
    }

    pub fn is_read_by(&self, user: &UserId) -> bool {
        self.read_by.iter().any(|id| id == user.as_str())
    }

    /// Emoji with at least one reaction, in the order first used, with their counts.
    pub fn reaction_counts(&self) -> Vec<(&str, i64)> {
        let mut counts: Vec<(&str, i64)> = self
            .reactions
            .iter()
            .filter(|(emoji, n)| **n > 0 && emoji.as_str() != EMPTY_MAP_KEY)
            .map(|(e, n)| (e.as_str(), *n))
            .collect();
        counts.sort_by_key(|(emoji, _)| (self.reacted_at.get(*emoji), *emoji));
        counts
    }
}
