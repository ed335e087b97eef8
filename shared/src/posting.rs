//! Sending a message or a thread reply: one path for both, and for the scheduler.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::error::Result;
use crate::http::reply;
use crate::ids::{MessageId, OrgId, RoomId, UserId};
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
    pub sender: UserId,
    pub text: MessageText,
    pub media: Vec<String>,
    /// The sender's `Idempotency-Key`.
    pub idempotency_key: Option<String>,
}

/// Stores the post with everything written with it; a retry with the same key gets the first
/// receipt and stores nothing.
pub async fn store(state: &AppState, outgoing: Outgoing) -> Result<(Message, SendReceipt)> {
    let key = outgoing.idempotency_key.map(|key| match &outgoing.parent {
        None => key,
        // A reply's key never matches a message's.
        Some(parent) => format!("thread:{parent}:{key}"),
    });
    let mut post = Message::new(
        outgoing.org,
        outgoing.room,
        outgoing.parent,
        outgoing.sender,
        outgoing.text.into_string(),
        outgoing.media,
    );
    let receipt = match state.store.send_message(&mut post, key.as_deref()).await? {
        Sent::New(receipt) | Sent::Repeat(receipt) => receipt,
    };
    Ok((post, receipt))
}

/// Stores the post and answers `201` with its event, as the seed does.
pub async fn send(state: &AppState, outgoing: Outgoing) -> Result<Response> {
    let (post, receipt) = store(state, outgoing).await?;
    let event = if post.parent.is_some() { "thread_message_create" } else { "message_create" };
    let data = json!({ "sender_id": receipt.sender_id, "message": receipt.message, "created_at": receipt.created_at });
    Ok(reply(StatusCode::CREATED, post_event(event, &receipt.message_id, &post, data)))
}
