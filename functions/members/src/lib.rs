//! Orgs, their members and profiles, and the health check.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use dm_shared::auth::Caller;
use dm_shared::http::{Json, Path, Query, created, ok, service};
use dm_shared::ids::{OrgId, UserId};
use dm_shared::model::{Member, Org, Profile, Role};
use dm_shared::notifications::Settings;
use dm_shared::paging::PageQuery;
use dm_shared::{AppState, Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

mod invites;
mod push;
mod validate;

use validate::{ProfileChanges, check_email, check_name};

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/api/v1/ping", get(ping))
        .route("/api/v1/orgs", post(create_org).get(my_orgs))
        .route("/api/v1/org/{org_id}/members", post(add_member).get(list_members))
        .route("/api/v1/org/{org_id}/members/{member_id}", delete(remove_member))
        .route("/api/v1/org/{org_id}/members/{member_id}/profile", get(profile).patch(update_profile))
        .route("/api/v1/org/{org_id}/members/{member_id}/presence", get(presence))
        .route("/api/v1/org/{org_id}/members/{member_id}/role", put(change_role))
        .route("/api/v1/org/{org_id}/invites", post(invites::create).get(invites::list))
        .route("/api/v1/org/{org_id}/invites/{invite_id}", delete(invites::revoke))
        .route("/api/v1/invites/{token}", get(invites::preview))
        .route("/api/v1/invites/{token}/accept", post(invites::accept))
        .route("/api/v1/push/vapid-public-key", get(push::vapid_public_key))
        .route("/api/v1/org/{org_id}/users/{user_id}/push-subscriptions", post(push::subscribe).get(push::list))
        .route("/api/v1/org/{org_id}/users/{user_id}/push-subscriptions/{subscription_id}", delete(push::unsubscribe));
    service(routes, state)
}

/// Healthy when the table answers.
async fn ping(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => ok(json!({ "server": true })),
        Err(err) => {
            tracing::warn!(error = %err, "ping: the table did not answer");
            let status = StatusCode::SERVICE_UNAVAILABLE;
            (status, axum::Json(json!({ "status": status.as_u16(), "server": false }))).into_response()
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewOrg {
    name: String,
}

async fn create_org(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Json(body): Json<NewOrg>,
) -> Result<Response> {
    let name = check_name(&body.name, "name")?;
    let now = dm_shared::time::now();
    let org = Org { org_id: OrgId::generate(), name, created_at: now.clone(), created_by: caller.clone() };
    let owner = Member {
        id: caller,
        org_id: org.org_id.clone(),
        role: Role::Owner,
        email: String::new(),
        profile: Profile::default(),
        joined_at: now,
        deleted: false,
    };
    state.store.create_org(&org, &owner).await?;
    Ok(created(json!({ "org_id": org.org_id, "name": org.name })))
}

/// The caller's orgs, oldest first: what an org picker lists.
async fn my_orgs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(query): Query<PageQuery>,
    uri: Uri,
) -> Result<Response> {
    let page = query.parse()?;
    let orgs = state.store.orgs_of(&caller, &page).await?;
    let results: Vec<_> = orgs
        .items
        .iter()
        .map(|(member, org)| {
            json!({ "org_id": org.org_id, "name": org.name, "role": member.role, "joined_at": member.joined_at })
        })
        .collect();
    Ok(ok(orgs.answer(&uri, results)))
}

#[derive(Deserialize)]
struct NewMember {
    member_id: UserId,
    email: String,
    #[serde(default)]
    role: Role,
    #[serde(flatten)]
    profile: ProfileChanges,
}

/// The role `me` may give a newcomer, added or invited: `member`, or `admin` from an owner. An owner
/// is made by promotion, never on arrival.
pub(crate) fn newcomer_role(me: &Member, role: Role) -> Result<Role> {
    match role {
        Role::Owner => Err(Error::bad_request("role must be \"member\" or \"admin\"")),
        role if !me.role.governs(role) => Err(Error::forbidden("Only an owner may add or invite an admin")),
        role => Ok(role),
    }
}

async fn add_member(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(org): Path<OrgId>,
    Json(body): Json<NewMember>,
) -> Result<Response> {
    let me = state.store.org_member(&org, &caller).await?;
    if !me.role.is_manager() {
        return Err(Error::forbidden("Only an owner or admin may add members"));
    }
    let member = Member {
        id: body.member_id,
        org_id: org,
        role: newcomer_role(&me, body.role)?,
        email: check_email(&body.email)?,
        profile: body.profile.apply(Profile::default())?,
        joined_at: dm_shared::time::now(),
        deleted: false,
    };
    state.store.add_member(&member).await?;
    Ok(created(json!({ "message": "Member added successfully", "data": member })))
}

async fn list_members(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(org): Path<OrgId>,
    Query(query): Query<PageQuery>,
    uri: Uri,
) -> Result<Response> {
    let page = query.parse()?;
    state.store.org_member(&org, &caller).await?;
    let members = state.store.list_members(&org, &page).await?;
    let (next, previous) = members.links(&uri);
    Ok(ok(json!({
        "message": "Members retrieved successfully",
        "data": members.items,
        "next": next,
        "previous": previous,
    })))
}

/// The profile as the seed shows it: its own fields, no envelope; `settings` to the member alone.
#[derive(Serialize)]
struct ProfileView<'a> {
    #[serde(rename = "_id")]
    id: &'a UserId,
    role: Role,
    email: &'a str,
    #[serde(flatten)]
    profile: &'a Profile,
    #[serde(skip_serializing_if = "Option::is_none")]
    settings: Option<&'a Settings>,
}

fn profile_view<'a>(member: &'a Member, settings: Option<&'a Settings>) -> axum::Json<ProfileView<'a>> {
    let profile = &member.profile;
    axum::Json(ProfileView { id: &member.id, role: member.role, email: &member.email, profile, settings })
}

async fn profile(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, member_id)): Path<(OrgId, UserId)>,
) -> Result<Response> {
    let own = async {
        match caller == member_id {
            true => state.store.settings(&org, &caller).await.map(|stored| Some(stored.settings)),
            false => Ok(None),
        }
    };
    let (_, member, settings) =
        tokio::try_join!(state.store.org_member(&org, &caller), state.store.member(&org, &member_id), own)?;
    let member = member.ok_or_else(|| Error::not_found("No such member"))?;
    Ok(profile_view(&member, settings.as_ref()).into_response())
}

/// Whether a member is online, as every other member sees it (`offline` while they hide it).
async fn presence(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, member_id)): Path<(OrgId, UserId)>,
) -> Result<Response> {
    state.store.org_member(&org, &caller).await?;
    let found = state.store.presence(&org, std::slice::from_ref(&member_id)).await?.pop().flatten();
    let presence = found.ok_or_else(|| Error::not_found("No such member"))?;
    let body = json!({ "user_id": member_id, "status": presence.status, "last_seen_at": presence.last_seen_at });
    Ok(axum::Json(body).into_response())
}

async fn update_profile(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, member_id)): Path<(OrgId, UserId)>,
    Json(changes): Json<ProfileChanges>,
) -> Result<Response> {
    let me = state.store.org_member(&org, &caller).await?;
    if me.id != member_id && !me.role.is_manager() {
        return Err(Error::forbidden("Only the member or an owner or admin may change a profile"));
    }
    changes.check()?;
    // Settings are the member's own, and saved first: a change that loses its race (409) is refused
    // whole.
    let own = me.id == member_id;
    if changes.settings().is_some() && !own {
        return Err(Error::forbidden("Only the member changes their own settings"));
    }
    let settings = match own {
        false => None,
        true => {
            let read = state.store.settings(&org, &member_id).await?;
            match changes.settings() {
                Some(patch) => {
                    let patched = read.settings.patched(patch)?;
                    state.store.save_settings(&org, &member_id, &read, patched.clone()).await?;
                    Some(patched)
                }
                None => Some(read.settings),
            }
        }
    };
    let member = state.store.update_member(&org, &member_id, &changes).await?;
    if let Some(visibility) = changes.presence() {
        state.store.show_presence(&org, &member_id, visibility).await?;
    }
    Ok(profile_view(&member, settings.as_ref()).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRole {
    role: Role,
}

/// Gives a member another role, as the org's rule allows (`Role::governs`): the caller must govern
/// both the member's role and the new one, so an admin promotes no one and only owners make owners;
/// the last owner cannot step down.
async fn change_role(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, member_id)): Path<(OrgId, UserId)>,
    Json(body): Json<NewRole>,
) -> Result<Response> {
    let (me, member) = tokio::try_join!(state.store.org_member(&org, &caller), state.store.member(&org, &member_id))?;
    if !me.role.is_manager() {
        return Err(Error::forbidden("Only an owner or admin may change roles"));
    }
    let member = member.ok_or_else(|| Error::not_found("No such member"))?;
    if !me.role.governs(member.role) || !me.role.governs(body.role) {
        return Err(Error::forbidden("Only an owner may make an owner or an admin, or change one's role"));
    }
    let member = state.store.change_role(&member, body.role, &me).await?;
    Ok(profile_view(&member, None).into_response())
}

/// Ends a membership of the org: the member leaving, or an owner or admin removing them (an admin
/// only members). The last owner cannot leave: an org always has one. The member leaves each of
/// their rooms too; a removal cut short is finished by asking again.
async fn remove_member(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, member_id)): Path<(OrgId, UserId)>,
) -> Result<Response> {
    let leaving = state.store.member_record(&org, &member_id).await?;
    let by = match caller == member_id {
        true => None,
        false => {
            let me = state.store.org_member(&org, &caller).await?;
            if !me.role.is_manager() || leaving.as_ref().is_some_and(|member| !me.role.governs(member.role)) {
                return Err(Error::forbidden(
                    "Only the member, or an owner or admin, may remove a member (an admin only members)",
                ));
            }
            Some(me)
        }
    };
    let leaving = leaving.ok_or_else(|| Error::not_found("No such member"))?;
    state.store.remove_from_org(&leaving, by.as_ref().unwrap_or(&leaving)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
