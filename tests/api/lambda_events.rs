//! The functions as Lambda calls them: an API Gateway HTTP API (payload 2.0) event in, through
//! `lambda_http`'s own conversion, a response out.

use axum::Router;
use dm_shared::AppState;
use dm_shared::config::Config;
use dm_tests::spawn_app;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn invoke(router: Router, event: &str) -> (u16, Value) {
    let request = lambda_http::request::from_str(event).expect("a valid API Gateway v2 event");
    let response = router.oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.expect("a body").to_bytes();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("JSON") };
    (status, body)
}

/// The authorized-request fixture, for `sub` calling `method path` with `body`.
fn authorized(method: &str, path: &str, sub: &str, body: &Value) -> String {
    let body = body.to_string();
    include_str!("data/apigw_v2_authorized.json")
        .replace("{{method}}", method)
        .replace("{{path}}", path)
        .replace("{{sub}}", sub)
        .replace("{{length}}", &body.len().to_string())
        .replace("\"{{body}}\"", &serde_json::to_string(&body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_through_the_members_function() {
    let app = spawn_app().await;
    let event = include_str!("data/apigw_v2_ping.json");
    let (status, body) = invoke(dm_members::router(app.stack.state.clone()), event).await;
    assert_eq!((status, body), (200, json!({ "status": 200, "server": true })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_says_503_when_the_table_does_not_answer() {
    let app = spawn_app().await;
    let config = Config { table: "no-such-table".into(), ..(*app.stack.state.config).clone() };
    let sdk = dm_shared::state::sdk_config(&config).await;
    let state = AppState::new(config, &sdk);
    let (status, body) = invoke(dm_members::router(state), include_str!("data/apigw_v2_ping.json")).await;
    assert_eq!((status, body), (503, json!({ "status": 503, "server": false })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorizer_claims_name_the_caller_without_a_token_header() {
    let app = spawn_app().await;
    let org = app.org_with("owner", &["bob"]).await;
    let state = app.stack.state.clone();

    let create = authorized("POST", &format!("/api/v1/org/{org}/room"), "owner", &json!({ "room_user_ids": ["bob"] }));
    let (status, body) = invoke(dm_rooms::router(state.clone()), &create).await;
    assert_eq!(status, 201, "{body}");
    let room = body["room_id"].as_str().unwrap().to_owned();

    let info = authorized("GET", &format!("/api/v1/org/{org}/rooms/{room}/info"), "bob", &Value::Null);
    let (status, body) = invoke(dm_rooms::router(state.clone()), &info).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["room_user_ids"], json!(["owner", "bob"]));

    let stranger = authorized("GET", &format!("/api/v1/org/{org}/rooms/{room}/info"), "stranger", &Value::Null);
    let (status, _) = invoke(dm_rooms::router(state.clone()), &stranger).await;
    assert_eq!(status, 403);

    let members = authorized("GET", &format!("/api/v1/org/{org}/members"), "bob", &Value::Null);
    let (status, body) = invoke(dm_members::router(state), &members).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_of_another_function_is_a_json_404_here() {
    let app = spawn_app().await;
    let event = authorized("GET", "/api/v1/org/o1/members", "owner", &Value::Null);
    let (status, body) = invoke(dm_rooms::router(app.stack.state.clone()), &event).await;
    assert_eq!((status, body["status"].clone()), (404, json!(404)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_and_listed_through_the_messages_function() {
    let app = spawn_app().await;
    let org = app.org_with("owner", &["bob"]).await;
    let room = app.room(&org, "owner", &["bob"]).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/messages");
    let state = app.stack.state.clone();

    let send = authorized("POST", &path, "bob", &json!({ "sender_id": "bob", "message": "from Lambda" }));
    let (status, body) = invoke(dm_messages::router(state.clone()), &send).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["event"], "message_create");

    let list = authorized("GET", &path, "owner", &Value::Null);
    let (status, body) = invoke(dm_messages::router(state.clone()), &list).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["message"], "from Lambda");
    let spoof = authorized("POST", &path, "owner", &json!({ "sender_id": "bob", "message": "spoof" }));
    assert_eq!(invoke(dm_messages::router(state), &spoof).await.0, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_and_a_reaction_through_their_functions() {
    let app = spawn_app().await;
    let org = app.org_with("owner", &["bob"]).await;
    let room = app.room(&org, "owner", &["bob"]).await;
    let message = app.send(&org, &room, "owner", "hello").await;
    let base = format!("/api/v1/org/{org}/rooms/{room}/messages/{message}");
    let state = app.stack.state.clone();

    let reply = authorized("POST", &format!("{base}/threads"), "bob", &json!({ "sender_id": "bob", "message": "hi" }));
    let (status, body) = invoke(dm_threads::router(state.clone()), &reply).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["event"], "thread_message_create");

    let react = authorized("POST", &format!("{base}/reactions"), "bob", &json!({ "sender_id": "bob", "data": "👋" }));
    let (status, body) = invoke(dm_reactions::router(state.clone()), &react).await;
    assert_eq!(status, 201, "{body}");

    let list = authorized("GET", &format!("{base}/reactions"), "owner", &Value::Null);
    let (status, body) = invoke(dm_reactions::router(state), &list).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["reactions"][0]["sender_ids"], json!(["bob"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_multipart_upload_through_the_media_function() {
    use base64::Engine;
    let app = spawn_app().await;
    let org = app.org_with("owner", &["bob"]).await;
    let room = app.room(&org, "owner", &["bob"]).await;
    let bytes: Vec<u8> = (0..=255u8).collect();
    let mut body = b"--B0UNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"raw.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n".to_vec();
    body.extend(&bytes);
    body.extend(b"\r\n--B0UNDARY--\r\n");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&body);
    let event = authorized("POST", &format!("/api/v1/org/{org}/rooms/{room}/messagemedia"), "bob", &Value::Null)
        .replace(
            "\"content-type\": \"application/json\"",
            "\"content-type\": \"multipart/form-data; boundary=B0UNDARY\"",
        )
        .replace("\"body\": \"null\"", &format!("\"body\": \"{encoded}\""))
        .replace("\"isBase64Encoded\": false", "\"isBase64Encoded\": true");
    let (status, reply) = invoke(dm_media::router(app.stack.state.clone()), &event).await;
    assert_eq!(status, 201, "{reply}");
    let url = reply["media_url"].as_str().unwrap();
    assert!(url.starts_with("https://abc123.execute-api.eu-west-1.amazonaws.com/api/v1/"), "{url}");
    assert!(url.ends_with("/raw.bin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_authorizer_claims_or_a_token_a_request_is_401() {
    let app = spawn_app().await;
    let org = app.org("owner").await;
    let event = include_str!("data/apigw_v2_ping.json").replace("/api/v1/ping", &format!("/api/v1/org/{org}/members"));
    let (status, body) = invoke(dm_members::router(app.stack.state.clone()), &event).await;
    assert_eq!((status, body["status"].clone()), (401, json!(401)), "{body}");
    // The claims of Auth0, Cognito or Entra name the caller as they are.
    let event = authorized("GET", &format!("/api/v1/org/{org}/members"), "auth0|abc123", &Value::Null);
    assert_eq!(invoke(dm_members::router(app.stack.state.clone()), &event).await.0, 403, "not a member");
}

/// A WebSocket route request through the realtime function, as Lambda hands it over.
async fn route(realtime: &dm_realtime::Realtime, event: Value) -> Value {
    dm_realtime::lambda::socket(realtime, serde_json::from_value(event).expect("a WebSocket event")).await.unwrap()
}

/// A WebSocket route request as API Gateway sends it to the realtime function.
fn websocket(route: &str, connection: &str, query: &[(&str, &str)]) -> Value {
    frame(route, connection, query, None)
}

/// A WebSocket route request carrying a client's frame (`$default`).
fn frame(route: &str, connection: &str, query: &[(&str, &str)], body: Option<&Value>) -> Value {
    let single: serde_json::Map<String, Value> = query.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    let multi: serde_json::Map<String, Value> = query.iter().map(|(k, v)| ((*k).to_owned(), json!([v]))).collect();
    let (single, multi) = if query.is_empty() {
        ("null".to_owned(), "null".to_owned())
    } else {
        (json!(single).to_string(), json!(multi).to_string())
    };
    let event_type = match route {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let text = include_str!("data/apigw_ws_connect.json")
        .replace("{{route}}", route)
        .replace("{{event_type}}", event_type)
        .replace("{{connection}}", connection)
        .replace("{{query}}", &single)
        .replace("{{multi_query}}", &multi)
        .replace("{{body}}", &body.map_or("null".to_owned(), |body| json!(body.to_string()).to_string()));
    serde_json::from_str(&text).expect("a WebSocket event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_realtime_function_answers_websocket_routes_as_api_gateway_sends_them() {
    let app = dm_tests::spawn_app_without_scheduler().await;
    let org = app.org("alice").await;
    let state = app.stack.state.clone();
    let realtime = dm_realtime::Realtime::new(state.clone(), app.stack.connections_endpoint()).unwrap();
    let alice = dm_tests::token("alice");
    let status = |answer: Value| answer["statusCode"].as_i64().expect("a status");

    let connect = websocket("$connect", "Jx2QnFrWjoEFcvQ=", &[("token", &alice), ("org_id", &org)]);
    assert_eq!(status(route(&realtime, connect).await), 200);
    let (org_id, user) =
        (dm_shared::ids::OrgId::parse(org.clone()).unwrap(), dm_shared::ids::UserId::parse("alice").unwrap());
    let open = state.store.open_connections(&org_id, std::slice::from_ref(&user)).await.unwrap();
    assert_eq!(open, [["Jx2QnFrWjoEFcvQ="]]);

    let stranger = dm_tests::token("stranger");
    for (query, expected) in [
        (vec![("org_id", org.as_str())], 401),
        (vec![("token", "not-a-jwt"), ("org_id", org.as_str())], 401),
        (vec![("token", stranger.as_str()), ("org_id", org.as_str())], 403),
        (vec![("token", alice.as_str())], 400),
    ] {
        let refused = websocket("$connect", "Kx2QnFrWjoEFcvQ=", &query);
        assert_eq!(status(route(&realtime, refused).await), expected, "{query:?}");
    }

    let disconnect = websocket("$disconnect", "Jx2QnFrWjoEFcvQ=", &[]);
    assert_eq!(status(route(&realtime, disconnect).await), 200);
    assert!(state.store.open_connections(&org_id, std::slice::from_ref(&user)).await.unwrap()[0].is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typing_frame_through_default_reaches_the_other_members_socket() {
    let app = dm_tests::spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let mut bob = app.socket("bob", &org).await.expect("bob connects");
    let realtime = dm_realtime::Realtime::new(app.stack.state.clone(), app.stack.connections_endpoint()).unwrap();
    let alice = dm_tests::token("alice");
    let connect = websocket("$connect", "Mx2QnFrWjoEFcvQ=", &[("token", &alice), ("org_id", &org)]);
    assert_eq!(route(&realtime, connect).await["statusCode"], 200);

    let typing = json!({ "action": "typing", "org_id": org, "room_id": room, "state": "start" });
    let sent = frame("$default", "Mx2QnFrWjoEFcvQ=", &[], Some(&typing));
    assert_eq!(route(&realtime, sent).await["statusCode"], 200);
    let seen = dm_tests::expect_event(&mut bob, "typing").await;
    assert_eq!(seen, json!({ "event": "typing", "room_id": room, "user_id": "alice", "state": "start" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_batch_as_lambda_delivers_it_reaches_the_rooms_sockets() {
    // No local stream reader: the only way the event can arrive is the batch handed over here.
    let app = dm_tests::spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let mut socket = app.socket("bob", &org).await.expect("bob connects");
    let message = app.send(&org, &room, "alice", "over the stream").await;

    let state = app.stack.state.clone();
    let keys = json!({ "PK": { "S": format!("ROOM#{room}") }, "SK": { "S": format!("MSG#{message}") } });
    let stored = state
        .store
        .client()
        .get_item()
        .table_name(state.store.table())
        .key("PK", aws_sdk_dynamodb::types::AttributeValue::S(format!("ROOM#{room}")))
        .key("SK", aws_sdk_dynamodb::types::AttributeValue::S(format!("MSG#{message}")))
        .send()
        .await
        .unwrap()
        .item
        .expect("the message is stored");
    let image = serde_json::to_string(&serde_dynamo::Item::from(stored)).unwrap();
    let batch = include_str!("data/dynamodb_stream_insert.json")
        .replace("{{keys}}", &keys.to_string())
        .replace("{{new_image}}", &image);
    let mut pushed = Vec::new();
    // Delivered twice, as a retried batch is (the second time to another instance, which knows
    // nothing of the first): pushed again, numbered and logged once.
    for _ in 0..2 {
        let realtime = dm_realtime::Realtime::new(state.clone(), app.stack.connections_endpoint()).unwrap();
        let answer = dm_realtime::lambda::stream(&realtime, serde_json::from_str(&batch).unwrap()).await.unwrap();
        assert_eq!(answer["batchItemFailures"], json!([]), "{answer}");
        let event = dm_tests::next_event(&mut socket, std::time::Duration::from_secs(10)).await.expect("an event");
        assert_eq!(event["event"], "message_create", "{event}");
        assert_eq!(event["data"]["message"], "over the stream", "{event}");
        pushed.push(event);
    }
    assert_eq!(pushed[0], pushed[1], "the same seq and event id");
    assert_eq!(pushed[0]["seq"], 1);
    let synced = app.get(&format!("/api/v1/org/{org}/users/bob/sync?since={}", dm_shared::time::now_ms()), "bob").await;
    assert_eq!(synced.body["events"], json!([pushed[0]]), "{}", synced.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_runs_on_eventbridge_schedulers_event() {
    let app = dm_tests::spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    app.scheduled(&org, &room, "alice", "good morning", -1_000).await.unwrap();
    let event: Value = serde_json::from_str(include_str!("data/eventbridge_scheduled.json")).unwrap();
    let report = dm_scheduler::handle(&app.stack.state, event).await.unwrap();
    assert_eq!(report["sent"], 1, "{report}");
    // Scheduler's default input (none) works as well.
    assert_eq!(dm_scheduler::handle(&app.stack.state, json!({})).await.unwrap()["sent"], 0);
    let listed = app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "bob").await;
    assert_eq!(listed.body["results"][0]["message"], "good morning", "{}", listed.raw);
}
