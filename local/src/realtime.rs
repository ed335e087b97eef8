//! The local WebSocket API: `/ws` stands in for API Gateway's WebSocket API, `@connections/{id}` (on a
//! loopback port of its own) for its management API, and a reader of DynamoDB Local's stream for the
//! Lambda event source mapping.
//! All three hand over to the same `dm_realtime` code that runs in AWS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dm_notifier::Notifier;
use dm_notifier::webpush::{Pusher, Vapid};
use dm_projector::Projector;
use dm_realtime::{Change, Realtime};
use dm_shared::AppState;
use dm_shared::store::{Usage, measured};
use dm_shared::stream::api::{ItemKeys, read_record};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::event_source::{EventSource, Image};

/// The open local sockets, by connection id.
#[derive(Clone, Default)]
struct Sockets(Arc<Mutex<HashMap<String, mpsc::UnboundedSender<String>>>>);

impl Sockets {
    fn insert(&self, id: String, sender: mpsc::UnboundedSender<String>) {
        lock(&self.0).insert(id, sender);
    }

    fn remove(&self, id: &str) -> Option<mpsc::UnboundedSender<String>> {
        lock(&self.0).remove(id)
    }

    fn send(&self, id: &str, text: String) -> bool {
        let sockets = lock(&self.0);
        sockets.get(id).is_some_and(|sender| sender.send(text).is_ok())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Adds what a consumer asked of DynamoDB to its `part` of `work`.
fn account(work: &Arc<Mutex<StreamWork>>, part: fn(&mut StreamWork) -> &mut Usage) -> impl Fn(Usage) + use<> {
    let work = work.clone();
    move |used| {
        let mut work = lock(&work);
        let part = part(&mut work);
        *part = part.plus(used);
    }
}

/// The local WebSocket side: the `realtime` code, the open sockets, and the management API that
/// only this process can reach.
#[derive(Clone)]
pub struct Hub {
    realtime: Realtime,
    sockets: Sockets,
    endpoint: String,
    /// Passes the stream reader has made over every shard; the last quiet one the projector, and the
    /// push, took with nothing of its own left to read (see `settled`).
    read: watch::Receiver<u64>,
    projected: watch::Receiver<u64>,
    pushed: watch::Receiver<u64>,
    notified: watch::Receiver<u64>,
    work: Arc<Mutex<StreamWork>>,
}

/// What each stream consumer has asked of DynamoDB since the stack started: the background cost of
/// the writes, which the load bench reports per message.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamWork {
    pub projector: Usage,
    pub push: Usage,
    pub notifier: Usage,
}

/// What the stream reader hands a consumer: a shard's batch, or the end of a pass over every shard
/// (`quiet` when it read nothing).
#[derive(Clone)]
enum Delivery {
    Changes(Arc<[Change]>),
    Passed { pass: u64, quiet: bool },
}

impl Hub {
    /// Serves `@connections` on its own loopback port under a path only this process knows (the
    /// functions inside it are its only callers, as only IAM-authorised callers reach it in AWS),
    /// and, with `read_stream`, reads the table's stream from now on into the projector, the push
    /// and the notifier (which signs with `vapid`). The tasks it returns run until aborted.
    pub async fn start(
        state: &AppState,
        read_stream: bool,
        vapid: Vapid,
    ) -> Result<(Self, Vec<JoinHandle<()>>), crate::BoxError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let secret = ulid::Ulid::new();
        let endpoint = format!("http://{}/{secret}", listener.local_addr()?);
        let realtime = Realtime::new(state.clone(), &endpoint)?;
        let (mark_read, read) = watch::channel(0);
        let (mark_projected, projected) = watch::channel(0);
        let (mark_pushed, pushed) = watch::channel(0);
        let (mark_notified, notified) = watch::channel(0);
        let hub = Self {
            realtime: realtime.clone(),
            sockets: Sockets::default(),
            endpoint: endpoint.clone(),
            read: read.clone(),
            projected,
            pushed,
            notified,
            work: Arc::default(),
        };
        let path = format!("/{secret}/@connections/{{connection_id}}");
        let management =
            Router::new().route(&path, post(post_to_connection).delete(close_connection)).with_state(hub.clone());
        let serving = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, management).await {
                tracing::error!(error = %err, "the local @connections API stopped");
            }
        });
        let mut tasks = vec![serving];
        if read_stream {
            // Each consumer on its own, as each has its own event source mapping in AWS: the push
            // never waits for the projector, nor the projector for the push.
            let reader = StreamReader::open(state).await?;
            let settle = Settle { read: read.clone(), settled: mark_projected };
            let projector = Projector::new(state.clone());
            let (to_projector, projector_task) = Mapping::start(
                EventSource::of("ProjectorFunction")?,
                projector,
                Some(settle),
                account(&hub.work, |w| &mut w.projector),
            );
            tasks.push(projector_task);
            let settle = Settle { read: read.clone(), settled: mark_pushed };
            let source = EventSource::of("PushFunction")?;
            let (to_push, push_task) =
                Mapping::start(source, realtime, Some(settle), account(&hub.work, |w| &mut w.push));
            tasks.push(push_task);
            let settle = Settle { read: read.clone(), settled: mark_notified };
            let pusher = Pusher::new(vapid, state.config.push_reach)?;
            let notifier = Notifier::new(state.clone(), pusher);
            let source = EventSource::of("NotifierFunction")?;
            let (to_notifier, notifier_task) =
                Mapping::start(source, notifier, Some(settle), account(&hub.work, |w| &mut w.notifier));
            tasks.push(notifier_task);
            tasks.push(tokio::spawn(reader.run(vec![to_projector, to_push, to_notifier], mark_read)));
        }
        Ok((hub, tasks))
    }

    /// Returns once the projector (and the push and the notifier) has consumed every write made before the call, and what its own
    /// writes cascade into (a deleted message's replies): a pass of the stream reader over every
    /// shard that began after the call and after the projector's last batch found nothing new.
    /// What the projector keeps (inboxes, counts, the search index) then shows every earlier write.
    pub async fn settled(&self) -> Result<(), crate::BoxError> {
        // The pass under way may have read a shard before the call: the one after it is whole.
        let whole = *self.read.borrow() + 2;
        let mut consumers = [self.projected.clone(), self.pushed.clone(), self.notified.clone()];
        let all = async {
            for consumer in &mut consumers {
                consumer.wait_for(|passed| *passed >= whole).await?;
            }
            Ok::<_, watch::error::RecvError>(())
        };
        tokio::time::timeout(Duration::from_secs(180), all).await??;
        Ok(())
    }

    /// What the stream's consumers have asked of DynamoDB so far.
    pub fn stream_work(&self) -> StreamWork {
        *lock(&self.work)
    }

    /// Where the local `@connections` API answers (what `DM_WS_ENDPOINT` names in AWS).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The public route: `/ws`, where clients connect.
    pub fn routes(&self) -> Router {
        Router::new().route("/ws", get(connect)).with_state(self.clone())
    }
}

#[derive(Deserialize)]
struct ConnectQuery {
    token: Option<String>,
    org_id: Option<String>,
}

/// `$connect`: a refused token or org is answered before the upgrade, as API Gateway does.
async fn connect(
    State(hub): State<Hub>,
    Query(query): Query<ConnectQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let header = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let token = header.map(str::to_owned).or(query.token);
    let connection_id = ulid::Ulid::new().to_string();
    // Open before the connection is recorded: an event posted between `$connect` and the upgrade
    // waits in the outbox, as API Gateway accepts posts once `$connect` has answered.
    let (sender, outbox) = mpsc::unbounded_channel();
    hub.sockets.insert(connection_id.clone(), sender);
    if let Err(err) = hub.realtime.connect(&connection_id, token.as_deref(), query.org_id.as_deref()).await {
        hub.sockets.remove(&connection_id);
        return err.into_response();
    }
    let failed = (hub.clone(), connection_id.clone());
    upgrade
        .on_failed_upgrade(move |_| {
            tokio::spawn(async move { forget(&failed.0, &failed.1).await });
        })
        .on_upgrade(move |socket| serve_socket(hub, connection_id, outbox, socket))
}

async fn serve_socket(
    hub: Hub,
    connection_id: String,
    mut outbox: mpsc::UnboundedReceiver<String>,
    mut socket: WebSocket,
) {
    loop {
        tokio::select! {
            out = outbox.recv() => match out {
                Some(text) => if socket.send(WsMessage::text(text)).await.is_err() { break },
                None => break,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                // `$default`: the answer, if any, comes back through `@connections` as in AWS.
                Some(Ok(WsMessage::Text(text))) => {
                    if let Err(err) = hub.realtime.receive(&connection_id, text.as_str()).await {
                        tracing::warn!(error = %err, "a frame was not answered");
                    }
                }
                // WebSocket pings are answered by axum.
                Some(Ok(_)) => {}
            },
        }
    }
    forget(&hub, &connection_id).await;
}

/// `$disconnect`.
async fn forget(hub: &Hub, connection_id: &str) {
    hub.sockets.remove(connection_id);
    if let Err(err) = hub.realtime.disconnect(connection_id).await {
        tracing::warn!(error = %err, "a closed connection was not forgotten");
    }
}

/// `POST @connections/{id}`: 410 Gone for a connection that is not open, as API Gateway answers.
async fn post_to_connection(State(hub): State<Hub>, Path(connection_id): Path<String>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body).into_owned();
    if hub.sockets.send(&connection_id, text) { StatusCode::OK.into_response() } else { gone() }
}

async fn close_connection(State(hub): State<Hub>, Path(connection_id): Path<String>) -> Response {
    match hub.sockets.remove(&connection_id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => gone(),
    }
}

fn gone() -> Response {
    (StatusCode::GONE, [("x-amzn-errortype", "GoneException")], axum::Json(json!({ "message": "Gone" })))
        .into_response()
}

/// Where a shard is read from, and where reading it resumes after a failed read.
struct Shard {
    /// `None` once the shard is closed and read to its end.
    iterator: Option<String>,
    /// The last record handed over: a new iterator starts after it.
    last: Option<String>,
    /// Where a new iterator starts before any record was handed over.
    start: ShardIteratorType,
}

/// The DynamoDB Streams API of the stack's table.
pub fn streams_client(state: &AppState) -> aws_sdk_dynamodbstreams::Client {
    let mut config = aws_sdk_dynamodbstreams::config::Builder::from(&state.sdk);
    if let Some(endpoint) = &state.config.dynamodb_endpoint {
        config = config.endpoint_url(endpoint);
    }
    aws_sdk_dynamodbstreams::Client::from_conf(config.build())
}

/// The table's stream in DynamoDB Local, read as the Lambda event source mappings read it in AWS:
/// each shard in order, resuming after the last record handed over when a read fails. Shards open
/// when the reader opens are read from their latest record, shards that open later from their first.
struct StreamReader {
    streams: aws_sdk_dynamodbstreams::Client,
    arn: String,
    shards: HashMap<String, Shard>,
}

impl StreamReader {
    /// Opens the stream: once this returns, every later write is read.
    async fn open(state: &AppState) -> Result<Self, crate::BoxError> {
        let streams = streams_client(state);
        let table = state.store.client().describe_table().table_name(state.store.table()).send().await?;
        let arn = table.table.and_then(|t| t.latest_stream_arn).ok_or("the table has no stream")?;
        let mut reader = Self { streams, arn, shards: HashMap::new() };
        reader.discover(ShardIteratorType::Latest).await?;
        Ok(reader)
    }

    /// Takes up the shards not known yet, from `start`.
    async fn discover(&mut self, start: ShardIteratorType) -> Result<(), crate::BoxError> {
        let described = self.streams.describe_stream().stream_arn(&self.arn).send().await?;
        let shards = described.stream_description.and_then(|d| d.shards).unwrap_or_default();
        for id in shards.into_iter().filter_map(|shard| shard.shard_id) {
            if !self.shards.contains_key(&id) {
                let mut shard = Shard { iterator: None, last: None, start: start.clone() };
                shard.iterator = Some(self.iterator(&id, &shard).await?);
                self.shards.insert(id, shard);
            }
        }
        Ok(())
    }

    async fn iterator(&self, id: &str, shard: &Shard) -> Result<String, crate::BoxError> {
        let request = self.streams.get_shard_iterator().stream_arn(&self.arn).shard_id(id);
        let request = match &shard.last {
            Some(last) => request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(last),
            None => request.shard_iterator_type(shard.start.clone()),
        };
        Ok(request.send().await?.shard_iterator.ok_or("no shard iterator")?)
    }

    /// Hands each mapping what its filter passes of every batch, for ever, and the end of each pass
    /// over the shards to them and to `passes`.
    async fn run(mut self, mappings: Vec<Mapping>, passes: watch::Sender<u64>) {
        let mut described = Instant::now();
        for pass in 1.. {
            let started = Instant::now();
            if described.elapsed() >= Duration::from_secs(2) {
                described = Instant::now();
                if let Err(err) = self.discover(ShardIteratorType::TrimHorizon).await {
                    tracing::warn!(error = %err, "describing the stream failed");
                }
            }
            let mut busy = false;
            let ids: Vec<String> = self.shards.keys().cloned().collect();
            for id in ids {
                let Some(current) = self.shards.get(&id).and_then(|shard| shard.iterator.clone()) else { continue };
                match self.streams.get_records().shard_iterator(current).send().await {
                    Ok(output) => {
                        let records = output.records.unwrap_or_default();
                        busy |= !records.is_empty();
                        let changes: Vec<(ItemKeys, Change)> = records.into_iter().filter_map(read_record).collect();
                        for mapping in &mappings {
                            mapping.hand_over(&changes);
                        }
                        if let Some(shard) = self.shards.get_mut(&id) {
                            shard.iterator = output.next_shard_iterator;
                            let last = changes.last().map(|(_, c)| c.sequence_number.clone());
                            shard.last = last.or(shard.last.take());
                        }
                    }
                    Err(err) => {
                        let trimmed = err.as_service_error().is_some_and(|e| e.is_trimmed_data_access_exception());
                        let err = aws_sdk_dynamodbstreams::error::DisplayErrorContext(&err);
                        tracing::warn!(error = %err, "reading the stream failed; resuming after the last record read");
                        // DynamoDB Local refuses an iterator taken while its shard was empty once
                        // another table's stream has been written: everything in the shard came after
                        // it, so it is read from the first record (from the latest, it would be lost).
                        if trimmed
                            && let Some(shard) = self.shards.get_mut(&id)
                            && shard.last.is_none()
                        {
                            shard.start = ShardIteratorType::TrimHorizon;
                        }
                        let Some(shard) = self.shards.get(&id) else { continue };
                        let resumed = self.iterator(&id, shard).await.ok();
                        if let Some(shard) = self.shards.get_mut(&id) {
                            shard.iterator = resumed.or(shard.iterator.take());
                        }
                    }
                }
            }
            for mapping in &mappings {
                let _ = mapping.to.send(Delivery::Passed { pass, quiet: !busy });
            }
            passes.send_replace(pass);
            // Lambda polls a shard four times a second; polling again at once after records
            // came kept DynamoDB Local's one thread reading a few new records at a time.
            let pause = if busy { BUSY_POLL.saturating_sub(started.elapsed()) } else { QUIET_POLL };
            tokio::time::sleep(pause).await;
        }
    }
}

/// A consumer's event source mapping: what its filter passes goes to its task, in order.
struct Mapping {
    source: EventSource,
    to: mpsc::UnboundedSender<Delivery>,
}

impl Mapping {
    /// Starts `consumer` on the batches handed to the returned mapping.
    fn start(
        source: EventSource,
        consumer: impl dm_shared::stream::Consumer + Send + Sync + 'static,
        settle: Option<Settle>,
        account: impl Fn(Usage) + Send + 'static,
    ) -> (Self, JoinHandle<()>) {
        let (to, deliveries) = mpsc::unbounded_channel();
        let task = tokio::spawn(consume(consumer, deliveries, source.batch_size, settle, account));
        (Self { source, to }, task)
    }

    fn hand_over(&self, changes: &[(ItemKeys, Change)]) {
        let passed: Arc<[Change]> = changes
            .iter()
            .filter(|(keys, change)| {
                let has = |image, name: &str| {
                    let image = if image == Image::New { &change.new } else { &change.old };
                    image.as_ref().is_some_and(|item| item.contains_key(name))
                };
                self.source.passes(&keys.pk, &keys.sk, has)
            })
            .map(|(_, change)| change.clone())
            .collect();
        if !passed.is_empty() {
            let _ = self.to.send(Delivery::Changes(passed));
        }
    }
}

/// Retries a batch's failed changes (that one and every later one) as Lambda does, a few times with a
/// growing pause, before it gives them up as a failure destination would take them.
const BATCH_ATTEMPTS: u32 = 6;
/// The shortest time between two passes over the shards after one that found records (Lambda's
/// event source mapping polls a shard four times a second), and the pause after a quiet one.
const BUSY_POLL: Duration = Duration::from_millis(250);
const QUIET_POLL: Duration = Duration::from_millis(50);

/// Where a consumer says it has nothing left to read: the last quiet pass that began after its
/// last batch.
struct Settle {
    read: watch::Receiver<u64>,
    settled: watch::Sender<u64>,
}

/// One consumer's batches, in order. Batches read while it was busy are taken together, up to
/// `batch_size` changes, as Lambda hands a consumer that fell behind full batches: what it does
/// per batch (a room's run) then serves more changes, so a backlog drains.
async fn consume(
    consumer: impl dm_shared::stream::Consumer,
    mut deliveries: mpsc::UnboundedReceiver<Delivery>,
    batch_size: usize,
    settle: Option<Settle>,
    account: impl Fn(Usage),
) {
    // The first pass that began after the last batch was consumed: its writes are read by then.
    let mut clean_from = 0;
    while let Some(delivery) = deliveries.recv().await {
        let batch = match delivery {
            Delivery::Changes(batch) => batch,
            Delivery::Passed { pass, quiet } => {
                if let Some(settle) = &settle
                    && quiet
                    && pass >= clean_from
                {
                    settle.settled.send_replace(pass);
                }
                continue;
            }
        };
        let mut pending: Vec<Change> = batch.to_vec();
        while pending.len() < batch_size {
            match deliveries.try_recv() {
                Ok(Delivery::Changes(more)) => pending.extend(more.iter().cloned()),
                // A pass that ended while batches waited settles nothing the batch's end does not:
                // `clean_from` below moves past it.
                Ok(Delivery::Passed { .. }) => {}
                Err(_) => break,
            }
        }
        for attempt in 0..BATCH_ATTEMPTS {
            let (failed, used) = measured(consumer.consume(&pending)).await;
            account(used);
            if failed.is_empty() {
                break;
            }
            if attempt + 1 == BATCH_ATTEMPTS {
                tracing::error!(changes = failed.len(), "changes given up after their retries");
                break;
            }
            pending.retain(|change| failed.contains(&change.sequence_number));
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        if let Some(settle) = &settle {
            clean_from = *settle.read.borrow() + 2;
        }
    }
}
