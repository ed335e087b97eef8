//! Catching up after a reconnect: the caller's room events after a sync token, across their rooms,
//! from the rooms' logs the realtime push keeps, in the order they were published.

use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use dm_shared::auth::Caller;
use dm_shared::http::{Path, Query, ok};
use dm_shared::ids::{OrgId, UserId};
use dm_shared::paging::PageQuery;
use dm_shared::store::SyncToken;
use dm_shared::{AppState, Error, Result};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
pub struct SyncQuery {
    #[serde(flatten)]
    page: PageQuery,
    #[serde(default)]
    since: Option<String>,
}

/// Without `since`: no events, and the token of "from now on". With it: the events after it
/// (`limit`, at most 100), `next` when more follow, and the token to sync from next time. A token
/// older than the events kept is `410`: the client reloads.
pub async fn sync(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, user)): Path<(OrgId, UserId)>,
    Query(query): Query<SyncQuery>,
    uri: Uri,
) -> Result<Response> {
    let page = query.page.parse()?;
    if page.cursor.is_some() {
        return Err(Error::bad_request("sync pages with since, not cursor"));
    }
    let since = query.since.as_deref().filter(|since| !since.is_empty()).map(SyncToken::parse).transpose()?;
    super::own_inbox(&state, &org, &caller, &user).await?;
    let synced = state.store.sync(&org, &user, since.as_ref(), page.limit).await?;
    let token = synced.token.to_string();
    let next = synced.more.then(|| format!("{}?since={token}&limit={}", uri.path(), page.limit));
    Ok(ok(json!({ "events": synced.events, "next": next, "token": token })))
}
