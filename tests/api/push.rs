//! Web Push subscriptions: the stack's VAPID key, each member's own browsers kept (at most ten),
//! and endpoints that would reach private, link-local or metadata addresses refused at the door.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use dm_tests::{TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A browser's subscription at `endpoint`, with keys of the right shape.
fn subscription(endpoint: &str) -> Value {
    let mut point = vec![4u8];
    point.extend([7u8; 64]);
    json!({
        "endpoint": endpoint,
        "expirationTime": null,
        "keys": { "p256dh": URL_SAFE_NO_PAD.encode(point), "auth": URL_SAFE_NO_PAD.encode([9u8; 16]) },
    })
}

async fn subscribe(app: &TestApp, org: &str, user: &str, body: Value) -> dm_tests::Reply {
    app.post(&format!("/api/v1/org/{org}/users/{user}/push-subscriptions"), user, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_keeps_up_to_ten_browsers_and_sees_only_their_own() {
    let app = spawn_app().await;
    let org = app.org_with("alice", &["bob"]).await;
    let key = app.get("/api/v1/push/vapid-public-key", "alice").await;
    assert_eq!(key.status, StatusCode::OK, "{}", key.raw);
    let point = URL_SAFE_NO_PAD.decode(key.str("public_key")).expect("base64url");
    assert_eq!((point.len(), point[0]), (65, 4), "an uncompressed P-256 point");

    let first = subscribe(&app, &org, "alice", subscription("http://127.0.0.1:9/push/0")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.raw);
    let again = subscribe(&app, &org, "alice", subscription("http://127.0.0.1:9/push/0")).await;
    assert_eq!(again.status, StatusCode::OK, "the same browser again: {}", again.raw);
    assert_eq!(again.body["subscription_id"], first.body["subscription_id"]);
    for n in 1..10 {
        let made = subscribe(&app, &org, "alice", subscription(&format!("http://127.0.0.1:9/push/{n}"))).await;
        assert_eq!(made.status, StatusCode::CREATED, "{}", made.raw);
    }
    let eleventh = subscribe(&app, &org, "alice", subscription("http://127.0.0.1:9/push/10")).await;
    assert_eq!(eleventh.status, StatusCode::CONFLICT, "{}", eleventh.raw);

    let path = format!("/api/v1/org/{org}/users/alice/push-subscriptions");
    let listed = app.get(&path, "alice").await;
    assert_eq!(listed.body["count"], 10, "{}", listed.raw);
    assert_eq!(app.get(&path, "bob").await.status, StatusCode::FORBIDDEN, "nobody else's");
    assert_eq!(
        app.get(&format!("/api/v1/org/{org}/users/stranger/push-subscriptions"), "stranger").await.status,
        StatusCode::FORBIDDEN
    );

    let one = format!("{path}/{}", first.str("subscription_id"));
    assert_eq!(app.call(Method::DELETE, &one, Some("bob"), None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.call(Method::DELETE, &one, Some("alice"), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.call(Method::DELETE, &one, Some("alice"), None).await.status, StatusCode::NOT_FOUND);
    let malformed = format!("{path}/{}", "x".repeat(2000));
    assert_eq!(app.call(Method::DELETE, &malformed, Some("alice"), None).await.status, StatusCode::BAD_REQUEST);
    let freed = subscribe(&app, &org, "alice", subscription("http://127.0.0.1:9/push/10")).await;
    assert_eq!(freed.status, StatusCode::CREATED, "a place freed: {}", freed.raw);

    // Someone who leaves the org leaves no subscription behind.
    let bobs = subscribe(&app, &org, "bob", subscription("http://127.0.0.1:9/push/bob")).await;
    assert_eq!(bobs.status, StatusCode::CREATED);
    let leave = format!("/api/v1/org/{org}/members/bob");
    assert_eq!(app.call(Method::DELETE, &leave, Some("bob"), None).await.status, StatusCode::NO_CONTENT);
    let (org_id, bob) =
        (dm_shared::ids::OrgId::parse(org.clone()).unwrap(), dm_shared::ids::UserId::parse("bob").unwrap());
    assert!(app.stack.state.store.subscriptions(&org_id, &bob).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_that_would_reach_inside_the_network_are_refused_at_the_door() {
    let app = spawn_app().await;
    let org = app.org("alice").await;
    // (Loopback is the local stack's to allow, for its tests' push service: a deployed stack's
    // refusals of it are the guard's own tests.)
    for endpoint in [
        "https://10.0.0.1/push",
        "https://172.16.5.4/push",
        "https://192.168.0.10/push",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.0.1/push",
        "https://0.0.0.0/push",
        "https://[fd00::1]/push",
        "https://[fe80::1]/push",
        "https://[::ffff:10.0.0.1]/push",
        "https://[::ffff:169.254.169.254]/push",
        "https://user:secret@push.example.com/push",
        "http://push.example.com/push",
        "https://push.invalid/push",
        "ftp://push.example.com/push",
        "not a url",
    ] {
        let refused = subscribe(&app, &org, "alice", subscription(endpoint)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{endpoint}: {}", refused.raw);
        assert_eq!(refused.body["status"], 400);
    }
    let mut short_key = subscription("http://127.0.0.1:9/push");
    short_key["keys"]["p256dh"] = json!(URL_SAFE_NO_PAD.encode([4u8; 33]));
    assert_eq!(subscribe(&app, &org, "alice", short_key).await.status, StatusCode::BAD_REQUEST);
    let mut short_auth = subscription("http://127.0.0.1:9/push");
    short_auth["keys"]["auth"] = json!("AAAA");
    assert_eq!(subscribe(&app, &org, "alice", short_auth).await.status, StatusCode::BAD_REQUEST);
    let listed = app.get(&format!("/api/v1/org/{org}/users/alice/push-subscriptions"), "alice").await;
    assert_eq!(listed.body["count"], 0, "nothing refused is kept");
}
