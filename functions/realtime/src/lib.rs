//! Real-time events over API Gateway's WebSocket API.
//!
//! `$connect` checks the bearer token (header or `?token=`) and the org (`?org_id=`) and records the
//! connection in the table (and the user as online); `$disconnect` forgets it; `$default` takes the
//! client's frames (`frames`: heartbeats and typing). The table's stream feeds `publish`, which turns
//! each change into the seed's events and posts them to every open connection of every member of the
//! room, through the `@connections` management API. Writes never wait for any of this.

pub mod events;
pub mod frames;
pub mod lambda;
pub mod tokens;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use dm_shared::ids::{OrgId, UserId};
use dm_shared::metrics::{Record, Unit};
use dm_shared::model::{Room, Visibility};
use dm_shared::{AppState, Error, Result};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokens::{Issuer, Tokens};

pub use dm_shared::stream::Change;
pub use events::{Audience, RoomEvent, derive};
pub use lambda::handle;

/// Posts a publish run sends at once.
const POST_CONCURRENCY: usize = 16;

impl dm_shared::stream::Consumer for Realtime {
    fn consume(&self, changes: &[Change]) -> impl Future<Output = Vec<String>> + Send {
        self.publish(changes)
    }
}

#[derive(Clone)]
pub struct Realtime {
    state: AppState,
    tokens: Tokens,
    sockets: aws_sdk_apigatewaymanagement::Client,
    posts: Arc<Posts>,
}

/// Posts to connections since the last report.
#[derive(Default)]
struct Posts {
    delivered: AtomicU64,
    gone: AtomicU64,
    failed: AtomicU64,
}

impl Realtime {
    /// `endpoint` is the WebSocket API's management endpoint (`https://{api}.execute-api.{region}.
    /// amazonaws.com/{stage}`, or the local API).
    /// Refuses to start with an issuer but no audience.
    pub fn new(state: AppState, endpoint: &str) -> Result<Self> {
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(&state.sdk).endpoint_url(endpoint).build();
        let tokens = match &state.config.jwt_issuer {
            Some(issuer) => Tokens::Issuer(Arc::new(Issuer::new(issuer, state.config.jwt_audience.clone())?)),
            None => Tokens::Secret(state.verifier.clone()),
        };
        let sockets = aws_sdk_apigatewaymanagement::Client::from_conf(config);
        Ok(Self { state, tokens, sockets, posts: Arc::default() })
    }

    /// Accepts a connection for a valid token of a member of `org_id`: 401 otherwise for the token,
    /// 403 for the org, 400 without an org.
    pub async fn connect(&self, connection_id: &str, token: Option<&str>, org: Option<&str>) -> Result<UserId> {
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| Error::Unauthorized("a token is required".into()))?;
        let user = self.tokens.verify(token).await?;
        let org = OrgId::parse(org.unwrap_or_default())?;
        self.state.store.org_member(&org, &user).await?;
        self.state.store.open_connection(&org, &user, connection_id).await?;
        Ok(user)
    }

    pub async fn disconnect(&self, connection_id: &str) -> Result<()> {
        self.state.store.close_connection(connection_id).await
    }

    /// Publishes the events of `changes`, in order, stopping at the first change whose events could
    /// not all be delivered. Returns the sequence numbers of that change and every later one, for
    /// the stream to deliver again: a room's events never arrive out of order.
    pub async fn publish(&self, changes: &[Change]) -> Vec<String> {
        let failed = dm_shared::stream::in_order(changes, |change| async move {
            for event in derive(change) {
                self.deliver(&event).await?;
            }
            Ok(())
        })
        .await;
        let take = |count: &AtomicU64| count.swap(0, Ordering::Relaxed) as f64;
        Record::default()
            .dimension("Function", dm_shared::metrics::function_name())
            .value("EventsDelivered", take(&self.posts.delivered), Unit::Count)
            .value("ConnectionsGone", take(&self.posts.gone), Unit::Count)
            .value("DeliveriesFailed", take(&self.posts.failed), Unit::Count)
            .value("RecordsRetried", failed.len() as f64, Unit::Count)
            .emit();
        failed
    }

    /// Posts one event to every open connection of its audience: the room's members now (or the one
    /// member it is for, or whoever shares a room with a user whose presence is not hidden).
    async fn deliver(&self, event: &RoomEvent) -> Result<()> {
        let store = &self.state.store;
        let audience = match (&event.audience, &event.room_id) {
            (Audience::Users(users), _) => users.clone(),
            (Audience::Room, Some(room)) => {
                let (room, _, _) = store.room_bundle(&event.org_id, room, &[], &[]).await?;
                room.map(|room: Room| room.room_user_ids).unwrap_or_default()
            }
            (Audience::Room, None) => Vec::new(),
            (Audience::RoomMates(user), _) => match store.member(&event.org_id, user).await? {
                Some(member) if member.profile.presence == Visibility::Visible => {
                    store.room_mates(&event.org_id, user).await?
                }
                _ => Vec::new(),
            },
        };
        self.post_to_users(&event.org_id, audience, None, &event.payload()).await
    }

    /// Posts `payload` to every open connection of `users` in `org`, but `except`'s.
    async fn post_to_users(
        &self,
        org: &OrgId,
        users: Vec<UserId>,
        except: Option<&UserId>,
        payload: &Value,
    ) -> Result<()> {
        let payload = Blob::new(payload.to_string());
        // Every member's connections looked up at once (bounded), not one query after another.
        let lookups = users.into_iter().filter(|user| Some(user) != except).map(|user| {
            let (store, org) = (self.state.store.clone(), org.clone());
            async move { store.connections(&org, &user).await }
        });
        let per_user: Vec<Vec<_>> = stream::iter(lookups).buffer_unordered(POST_CONCURRENCY).try_collect().await?;
        let connections: Vec<_> = per_user.into_iter().flatten().collect();
        let results: Vec<Result<()>> = stream::iter(connections)
            .map(|connection| {
                let payload = payload.clone();
                async move { self.post(&connection.connection_id, payload).await }
            })
            .buffer_unordered(POST_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Posts to one connection; a connection that is gone is forgotten.
    async fn post(&self, connection_id: &str, payload: Blob) -> Result<()> {
        let (count, result) =
            match self.sockets.post_to_connection().connection_id(connection_id).data(payload).send().await {
                Ok(_) => (&self.posts.delivered, Ok(())),
                Err(err) if err.as_service_error().is_some_and(|e| e.is_gone_exception()) => {
                    (&self.posts.gone, self.state.store.close_connection(connection_id).await)
                }
                Err(err) => (&self.posts.failed, Err(Error::Unavailable(Box::new(err)))),
            };
        count.fetch_add(1, Ordering::Relaxed);
        result
    }
}
