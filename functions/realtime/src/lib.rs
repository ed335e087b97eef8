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
use dm_shared::ids::{OrgId, RoomId, UserId};
use dm_shared::metrics::{Record, Unit};
use dm_shared::model::{Room, Visibility};
use dm_shared::store::{Appended, Numbered, Share};
use dm_shared::{AppState, Error, Result};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokens::{Issuer, Tokens};

pub use dm_shared::stream::Change;
pub use events::{Audience, RoomEvent, derive};
pub use lambda::handle;

/// Posts a publish run sends at once.
const POST_CONCURRENCY: usize = 16;
/// Rooms (and users' presence) of one batch published at once: each in order, independent of the others.
const GROUPS_AT_ONCE: usize = 4;

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
    known: Arc<Known>,
}

/// What this instance last numbered in each room and last appended to each feed: the guesses that
/// make numbering and appending one request each while they hold (another instance's writes make
/// them stale, which the conditions catch).
#[derive(Default)]
struct Known {
    rooms: Mutex<HashMap<RoomId, Numbered>>,
    feeds: Mutex<HashMap<Feed, u64>>,
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Each user's open connections (by id) as a batch first needed them: looked up once a batch,
/// however many of its events are theirs, and together with the other users an event is for. A
/// connection opened meanwhile gets the batch's later events from the sync its client runs on
/// connecting.
#[derive(Default)]
pub(crate) struct Reach(Mutex<HashMap<Feed, Arc<[String]>>>);

impl Reach {
    /// Drops a connection that is gone: the batch's later events are not posted to it again.
    fn forget(&self, connection_id: &str) {
        for ids in locked(&self.0).values_mut() {
            if ids.iter().any(|id| id == connection_id) {
                *ids = ids.iter().filter(|id| *id != connection_id).cloned().collect();
            }
        }
    }
}

/// A user in an org: whose feed and connections.
type Feed = (OrgId, UserId);

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
        Ok(Self { state, tokens, sockets, posts: Arc::default(), known: Arc::default() })
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
        let group = |change| {
            let (events, room) = (derive(change), events::room_item(change));
            let key = match (events.first(), &room) {
                (_, Some(room)) => room.room_id.to_string(),
                (Some(event), None) => match (&event.room_id, &event.audience) {
                    (Some(room), _) => room.to_string(),
                    (None, Audience::RoomMates(user)) => format!("presence of {user}"),
                    (None, _) => return None,
                },
                (None, None) => return None,
            };
            Some((key, (events, room)))
        };
        let reach = &Reach::default();
        let failed = dm_shared::stream::in_groups(changes, group, GROUPS_AT_ONCE, |steps| async move {
            for (at, (events, room)) in steps {
                if let Err(err) = self.publish_change(&changes[at], events, room, reach).await {
                    return Some((at, err));
                }
            }
            None
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

    /// The events of one change. A room's are numbered in the room, kept in the feed of each user
    /// they are for and posted to that user's connections with their place in it (`token`), so a
    /// client that was away syncs exactly what it missed; presence is posted and kept nowhere.
    /// `room_now` is the room as a change of its own item leaves it: that moves who its later events
    /// are for, even when it makes no event.
    async fn publish_change(
        &self,
        change: &Change,
        events: Vec<RoomEvent>,
        room_now: Option<Room>,
        reach: &Reach,
    ) -> Result<()> {
        let Some((org, room)) = events
            .iter()
            .find_map(|e| e.room_id.clone().map(|room| (e.org_id.clone(), room)))
            .or_else(|| room_now.as_ref().map(|room| (room.org_id.clone(), room.room_id.clone())))
        else {
            for event in &events {
                self.deliver_presence(event, reach).await?;
            }
            return Ok(());
        };
        let store = &self.state.store;
        let count = events.iter().filter(|event| !event.private()).count() as u64;
        let members_now = room_now.as_ref().map(|room| room.room_user_ids.as_slice());
        let known = locked(&self.known.rooms).get(&room).cloned();
        let numbered = store.number_events(&room, &change.sequence_number, count, members_now, known).await?;
        let Some(numbered) = numbered else {
            // Published before, with later changes of its room: delivered again with a batch.
            return Ok(());
        };
        locked(&self.known.rooms).insert(room.clone(), numbered.clone());
        let mut seq = numbered.first;
        let mut shares: Vec<(UserId, Vec<Value>)> = Vec::new();
        for event in &events {
            let mut payload = event.payload();
            if !event.private() {
                payload["seq"] = seq.into();
                seq += 1;
            }
            let audience = match &event.audience {
                Audience::Users(users) => users,
                Audience::Room | Audience::RoomMates(_) => &numbered.members,
            };
            for user in audience {
                match shares.iter_mut().find(|(member, _)| member == user) {
                    Some((_, payloads)) => payloads.push(payload.clone()),
                    None => shares.push((user.clone(), vec![payload.clone()])),
                }
            }
        }
        let users: Vec<UserId> = shares.iter().map(|(user, _)| user.clone()).collect();
        self.look_up(&org, &users, reach).await?;
        let shares = {
            let known = locked(&self.known.feeds);
            let known = |user: &UserId| known.get(&(org.clone(), user.clone())).copied().unwrap_or_default();
            shares.into_iter().map(|(user, events)| Share { known: known(&user), user, events }).collect()
        };
        let appended = store.append_to_feeds(&org, &room, &change.sequence_number, numbered.again, shares).await?;
        let org = &org;
        let sends = appended.into_iter().map(|Appended { user, entries, last }| async move {
            locked(&self.known.feeds).insert((org.clone(), user.clone()), last);
            for entry in entries {
                self.post_to_users(org, vec![user.clone()], None, &entry.event_with_token()?, reach).await?;
            }
            Ok::<_, Error>(())
        });
        stream::iter(sends).buffer_unordered(POST_CONCURRENCY).try_collect::<Vec<()>>().await.map(drop)
    }

    /// Posts a presence event to everyone who shares a room with its user. Of a user who hides
    /// their presence, only what hiding shows goes out (offline, never when): the event of their
    /// hiding it, not one from a presence item written before hiding was kept on it.
    async fn deliver_presence(&self, event: &RoomEvent, reach: &Reach) -> Result<()> {
        let Audience::RoomMates(user) = &event.audience else { return Ok(()) };
        let store = &self.state.store;
        let as_hidden = event.data["status"] == "offline" && event.data["last_seen_at"].is_null();
        let audience = match store.member(&event.org_id, user).await? {
            Some(member) if member.profile.presence == Visibility::Visible || as_hidden => {
                store.room_mates(&event.org_id, user).await?
            }
            _ => Vec::new(),
        };
        self.post_to_users(&event.org_id, audience, None, &event.payload(), reach).await
    }

    /// Posts `payload` to every open connection of `users` in `org`, but `except`'s, as `reach`
    /// knows them or looks them up.
    async fn post_to_users(
        &self,
        org: &OrgId,
        users: Vec<UserId>,
        except: Option<&UserId>,
        payload: &Value,
        reach: &Reach,
    ) -> Result<()> {
        let payload = Blob::new(payload.to_string());
        let users: Vec<UserId> = users.into_iter().filter(|user| Some(user) != except).collect();
        self.look_up(org, &users, reach).await?;
        let ids: Vec<String> = {
            let known = locked(&reach.0);
            let of_user = |user: &UserId| known.get(&(org.clone(), user.clone())).cloned().unwrap_or_default();
            users.iter().flat_map(|user| of_user(user).to_vec()).collect()
        };
        let results: Vec<Result<()>> = stream::iter(ids)
            .map(|connection_id| {
                let payload = payload.clone();
                async move { self.post(&connection_id, payload, Some(reach)).await }
            })
            .buffer_unordered(POST_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Looks up, in one batch read, the connections of those of `users` that `reach` does not know yet.
    async fn look_up(&self, org: &OrgId, users: &[UserId], reach: &Reach) -> Result<()> {
        let unknown: Vec<UserId> = {
            let known = locked(&reach.0);
            users.iter().filter(|user| !known.contains_key(&(org.clone(), (*user).clone()))).cloned().collect()
        };
        if unknown.is_empty() {
            return Ok(());
        }
        let found = self.state.store.open_connections(org, &unknown).await?;
        let mut known = locked(&reach.0);
        for (user, ids) in unknown.into_iter().zip(found) {
            known.insert((org.clone(), user), ids.into());
        }
        Ok(())
    }

    /// Posts to one connection; a connection that is gone is forgotten, by the table and by the
    /// batch's `reach` when there is one.
    async fn post(&self, connection_id: &str, payload: Blob, reach: Option<&Reach>) -> Result<()> {
        let (count, result) =
            match self.sockets.post_to_connection().connection_id(connection_id).data(payload).send().await {
                Ok(_) => (&self.posts.delivered, Ok(())),
                Err(err) if err.as_service_error().is_some_and(|e| e.is_gone_exception()) => {
                    if let Some(reach) = reach {
                        reach.forget(connection_id);
                    }
                    (&self.posts.gone, self.state.store.close_connection(connection_id).await)
                }
                Err(err) => (&self.posts.failed, Err(Error::Unavailable(Box::new(err)))),
            };
        count.fetch_add(1, Ordering::Relaxed);
        result
    }
}
