//! Thread replies to a message.
//!
//! The routes are wired as template.yaml declares them; their handlers are not built yet and
//! answer a JSON 501.

use axum::Router;
use axum::routing::{post, put};
use dm_shared::AppState;
use dm_shared::http::{not_implemented, service};

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route(
            "/api/v1/org/{org_id}/rooms/{room_id}/messages/{message_id}/threads",
            post(not_implemented).get(not_implemented),
        )
        .route(
            "/api/v1/org/{org_id}/rooms/{room_id}/messages/{message_id}/threads/{thread_id}",
            put(not_implemented).delete(not_implemented),
        );
    service(routes, state)
}
