//! The whole of a function's `main`: build the state once, warm the connection, serve the router.

use axum::Router;

use crate::state::AppState;

pub async fn run(router: fn(AppState) -> Router) -> Result<(), Error> {
    crate::telemetry::init();
    let state = AppState::from_env().await?;
    // The TLS handshake to DynamoDB happens here, during init, not in the first request.
    // `DM_WARM_UP=0` skips it, to measure what it saves.
    if std::env::var("DM_WARM_UP").as_deref() != Ok("0")
        && let Err(err) = state.store.ping().await
    {
        tracing::warn!(error = %err, "the table did not answer during init");
    }
    lambda_http::run(router(state)).await
}

pub use lambda_http::Error;
pub use lambda_http::lambda_runtime;
