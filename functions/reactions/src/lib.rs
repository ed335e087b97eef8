//! Reactions on messages and on thread replies. The server counts: each user's reaction with an emoji
//! is stored once, and the count on the message changes in the same transaction.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, post};
use dm_shared::access::RoomAccess;
use dm_shared::auth::Caller;
use dm_shared::http::{Json, Path, ok, reply, service};
use dm_shared::ids::{MessageId, OrgId, RoomId, UserId, new_id};
use dm_shared::model::Message;
use dm_shared::store::{PostRef, Reacted, Reaction};
use dm_shared::{AppState, Error, Result};
use serde::Deserialize;
use serde_json::{Value, json};

mod emoji;

use emoji::Emoji;

pub fn router(state: AppState) -> Router {
    let message = "/api/v1/org/{org_id}/rooms/{room_id}/messages/{message_id}";
    let reply = format!("{message}/threads/{{thread_id}}");
    let routes = Router::new()
        .route(&format!("{message}/reactions"), post(add_to_message).get(list_on_message))
        .route(&format!("{message}/reactions/{{emoji}}"), delete(remove_from_message))
        .route(&format!("{reply}/reactions"), post(add_to_reply).get(list_on_reply))
        .route(&format!("{reply}/reactions/{{emoji}}"), delete(remove_from_reply));
    service(routes, state)
}

/// What a route reacts to: a message, or a reply in its thread.
struct Target {
    org: OrgId,
    room: RoomId,
    post: PostRef,
}

impl Target {
    fn message((org, room, message): (OrgId, RoomId, MessageId)) -> Self {
        Self { org, room, post: PostRef::Message(message) }
    }

    fn reply((org, room, parent, id): (OrgId, RoomId, MessageId, MessageId)) -> Self {
        Self { org, room, post: PostRef::Reply { parent, id } }
    }

    /// The message or reply, for a member of its room; a reply needs its message too.
    async fn load(&self, state: &AppState, caller: &UserId) -> Result<Message> {
        let mut posts = vec![self.post.clone()];
        if let PostRef::Reply { parent, .. } = &self.post {
            posts.push(PostRef::Message(parent.clone()));
        }
        let (access, found) = RoomAccess::with_posts(&state.store, &self.org, &self.room, caller, &posts).await?;
        access.require_member()?;
        if found.iter().any(Option::is_none) {
            return Err(Error::not_found("message not found"));
        }
        found.into_iter().flatten().next().ok_or_else(|| Error::not_found("message not found"))
    }

    /// The ids a reaction reply names: `message_id`, and `thread_id` for a reply.
    fn ids(&self) -> Value {
        match &self.post {
            PostRef::Message(id) => json!({ "room_id": self.room, "message_id": id }),
            PostRef::Reply { parent, id } => {
                json!({ "room_id": self.room, "message_id": parent, "thread_id": id })
            }
        }
    }

    fn event(&self, event: &str, mut body: Value) -> Value {
        let mut out = self.ids();
        out["event"] = json!(event);
        if let (Value::Object(out), Value::Object(body)) = (&mut out, &mut body) {
            out.append(body);
        }
        out
    }
}

/// The seed's reaction body; its `count` is the server's to keep and is ignored.
#[derive(Deserialize)]
struct NewReaction {
    sender_id: UserId,
    data: Emoji,
    #[serde(default)]
    category: String,
    #[serde(default)]
    aliases: Vec<String>,
}

const MAX_ALIASES: usize = 20;
const MAX_LABEL: usize = 64;

async fn add(state: AppState, caller: UserId, target: Target, body: NewReaction) -> Result<Response> {
    if body.sender_id != caller {
        return Err(Error::forbidden("sender_id must be the caller"));
    }
    let labels_ok = body.category.chars().count() <= MAX_LABEL
        && body.aliases.len() <= MAX_ALIASES
        && body.aliases.iter().all(|alias| alias.chars().count() <= MAX_LABEL);
    if !labels_ok {
        return Err(Error::bad_request(format!(
            "category and aliases hold at most {MAX_LABEL} characters, at most {MAX_ALIASES} aliases"
        )));
    }
    let post = target.load(&state, &caller).await?;
    let reaction = Reaction {
        reaction_id: new_id(),
        org_id: post.org_id.clone(),
        message_id: post.id.clone(),
        sender_id: caller,
        emoji: body.data.into_string(),
        category: body.category,
        aliases: body.aliases,
        created_at: dm_shared::time::now(),
    };
    let (status, stored) = match state.store.add_reaction(&post, &reaction).await? {
        Reacted::New => (StatusCode::CREATED, reaction),
        Reacted::Existing(first) => (StatusCode::OK, first),
    };
    let data = json!({ "sender_id": stored.sender_id, "reaction": stored.emoji, "created_at": stored.created_at });
    let body = json!({ "reaction_id": stored.reaction_id, "data": data });
    Ok(reply(status, target.event("add_message_reaction", body)))
}

async fn list(state: AppState, caller: UserId, target: Target) -> Result<Response> {
    let post = target.load(&state, &caller).await?;
    let reactions = state.store.reactions(&post).await?;
    // One entry per emoji, in the order first used (reactions come oldest first).
    let mut entries: Vec<Value> = Vec::new();
    for reaction in reactions {
        match entries.iter_mut().find(|entry| entry["data"] == reaction.emoji.as_str()) {
            Some(entry) => {
                entry["count"] = json!(entry["count"].as_u64().unwrap_or_default() + 1);
                if let Some(senders) = entry["sender_ids"].as_array_mut() {
                    senders.push(json!(reaction.sender_id));
                }
            }
            None => entries.push(json!({
                "data": reaction.emoji,
                "category": reaction.category,
                "aliases": reaction.aliases,
                "count": 1,
                "sender_ids": [reaction.sender_id],
                "created_at": reaction.created_at,
            })),
        }
    }
    Ok(ok(target.event("get_message_reactions", json!({ "data": { "reactions": entries } }))))
}

async fn remove(state: AppState, caller: UserId, target: Target, emoji: Emoji) -> Result<Response> {
    let post = target.load(&state, &caller).await?;
    state.store.remove_reaction(&post, emoji.as_str(), &caller).await?;
    let data = json!({ "sender_id": caller, "reaction": emoji.as_str() });
    Ok(ok(target.event("remove_message_reaction", json!({ "data": data }))))
}

async fn add_to_message(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(path): Path<(OrgId, RoomId, MessageId)>,
    Json(body): Json<NewReaction>,
) -> Result<Response> {
    add(state, caller, Target::message(path), body).await
}

async fn add_to_reply(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(path): Path<(OrgId, RoomId, MessageId, MessageId)>,
    Json(body): Json<NewReaction>,
) -> Result<Response> {
    add(state, caller, Target::reply(path), body).await
}

async fn list_on_message(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(path): Path<(OrgId, RoomId, MessageId)>,
) -> Result<Response> {
    list(state, caller, Target::message(path)).await
}

async fn list_on_reply(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(path): Path<(OrgId, RoomId, MessageId, MessageId)>,
) -> Result<Response> {
    list(state, caller, Target::reply(path)).await
}

async fn remove_from_message(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room, message, emoji)): Path<(OrgId, RoomId, MessageId, Emoji)>,
) -> Result<Response> {
    remove(state, caller, Target::message((org, room, message)), emoji).await
}

async fn remove_from_reply(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path((org, room, parent, id, emoji)): Path<(OrgId, RoomId, MessageId, MessageId, Emoji)>,
) -> Result<Response> {
    remove(state, caller, Target::reply((org, room, parent, id)), emoji).await
}
