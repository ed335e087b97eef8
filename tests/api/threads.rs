use dm_tests::{TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An org of alice (owner), bob and carol (members), a room of alice and bob, and a message of
/// alice's in it.
async fn setup(app: &TestApp) -> (String, String, String) {
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let message = app.send(&org, &room, "alice", "Lunch on Friday?").await;
    (org, room, message)
}

fn thread(org: &str, room: &str, message: &str) -> String {
    format!("/api/v1/org/{org}/rooms/{room}/messages/{message}/threads")
}

async fn reply(app: &TestApp, path: &str, user: &str, text: &str) -> String {
    let reply = app.post(path, user, json!({ "sender_id": user, "message": text })).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    reply.str("thread_id")
}

async fn thread_count(app: &TestApp, org: &str, room: &str) -> Value {
    app.settled().await;
    app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "alice").await.body["results"][0]["thread_count"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_is_listed_under_its_message_and_counted() {
    let app = &spawn_app().await;
    let (org, room, message) = setup(app).await;
    let path = thread(&org, &room, &message);

    let sent = app.post(&path, "bob", json!({ "sender_id": "bob", "message": "Yes!", "message_id": message })).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.raw);
    assert_eq!(sent.body["event"], "thread_message_create");
    assert_eq!(sent.body["thread"], true);
    assert_eq!(sent.body["message_id"], message.as_str());
    assert_eq!(sent.body["room_id"], room.as_str());
    assert_eq!(sent.body["data"]["sender_id"], "bob");
    assert_eq!(sent.body["data"]["message"], "Yes!");
    let id = sent.str("thread_id");

    app.settled().await;
    let list = app.get(&path, "alice").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["count"], 1);
    let listed = &list.body["results"][0];
    assert_eq!(listed["_id"], id.as_str());
    assert_eq!(listed["thread_id"], id.as_str());
    assert_eq!(listed["message_id"], message.as_str());
    assert_eq!(listed["edited"], false);
    assert_eq!(listed["reactions"], json!([]));
    assert_eq!(thread_count(app, &org, &room).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_are_refused_where_they_cannot_go() {
    let app = &spawn_app().await;
    let (org, room, message) = setup(app).await;
    let path = thread(&org, &room, &message);
    let id = reply(app, &path, "bob", "first").await;

    let missing =
        app.post(&thread(&org, &room, "01NOSUCHMESSAGE"), "bob", json!({ "sender_id": "bob", "message": "x" })).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["message"], "message or room not found");
    let nested = app.post(&thread(&org, &room, &id), "bob", json!({ "sender_id": "bob", "message": "x" })).await;
    assert_eq!(nested.status, StatusCode::BAD_REQUEST, "{}", nested.raw);
    let cases = [
        ("bob", json!({ "sender_id": "alice", "message": "spoof" }), StatusCode::FORBIDDEN),
        ("carol", json!({ "sender_id": "carol", "message": "not in room" }), StatusCode::FORBIDDEN),
        ("bob", json!({ "sender_id": "bob", "message": "" }), StatusCode::BAD_REQUEST),
        ("bob", json!({ "sender_id": "bob", "message": "x".repeat(10_001) }), StatusCode::BAD_REQUEST),
    ];
    for (user, body, status) in cases {
        let reply = app.post(&path, user, body).await;
        assert_eq!(reply.status, status, "{}", reply.raw);
    }
    assert_eq!(app.get(&path, "carol").await.status, StatusCode::FORBIDDEN);
    // The seed's body repeats the parent's id; the path names the parent, and another id is ignored.
    let copied = app.post(&path, "bob", json!({ "sender_id": "bob", "message": "x", "message_id": "other" })).await;
    assert_eq!(copied.status, StatusCode::CREATED, "{}", copied.raw);
    assert_eq!(copied.body["message_id"], message.as_str());
    app.settled().await;
    assert_eq!(app.get(&path, "alice").await.body["count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_replies_are_each_counted_and_retries_are_not() {
    let app = &spawn_app().await;
    let (org, room, message) = setup(app).await;
    let path = thread(&org, &room, &message);
    let texts: Vec<String> = (0..20).map(|i| format!("reply {i}")).collect();
    futures_util::future::join_all(
        texts.iter().enumerate().map(|(i, text)| reply(app, &path, if i % 2 == 0 { "alice" } else { "bob" }, text)),
    )
    .await;
    assert_eq!(thread_count(app, &org, &room).await, 20);

    let token = dm_tests::token("bob");
    let send = || {
        app.raw(Method::POST, &path)
            .bearer_auth(&token)
            .header("idempotency-key", "r-1")
            .json(&json!({ "sender_id": "bob", "message": "once" }))
            .send()
    };
    let first = dm_tests::read(send().await.unwrap()).await;
    let second = dm_tests::read(send().await.unwrap()).await;
    assert_eq!(first.str("thread_id"), second.str("thread_id"));
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(thread_count(app, &org, &room).await, 21);

    let listed = app.all_pages(&format!("{path}?limit=7"), "alice", "results").await;
    assert_eq!(listed.len(), 21);
    let ids: Vec<&str> = listed.iter().map(|r| r["thread_id"].as_str().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "oldest first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_is_edited_by_its_author_and_searched_by_its_new_words() {
    let app = &spawn_app().await;
    let (org, room, message) = setup(app).await;
    let id = reply(app, &thread(&org, &room, &message), "bob", "pizza tonight").await;
    let path = format!("{}/{id}", thread(&org, &room, &message));
    let search = |keyword: &str| {
        let path = format!("/api/v1/org/{org}/users/alice/messages/search?keyword={keyword}");
        async move {
            app.settled().await;
            app.get(&path, "alice").await
        }
    };
    let found = search("pizza").await;
    assert_eq!(found.body["count"], 1);
    assert_eq!(found.body["results"][0]["thread"], true);
    assert_eq!(found.body["results"][0]["_id"], id.as_str());
    assert_eq!(found.body["results"][0]["message_id"], message.as_str());

    let refused =
        app.call(Method::PUT, &path, Some("alice"), Some(json!({ "sender_id": "alice", "message": "x" }))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let edited = app
        .call(Method::PUT, &path, Some("bob"), Some(json!({ "sender_id": "bob", "message": "sushi tonight" })))
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.raw);
    assert_eq!(edited.body["event"], "thread_message_update");
    assert_eq!(edited.body["thread_id"], id.as_str());
    assert_eq!(edited.body["message_id"], message.as_str());
    assert_eq!(edited.body["edited"], true);
    assert_eq!(edited.body["data"]["message"], "sushi tonight");
    assert_eq!(search("pizza").await.body["count"], 0);
    assert_eq!(search("sushi").await.body["count"], 1);

    let missing = app
        .call(
            Method::PUT,
            &format!("{}/01NOSUCH", thread(&org, &room, &message)),
            Some("bob"),
            Some(json!({ "sender_id": "bob", "message": "x" })),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["message"], "room, message or thread message not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_reply_lowers_the_count() {
    let app = &spawn_app().await;
    let (org, room, message) = setup(app).await;
    let path = thread(&org, &room, &message);
    let bobs = reply(app, &path, "bob", "one").await;
    let alices = reply(app, &path, "alice", "two").await;

    assert_eq!(
        app.call(Method::DELETE, &format!("{path}/{alices}"), Some("bob"), None).await.status,
        StatusCode::FORBIDDEN
    );
    let deleted = app.call(Method::DELETE, &format!("{path}/{bobs}"), Some("bob"), None).await;
    assert_eq!(deleted.body, json!({ "status": 200, "message": "OK" }));
    assert_eq!(thread_count(app, &org, &room).await, 1);
    assert_eq!(
        app.call(Method::DELETE, &format!("{path}/{bobs}"), Some("bob"), None).await.status,
        StatusCode::NOT_FOUND
    );
    // The org owner may delete anyone's reply.
    assert_eq!(app.call(Method::DELETE, &format!("{path}/{alices}"), Some("alice"), None).await.status, StatusCode::OK);
    assert_eq!(thread_count(app, &org, &room).await, 0);
    assert_eq!(app.get(&path, "bob").await.body["results"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_message_takes_its_replies_and_their_reactions_with_it() {
    let app = &spawn_app().await;
    let (org, room, message) = setup(app).await;
    let path = thread(&org, &room, &message);
    let id = reply(app, &path, "bob", "walrus at https://walrus.example.com").await;
    let reactions = format!("{path}/{id}/reactions");
    assert_eq!(
        app.post(&reactions, "alice", json!({ "sender_id": "alice", "data": "👍" })).await.status,
        StatusCode::CREATED
    );

    app.call(
        Method::DELETE,
        &format!("/api/v1/org/{org}/rooms/{room}/messages/{message}/message"),
        Some("alice"),
        None,
    )
    .await;
    assert_eq!(app.get(&path, "bob").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&reactions, "bob").await.status, StatusCode::NOT_FOUND);
    app.settled().await;
    let search = app.get(&format!("/api/v1/org/{org}/users/bob/messages/search?keyword=walrus"), "bob").await;
    assert_eq!(search.body["count"], 0);
    let links = app.get(&format!("/api/v1/org/{org}/rooms/{room}/links"), "bob").await;
    assert_eq!(links.body["links"], json!([]));
}
