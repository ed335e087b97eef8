use dm_tests::{TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An org with an owner, an admin, and plain members alice, bob, carol, dave; and a room of alice
/// (its creator) and bob.
async fn setup(app: &TestApp) -> (String, String) {
    let org = app.org_with("owner", &["alice", "bob", "carol", "dave"]).await;
    app.join(&org, "owner", "admin", "admin").await;
    let room = app.room(&org, "alice", &["bob"]).await;
    (org, room)
}

async fn members_of(app: &TestApp, org: &str, room: &str) -> Value {
    app.get(&format!("/api/v1/org/{org}/rooms/{room}/info"), "owner").await.body["room_user_ids"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_member_follows_the_seed() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let add = |caller: &'static str, member: &str| {
        let path = format!("/api/v1/org/{org}/rooms/{room}/add-member/{member}");
        async move { app.put(&path, caller).await }
    };

    let added = add("bob", "carol").await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.raw);
    assert_eq!(
        added.body,
        json!({ "status": 200, "message": "success", "room_id": room, "room_user_ids": ["alice", "bob", "carol"] })
    );
    let twice = add("bob", "carol").await;
    assert_eq!(twice.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(twice.body, json!({ "status": 406, "message": "Not Acceptable, You can't join a room twice" }));

    assert_eq!(add("bob", "nobody").await.status, StatusCode::NOT_FOUND);
    assert_eq!(add("dave", "dave").await.status, StatusCode::FORBIDDEN);
    assert_eq!(add("admin", "dave").await.status, StatusCode::OK);
    assert_eq!(add("stranger", "dave").await.status, StatusCode::FORBIDDEN);
    let no_room = app.put(&format!("/api/v1/org/{org}/rooms/nosuchroom/add-member/dave"), "owner").await;
    assert_eq!(no_room.status, StatusCode::NOT_FOUND);

    // The room now answers for its new member set.
    let create = app
        .post(&format!("/api/v1/org/{org}/room"), "dave", json!({ "room_user_ids": ["alice", "bob", "carol"] }))
        .await;
    assert_eq!(create.body, json!({ "status": 200, "room_id": room }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_invite_is_all_or_nothing() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/members");

    let refused = app.post(&path, "bob", json!({ "member_ids": ["carol", "ghost", "dave"] })).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert!(refused.str("message").contains("ghost"));
    assert_eq!(members_of(app, &org, &room).await, json!(["alice", "bob"]));

    let invited = app.post(&path, "bob", json!({ "member_ids": ["carol", "alice", "dave", "carol"] })).await;
    assert_eq!(invited.status, StatusCode::OK, "{}", invited.raw);
    assert_eq!(invited.body["added"], json!(["carol", "dave"]));
    assert_eq!(invited.body["already_members"], json!(["alice"]));
    assert_eq!(invited.body["room"]["room_user_ids"], json!(["alice", "bob", "carol", "dave"]));
    assert_eq!(invited.body["room"]["room_id"], room.as_str());

    let one = app.post(&path, "alice", json!({ "member_id": "admin" })).await;
    assert_eq!(one.body["added"], json!(["admin"]));

    for bad in [
        json!({}),
        json!({ "member_ids": [] }),
        json!({ "member_id": "a", "member_ids": ["b"] }),
        json!({ "member_ids": "carol" }),
    ] {
        assert_eq!(app.post(&path, "alice", bad.clone()).await.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let fifty_one: Vec<String> = (0..51).map(|i| format!("u{i}")).collect();
    assert_eq!(app.post(&path, "alice", json!({ "member_ids": fifty_one })).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_room_members_and_org_managers_invite() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/members");
    assert_eq!(app.post(&path, "carol", json!({ "member_id": "carol" })).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&path, "stranger", json!({ "member_id": "carol" })).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&path, "owner", json!({ "member_id": "carol" })).await.status, StatusCode::OK);
    assert_eq!(app.post(&path, "admin", json!({ "member_id": "dave" })).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_remove_whom() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let invite = format!("/api/v1/org/{org}/rooms/{room}/members");
    app.post(&invite, "alice", json!({ "member_ids": ["carol", "dave"] })).await;
    let remove = |caller: &'static str, member: &str| {
        let path = format!("/api/v1/org/{org}/rooms/{room}/remove-member/{member}");
        async move { app.put(&path, caller).await }
    };

    // A plain member may not remove another; a stranger neither.
    let refused = remove("bob", "carol").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body["status"], 403);
    assert_eq!(remove("stranger", "carol").await.status, StatusCode::FORBIDDEN);
    // The creator may.
    let removed = remove("alice", "carol").await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.raw);
    assert_eq!(removed.body["message"], "success");
    assert_eq!(removed.body["room_user_ids"], json!(["alice", "bob", "dave"]));
    // Not in the room any more.
    assert_eq!(remove("alice", "carol").await.status, StatusCode::NOT_FOUND);
    // A member may leave.
    assert_eq!(remove("dave", "dave").await.status, StatusCode::OK);
    // An admin who is not in the room may remove anyone.
    assert_eq!(remove("admin", "bob").await.status, StatusCode::OK);
    assert_eq!(members_of(app, &org, &room).await, json!(["alice"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chime_delete_membership_is_an_empty_204() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let path = |member: &str| format!("/api/v1/org/{org}/rooms/{room}/members/{member}");

    let reply = app.call(Method::DELETE, &path("bob"), Some("alice"), None).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert!(reply.raw.is_empty());
    assert_eq!(members_of(app, &org, &room).await, json!(["alice"]));

    let again = app.call(Method::DELETE, &path("bob"), Some("alice"), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.body["status"], 404);
    let bad = app.call(Method::DELETE, &path("b%23b"), Some("alice"), None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let anonymous = app.call(Method::DELETE, &path("alice"), None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let no_room = app
        .call(Method::DELETE, &format!("/api/v1/org/{org}/rooms/nosuchroom/members/alice"), Some("owner"), None)
        .await;
    assert_eq!(no_room.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mudbase_remove_participant_answers_with_its_message() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/participants");

    let reply = app.call(Method::DELETE, &path, Some("alice"), Some(json!({ "userId": "bob" }))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.raw);
    assert_eq!(reply.body, json!({ "status": 200, "message": "Participant removed successfully" }));
    for bad in [json!({}), json!({ "userId": 7 }), json!({ "userId": null }), json!({ "user": "alice" })] {
        let reply = app.call(Method::DELETE, &path, Some("alice"), Some(bad.clone())).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}: {}", reply.raw);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_loses_the_room_at_once() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let bob_rooms = format!("/api/v1/org/{org}/users/bob/rooms");
    assert_eq!(app.get(&bob_rooms, "bob").await.body["count"], 1);

    app.call(Method::DELETE, &format!("/api/v1/org/{org}/rooms/{room}/members/bob"), Some("alice"), None).await;
    assert_eq!(app.get(&format!("/api/v1/org/{org}/rooms/{room}/info"), "bob").await.status, StatusCode::FORBIDDEN);
    let after = app.get(&bob_rooms, "bob").await;
    assert_eq!(after.body["count"], 0);
    let invite =
        app.post(&format!("/api/v1/org/{org}/rooms/{room}/members"), "bob", json!({ "member_id": "bob" })).await;
    assert_eq!(invite.status, StatusCode::FORBIDDEN);
}

/// Every membership can end: landing on another room's member set never blocks a change, nor names
/// that room. Creating a room with a set that has one still answers that room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_onto_another_rooms_member_set_goes_through_and_names_no_room() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let other = app.room(&org, "alice", &["bob", "carol"]).await;

    // Leaving the bigger room gives it the first room's set: carol may leave all the same.
    let leave = app.put(&format!("/api/v1/org/{org}/rooms/{other}/remove-member/carol"), "carol").await;
    assert_eq!(leave.status, StatusCode::OK, "{}", leave.raw);
    assert!(!leave.raw.contains(&room), "a reply names no room the caller is not in: {}", leave.raw);
    assert_eq!(members_of(app, &org, &other).await, json!(["alice", "bob"]));
    let create = app.post(&format!("/api/v1/org/{org}/room"), "bob", json!({ "room_user_ids": ["alice"] })).await;
    assert_eq!(create.body, json!({ "status": 200, "room_id": room }), "the first room keeps its set");

    // An admin outside both rooms may remove anyone, whatever sets the rooms end up with.
    for from in [&other, &room] {
        let path = format!("/api/v1/org/{org}/rooms/{from}/members/bob");
        assert_eq!(app.call(Method::DELETE, &path, Some("admin"), None).await.status, StatusCode::NO_CONTENT);
    }
    assert_eq!(members_of(app, &org, &other).await, json!(["alice"]));
    assert_eq!(members_of(app, &org, &room).await, json!(["alice"]));

    // Joining onto a taken set works too, and a set that is free again is claimed.
    let add = app.put(&format!("/api/v1/org/{org}/rooms/{room}/add-member/carol"), "alice").await;
    assert_eq!(add.status, StatusCode::OK, "{}", add.raw);
    let create = app.post(&format!("/api/v1/org/{org}/room"), "carol", json!({ "room_user_ids": ["alice"] })).await;
    assert_eq!(create.body, json!({ "status": 200, "room_id": room }));
}
