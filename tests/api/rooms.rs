use dm_tests::spawn_app;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_set_has_one_room_whatever_the_order() {
    let app = spawn_app().await;
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let path = format!("/api/v1/org/{org}/room");

    let first = app.post(&path, "alice", json!({ "org_id": org, "room_user_ids": ["alice", "bob"] })).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.raw);
    assert_eq!(first.body["status"], 201);
    let room = first.str("room_id");

    for (caller, ids) in
        [("bob", json!(["alice"])), ("alice", json!(["bob", "alice", "bob"])), ("bob", json!(["bob", "alice"]))]
    {
        let again = app.post(&path, caller, json!({ "room_user_ids": ids })).await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.raw);
        assert_eq!(again.body, json!({ "status": 200, "room_id": room }));
    }
    let other = app.post(&path, "alice", json!({ "room_user_ids": ["bob", "carol"] })).await;
    assert_eq!(other.status, StatusCode::CREATED);
    assert_ne!(other.str("room_id"), room);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_creates_of_one_set_make_one_room() {
    let app = spawn_app().await;
    let org = app.org_with("alice", &["bob"]).await;
    let path = format!("/api/v1/org/{org}/room");
    let creates = (0..20).map(|i| {
        let (caller, other) = if i % 2 == 0 { ("alice", "bob") } else { ("bob", "alice") };
        app.post(&path, caller, json!({ "room_user_ids": [other] }))
    });
    let replies = futures_util::future::join_all(creates).await;
    let created = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
    assert_eq!(created, 1, "{:?}", replies.iter().map(|r| &r.raw).collect::<Vec<_>>());
    let ids: std::collections::HashSet<String> = replies.iter().map(|r| r.str("room_id")).collect();
    assert_eq!(ids.len(), 1);
    let rooms = app.get(&format!("/api/v1/org/{org}/users/alice/rooms"), "alice").await;
    assert_eq!(rooms.body["count"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_naming_strangers_is_404_and_writes_nothing() {
    let app = spawn_app().await;
    let org = app.org_with("alice", &["bob"]).await;
    let path = format!("/api/v1/org/{org}/room");
    let reply = app.post(&path, "alice", json!({ "room_user_ids": ["bob", "zed", "yan"] })).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let message = reply.str("message");
    assert!(message.contains("zed") && message.contains("yan") && !message.contains("bob"), "{message}");
    let rooms = app.get(&format!("/api/v1/org/{org}/users/alice/rooms"), "alice").await;
    assert_eq!(rooms.body["count"], 0);

    let not_a_list = app.post(&path, "alice", json!({ "room_user_ids": "bob" })).await;
    assert_eq!(not_a_list.status, StatusCode::BAD_REQUEST);
    let too_many: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
    let big = app.post(&path, "alice", json!({ "room_user_ids": too_many })).await;
    assert_eq!(big.status, StatusCode::BAD_REQUEST);
    let outsider = app.post(&path, "stranger", json!({ "room_user_ids": ["bob"] })).await;
    assert_eq!(outsider.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_rooms_list_newest_first_in_pages_and_only_for_their_owner() {
    let app = spawn_app().await;
    let org = app.org_with("alice", &["b1", "b2", "b3"]).await;
    let mut created = Vec::new();
    for other in ["b1", "b2", "b3"] {
        created.push(app.room(&org, "alice", &[other]).await);
    }
    created.reverse();

    let path = format!("/api/v1/org/{org}/users/alice/rooms");
    let all = app.get(&path, "alice").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body["count"], 3);
    assert_eq!(all.body["next"], json!(null));
    assert_eq!(all.body["previous"], json!(null));
    let room = &all.body["results"][0];
    for field in ["_id", "room_id", "org_id", "room_user_ids", "bookmarks", "pinned", "created_at", "created_by"] {
        assert!(!room[field].is_null(), "{field} missing from {room}");
    }
    assert_eq!(room["_id"], room["room_id"]);

    let first = app.get(&format!("{path}?limit=2"), "alice").await;
    let ids = |reply: &dm_tests::Reply| -> Vec<String> {
        reply.body["results"].as_array().unwrap().iter().map(|r| r["room_id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&first), created[..2]);
    assert_eq!(first.body["previous"], json!(null));
    let next = first.str("next");
    let second = app.get(next.trim_start_matches(&app.base), "alice").await;
    assert_eq!(ids(&second), created[2..]);
    assert_eq!(second.body["next"], json!(null));
    let previous = second.str("previous");
    let back = app.get(previous.trim_start_matches(&app.base), "alice").await;
    assert_eq!(ids(&back), created[..2]);

    assert_eq!(app.get(&format!("/api/v1/org/{org}/users/b1/rooms"), "alice").await.status, StatusCode::FORBIDDEN);
    let empty = app.get(&format!("/api/v1/org/{org}/users/b1/rooms"), "b1").await;
    assert_eq!(empty.body["count"], 1);
    let bad = app.get(&format!("{path}?limit=101"), "alice").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_rooms_gets_an_empty_200() {
    let app = spawn_app().await;
    let org = app.org("alice").await;
    let reply = app.get(&format!("/api/v1/org/{org}/users/alice/rooms"), "alice").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["count"], 0);
    assert_eq!(reply.body["results"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_info_shows_the_seed_fields_to_members_and_managers_only() {
    let app = spawn_app().await;
    let org = app.org_with("owner", &["alice", "bob", "carol"]).await;
    app.join(&org, "owner", "admin", "admin").await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/info");

    let info = app.get(&path, "bob").await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.raw);
    assert_eq!(info.body["status"], 200);
    assert_eq!(info.body["room_id"], room.as_str());
    assert_eq!(info.body["org_id"], org.as_str());
    assert_eq!(info.body["room_user_ids"], json!(["alice", "bob"]));
    assert_eq!(info.body["Number of users"], "2");
    assert_eq!(info.body["member_count"], 2);
    assert!(info.body["description"].as_str().unwrap().contains("alice"));
    assert_eq!(info.body["bookmarks"], json!([]));
    assert_eq!(info.body["pinned"], json!([]));

    assert_eq!(app.get(&path, "carol").await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&path, "admin").await.status, StatusCode::OK);
    assert_eq!(app.get(&path, "owner").await.status, StatusCode::OK);
    assert_eq!(app.get(&path, "stranger").await.status, StatusCode::FORBIDDEN);

    let missing = app.get(&format!("/api/v1/org/{org}/rooms/nosuchroom/info"), "alice").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body, json!({ "status": 404, "message": "No such Room" }));

    // The same room asked for through another org the caller owns: 404, never its data.
    let other_org = app.org("alice").await;
    let foreign = app.get(&format!("/api/v1/org/{other_org}/rooms/{room}/info"), "alice").await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert!(foreign.body.get("room_user_ids").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_ids_in_paths_are_400() {
    let app = spawn_app().await;
    let org = app.org_with("alice", &["bob"]).await;
    let long = "x".repeat(65);
    for path in [
        format!("/api/v1/org/{org}/rooms/{long}/info"),
        format!("/api/v1/org/{org}/rooms/bad.id/info"),
        format!("/api/v1/org/{org}/rooms/%2E%2E%2Fx/info"),
        format!("/api/v1/org/{org}/rooms/caf%C3%A9/info"),
        format!("/api/v1/org/{org}/rooms/a%00b/info"),
        "/api/v1/org/bad!org/users/alice/rooms".to_owned(),
    ] {
        let reply = app.get(&path, "alice").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}: {}", reply.raw);
        assert_eq!(reply.body["status"], 400);
    }
}
