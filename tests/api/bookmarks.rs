use dm_tests::{TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn setup(app: &TestApp) -> (String, String) {
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    (org, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_are_saved_listed_and_deleted_with_room_info_and_links_following() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let base = format!("/api/v1/org/{org}/rooms/{room}");
    let save = |user: &'static str, name: &str, link: &str| {
        let body = json!({ "name": name, "link": link });
        let path = format!("{base}/new-bookmark");
        async move { app.post(&path, user, body).await }
    };

    let saved = save("bob", "Docs", "https://docs.example.com/start").await;
    assert_eq!(saved.status, StatusCode::CREATED, "{}", saved.raw);
    assert_eq!(saved.body["name"], "Docs");
    assert_eq!(saved.body["link"], "https://docs.example.com/start");
    assert_eq!(saved.body["created_by"], "bob");
    assert!(saved.body["created_at"].is_string());
    assert_eq!(save("alice", "Board", "http://board.example.com").await.status, StatusCode::CREATED);
    assert_eq!(save("alice", "Docs", "https://other.example.com").await.status, StatusCode::CONFLICT);

    let list = app.get(&format!("{base}/bookmarks"), "alice").await;
    assert_eq!(list.body["count"], 2);
    let names: Vec<&str> =
        list.body["results"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Docs", "Board"]);
    assert_eq!(app.get(&format!("{base}/info"), "alice").await.body["bookmarks"], json!(["Board", "Docs"]));
    let links = app.get(&format!("{base}/links"), "alice").await;
    assert_eq!(links.body["links"], json!(["http://board.example.com", "https://docs.example.com/start"]));

    let by_query = app.call(Method::DELETE, &format!("{base}/bookmark?name=Docs"), Some("bob"), None).await;
    assert_eq!(by_query.body, json!({ "status": 200 }));
    let by_body =
        app.call(Method::DELETE, &format!("{base}/bookmark"), Some("bob"), Some(json!({ "name": "Board" }))).await;
    assert_eq!(by_body.status, StatusCode::OK);
    let missing = app.call(Method::DELETE, &format!("{base}/bookmark?name=Docs"), Some("bob"), None).await;
    assert_eq!(missing.body, json!({ "status": 404, "message": "bookmark not found" }));
    assert_eq!(
        app.get(&format!("{base}/bookmarks"), "alice").await.body,
        json!({ "status": 200, "count": 0, "results": [] })
    );
    assert_eq!(app.get(&format!("{base}/info"), "alice").await.body["bookmarks"], json!([]));
    assert_eq!(app.get(&format!("{base}/links"), "alice").await.body["links"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookmarks_are_checked() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/new-bookmark");
    let cases = [
        ("bob", json!({ "name": "x", "link": "javascript:alert(1)" }), StatusCode::BAD_REQUEST),
        ("bob", json!({ "name": "x", "link": "/relative" }), StatusCode::BAD_REQUEST),
        ("bob", json!({ "name": "x", "link": format!("https://x.org/{}", "a".repeat(2048)) }), StatusCode::BAD_REQUEST),
        ("bob", json!({ "name": "", "link": "https://x.org" }), StatusCode::BAD_REQUEST),
        ("bob", json!({ "name": "n".repeat(101), "link": "https://x.org" }), StatusCode::BAD_REQUEST),
        ("bob", json!({ "link": "https://x.org" }), StatusCode::BAD_REQUEST),
        ("carol", json!({ "name": "x", "link": "https://x.org" }), StatusCode::FORBIDDEN),
        ("stranger", json!({ "name": "x", "link": "https://x.org" }), StatusCode::FORBIDDEN),
    ];
    for (user, body, status) in cases {
        let reply = app.post(&path, user, body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.raw);
    }
    for i in 0..100 {
        let reply = app.post(&path, "bob", json!({ "name": format!("b{i}"), "link": "https://x.org" })).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    }
    let full = app.post(&path, "bob", json!({ "name": "one too many", "link": "https://x.org" })).await;
    assert_eq!(full.status, StatusCode::BAD_REQUEST);
    let unnamed =
        app.call(Method::DELETE, &format!("/api/v1/org/{org}/rooms/{room}/bookmark"), Some("bob"), None).await;
    assert_eq!(unnamed.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get(&format!("/api/v1/org/{org}/rooms/{room}/bookmarks"), "carol").await.status,
        StatusCode::FORBIDDEN
    );
}
