//! The local WebSocket API: `/ws` stands in for API Gateway's WebSocket API, `/@connections/{id}` for
//! its management API, and a reader of DynamoDB Local's stream for the Lambda event source mapping.
//! All three hand over to the same `dm_realtime` code that runs in AWS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dm_realtime::{Change, Realtime};
use dm_shared::AppState;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

/// The open local sockets, by connection id.
#[derive(Clone, Default)]
struct Sockets(Arc<Mutex<HashMap<String, mpsc::UnboundedSender<String>>>>);

impl Sockets {
    fn insert(&self, id: String, sender: mpsc::UnboundedSender<String>) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(id, sender);
    }

    fn remove(&self, id: &str) -> Option<mpsc::UnboundedSender<String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(id)
    }

    fn send(&self, id: &str, text: String) -> bool {
        let sockets = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        sockets.get(id).is_some_and(|sender| sender.send(text).is_ok())
    }
}

#[derive(Clone)]
struct Hub {
    realtime: Realtime,
    sockets: Sockets,
}

/// The `/ws` and `/@connections` routes, and the stream reader, for an API served at `base_url`.
pub fn routes(state: &AppState, base_url: &str) -> Router {
    let realtime = Realtime::new(state.clone(), base_url);
    tokio::spawn(read_stream(state.clone(), realtime.clone()));
    let hub = Hub { realtime, sockets: Sockets::default() };
    Router::new()
        .route("/ws", get(connect))
        .route("/@connections/{connection_id}", post(post_to_connection).delete(close_connection))
        .with_state(hub)
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
    if let Err(err) = hub.realtime.connect(&connection_id, token.as_deref(), query.org_id.as_deref()).await {
        return err.into_response();
    }
    upgrade.on_upgrade(move |socket| serve_socket(hub, connection_id, socket))
}

async fn serve_socket(hub: Hub, connection_id: String, mut socket: WebSocket) {
    let (sender, mut outbox) = mpsc::unbounded_channel();
    hub.sockets.insert(connection_id.clone(), sender);
    loop {
        tokio::select! {
            out = outbox.recv() => match out {
                Some(text) => if socket.send(WsMessage::text(text)).await.is_err() { break },
                None => break,
            },
            incoming = socket.recv() => match incoming {
                // `$default`: clients have nothing to say yet; pings are answered by axum.
                Some(Ok(WsMessage::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    hub.sockets.remove(&connection_id);
    if let Err(err) = hub.realtime.disconnect(&connection_id).await {
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

/// Reads the table's stream from DynamoDB Local and publishes each batch, as the Lambda event source
/// mapping does in AWS: shards open at start are read from their latest record, shards that open later
/// from their first.
async fn read_stream(state: AppState, realtime: Realtime) {
    let mut config = aws_sdk_dynamodbstreams::config::Builder::from(&state.sdk);
    if let Some(endpoint) = &state.config.dynamodb_endpoint {
        config = config.endpoint_url(endpoint);
    }
    let streams = aws_sdk_dynamodbstreams::Client::from_conf(config.build());
    let arn = match state.store.client().describe_table().table_name(state.store.table()).send().await {
        Ok(table) => table.table.and_then(|t| t.latest_stream_arn),
        Err(err) => {
            tracing::error!(error = %err, "no stream: real-time events are off");
            return;
        }
    };
    let Some(arn) = arn else { return };
    let mut iterators: HashMap<String, Option<String>> = HashMap::new();
    let mut first_look = true;
    let mut described: Option<Instant> = None;
    loop {
        if described.is_none_or(|at| at.elapsed() >= Duration::from_secs(2)) {
            described = Some(Instant::now());
            let shards = streams.describe_stream().stream_arn(&arn).send().await;
            for shard in
                shards.ok().and_then(|s| s.stream_description).map(|d| d.shards.unwrap_or_default()).unwrap_or_default()
            {
                let Some(id) = shard.shard_id else { continue };
                if iterators.contains_key(&id) {
                    continue;
                }
                let kind = if first_look { ShardIteratorType::Latest } else { ShardIteratorType::TrimHorizon };
                let iterator =
                    streams.get_shard_iterator().stream_arn(&arn).shard_id(&id).shard_iterator_type(kind).send().await;
                iterators.insert(id, iterator.ok().and_then(|i| i.shard_iterator));
            }
            first_look = false;
        }
        let mut busy = false;
        for iterator in iterators.values_mut() {
            let Some(current) = iterator.clone() else { continue };
            match streams.get_records().shard_iterator(current).send().await {
                Ok(output) => {
                    *iterator = output.next_shard_iterator;
                    let records = output.records.unwrap_or_default();
                    busy |= !records.is_empty();
                    let changes: Vec<Change> = records.into_iter().filter_map(change).collect();
                    for failed in realtime.publish(&changes).await {
                        tracing::warn!(sequence_number = %failed, "events of a change were not all delivered");
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(&err), "reading the stream failed");
                    *iterator = None;
                    described = None;
                }
            }
        }
        if !busy {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn change(record: aws_sdk_dynamodbstreams::types::Record) -> Option<Change> {
    let data = record.dynamodb?;
    Some(Change {
        event_id: record.event_id.unwrap_or_default(),
        sequence_number: data.sequence_number.unwrap_or_default(),
        old: data.old_image.map(serde_dynamo::Item::from),
        new: data.new_image.map(serde_dynamo::Item::from),
    })
}
