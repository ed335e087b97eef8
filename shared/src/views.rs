//! How rooms, messages and replies look in replies to clients and in events.

use serde_json::{Value, json};

use crate::ids::UserId;
use crate::model::{Message, Room};

/// A room as lists, invites and its `room_created` event show it.
pub fn room(room: &Room) -> Value {
    json!({
        "_id": room.room_id,
        "room_id": room.room_id,
        "org_id": room.org_id,
        "room_user_ids": room.room_user_ids,
        "bookmarks": room.bookmark_names(),
        "pinned": room.pinned_ids(),
        "created_at": room.created_at,
        "created_by": room.created_by,
    })
}

/// Per emoji, in the order first used: `{data, count}`.
pub fn reaction_counts(post: &Message) -> Value {
    post.reaction_counts().into_iter().map(|(emoji, count)| json!({ "data": emoji, "count": count })).collect()
}

/// A message as a list shows it to `caller`.
pub fn message(message: &Message, caller: &UserId) -> Value {
    json!({
        "id": message.id,
        "_id": message.id,
        "room_id": message.room_id,
        "sender_id": message.sender_id,
        "message": message.message,
        "media": message.media,
        "created_at": message.created_at,
        "edited": message.edited,
        "edited_at": message.edited_at,
        "pinned": message.pinned,
        "mentions": message.mentions,
        "read": message.is_read_by(caller),
        "saved_by": message.saved_by,
        "reactions": reaction_counts(message),
        "thread_count": message.thread_count,
        "threads": [],
    })
}

/// A thread reply as a thread lists it.
pub fn reply(reply: &Message) -> Value {
    json!({
        "_id": reply.id,
        "thread_id": reply.id,
        "message_id": reply.parent,
        "room_id": reply.room_id,
        "sender_id": reply.sender_id,
        "message": reply.message,
        "media": reply.media,
        "created_at": reply.created_at,
        "edited": reply.edited,
        "edited_at": reply.edited_at,
        "mentions": reply.mentions,
        "reactions": reaction_counts(reply),
    })
}

/// A search hit: a message, or a reply (`_id` is the reply, `message_id` its message).
pub fn search_hit(post: &Message) -> Value {
    json!({
        "_id": post.id,
        "message_id": post.parent.as_ref().unwrap_or(&post.id),
        "room_id": post.room_id,
        "sender_id": post.sender_id,
        "message": post.message,
        "media": post.media,
        "created_at": post.created_at,
        "thread": post.parent.is_some(),
    })
}

/// What a create or update of a post answers: the seed's event reply.
pub fn post_event(event: &str, post_id: &crate::ids::MessageId, post: &Message, data: Value) -> Value {
    let mut body = json!({ "event": event, "room_id": post.room_id, "thread": post.parent.is_some(), "data": data });
    match &post.parent {
        None => body["message_id"] = json!(post_id),
        Some(parent) => {
            body["thread_id"] = json!(post_id);
            body["message_id"] = json!(parent);
        }
    }
    body
}

/// What an edit answers: the seed's update event, with `edited: true`.
pub fn edited_event(event: &str, edited: &Message) -> Value {
    let data = json!({
        "sender_id": edited.sender_id,
        "message": edited.message,
        "created_at": edited.created_at,
        "edited_at": edited.edited_at,
        "mentions": edited.mentions,
    });
    let mut body = post_event(event, &edited.id, edited, data);
    body["edited"] = json!(true);
    body
}
