//! What a change of the table means to a room's members: the seed's event names, derived from the
//! item's old and new images, so every write path (routes, scheduler) publishes without knowing it.

use dm_shared::ids::{OrgId, RoomId, UserId};
use dm_shared::model::{Member, Message, Room};
use dm_shared::store::{NewEvent, Presence, Reaction, ReadMarker};
use dm_shared::stream::Change;
use serde::Deserialize;
use serde_dynamo::Item;
use serde_json::{Value, json};

/// Who gets an event.
#[derive(Clone, Debug, PartialEq)]
pub enum Audience {
    /// The room's members when the event is delivered.
    Room,
    /// These users: a membership change's members, and whoever it removed (who hears of their own
    /// removal, then nothing more of the room).
    Users(Vec<UserId>),
    /// Everyone who shares a room with this user, unless they hide their presence.
    RoomMates(UserId),
    /// The org's members when the event is delivered, and these users (a member who left).
    Org(Vec<UserId>),
}

impl Audience {
    /// The users a room's log keeps it for (none for the room's members; presence and the org's
    /// events are logged nowhere, and `Realtime::deliver_unlogged` finds their audience).
    pub fn users(&self) -> &[UserId] {
        match self {
            Self::Users(users) => users,
            Self::Room | Self::RoomMates(_) | Self::Org(_) => &[],
        }
    }
}

/// An event for a room's members (or the users named); `room_id` is `None` for a user's presence and
/// the org's own events (members joining, changing, leaving).
#[derive(Clone, Debug, PartialEq)]
pub struct RoomEvent {
    pub name: &'static str,
    pub event_id: String,
    pub org_id: OrgId,
    pub room_id: Option<RoomId>,
    pub data: Value,
    pub audience: Audience,
}

impl RoomEvent {
    /// The seed's per-message read flag, for the reader alone: not one of the room's events, so it
    /// takes no place in the room's sequence (members would see a gap).
    pub fn private(&self) -> bool {
        self.name == "read"
    }

    /// The event as its room's log keeps it: who it is for when not the room's members, and how it
    /// moves the room's message count.
    pub fn to_log(&self) -> NewEvent {
        let counts = match self.name {
            "message_create" => 1,
            "message_delete" => -1,
            _ => 0,
        };
        let audience = matches!(self.audience, Audience::Users(_)).then(|| self.audience.users().to_vec());
        NewEvent { payload: self.payload(), audience, counts }
    }

    pub fn payload(&self) -> Value {
        let mut payload = json!({
            "event": self.name,
            "event_id": self.event_id,
            "org_id": self.org_id,
            "data": self.data,
        });
        if let Some(room) = &self.room_id {
            payload["room_id"] = json!(room);
        }
        payload
    }
}

#[derive(Deserialize)]
struct Keys {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
}

fn parse<T: serde::de::DeserializeOwned>(image: &Option<Item>) -> Option<T> {
    image.clone().and_then(|item| serde_dynamo::from_item(item).ok())
}

fn post_data(post: &Message) -> Value {
    let mut data = json!({
        "sender_id": post.sender_id,
        "message": post.message,
        "media": post.media,
        "created_at": post.created_at,
        "edited": post.edited,
        "edited_at": post.edited_at,
        "mentions": post.mentions,
        "thread": post.parent.is_some(),
    });
    match &post.parent {
        None => data["message_id"] = json!(post.id),
        Some(parent) => {
            data["message_id"] = json!(parent);
            data["thread_id"] = json!(post.id);
        }
    }
    data
}

/// The room as a change of its item leaves it (`None` for any other change, or a room removed).
pub fn room_item(change: &Change) -> Option<Room> {
    let keys = parse::<Keys>(&change.new)?;
    (keys.pk.starts_with("ROOM#") && keys.sk == "META").then(|| parse::<Room>(&change.new)).flatten()
}

/// The events one change makes; most changes make none or one.
pub fn derive(change: &Change) -> Vec<RoomEvent> {
    let Some(keys) = parse::<Keys>(&change.new).or_else(|| parse::<Keys>(&change.old)) else { return Vec::new() };
    let mut events = Vec::new();
    let mut push = |name: &'static str, org: &OrgId, room: Option<&RoomId>, data: Value, audience: Audience| {
        events.push(RoomEvent {
            name,
            event_id: format!("{}#{}", change.event_id, events.len()),
            org_id: org.clone(),
            room_id: room.cloned(),
            data,
            audience,
        });
    };

    if keys.pk.starts_with("ROOM#") && keys.sk == "META" {
        let (old, Some(new)) = (parse::<Room>(&change.old), parse::<Room>(&change.new)) else { return events };
        let members = || Audience::Users(new.room_user_ids.clone());
        let Some(old) = old else {
            // A new room reaches its members' inboxes before its first message does.
            push("room_created", &new.org_id, Some(&new.room_id), dm_shared::views::room(&new), members());
            return events;
        };
        for user in new.room_user_ids.iter().filter(|u| !old.has_member(u)) {
            let data = json!({ "member_id": user, "room_user_ids": new.room_user_ids });
            push("member_added", &new.org_id, Some(&new.room_id), data, members());
        }
        for user in old.room_user_ids.iter().filter(|u| !new.has_member(u)) {
            let data = json!({ "member_id": user, "room_user_ids": new.room_user_ids });
            let mut audience = new.room_user_ids.clone();
            audience.push(user.clone());
            push("member_removed", &new.org_id, Some(&new.room_id), data, Audience::Users(audience));
        }
    } else if keys.sk.starts_with("MSG#") || keys.sk.starts_with("THREAD#") {
        let (old, new) = (parse::<Message>(&change.old), parse::<Message>(&change.new));
        let reply = keys.sk.starts_with("THREAD#");
        let (created, updated, deleted) = if reply {
            ("thread_message_create", "thread_message_update", "thread_message_delete")
        } else {
            ("message_create", "message_update", "message_delete")
        };
        match (old, new) {
            (None, Some(new)) => push(created, &new.org_id, Some(&new.room_id), post_data(&new), Audience::Room),
            (Some(old), None) => push(deleted, &old.org_id, Some(&old.room_id), post_data(&old), Audience::Room),
            (Some(old), Some(new)) => {
                if old.message != new.message || old.mentions != new.mentions {
                    push(updated, &new.org_id, Some(&new.room_id), post_data(&new), Audience::Room);
                }
                if old.pinned != new.pinned {
                    let name = if new.pinned { "pin_message" } else { "unpin_message" };
                    push(name, &new.org_id, Some(&new.room_id), json!({ "message_id": new.id }), Audience::Room);
                }
                for (reader, read) in read_changes(&old, &new) {
                    let data = json!({ "message_id": new.id, "read": read });
                    push("read", &new.org_id, Some(&new.room_id), data, Audience::Users(vec![reader]));
                }
            }
            (None, None) => {}
        }
    } else if keys.sk.starts_with("READ#") {
        let (old, new) = (parse::<ReadMarker>(&change.old), parse::<ReadMarker>(&change.new));
        if let Some(new) = new
            && old.as_ref().is_none_or(|old| old.last_read_message_id != new.last_read_message_id)
        {
            let data =
                json!({ "user_id": new.user_id, "message_id": new.last_read_message_id, "read_at": new.read_at });
            push("read_marker", &new.org_id, Some(&new.room_id), data, Audience::Room);
        }
    } else if keys.sk == "PRESENCE" {
        // Online or offline as of now, judged as readers judge it: a heartbeat changes nothing.
        let now = dm_shared::time::epoch_secs();
        let presence = |image: &Item| Presence::of(Some(&image.clone().into()), now);
        let before = change.old.as_ref().map(presence);
        let (Some(new), Some(user)) = (&change.new, parse::<PresenceOf>(&change.new)) else { return events };
        let after = presence(new);
        if before.is_none_or(|before| before.status != after.status) {
            let data = json!({ "user_id": user.user_id, "status": after.status, "last_seen_at": after.last_seen_at });
            push("presence", &user.org_id, None, data, Audience::RoomMates(user.user_id.clone()));
        }
    } else if keys.pk.starts_with("ORG#") && keys.sk.starts_with("MEMBER#") {
        // A member marked as leaving has left: every check reads them so from that write on.
        let current = |image: &Option<Item>| parse::<Member>(image).filter(|member| !member.deleted);
        match (current(&change.old), current(&change.new)) {
            (None, Some(new)) => push("member_joined", &new.org_id, None, json!(new), Audience::Org(Vec::new())),
            (Some(old), Some(new)) if old != new => {
                push("member_updated", &new.org_id, None, json!(new), Audience::Org(Vec::new()));
            }
            (Some(old), None) => {
                let data = json!({ "member_id": old.id });
                push("member_left", &old.org_id, None, data, Audience::Org(vec![old.id.clone()]));
            }
            _ => {}
        }
    } else if keys.sk.starts_with("REACTION#") {
        let (old, new) = (parse::<Reaction>(&change.old), parse::<Reaction>(&change.new));
        let room = keys.pk.strip_prefix("ROOM#").and_then(|id| RoomId::parse(id).ok());
        match (old, new, room) {
            (None, Some(r), Some(room)) => {
                push("add_message_reaction", &r.org_id, Some(&room), reaction_data(&r), Audience::Room)
            }
            (Some(r), None, Some(room)) => {
                push("remove_message_reaction", &r.org_id, Some(&room), reaction_data(&r), Audience::Room)
            }
            _ => {}
        }
    }
    events
}

/// Whose presence item changed.
#[derive(Deserialize)]
struct PresenceOf {
    org_id: OrgId,
    user_id: UserId,
}

fn reaction_data(reaction: &Reaction) -> Value {
    json!({
        "message_id": reaction.message_id,
        "reaction_id": reaction.reaction_id,
        "sender_id": reaction.sender_id,
        "reaction": reaction.emoji,
        "created_at": reaction.created_at,
    })
}

/// Who started or stopped reading a message, and which way.
fn read_changes(old: &Message, new: &Message) -> Vec<(UserId, bool)> {
    let started = new.read_by.iter().filter(|u| !old.read_by.contains(u)).map(|u| (u, true));
    let stopped = old.read_by.iter().filter(|u| !new.read_by.contains(u)).map(|u| (u, false));
    started.chain(stopped).filter_map(|(user, read)| UserId::parse(user.as_str()).ok().map(|u| (u, read))).collect()
}
