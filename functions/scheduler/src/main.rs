use dm_shared::lambda::{Error, lambda_runtime};
use lambda_runtime::{LambdaEvent, service_fn};

/// Runs on an EventBridge schedule (every minute); the event itself carries nothing we need.
#[tokio::main]
async fn main() -> Result<(), Error> {
    dm_shared::telemetry::init();
    let state = dm_shared::AppState::from_env().await?;
    lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| {
        let state = state.clone();
        async move {
            let report = dm_scheduler::tick(&state, dm_scheduler::LEASE, dm_scheduler::Limits::default()).await?;
            tracing::info!(
                sent = report.sent,
                dropped = report.dropped,
                unfinished = report.unfinished,
                max_lag_ms = report.max_lag_ms,
                "scheduler run"
            );
            Ok::<_, Error>(serde_json::to_value(report)?)
        }
    }))
    .await
}
