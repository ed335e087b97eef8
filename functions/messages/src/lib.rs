//! Messages: send (retry-safe), list, edit with history, delete, per-user read, pin, links and search.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use dm_shared::access::RoomAccess;
use dm_shared::auth::Caller;
use dm_shared::http::{Json, Path, Query, RawBody, ok, optional_json, reply, service};
use dm_shared::ids::{MessageId, OrgId, RoomId, UserId};
use dm_shared::input::{NewPost, idempotency_key};
use dm_shared::model::Message;
use dm_shared::paging::PageQuery;
use dm_shared::posting::{self, EditBody, Outgoing};
use dm_shared::store::PostRef;
use dm_shared::text::search_terms;
use dm_shared::views;
use dm_shared::{AppState, Error, Result};
use serde::Deserialize;
use serde_json::{Value, json};

mod read_markers;
mod schedule;

pub fn router(state: AppState) -> Router {
    let room = "/api/v1/org/{org_id}/rooms/{room_id}";
    let routes = Router::new()
        .route(&format!("{room}/messages"), post(send).get(list))
        .route(&format!("{room}/messages/{{message_id}}"), get(one).put(edit))
        .route(&format!("{room}/messages/{{message_id}}/message"), delete(remove))
        .route(&format!("{room}/messages/{{message_id}}/history"), get(history))
        .route(&format!("{room}/links"), get(room_links))
        .route(&format!("{room}/schedule-message"), post(schedule::create))
        .route(&format!("{room}/scheduled-messages"), get(schedule::list))
        .route(&format!("{room}/scheduled-messages/{{schedule_id}}"), delete(schedule::cancel))
        .route(&format!("{room}/read"), put(read_markers::mark))
        .route(&format!("{room}/read-state"), get(read_markers::state_of_room))
        .route("/api/v1/org/{org_id}/messages/{message_id}/read", put(read))
        .route("/api/v1/org/{org_id}/messages/{message_id}/pin", put(pin))
        .route("/api/v1/org/{org_id}/messages/{message_id}/link", get(link))
        .route("/api/v1/org/{org_id}/users/{user_id}/messages/search", get(search));
    service(routes, state)
}

async fn send(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
    headers: HeaderMap,
    Json(body): Json<NewPost>,
) -> Result<Response> {
    let idempotency_key = idempotency_key(&headers)?;
    let post = body.check(&caller)?;
    // Access is the send's own condition: one request while it holds.
    let outgoing = Outgoing { org, room, parent: None, post, idempotency_key };
    posting::send(&state, outgoing).await
}

/// `?around=<message_id>`: the page centred on that message instead of the newest.
#[derive(Deserialize)]
struct Around {
    around: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
    Query(query): Query<PageQuery>,
    Query(Around { around }): Query<Around>,
    uri: Uri,
) -> Result<Response> {
    let page = query.parse()?;
    let around = around.map(MessageId::parse).transpose()?;
    if around.is_some() && page.cursor.is_some() {
        return Err(Error::bad_request("a page is either around a message or at a cursor, not both"));
    }
    let read = async {
        match &around {
            Some(id) => state.store.messages_around(&room, id, page.limit).await,
            None => state.store.list_messages(&room, &page).await.map(Some),
        }
    };
    // The page is read while the access is: one round trip's wait instead of two, and it is shown
    // only to a member.
    let (access, messages) = tokio::try_join!(RoomAccess::load(&state.store, &org, &room, &caller, &[]), read)?;
    access.require_member()?;
    let messages = messages.ok_or_else(|| Error::not_found("message not found"))?;
    let (next, previous) = messages.links(&uri);
    let results: Vec<Value> = messages.items.iter().map(|m| views::message(m, &caller)).collect();
    Ok(ok(json!({
        "count": access.room.message_count,
        "next": next,
        "previous": previous,
        "results": results,
    })))
}

/// One message as the list shows it: where a search hit or a pin leads.
async fn one(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room, id)): Path<(OrgId, RoomId, MessageId)>,
) -> Result<Response> {
    let (_, message) = RoomAccess::member_with_message(&state.store, &org, &room, &caller, &id).await?;
    Ok(ok(views::message(&message, &caller)))
}

async fn edit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room, id)): Path<(OrgId, RoomId, MessageId)>,
    Json(body): Json<EditBody>,
) -> Result<Response> {
    body.check(&caller)?;
    let (access, message) = RoomAccess::member_with_message(&state.store, &org, &room, &caller, &id).await?;
    posting::edit(&state, &access, &message, body).await
}

async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room, id)): Path<(OrgId, RoomId, MessageId)>,
) -> Result<Response> {
    let (access, mut found) =
        RoomAccess::with_posts(&state.store, &org, &room, &caller, &[PostRef::Message(id)]).await?;
    access.require_member_or_manager()?;
    let message = found.pop().flatten().ok_or_else(|| Error::not_found("message not found"))?;
    posting::delete(&state, &access, &message).await
}

async fn history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room, id)): Path<(OrgId, RoomId, MessageId)>,
    Query(query): Query<PageQuery>,
    uri: Uri,
) -> Result<Response> {
    let page = query.parse()?;
    RoomAccess::member_with_message(&state.store, &org, &room, &caller, &id).await?;
    let versions = state.store.message_versions(&room, &id, &page).await?;
    let (next, previous) = versions.links(&uri);
    Ok(ok(json!({
        "message_id": id,
        "count": versions.items.len(),
        "next": next,
        "previous": previous,
        "results": versions.items,
    })))
}

/// A message named without its room: found through its pointer, for members of its room only.
async fn locate(state: &AppState, org: &OrgId, caller: &UserId, id: &MessageId) -> Result<(RoomAccess, Message)> {
    // Read, pin and link name messages; a reply's id is not one.
    let pointer = state.store.locate(id).await?.filter(|p| p.org_id == *org && p.parent.is_none());
    let Some(pointer) = pointer else {
        // Only the org's members learn that a message does not exist.
        state.store.org_member(org, caller).await?;
        return Err(Error::not_found("message not found"));
    };
    RoomAccess::member_with_message(&state.store, org, &pointer.room_id, caller, id).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadFlag {
    read: bool,
}

async fn read(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, id)): Path<(OrgId, MessageId)>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let wanted = optional_json::<ReadFlag>(&body)?;
    let (_, message) = locate(&state, &org, &caller, &id).await?;
    let read = wanted.map_or(!message.is_read_by(&caller), |flag| flag.read);
    state.store.set_read(&message, &caller, read).await?;
    Ok(ok(json!({ "read": read })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinFlag {
    pinned: bool,
}

async fn pin(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, id)): Path<(OrgId, MessageId)>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let wanted = optional_json::<PinFlag>(&body)?;
    let (access, message) = locate(&state, &org, &caller, &id).await?;
    let pinned = wanted.map_or(!message.pinned, |flag| flag.pinned);
    state.store.set_pinned(&message, pinned).await?;
    let ids = access.room.with_pin(&id, pinned);
    Ok(if pinned {
        reply(StatusCode::CREATED, json!({ "message_id": id, "pinned": ids, "event": "pin_message" }))
    } else {
        ok(json!({ "message_id": id, "pinned": ids, "event": "unpin_message" }))
    })
}

async fn link(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, id)): Path<(OrgId, MessageId)>,
) -> Result<Response> {
    let (_, message) = locate(&state, &org, &caller, &id).await?;
    let base = state.config.link_base.trim_end_matches('/');
    Ok(ok(json!({
        "room_id": message.room_id,
        "message_id": message.id,
        "link": format!("{base}/getmessage/{}/{}", message.room_id, message.id),
    })))
}

async fn room_links(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
    Query(query): Query<PageQuery>,
    uri: Uri,
) -> Result<Response> {
    let page = query.parse()?;
    RoomAccess::load(&state.store, &org, &room, &caller, &[]).await?.require_member()?;
    let links = state.store.room_links(&room, &page).await?;
    let (next, previous) = links.links(&uri);
    Ok(ok(json!({ "room_id": room, "links": links.items, "next": next, "previous": previous })))
}

#[derive(Deserialize)]
struct SearchQuery {
    keyword: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// The most words a search may hold: each costs one Query per room.
const MAX_SEARCH_WORDS: usize = 8;
/// The longest keyword, checked before it is split into words.
const MAX_KEYWORD_CHARS: usize = 512;

async fn search(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, user)): Path<(OrgId, UserId)>,
    Query(query): Query<SearchQuery>,
    uri: Uri,
) -> Result<Response> {
    let page = query.page.parse()?;
    let keyword = query.keyword.as_deref().unwrap_or("");
    if keyword.chars().count() > MAX_KEYWORD_CHARS {
        return Err(Error::bad_request(format!("keyword holds at most {MAX_KEYWORD_CHARS} characters")));
    }
    if keyword.trim().is_empty() {
        return Err(Error::bad_request("keyword is required"));
    }
    let words = search_terms(keyword);
    if words.len() > MAX_SEARCH_WORDS {
        return Err(Error::bad_request(format!("keyword holds at most {MAX_SEARCH_WORDS} words")));
    }
    state.store.org_member(&org, &caller).await?;
    if user != caller {
        return Err(Error::forbidden("You may only search your own messages"));
    }
    if words.is_empty() {
        // Punctuation or stop words alone name nothing the index holds: nothing matches them.
        return Ok(ok(json!({ "count": 0, "next": null, "previous": null, "results": [] })));
    }
    let hits = state.store.search(&org, &user, &words, &page).await?;
    let results: Vec<Value> = hits.items.iter().map(views::search_hit).collect();
    Ok(ok(hits.answer(&uri, results)))
}
