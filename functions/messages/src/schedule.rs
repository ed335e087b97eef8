//! Scheduled messages: stored now, sent by the scheduler when due.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use dm_shared::access::RoomAccess;
use dm_shared::auth::Caller;
use dm_shared::http::{Json, Path, Query, ok, reply};
use dm_shared::ids::{MessageId, OrgId, RoomId};
use dm_shared::input::NewPost;
use dm_shared::paging::PageQuery;
use dm_shared::posting;
use dm_shared::store::{Scheduled, schedule_id};
use dm_shared::{AppState, Error, Result};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The furthest ahead a message may be scheduled.
const MAX_AHEAD_DAYS: i64 = 120;

#[derive(Deserialize)]
pub struct NewSchedule {
    #[serde(flatten)]
    post: NewPost,
    timer: String,
}

/// `timer` as epoch milliseconds: RFC 3339, in the future, at most 120 days ahead.
fn due_ms(timer: &str) -> Result<i64> {
    let due = OffsetDateTime::parse(timer, &Rfc3339)
        .map_err(|_| Error::bad_request("timer must be an RFC 3339 time, such as 2030-01-31T09:00:00Z"))?;
    let now = OffsetDateTime::now_utc();
    if due <= now {
        return Err(Error::bad_request("timer must be in the future"));
    }
    if due > now + time::Duration::days(MAX_AHEAD_DAYS) {
        return Err(Error::bad_request(format!("timer must be at most {MAX_AHEAD_DAYS} days ahead")));
    }
    i64::try_from(due.unix_timestamp_nanos() / 1_000_000).map_err(Error::internal)
}

fn scheduled_json(item: &Scheduled) -> Value {
    json!({
        "schedule_id": item.schedule_id,
        "room_id": item.room_id,
        "sender_id": item.sender_id,
        "message": item.message,
        "media": item.media,
        "mentions": item.mentions,
        "timer": item.timer,
    })
}

pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
    Json(body): Json<NewSchedule>,
) -> Result<Response> {
    let post = body.post.check(&caller)?;
    let due_ms = due_ms(&body.timer)?;
    let access = RoomAccess::load(&state.store, &org, &room, &caller, &[]).await?;
    access.require_member()?;
    posting::outside_room(&access.room, &post.mentions)?;
    let item = Scheduled {
        schedule_id: schedule_id(due_ms),
        org_id: org,
        room_id: room,
        sender_id: post.sender,
        message: post.text.into_string(),
        media: post.media,
        mentions: post.mentions,
        timer: body.timer,
        due_ms,
        claimed_until_ms: 0,
        attempts: 0,
    };
    state.store.schedule(&item).await?;
    Ok(reply(
        StatusCode::CREATED,
        json!({ "message": "Message Scheduled", "schedule_id": item.schedule_id, "timer": item.timer }),
    ))
}

pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
    Query(query): Query<PageQuery>,
    uri: Uri,
) -> Result<Response> {
    let page = query.parse()?;
    RoomAccess::load(&state.store, &org, &room, &caller, &[]).await?.require_member()?;
    let pending = state.store.scheduled_by(&room, &caller, &page).await?;
    let results: Vec<Value> = pending.items.iter().map(scheduled_json).collect();
    Ok(ok(pending.answer(&uri, results)))
}

pub async fn cancel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room, id)): Path<(OrgId, RoomId, MessageId)>,
) -> Result<Response> {
    RoomAccess::load(&state.store, &org, &room, &caller, &[]).await?.require_member()?;
    state.store.cancel_scheduled(&org, &room, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
