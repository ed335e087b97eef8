use dm_shared::lambda::{Error, lambda_runtime};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    dm_shared::telemetry::init();
    let state = dm_shared::AppState::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let state = state.clone();
        let span = dm_shared::lambda::invocation_span(&event.context);
        let run = async move { Ok::<_, Error>(dm_scheduler::handle(&state, event.payload).await?) };
        tracing::Instrument::instrument(run, span)
    }))
    .await
}
