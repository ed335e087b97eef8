//! Media uploads to S3 and their presigned fetches.
//!
//! The routes are wired as template.yaml declares them; their handlers are not built yet and
//! answer a JSON 501.

use axum::Router;
use axum::routing::{get, post};
use dm_shared::AppState;
use dm_shared::http::{not_implemented, service};

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/api/v1/org/{org_id}/rooms/{room_id}/messagemedia", post(not_implemented))
        .route("/api/v1/org/{org_id}/rooms/{room_id}/media/upload-url", post(not_implemented))
        .route("/api/v1/org/{org_id}/rooms/{room_id}/media/{media_id}/{file_name}", get(not_implemented));
    service(routes, state)
}
