//! What an operator repairs: a stream batch discarded after its last retry (Lambda sent only its
//! place to the failure queue) is projected again from that place, or its rooms rebuilt from their
//! posts; both are idempotent and safe while traffic flows.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use dm_projector::Projector;
use dm_shared::ids::RoomId;
use dm_shared::stream::api::FailedBatch;
use dm_tests::{TestApp, spawn_app_without_scheduler};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::inbox::stored_record;

async fn unread(app: &TestApp, org: &str, user: &str) -> Value {
    let totals = app.get(&format!("/api/v1/org/{org}/users/{user}/unread"), user).await;
    json!({ "rooms": totals.body["rooms"], "messages": totals.body["messages"] })
}

/// The room's list as `user` sees it: its count and the first message's `thread_count`.
async fn listed(app: &TestApp, org: &str, room: &str, user: &str) -> (Value, Value) {
    let list = app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), user).await;
    (list.body["count"].clone(), list.body["results"][0]["thread_count"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_repairs_what_discarded_batches_left_and_changes_nothing_the_second_time() {
    let app = &spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let projector = Projector::new(app.stack.state.clone());
    // The push took every change (it logs and counts them); the projector's batches were discarded
    // but the first message's.
    let push = dm_realtime::Realtime::new(app.stack.state.clone(), app.stack.connections_endpoint()).unwrap();
    let doomed = app.send(&org, &room, "alice", "old plan at https://doomed.example").await;
    let stored = stored_record(app, &room, format!("MSG#{doomed}"), 0).await;
    assert!(projector.project(std::slice::from_ref(&stored)).await.is_empty());
    let delete = format!("/api/v1/org/{org}/rooms/{room}/messages/{doomed}/message");
    assert_eq!(app.call(Method::DELETE, &delete, Some("alice"), None).await.status, StatusCode::OK);
    let removed =
        dm_shared::stream::Change { event_id: "e9".into(), old: stored.new.clone(), new: None, ..stored.clone() };
    let mut changes = vec![stored, removed];
    app.send(&org, &room, "alice", "the rocket plan").await;
    let newest = app.send(&org, &room, "alice", "launch at https://launch.example").await;
    let thread = format!("/api/v1/org/{org}/rooms/{room}/messages/{newest}/threads");
    let reply = app.post(&thread, "bob", json!({ "sender_id": "bob", "message": "go" })).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    let list = app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "bob").await;
    for (n, message) in list.body["results"].as_array().unwrap().iter().enumerate() {
        let id = message["id"].as_str().unwrap();
        changes.push(stored_record(app, &room, format!("MSG#{id}"), 10 + n).await);
    }
    assert!(push.publish(&changes).await.is_empty());
    // And the count went wrong besides (a write lost to a bug, a hand-made fix).
    let state = &app.stack.state;
    let head = state.store.client().update_item().table_name(state.store.table());
    let head = head.key("PK", AttributeValue::S(format!("ROOM#{room}"))).key("SK", AttributeValue::S("LOG".into()));
    head.update_expression("SET message_count = :wrong")
        .expression_attribute_values(":wrong", AttributeValue::N("7".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(listed(app, &org, &room, "bob").await, (json!(7), json!(0)), "what was left");

    let room_id = RoomId::parse(&room).unwrap();
    let rebuilt = projector.rebuild(std::slice::from_ref(&room_id)).await.expect("rebuilt");
    assert_eq!((rebuilt[0].messages, rebuilt[0].replies, rebuilt[0].counted, rebuilt[0].uncounted), (2, 1, 1, 0));
    assert_eq!(listed(app, &org, &room, "bob").await, (json!(2), json!(1)));
    assert_eq!(unread(app, &org, "bob").await, json!({ "rooms": 1, "messages": 2 }));
    let inbox = app.get(&format!("/api/v1/org/{org}/users/bob/rooms"), "bob").await;
    assert_eq!(inbox.body["results"][0]["last_message"]["message_id"], newest.as_str());
    let links = app.get(&format!("/api/v1/org/{org}/rooms/{room}/links"), "bob").await;
    assert_eq!(links.body["links"], json!(["https://launch.example"]), "the deleted message's link is gone");
    let search = app.get(&format!("/api/v1/org/{org}/users/bob/messages/search?keyword=rocket"), "bob").await;
    assert_eq!(search.body["count"], 1, "{}", search.raw);

    // Again, and at the same time as the projector takes the same records: nothing changes.
    let late = [stored_record(app, &room, format!("MSG#{newest}"), 1).await];
    let (again, projected) = tokio::join!(projector.rebuild(std::slice::from_ref(&room_id)), projector.project(&late));
    let again = again.expect("rebuilt again");
    assert_eq!((again[0].counted, again[0].uncounted, projected.len()), (0, 0, 0));
    assert_eq!(listed(app, &org, &room, "bob").await, (json!(2), json!(1)));
    assert_eq!(unread(app, &org, "bob").await, json!({ "rooms": 1, "messages": 2 }));
}

/// A rebuild while the push is behind with the room waits for it: a message the push has not
/// counted yet is counted once, by the push, and the rebuild's count agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_while_the_push_is_behind_counts_each_message_once() {
    let app = &spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let push = dm_realtime::Realtime::new(app.stack.state.clone(), app.stack.connections_endpoint()).unwrap();
    let first = app.send(&org, &room, "alice", "pushed").await;
    assert!(push.publish(&[stored_record(app, &room, format!("MSG#{first}"), 0).await]).await.is_empty());
    let second = app.send(&org, &room, "alice", "not pushed yet").await;
    let late = [stored_record(app, &room, format!("MSG#{second}"), 1).await];

    let projector = Projector::new(app.stack.state.clone());
    let room_id = RoomId::parse(&room).unwrap();
    let pushed_late = async {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        push.publish(&late).await
    };
    let (rebuilt, pushed) = tokio::join!(projector.rebuild(std::slice::from_ref(&room_id)), pushed_late);
    assert!(pushed.is_empty());
    assert_eq!(rebuilt.expect("rebuilt once the push caught up")[0].messages, 2);
    assert_eq!(listed(app, &org, &room, "bob").await.0, 2);
}

/// The failure queue's message names a shard and a range of sequence numbers; the replay reads
/// those records from the stream and projects them, as often as it is asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_queue_message_replays_its_batch_from_the_stream() {
    // The table has its stream; nothing reads it but the replay.
    let app = &spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let first = app.send(&org, &room, "alice", "one").await;
    let last = app.send(&org, &room, "alice", "two").await;

    let streams = dm_local::streams_client(&app.stack.state);
    let state = &app.stack.state;
    let table = state.store.client().describe_table().table_name(state.store.table()).send().await.unwrap();
    let arn = table.table.unwrap().latest_stream_arn.unwrap();
    let described = streams.describe_stream().stream_arn(&arn).send().await.unwrap();
    let mut batch = None;
    for shard in described.stream_description.unwrap().shards.unwrap_or_default() {
        let id = shard.shard_id.unwrap();
        let start = streams.get_shard_iterator().stream_arn(&arn).shard_id(&id);
        let iterator = start.shard_iterator_type(ShardIteratorType::TrimHorizon).send().await.unwrap();
        let read = streams.get_records().shard_iterator(iterator.shard_iterator.unwrap()).send().await.unwrap();
        let place = |id: &str| {
            let sk = format!("MSG#{id}");
            read.records().iter().find(|r| {
                let keys = r.dynamodb.as_ref().and_then(|d| d.keys.as_ref());
                keys.and_then(|k| k.get("SK")).and_then(|v| v.as_s().ok()) == Some(&sk)
            })
        };
        if let (Some(start), Some(end)) = (place(&first), place(&last)) {
            let seq = |r: &aws_sdk_dynamodbstreams::types::Record| r.dynamodb.clone().unwrap().sequence_number.unwrap();
            batch = Some((id, seq(start), seq(end)));
        }
    }
    let (shard, start, end) = batch.expect("the messages' records are in one shard");
    // As Lambda sends it to the failure destination.
    let message = json!({
        "requestContext": { "requestId": "r", "functionArn": "arn:aws:lambda:us-east-1:1:function:projector",
            "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 11 },
        "responseContext": { "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled" },
        "version": "1.0",
        "timestamp": "2026-12-04T12:00:00.000Z",
        "DDBStreamBatchInfo": { "shardId": shard, "startSequenceNumber": start, "endSequenceNumber": end,
            "approximateArrivalOfFirstRecord": "2026-12-04T12:00:00Z", "approximateArrivalOfLastRecord": "2026-12-04T12:00:00Z",
            "batchSize": 2, "streamArn": arn },
    });
    let failed: FailedBatch = serde_json::from_value(message).expect("a failure destination message");
    let projector = Projector::new(app.stack.state.clone());
    let failed = [failed];
    let replay = || dm_shared::stream::api::replay(&projector, &streams, &failed);
    let replayed = replay().await.expect("replayed");
    assert!(replayed >= 2, "{replayed} records");
    assert_eq!(replay().await.expect("replayed again"), replayed);
    assert_eq!(unread(app, &org, "bob").await, json!({ "rooms": 1, "messages": 2 }));
}
