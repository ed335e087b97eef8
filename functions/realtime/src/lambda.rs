//! The two functions' events as Lambda hands them over: the WebSocket API's route requests
//! (`realtime`) and the table's stream batches (`push`).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::dynamodb::Event as StreamEvent;
use dm_shared::lambda::Error;
use dm_shared::stream::api::FailedBatch;
use serde_json::Value;

use crate::Realtime;

/// What the push is invoked with: the table's stream, or an operator's replay of batches that
/// exhausted their retries (`{"replay": [failure queue message, ...]}`).
#[derive(serde::Deserialize)]
#[serde(untagged)]
pub enum Invocation {
    Replay { replay: Vec<FailedBatch> },
    Stream(StreamEvent),
}

/// Publishes again the records of batches that exhausted their retries: their events are logged
/// (once, whatever was logged of them before) and posted late.
pub async fn replay(
    realtime: &Realtime,
    streams: &aws_sdk_dynamodbstreams::Client,
    failed: &[FailedBatch],
) -> Result<Value, Error> {
    let replayed = dm_shared::stream::api::replay(realtime, streams, failed).await?;
    Ok(serde_json::json!({ "replayed": replayed }))
}

/// Stream records in, the ones to retry out (`ReportBatchItemFailures`).
pub async fn stream(realtime: &Realtime, event: StreamEvent) -> Result<Value, Error> {
    let failed = realtime.publish(&dm_shared::stream::changes(event)).await;
    Ok(serde_json::to_value(dm_shared::stream::response(failed))?)
}

/// `$connect`, `$disconnect` and `$default` (a client's frame).
pub async fn socket(realtime: &Realtime, request: ApiGatewayWebsocketProxyRequest) -> Result<Value, Error> {
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
        _ => {
            realtime.receive(&connection, request.body.as_deref().unwrap_or_default()).await?;
            200
        }
    };
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = i64::from(status);
    Ok(serde_json::to_value(response)?)
}
