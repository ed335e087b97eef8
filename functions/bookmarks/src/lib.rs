//! Room bookmarks: named links that room info and the room's links show.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post};
use dm_shared::access::RoomAccess;
use dm_shared::auth::Caller;
use dm_shared::http::{Json, Path, Query, RawBody, ok, optional_json, reply, service};
use dm_shared::ids::{MessageId, OrgId, RoomId};
use dm_shared::store::Bookmark;
use dm_shared::text::is_web_url;
use dm_shared::{AppState, Error, Result};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router(state: AppState) -> Router {
    let room = "/api/v1/org/{org_id}/rooms/{room_id}";
    let routes = Router::new()
        .route(&format!("{room}/new-bookmark"), post(save))
        .route(&format!("{room}/bookmarks"), get(list))
        .route(&format!("{room}/bookmark"), delete(remove));
    service(routes, state)
}

const MAX_NAME: usize = 100;

fn check_name(name: &str) -> Result<()> {
    let count = name.chars().count();
    if name.trim().is_empty() || count > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::bad_request(format!("name must be 1 to {MAX_NAME} characters")));
    }
    Ok(())
}

fn bookmark_json(bookmark: &Bookmark) -> Value {
    json!({
        "name": bookmark.name,
        "link": bookmark.link,
        "created_at": bookmark.created_at,
        "created_by": bookmark.created_by,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBookmark {
    link: String,
    name: String,
    /// The seed's clients send one; the server keeps its own time.
    #[serde(default, rename = "created_at")]
    _created_at: Option<String>,
}

async fn save(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
    Json(body): Json<NewBookmark>,
) -> Result<Response> {
    check_name(&body.name)?;
    if !is_web_url(&body.link) {
        return Err(Error::bad_request("link must be an absolute http(s) URL of at most 2048 characters"));
    }
    RoomAccess::load(&state.store, &org, &room, &caller, &[]).await?.require_member()?;
    let bookmark = Bookmark {
        id: MessageId::generate(),
        name: body.name,
        link: body.link,
        created_at: dm_shared::time::now(),
        created_by: caller,
    };
    state.store.save_bookmark(&room, &bookmark).await?;
    Ok(reply(StatusCode::CREATED, bookmark_json(&bookmark)))
}

async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
) -> Result<Response> {
    RoomAccess::load(&state.store, &org, &room, &caller, &[]).await?.require_member()?;
    let bookmarks = state.store.bookmarks(&room).await?;
    let results: Vec<Value> = bookmarks.iter().map(bookmark_json).collect();
    Ok(ok(json!({ "count": results.len(), "results": results })))
}

#[derive(Deserialize)]
struct Named {
    name: Option<String>,
}

async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
    Query(query): Query<Named>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let from_body = optional_json::<Named>(&body)?.and_then(|named| named.name);
    let name = query.name.or(from_body).ok_or_else(|| Error::bad_request("name the bookmark: ?name= or {\"name\"}"))?;
    check_name(&name)?;
    RoomAccess::load(&state.store, &org, &room, &caller, &[]).await?.require_member()?;
    state.store.delete_bookmark(&room, &name).await?;
    Ok(ok(json!({})))
}
