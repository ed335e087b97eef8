//! The table's stream in, pushes out (`ReportBatchItemFailures`: a post the table failed, or whose
//! devices the invocation had no time left for, is delivered again). The VAPID private key is read
//! once per cold start from the SSM SecureString parameter `DM_VAPID_PRIVATE_KEY_PARAMETER` names.

// The stream handler nests the SDK's futures deeper than the default limit lets rustc lay out.
#![recursion_limit = "256"]

use dm_notifier::Notifier;
use dm_notifier::webpush::{Pusher, Vapid};
use dm_shared::lambda::{Error, lambda_runtime};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    dm_shared::telemetry::init();
    let state = dm_shared::AppState::from_env().await?;
    let parameter = std::env::var("DM_VAPID_PRIVATE_KEY_PARAMETER")?;
    let ssm = aws_sdk_ssm::Client::new(&state.sdk);
    let read = ssm.get_parameter().name(parameter).with_decryption(true).send().await?;
    let private_key = read.parameter.and_then(|p| p.value).ok_or("the VAPID private key parameter is empty")?;
    let subject = std::env::var("DM_VAPID_SUBJECT").ok().filter(|subject| !subject.is_empty());
    let subject = subject.unwrap_or_else(|| state.config.app_url.clone());
    let pusher = Pusher::new(Vapid::new(&private_key, &subject)?, state.config.push_reach)?;
    let notifier = Notifier::new(state, pusher);
    lambda_runtime::run(service_fn(|event: LambdaEvent<aws_lambda_events::dynamodb::Event>| {
        let notifier = notifier.clone();
        let span = dm_shared::lambda::invocation_span(&event.context);
        let deadline = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
        let run = async move { notifier.stream(event.payload, deadline).await.map_err(Error::from) };
        tracing::Instrument::instrument(run, span)
    }))
    .await
}
