//! A store whose DynamoDB requests fail as AWS makes them fail: a second `AppState` over a test's
//! table whose SDK client sends through a fault-injecting HTTP client. Each fault is set on the
//! requests of one operation whose body contains a given text (a key, a prefix), for a number of
//! times, and happens where AWS's would:
//!
//! - `Throttle`: refused before it reaches the table (a throttled request, or a transaction cancelled
//!   with a `ThrottlingError` reason), so it never took effect;
//! - `LoseAnswer`: taken by the table, then its answer lost (a timeout), so the SDK sends it again;
//! - `Before(hook)`: the hook runs first (another writer at that moment), then the request goes on.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use dm_shared::AppState;

use crate::TestApp;

pub type Hook = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

#[derive(Clone)]
pub enum Fault {
    Throttle,
    LoseAnswer,
    Before(Hook),
}

struct Rule {
    operation: &'static str,
    contains: String,
    fault: Fault,
    times: usize,
}

/// The faults still to happen, and how many have.
#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    happened: Mutex<usize>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Faults")
    }
}

impl Faults {
    /// `fault` on the next `times` requests of `operation` (`PutItem`, `TransactWriteItems`, ...)
    /// whose body contains `contains`.
    pub fn on(&self, operation: &'static str, contains: &str, fault: Fault, times: usize) {
        let rule = Rule { operation, contains: contains.to_owned(), fault, times };
        self.rules.lock().unwrap().push(rule);
    }

    /// How many faults have happened.
    pub fn happened(&self) -> usize {
        *self.happened.lock().unwrap()
    }

    fn take(&self, operation: &str, body: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        let rule = rules
            .iter_mut()
            .find(|rule| rule.times > 0 && rule.operation == operation && body.contains(&rule.contains))?;
        rule.times -= 1;
        *self.happened.lock().unwrap() += 1;
        Some(rule.fault.clone())
    }
}

/// A state over `app`'s table (and its S3) whose DynamoDB requests go through `faults`. The SDK
/// retries as in AWS (three attempts), without waiting long between them.
pub async fn faulty_state(app: &TestApp) -> (AppState, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let state = &app.stack.state;
    let inner = aws_smithy_http_client::Builder::new().build_http();
    let retries = RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(5));
    let sdk =
        state.sdk.to_builder().http_client(Faulty { inner, faults: faults.clone() }).retry_config(retries).build();
    (AppState::new((*state.config).clone(), &sdk), faults)
}

#[derive(Clone, Debug)]
struct Faulty {
    inner: SharedHttpClient,
    faults: Arc<Faults>,
}

impl HttpClient for Faulty {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        SharedHttpConnector::new(FaultyConnector { inner, faults: self.faults.clone() })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    faults: Arc<Faults>,
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        // `X-Amz-Target: DynamoDB_20120810.PutItem`
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        let operation = target.rsplit('.').next().unwrap_or_default().to_owned();
        let body = request.body().bytes().map(|bytes| String::from_utf8_lossy(bytes).into_owned()).unwrap_or_default();
        match self.faults.take(&operation, &body) {
            None => self.inner.call(request),
            Some(Fault::Throttle) => HttpConnectorFuture::ready(Ok(throttled(&operation, &body))),
            Some(Fault::LoseAnswer) => {
                let sent = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    let _ = sent.await;
                    Err(ConnectorError::timeout("the answer was lost".into()))
                })
            }
            Some(Fault::Before(hook)) => {
                let inner = self.inner.clone();
                HttpConnectorFuture::new(async move {
                    hook().await;
                    inner.call(request).await
                })
            }
        }
    }
}

/// DynamoDB's answer to a throttled request: for a transaction, cancelled with its first item
/// throttled (the others not checked), as DynamoDB reports throttling inside a transaction.
fn throttled(operation: &str, body: &str) -> HttpResponse {
    let json = if operation == "TransactWriteItems" {
        let request: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let items = request["TransactItems"].as_array().map_or(1, Vec::len);
        let mut reasons = vec![serde_json::json!({ "Code": "None" }); items];
        reasons[0] = serde_json::json!({ "Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity of your table or index." });
        serde_json::json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [ThrottlingError]",
            "CancellationReasons": reasons,
        })
    } else {
        serde_json::json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            "message": "Rate of requests exceeds the allowed throughput.",
        })
    };
    let mut response = HttpResponse::new(StatusCode::try_from(400).expect("a status"), SdkBody::from(json.to_string()));
    response.headers_mut().insert("content-type", "application/x-amz-json-1.0");
    response
}
