//! What only `make dev` serves beside the API: the API reference, the web client, and the dev-only
//! token route the client signs in with. A deployed stack has none of them.

use dm_tests::{Reply, TestApp, read, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::template::template_routes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_stack_mints_dev_tokens_that_the_api_accepts() {
    let app = spawn_app().await;
    let mint = |body: &'static str| {
        app.raw(Method::POST, "/dev/token")
            .header("origin", "http://localhost:8080")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let response = mint(r#"{"user_id":"alice"}"#).await.expect("an answer");
    assert_eq!(response.headers()["access-control-allow-origin"], "*", "a page on another origin can sign in");
    let minted = read(response).await;
    assert_eq!(minted.status, StatusCode::OK, "{}", minted.raw);
    assert_eq!(minted.body["user_id"], "alice");

    let token = minted.str("token");
    let created = app
        .raw(Method::POST, "/api/v1/orgs")
        .bearer_auth(&token)
        .json(&json!({ "name": "Acme" }))
        .send()
        .await
        .expect("an answer");
    let created: Reply = read(created).await;
    assert_eq!(created.status, StatusCode::CREATED, "the API takes the dev token: {}", created.raw);

    for bad in [r#"{"user_id":"a/b"}"#, r#"{"user_id":""}"#, "not json", r#"{"user":"alice"}"#] {
        let refused = read(mint(bad).await.expect("an answer")).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}: {}", refused.raw);
        assert_eq!(refused.body["status"], 400, "{}", refused.raw);
        assert!(refused.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", refused.raw);
    }
}

#[test]
fn the_deployed_stack_routes_no_dev_token_and_no_pages() {
    let routes = template_routes();
    assert!(routes.len() >= 30, "{routes:?}");
    for (method, path) in &routes {
        assert!(path.starts_with("/api/v1/"), "{method} {path}: only the API is routed in AWS");
        assert!(!path.ends_with("/token") && !path.contains('+'), "{method} {path}: no token route, no catch-all");
    }
    let template = include_str!("../../template.yaml");
    assert!(
        !template.contains("/dev/") && !template.contains("dev-secret"),
        "nothing of the dev stack in the template"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_dev_serves_the_api_reference_and_the_web_client() {
    let app = spawn_app().await;
    let get = |path: &'static str| page(&app, path);

    let (status, kind, page) = get("/docs/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/html") && page.contains("/docs/assets/swagger-ui-bundle.js"), "{page}");
    assert!(page.contains("/api/v1/openapi.json"), "the reference shows this stack's own document");
    let (status, kind, _) = get("/docs/assets/swagger-ui-bundle.js").await;
    assert_eq!(status, StatusCode::OK, "Swagger UI comes from node_modules");
    assert!(kind.contains("javascript"), "{kind}");

    let (status, kind, page) = get("/app/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/html") && page.contains(r#"<script type="module" src="app.js">"#), "{page}");
    for module in ["/app/app.js", "/app/api.js", "/app/live.js"] {
        let (status, kind, _) = get(module).await;
        assert_eq!(status, StatusCode::OK, "{module}");
        assert!(kind.contains("javascript"), "{module} is served as a module can be: {kind}");
    }
    // Nothing outside the pages' folders.
    for outside in ["/app/../Cargo.toml", "/app/%2e%2e/Cargo.toml", "/docs/assets/../../package.json"] {
        let (status, _, body) = get(outside).await;
        assert!(!body.contains("[workspace]") && !body.contains("devDependencies"), "{outside}: {status}");
    }
}

/// A page's status, content type and text.
async fn page(app: &TestApp, path: &str) -> (StatusCode, String, String) {
    let response = app.raw(Method::GET, path).send().await.expect("an answer");
    let status = response.status();
    let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (status, kind, response.text().await.unwrap_or_default())
}
