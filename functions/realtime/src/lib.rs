//! Real-time events over API Gateway's WebSocket API.
//!
//! `$connect` checks the bearer token (header or `?token=`) and the org (`?org_id=`) and records the
//! connection in the table (and the user as online); `$disconnect` forgets it; `$default` takes the
//! client's frames (`frames`: heartbeats and typing): the `realtime` function. The table's stream
//! feeds `publish` (the `push` function), which turns each change into the seed's events, logs them
//! in their room and posts them to every open connection of whoever they are for, through the
//! `@connections` management API. Writes never wait for any of this.

pub mod events;
pub mod frames;
pub mod lambda;
pub mod tokens;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use dm_shared::ids::{OrgId, RoomId, UserId};
use dm_shared::metrics::{Record, Unit};
use dm_shared::model::{Room, Visibility};
use dm_shared::store::Logging;
use dm_shared::{AppState, Error, Result};
use futures_util::{StreamExt, stream};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokens::{Issuer, Tokens};

pub use dm_shared::stream::Change;
pub use events::{Audience, RoomEvent, derive};

/// Posts a publish run sends at once.
const POST_CONCURRENCY: usize = 16;
/// Changes logged together, at most: under a backlog a room's run is one read and one move of its
/// log's head instead of one a change.
const RUN_CHANGES: usize = 25;
/// Events of the changes logged together, at most.
const RUN_EVENTS: usize = 50;
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
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Each user's open connections (by id) as a batch first needed them: looked up once a batch,
/// however many of its events are theirs, and together with the other users an event is for. A
/// connection opened meanwhile gets the batch's later events from the sync its client runs on
/// connecting.
#[derive(Default)]
pub(crate) struct Reach(Mutex<HashMap<OrgUser, Arc<[String]>>>);

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

/// A user in an org: whose connections.
type OrgUser = (OrgId, UserId);

/// Posts to connections since the last report.
#[derive(Default)]
struct Posts {
    delivered: AtomicU64,
    gone: AtomicU64,
    failed: AtomicU64,
}

/// The state both functions build once per cold start: the table, and the WebSocket API's
/// management endpoint (`DM_WS_ENDPOINT`).
pub async fn from_env() -> Result<Realtime, dm_shared::lambda::Error> {
    let config = dm_shared::config::Config::from_env()?;
    let endpoint = std::env::var("DM_WS_ENDPOINT").map_err(|_| "DM_WS_ENDPOINT is not set")?;
    let sdk = dm_shared::state::sdk_config(&config).await;
    Ok(Realtime::new(AppState::new(config, &sdk), &endpoint)?)
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

    /// A client of the table's stream (the DynamoDB Streams API), for a replay.
    pub fn streams_client(&self) -> aws_sdk_dynamodbstreams::Client {
        aws_sdk_dynamodbstreams::Client::new(&self.state.sdk)
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
                    (None, Audience::Org(_)) => format!("members of {}", event.org_id),
                    (None, _) => return None,
                },
                (None, None) => return None,
            };
            Some((key, (events, room)))
        };
        let reach = &Reach::default();
        let failed = dm_shared::stream::in_groups(changes, group, GROUPS_AT_ONCE, |steps| async move {
            for run in runs(steps) {
                if let Err(failed) = self.publish_run(changes, &run, reach).await {
                    return Some(failed);
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

    /// The events of a run of one room's changes (see `runs`), or of users' presence or an org's
    /// members. A room's are logged in the room (numbered there, once, whoever delivers the change
    /// and however often) and posted with their `seq` to the connections of whoever they are for, so
    /// a client that was away syncs from the log what it missed; the reader's own `read` flag,
    /// presence and the org's member events are posted and kept nowhere (a client reads the member
    /// list again when it reconnects). A run's first change may be the room's own item, which moves who its events
    /// (and the later ones) are for, even when it makes none. On failure, the index of the first
    /// change not published.
    async fn publish_run(&self, changes: &[Change], run: &[Step], reach: &Reach) -> Result<(), (usize, Error)> {
        let Some((first, (events, room_now))) = run.first() else { return Ok(()) };
        let Some((org, room)) = room_of(events, room_now.as_ref()) else {
            for (at, (events, _)) in run {
                for event in events {
                    self.deliver_unlogged(event, reach).await.map_err(|err| (*at, err))?;
                }
            }
            return Ok(());
        };
        let failed = |err| (*first, err);
        let logging: Vec<Logging> = run
            .iter()
            .map(|(at, (events, _))| Logging {
                change: changes[*at].event_id.clone(),
                created_ms: changes[*at].created_ms,
                events: events.iter().filter(|event| !event.private()).map(RoomEvent::to_log).collect(),
            })
            .collect();
        let members_now = room_now.as_ref().map(|room| (room.room_user_ids.as_slice(), room.version));
        let logged = self.state.store.log_run(&room, members_now, &logging).await.map_err(failed)?;
        for ((at, (events, _)), entries) in run.iter().zip(logged) {
            let posted = async {
                let mut entries = entries.into_iter();
                for event in events {
                    let (payload, audience) = match event.private() {
                        true => (event.payload(), event.audience.users().to_vec()),
                        false => {
                            let entry = entries.next().ok_or_else(|| Error::internal_msg("an event has no entry"))?;
                            (entry.event_with_seq()?, entry.audience)
                        }
                    };
                    self.post_to_users(&org, audience, None, &payload, reach).await?;
                }
                Ok::<_, Error>(())
            };
            posted.await.map_err(|err| (*at, err))?;
        }
        Ok(())
    }

    /// Posts an event no room logs: an org's member event to its members, a presence event to
    /// everyone who shares a room with its user.
    async fn deliver_unlogged(&self, event: &RoomEvent, reach: &Reach) -> Result<()> {
        let audience = match &event.audience {
            Audience::Org(also) => {
                let mut members = self.state.store.member_ids(&event.org_id).await?;
                members.extend(also.iter().cloned());
                members
            }
            Audience::RoomMates(user) => self.presence_audience(event, user).await?,
            Audience::Room | Audience::Users(_) => return Ok(()),
        };
        self.post_to_users(&event.org_id, audience, None, &event.payload(), reach).await
    }

    /// Who hears a user's presence event: their room mates. Of a user who hides their presence,
    /// only what hiding shows goes out (offline, never when): the event of their hiding it, not one
    /// from a presence item written before hiding was kept on it.
    async fn presence_audience(&self, event: &RoomEvent, user: &UserId) -> Result<Vec<UserId>> {
        let store = &self.state.store;
        let as_hidden = event.data["status"] == "offline" && event.data["last_seen_at"].is_null();
        Ok(match store.member(&event.org_id, user).await? {
            Some(member) if member.profile.presence == Visibility::Visible || as_hidden => {
                store.room_mates(&event.org_id, user).await?
            }
            _ => Vec::new(),
        })
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

/// A change of a group, as `publish` takes it: its index in the batch, its events and the room as
/// it leaves the room's own item.
type Step = (usize, (Vec<RoomEvent>, Option<Room>));

/// The org and room of a change's events, or of the room item it changed; `None` for presence and
/// the org's member events.
fn room_of(events: &[RoomEvent], room_now: Option<&Room>) -> Option<(OrgId, RoomId)> {
    events
        .iter()
        .find_map(|e| e.room_id.clone().map(|room| (e.org_id.clone(), room)))
        .or_else(|| room_now.map(|room| (room.org_id.clone(), room.room_id.clone())))
}

/// A group's changes cut into runs published together: a change of the room's own item starts
/// one (it moves who the events after it are for), and a run holds at most `RUN_CHANGES` changes
/// and `RUN_EVENTS` events. Under a backlog that makes logging a room's changes one read and one
/// move of its log's head a run, instead of one a change.
fn runs(steps: Vec<Step>) -> Vec<Vec<Step>> {
    let mut runs: Vec<Vec<Step>> = Vec::new();
    let mut events = 0;
    for step in steps {
        let (count, own) = (step.1.0.len(), step.1.1.is_some());
        match runs.last_mut() {
            Some(run) if !own && run.len() < RUN_CHANGES && events + count <= RUN_EVENTS => {
                events += count;
                run.push(step);
            }
            _ => {
                events = count;
                runs.push(vec![step]);
            }
        }
    }
    runs
}
