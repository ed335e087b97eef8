//! Thread replies: one level deep under a message, with the message's `thread_count` kept in the same
//! transaction as each reply.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::{post, put};
use dm_shared::access::RoomAccess;
use dm_shared::auth::Caller;
use dm_shared::http::{Json, Path, Query, ok, service};
use dm_shared::ids::{MessageId, OrgId, RoomId, UserId};
use dm_shared::input::{NewPost, idempotency_key};
use dm_shared::model::Message;
use dm_shared::paging::PageQuery;
use dm_shared::posting::{self, EditBody, Outgoing};
use dm_shared::store::PostRef;
use dm_shared::views;
use dm_shared::{AppState, Error, Result};
use serde_json::{Value, json};

pub fn router(state: AppState) -> Router {
    let thread = "/api/v1/org/{org_id}/rooms/{room_id}/messages/{message_id}/threads";
    let routes = Router::new()
        .route(thread, post(reply).get(list))
        .route(&format!("{thread}/{{thread_id}}"), put(edit).delete(remove));
    service(routes, state)
}

fn parent_missing() -> Error {
    Error::not_found("message or room not found")
}

/// The parent message, for a member of its room. Naming a reply as the parent is a 400: threads are
/// one level deep.
async fn parent(
    state: &AppState,
    org: &OrgId,
    room: &RoomId,
    caller: &UserId,
    id: &MessageId,
) -> Result<(RoomAccess, Message)> {
    let (access, mut posts) =
        RoomAccess::with_posts(&state.store, org, room, caller, &[PostRef::Message(id.clone())]).await?;
    access.require_member()?;
    match posts.pop().flatten() {
        Some(message) => Ok((access, message)),
        None if state.store.locate(id).await?.is_some_and(|p| p.parent.is_some() && p.room_id == *room) => {
            Err(Error::bad_request("Threads are one level deep: reply to the message, not to a reply"))
        }
        None => Err(parent_missing()),
    }
}

async fn reply(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room, parent_id)): Path<(OrgId, RoomId, MessageId)>,
    headers: HeaderMap,
    Json(body): Json<NewPost>,
) -> Result<Response> {
    let idempotency_key = idempotency_key(&headers)?;
    let post = body.check(&caller)?;
    parent(&state, &org, &room, &caller, &parent_id).await?;
    let outgoing = Outgoing { org, room, parent: Some(parent_id), post, idempotency_key };
    posting::send(&state, outgoing).await
}

async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room, parent_id)): Path<(OrgId, RoomId, MessageId)>,
    Query(query): Query<PageQuery>,
    uri: Uri,
) -> Result<Response> {
    let page = query.parse()?;
    // Read while the access is, as a room's messages are; shown only once it holds.
    let ((_, message), replies) = tokio::try_join!(
        parent(&state, &org, &room, &caller, &parent_id),
        state.store.list_replies(&room, &parent_id, &page)
    )?;
    let (next, previous) = replies.links(&uri);
    let results: Vec<Value> = replies.items.iter().map(views::reply).collect();
    Ok(ok(json!({ "count": message.thread_count, "next": next, "previous": previous, "results": results })))
}

/// The parent and the reply; 404 when either is missing. The caller decides who may touch it.
async fn reply_of(
    state: &AppState,
    org: &OrgId,
    room: &RoomId,
    caller: &UserId,
    parent: &MessageId,
    id: &MessageId,
) -> Result<(RoomAccess, Message)> {
    let posts = [PostRef::Message(parent.clone()), PostRef::Reply { parent: parent.clone(), id: id.clone() }];
    let (access, found) = RoomAccess::with_posts(&state.store, org, room, caller, &posts).await?;
    access.require_member_or_manager()?;
    match <[Option<Message>; 2]>::try_from(found) {
        Ok([Some(_), Some(reply)]) => Ok((access, reply)),
        _ => Err(Error::not_found("room, message or thread message not found")),
    }
}

async fn edit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room, parent_id, id)): Path<(OrgId, RoomId, MessageId, MessageId)>,
    Json(body): Json<EditBody>,
) -> Result<Response> {
    body.check(&caller)?;
    let (access, reply) = reply_of(&state, &org, &room, &caller, &parent_id, &id).await?;
    access.require_member()?;
    posting::edit(&state, &access, &reply, body).await
}

async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room, parent_id, id)): Path<(OrgId, RoomId, MessageId, MessageId)>,
) -> Result<Response> {
    let (access, reply) = reply_of(&state, &org, &room, &caller, &parent_id, &id).await?;
    posting::delete(&state, &access, &reply).await
}
