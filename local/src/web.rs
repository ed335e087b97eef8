//! What only the local stack serves beside the API: the API reference at `/docs` (Swagger UI from
//! `node_modules`), the web client at `/app/` (the static files of `web/`), and `POST /dev/token`,
//! which mints a token for any user id with the local secret so the client can sign in. None of it
//! is in `template.yaml`: a deployed stack has its own issuer and serves no pages.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use dm_shared::ids::UserId;
use serde::Deserialize;
use serde_json::json;
use tower_http::services::ServeDir;

/// The workspace's folders the pages come from, wherever `dm-local` is started.
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// How long a dev token lasts: a working day.
const DEV_TOKEN_SECS: u64 = 12 * 3600;

pub fn router(jwt_secret: String) -> Router {
    Router::new()
        .route("/dev/token", post(dev_token))
        .route("/docs", get(|| async { Redirect::permanent("/docs/") }))
        .route("/docs/", get(|| async { Html(include_str!("docs.html")) }))
        .nest_service("/docs/assets", ServeDir::new(format!("{WORKSPACE}/node_modules/swagger-ui-dist")))
        .route("/app", get(|| async { Redirect::permanent("/app/") }))
        .nest_service("/app/", ServeDir::new(format!("{WORKSPACE}/web")))
        .with_state(jwt_secret)
}

#[derive(Deserialize)]
struct DevTokenRequest {
    user_id: String,
}

async fn dev_token(State(secret): State<String>, body: axum::body::Bytes) -> Response {
    let refuse = |status: StatusCode, message: &str| {
        (status, axum::Json(json!({ "status": status.as_u16(), "message": message }))).into_response()
    };
    let Ok(request) = serde_json::from_slice::<DevTokenRequest>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "Expected {\"user_id\": \"...\"}");
    };
    let user = match UserId::parse(request.user_id) {
        Ok(user) => user,
        Err(err) => return refuse(StatusCode::BAD_REQUEST, &format!("user_id: {err}")),
    };
    match dm_shared::auth::mint(&secret, user.as_str(), DEV_TOKEN_SECS) {
        Ok(token) => {
            axum::Json(json!({ "user_id": user, "token": token, "expires_in": DEV_TOKEN_SECS })).into_response()
        }
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "Cannot mint a token"),
    }
}
