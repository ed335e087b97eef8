//! The table's stream in, derived state kept (`ReportBatchItemFailures`: what failed is retried,
//! with everything after it); or an operator's command: rebuild rooms, replay failed batches.

// The stream handler nests the SDK's futures deeper than the default limit lets rustc lay out.
#![recursion_limit = "256"]

use dm_projector::{Invocation, Projector};
use dm_shared::lambda::{Error, lambda_runtime};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    dm_shared::telemetry::init();
    let state = dm_shared::AppState::from_env().await?;
    let streams = aws_sdk_dynamodbstreams::Client::new(&state.sdk);
    let projector = Projector::new(state);
    lambda_runtime::run(service_fn(|event: LambdaEvent<Invocation>| {
        let (projector, streams) = (projector.clone(), streams.clone());
        let span = dm_shared::lambda::invocation_span(&event.context);
        let run = async move {
            match event.payload {
                Invocation::Stream(batch) => {
                    let failed = projector.project(&dm_shared::stream::changes(batch)).await;
                    Ok::<_, Error>(serde_json::to_value(dm_shared::stream::response(failed))?)
                }
                Invocation::Rebuild { rebuild } => {
                    Ok(serde_json::json!({ "rebuilt": projector.rebuild(&rebuild).await? }))
                }
                Invocation::Replay { replay } => {
                    let replayed = dm_shared::stream::api::replay(&projector, &streams, &replay).await?;
                    Ok(serde_json::json!({ "replayed": replayed }))
                }
            }
        };
        tracing::Instrument::instrument(run, span)
    }))
    .await
}
