//! One function for the WebSocket API's routes and for the table's stream.

// The stream handler nests the SDK's futures deeper than the default limit lets rustc lay out.
#![recursion_limit = "256"]

use dm_realtime::Realtime;
use dm_shared::lambda::{Error, lambda_runtime};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    dm_shared::telemetry::init();
    let config = dm_shared::config::Config::from_env()?;
    let endpoint = std::env::var("DM_WS_ENDPOINT").map_err(|_| "DM_WS_ENDPOINT is not set")?;
    let sdk = dm_shared::state::sdk_config(&config).await;
    let realtime = Realtime::new(dm_shared::AppState::new(config, &sdk), &endpoint)?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        let realtime = realtime.clone();
        let span = dm_shared::lambda::invocation_span(&event.context);
        tracing::Instrument::instrument(async move { dm_realtime::handle(&realtime, event.payload).await }, span)
    }))
    .await
}
