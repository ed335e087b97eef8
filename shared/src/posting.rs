//! Sending a message or a thread reply: one path for both, and for the scheduler.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::access::RoomAccess;
use crate::error::{Error, Result};
use crate::http::reply;
use crate::ids::{MessageId, OrgId, RoomId, UserId};
use crate::input::{CheckedPost, IdempotencyKey};
use crate::model::Message;
use crate::state::AppState;
use crate::store::{SendReceipt, Sent};
use crate::text::MessageText;
use crate::views::post_event;

/// A post to store: who sends what where.
pub struct Outgoing {
    pub org: OrgId,
    pub room: RoomId,
    pub parent: Option<MessageId>,
    pub post: CheckedPost,
    pub idempotency_key: Option<IdempotencyKey>,
}

/// Stores the post with everything written with it; a retry with the same key gets the first
/// receipt and stores nothing. The send is one request: it commits only for a member of the room,
/// so the caller's access is read only when it was refused, to tell why (403 outside the org, 404
/// for no such room, 403 outside the room, 400 naming whom it mentions outside the room). A member
/// leaves the org's rooms as they leave the org, so a member of a room is one of the org.
pub async fn store(state: &AppState, outgoing: Outgoing) -> Result<(Message, SendReceipt)> {
    let key = outgoing.idempotency_key;
    let CheckedPost { sender, text, media, mentions } = outgoing.post;
    let post = Message {
        mentions,
        ..Message::new(outgoing.org, outgoing.room, outgoing.parent, sender, text.into_string(), media)
    };
    let receipt = match state.store.send_message(&post, key.as_ref()).await {
        Ok(Sent::New(receipt) | Sent::Repeat(receipt)) => receipt,
        Err(Error::Forbidden(refused)) => {
            let access = RoomAccess::load(&state.store, &post.org_id, &post.room_id, &post.sender_id, &[]).await?;
            access.require_member()?;
            outside_room(&access.room, &post.mentions)?;
            return Err(Error::Forbidden(refused));
        }
        Err(err) => return Err(err),
    };
    Ok((post, receipt))
}

/// 400 naming whom `mentions` names outside `room`.
pub fn outside_room(room: &crate::model::Room, mentions: &[UserId]) -> Result<()> {
    let outside: Vec<&str> = mentions.iter().filter(|user| !room.has_member(user)).map(UserId::as_str).collect();
    match outside.is_empty() {
        true => Ok(()),
        false => {
            Err(Error::bad_request(format!("mentions name members of the room only, not: {}", outside.join(", "))))
        }
    }
}

/// Stores the post and answers `201` with its event, as the seed does.
pub async fn send(state: &AppState, outgoing: Outgoing) -> Result<Response> {
    let (post, receipt) = store(state, outgoing).await?;
    let event = if post.parent.is_some() { "thread_message_create" } else { "message_create" };
    let data = json!({
        "sender_id": receipt.sender_id,
        "message": receipt.message,
        "created_at": receipt.created_at,
        "mentions": post.mentions,
    });
    Ok(reply(StatusCode::CREATED, post_event(event, &receipt.message_id, &post, data)))
}

/// An edit's body: the sender (who must be the caller), the new text, and the mentions when the edit
/// changes them (absent: they stay).
#[derive(serde::Deserialize)]
pub struct EditBody {
    pub sender_id: UserId,
    pub message: String,
    #[serde(default)]
    pub mentions: Option<Vec<UserId>>,
}

impl EditBody {
    /// 403 unless the body names the caller as the sender.
    pub fn check(&self, caller: &UserId) -> Result<()> {
        if self.sender_id == *caller { Ok(()) } else { Err(Error::forbidden("sender_id must be the caller")) }
    }
}

/// Replaces the text of `post` (a message or a reply) for its sender and answers the seed's update
/// event.
pub async fn edit(state: &AppState, access: &RoomAccess, post: &Message, body: EditBody) -> Result<Response> {
    if post.sender_id != access.me.id {
        return Err(Error::forbidden("Only its sender may edit a message"));
    }
    let text = MessageText::parse(body.message, !post.media.is_empty())?;
    // Mentions named now must be the room's; those kept stand, whoever left since.
    let mentions = match body.mentions {
        Some(mentions) => {
            let mentions = crate::input::check_mentions(mentions)?;
            outside_room(&access.room, &mentions)?;
            mentions
        }
        None => post.mentions.clone(),
    };
    let edited = state.store.edit_message(post, text, mentions).await?;
    let event = if edited.parent.is_some() { "thread_message_update" } else { "message_update" };
    Ok(crate::http::ok(crate::views::edited_event(event, &edited)))
}

/// Deletes `post` (a message or a reply) for its sender, or for an org owner or admin, who moderate
/// every room of the org whether or not they are in it.
pub async fn delete(state: &AppState, access: &crate::access::RoomAccess, post: &Message) -> Result<Response> {
    access.require_member_or_manager()?;
    if post.sender_id != access.me.id && !access.me.role.is_manager() {
        return Err(Error::forbidden("Only its sender or an org owner or admin may delete a message"));
    }
    state.store.delete_message(post).await?;
    Ok(crate::http::ok(json!({ "message": "OK" })))
}
