//! The table's stream in, derived state kept (`ReportBatchItemFailures`: what failed is retried,
//! with everything after it).

// The stream handler nests the SDK's futures deeper than the default limit lets rustc lay out.
#![recursion_limit = "256"]

use aws_lambda_events::dynamodb::Event as StreamEvent;
use dm_projector::Projector;
use dm_shared::lambda::{Error, lambda_runtime};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    dm_shared::telemetry::init();
    let projector = Projector::new(dm_shared::AppState::from_env().await?);
    lambda_runtime::run(service_fn(|event: LambdaEvent<StreamEvent>| {
        let projector = projector.clone();
        let span = dm_shared::lambda::invocation_span(&event.context);
        let run = async move {
            let failed = projector.project(&dm_shared::stream::changes(event.payload)).await;
            Ok::<_, Error>(dm_shared::stream::response(failed))
        };
        tracing::Instrument::instrument(run, span)
    }))
    .await
}
