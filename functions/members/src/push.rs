//! Web Push subscriptions: each member's own browsers, checked at the door (https, public hosts
//! only), at most `MAX_SUBSCRIPTIONS` a member in an org.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dm_shared::auth::Caller;
use dm_shared::http::{Json, Path, created, ok};
use dm_shared::ids::{OrgId, SubscriptionId, UserId};
use dm_shared::push::NewSubscription;
use dm_shared::store::{Subscribed, Subscription};
use dm_shared::{AppState, Error, Result};
use serde_json::{Value, json};

/// The key browsers subscribe with (`applicationServerKey`): 404 where the stack has none.
pub async fn vapid_public_key(State(state): State<AppState>, Caller(_): Caller) -> Result<Response> {
    let key = state.config.vapid_public_key.as_ref();
    let key = key.ok_or_else(|| Error::not_found("Web Push is not set up on this stack"))?;
    Ok(ok(json!({ "public_key": key })))
}

/// Subscriptions are their member's alone, in an org they belong to.
async fn own(state: &AppState, org: &OrgId, caller: &UserId, user: &UserId) -> Result<()> {
    if caller != user {
        return Err(Error::forbidden("Only your own push subscriptions"));
    }
    state.store.org_member(org, caller).await.map(drop)
}

fn view(subscription: &Subscription) -> Value {
    json!({
        "subscription_id": subscription.subscription_id,
        "endpoint": subscription.endpoint,
        "created_at": subscription.created_at,
    })
}

/// Keeps the browser's subscription: 201 when new, 200 when the browser subscribed again.
pub async fn subscribe(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, user)): Path<(OrgId, UserId)>,
    Json(body): Json<NewSubscription>,
) -> Result<Response> {
    own(&state, &org, &caller, &user).await?;
    let subscription = body.check(state.config.push_reach).await?;
    Ok(match state.store.subscribe(&org, &user, &subscription).await? {
        Subscribed::New(kept) => created(view(&kept)),
        Subscribed::Renewed(id) => ok(json!({ "subscription_id": id, "endpoint": subscription.endpoint })),
    })
}

pub async fn list(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, user)): Path<(OrgId, UserId)>,
) -> Result<Response> {
    own(&state, &org, &caller, &user).await?;
    let results: Vec<Value> = state.store.subscriptions(&org, &user).await?.iter().map(view).collect();
    Ok(ok(json!({ "count": results.len(), "results": results })))
}

pub async fn unsubscribe(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, user, id)): Path<(OrgId, UserId, SubscriptionId)>,
) -> Result<Response> {
    own(&state, &org, &caller, &user).await?;
    state.store.unsubscribe(&org, &user, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
