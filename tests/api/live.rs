//! What clients say on their WebSocket (heartbeats, typing) and presence.

use std::time::{Duration, Instant};

use dm_tests::{Socket, TestApp, event_within, expect_event, send_frame, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An org of alice (owner), bob and carol; a room of alice and bob.
async fn setup(app: &TestApp) -> (String, String) {
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    (org, room)
}

async fn typing_of(socket: &mut Socket) -> Value {
    expect_event(socket, "typing").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_are_answered_and_typing_reaches_the_rooms_other_members_only() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let mut alice = app.socket("alice", &org).await.unwrap();
    let mut alice_phone = app.socket("alice", &org).await.unwrap();
    let mut bob = app.socket("bob", &org).await.unwrap();
    let mut carol = app.socket("carol", &org).await.unwrap();
    let typing = |state: &str| json!({ "action": "typing", "org_id": org, "room_id": room, "state": state });

    send_frame(&mut alice, json!({ "action": "ping" })).await;
    assert_eq!(expect_event(&mut alice, "pong").await, json!({ "event": "pong" }));

    let sent = Instant::now();
    send_frame(&mut alice, typing("start")).await;
    send_frame(&mut alice, typing("start")).await;
    send_frame(&mut alice, typing("stop")).await;
    assert_eq!(
        typing_of(&mut bob).await,
        json!({ "event": "typing", "room_id": room, "user_id": "alice", "state": "start" })
    );
    // A second start within 2 s is not relayed; the stop is.
    let next = typing_of(&mut bob).await;
    if next["state"] == "start" {
        assert!(sent.elapsed() >= Duration::from_secs(2), "a start relayed twice within 2 s");
        assert_eq!(typing_of(&mut bob).await["state"], "stop");
    } else {
        assert_eq!(next["state"], "stop");
    }
    // After a stop, the next start is relayed at once.
    send_frame(&mut alice, typing("start")).await;
    assert_eq!(typing_of(&mut bob).await["state"], "start");

    // Not a member of the room: an error frame, nothing relayed.
    send_frame(&mut carol, typing("start")).await;
    let refused = expect_event(&mut carol, "error").await;
    assert_eq!(refused["status"], 403, "{refused}");
    send_frame(&mut bob, json!({ "action": "typing", "org_id": org, "room_id": "no-such-room", "state": "start" }))
        .await;
    assert_eq!(expect_event(&mut bob, "error").await["status"], 404);
    for bad in
        [json!({ "action": "shout" }), json!({ "action": "typing", "org_id": org, "room_id": room, "state": "maybe" })]
    {
        send_frame(&mut bob, bad).await;
        assert_eq!(expect_event(&mut bob, "error").await["status"], 400);
    }
    send_frame(&mut bob, typing("start")).await;
    let from_bob = typing_of(&mut alice).await;
    assert_eq!((from_bob["user_id"].clone(), from_bob["state"].clone()), (json!("bob"), json!("start")));
    // The typist's own connections hear nothing of their typing: alice's phone hears bob only.
    assert_eq!(typing_of(&mut alice_phone).await["user_id"], "bob");
    assert_eq!(event_within(&mut carol, "typing", Duration::from_millis(500)).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_follows_connections_and_can_be_hidden() {
    let app = &spawn_app().await;
    let (org, _) = setup(app).await;
    let presence = |user: &'static str| {
        let path = format!("/api/v1/org/{org}/members/{user}/presence");
        async move { app.get(&path, "bob").await }
    };
    let never = presence("alice").await;
    assert_eq!(never.status, StatusCode::OK, "{}", never.raw);
    assert_eq!(never.body, json!({ "user_id": "alice", "status": "offline", "last_seen_at": null }));
    assert_eq!(presence("stranger").await.status, StatusCode::NOT_FOUND);
    let outsider = app.get(&format!("/api/v1/org/{org}/members/alice/presence"), "stranger").await;
    assert_eq!(outsider.status, StatusCode::FORBIDDEN);

    let mut bob = app.socket("bob", &org).await.unwrap();
    let mut carol = app.socket("carol", &org).await.unwrap();
    let alice = app.socket("alice", &org).await.unwrap();
    let online = expect_event(&mut bob, "presence").await;
    assert_eq!(online["data"], json!({ "user_id": "alice", "status": "online", "last_seen_at": null }));
    assert_eq!(presence("alice").await.body["status"], "online");
    let inbox = app.get(&format!("/api/v1/org/{org}/users/bob/rooms"), "bob").await;
    assert_eq!(inbox.body["results"][0]["presence"]["alice"]["status"], "online", "{}", inbox.raw);

    // A second connection changes nothing; the last one closing makes her offline.
    let mut phone = app.socket("alice", &org).await.unwrap();
    phone.close(None).await.unwrap();
    drop(alice);
    let offline = expect_event(&mut bob, "presence").await;
    assert_eq!(offline["data"]["status"], "offline", "{offline}");
    assert!(offline["data"]["last_seen_at"].is_string());
    let seen = presence("alice").await;
    assert_eq!(seen.body["status"], "offline");
    assert_eq!(seen.body["last_seen_at"], offline["data"]["last_seen_at"]);
    // Carol shares no room with alice.
    assert_eq!(event_within(&mut carol, "presence", Duration::from_millis(500)).await, None);

    // Hidden: offline to everyone, and no event.
    let profile = format!("/api/v1/org/{org}/members/alice/profile");
    let bad = app.call(Method::PATCH, &profile, Some("alice"), Some(json!({ "presence": "invisible" }))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let hidden = app.call(Method::PATCH, &profile, Some("alice"), Some(json!({ "presence": "hidden" }))).await;
    assert_eq!(hidden.body["presence"], "hidden", "{}", hidden.raw);
    let _alice = app.socket("alice", &org).await.unwrap();
    assert_eq!(event_within(&mut bob, "presence", Duration::from_secs(2)).await, None);
    assert_eq!(presence("alice").await.body, json!({ "user_id": "alice", "status": "offline", "last_seen_at": null }));
    let inbox = app.get(&format!("/api/v1/org/{org}/users/bob/rooms"), "bob").await;
    assert_eq!(inbox.body["results"][0]["presence"]["alice"]["status"], "offline");
}
