//! Messages: send, list, edit, delete, read, pin, links, search and schedule.
//!
//! The routes are wired as template.yaml declares them; their handlers are not built yet and
//! answer a JSON 501.

use axum::Router;
use axum::routing::{delete, get, post, put};
use dm_shared::AppState;
use dm_shared::http::{not_implemented, service};

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route(
            "/api/v1/org/{org_id}/rooms/{room_id}/messages",
            post(not_implemented).get(not_implemented),
        )
        .route(
            "/api/v1/org/{org_id}/rooms/{room_id}/messages/{message_id}",
            put(not_implemented),
        )
        .route(
            "/api/v1/org/{org_id}/rooms/{room_id}/messages/{message_id}/message",
            delete(not_implemented),
        )
        .route(
            "/api/v1/org/{org_id}/rooms/{room_id}/messages/{message_id}/history",
            get(not_implemented),
        )
        .route(
            "/api/v1/org/{org_id}/messages/{message_id}/read",
            put(not_implemented),
        )
        .route(
            "/api/v1/org/{org_id}/messages/{message_id}/pin",
            put(not_implemented),
        )
        .route(
            "/api/v1/org/{org_id}/messages/{message_id}/link",
            get(not_implemented),
        )
        .route(
            "/api/v1/org/{org_id}/rooms/{room_id}/links",
            get(not_implemented),
        )
        .route(
            "/api/v1/org/{org_id}/users/{user_id}/messages/search",
            get(not_implemented),
        )
        .route(
            "/api/v1/org/{org_id}/rooms/{room_id}/schedule-message",
            post(not_implemented),
        );
    service(routes, state)
}
