//! The whole API on one port without Docker: DynamoDB Local, an in-process S3, and every function's
//! router behind a local stand-in for API Gateway.

pub mod cors;
pub mod dynamodb;
pub mod event_source;
pub mod gateway;
mod realtime;
pub mod s3;
pub mod vapid;
mod web;

use std::net::SocketAddr;
use std::path::PathBuf;

use dm_shared::AppState;
use dm_shared::config::Config;
use tokio::net::TcpListener;

use dynamodb::DynamoDbLocal;
pub use realtime::{StreamWork, streams_client};

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// template.yaml, whose settings the local stack follows where it stands in for AWS.
pub(crate) fn template() -> Result<serde_yaml_ng::Value, BoxError> {
    Ok(serde_yaml_ng::from_str(include_str!("../../template.yaml"))?)
}

/// The dev secret for local tokens; deployments verify tokens with their own issuer.
pub const DEV_JWT_SECRET: &str = "dm-local-dev-secret";

/// A generous default: far above what a person does, low enough to show a runaway client its 429s.
pub const DEFAULT_RATE_LIMIT: u32 = 200;

/// How to run the local stack.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where DynamoDB Local and S3 keep their data; `None` keeps nothing after the stack stops.
    pub data_dir: Option<PathBuf>,
    /// Use this DynamoDB (Local) instead of starting one.
    pub dynamodb_endpoint: Option<String>,
    pub table: String,
    pub bucket: String,
    pub jwt_secret: String,
    pub link_base: String,
    /// The web client's page that invite links open; `None` is the stack's own `/app/`, which
    /// whoever binds its listener names (`serve`, the tests).
    pub app_url: Option<String>,
    /// Run the scheduler every second, as EventBridge runs it every minute in AWS.
    pub scheduler: bool,
    /// Read the table's stream into the realtime push and the projector, as the Lambda event source
    /// mappings do in AWS (tests that need neither leave it off, which spares DynamoDB Local).
    pub stream: bool,
    /// Requests a second each caller may make, as API Gateway's throttling would allow; 0 is no limit.
    pub rate_limit: u32,
    /// Origins of the pages that may call the API and load media (CORS); `*` is any.
    pub allowed_origins: Vec<String>,
}

impl Options {
    /// The defaults, overridden by the same `DM_*` variables the functions read.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            data_dir: Some(PathBuf::from(".local-data")),
            dynamodb_endpoint: var("DM_DYNAMODB_ENDPOINT"),
            table: var("DM_TABLE").unwrap_or_else(|| "dm-local".into()),
            bucket: var("DM_BUCKET").unwrap_or_else(|| "dm-media".into()),
            jwt_secret: var("DM_JWT_SECRET").unwrap_or_else(|| DEV_JWT_SECRET.into()),
            link_base: var("DM_LINK_BASE").unwrap_or_else(|| "http://127.0.0.1:3000".into()),
            app_url: var("DM_APP_URL"),
            scheduler: true,
            stream: true,
            rate_limit: var("DM_RATE_LIMIT").and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_RATE_LIMIT),
            // The template is compiled in and checked by the tests; unreadable, nobody is allowed.
            allowed_origins: cors::allowed_origins().unwrap_or_default(),
        }
    }
}

/// A running local stack: its stores and the state every function shares.
pub struct Stack {
    pub state: AppState,
    rate_limit: u32,
    cors: cors::Cors,
    pub s3_endpoint: String,
    /// Held for its drop: DynamoDB Local stops with the stack.
    _dynamodb: Option<DynamoDbLocal>,
    scratch: Option<PathBuf>,
    scheduler: Option<tokio::task::JoinHandle<()>>,
    hub: realtime::Hub,
    vapid: vapid::Vapid,
    /// The local `@connections` API and the stream reader.
    realtime_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Stack {
    /// Starts DynamoDB Local (unless an endpoint is given) and the S3 server, and creates the table
    /// and the bucket.
    pub async fn start(options: Options) -> Result<Self, BoxError> {
        let scratch = match &options.data_dir {
            Some(_) => None,
            None => Some(std::env::temp_dir().join(format!("dm-local-{}", ulid::Ulid::new()))),
        };
        let data_dir = options.data_dir.clone().or_else(|| scratch.clone()).ok_or("no data folder")?;
        let (dynamodb, endpoint) = match options.dynamodb_endpoint.clone() {
            Some(endpoint) => (None, endpoint),
            None => {
                let persisted = options.data_dir.as_ref().map(|dir| dir.join("dynamodb"));
                let local = tokio::task::block_in_place(|| DynamoDbLocal::start(persisted.as_deref()))?;
                let endpoint = local.endpoint().to_owned();
                (Some(local), endpoint)
            }
        };
        let vapid = vapid::Vapid::kept_in(&data_dir)?;
        let s3_endpoint = s3::serve(&data_dir.join("s3"), cors::Cors::bucket(options.allowed_origins.clone())?).await?;
        let config = Config {
            table: options.table.clone(),
            bucket: options.bucket.clone(),
            dynamodb_endpoint: Some(endpoint),
            s3_endpoint: Some(s3_endpoint.clone()),
            jwt_secret: Some(options.jwt_secret.clone()),
            jwt_issuer: None,
            jwt_audience: Vec::new(),
            link_base: options.link_base.clone(),
            app_url: options.app_url.clone().unwrap_or_else(|| format!("{}/app/", options.link_base)),
            vapid_public_key: Some(vapid.public_key.clone()),
            push_reach: dm_shared::push::Reach::PublicAndLoopback,
        };
        let sdk = dm_shared::state::sdk_config(&config).await;
        let state = AppState::new(config, &sdk);
        dm_shared::store::create_table(state.store.client(), state.store.table()).await?;
        let media = dm_shared::media::Media::new(&state);
        s3::create_bucket(media.client(), media.bucket()).await?;
        let scheduler = options.scheduler.then(|| tokio::spawn(tick_every_second(state.clone())));
        let signer = dm_notifier::webpush::Vapid::new(&vapid.private_key, &state.config.app_url)?;
        let (hub, realtime_tasks) = realtime::Hub::start(&state, options.stream, signer).await?;
        Ok(Self {
            state,
            rate_limit: options.rate_limit,
            cors: cors::Cors::api(options.allowed_origins)?,
            s3_endpoint,
            _dynamodb: dynamodb,
            scratch,
            scheduler,
            hub,
            vapid,
            realtime_tasks,
        })
    }

    /// Serves the API on `listener` until the returned future is dropped: the HTTP API, and the
    /// WebSocket API at `/ws`.
    pub fn serve_owned(
        &self,
        listener: TcpListener,
    ) -> std::io::Result<impl Future<Output = std::io::Result<()>> + Send + 'static> {
        let app = self.api().merge(self.hub.routes());
        Ok(axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).into_future())
    }

    /// The local `@connections` endpoint, for a `realtime` function of one's own.
    pub fn connections_endpoint(&self) -> &str {
        self.hub.endpoint()
    }

    /// Returns once the projector has consumed every write made before the call (see
    /// `Hub::settled`); for a stack that reads its stream.
    pub async fn settled(&self) -> Result<(), BoxError> {
        self.hub.settled().await
    }

    /// What the stream's consumers (projector, push) have asked of DynamoDB so far.
    pub fn stream_work(&self) -> StreamWork {
        self.hub.stream_work()
    }

    /// The VAPID key pair the stack's notifier signs with.
    pub fn vapid(&self) -> &vapid::Vapid {
        &self.vapid
    }

    /// The HTTP API as the stack's options configure it.
    pub fn api(&self) -> axum::Router {
        gateway::router(&self.state, self.rate_limit, self.cors.clone())
    }
}

/// The local scheduler: what EventBridge does in AWS, every second instead of every minute.
async fn tick_every_second(state: AppState) {
    let mut interval = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        interval.tick().await;
        // A run fits in the second between ticks; what it leaves is the next run's.
        let limits = dm_scheduler::Limits { budget: std::time::Duration::from_millis(800), ..Default::default() };
        if let Err(err) = dm_scheduler::tick(&state, dm_scheduler::LEASE, limits).await {
            tracing::warn!(error = %err, "scheduler run failed");
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(scheduler) = &self.scheduler {
            scheduler.abort();
        }
        for task in &self.realtime_tasks {
            task.abort();
        }
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// One request to `api` (a stack's router) as `user`, with a dev token and the given extra headers,
/// from a loopback caller: what the benches send. Its status, and its body as JSON (null if none).
pub async fn call_as(
    api: &axum::Router,
    (method, path): (axum::http::Method, &str),
    user: &str,
    body: Option<serde_json::Value>,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    use tower::ServiceExt;
    let token = dm_shared::auth::mint(DEV_JWT_SECRET, user, 3600).expect("a token");
    let mut request = axum::http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "127.0.0.1:3000")
        .header("authorization", format!("Bearer {token}"))
        .extension(axum::extract::ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = body.map_or_else(axum::body::Body::empty, |b| axum::body::Body::from(b.to_string()));
    let response = api.clone().oneshot(request.body(body).expect("a request")).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("a body");
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}
