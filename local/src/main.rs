//! `dm-local`: serve the whole API locally, or mint a dev token.
//!
//! ```text
//! dm-local [--in-memory] [--port N]        serve on 127.0.0.1:N (DM_PORT, default 3000)
//! dm-local token --user U [--ttl SECONDS]  print a dev token for the local secret
//! dm-local rebuild ROOM_ID...              rebuild rooms' derived state from their posts
//! dm-local replay FILE...                  project again the batches of failure-queue messages
//! dm-local vapid                           print a new VAPID key pair for a deployed stack
//! ```
//!
//! `rebuild` and `replay` work on the local database (`.local-data`), or on the DynamoDB Local that
//! `DM_DYNAMODB_ENDPOINT` names (the one a running `make dev` prints), as the projector does in AWS.

use std::process::ExitCode;

use dm_local::{Options, Stack};
use tokio::net::TcpListener;

fn usage() -> ExitCode {
    eprintln!(
        "usage: dm-local [--in-memory] [--port N] | dm-local token --user U [--ttl SECONDS] \
         | dm-local rebuild ROOM_ID... | dm-local replay FAILURE_MESSAGE_FILE... | dm-local vapid"
    );
    ExitCode::from(2)
}

#[tokio::main]
async fn main() -> ExitCode {
    dm_shared::telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut options = Options::from_env();
    match args.first().map(String::as_str) {
        Some("token") => return token(&args[1..], &options.jwt_secret),
        Some("vapid") => {
            return report(dm_local::vapid::Vapid::generate().and_then(|pair| {
                println!("{}", serde_json::to_string_pretty(&pair)?);
                Ok(())
            }));
        }
        Some(command @ ("rebuild" | "replay")) if args.len() > 1 => {
            return report(operate(options, command, &args[1..]).await);
        }
        Some("rebuild" | "replay") => return usage(),
        _ => {}
    }
    let mut port: u16 = std::env::var("DM_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--in-memory" => options.data_dir = None,
            "--port" => match rest.next().and_then(|p| p.parse().ok()) {
                Some(p) => port = p,
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    report(serve(options, port).await)
}

/// An operator's command, on the local stack's table with nothing else running: what the projector
/// does when invoked with `{"rebuild": [...]}` or `{"replay": [...]}` in AWS.
async fn operate(mut options: Options, command: &str, args: &[String]) -> Result<(), dm_local::BoxError> {
    (options.scheduler, options.stream) = (false, false);
    let stack = Stack::start(options).await?;
    let projector = dm_projector::Projector::new(stack.state.clone());
    let answer = if command == "rebuild" {
        let rooms = args.iter().map(dm_shared::ids::RoomId::parse).collect::<Result<Vec<_>, _>>()?;
        serde_json::json!({ "rebuilt": projector.rebuild(&rooms).await? })
    } else {
        let mut failed = Vec::new();
        for file in args {
            failed.push(serde_json::from_str(&std::fs::read_to_string(file)?)?);
        }
        let streams = dm_local::streams_client(&stack.state);
        serde_json::json!({ "replayed": dm_shared::stream::api::replay(&projector, &streams, &failed).await? })
    };
    println!("{answer}");
    Ok(())
}

fn report(done: Result<(), dm_local::BoxError>) -> ExitCode {
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("dm-local: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(mut options: Options, port: u16) -> Result<(), dm_local::BoxError> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let address = listener.local_addr()?;
    options.app_url.get_or_insert_with(|| format!("http://{address}/app/"));
    let stack = Stack::start(options).await?;
    eprintln!("dm-local: the API is on http://{address}, WebSocket events on ws://{address}/ws");
    let dynamodb = stack.state.config.dynamodb_endpoint.as_deref().unwrap_or_default();
    eprintln!("dm-local: DynamoDB Local at {dynamodb}, S3 at {} (for sam local's env file)", stack.s3_endpoint);
    eprintln!("dm-local: a token: cargo run -q -p dm-local -- token --user <user-id>");
    eprintln!("dm-local: the web client at http://{address}/app/, the API reference at http://{address}/docs/");
    tokio::select! {
        served = stack.serve_owned(listener)? => served?,
        _ = shutdown() => eprintln!("dm-local: stopping"),
    }
    // Dropping the stack stops DynamoDB Local.
    drop(stack);
    Ok(())
}

async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn token(args: &[String], secret: &str) -> ExitCode {
    let mut user = None;
    let mut ttl: u64 = 24 * 3600;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match (arg.as_str(), rest.next()) {
            ("--user", Some(u)) => user = Some(u.clone()),
            ("--ttl", Some(t)) => match t.parse() {
                Ok(t) => ttl = t,
                Err(_) => return usage(),
            },
            _ => return usage(),
        }
    }
    let Some(user) = user else { return usage() };
    match dm_shared::auth::mint(secret, &user, ttl) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("dm-local: {err}");
            ExitCode::FAILURE
        }
    }
}
