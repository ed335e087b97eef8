//! Rooms and their membership: create (idempotent per member set), list, info, and the four seeds'
//! ways to add and remove members.

use std::collections::HashMap;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use dm_shared::auth::Caller;
use dm_shared::http::{Json, Path, Query, ok, reply, service};
use dm_shared::ids::{OrgId, RoomId, UserId};
use dm_shared::model::Room;
use dm_shared::notifications::{RoomLevel, RoomNotifications, Watch};
use dm_shared::paging::PageQuery;
use dm_shared::store::{CreatedRoom, InboxEntry, InboxOrder, MAX_ROOM_MEMBERS, MembershipChange};
use dm_shared::views;
use dm_shared::{AppState, Error, Result};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

mod access;

mod sync;

use access::may_remove;
use dm_shared::access::RoomAccess;

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/api/v1/org/{org_id}/room", post(create_room))
        .route("/api/v1/org/{org_id}/users/{user_id}/rooms", get(user_rooms))
        .route("/api/v1/org/{org_id}/users/{user_id}/unread", get(unread))
        .route("/api/v1/org/{org_id}/users/{user_id}/sync", get(sync::sync))
        .route("/api/v1/org/{org_id}/rooms/{room_id}/info", get(room_info))
        .route(
            "/api/v1/org/{org_id}/rooms/{room_id}/notifications",
            get(room_notifications).put(set_room_notifications),
        )
        .route("/api/v1/org/{org_id}/rooms/{room_id}/add-member/{member_id}", put(add_member))
        .route("/api/v1/org/{org_id}/rooms/{room_id}/members", post(invite))
        .route("/api/v1/org/{org_id}/rooms/{room_id}/remove-member/{member_id}", put(remove_member))
        .route("/api/v1/org/{org_id}/rooms/{room_id}/members/{member_id}", delete(delete_membership))
        .route("/api/v1/org/{org_id}/rooms/{room_id}/participants", delete(remove_participant));
    service(routes, state)
}

/// Users a request names who are not members of the org: well-formed ids of no one here, as
/// `add-member/{member_id}` answers them.
fn not_in_org(ids: &[&str]) -> Error {
    Error::not_found(format!("not members of the organization: {}", ids.join(", ")))
}

/// The seed's create body. `org_id` (the path names the org), `bookmarks` and `pinned` are accepted
/// for compatibility and ignored; a room's bookmarks and pins come from their own routes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRoom {
    room_user_ids: Vec<UserId>,
    #[serde(default, rename = "org_id")]
    _org_id: Option<IgnoredAny>,
    #[serde(default, rename = "bookmarks")]
    _bookmarks: Option<IgnoredAny>,
    #[serde(default, rename = "pinned")]
    _pinned: Option<IgnoredAny>,
}

async fn create_room(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(org): Path<OrgId>,
    Json(body): Json<NewRoom>,
) -> Result<Response> {
    // Bounded before the (quadratic) de-duplication below.
    if body.room_user_ids.len() > MAX_ROOM_MEMBERS {
        return Err(Error::bad_request(format!("room_user_ids holds at most {MAX_ROOM_MEMBERS} ids")));
    }
    let mut members = vec![caller.clone()];
    for user in body.room_user_ids {
        if !members.contains(&user) {
            members.push(user);
        }
    }
    if members.len() > MAX_ROOM_MEMBERS {
        return Err(Error::bad_request(format!("a room holds at most {MAX_ROOM_MEMBERS} members")));
    }
    let missing = state.store.non_members(&org, &members).await?;
    if missing.contains(&caller) {
        return Err(Error::forbidden("You are not a member of this organization"));
    }
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(UserId::as_str).collect();
        return Err(not_in_org(&names));
    }
    let room = Room {
        room_id: RoomId::generate(),
        org_id: org,
        room_user_ids: members,
        bookmarks: Vec::new(),
        pinned: Vec::new(),
        message_count: 0,
        created_at: dm_shared::time::now(),
        created_by: caller,
        version: 0,
        holds_member_set: true,
    };
    Ok(match state.store.create_room(&room).await? {
        CreatedRoom::New(id) => reply(StatusCode::CREATED, json!({ "room_id": id })),
        CreatedRoom::Existing(id) => ok(json!({ "room_id": id })),
    })
}

#[derive(Deserialize)]
struct InboxQuery {
    #[serde(flatten)]
    page: PageQuery,
    #[serde(default)]
    sort: Option<String>,
    #[serde(default)]
    unread: Option<String>,
}

/// The caller's inbox: their rooms by latest activity (or `sort=created`), each with its last
/// message, unread count and the caller's read marker; `unread=true` keeps rooms with unread
/// messages only.
async fn user_rooms(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, user)): Path<(OrgId, UserId)>,
    Query(query): Query<InboxQuery>,
    uri: Uri,
) -> Result<Response> {
    let page = query.page.parse()?;
    let order = match query.sort.as_deref() {
        None | Some("activity") => InboxOrder::Activity,
        Some("created") => InboxOrder::Created,
        Some(_) => return Err(Error::bad_request("sort is activity or created")),
    };
    let unread_only = match query.unread.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(Error::bad_request("unread is true or false")),
    };
    own(&caller, &user)?;
    let inbox = state.store.inbox(&org, &user, order, unread_only, &page);
    let (mut rooms, settings) = tokio::try_join!(inbox, state.store.settings(&org, &user))?;
    let watch = Watch::new(&user, &settings.settings);
    // The page's unread rooms are counted while its members' presence is read.
    let (unread, presence) = tokio::try_join!(
        state.store.count_unread(&watch, &rooms.items),
        others_presence(&state, &org, &user, &rooms.items)
    )?;
    for (entry, unread) in rooms.items.iter_mut().zip(unread) {
        entry.unread = unread;
    }
    // Unread by its last message, yet none after all: only the caller's own after a marker moved back.
    rooms.items.retain(|entry| !unread_only || entry.unread.count > 0);
    let results: Vec<Value> = rooms
        .items
        .iter()
        .map(|entry| {
            let (mut json, room) = (inbox_json(entry), &entry.room);
            if room.room_user_ids.len() <= PRESENCE_ROOM_MEMBERS {
                let others = room.room_user_ids.iter().filter(|member| **member != user);
                let shown = others.filter_map(|member| presence.get(member).map(|p| (member.to_string(), p.clone())));
                json["presence"] = Value::Object(shown.collect());
            }
            json
        })
        .collect();
    Ok(ok(rooms.answer(&uri, results)))
}

/// Rooms of at most this many members show their other members' presence in the inbox: a DM's
/// green dot, a small group's; a page costs one more batch read whatever its rooms.
const PRESENCE_ROOM_MEMBERS: usize = 9;

/// The presence of the other members of the page's small rooms, by user.
async fn others_presence(
    state: &AppState,
    org: &OrgId,
    user: &UserId,
    rooms: &[InboxEntry],
) -> Result<HashMap<UserId, Value>> {
    let mut others: Vec<UserId> = Vec::new();
    for room in rooms.iter().map(|entry| &entry.room).filter(|room| room.room_user_ids.len() <= PRESENCE_ROOM_MEMBERS) {
        for member in &room.room_user_ids {
            if member != user && !others.contains(member) {
                others.push(member.clone());
            }
        }
    }
    let found = state.store.presence(org, &others).await?;
    Ok(others
        .into_iter()
        .zip(found)
        .filter_map(|(other, presence)| {
            presence.map(|p| (other, json!({ "status": p.status, "last_seen_at": p.last_seen_at })))
        })
        .collect())
}

/// A member of the org looking at their own inbox.
async fn own_inbox(state: &AppState, org: &OrgId, caller: &UserId, user: &UserId) -> Result<()> {
    own(caller, user)?;
    state.store.org_member(org, caller).await.map(drop)
}

/// Only one's own inbox.
fn own(caller: &UserId, user: &UserId) -> Result<()> {
    if user == caller { Ok(()) } else { Err(Error::forbidden("You may only see your own rooms")) }
}

/// The caller's notification settings for a room, and whether it is muted now.
fn notifications_json(room: &RoomId, settings: &RoomNotifications) -> Value {
    json!({
        "room_id": room,
        "level": settings.level,
        "muted_until": settings.muted_until,
        "muted": settings.muted(dm_shared::time::now_ms()),
    })
}

async fn room_notifications(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
) -> Result<Response> {
    let settings = state.store.room_notifications(&org, &caller, &room).await?;
    Ok(ok(notifications_json(&room, &settings)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRoomNotifications {
    #[serde(default)]
    level: RoomLevel,
    #[serde(default)]
    muted_until: Option<String>,
}

/// Sets the caller's notification level for a room and mutes it until a time (or unmutes it).
async fn set_room_notifications(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
    Json(body): Json<NewRoomNotifications>,
) -> Result<Response> {
    if body.muted_until.as_deref().is_some_and(|until| !dm_shared::time::is_stamp(until)) {
        return Err(Error::bad_request("muted_until is an RFC 3339 time, such as 2030-01-31T09:00:00Z, or null"));
    }
    let settings = RoomNotifications { level: body.level, muted_until: body.muted_until };
    state.store.set_room_notifications(&org, &caller, &room, &settings).await?;
    Ok(ok(notifications_json(&room, &settings)))
}

fn inbox_json(InboxEntry { room, row, unread }: &InboxEntry) -> Value {
    let mut json = views::room(room);
    json["muted"] = json!(row.notifications.muted(dm_shared::time::now_ms()));
    json["notify_level"] = json!(row.notifications.level);
    json["last_message"] = json!(row.last_message);
    json["last_activity_at"] = json!(row.last_activity_at);
    json["unread_count"] = json!(unread.count);
    json["unread_count_capped"] = json!(unread.capped);
    json["mention_count"] = json!(unread.mentions);
    json["last_read_message_id"] = json!(row.last_read_message_id);
    json
}

/// `{rooms, messages}` unread, for a badge.
async fn unread(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, user)): Path<(OrgId, UserId)>,
) -> Result<Response> {
    own(&caller, &user)?;
    // Counted while the membership is read; shown only once it holds.
    let (_, totals) = tokio::try_join!(state.store.org_member(&org, &caller), state.store.unread_totals(&org, &user))?;
    Ok(ok(json!({
        "rooms": totals.rooms,
        "messages": totals.messages,
        "messages_capped": totals.capped,
        "mentions": totals.mentions,
    })))
}

async fn room_info(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
) -> Result<Response> {
    let access = RoomAccess::load(&state.store, &org, &room, &caller, &[]).await?;
    access.require_member_or_manager()?;
    let room = access.room;
    let count = room.room_user_ids.len();
    Ok(ok(json!({
        "room_id": room.room_id,
        "org_id": room.org_id,
        "room_user_ids": room.room_user_ids,
        "created_at": room.created_at,
        "created_by": room.created_by,
        "description": description(&room),
        "Number of users": count.to_string(),
        "member_count": count,
        "bookmarks": room.bookmark_names(),
        "pinned": room.pinned_ids(),
    })))
}

/// The seed's generated room description.
fn description(room: &Room) -> String {
    let ids: Vec<&str> = room.room_user_ids.iter().map(UserId::as_str).collect();
    match ids.split_last() {
        None => "This room has no members".to_owned(),
        Some((only, [])) => format!("This room contains the conversation of {only} only"),
        Some((last, rest)) => {
            format!("This room contains the conversation between {} and {last} only", rest.join(", "))
        }
    }
}

fn membership_reply(room: &Room) -> Response {
    ok(json!({ "message": "success", "room_id": room.room_id, "room_user_ids": room.room_user_ids }))
}

async fn add_member(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room, member)): Path<(OrgId, RoomId, UserId)>,
) -> Result<Response> {
    let access = RoomAccess::load(&state.store, &org, &room, &caller, std::slice::from_ref(&member)).await?;
    access.require_member_or_manager()?;
    if access.others[0].is_none() {
        return Err(Error::not_found("No such member in this organization"));
    }
    let twice = || Error::NotAcceptable("Not Acceptable, You can't join a room twice".into());
    if access.room.has_member(&member) {
        return Err(twice());
    }
    let change = MembershipChange { add: vec![member], remove: Vec::new() };
    let changed = state.store.change_membership(access.room, &change).await?;
    if changed.added.is_empty() {
        return Err(twice());
    }
    Ok(membership_reply(&changed.room))
}

/// Rocket.Chat's `channels.invite`: one id or up to 50.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invite {
    /// Rocket.Chat's `channels.invite` names them `userId` and `userIds`, beside the room's `roomId`
    /// (ignored: the path names the room).
    #[serde(alias = "userId")]
    member_id: Option<UserId>,
    #[serde(alias = "userIds")]
    member_ids: Option<Vec<UserId>>,
    #[serde(default, rename = "roomId")]
    _room_id: Option<IgnoredAny>,
}

const MAX_INVITES: usize = 50;

async fn invite(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
    Json(body): Json<Invite>,
) -> Result<Response> {
    let invited = match (body.member_id, body.member_ids) {
        (Some(one), None) => vec![one],
        (None, Some(many)) if (1..=MAX_INVITES).contains(&many.len()) => many,
        (None, Some(_)) => {
            return Err(Error::bad_request(format!("member_ids must hold 1 to {MAX_INVITES} ids")));
        }
        _ => return Err(Error::bad_request("send either member_id or member_ids")),
    };
    let access = RoomAccess::load(&state.store, &org, &room, &caller, &invited).await?;
    access.require_member_or_manager()?;
    let missing: Vec<&str> =
        invited.iter().zip(&access.others).filter(|(_, member)| member.is_none()).map(|(id, _)| id.as_str()).collect();
    if !missing.is_empty() {
        return Err(not_in_org(&missing));
    }
    let change = MembershipChange { add: invited.clone(), remove: Vec::new() };
    let changed = state.store.change_membership(access.room, &change).await?;
    let mut already: Vec<&UserId> = invited.iter().filter(|id| !changed.added.contains(id)).collect();
    already.dedup();
    Ok(ok(json!({ "room": views::room(&changed.room), "added": changed.added, "already_members": already })))
}

/// Removes `member` from the room when the caller may: the member themself, the room's creator or an
/// org owner/admin.
async fn remove(state: &AppState, caller: &UserId, org: &OrgId, room: &RoomId, member: UserId) -> Result<Room> {
    let access = RoomAccess::load(&state.store, org, room, caller, &[]).await?;
    if !may_remove(&access, &member) {
        return Err(Error::forbidden(
            "Only the member, the room's creator or an org owner or admin may remove a member",
        ));
    }
    let not_member = || Error::not_found("This user is not a member of the room");
    if !access.room.has_member(&member) {
        return Err(not_member());
    }
    let change = MembershipChange { add: Vec::new(), remove: vec![member] };
    let changed = state.store.change_membership(access.room, &change).await?;
    if changed.removed.is_empty() {
        return Err(not_member());
    }
    Ok(changed.room)
}

async fn remove_member(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room, member)): Path<(OrgId, RoomId, UserId)>,
) -> Result<Response> {
    let room = remove(&state, &caller, &org, &room, member).await?;
    Ok(membership_reply(&room))
}

/// Chime's `DeleteRoomMembership`: 204, no body.
async fn delete_membership(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room, member)): Path<(OrgId, RoomId, UserId)>,
) -> Result<Response> {
    remove(&state, &caller, &org, &room, member).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Mudbase's remove-participant body.
#[derive(Deserialize)]
struct Participant {
    #[serde(rename = "userId")]
    user_id: UserId,
}

async fn remove_participant(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
    Json(body): Json<Participant>,
) -> Result<Response> {
    remove(&state, &caller, &org, &room, body.user_id).await?;
    Ok(ok(json!({ "message": "Participant removed successfully" })))
}
