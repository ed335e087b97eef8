//! `dm-load`: 50 clients in 10 rooms send 5,000 messages, each with an `Idempotency-Key`, and retry
//! one in ten of them, while readers page the rooms. Afterwards every room must hold exactly its sent
//! messages, each once, newest first, with a matching count, and no request may have seen a 5xx.
//! Prints throughput and latency percentiles per route. Runs against its own local stack, or against
//! `--url` (a running `make dev`, with `DM_RATE_LIMIT=0`).
//!
//! ```text
//! cargo run --release -p dm-tests --bin dm-load [-- --url http://127.0.0.1:3000] [--messages N]
//! ```

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dm_tests::{read, spawn_with, token};
use reqwest::Method;
use serde_json::json;

const CLIENTS: usize = 50;
const ROOMS: usize = 10;

#[derive(Default)]
struct Timings(Mutex<BTreeMap<&'static str, Vec<Duration>>>);

impl Timings {
    fn record(&self, route: &'static str, took: Duration) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(route).or_default().push(took);
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let total: usize = arg("--messages").map_or(5_000, |n| n.parse().expect("--messages takes a number"));
    let per_client = total / CLIENTS;

    // Our own stack unless a running one is named; its server task lives as long as `_app`.
    let (_app, base) = match arg("--url") {
        Some(url) => (None, url),
        None => {
            let app = spawn_with(|options| options.scheduler = false).await;
            let base = app.base.clone();
            (Some(app), base)
        }
    };
    let http = reqwest::Client::new();
    let base = base.as_str();
    let call = |method: Method, path: String, user: String, body: Option<serde_json::Value>, key: Option<String>| {
        let mut request = http.request(method, format!("{base}{path}")).bearer_auth(token(&user));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        async move { read(request.send().await.expect("the API answers")).await }
    };

    let clients: Vec<String> = (0..CLIENTS).map(|i| format!("client{i}")).collect();
    let org = call(Method::POST, "/api/v1/orgs".into(), "owner".into(), Some(json!({ "name": "Load" })), None)
        .await
        .str("org_id");
    for client in &clients {
        let body = json!({ "member_id": client, "email": format!("{client}@example.com") });
        call(Method::POST, format!("/api/v1/org/{org}/members"), "owner".into(), Some(body), None).await;
    }
    let mut rooms = Vec::new();
    for r in 0..ROOMS {
        let members: Vec<&String> = clients.iter().skip(r).step_by(ROOMS).collect();
        let body = json!({ "room_user_ids": members });
        rooms.push(
            call(Method::POST, format!("/api/v1/org/{org}/room"), members[0].clone(), Some(body), None)
                .await
                .str("room_id"),
        );
    }

    let timings = Arc::new(Timings::default());
    let server_errors = Arc::new(Mutex::new(0usize));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let senders = clients.iter().enumerate().map(|(i, client)| {
        let (room, org, timings, server_errors) =
            (rooms[i % ROOMS].clone(), org.clone(), timings.clone(), server_errors.clone());
        let call = &call;
        async move {
            let mut sent = Vec::new();
            for n in 0..per_client {
                let key = format!("{client}-{n}");
                let body = json!({ "sender_id": client, "message": format!("{client} says {n}") });
                let path = format!("/api/v1/org/{org}/rooms/{room}/messages");
                let t = Instant::now();
                let first =
                    call(Method::POST, path.clone(), client.clone(), Some(body.clone()), Some(key.clone())).await;
                timings.record("POST messages", t.elapsed());
                if first.status.is_server_error() {
                    *server_errors.lock().unwrap() += 1;
                    continue;
                }
                let id = first.str("message_id");
                if n % 10 == 3 {
                    let t = Instant::now();
                    let retry = call(Method::POST, path, client.clone(), Some(body), Some(key)).await;
                    timings.record("POST messages (retry)", t.elapsed());
                    assert_eq!(retry.str("message_id"), id, "a retry got another message");
                }
                sent.push(id);
            }
            (i % ROOMS, sent)
        }
    });
    let readers = rooms.iter().enumerate().map(|(r, room)| {
        let (org, reader, timings, server_errors, done) =
            (org.clone(), clients[r].clone(), timings.clone(), server_errors.clone(), done.clone());
        let call = &call;
        async move {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let mut path = format!("/api/v1/org/{org}/rooms/{room}/messages?limit=50");
                for _ in 0..3 {
                    let t = Instant::now();
                    let page = call(Method::GET, path.clone(), reader.clone(), None, None).await;
                    timings.record("GET messages (page)", t.elapsed());
                    if page.status.is_server_error() {
                        *server_errors.lock().unwrap() += 1;
                    }
                    match page.body["next"].as_str() {
                        Some(next) => path = next.trim_start_matches(base).to_owned(),
                        None => break,
                    }
                }
            }
        }
    });
    let sending = async {
        let sent = futures_util::future::join_all(senders).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        sent
    };
    let (sent, _) = tokio::join!(sending, futures_util::future::join_all(readers));
    let elapsed = started.elapsed();

    // Every room holds exactly its sent messages, each once, newest first.
    let mut expected: Vec<HashSet<String>> = vec![HashSet::new(); ROOMS];
    for (room, ids) in sent {
        expected[room].extend(ids);
    }
    for (r, room) in rooms.iter().enumerate() {
        let mut listed = Vec::new();
        let mut path = format!("/api/v1/org/{org}/rooms/{room}/messages?limit=100");
        let mut count = None;
        loop {
            let page = call(Method::GET, path, clients[r].clone(), None, None).await;
            count = count.or(page.body["count"].as_u64());
            listed
                .extend(page.body["results"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()));
            match page.body["next"].as_str() {
                Some(next) => path = next.trim_start_matches(base).to_owned(),
                None => break,
            }
        }
        let unique: HashSet<String> = listed.iter().cloned().collect();
        assert_eq!(unique.len(), listed.len(), "room {r}: a message listed twice");
        assert_eq!(unique, expected[r], "room {r}: stored messages differ from sent ones");
        assert!(listed.windows(2).all(|w| w[0] > w[1]), "room {r}: not newest first");
        assert_eq!(count, Some(expected[r].len() as u64), "room {r}: count");
    }
    let server_errors = *server_errors.lock().unwrap();
    assert_eq!(server_errors, 0, "5xx answers");

    let messages: usize = expected.iter().map(HashSet::len).sum();
    println!(
        "{messages} messages from {CLIENTS} clients in {ROOMS} rooms in {:.1} s: {:.0} messages/s; 0 lost, 0 duplicated, 0 5xx\n",
        elapsed.as_secs_f64(),
        messages as f64 / elapsed.as_secs_f64()
    );
    println!("| route | requests | p50 ms | p99 ms |");
    println!("| --- | --- | --- | --- |");
    for (route, mut took) in std::mem::take(&mut *timings.0.lock().unwrap()) {
        took.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "| {route} | {} | {:.1} | {:.1} |",
            took.len(),
            ms(percentile(&took, 0.5)),
            ms(percentile(&took, 0.99))
        );
    }
}
