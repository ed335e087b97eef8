//! `dm-coldstart`: how fast a function binary answers, started as Lambda starts it.
//!
//! A minimal Lambda Runtime API stand-in hands each started binary a `GET /api/v1/ping` event twice
//! (the members function reads the table for it; the others answer their JSON 404). The bench times,
//! as medians of `--runs`: process start to the first response, the first request alone (from the
//! event handed out to its response) and the second request, with and without warming the DynamoDB
//! connection during init.
//!
//! ```text
//! dm-coldstart [--runs N] BINARY...      e.g. target/release/members target/release/rooms
//! ```

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use dm_local::{Options, Stack};
use tokio::sync::{Mutex, mpsc};

const EVENT: &str = r#"{"version":"2.0","routeKey":"$default","rawPath":"/api/v1/ping","rawQueryString":"","headers":{"host":"bench.local"},"requestContext":{"accountId":"1","apiId":"bench","domainName":"bench.local","domainPrefix":"bench","http":{"method":"GET","path":"/api/v1/ping","protocol":"HTTP/1.1","sourceIp":"127.0.0.1","userAgent":"bench"},"requestId":"bench","routeKey":"$default","stage":"$default","time":"","timeEpoch":0},"isBase64Encoded":false}"#;

/// The Runtime API stand-in's view: when it handed out the first event, and when each response
/// arrived.
#[derive(Clone)]
struct Runtime {
    responses: mpsc::UnboundedSender<Instant>,
    first_event: Arc<Mutex<Option<Instant>>>,
    served: Arc<Mutex<u32>>,
}

async fn next(State(runtime): State<Runtime>) -> impl IntoResponse {
    let mut count = runtime.served.lock().await;
    *count += 1;
    let served = *count;
    drop(count);
    if served == 1 {
        *runtime.first_event.lock().await = Some(Instant::now());
    }
    if served > 2 {
        // A third invocation never comes: the process is killed before.
        std::future::pending::<()>().await;
    }
    let mut headers = HeaderMap::new();
    headers.insert("lambda-runtime-aws-request-id", format!("req-{served}").parse().expect("a header"));
    headers.insert("lambda-runtime-deadline-ms", "99999999999999".parse().expect("a header"));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:1:function:bench".parse().expect("a header"),
    );
    (headers, EVENT)
}

async fn response(State(runtime): State<Runtime>) -> &'static str {
    let _ = runtime.responses.send(Instant::now());
    "{}"
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 20;
    if let Some(i) = args.iter().position(|a| a == "--runs") {
        runs = args.get(i + 1).and_then(|n| n.parse().ok()).expect("--runs takes a number");
        args.drain(i..=i + 1);
    }
    if args.is_empty() {
        eprintln!("usage: dm-coldstart [--runs N] BINARY...");
        std::process::exit(2);
    }
    let mut options = Options::from_env();
    options.data_dir = None;
    options.scheduler = false;
    let stack = Stack::start(options.clone()).await.expect("the local stack starts");
    let config = &stack.state.config;

    println!("| binary | warm-up in init | start to first response | first request alone | second request |");
    println!("| --- | --- | --- | --- | --- |");
    for binary in &args {
        for warm_up in [true, false] {
            let (mut cold, mut first_request, mut warm) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..runs {
                let (sender, mut responses) = mpsc::unbounded_channel();
                let first_event = Arc::new(Mutex::new(None));
                let runtime =
                    Runtime { responses: sender, first_event: first_event.clone(), served: Arc::new(Mutex::new(0)) };
                let app = Router::new()
                    .route("/2018-06-01/runtime/invocation/next", get(next))
                    .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
                    .with_state(runtime);
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
                let api: SocketAddr = listener.local_addr().expect("an address");
                let server = tokio::spawn(async move { axum::serve(listener, app).await });
                let started = Instant::now();
                let mut child = Command::new(binary)
                    .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
                    .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
                    .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                    .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
                    .env("DM_TABLE", &config.table)
                    .env("DM_BUCKET", &config.bucket)
                    .env("DM_DYNAMODB_ENDPOINT", config.dynamodb_endpoint.as_deref().unwrap_or_default())
                    .env("DM_S3_ENDPOINT", config.s3_endpoint.as_deref().unwrap_or_default())
                    .env("DM_JWT_SECRET", "bench")
                    .env("DM_WARM_UP", if warm_up { "1" } else { "0" })
                    .env("RUST_LOG", "error")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("the binary starts");
                let wait = Duration::from_secs(30);
                let first =
                    tokio::time::timeout(wait, responses.recv()).await.ok().flatten().expect("a first response");
                let second =
                    tokio::time::timeout(wait, responses.recv()).await.ok().flatten().expect("a second response");
                cold.push(first - started);
                let handed_out = first_event.lock().await.expect("the first event was handed out");
                first_request.push(first - handed_out);
                warm.push(second - first);
                let _ = child.kill();
                let _ = child.wait();
                server.abort();
            }
            let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
            let name =
                std::path::Path::new(binary).file_name().map_or(binary.clone(), |n| n.to_string_lossy().into_owned());
            let warmed = if warm_up { "yes" } else { "no" };
            let (cold, first, warm) = (ms(median(cold)), ms(median(first_request)), ms(median(warm)));
            println!("| {name} | {warmed} | {cold} | {first} | {warm} |");
        }
    }
}
