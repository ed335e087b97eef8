//! Read markers and receipts: a member says how far they have read a room (Slack's
//! `conversations.mark`, Chime's `UpdateChannelReadMarker`), and the room's members see how far each
//! has read ("seen").

use axum::extract::State;
use axum::response::Response;
use dm_shared::access::RoomAccess;
use dm_shared::auth::Caller;
use dm_shared::http::{Path, RawBody, ok, optional_json};
use dm_shared::ids::{MessageId, OrgId, RoomId, UserId};
use dm_shared::store::ReadMarker;
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
                None => return Ok(ok(no_marker(&room, &caller))),
            }
        }
    };
    let marker = state.store.mark_read(&org, &room, &caller, &message.id).await?;
    Ok(ok(marker_view(&marker)))
}

fn marker_view(marker: &ReadMarker) -> Value {
    json!({
        "room_id": marker.room_id,
        "user_id": marker.user_id,
        "last_read_message_id": marker.last_read_message_id,
        "read_at": marker.read_at,
    })
}

fn no_marker(room: &RoomId, user: &UserId) -> Value {
    json!({ "room_id": room, "user_id": user, "last_read_message_id": null, "read_at": null })
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
    let markers = state.store.read_markers(&room).await?;
    let results: Vec<Value> = access
        .room
        .room_user_ids
        .iter()
        .map(|member| match markers.iter().find(|marker| marker.user_id == *member) {
            Some(marker) => marker_view(marker),
            None => no_marker(&room, member),
        })
        .collect();
    Ok(ok(json!({ "room_id": room, "results": results })))
}
