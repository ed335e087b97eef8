//! Hostile input on every route of template.yaml: whatever a client sends, the answer is a JSON 4xx,
//! never a 5xx.

use dm_tests::{read, spawn_app, token};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn routes() -> Vec<(Method, String)> {
    let mut routes = Vec::new();
    let mut method = None;
    for line in include_str!("../../template.yaml").lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("Method: ") {
            method = m.parse::<Method>().ok();
        } else if let (Some(path), Some(m)) = (line.strip_prefix("Path: "), method.take()) {
            routes.push((m, path.to_owned()));
        }
    }
    routes
}

/// `path` with each `{param}` replaced: the org's and room's real ids where asked, else `id`.
fn fill(path: &str, org: &str, room: &str, id: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{org_id}" => org.to_owned(),
            "{room_id}" => room.to_owned(),
            s if s.starts_with('{') => id.to_owned(),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn assert_clean(what: &str, status: StatusCode, body: &Value, raw: &str) {
    assert!(status.is_success() || status.is_redirection() || status.is_client_error(), "{what}: {status} {raw}");
    if status.is_client_error() {
        assert_eq!(body["status"], status.as_u16(), "{what}: {raw}");
        assert!(body["message"].is_string(), "{what}: {raw}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_bodies_and_tokens_get_json_4xx_on_every_route() {
    let app = spawn_app().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let other_org = app.org("mallory").await;
    let hostile_ids = ["..%2F..%2Fetc%2Fpasswd", "%00", "caf%C3%A9", &"x".repeat(300), "%F0%9F%92%A9", "a%20b"];
    let bodies = [
        json!([1, 2, 3]),
        json!("just a string"),
        json!(42),
        json!({ "sender_id": 7, "message": ["no"], "room_user_ids": "x", "name": { "a": 1 }, "data": null }),
        json!({ "sender_id": "alice", "message": "nul\u{0}byte", "name": "nul\u{0}", "link": "https://x.org/\u{0}" }),
        json!({ "sender_id": "alice", "message": "x".repeat(200_000), "name": "y".repeat(200_000) }),
        json!({ "member_ids": ["../x"], "userId": "..", "timer": "9999-99-99", "filename": "../../a", "content_type": "x/y", "size": -1 }),
    ];
    let expired = dm_shared::auth::mint(dm_local::DEV_JWT_SECRET, "alice", 0).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.", b64.encode(r#"{"alg":"none"}"#), b64.encode(r#"{"sub":"alice","exp":99999999999}"#))
    };

    for (method, path) in routes() {
        for id in hostile_ids {
            let url = fill(&path, &org, &room, id);
            let reply = read(app.raw(method.clone(), &url).bearer_auth(token("alice")).send().await.unwrap()).await;
            assert_clean(&format!("{method} {url}"), reply.status, &reply.body, &reply.raw);
        }
        let url = fill(&path, &org, &room, "01JZZZZZZZZZZZZZZZZZZZZZZZ");
        for body in &bodies {
            let reply = app.call(method.clone(), &url, Some("alice"), Some(body.clone())).await;
            assert_clean(
                &format!("{method} {url} with {}", &body.to_string()[..body.to_string().len().min(80)]),
                reply.status,
                &reply.body,
                &reply.raw,
            );
        }
        if path == "/api/v1/ping" {
            continue;
        }
        for bad in [expired.as_str(), unsigned.as_str()] {
            let reply = read(app.raw(method.clone(), &url).bearer_auth(bad).send().await.unwrap()).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {url}: {}", reply.raw);
        }
        if path.contains("{org_id}") {
            // Refused: 403, or 400 where the body is checked first; never the org's data.
            let refused = |status: StatusCode| status == StatusCode::FORBIDDEN || status == StatusCode::BAD_REQUEST;
            let reply = app.call(method.clone(), &url, Some("mallory"), Some(json!({}))).await;
            assert!(refused(reply.status), "another org's caller on {method} {url}: {}", reply.raw);
            let theirs = fill(&path, &other_org, &room, "01JZZZZZZZZZZZZZZZZZZZZZZZ");
            let reply = app.call(method.clone(), &theirs, Some("alice"), Some(json!({}))).await;
            assert!(refused(reply.status), "a token for another org on {method} {theirs}: {}", reply.raw);
        }
    }
}
