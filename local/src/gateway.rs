//! The local stand-in for API Gateway's HTTP API: each request becomes a payload 2.0 event, goes
//! through `lambda_http`'s own conversion, and reaches the function that owns its route.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use dm_shared::AppState;
use dm_shared::http::NoRoute;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

/// API Gateway's HTTP API takes at most 10 MB; a Lambda invocation at most 6 MB.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// Every function's router, as template.yaml wires them.
pub fn functions(state: &AppState) -> Vec<Router> {
    vec![
        dm_members::router(state.clone()),
        dm_rooms::router(state.clone()),
        dm_messages::router(state.clone()),
        dm_threads::router(state.clone()),
        dm_reactions::router(state.clone()),
        dm_bookmarks::router(state.clone()),
        dm_media::router(state.clone()),
    ]
}

/// The local HTTP API: one port, every function behind it.
pub fn router(state: &AppState) -> Router {
    let functions: Arc<[Router]> = functions(state).into();
    Router::new().fallback(forward).with_state(functions)
}

async fn forward(
    State(functions): State<Arc<[Router]>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_PAYLOAD).await else {
        let status = StatusCode::PAYLOAD_TOO_LARGE;
        let message = "Request too large for a Lambda function (6 MB): upload files through media/upload-url";
        return (status, axum::Json(json!({ "status": status.as_u16(), "message": message }))).into_response();
    };
    let event = event(&parts.method, &parts.uri, &parts.headers, &body, peer);
    let mut last = None;
    for function in functions.iter() {
        // Each function gets its own copy of the event, as each Lambda would.
        let request = match lambda_http::request::from_str(&event) {
            Ok(request) => request,
            Err(err) => {
                tracing::error!(error = %err, "cannot build the Lambda request");
                return StatusCode::BAD_GATEWAY.into_response();
            }
        };
        let response = match function.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if response.extensions().get::<NoRoute>().is_none() {
            return response.map(Body::new);
        }
        last = Some(response);
    }
    last.map_or_else(|| StatusCode::NOT_FOUND.into_response(), |response| response.map(Body::new))
}

/// The payload 2.0 event API Gateway would send for this request.
fn event(
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    peer: SocketAddr,
) -> String {
    let mut header_map = Map::new();
    for (name, value) in headers {
        let Ok(value) = value.to_str() else { continue };
        match header_map.get_mut(name.as_str()) {
            Some(Value::String(joined)) => {
                joined.push(',');
                joined.push_str(value);
            }
            _ => {
                header_map.insert(name.as_str().to_owned(), Value::String(value.to_owned()));
            }
        }
    }
    // lambda_http builds the request URL from the Host header: keep it only when it is a plain
    // host[:port], as API Gateway would.
    let host_ok = header_map
        .get("host")
        .and_then(Value::as_str)
        .is_some_and(|host| !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)));
    if !host_ok {
        header_map.insert("host".into(), Value::String("localhost".into()));
    }
    header_map.insert("x-forwarded-proto".into(), Value::String("http".into()));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    let path = uri.path();
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": uri.query().unwrap_or(""),
        "headers": header_map,
        "requestContext": {
            "accountId": "local",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {
                "method": method.as_str(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": header_map.get("user-agent").and_then(Value::as_str).unwrap_or(""),
            },
            "requestId": ulid::Ulid::new().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": now,
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true,
    })
    .to_string()
}
