//! The inbox every client opens on: rooms by latest activity with their last message and unread
//! counts, kept by the projector from the table's stream, once per message.

use dm_tests::{TestApp, spawn_app, spawn_app_without_scheduler};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The room ids of an inbox page, in order.
fn rooms(inbox: &Value) -> Vec<String> {
    inbox["results"].as_array().unwrap().iter().map(|r| r["room_id"].as_str().unwrap().to_owned()).collect()
}

/// A room of an inbox page.
fn row<'a>(inbox: &'a Value, room: &str) -> &'a Value {
    inbox["results"].as_array().unwrap().iter().find(|r| r["room_id"] == room).expect("the room is listed")
}

async fn unread(app: &TestApp, org: &str, user: &str) -> Value {
    let totals = app.get(&format!("/api/v1/org/{org}/users/{user}/unread"), user).await;
    assert_eq!(totals.status, StatusCode::OK, "{}", totals.raw);
    json!({ "rooms": totals.body["rooms"], "messages": totals.body["messages"] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_come_by_latest_activity_with_last_message_and_unread_count() {
    let app = &spawn_app().await;
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let with_bob = app.room(&org, "alice", &["bob"]).await;
    let with_carol = app.room(&org, "alice", &["carol"]).await;
    let bob_and_carol = app.room(&org, "bob", &["carol"]).await;
    let hello = app.send(&org, &with_bob, "alice", "hello bob").await;
    app.send(&org, &with_carol, "alice", "hello carol").await;
    let first = app.send(&org, &with_bob, "bob", "hi alice").await;
    let long = "x".repeat(250);
    let last = app.send(&org, &with_bob, "bob", &long).await;

    let inbox = app.inbox_when(&org, "alice", "", |inbox| inbox["results"][0]["unread_count"] == 2).await;
    assert_eq!(rooms(&inbox), [with_bob.clone(), with_carol.clone()]);
    let newest = row(&inbox, &with_bob);
    assert_eq!(newest["last_message"]["message_id"], last.as_str());
    assert_eq!(newest["last_message"]["sender_id"], "bob");
    assert_eq!(newest["last_message"]["preview"].as_str().unwrap().chars().count(), 200);
    assert_eq!(newest["last_activity_at"], newest["last_message"]["created_at"]);
    assert_eq!(newest["last_read_message_id"], hello.as_str(), "what alice sent, she has read");
    assert_eq!(row(&inbox, &with_carol)["unread_count"], 0, "alice sent it");
    assert_eq!(unread(app, &org, "alice").await, json!({ "rooms": 1, "messages": 2 }));
    assert_eq!(unread(app, &org, "carol").await, json!({ "rooms": 1, "messages": 1 }));

    // Sending moved bob's marker to what he sent; the room bob and carol never wrote in comes after.
    let bobs = app.inbox_when(&org, "bob", "", |inbox| inbox["results"][0]["last_read_message_id"] == last).await;
    assert_eq!(rooms(&bobs), [with_bob.clone(), bob_and_carol.clone()]);
    assert_eq!(row(&bobs, &with_bob)["unread_count"], 0);
    assert_eq!(row(&bobs, &bob_and_carol)["last_message"], Value::Null);

    let created = app.get(&format!("/api/v1/org/{org}/users/alice/rooms?sort=created"), "alice").await;
    assert_eq!(rooms(&created.body), [with_carol.clone(), with_bob.clone()]);
    let only_unread = app.get(&format!("/api/v1/org/{org}/users/alice/rooms?unread=true"), "alice").await;
    assert_eq!(rooms(&only_unread.body), [with_bob.as_str()]);
    for bad in ["?sort=size", "?unread=maybe"] {
        let refused = app.get(&format!("/api/v1/org/{org}/users/alice/rooms{bad}"), "alice").await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let others = app.get(&format!("/api/v1/org/{org}/users/bob/unread"), "alice").await;
    assert_eq!(others.status, StatusCode::FORBIDDEN);

    // Read: nothing unread; back to bob's first message: his second is unread again.
    let read = |body: Option<Value>| {
        let path = format!("/api/v1/org/{org}/rooms/{with_bob}/read");
        async move { app.call(Method::PUT, &path, Some("alice"), body).await }
    };
    assert_eq!(read(None).await.status, StatusCode::OK);
    assert_eq!(unread(app, &org, "alice").await, json!({ "rooms": 0, "messages": 0 }));
    assert_eq!(read(Some(json!({ "message_id": first }))).await.status, StatusCode::OK);
    assert_eq!(unread(app, &org, "alice").await, json!({ "rooms": 1, "messages": 1 }));

    // An edit of the last message changes its preview; deleting it uncounts it and shows the one before.
    let edit = json!({ "sender_id": "bob", "message": "edited" });
    let edited = app
        .call(Method::PUT, &format!("/api/v1/org/{org}/rooms/{with_bob}/messages/{last}"), Some("bob"), Some(edit))
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.raw);
    app.inbox_when(&org, "alice", "", |inbox| inbox["results"][0]["last_message"]["preview"] == "edited").await;
    let deleted = app
        .call(Method::DELETE, &format!("/api/v1/org/{org}/rooms/{with_bob}/messages/{last}/message"), Some("bob"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.raw);
    let inbox =
        app.inbox_when(&org, "alice", "", |inbox| inbox["results"][0]["last_message"]["message_id"] == first).await;
    assert_eq!(row(&inbox, &with_bob)["unread_count"], 0);
    assert_eq!(unread(app, &org, "alice").await, json!({ "rooms": 0, "messages": 0 }));
}

/// The stored state of one message or room item, as a stream record shows it.
async fn image(app: &TestApp, pk: String, sk: String) -> serde_dynamo::Item {
    use aws_sdk_dynamodb::types::AttributeValue;
    let state = &app.stack.state;
    let found = state
        .store
        .client()
        .get_item()
        .table_name(state.store.table())
        .key("PK", AttributeValue::S(pk))
        .key("SK", AttributeValue::S(sk))
        .send()
        .await
        .unwrap();
    serde_dynamo::Item::from(found.item.expect("the item is stored"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_rebatched_records_count_each_message_once() {
    // No stream reader: the batches below are the only projection.
    let app = &spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let mut batch = Vec::new();
    let mut ids = Vec::new();
    for (n, text) in ["one", "two", "three"].into_iter().enumerate() {
        let id = app.send(&org, &room, "alice", text).await;
        let new = image(app, format!("ROOM#{room}"), format!("MSG#{id}")).await;
        batch.push(dm_shared::stream::Change {
            event_id: format!("e{n}"),
            sequence_number: format!("{n}"),
            old: None,
            new: Some(new),
        });
        ids.push(id);
    }
    let removed = image(app, format!("ROOM#{room}"), format!("MSG#{}", ids[2])).await;
    let gone = app
        .call(
            Method::DELETE,
            &format!("/api/v1/org/{org}/rooms/{room}/messages/{}/message", ids[2]),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::OK);
    batch.push(dm_shared::stream::Change {
        event_id: "e3".into(),
        sequence_number: "3".into(),
        old: Some(removed),
        new: None,
    });

    let projector = dm_projector::Projector::new(app.stack.state.clone());
    let expected = json!({ "rooms": 1, "messages": 2 });
    assert!(projector.project(&batch).await.is_empty());
    assert_eq!(unread(app, &org, "bob").await, expected);
    assert!(projector.project(&batch).await.is_empty(), "the whole batch again");
    assert!(projector.project(&batch[..2]).await.is_empty(), "split differently");
    assert!(projector.project(&batch[1..]).await.is_empty());
    assert_eq!(unread(app, &org, "bob").await, expected);
    let inbox = app.get(&format!("/api/v1/org/{org}/users/bob/rooms"), "bob").await;
    assert_eq!(inbox.body["results"][0]["last_message"]["message_id"], ids[1].as_str());
    let alices = app.get(&format!("/api/v1/org/{org}/users/alice/rooms"), "alice").await;
    // A marker stays where it was set, on a message deleted since too: everything up to it is read.
    assert_eq!(alices.body["results"][0]["last_read_message_id"], ids[2].as_str(), "{}", alices.raw);
    assert_eq!(alices.body["results"][0]["unread_count"], 0);
}

/// Members of one room send at once; once the projector has caught up, every member's unread count
/// is exactly the other members' messages after their own last one, however the sends interleaved.
/// A send answered 503 (DynamoDB Local pausing under load) is retried with its Idempotency-Key, as a
/// client would: it is stored once either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_leave_exact_unread_counts() {
    let app = &spawn_app().await;
    let senders: Vec<String> = (0..5).map(|i| format!("s{i}")).collect();
    let names: Vec<&str> = senders.iter().map(String::as_str).collect();
    let org = app.org_with("owner", &names).await;
    let room = app.room(&org, names[0], &names[1..]).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/messages");
    let sent: Vec<(String, Vec<String>)> = futures_util::future::join_all(senders.iter().map(|sender| {
        let path = path.clone();
        async move {
            let mut ids = Vec::new();
            for n in 0..4 {
                let body = json!({ "sender_id": sender, "message": format!("{sender} says {n}") });
                let reply = loop {
                    let reply = app
                        .raw(Method::POST, &path)
                        .bearer_auth(dm_tests::token(sender))
                        .header("idempotency-key", format!("{sender}-{n}"))
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    let reply = dm_tests::read(reply).await;
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
    let all: Vec<(&str, &str)> =
        sent.iter().flat_map(|(sender, ids)| ids.iter().map(move |id| (sender.as_str(), id.as_str()))).collect();
    let newest = all.iter().map(|(_, id)| *id).max().unwrap();
    for (member, own) in &sent {
        let marker = own.iter().max().unwrap();
        let expected = all.iter().filter(|(sender, id)| sender != member && id > &marker.as_str()).count();
        let inbox = app
            .inbox_when(&org, member, "", |inbox| {
                inbox["results"][0]["last_read_message_id"] == marker.as_str()
                    && inbox["results"][0]["unread_count"] == expected
                    && inbox["results"][0]["last_message"]["message_id"] == newest
            })
            .await;
        assert_eq!(inbox["results"][0]["room_id"], room.as_str());
        let totals = app.get(&format!("/api/v1/org/{org}/users/{member}/unread"), member).await;
        assert_eq!(totals.body["messages"], expected, "{member}");
    }
    // Stored once each, counted once each.
    app.get_when(&path, "s0", |list| list["count"] == all.len()).await;
}
