//! Read markers and receipts: a member says how far they have read a room (Slack's
//! `conversations.mark`, Chime's `UpdateChannelReadMarker`), and the room's members see how far each
//! has read ("seen").

use axum::extract::State;
use axum::response::Response;
use dm_shared::access::RoomAccess;
use dm_shared::auth::Caller;
use dm_shared::http::{Path, RawBody, ok, optional_json};
use dm_shared::ids::{MessageId, OrgId, RoomId, UserId};
use dm_shared::{AppState, Result};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkBody {
    message_id: Option<MessageId>,
}

/// `PUT .../read`: everything up to and including the message (the newest by default) is read; an
/// older message marks what follows it unread again. Setting the same marker again changes nothing.
pub async fn mark(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let wanted = optional_json::<MarkBody>(&body)?.and_then(|body| body.message_id);
    let message = match wanted {
        Some(id) => RoomAccess::member_with_message(&state.store, &org, &room, &caller, &id).await?.1,
        None => {
            RoomAccess::load(&state.store, &org, &room, &caller, &[]).await?.require_member()?;
            match state.store.newest_message(&room).await? {
                Some(newest) => newest,
                // Nothing to read yet: nothing to mark.
                None => return Ok(ok(marker_json(&room, &caller, None, None))),
            }
        }
    };
    let marker = state.store.mark_read(&org, &room, &caller, &message.id).await?;
    Ok(ok(marker_json(&room, &caller, Some(&marker.last_read_message_id), Some(&marker.read_at))))
}

/// A member's marker (`null`s before their first).
fn marker_json(room: &RoomId, user: &UserId, last_read: Option<&MessageId>, read_at: Option<&str>) -> Value {
    json!({ "room_id": room, "user_id": user, "last_read_message_id": last_read, "read_at": read_at })
}

/// `GET .../read-state`: each member's marker, in the room's member order (`null` for one who has
/// read nothing).
pub async fn state_of_room(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
) -> Result<Response> {
    let access = RoomAccess::load(&state.store, &org, &room, &caller, &[]).await?;
    access.require_member()?;
    let members = &access.room.room_user_ids;
    let rows = state.store.member_rows(&org, &room, members).await?;
    let results: Vec<Value> = members
        .iter()
        .zip(rows)
        .map(|(member, row)| match row {
            Some(row) => marker_json(&room, member, row.last_read_message_id.as_ref(), row.read_at.as_deref()),
            None => marker_json(&room, member, None, None),
        })
        .collect();
    Ok(ok(json!({ "room_id": room, "results": results })))
}
