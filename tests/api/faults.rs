//! Derived state under the faults AWS produces every day: throttled writes, answers lost after the
//! write took effect, a reader's mark racing the projector, and one room's records arriving from two
//! shards (after a partition split) in whatever order. Counts, rows and unread come out exact.

use std::sync::Arc;

use dm_projector::Projector;
use dm_shared::ids::{MessageId, OrgId, RoomId, UserId};
use dm_shared::stream::Change;
use dm_tests::faults::{Fault, faulty_state};
use dm_tests::{TestApp, spawn_app, spawn_app_without_scheduler};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::inbox::stored_record;

async fn unread(app: &TestApp, org: &str, user: &str) -> Value {
    let totals = app.get(&format!("/api/v1/org/{org}/users/{user}/unread"), user).await;
    assert_eq!(totals.status, StatusCode::OK, "{}", totals.raw);
    json!({ "rooms": totals.body["rooms"], "messages": totals.body["messages"] })
}

/// `user`'s inbox row of their only room.
async fn only_row(app: &TestApp, org: &str, user: &str) -> Value {
    let inbox = app.get(&format!("/api/v1/org/{org}/users/{user}/rooms"), user).await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.raw);
    inbox.body["results"][0].clone()
}

/// A record of `change` at stream place `n` (its sequence number).
fn at(mut change: Change, n: u64) -> Change {
    change.sequence_number = n.to_string();
    change.event_id = format!("e{n}");
    change
}

/// A member's row whose write is throttled past the SDK's retries (the other rows took the message):
/// the batch is reported failed, comes again, and the row takes the message then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_write_throttled_past_its_retries_is_made_when_the_batch_comes_again() {
    let app = &spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let id = app.send(&org, &room, "alice", "hello bob").await;
    let batch = [stored_record(app, &room, format!("MSG#{id}"), 0).await];
    let (state, faults) = faulty_state(app).await;
    let bobs_row = format!("ORG#{org}#USER#bob");
    // However a row is written: the SDK tries three times, each throttled.
    faults.on("UpdateItem", &bobs_row, Fault::Throttle, 3);
    faults.on("PutItem", &bobs_row, Fault::Throttle, 3);
    let projector = Projector::new(state);

    assert_eq!(projector.project(&batch).await.len(), 1, "the batch is reported failed");
    assert_eq!(faults.happened(), 3, "bob's row was refused");
    assert_eq!(unread(app, &org, "bob").await, json!({ "rooms": 0, "messages": 0 }), "not shown yet");
    assert!(projector.project(&batch).await.is_empty(), "the batch again");
    let row = only_row(app, &org, "bob").await;
    assert_eq!((&row["last_message"]["message_id"], &row["unread_count"]), (&json!(id), &json!(1)), "{row}");
    assert_eq!(unread(app, &org, "bob").await, json!({ "rooms": 1, "messages": 1 }));
}

/// Every write of the projection taken by the table and its answer lost once: the SDK sends each
/// again, which must change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_lost_after_the_writes_took_effect_leave_counts_exact() {
    let app = &spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let first = app.send(&org, &room, "alice", "one").await;
    let second = app.send(&org, &room, "alice", "two").await;
    let batch = [
        stored_record(app, &room, format!("MSG#{first}"), 0).await,
        stored_record(app, &room, format!("MSG#{second}"), 1).await,
    ];
    let (state, faults) = faulty_state(app).await;
    for operation in ["UpdateItem", "BatchWriteItem"] {
        faults.on(operation, &room, Fault::LoseAnswer, 1);
    }
    assert!(Projector::new(state).project(&batch).await.is_empty());
    assert_eq!(faults.happened(), 2);
    assert_eq!(unread(app, &org, "bob").await, json!({ "rooms": 1, "messages": 2 }));
    assert_eq!(only_row(app, &org, "alice").await["last_read_message_id"], second.as_str());
}

/// The room's log under the same faults: an entry's put and the head's move each taken with their
/// answers lost, then an entry's put throttled past its retries. Every event is logged once, with
/// no gap, and the room's message count takes each message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_keeps_each_event_once_when_answers_are_lost_and_writes_throttled() {
    let app = &spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let start = app.get(&format!("/api/v1/org/{org}/users/bob/sync"), "bob").await.str("token");
    let mut records = Vec::new();
    for n in 0..3 {
        let id = app.send(&org, &room, "alice", &format!("message {n}")).await;
        records.push(stored_record(app, &room, format!("MSG#{id}"), n).await);
    }
    let (state, faults) = faulty_state(app).await;
    let push = dm_realtime::Realtime::new(state, app.stack.connections_endpoint()).unwrap();
    faults.on("PutItem", "LOG#", Fault::LoseAnswer, 1);
    faults.on("UpdateItem", "message_count", Fault::LoseAnswer, 1);
    assert!(push.publish(&records[..2]).await.is_empty());
    faults.on("PutItem", "LOG#", Fault::Throttle, 3);
    assert_eq!(push.publish(&records[2..]).await.len(), 1, "throttled past its retries: delivered again");
    assert!(push.publish(&records).await.is_empty(), "the whole batch again");
    assert_eq!(faults.happened(), 5);

    let synced = app.get(&format!("/api/v1/org/{org}/users/bob/sync?since={start}"), "bob").await;
    let events = synced.body["events"].as_array().unwrap();
    let seqs: Vec<&Value> = events.iter().map(|event| &event["seq"]).collect();
    assert_eq!(seqs, [1, 2, 3], "{}", synced.raw);
    let texts: Vec<&Value> = events.iter().map(|event| &event["data"]["message"]).collect();
    assert_eq!(texts, ["message 0", "message 1", "message 2"]);
    let listed = app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "bob").await;
    assert_eq!(listed.body["count"], 3, "each message counted once");
}

/// A room's records after its partition split: two shards, numbered independently, delivered in
/// either order and at the same time by two consumers. Nothing is dropped for coming "late".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_rooms_records_from_two_shards_are_each_taken_once() {
    let app = &spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let mut records = Vec::new();
    let mut newest = String::new();
    for text in ["one", "two", "three"] {
        newest = app.send(&org, &room, "alice", text).await;
        records.push(stored_record(app, &room, format!("MSG#{newest}"), 0).await);
    }
    // The newer shard's places are far past the older one's.
    let shard_a = vec![at(records[0].clone(), 900), at(records[1].clone(), 901)];
    let shard_b = vec![at(records[2].clone(), 100)];
    let (one, other) = (Projector::new(app.stack.state.clone()), Projector::new(app.stack.state.clone()));
    assert!(one.project(&shard_a).await.is_empty());
    assert!(other.project(&shard_b).await.is_empty(), "the other shard, later, with smaller numbers");
    let (a, b) = tokio::join!(one.project(&shard_b), other.project(&shard_a));
    assert!(a.is_empty() && b.is_empty(), "both again, at once, by the other consumer");

    assert_eq!(unread(app, &org, "bob").await, json!({ "rooms": 1, "messages": 3 }));
    assert_eq!(only_row(app, &org, "bob").await["last_message"]["message_id"], newest.as_str());
    assert_eq!(only_row(app, &org, "alice").await["last_read_message_id"], newest.as_str());
}

/// A mark taken while the projector shows an edit in the same row: the mark writes the marker
/// only, so the edited preview stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mark_racing_an_edit_keeps_the_edited_preview() {
    let app = &spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let id = app.send(&org, &room, "alice", "before").await;
    let stored = stored_record(app, &room, format!("MSG#{id}"), 0).await;
    let projector = Projector::new(app.stack.state.clone());
    assert!(projector.project(std::slice::from_ref(&stored)).await.is_empty());
    let path = format!("/api/v1/org/{org}/rooms/{room}/messages/{id}");
    let edited =
        app.call(Method::PUT, &path, Some("alice"), Some(json!({ "sender_id": "alice", "message": "after" }))).await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.raw);
    let new = stored_record(app, &room, format!("MSG#{id}"), 1).await;
    let edit = Change { old: stored.new.clone(), new: new.new, ..new };

    // The edit's projection lands just before the mark's write.
    let (state, faults) = faulty_state(app).await;
    let hook: dm_tests::faults::Hook = Arc::new(move || {
        let (projector, edit) = (projector.clone(), edit.clone());
        Box::pin(async move { assert!(projector.project(&[edit]).await.is_empty()) })
    });
    faults.on("TransactWriteItems", "READ#bob", Fault::Before(hook), 1);
    let ids = (OrgId::parse(&org).unwrap(), RoomId::parse(&room).unwrap(), UserId::parse("bob").unwrap());
    state.store.mark_read(&ids.0, &ids.1, &ids.2, &MessageId::parse(&id).unwrap()).await.expect("marked");
    assert_eq!(faults.happened(), 1);

    let row = only_row(app, &org, "bob").await;
    assert_eq!((&row["last_message"]["preview"], &row["last_read_message_id"]), (&json!("after"), &json!(id)), "{row}");
}

/// A newcomer's unread messages are those after they joined, whatever else happens in the room: a
/// delete of an older message does not make what came before them unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_leaves_a_newcomers_history_before_they_joined_read() {
    let app = &spawn_app().await;
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let first = app.send(&org, &room, "alice", "one").await;
    app.send(&org, &room, "alice", "two").await;
    app.settled().await;
    assert!(app.put(&format!("/api/v1/org/{org}/rooms/{room}/add-member/carol"), "alice").await.status.is_success());
    app.send(&org, &room, "alice", "three, after carol came").await;
    app.settled().await;
    assert_eq!(unread(app, &org, "carol").await, json!({ "rooms": 1, "messages": 1 }));

    let delete = format!("/api/v1/org/{org}/rooms/{room}/messages/{first}/message");
    assert_eq!(app.call(Method::DELETE, &delete, Some("alice"), None).await.status, StatusCode::OK);
    app.settled().await;
    assert_eq!(
        unread(app, &org, "carol").await,
        json!({ "rooms": 1, "messages": 1 }),
        "still only what came after her"
    );
    assert_eq!(unread(app, &org, "bob").await, json!({ "rooms": 1, "messages": 2 }), "alice's three, less the deleted");
}

/// A send whose transaction DynamoDB throttles past every retry: the client is told to retry (429
/// with `Retry-After`), never that the server failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_send_answers_429_with_retry_after() {
    let app = &spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let (state, faults) = faulty_state(app).await;
    faults.on("TransactWriteItems", &format!("ROOM#{room}"), Fault::Throttle, 100);
    let api = dm_messages::router(state);
    let path = format!("/api/v1/org/{org}/rooms/{room}/messages");
    let request = axum::http::Request::post(&path)
        .header("authorization", format!("Bearer {}", dm_tests::token("alice")))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(json!({ "sender_id": "alice", "message": "hi" }).to_string()))
        .unwrap();
    let response = tower::ServiceExt::oneshot(api, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "1");
    let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["status"], 429, "{body}");
    assert!(faults.happened() > 1, "the transaction was tried again before giving up");
    let listed = app.get(&path, "alice").await;
    assert_eq!(listed.body["count"], 0, "nothing was stored");
    assert_eq!(listed.body["results"], json!([]));
}

/// A change of several events (two members invited at once) whose logging stops part way, its
/// second entry's put throttled past the SDK's retries: delivered again, what was missing is logged,
/// and each event is in the log once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_logged_part_way_is_completed_when_delivered_again() {
    let app = &spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob", "carol", "dave"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let start = app.get(&format!("/api/v1/org/{org}/users/alice/sync"), "alice").await.str("token");
    let before = crate::inbox::image(app, format!("ROOM#{room}"), "META".into()).await;
    let invite = json!({ "member_ids": ["carol", "dave"] });
    let invited = app.post(&format!("/api/v1/org/{org}/rooms/{room}/members"), "alice", invite).await;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.raw);
    let after = crate::inbox::image(app, format!("ROOM#{room}"), "META".into()).await;
    let change = Change {
        event_id: "e1".into(),
        sequence_number: "1".into(),
        created_ms: 0,
        old: Some(before),
        new: Some(after),
    };

    let (state, faults) = faulty_state(app).await;
    let push = dm_realtime::Realtime::new(state, app.stack.connections_endpoint()).unwrap();
    faults.on("PutItem", r#""event_index":{"N":"1"}"#, Fault::Throttle, 3);
    assert_eq!(push.publish(std::slice::from_ref(&change)).await.len(), 1, "the second entry was refused");
    assert_eq!(faults.happened(), 3);
    assert!(push.publish(std::slice::from_ref(&change)).await.is_empty(), "delivered again");
    assert!(push.publish(&[change]).await.is_empty(), "and again");

    let synced = app.get(&format!("/api/v1/org/{org}/users/alice/sync?since={start}"), "alice").await;
    let events = synced.body["events"].as_array().unwrap();
    let added: Vec<(&Value, &Value)> = events.iter().map(|e| (&e["data"]["member_id"], &e["seq"])).collect();
    assert_eq!(added, [(&json!("carol"), &json!(1)), (&json!("dave"), &json!(2))], "{}", synced.raw);
}
