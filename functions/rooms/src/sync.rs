//! Catching up after a reconnect: the caller's room events after a sync token, in the order their
//! connections were sent them, from the feed the realtime push keeps.

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
use serde_json::{Value, json};

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
    let Some(since) = since else {
        let token = state.store.feed_end(&org, &user).await?;
        return Ok(ok(json!({ "events": [], "next": null, "token": token.to_string() })));
    };
    since.check_retained()?;
    let (entries, more) = state.store.feed_after(&org, &user, since.seq, page.limit).await?;
    let events = entries.iter().map(|entry| entry.event_with_token()).collect::<Result<Vec<Value>>>()?;
    // Nothing new: the same token, which expires with the entry it names (once every entry has
    // expired a feed may start again from 1, and a token must not outlive what it counts from).
    let token = entries.last().map_or(since, |last| SyncToken { seq: last.seq, at_ms: last.at_ms });
    let next = more.then(|| format!("{}?since={token}&limit={}", uri.path(), page.limit));
    Ok(ok(json!({ "events": events, "next": next, "token": token.to_string() })))
}
