//! The table's stream in: each change's room events logged in its room and posted to the
//! connections of whoever they are for (`ReportBatchItemFailures`: what failed is retried, with
//! everything after it).

// The stream handler nests the SDK's futures deeper than the default limit lets rustc lay out.
#![recursion_limit = "256"]

use aws_lambda_events::dynamodb::Event as StreamEvent;
use dm_realtime::Realtime;
use dm_shared::lambda::{Error, lambda_runtime};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    dm_shared::telemetry::init();
    let realtime = dm_realtime::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<StreamEvent>| {
        let realtime: Realtime = realtime.clone();
        let span = dm_shared::lambda::invocation_span(&event.context);
        tracing::Instrument::instrument(
            async move { dm_realtime::lambda::stream(&realtime, event.payload).await },
            span,
        )
    }))
    .await
}
