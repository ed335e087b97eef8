//! Helpers for the integration tests: the real local API on a free port, a fresh table per test on
//! one DynamoDB Local shared by the whole run, and a client that speaks for a user.

pub mod faults;
pub mod push_service;

use std::sync::OnceLock;
use std::sync::mpsc;

use aws_sdk_dynamodb::types::AttributeValue;
use dm_local::dynamodb::DynamoDbLocal;
use dm_local::{DEV_JWT_SECRET, Options, Stack};
use dm_shared::store::UNREAD_CAP;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// One DynamoDB Local for the whole test binary, started on first use. Its thread never ends, so the
/// process keeps it until the run exits (and the kernel stops it then).
fn shared_dynamodb() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(|| {
        if let Ok(endpoint) = std::env::var("DM_DYNAMODB_ENDPOINT") {
            return endpoint;
        }
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || match DynamoDbLocal::start(None) {
            Ok(local) => {
                let _ = sender.send(Ok(local.endpoint().to_owned()));
                loop {
                    std::thread::park();
                }
            }
            Err(err) => {
                let _ = sender.send(Err(err.to_string()));
            }
        });
        match receiver.recv() {
            Ok(Ok(endpoint)) => endpoint,
            Ok(Err(err)) => panic!("cannot start DynamoDB Local: {err}"),
            Err(_) => panic!("the DynamoDB Local thread died"),
        }
    })
}

pub struct TestApp {
    pub base: String,
    pub stack: Stack,
    client: reqwest::Client,
}

/// A reply: its status and its JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub raw: String,
}

impl Reply {
    pub fn str(&self, field: &str) -> String {
        self.body[field].as_str().unwrap_or_else(|| panic!("no string {field} in {}", self.raw)).to_owned()
    }
}

/// Starts the local API over its own table, on the shared DynamoDB Local.
pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// The local API without its once-a-second scheduler and without stream consumers, for tests that
/// run the scheduler themselves and look at what is stored, not at events.
pub async fn spawn_app_without_scheduler() -> TestApp {
    spawn_with(|options| {
        options.scheduler = false;
        options.stream = false;
    })
    .await
}

/// The local API over its own table, with `configure` applied to its options.
pub async fn spawn_with(configure: impl FnOnce(&mut Options)) -> TestApp {
    let table = format!("test-{}", ulid::Ulid::new());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    let mut options = Options {
        data_dir: None,
        dynamodb_endpoint: Some(shared_dynamodb().to_owned()),
        table,
        bucket: "dm-media".into(),
        jwt_secret: DEV_JWT_SECRET.into(),
        link_base: "http://dm.test".into(),
        app_url: Some(format!("{base}/app/")),
        scheduler: true,
        stream: true,
        rate_limit: 0,
        allowed_origins: dm_local::cors::allowed_origins().expect("template.yaml names the allowed origins"),
    };
    configure(&mut options);
    let stack = Stack::start(options).await.expect("the local stack starts");
    let app = TestApp { base, stack, client: reqwest::Client::new() };
    let server = app.stack.serve_owned(listener).expect("a bound listener");
    tokio::spawn(server);
    app
}

pub fn token(user: &str) -> String {
    dm_shared::auth::mint(DEV_JWT_SECRET, user, 3600).expect("a token")
}

impl TestApp {
    /// Sends `body` (JSON) as `user` (no token when `None`).
    pub async fn call(&self, method: Method, path: &str, user: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(user) = user {
            request = request.bearer_auth(token(user));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        read(request.send().await.expect("the API answers")).await
    }

    pub async fn get(&self, path: &str, user: &str) -> Reply {
        self.call(Method::GET, path, Some(user), None).await
    }

    pub async fn post(&self, path: &str, user: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(user), Some(body)).await
    }

    pub async fn put(&self, path: &str, user: &str) -> Reply {
        self.call(Method::PUT, path, Some(user), None).await
    }

    /// A request built by the test itself (raw bodies, odd headers).
    pub fn raw(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// A new org owned by `owner`.
    pub async fn org(&self, owner: &str) -> String {
        let reply = self.post("/api/v1/orgs", owner, json!({ "name": "Acme" })).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
        reply.str("org_id")
    }

    /// Adds `member` to `org` with `role`, as the org's `owner`.
    pub async fn join(&self, org: &str, owner: &str, member: &str, role: &str) {
        let body = json!({ "member_id": member, "email": format!("{member}@example.com"), "role": role });
        let reply = self.post(&format!("/api/v1/org/{org}/members"), owner, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    }

    /// An org owned by `owner` whose other `members` are plain members.
    pub async fn org_with(&self, owner: &str, members: &[&str]) -> String {
        let org = self.org(owner).await;
        for member in members {
            self.join(&org, owner, member, "member").await;
        }
        org
    }

    /// A room created by `creator` with `others`.
    pub async fn room(&self, org: &str, creator: &str, others: &[&str]) -> String {
        let reply = self.post(&format!("/api/v1/org/{org}/room"), creator, json!({ "room_user_ids": others })).await;
        assert!(reply.status == StatusCode::CREATED || reply.status == StatusCode::OK, "{}", reply.raw);
        reply.str("room_id")
    }
}

pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let raw = response.text().await.expect("a body");
    let body =
        if raw.is_empty() { Value::Null } else { serde_json::from_str(&raw).unwrap_or(Value::String(raw.clone())) };
    Reply { status, body, raw }
}

impl TestApp {
    /// Sends `text` to `room` as `sender`; returns the message id.
    pub async fn send(&self, org: &str, room: &str, sender: &str, text: &str) -> String {
        let path = format!("/api/v1/org/{org}/rooms/{room}/messages");
        let reply = self.post(&path, sender, json!({ "sender_id": sender, "message": text })).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
        reply.str("message_id")
    }

    /// Follows `next` links from `path` to the end; returns every page's results.
    pub async fn all_pages(&self, path: &str, user: &str, field: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut path = path.to_owned();
        loop {
            let page = self.get(&path, user).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
            out.extend(page.body[field].as_array().expect("a list").iter().cloned());
            match page.body["next"].as_str() {
                Some(next) => path = next.trim_start_matches(&self.base).to_owned(),
                None => return out,
            }
        }
    }
}

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl TestApp {
    /// Opens the WebSocket API as `user` for `org`; `Err` carries the refused handshake's status.
    pub async fn socket(&self, user: &str, org: &str) -> Result<Socket, u16> {
        let url = format!("{}/ws?token={}&org_id={org}", self.base.replace("http://", "ws://"), token(user));
        match tokio_tungstenite::connect_async(url).await {
            Ok((socket, _)) => Ok(socket),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(err) => panic!("the WebSocket API does not answer: {err}"),
        }
    }
}

/// The next event on `socket` within `wait`, or `None`.
impl TestApp {
    /// `user`'s inbox (`query` appended), once `ready` holds for it.
    pub async fn inbox_when(&self, org: &str, user: &str, query: &str, ready: impl Fn(&Value) -> bool) -> Value {
        self.get_when(&format!("/api/v1/org/{org}/users/{user}/rooms{query}"), user, ready).await
    }

    /// `senders` members of one room send `each` messages, all at once; once the projector has caught
    /// up, every member's inbox shows the newest message, their own last one as their marker, and
    /// the other members' messages after it as unread (exact up to `UNREAD_CAP`, then capped),
    /// however the sends interleaved; the
    /// room counts each message once. A send answered 503 (DynamoDB Local pausing under load) is
    /// retried with its Idempotency-Key, as a client would: it is stored once either way.
    pub async fn send_at_once(&self, senders: usize, each: usize) {
        let senders: Vec<String> = (0..senders).map(|i| format!("s{i}")).collect();
        let names: Vec<&str> = senders.iter().map(String::as_str).collect();
        let org = self.org_with("owner", &names).await;
        let room = self.room(&org, names[0], &names[1..]).await;
        let path = format!("/api/v1/org/{org}/rooms/{room}/messages");
        let sent: Vec<(String, Vec<String>)> = futures_util::future::join_all(senders.iter().map(|sender| {
            let path = path.clone();
            async move {
                let mut ids = Vec::new();
                for n in 0..each {
                    let body = json!({ "sender_id": sender, "message": format!("{sender} says {n}") });
                    let reply = loop {
                        let request = self.raw(Method::POST, &path).bearer_auth(token(sender));
                        let request = request.header("idempotency-key", format!("{sender}-{n}")).json(&body);
                        let reply = read(request.send().await.expect("the API answers")).await;
                        if reply.status != StatusCode::SERVICE_UNAVAILABLE {
                            break reply;
                        }
                    };
                    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
                    ids.push(reply.str("message_id"));
                }
                (sender.clone(), ids)
            }
        }))
        .await;
        self.settled().await;
        let all: Vec<(&str, &str)> =
            sent.iter().flat_map(|(sender, ids)| ids.iter().map(move |id| (sender.as_str(), id.as_str()))).collect();
        let newest = all.iter().map(|(_, id)| *id).max().expect("messages were sent");
        for (member, own) in &sent {
            let marker = own.iter().max().expect("each sender sent");
            let unread = all.iter().filter(|(sender, id)| sender != member && id > &marker.as_str()).count() as u64;
            let (expected, capped) = (unread.min(UNREAD_CAP), unread > UNREAD_CAP);
            let inbox = self.get(&format!("/api/v1/org/{org}/users/{member}/rooms"), member).await;
            let row = &inbox.body["results"][0];
            assert_eq!(row["room_id"], room.as_str());
            assert_eq!(row["last_message"]["message_id"], newest, "{member}");
            assert_eq!(row["last_read_message_id"], marker.as_str(), "{member}");
            assert_eq!(
                (&row["unread_count"], &row["unread_count_capped"]),
                (&json!(expected), &json!(capped)),
                "{member}"
            );
            let totals = self.get(&format!("/api/v1/org/{org}/users/{member}/unread"), member).await;
            let (messages, messages_capped) = (&totals.body["messages"], &totals.body["messages_capped"]);
            assert_eq!((messages, messages_capped), (&json!(expected), &json!(capped)), "{member}");
        }
        assert_eq!(self.get(&path, "s0").await.body["count"], all.len(), "each message counted once");
    }

    /// Changes a stored item behind the API's back, as a crash half-way or time passing would leave
    /// it: `update` is an UpdateItem expression over `values`.
    pub async fn alter_item(&self, (pk, sk): (&str, &str), update: &str, values: &[(&str, AttributeValue)]) {
        let store = &self.stack.state.store;
        let mut request = store
            .client()
            .update_item()
            .table_name(store.table())
            .key("PK", AttributeValue::S(pk.to_owned()))
            .key("SK", AttributeValue::S(sk.to_owned()))
            .update_expression(update);
        for (name, value) in values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        request.send().await.expect("the item is changed");
    }

    /// Returns once the projector has caught up with every write before the call: what it keeps
    /// (inboxes, counts, links, the search index) follows the stream by a moment.
    pub async fn settled(&self) {
        self.stack.settled().await.expect("the projector catches up");
    }

    /// `path` as `user` once `ready` holds for its body: what the projector keeps follows the stream
    /// by a moment.
    pub async fn get_when(&self, path: &str, user: &str, ready: impl Fn(&Value) -> bool) -> Value {
        // Generous: a flood's projections may still be catching up.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
        loop {
            let reply = self.get(path, user).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.raw);
            if ready(&reply.body) {
                return reply.body;
            }
            assert!(std::time::Instant::now() < deadline, "{path} never settled: {}", reply.raw);
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// The next event called `name` on `socket` (others before it are skipped); panics after a while.
pub async fn expect_event(socket: &mut Socket, name: &str) -> Value {
    let wait = std::time::Duration::from_secs(5);
    loop {
        let event = next_event(socket, wait).await.unwrap_or_else(|| panic!("no {name} event within {wait:?}"));
        if event["event"] == name {
            return event;
        }
    }
}

pub async fn next_event(socket: &mut Socket, wait: std::time::Duration) -> Option<Value> {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next()).await.ok()??.ok()?;
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return serde_json::from_str(&text).ok();
        }
    }
}

impl TestApp {
    /// Stores a message of `sender` due `in_ms` milliseconds from now (in the past when negative), as
    /// the schedule route stores one (the route itself refuses a time in the past).
    pub async fn scheduled(
        &self,
        org: &str,
        room: &str,
        sender: &str,
        text: &str,
        in_ms: i64,
    ) -> dm_shared::Result<()> {
        use dm_shared::ids::{OrgId, RoomId, UserId};
        let due_ms = dm_shared::time::now_ms() + in_ms;
        let item = dm_shared::store::Scheduled {
            schedule_id: dm_shared::store::schedule_id(due_ms),
            org_id: OrgId::parse(org)?,
            room_id: RoomId::parse(room)?,
            sender_id: UserId::parse(sender)?,
            message: text.to_owned(),
            media: Vec::new(),
            mentions: Vec::new(),
            timer: String::new(),
            due_ms,
            claimed_until_ms: 0,
            attempts: 0,
        };
        self.stack.state.store.schedule(&item).await
    }
}

/// Sends `frame` as a client does on its WebSocket.
pub async fn send_frame(socket: &mut Socket, frame: Value) {
    use futures_util::SinkExt;
    let text = tokio_tungstenite::tungstenite::Message::Text(frame.to_string().into());
    socket.send(text).await.expect("the WebSocket takes a frame");
}

/// The first event called `name` on `socket` within `wait` (others are skipped), or `None`.
pub async fn event_within(socket: &mut Socket, name: &str, wait: std::time::Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = next_event(socket, left).await?;
        if event["event"] == name {
            return Some(event);
        }
    }
}
