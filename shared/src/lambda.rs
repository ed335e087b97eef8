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

/// The span of one invocation of a function that is no HTTP route (a stream batch, a scheduled
/// run): its logs carry Lambda's request id, as the `REPORT` line does.
pub fn invocation_span(context: &lambda_runtime::Context) -> tracing::Span {
    tracing::info_span!("invocation", request_id = %context.request_id)
}

pub use lambda_http::Error;
pub use lambda_http::lambda_runtime;
