//! `dm-bench`: what each route costs in DynamoDB, measured on the local stack.
//!
//! Every store call asks DynamoDB for its consumed capacity; this runs each route once through the
//! local API Gateway stand-in (one request at a time) and prints the round trips and capacity units
//! it used, as a Markdown table; then what the notifier asks of DynamoDB for one message, by room
//! size and by whether a member is away with a device (pushes go to a sink on loopback).
//!
//! ```text
//! dm-bench [--noise N]   N extra messages in rooms the caller is not in (default 1000)
//! ```

use axum::http::Method;
use dm_local::{Options, Stack};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// Rooms the noise is spread over.
const NOISE_ROOMS: usize = 50;

struct Bench {
    stack: Stack,
    api: axum::Router,
}

impl Bench {
    async fn call(&self, method: Method, path: &str, user: &str, body: Option<Value>) -> (u16, Value) {
        dm_local::call_as(&self.api, (method, path), user, body, &[]).await
    }

    /// Runs one request and prints what it cost (its own calls only: the stream's consumers run
    /// meanwhile on the same store).
    async fn measure(&self, route: &str, method: Method, path: &str, user: &str, body: Option<Value>) -> Value {
        let ((status, reply), used) = dm_shared::store::measured(self.call(method, path, user, body)).await;
        println!("| {route} | {status} | {} | {:.1} |", used.calls, used.capacity_units);
        reply
    }
}

#[tokio::main]
async fn main() {
    let noise: usize = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 1000,
        [flag, n] if flag == "--noise" => n.parse().expect("--noise takes a number"),
        _ => {
            eprintln!("usage: dm-bench [--noise N]");
            std::process::exit(2);
        }
    };
    let mut options = Options::from_env();
    options.data_dir = None;
    options.scheduler = false;
    options.dynamodb_endpoint = std::env::var("DM_DYNAMODB_ENDPOINT").ok();
    options.rate_limit = 0;
    let stack = Stack::start(options).await.expect("the local stack starts");
    let api = stack.api();
    let bench = Bench { stack, api };

    let (_, org) = bench.call(Method::POST, "/api/v1/orgs", "alice", Some(json!({ "name": "Bench" }))).await;
    let org = org["org_id"].as_str().expect("an org").to_owned();
    let noise_users: Vec<String> = (0..NOISE_ROOMS).map(|i| format!("noise{i}")).collect();
    for user in ["bob", "carol"].into_iter().chain(noise_users.iter().map(String::as_str)) {
        let body = json!({ "member_id": user, "email": format!("{user}@example.com") });
        bench.call(Method::POST, &format!("/api/v1/org/{org}/members"), "alice", Some(body)).await;
    }
    // Noise: messages holding the searched word, in rooms the searcher is not in, spread over rooms
    // and sent a few at a time so the fill is quick.
    let mut noise_rooms = Vec::new();
    for user in &noise_users {
        let body = json!({ "room_user_ids": ["carol"] });
        let (_, room) = bench.call(Method::POST, &format!("/api/v1/org/{org}/room"), user, Some(body)).await;
        noise_rooms.push((user.clone(), room["room_id"].as_str().expect("a room").to_owned()));
    }
    let sends = (0..noise).map(|i| {
        let (user, room) = &noise_rooms[i % NOISE_ROOMS];
        let body = json!({ "sender_id": user, "message": format!("needle in another room {i}") });
        let path = format!("/api/v1/org/{org}/rooms/{room}/messages");
        let bench = &bench;
        async move { bench.call(Method::POST, &path, user, Some(body)).await }
    });
    futures_util::stream::iter(sends).buffer_unordered(16).for_each(|_| async {}).await;

    println!("DynamoDB cost per request ({noise} messages stored elsewhere in the table)\n");
    println!("| route | status | round trips | capacity units |");
    println!("| --- | --- | --- | --- |");
    let o = format!("/api/v1/org/{org}");
    let room = bench
        .measure(
            "POST /room (new)",
            Method::POST,
            &format!("{o}/room"),
            "alice",
            Some(json!({ "room_user_ids": ["bob"] })),
        )
        .await["room_id"]
        .as_str()
        .expect("a room")
        .to_owned();
    bench
        .measure(
            "POST /room (existing)",
            Method::POST,
            &format!("{o}/room"),
            "bob",
            Some(json!({ "room_user_ids": ["alice"] })),
        )
        .await;
    bench.measure("GET /orgs", Method::GET, "/api/v1/orgs", "bob", None).await;
    let invite = bench.measure("POST /invites", Method::POST, &format!("{o}/invites"), "alice", Some(json!({}))).await;
    let token = invite["token"].as_str().expect("a token").to_owned();
    bench.measure("GET /invites (org)", Method::GET, &format!("{o}/invites"), "alice", None).await;
    bench.measure("GET /invites/{token}", Method::GET, &format!("/api/v1/invites/{token}"), "dave", None).await;
    let accept = format!("/api/v1/invites/{token}/accept");
    bench.measure("POST /invites/{token}/accept", Method::POST, &accept, "dave", None).await;
    let role = Some(json!({ "role": "admin" }));
    bench.measure("PUT /members/{id}/role", Method::PUT, &format!("{o}/members/dave/role"), "alice", role).await;
    bench.measure("GET /users/{id}/rooms", Method::GET, &format!("{o}/users/alice/rooms"), "alice", None).await;
    bench.measure("GET /rooms/{id}/info", Method::GET, &format!("{o}/rooms/{room}/info"), "alice", None).await;
    bench.measure("PUT /add-member", Method::PUT, &format!("{o}/rooms/{room}/add-member/carol"), "alice", None).await;
    bench
        .measure("PUT /remove-member", Method::PUT, &format!("{o}/rooms/{room}/remove-member/carol"), "alice", None)
        .await;
    let r = format!("{o}/rooms/{room}");
    for i in 0..49 {
        let body = json!({ "sender_id": "bob", "message": format!("warm up message {i} https://example.com/{i}") });
        bench.call(Method::POST, &format!("{r}/messages"), "bob", Some(body)).await;
    }
    let text = "The needle is in the haystack, see https://example.com/needle";
    let sent = bench
        .measure(
            "POST /messages",
            Method::POST,
            &format!("{r}/messages"),
            "alice",
            Some(json!({ "sender_id": "alice", "message": text })),
        )
        .await;
    let id = sent["message_id"].as_str().expect("a message").to_owned();
    // Search and links read what the projector writes from the stream.
    bench.stack.settled().await.expect("the projector catches up");
    bench.measure("GET /messages (50)", Method::GET, &format!("{r}/messages"), "bob", None).await;
    bench
        .measure(
            "GET /users/{id}/messages/search",
            Method::GET,
            &format!("{o}/users/bob/messages/search?keyword=needle"),
            "bob",
            None,
        )
        .await;
    bench.measure("GET /rooms/{id}/links", Method::GET, &format!("{r}/links"), "bob", None).await;
    // Everything of the last minute: the room's 50 messages and its creation.
    let since = dm_shared::time::now_ms() - 60_000;
    bench
        .measure(
            "GET /users/{id}/sync (51 events)",
            Method::GET,
            &format!("{o}/users/bob/sync?since={since}&limit=100"),
            "bob",
            None,
        )
        .await;
    bench.measure("PUT /messages/{id}/read", Method::PUT, &format!("{o}/messages/{id}/read"), "bob", None).await;
    bench.measure("PUT /messages/{id}/pin", Method::PUT, &format!("{o}/messages/{id}/pin"), "bob", None).await;
    bench.measure("GET /messages/{id}/link", Method::GET, &format!("{o}/messages/{id}/link"), "bob", None).await;
    let edit = json!({ "sender_id": "alice", "message": "The needle moved" });
    bench.measure("PUT /messages/{id}", Method::PUT, &format!("{r}/messages/{id}"), "alice", Some(edit)).await;
    bench
        .measure("DELETE /messages/{id}/message", Method::DELETE, &format!("{r}/messages/{id}/message"), "alice", None)
        .await;
    bench.measure("GET /ping", Method::GET, "/api/v1/ping", "alice", None).await;
    notifier_cost(&bench, &org).await;
}

/// What the notifier asks of DynamoDB for one message in rooms of 2, 10 and 50 members: with no
/// member away with a device (everyone else connected, or without one), and with one who is.
async fn notifier_cost(bench: &Bench, org: &str) {
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let endpoint = format!("http://{}/push", sink.local_addr().expect("an address"));
    let accept = axum::Router::new().route("/push", axum::routing::post(|| async { axum::http::StatusCode::CREATED }));
    tokio::spawn(async move { axum::serve(sink, accept).await });
    let members: Vec<String> = (0..49).map(|i| format!("member{i}")).collect();
    for user in &members {
        let body = json!({ "member_id": user, "email": format!("{user}@example.com") });
        bench.call(Method::POST, &format!("/api/v1/org/{org}/members"), "alice", Some(body)).await;
    }
    println!("\nThe notifier, one message (its own requests, read from the stream's consumers)\n");
    println!("| members | away with a device | round trips | capacity units |");
    println!("| --- | --- | --- | --- |");
    for size in [2, 10, 50] {
        let others = &members[..size - 1];
        let body = json!({ "room_user_ids": others });
        let (_, room) = bench.call(Method::POST, &format!("/api/v1/org/{org}/room"), "alice", Some(body)).await;
        let room = room["room_id"].as_str().expect("a room").to_owned();
        for away in [0, 1] {
            if away == 1 {
                let device = format!("{endpoint}/{size}");
                let keys = dm_local::vapid::Vapid::generate().expect("a key pair");
                let auth = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, [7u8; 16]);
                let subscription = json!({ "endpoint": device, "keys": { "p256dh": keys.public_key, "auth": auth } });
                let path = format!("/api/v1/org/{org}/users/{}/push-subscriptions", others[0]);
                let (status, _) = bench.call(Method::POST, &path, &others[0], Some(subscription)).await;
                assert_eq!(status, 201, "a device subscribed");
            }
            bench.stack.settled().await.expect("the consumers catch up");
            let before = bench.stack.stream_work().notifier;
            let body = json!({ "sender_id": "alice", "message": "is anyone there" });
            let (status, _) = bench
                .call(Method::POST, &format!("/api/v1/org/{org}/rooms/{room}/messages"), "alice", Some(body))
                .await;
            assert_eq!(status, 201, "a message sent");
            bench.stack.settled().await.expect("the consumers catch up");
            let used = bench.stack.stream_work().notifier.since(before);
            println!("| {size} | {away} | {} | {:.1} |", used.calls, used.capacity_units);
        }
    }
}
