//! Deleting a message leaves nothing of it reachable or stored, and moderators may delete anywhere.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use dm_tests::{TestApp, read, spawn_app, token};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::json;

/// An org of alice (owner), bob, carol and an admin; a room of alice and bob.
async fn setup(app: &TestApp) -> (String, String) {
    let org = app.org_with("alice", &["bob", "carol"]).await;
    app.join(&org, "alice", "admin", "admin").await;
    let room = app.room(&org, "alice", &["bob"]).await;
    (org, room)
}

type RawItem = HashMap<String, AttributeValue>;

/// Every item of a partition, straight from the table.
async fn partition(app: &TestApp, pk: &str) -> Vec<RawItem> {
    let store = &app.stack.state.store;
    let output = store
        .client()
        .query()
        .table_name(store.table())
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    output.items.unwrap_or_default()
}

async fn sort_keys(app: &TestApp, pk: &str) -> Vec<String> {
    partition(app, pk).await.iter().map(|item| item["SK"].as_s().unwrap().clone()).collect()
}

/// The room partition's sort keys once the projector has caught up.
async fn settled(app: &TestApp, room: &str) -> Vec<String> {
    app.settled().await;
    sort_keys(app, &format!("ROOM#{room}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_message_takes_its_history_replies_reactions_and_files_with_it() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let base = format!("/api/v1/org/{org}/rooms/{room}");

    let form = Form::new().part("file", Part::bytes(b"png".to_vec()).file_name("a.png").mime_str("image/png").unwrap());
    let upload = app.raw(Method::POST, &format!("{base}/messagemedia")).bearer_auth(token("alice")).multipart(form);
    let media_url = read(upload.send().await.unwrap()).await.str("media_url");
    let sent = app
        .post(
            &format!("{base}/messages"),
            "alice",
            json!({ "sender_id": "alice", "message": "see https://a.example/x", "media": [media_url] }),
        )
        .await;
    let message = sent.str("message_id");
    let edit = json!({ "sender_id": "alice", "message": "see https://a.example/y launch" });
    assert_eq!(
        app.call(Method::PUT, &format!("{base}/messages/{message}"), Some("alice"), Some(edit)).await.status,
        StatusCode::OK
    );
    let thread = format!("{base}/messages/{message}/threads");
    let reply = app
        .post(&thread, "bob", json!({ "sender_id": "bob", "message": "reply https://b.example/r rocket" }))
        .await
        .str("thread_id");
    let edit = json!({ "sender_id": "bob", "message": "reply https://b.example/r rocket again" });
    assert_eq!(
        app.call(Method::PUT, &format!("{thread}/{reply}"), Some("bob"), Some(edit)).await.status,
        StatusCode::OK
    );
    let react = |path: String, user: &'static str| async move {
        app.post(&path, user, json!({ "sender_id": user, "data": "👍" })).await.status
    };
    assert_eq!(react(format!("{base}/messages/{message}/reactions"), "bob").await, StatusCode::CREATED);
    assert_eq!(react(format!("{thread}/{reply}/reactions"), "alice").await, StatusCode::CREATED);
    let stored = app.stack.state.store.client().get_item().table_name(app.stack.state.store.table());
    let before = stored
        .key("PK", AttributeValue::S(format!("ROOM#{room}")))
        .key("SK", AttributeValue::S(format!("MSG#{message}")))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();

    // The admin is not in the room, and moderates it all the same.
    let deleted = app.call(Method::DELETE, &format!("{base}/messages/{message}/message"), Some("admin"), None).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.raw);
    let left = settled(app, &room).await;
    assert!(!left.iter().any(|sk| sk.contains(&message) || sk.contains(&reply)), "left behind: {left:?}");
    assert!(partition(app, &format!("MSG#{reply}")).await.is_empty(), "the reply's pointer");
    assert!(partition(app, &format!("ROOM#{room}#TERM#rocket")).await.is_empty(), "the reply's search entries");
    let key = format!("message_media/{org}/{room}/{}", media_url.split("/media/").nth(1).unwrap());
    let media = dm_shared::media::Media::new(&app.stack.state);
    assert!(media.head(&key).await.unwrap().is_none(), "the message's file");
    let search = app.get(&format!("/api/v1/org/{org}/users/bob/messages/search?keyword=rocket"), "bob").await;
    assert_eq!(search.body["count"], 0);
    assert_eq!(react(format!("{base}/messages/{message}/reactions"), "bob").await, StatusCode::NOT_FOUND);

    // The stream delivers a removal again, or in another batch: nothing changes, nothing fails.
    let removal = dm_shared::stream::Change {
        event_id: "replayed".into(),
        sequence_number: "1".into(),
        created_ms: 0,
        old: Some(serde_dynamo::Item::from(before)),
        new: None,
    };
    let projector = dm_projector::Projector::new(app.stack.state.clone());
    assert!(projector.project(&[removal.clone(), removal.clone()]).await.is_empty());
    assert!(projector.project(&[removal]).await.is_empty());
    assert_eq!(sort_keys(app, &format!("ROOM#{room}")).await, left);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_senders_and_moderators_delete_and_only_members_see() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let base = format!("/api/v1/org/{org}/rooms/{room}");
    let message = app.send(&org, &room, "bob", "mine").await;
    let reply = app
        .post(
            &format!("{base}/messages/{message}/threads"),
            "bob",
            json!({ "sender_id": "bob", "message": "also mine" }),
        )
        .await
        .str("thread_id");
    let delete = |user: &'static str, path: String| async move {
        app.call(Method::DELETE, &path, Some(user), None).await.status
    };
    let message_path = format!("{base}/messages/{message}/message");
    let reply_path = format!("{base}/messages/{message}/threads/{reply}");
    assert_eq!(delete("carol", message_path.clone()).await, StatusCode::FORBIDDEN, "not in the room");
    assert_eq!(delete("carol", reply_path.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(delete("admin", reply_path.clone()).await, StatusCode::OK, "an admin outside the room");
    assert_eq!(delete("alice", message_path.clone()).await, StatusCode::OK, "the owner");
    assert_eq!(delete("admin", message_path).await, StatusCode::NOT_FOUND);
    let own = app.send(&org, &room, "alice", "not bob's").await;
    assert_eq!(delete("bob", format!("{base}/messages/{own}/message")).await, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_reaction_never_added_is_404() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let message = app.send(&org, &room, "alice", "react").await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/messages/{message}/reactions");
    let remove = |user: &'static str| {
        let path = format!("{path}/%F0%9F%91%8D");
        async move { app.call(Method::DELETE, &path, Some(user), None).await }
    };
    let never = remove("bob").await;
    assert_eq!(never.status, StatusCode::NOT_FOUND, "{}", never.raw);
    assert_eq!(
        app.post(&path, "alice", json!({ "sender_id": "alice", "data": "👍" })).await.status,
        StatusCode::CREATED
    );
    assert_eq!(remove("bob").await.status, StatusCode::NOT_FOUND, "someone else's");
    assert_eq!(remove("alice").await.status, StatusCode::OK);
    assert_eq!(remove("alice").await.status, StatusCode::NOT_FOUND);
}

/// A delete conditioned on the message as it read it: an edit that adds a link, or a pin, racing the
/// delete cannot leave the link or the pin behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_pins_racing_a_delete_leave_nothing_behind() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let base = format!("/api/v1/org/{org}/rooms/{room}");
    for round in 0..10 {
        let id = app.send(&org, &room, "alice", "plain").await;
        let edit = json!({ "sender_id": "alice", "message": format!("now https://race.example/{round}") });
        let (edit_path, pin_path) = (format!("{base}/messages/{id}"), format!("/api/v1/org/{org}/messages/{id}/pin"));
        let delete_path = format!("{base}/messages/{id}/message");
        let (_, _, deleted) = tokio::join!(
            app.call(Method::PUT, &edit_path, Some("alice"), Some(edit)),
            app.put(&pin_path, "alice"),
            app.call(Method::DELETE, &delete_path, Some("alice"), None),
        );
        assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.raw);
    }
    let keys = settled(app, &room).await;
    let links: Vec<&String> = keys.iter().filter(|sk| sk.starts_with("LINK#")).collect();
    assert!(links.is_empty(), "{links:?}");
    let info = app.get(&format!("{base}/info"), "alice").await;
    assert_eq!(info.body["pinned"], json!([]));
    assert_eq!(app.get(&format!("{base}/links"), "alice").await.body["links"], json!([]));
}
