//! The WebSocket API's routes: `$connect`, `$disconnect` and `$default` (a client's frames).

// The route handler nests the SDK's futures deeper than the default limit lets rustc lay out.
#![recursion_limit = "256"]

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use dm_realtime::Realtime;
use dm_shared::lambda::{Error, lambda_runtime};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    dm_shared::telemetry::init();
    let realtime = dm_realtime::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
        let realtime: Realtime = realtime.clone();
        let span = dm_shared::lambda::invocation_span(&event.context);
        tracing::Instrument::instrument(
            async move { dm_realtime::lambda::socket(&realtime, event.payload).await },
            span,
        )
    }))
    .await
}
