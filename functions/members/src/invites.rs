//! Invitations: owners and admins make a link, anyone with it previews where it leads and joins.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use dm_shared::auth::Caller;
use dm_shared::http::{Path, Query, RawBody, created, ok, optional_json};
use dm_shared::ids::{InviteId, OrgId, UserId};
use dm_shared::model::{Member, Profile, Role};
use dm_shared::paging::PageQuery;
use dm_shared::store::{
    Accepted, DEFAULT_INVITE_SECS, Invite, InviteToken, MAX_INVITE_SECS, MAX_INVITE_USES, MIN_INVITE_SECS,
};
use dm_shared::{AppState, Error, Result};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::newcomer_role;
use crate::validate::{ProfileChanges, check_email};

/// Previews and accepts one caller may try in a window: far above what joining takes (a preview and
/// an accept), far below what guessing would need.
const ATTEMPTS: u32 = 20;
const ATTEMPTS_WINDOW_SECS: u64 = 60;

/// What a new invite asks for; no body at all asks for the defaults.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewInvite {
    #[serde(default)]
    role: Role,
    #[serde(default, deserialize_with = "dm_shared::input::some_whole_number")]
    expires_in: Option<i64>,
    #[serde(default, deserialize_with = "dm_shared::input::some_whole_number")]
    max_uses: Option<i64>,
    #[serde(default)]
    email: Option<String>,
}

/// The invite as its org's owners and admins see it (never its token, which only its maker gets).
fn view(invite: &Invite) -> Value {
    json!({
        "invite_id": invite.invite_id,
        "org_id": invite.org_id,
        "role": invite.role,
        "invited_by": invite.invited_by,
        "email": invite.email,
        "created_at": invite.created_at,
        "expires_at": invite.expires_at,
        "max_uses": invite.max_uses,
        "uses": invite.uses,
    })
}

/// The caller's membership of `org` if they may manage its invites: 403 otherwise.
async fn manager(state: &AppState, org: &OrgId, caller: &UserId) -> Result<Member> {
    let me = state.store.org_member(org, caller).await?;
    if !me.role.is_manager() {
        return Err(Error::forbidden("Only an owner or admin may manage invites"));
    }
    Ok(me)
}

pub async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(org): Path<OrgId>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let asked = optional_json::<NewInvite>(&body)?.unwrap_or_default();
    let (me, found) = tokio::try_join!(manager(&state, &org, &caller), state.store.org(&org))?;
    let role = newcomer_role(&me, asked.role)?;
    let lifetime = match asked.expires_in.map(u64::try_from) {
        None => DEFAULT_INVITE_SECS,
        Some(Ok(secs)) if (MIN_INVITE_SECS..=MAX_INVITE_SECS).contains(&secs) => secs,
        Some(_) => {
            return Err(Error::bad_request(format!("expires_in is {MIN_INVITE_SECS} to {MAX_INVITE_SECS} seconds")));
        }
    };
    let max_uses = match asked.max_uses.map(u32::try_from) {
        None => None,
        Some(Ok(uses)) if (1..=MAX_INVITE_USES).contains(&uses) => Some(uses),
        Some(_) => return Err(Error::bad_request(format!("max_uses is 1 to {MAX_INVITE_USES}"))),
    };
    // An invite made out to someone is for them alone unless its maker says otherwise.
    let email = asked.email.as_deref().map(check_email).transpose()?;
    let max_uses = max_uses.or(email.as_ref().map(|_| 1));
    let org_name = found.ok_or_else(|| Error::not_found("No such organization"))?.name;
    let expires_secs = dm_shared::time::epoch_secs() + lifetime;
    let invite = Invite {
        invite_id: InviteId::generate(),
        org_id: org,
        org_name,
        role,
        inviter_name: me.name().to_owned(),
        invited_by: caller.clone(),
        email,
        created_at: dm_shared::time::now(),
        expires_at: dm_shared::time::stamp_secs(expires_secs),
        expires_secs,
        max_uses,
        uses: 0,
    };
    let token = InviteToken::generate()?;
    state.store.create_invite(&invite, &token, &me).await?;
    let mut body = view(&invite);
    body["token"] = json!(token.as_str());
    body["url"] = json!(format!("{}#invite={}", state.config.app_url, token.as_str()));
    Ok(created(body))
}

pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(org): Path<OrgId>,
    Query(query): Query<PageQuery>,
    uri: Uri,
) -> Result<Response> {
    let page = query.parse()?;
    manager(&state, &org, &caller).await?;
    let invites = state.store.invites(&org, &page).await?;
    let results: Vec<Value> = invites.items.iter().map(view).collect();
    Ok(ok(invites.answer(&uri, results)))
}

pub async fn revoke(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, invite_id)): Path<(OrgId, InviteId)>,
) -> Result<Response> {
    let me = manager(&state, &org, &caller).await?;
    state.store.revoke_invite(&org, &invite_id, &me).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The invite a link's token opens, live or not, once the caller's attempt is counted: 404 for a
/// token no invite has (mistyped, made up, revoked), 429 past the caller's attempts.
async fn opened(state: &AppState, caller: &UserId, token: &str) -> Result<(InviteToken, Invite)> {
    let token = InviteToken::parse(token);
    // Counted and read at once: one round trip, and the count's refusal comes first.
    let counted = state.store.attempt("invite", caller, ATTEMPTS, ATTEMPTS_WINDOW_SECS);
    let (counted, invite) = tokio::join!(counted, state.store.invite(&token));
    counted?;
    Ok((token, invite?))
}

/// Where a link leads, before joining: the org, who invites, as what, until when, and whether the
/// caller is in already (to whom a link they used shows where it led, even used up); 410 for anyone
/// else when it expired or was used up.
pub async fn preview(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(token): Path<String>,
) -> Result<Response> {
    let (_, invite) = opened(&state, &caller, &token).await?;
    let member = state.store.member(&invite.org_id, &caller).await?;
    if member.is_none() {
        invite.check_live(dm_shared::time::epoch_secs())?;
    }
    Ok(ok(json!({
        "org_id": invite.org_id,
        "org_name": invite.org_name,
        "invited_by": invite.invited_by,
        "invited_by_name": invite.inviter_name,
        "role": invite.role,
        "expires_at": invite.expires_at,
        "member": member.is_some(),
    })))
}

/// Joins the invite's org with its role and the profile the body gives (a display name, say); one
/// already in it stays as they are.
pub async fn accept(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(token): Path<String>,
    RawBody(body): RawBody,
) -> Result<Response> {
    let profile = optional_json::<ProfileChanges>(&body)?.unwrap_or_default().apply(Profile::default())?;
    let (token, invite) = opened(&state, &caller, &token).await?;
    let member = Member {
        id: caller,
        org_id: invite.org_id.clone(),
        role: invite.role,
        // Only a one-person invite's address is the member's; on a shared link it is a label.
        email: invite.email.clone().filter(|_| invite.max_uses == Some(1)).unwrap_or_default(),
        profile,
        joined_at: dm_shared::time::now(),
        deleted: false,
    };
    let (message, member) = match state.store.accept_invite(&token, &invite, &member).await? {
        Accepted::Joined(member) => ("Joined the organization", member),
        Accepted::AlreadyMember(member) => ("Already a member of the organization", member),
    };
    Ok(ok(json!({ "message": message, "org_name": invite.org_name, "data": member })))
}
