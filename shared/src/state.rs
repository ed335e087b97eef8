//! What a function builds once per cold start and every request borrows.

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, Region};

use crate::auth::Verifier;
use crate::config::Config;
use crate::error::Result;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    /// For the clients only some functions build (S3, the WebSocket management API).
    pub sdk: SdkConfig,
    pub store: Store,
    pub verifier: Arc<Verifier>,
}

impl AppState {
    pub async fn from_env() -> Result<Self> {
        let config = Config::from_env()?;
        let sdk = sdk_config(&config).await;
        Ok(Self::new(config, &sdk))
    }

    pub fn new(config: Config, sdk: &SdkConfig) -> Self {
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk);
        if let Some(endpoint) = &config.dynamodb_endpoint {
            dynamodb = dynamodb.endpoint_url(endpoint);
        }
        let store = Store::new(aws_sdk_dynamodb::Client::from_conf(dynamodb.build()), &config.table);
        let verifier = Arc::new(Verifier::new(config.jwt_secret.as_deref()));
        Self { config: Arc::new(config), sdk: sdk.clone(), store, verifier }
    }
}

/// One SDK configuration for every client. Off AWS (a local endpoint is set) it uses fixed local
/// credentials, so nothing looks for an AWS profile.
///
/// Timeouts are chosen so that a request gives up well inside the Lambda timeout: a store that does not
/// answer becomes a 503, never a hung function.
///
/// Off AWS the store is DynamoDB Local, a JVM on a developer's machine that can pause for seconds
/// under load where the service would not: its calls may take longer (a refused connection still
/// fails at once).
pub async fn sdk_config(config: &Config) -> SdkConfig {
    let local = config.dynamodb_endpoint.is_some() || config.s3_endpoint.is_some();
    let (attempt, operation) = if local { (10, 20) } else { (2, 5) };
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(500))
        .operation_attempt_timeout(Duration::from_secs(attempt))
        .operation_timeout(Duration::from_secs(operation))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if local {
        loader = loader
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("local", "local", None, None, "dm-local"));
    }
    loader.load().await
}
