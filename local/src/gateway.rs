//! The local stand-in for API Gateway's HTTP API: each request becomes a payload 2.0 event, goes
//! through `lambda_http`'s own conversion, and reaches the function that owns its route.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
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
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use crate::cors::Cors;

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

#[derive(Clone)]
struct Gateway {
    functions: Arc<[Router]>,
    limiter: Option<Arc<RateLimiter>>,
}

/// The local HTTP API: one port, every function behind it (and the pages of `web`), each caller
/// limited to `rate_limit` requests a second (0: no limit), CORS answered as the HttpApi answers it.
pub fn router(state: &AppState, rate_limit: u32, cors: Cors) -> Router {
    let limiter = (rate_limit > 0).then(|| Arc::new(RateLimiter::new(rate_limit)));
    Router::new()
        .route("/api/v1/openapi.json", axum::routing::get(openapi))
        .fallback(forward)
        .with_state(Gateway { functions: functions(state).into(), limiter })
        .merge(crate::web::router(state.config.jwt_secret.clone().unwrap_or_default()))
        .layer(axum::middleware::from_fn_with_state(Arc::new(cors), cross_origin))
}

/// API Gateway answers a preflight itself, before any route, and adds the CORS headers to every
/// answer (a 401 or a 429 too, so the page can read it).
async fn cross_origin(State(cors): State<Arc<Cors>>, request: Request, next: axum::middleware::Next) -> Response {
    if let Some(headers) = cors.preflight(request.method(), request.headers()) {
        return (StatusCode::NO_CONTENT, headers).into_response();
    }
    let origin = request.headers().get(axum::http::header::ORIGIN).cloned();
    let mut response = next.run(request).await;
    cors.decorate(origin.as_ref(), response.headers_mut());
    response
}

/// The API's contract, `openapi.yaml`, as JSON.
async fn openapi() -> Response {
    static DOCUMENT: std::sync::OnceLock<Result<Value, String>> = std::sync::OnceLock::new();
    let document = DOCUMENT
        .get_or_init(|| serde_yaml_ng::from_str(include_str!("../../openapi.yaml")).map_err(|err| err.to_string()));
    match document {
        Ok(document) => axum::Json(document).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "openapi.yaml does not parse");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn forward(
    State(gateway): State<Gateway>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    // A caller is its token, or its address when it has none.
    let caller = request.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(limiter) = &gateway.limiter
        && !limiter.allow(&caller.unwrap_or_else(|| peer.ip().to_string()))
    {
        let status = StatusCode::TOO_MANY_REQUESTS;
        let body = axum::Json(json!({ "status": status.as_u16(), "message": "Too many requests, retry later" }));
        return (status, [("retry-after", "1")], body).into_response();
    }
    let functions = gateway.functions;
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

/// The most callers the limiter keeps a bucket for: what a flood of distinct tokens can make it hold.
pub const MAX_CALLERS: usize = 10_000;

/// A token bucket per caller: `rate` tokens a second, holding at most `rate`. Callers are kept by a
/// digest of what names them (a token can be kilobytes), and at most `capacity` of them.
pub struct RateLimiter {
    rate: f64,
    capacity: usize,
    buckets: Mutex<HashMap<[u8; 32], (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(rate: u32) -> Self {
        Self::with_capacity(rate, MAX_CALLERS)
    }

    pub fn with_capacity(rate: u32, capacity: usize) -> Self {
        Self { rate: f64::from(rate), capacity, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `caller` if one is left. A new caller while the table is full is refused
    /// until callers idle for a second (whose buckets are full again) make room.
    pub fn allow(&self, caller: &str) -> bool {
        let now = Instant::now();
        let key: [u8; 32] = Sha256::digest(caller.as_bytes()).into();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= self.capacity && !buckets.contains_key(&key) {
            buckets.retain(|_, (_, last)| now.duration_since(*last) < Duration::from_secs(1));
            if buckets.len() >= self.capacity {
                return false;
            }
        }
        let (tokens, last) = buckets.entry(key).or_insert((self.rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    #[cfg(test)]
    fn callers(&self) -> usize {
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_distinct_callers_cannot_grow_the_table_past_its_capacity() {
        let limiter = RateLimiter::with_capacity(5, 100);
        let allowed = (0..1_000).filter(|i| limiter.allow(&format!("token-{i}"))).count();
        assert_eq!(allowed, 100);
        assert_eq!(limiter.callers(), 100);
        assert!(limiter.allow("token-7"), "a known caller keeps its bucket");
        std::thread::sleep(Duration::from_millis(1_050));
        assert!(limiter.allow("a newcomer"), "idle callers made room");
        assert!(limiter.callers() <= 100);
    }

    #[test]
    fn each_caller_gets_its_rate() {
        let limiter = RateLimiter::new(3);
        assert_eq!((0..10).filter(|_| limiter.allow("a")).count(), 3);
        assert!(limiter.allow("b"));
    }
}
