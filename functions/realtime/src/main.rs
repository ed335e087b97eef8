//! One function for the WebSocket API's routes and for the table's stream.

// The stream handler nests the SDK's futures deeper than the default limit lets rustc lay out.
#![recursion_limit = "256"]

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::dynamodb::Event as StreamEvent;
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
        async move {
            if event.payload.get("Records").is_some() {
                stream(&realtime, serde_json::from_value(event.payload)?).await
            } else {
                socket(&realtime, serde_json::from_value(event.payload)?).await
            }
        }
    }))
    .await
}

/// Stream records in, the ones to retry out (`ReportBatchItemFailures`).
async fn stream(realtime: &Realtime, event: StreamEvent) -> Result<Value, Error> {
    let failed = realtime.publish(&dm_shared::stream::changes(event)).await;
    Ok(serde_json::to_value(dm_shared::stream::response(failed))?)
}

/// `$connect`, `$disconnect` and `$default`.
async fn socket(realtime: &Realtime, request: ApiGatewayWebsocketProxyRequest) -> Result<Value, Error> {
    let context = &request.request_context;
    let connection = context.connection_id.clone().unwrap_or_default();
    let status = match context.route_key.as_deref() {
        Some("$connect") => {
            let header = request.headers.get("authorization").and_then(|v| v.to_str().ok());
            let token =
                header.and_then(|h| h.strip_prefix("Bearer ")).or(request.query_string_parameters.first("token"));
            match realtime.connect(&connection, token, request.query_string_parameters.first("org_id")).await {
                Ok(_) => 200,
                Err(err) => err.status().as_u16(),
            }
        }
        Some("$disconnect") => {
            realtime.disconnect(&connection).await?;
            200
        }
        _ => 200,
    };
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    Ok(serde_json::to_value(response)?)
}
