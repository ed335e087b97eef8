use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dm_tests::{read, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_needs_no_token_and_says_the_table_answers() {
    let app = spawn_app().await;
    let reply = app.call(Method::GET, "/api/v1/ping", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!({ "status": 200, "server": true }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_other_route_refuses_a_missing_or_bad_token_with_json_401() {
    let app = spawn_app().await;
    let org = app.org("owner").await;
    let path = format!("/api/v1/org/{org}/members");

    let missing = app.call(Method::GET, &path, None, None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.body["status"], 401);
    assert!(missing.body["message"].is_string());

    let expired = dm_shared::auth::mint(dm_local::DEV_JWT_SECRET, "owner", 0).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let foreign = dm_shared::auth::mint("another-secret", "owner", 3600).unwrap();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(r#"{"sub":"owner","exp":99999999999}"#)
    );
    for header in [
        format!("Bearer {expired}"),
        format!("Bearer {foreign}"),
        format!("Bearer {unsigned}"),
        "Bearer not-a-jwt".to_owned(),
        "Basic b3duZXI6cHc=".to_owned(),
        "Bearer ".to_owned(),
    ] {
        let reply = read(app.raw(Method::GET, &path).header("authorization", &header).send().await.unwrap()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{header}: {}", reply.raw);
        assert_eq!(reply.body["status"], 401);
    }
    // The owner's own valid token still works.
    assert_eq!(app.get(&path, "owner").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_outside_the_org_gets_403() {
    let app = spawn_app().await;
    let org = app.org("owner").await;
    let reply = app.get(&format!("/api/v1/org/{org}/members"), "stranger").await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.body["status"], 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_answer_json_404() {
    let app = spawn_app().await;
    for (method, path) in [(Method::GET, "/api/v1/nowhere"), (Method::DELETE, "/api/v1/ping"), (Method::GET, "/")] {
        let reply = app.call(method, path, Some("owner"), None).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(reply.body["status"], 404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_a_clear_400_and_huge_ones_413() {
    let app = spawn_app().await;
    let token = dm_tests::token("owner");
    let send = |body: String, content_type: &'static str| {
        app.raw(Method::POST, "/api/v1/orgs").bearer_auth(&token).header("content-type", content_type).body(body).send()
    };
    for (body, content_type) in [
        ("{not json".to_owned(), "application/json"),
        ("{}".to_owned(), "application/json"),
        (r#"{"name": 42}"#.to_owned(), "application/json"),
        (r#"{"name": "   "}"#.to_owned(), "application/json"),
        (r#"{"name": "x"}"#.to_owned(), "text/plain"),
    ] {
        let reply = read(send(body.clone(), content_type).await.unwrap()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {}", reply.raw);
        assert_eq!(reply.body["status"], 400);
        assert!(!reply.str("message").is_empty());
    }
    let huge = json!({ "name": "x".repeat(300 * 1024) }).to_string();
    let reply = read(send(huge, "application/json").await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.raw);
    assert_eq!(reply.body["status"], 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_ids_from_common_identity_providers_work_end_to_end() {
    let app = spawn_app().await;
    let (auth0, google, cognito) =
        ("auth0|abc123", "google-oauth2|104857364758392017465", "0f8fad5b-d9cb-469f-a165-70867728950e");
    let org = app.org_with(auth0, &[google, cognito]).await;
    let room = app.room(&org, auth0, &[google, cognito]).await;
    app.send(&org, &room, google, "hello from Google").await;

    // `|` travels percent-encoded in a path, as browsers send it.
    let rooms = app.get(&format!("/api/v1/org/{org}/users/auth0%7Cabc123/rooms"), auth0).await;
    assert_eq!(rooms.status, StatusCode::OK, "{}", rooms.raw);
    assert_eq!(rooms.body["results"][0]["room_id"], room.as_str());
    let info = app.get(&format!("/api/v1/org/{org}/rooms/{room}/info"), cognito).await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.raw);
    let mut ids: Vec<&str> =
        info.body["room_user_ids"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [cognito, auth0, google]);

    // An id that could reach into another key, or out of its path segment, is refused.
    for bad in ["ORG#x", "a/b", "a b"] {
        let body = json!({ "member_id": bad, "email": "x@example.com" });
        let reply = app.post(&format!("/api/v1/org/{org}/members"), auth0, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad:?}: {}", reply.raw);
    }
}
