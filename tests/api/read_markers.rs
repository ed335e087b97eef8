//! Read markers and receipts: how far each member has read a room, set forwards or back, seen by the
//! room's members and pushed to their connections.

use dm_tests::{TestApp, expect_event, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn mark(app: &TestApp, org: &str, room: &str, user: &str, body: Option<Value>) -> dm_tests::Reply {
    app.call(Method::PUT, &format!("/api/v1/org/{org}/rooms/{room}/read"), Some(user), body).await
}

/// Each member's marker, by user id.
async fn seen(app: &TestApp, org: &str, room: &str, user: &str) -> Vec<(String, Value)> {
    let state = app.get(&format!("/api/v1/org/{org}/rooms/{room}/read-state"), user).await;
    assert_eq!(state.status, StatusCode::OK, "{}", state.raw);
    let results = state.body["results"].as_array().expect("results").clone();
    results.iter().map(|r| (r["user_id"].as_str().unwrap().to_owned(), r["last_read_message_id"].clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marker_moves_forwards_and_back_and_every_member_sees_it() {
    let app = &spawn_app().await;
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let empty = mark(app, &org, &room, "bob", None).await;
    assert_eq!((empty.status, &empty.body["last_read_message_id"]), (StatusCode::OK, &Value::Null), "{}", empty.raw);

    let first = app.send(&org, &room, "alice", "one").await;
    let second = app.send(&org, &room, "alice", "two").await;
    // What alice sent, she has read; bob has read nothing yet.
    app.settled().await;
    assert_eq!(seen(app, &org, &room, "alice").await, [("alice".into(), json!(second)), ("bob".into(), Value::Null)]);
    let state = app.get(&format!("/api/v1/org/{org}/rooms/{room}/read-state"), "bob").await;
    let listed = app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "bob").await;
    let results = listed.body["results"].as_array().unwrap();
    let sent_at =
        results.iter().find(|m| m["id"] == second.as_str()).expect("her second message")["created_at"].clone();
    assert_eq!(state.body["results"][0]["read_at"], sent_at, "read when she sent it: {}", state.raw);
    assert_eq!(state.body["results"][1]["read_at"], Value::Null);

    // By default the newest message; the same call again changes nothing.
    for _ in 0..2 {
        let newest = mark(app, &org, &room, "bob", None).await;
        assert_eq!(newest.status, StatusCode::OK, "{}", newest.raw);
        assert_eq!(newest.body["last_read_message_id"], second.as_str());
        assert!(newest.body["read_at"].is_string());
    }
    assert_eq!(seen(app, &org, &room, "alice").await[1], ("bob".into(), json!(second)));

    // Back to an older message: what follows it is unread again.
    let back = mark(app, &org, &room, "bob", Some(json!({ "message_id": first }))).await;
    assert_eq!(back.body["last_read_message_id"], first.as_str(), "{}", back.raw);
    assert_eq!(seen(app, &org, &room, "bob").await[1], ("bob".into(), json!(first)));

    let other_room = app.room(&org, "alice", &["carol"]).await;
    let elsewhere = app.send(&org, &other_room, "alice", "not here").await;
    for (user, body, status) in [
        ("bob", json!({ "message_id": elsewhere }), StatusCode::NOT_FOUND),
        ("bob", json!({ "message_id": "01JNOSUCHMESSAGE" }), StatusCode::NOT_FOUND),
        ("bob", json!({ "message_id": "not an id" }), StatusCode::BAD_REQUEST),
        ("bob", json!({ "message": first }), StatusCode::BAD_REQUEST),
        ("carol", json!({ "message_id": first }), StatusCode::FORBIDDEN),
        ("stranger", json!({ "message_id": first }), StatusCode::FORBIDDEN),
    ] {
        let reply = mark(app, &org, &room, user, Some(body.clone())).await;
        assert_eq!(reply.status, status, "{user} {body}: {}", reply.raw);
    }
    let state = app.get(&format!("/api/v1/org/{org}/rooms/{room}/read-state"), "carol").await;
    assert_eq!(state.status, StatusCode::FORBIDDEN);
    let missing = app.get(&format!("/api/v1/org/{org}/rooms/01JNOSUCHROOM/read-state"), "alice").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_marker_event_reaches_every_members_connections() {
    let app = &spawn_app().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let message = app.send(&org, &room, "alice", "did you see this?").await;
    let mut alice = app.socket("alice", &org).await.expect("alice connects");
    assert_eq!(mark(app, &org, &room, "bob", None).await.status, StatusCode::OK);

    let event = expect_event(&mut alice, "read_marker").await;
    assert_eq!(event["room_id"], room.as_str());
    assert_eq!(event["data"]["user_id"], "bob");
    assert_eq!(event["data"]["message_id"], message.as_str());
}
