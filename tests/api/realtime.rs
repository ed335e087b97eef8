use std::time::Duration;

use dm_tests::{Socket, TestApp, next_event, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(3);

/// An org of alice (owner), bob and carol; a room of alice and bob.
async fn setup(app: &TestApp) -> (String, String) {
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    (org, room)
}

/// The next event named `name`, skipping others.
async fn expect(socket: &mut Socket, name: &str) -> Value {
    loop {
        let event = next_event(socket, WAIT).await.unwrap_or_else(|| panic!("no {name} event within {WAIT:?}"));
        if event["event"] == name {
            return event;
        }
    }
}

async fn silent(socket: &mut Socket) {
    if let Some(event) = next_event(socket, Duration::from_millis(1500)).await {
        panic!("expected no event, got {event}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_needs_a_valid_token_and_org() {
    let app = &spawn_app().await;
    let (org, _) = setup(app).await;
    assert!(app.socket("bob", &org).await.is_ok());
    assert_eq!(app.socket("stranger", &org).await.err(), Some(403));
    assert_eq!(app.socket("bob", "").await.err(), Some(400));
    let url = format!("{}/ws?token=not-a-token&org_id={org}", app.base.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("a bad token must be refused: {:?}", other.map(|_| ())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_receive_every_event_of_their_room() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let mut bob = app.socket("bob", &org).await.unwrap();
    let base = format!("/api/v1/org/{org}/rooms/{room}");

    let id = app.send(&org, &room, "alice", "hello bob").await;
    let created = expect(&mut bob, "message_create").await;
    assert_eq!(created["org_id"], org.as_str());
    assert_eq!(created["room_id"], room.as_str());
    assert_eq!(created["data"]["message_id"], id.as_str());
    assert_eq!(created["data"]["message"], "hello bob");
    assert!(created["event_id"].is_string());

    app.call(
        Method::PUT,
        &format!("{base}/messages/{id}"),
        Some("alice"),
        Some(json!({ "sender_id": "alice", "message": "hello Bob" })),
    )
    .await;
    assert_eq!(expect(&mut bob, "message_update").await["data"]["message"], "hello Bob");
    app.put(&format!("/api/v1/org/{org}/messages/{id}/pin"), "alice").await;
    assert_eq!(expect(&mut bob, "pin_message").await["data"]["message_id"], id.as_str());
    app.put(&format!("/api/v1/org/{org}/messages/{id}/pin"), "alice").await;
    expect(&mut bob, "unpin_message").await;

    let reactions = format!("{base}/messages/{id}/reactions");
    app.post(&reactions, "alice", json!({ "sender_id": "alice", "data": "👍" })).await;
    let added = expect(&mut bob, "add_message_reaction").await;
    assert_eq!(added["data"]["reaction"], "👍");
    assert_eq!(added["data"]["message_id"], id.as_str());
    app.call(Method::DELETE, &format!("{reactions}/%F0%9F%91%8D"), Some("alice"), None).await;
    expect(&mut bob, "remove_message_reaction").await;

    let thread = format!("{base}/messages/{id}/threads");
    let reply =
        app.post(&thread, "alice", json!({ "sender_id": "alice", "message": "in a thread" })).await.str("thread_id");
    assert_eq!(expect(&mut bob, "thread_message_create").await["data"]["thread_id"], reply.as_str());
    app.call(
        Method::PUT,
        &format!("{thread}/{reply}"),
        Some("alice"),
        Some(json!({ "sender_id": "alice", "message": "edited" })),
    )
    .await;
    expect(&mut bob, "thread_message_update").await;
    app.call(Method::DELETE, &format!("{thread}/{reply}"), Some("alice"), None).await;
    expect(&mut bob, "thread_message_delete").await;

    app.put(&format!("{base}/add-member/carol"), "alice").await;
    assert_eq!(expect(&mut bob, "member_added").await["data"]["member_id"], "carol");
    app.put(&format!("{base}/remove-member/carol"), "alice").await;
    assert_eq!(expect(&mut bob, "member_removed").await["data"]["member_id"], "carol");

    app.call(Method::DELETE, &format!("{base}/messages/{id}/message"), Some("alice"), None).await;
    assert_eq!(expect(&mut bob, "message_delete").await["data"]["message_id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_goes_to_the_readers_own_connections_only() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let mut alice = app.socket("alice", &org).await.unwrap();
    let mut bob_phone = app.socket("bob", &org).await.unwrap();
    let mut bob_laptop = app.socket("bob", &org).await.unwrap();
    let id = app.send(&org, &room, "alice", "read me").await;
    for socket in [&mut alice, &mut bob_phone, &mut bob_laptop] {
        expect(socket, "message_create").await;
    }
    app.put(&format!("/api/v1/org/{org}/messages/{id}/read"), "bob").await;
    for socket in [&mut bob_phone, &mut bob_laptop] {
        let read = expect(socket, "read").await;
        assert_eq!(read["data"], json!({ "message_id": id, "read": true }));
    }
    silent(&mut alice).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_and_removed_members_get_nothing() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let mut carol = app.socket("carol", &org).await.unwrap();
    let other_org = app.org_with("bob", &["alice"]).await;
    let mut bob_elsewhere = app.socket("bob", &other_org).await.unwrap();
    let mut bob = app.socket("bob", &org).await.unwrap();

    app.send(&org, &room, "alice", "private").await;
    expect(&mut bob, "message_create").await;
    silent(&mut carol).await;
    silent(&mut bob_elsewhere).await;

    app.call(Method::DELETE, &format!("/api/v1/org/{org}/rooms/{room}/members/bob"), Some("alice"), None).await;
    app.send(&org, &room, "alice", "after bob left").await;
    while let Some(event) = next_event(&mut bob, Duration::from_millis(1500)).await {
        assert_ne!(event["event"], "message_create", "a removed member got {event}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_order_and_closed_connections_are_forgotten() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let mut bob = app.socket("bob", &org).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..20 {
        sent.push(app.send(&org, &room, if i % 2 == 0 { "alice" } else { "bob" }, &format!("n{i}")).await);
    }
    let mut received = Vec::new();
    let mut ids = std::collections::HashSet::new();
    while received.len() < 20 {
        let event = expect(&mut bob, "message_create").await;
        assert!(ids.insert(event["event_id"].as_str().unwrap().to_owned()), "event ids are unique");
        received.push(event["data"]["message_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(received, sent);

    let store = &app.stack.state.store;
    let (org_id, bob_id) =
        (dm_shared::ids::OrgId::parse(org.clone()).unwrap(), dm_shared::ids::UserId::parse("bob").unwrap());
    assert_eq!(store.connections(&org_id, &bob_id).await.unwrap().len(), 1);
    bob.close(None).await.unwrap();
    let mut open = 1;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        open = store.connections(&org_id, &bob_id).await.unwrap().len();
        if open == 0 {
            break;
        }
    }
    assert_eq!(open, 0, "a closed connection is forgotten");

    // A connection the WebSocket API reports gone (410) is forgotten on the next event.
    store.open_connection(&org_id, &bob_id, "vanished").await.unwrap();
    app.send(&org, &room, "alice", "anyone there?").await;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        open = store.connections(&org_id, &bob_id).await.unwrap().len();
        if open == 0 {
            break;
        }
    }
    assert_eq!(open, 0, "a gone connection is forgotten");
    let status = app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "alice").await.status;
    assert_eq!(status, StatusCode::OK, "writes never wait for delivery");
}
