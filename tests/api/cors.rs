//! A page on another origin uses the API and media as it will in AWS: preflights answered from the
//! template's CORS settings, every answer readable by an allowed page, nothing for other origins.

use dm_tests::spawn_with;
use reqwest::{Method, StatusCode};
use serde_json::json;

const PAGE: &str = "http://localhost:5173";

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_an_allowed_origin_calls_the_api_and_uploads_media() {
    let app = &spawn_with(|options| options.allowed_origins = vec![PAGE.into()]).await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let messages = format!("/api/v1/org/{org}/rooms/{room}/messages");

    let preflight = app
        .raw(Method::OPTIONS, &messages)
        .header("origin", PAGE)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type,idempotency-key")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(header(&preflight, "access-control-allow-origin").as_deref(), Some(PAGE));
    let methods = header(&preflight, "access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("POST") && methods.contains("PATCH"), "{methods}");
    let headers = header(&preflight, "access-control-allow-headers").unwrap_or_default().to_lowercase();
    for name in ["authorization", "content-type", "idempotency-key"] {
        assert!(headers.contains(name), "{name} in {headers}");
    }

    let sent = app
        .raw(Method::POST, &messages)
        .header("origin", PAGE)
        .bearer_auth(dm_tests::token("alice"))
        .json(&json!({ "sender_id": "alice", "message": "from a page" }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), StatusCode::CREATED);
    assert_eq!(header(&sent, "access-control-allow-origin").as_deref(), Some(PAGE));
    // Errors are readable by the page too, so it can tell a 401 from a network failure.
    let refused = app.raw(Method::GET, &messages).header("origin", PAGE).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&refused, "access-control-allow-origin").as_deref(), Some(PAGE));

    // The presigned upload goes from the page straight to S3, which answers its preflight too.
    let granted = app
        .post(
            &format!("/api/v1/org/{org}/rooms/{room}/media/upload-url"),
            "bob",
            json!({ "filename": "a.png", "content_type": "image/png", "size": 4 }),
        )
        .await;
    assert_eq!(granted.status, StatusCode::CREATED, "{}", granted.raw);
    let upload_url = granted.str("upload_url");
    let client = reqwest::Client::new();
    let s3_preflight = client
        .request(Method::OPTIONS, &upload_url)
        .header("origin", PAGE)
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(s3_preflight.status().is_success(), "{}", s3_preflight.status());
    assert_eq!(header(&s3_preflight, "access-control-allow-origin").as_deref(), Some(PAGE));
    assert!(header(&s3_preflight, "access-control-allow-methods").unwrap_or_default().contains("PUT"));
    let mut put = client.put(&upload_url).header("origin", PAGE).body(vec![1u8, 2, 3, 4]);
    for (name, value) in granted.body["upload_headers"].as_object().expect("upload headers") {
        put = put.header(name.as_str(), value.as_str().unwrap());
    }
    let put = put.send().await.unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    assert_eq!(header(&put, "access-control-allow-origin").as_deref(), Some(PAGE));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_another_origin_gets_no_cors_headers() {
    let app = spawn_with(|options| options.allowed_origins = vec![PAGE.into()]).await;
    let preflight = app
        .raw(Method::OPTIONS, "/api/v1/orgs")
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&preflight, "access-control-allow-origin"), None);
    let ping = app.raw(Method::GET, "/api/v1/ping").header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(ping.status(), StatusCode::OK);
    assert_eq!(header(&ping, "access-control-allow-origin"), None);
}
