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
