//! The table's stream in: each change's room events logged in its room and posted to the
//! connections of whoever they are for (`ReportBatchItemFailures`: what failed is retried, with
//! everything after it); or an operator's replay of the failure queue's batches.

// The stream handler nests the SDK's futures deeper than the default limit lets rustc lay out.
#![recursion_limit = "256"]

use dm_realtime::Realtime;
use dm_realtime::lambda::Invocation;
use dm_shared::lambda::{Error, lambda_runtime};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    dm_shared::telemetry::init();
    let realtime = dm_realtime::from_env().await?;
    let streams = realtime.streams_client();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Invocation>| {
        let (realtime, streams): (Realtime, _) = (realtime.clone(), streams.clone());
        let span = dm_shared::lambda::invocation_span(&event.context);
        let run = async move {
            match event.payload {
                Invocation::Stream(batch) => dm_realtime::lambda::stream(&realtime, batch).await,
                Invocation::Replay { replay } => dm_realtime::lambda::replay(&realtime, &streams, &replay).await,
            }
        };
        tracing::Instrument::instrument(run, span)
    }))
    .await
}
