use dm_tests::{TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An org of alice (owner), bob and carol, a room of alice and bob, and a message of alice's.
async fn setup(app: &TestApp) -> (String, String, String) {
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let message = app.send(&org, &room, "alice", "Who is in?").await;
    (org, room, message)
}

async fn listed_reactions(app: &TestApp, org: &str, room: &str) -> Value {
    app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "alice").await.body["results"][0]["reactions"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reaction_is_counted_once_per_user_and_emoji() {
    let app = &spawn_app().await;
    let (org, room, message) = setup(app).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/messages/{message}/reactions");

    let body = json!({ "sender_id": "bob", "data": "👍", "category": "people", "aliases": ["thumbsup"], "count": 99 });
    let added = app.post(&path, "bob", body.clone()).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.raw);
    assert_eq!(added.body["event"], "add_message_reaction");
    assert_eq!(added.body["room_id"], room.as_str());
    assert_eq!(added.body["message_id"], message.as_str());
    assert_eq!(added.body["data"]["sender_id"], "bob");
    assert_eq!(added.body["data"]["reaction"], "👍");
    let again = app.post(&path, "bob", body).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["reaction_id"], added.body["reaction_id"]);
    app.post(&path, "alice", json!({ "sender_id": "alice", "data": "🎉" })).await;
    app.post(&path, "alice", json!({ "sender_id": "alice", "data": "👍" })).await;

    assert_eq!(
        listed_reactions(app, &org, &room).await,
        json!([{ "data": "👍", "count": 2 }, { "data": "🎉", "count": 1 }])
    );
    let list = app.get(&path, "bob").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["event"], "get_message_reactions");
    let entries = list.body["data"]["reactions"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["data"], "👍");
    assert_eq!(entries[0]["count"], 2);
    assert_eq!(entries[0]["sender_ids"], json!(["bob", "alice"]));
    assert_eq!(entries[0]["category"], "people");
    assert_eq!(entries[0]["aliases"], json!(["thumbsup"]));
    assert_eq!(entries[1]["data"], "🎉");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_members_reacting_at_once_count_thirty() {
    let app = &spawn_app().await;
    let members: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    let names: Vec<&str> = members.iter().map(String::as_str).collect();
    let org = app.org_with("owner", &names).await;
    let room = app.room(&org, "m0", &names[1..]).await;
    let message = app.send(&org, &room, "m0", "react!").await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/messages/{message}/reactions");
    let adds = members.iter().map(|m| app.post(&path, m, json!({ "sender_id": m, "data": "🔥" })));
    for reply in futures_util::future::join_all(adds).await {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    }
    let list = app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "m5").await;
    assert_eq!(list.body["results"][0]["reactions"], json!([{ "data": "🔥", "count": 30 }]));
    let reactions = app.get(&path, "m5").await;
    assert_eq!(reactions.body["data"]["reactions"][0]["count"], 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_last_reaction_of_an_emoji_drops_it() {
    let app = &spawn_app().await;
    let (org, room, message) = setup(app).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/messages/{message}/reactions");
    app.post(&path, "bob", json!({ "sender_id": "bob", "data": "👍" })).await;
    app.post(&path, "alice", json!({ "sender_id": "alice", "data": "👍" })).await;
    app.post(&path, "bob", json!({ "sender_id": "bob", "data": ":tada:" })).await;

    let removed = app.call(Method::DELETE, &format!("{path}/%F0%9F%91%8D"), Some("bob"), None).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.raw);
    assert_eq!(removed.body["event"], "remove_message_reaction");
    assert_eq!(removed.body["data"], json!({ "sender_id": "bob", "reaction": "👍" }));
    assert_eq!(
        listed_reactions(app, &org, &room).await,
        json!([{ "data": "👍", "count": 1 }, { "data": ":tada:", "count": 1 }])
    );
    let again = app.call(Method::DELETE, &format!("{path}/%F0%9F%91%8D"), Some("bob"), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    app.call(Method::DELETE, &format!("{path}/:tada:"), Some("bob"), None).await;
    assert_eq!(listed_reactions(app, &org, &room).await, json!([{ "data": "👍", "count": 1 }]));
    let list = app.get(&path, "alice").await;
    assert_eq!(list.body["data"]["reactions"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_are_checked() {
    let app = &spawn_app().await;
    let (org, room, message) = setup(app).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/messages/{message}/reactions");
    let cases = [
        ("bob", json!({ "sender_id": "alice", "data": "👍" }), StatusCode::FORBIDDEN),
        ("carol", json!({ "sender_id": "carol", "data": "👍" }), StatusCode::FORBIDDEN),
        ("bob", json!({ "sender_id": "bob", "data": "" }), StatusCode::BAD_REQUEST),
        ("bob", json!({ "sender_id": "bob", "data": "x".repeat(65) }), StatusCode::BAD_REQUEST),
        ("bob", json!({ "sender_id": "bob", "data": 5 }), StatusCode::BAD_REQUEST),
        ("bob", json!({ "sender_id": "bob" }), StatusCode::BAD_REQUEST),
    ];
    for (user, body, status) in cases {
        let reply = app.post(&path, user, body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.raw);
    }
    let missing = app
        .post(
            &format!("/api/v1/org/{org}/rooms/{room}/messages/01NOSUCH/reactions"),
            "bob",
            json!({ "sender_id": "bob", "data": "👍" }),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&path, "carol").await.status, StatusCode::FORBIDDEN);

    for i in 0..50 {
        let reply = app.post(&path, "bob", json!({ "sender_id": "bob", "data": format!(":e{i}:") })).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    }
    let too_many = app.post(&path, "alice", json!({ "sender_id": "alice", "data": ":e50:" })).await;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST);
    let existing = app.post(&path, "alice", json!({ "sender_id": "alice", "data": ":e0:" })).await;
    assert_eq!(existing.status, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_carry_their_own_reactions() {
    let app = &spawn_app().await;
    let (org, room, message) = setup(app).await;
    let thread = format!("/api/v1/org/{org}/rooms/{room}/messages/{message}/threads");
    let reply = app.post(&thread, "bob", json!({ "sender_id": "bob", "message": "me" })).await.str("thread_id");
    let path = format!("{thread}/{reply}/reactions");

    let added = app.post(&path, "alice", json!({ "sender_id": "alice", "data": "❤️" })).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.raw);
    assert_eq!(added.body["thread_id"], reply.as_str());
    assert_eq!(added.body["message_id"], message.as_str());
    assert_eq!(app.get(&thread, "bob").await.body["results"][0]["reactions"], json!([{ "data": "❤️", "count": 1 }]));
    assert_eq!(listed_reactions(app, &org, &room).await, json!([]));
    assert_eq!(app.get(&path, "bob").await.body["data"]["reactions"][0]["sender_ids"], json!(["alice"]));

    let removed = app.call(Method::DELETE, &format!("{path}/%E2%9D%A4%EF%B8%8F"), Some("alice"), None).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.raw);
    assert_eq!(app.get(&thread, "bob").await.body["results"][0]["reactions"], json!([]));
    let missing = app.get(&format!("{thread}/01NOSUCH/reactions"), "bob").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
