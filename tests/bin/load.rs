//! `dm-load` (`make load`): the send path under load, beside the ceiling of what it runs on.
//!
//! 1. DynamoDB Local's own rates, from a few concurrent clients on a table of their own: single
//!    `PutItem`s a second and 4-item `TransactWriteItems` a second.
//! 2. 20 senders (2 a room), then 50 senders (5 a room), in 10 rooms send 5,000 messages each time,
//!    each with an `Idempotency-Key` (one in ten sent again as a retry), while a reader a room pages
//!    the room (three pages a second) and a watcher a room polls another member's inbox every
//!    100 ms. Reports sends a second,
//!    send latency, and projection lag: from a send's 201 to the watcher's inbox showing it (or a
//!    later message) as the room's last message.
//!    With `--rate R` the senders together offer R sends a second, evenly (each paced to its share,
//!    their starts spread over one interval), instead of sending as fast as they are answered: the lag then says how long a message waits below the
//!    ceiling rather than how long a saturated backlog grows. `--watch-ms` sets how often the
//!    watchers read (100 ms by default; ten watchers at 100 ms are themselves a load).
//! 3. Then every room must hold exactly its messages, each once, newest first; once projected, its
//!    count and every member's unread count must be exact (up to its cap); and no request may have seen a 5xx.
//!
//! Runs its own stack as `make dev` runs it (DynamoDB Local persisting to disk, the stream read into
//! the projector and the realtime push), in a scratch folder.
//!
//! ```text
//! cargo run --release -p dm-tests --bin dm-load [-- --messages N] [--rate R] [--watch-ms MS]
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use dm_local::{Options, Stack};
use dm_shared::store::UNREAD_CAP;
use dm_tests::{Reply, read, token};
use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

const ROOMS: usize = 10;
/// Clients measuring DynamoDB Local's own rates.
const CEILING_CLIENTS: usize = 8;
const CEILING_FOR: Duration = Duration::from_secs(5);
/// How often a watcher reads the inbox by default (`--watch-ms` to change): ten watchers at 100 ms
/// are 100 inbox reads a second, as much as DynamoDB Local's own PutItem rate.
const WATCH_EVERY_MS: u64 = 100;
/// A reader's pause between walks through the newest pages, as a client scrolls.
const READ_EVERY: Duration = Duration::from_secs(1);

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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The API as a client calls it.
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn call(&self, method: Method, path: &str, user: &str, body: Option<Value>, key: Option<&str>) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token(user));
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        read(request.send().await.expect("the API answers")).await
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let total: usize = arg("--messages").map_or(5_000, |n| n.parse().expect("--messages takes a number"));
    let rate: Option<f64> = arg("--rate").map(|r| r.parse().expect("--rate takes sends a second"));
    let watch_every = Duration::from_millis(
        arg("--watch-ms").map_or(WATCH_EVERY_MS, |ms| ms.parse().expect("--watch-ms takes milliseconds")),
    );
    let load = Load { rate, watch_every };

    let scratch = std::env::temp_dir().join(format!("dm-load-{}", ulid::Ulid::new()));
    let options = Options {
        data_dir: Some(scratch.clone()),
        dynamodb_endpoint: None,
        scheduler: false,
        rate_limit: 0,
        ..Options::from_env()
    };
    let stack = Stack::start(options).await.expect("the local stack starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(stack.serve_owned(listener).expect("a bound listener"));

    let (puts, transactions) = ceiling(&stack).await;
    println!(
        "DynamoDB Local, {CEILING_CLIENTS} clients: {puts:.0} PutItem/s, {transactions:.0} 4-item TransactWriteItems/s\n"
    );
    let client = Client { http: reqwest::Client::new(), base };
    for per_room in [2, 5] {
        let sends = run(&client, &stack, per_room, total, &load).await;
        println!(
            "sends/s at {} senders: {:.2} of PutItem/s, {:.2} of 4-item transactions/s\n",
            per_room * ROOMS,
            sends / puts,
            sends / transactions
        );
    }
    drop(stack);
    let _ = std::fs::remove_dir_all(scratch);
}

/// Requests a second `CEILING_CLIENTS` clients complete in `CEILING_FOR`, each making requests with
/// `request` one after another.
async fn rate<F, Fut>(request: F) -> f64
where
    F: Fn(usize, usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let started = Instant::now();
    let done = join_all((0..CEILING_CLIENTS).map(|client| {
        let request = &request;
        async move {
            let mut n = 0;
            while started.elapsed() < CEILING_FOR {
                request(client, n).await;
                n += 1;
            }
            n
        }
    }))
    .await;
    done.iter().sum::<usize>() as f64 / started.elapsed().as_secs_f64()
}

/// DynamoDB Local's own rates on a table of their own: items the size of a short message.
async fn ceiling(stack: &Stack) -> (f64, f64) {
    let dynamodb = stack.state.store.client().clone();
    let table = format!("ceiling-{}", ulid::Ulid::new());
    dm_shared::store::create_table(&dynamodb, &table).await.expect("a table for the ceiling");
    let item = |client: usize, n: usize, part: usize| -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("PK".into(), AttributeValue::S(format!("ROOM#{client}"))),
            ("SK".into(), AttributeValue::S(format!("MSG#{n:08}#{part}"))),
            ("message".into(), AttributeValue::S("a message of about ten words, as a chat sends it".into())),
        ])
    };
    let puts = rate(|client, n| {
        let request = dynamodb.put_item().table_name(&table).set_item(Some(item(client, n, 0)));
        async move {
            request.send().await.expect("PutItem");
        }
    })
    .await;
    let transactions = rate(|client, n| {
        let items = (0..4).map(|part| {
            let put = Put::builder().table_name(&table).set_item(Some(item(client, n, part + 1))).build();
            TransactWriteItem::builder().put(put.expect("a put")).build()
        });
        let request = dynamodb.transact_write_items().set_transact_items(Some(items.collect()));
        async move {
            request.send().await.expect("TransactWriteItems");
        }
    })
    .await;
    (puts, transactions)
}

/// How a load is offered and watched.
struct Load {
    /// Sends a second from all senders together; `None`: each sends as fast as it is answered.
    rate: Option<f64>,
    /// How often each watcher reads the inbox.
    watch_every: Duration,
}

/// One load: `per_room` senders in each of `ROOMS` rooms send `total` messages; returns sends/s.
async fn run(client: &Client, stack: &Stack, per_room: usize, total: usize, load: &Load) -> f64 {
    let senders_count = per_room * ROOMS;
    // Each sender's n-th send starts no sooner than `n` of its intervals after its start, and the
    // senders start their share of an interval apart: together they send evenly, not all at once.
    let interval = load.rate.map(|rate| Duration::from_secs_f64(senders_count as f64 / rate));
    let per_sender = total / senders_count;
    let org =
        client.call(Method::POST, "/api/v1/orgs", "owner", Some(json!({ "name": "Load" })), None).await.str("org_id");
    let run_id = ulid::Ulid::new().to_string().to_lowercase();
    // Each room: its senders, and one member who only reads and watches.
    let members: Vec<Vec<String>> =
        (0..ROOMS).map(|r| (0..=per_room).map(|s| format!("c{run_id}-{r}-{s}")).collect()).collect();
    for user in members.iter().flatten() {
        let body = json!({ "member_id": user, "email": format!("{user}@example.com") });
        client.call(Method::POST, &format!("/api/v1/org/{org}/members"), "owner", Some(body), None).await;
    }
    let mut rooms = Vec::new();
    for room_members in &members {
        let body = json!({ "room_user_ids": room_members });
        let path = format!("/api/v1/org/{org}/room");
        rooms.push(client.call(Method::POST, &path, &room_members[0], Some(body), None).await.str("room_id"));
    }

    let (used_before, stream_before) = (stack.state.store.usage(), stack.stream_work());
    let timings = Timings::default();
    let server_errors = Mutex::new(0usize);
    // Sends the watchers wait to see: (room, message id, when the 201 came).
    let unseen: Mutex<Vec<(usize, String, Instant)>> = Mutex::default();
    let lags: Mutex<Vec<Duration>> = Mutex::default();
    let done = std::sync::atomic::AtomicBool::new(false);
    let sent_count = std::sync::atomic::AtomicUsize::new(0);
    let is_done = || done.load(std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();

    let senders = (0..ROOMS).flat_map(|r| (0..per_room).map(move |s| (r, s))).map(|(r, s)| {
        let (sender, room, org) = (&members[r][s], &rooms[r], &org);
        let own_start = interval.map(|interval| interval * (s * ROOMS + r) as u32 / senders_count as u32);
        let (timings, server_errors, unseen, sent_count) = (&timings, &server_errors, &unseen, &sent_count);
        async move {
            let path = format!("/api/v1/org/{org}/rooms/{room}/messages");
            let mut sent = Vec::new();
            for n in 0..per_sender {
                if let (Some(interval), Some(own_start)) = (interval, own_start) {
                    tokio::time::sleep_until((started + own_start + interval * n as u32).into()).await;
                }
                let key = format!("{sender}-{n}");
                let body = json!({ "sender_id": sender, "message": format!("{sender} says {n}: about ten words, as a chat sends") });
                let t = Instant::now();
                let first = client.call(Method::POST, &path, sender, Some(body.clone()), Some(&key)).await;
                timings.record("POST messages", t.elapsed());
                if first.status.is_server_error() {
                    *server_errors.lock().unwrap() += 1;
                    continue;
                }
                let id = first.str("message_id");
                unseen.lock().unwrap().push((r, id.clone(), Instant::now()));
                let count = sent_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if count % 500 == 0 {
                    eprintln!("{count} sent in {:.0} s", started.elapsed().as_secs_f64());
                }
                if n % 10 == 3 {
                    let t = Instant::now();
                    let retry = client.call(Method::POST, &path, sender, Some(body), Some(&key)).await;
                    timings.record("POST messages (retry)", t.elapsed());
                    assert_eq!(retry.str("message_id"), id, "a retry got another message");
                }
                sent.push((sender.clone(), id));
            }
            (r, sent)
        }
    });
    let readers = rooms.iter().enumerate().map(|(r, room)| {
        let (org, reader, timings, server_errors, is_done) =
            (&org, &members[r][per_room], &timings, &server_errors, &is_done);
        async move {
            while !is_done() {
                let mut path = format!("/api/v1/org/{org}/rooms/{room}/messages?limit=50");
                for _ in 0..3 {
                    let t = Instant::now();
                    let page = client.call(Method::GET, &path, reader, None, None).await;
                    timings.record("GET messages (page)", t.elapsed());
                    if page.status.is_server_error() {
                        *server_errors.lock().unwrap() += 1;
                    }
                    match page.body["next"].as_str() {
                        Some(next) => path = next.trim_start_matches(&client.base).to_owned(),
                        None => break,
                    }
                }
                tokio::time::sleep(READ_EVERY).await;
            }
        }
    });
    let watchers = (0..ROOMS).map(|r| {
        let (org, watcher, unseen, lags) = (&org, &members[r][per_room], &unseen, &lags);
        async move {
            let path = format!("/api/v1/org/{org}/users/{watcher}/rooms");
            loop {
                let inbox = client.call(Method::GET, &path, watcher, None, None).await;
                let seen = inbox.body["results"][0]["last_message"]["message_id"].as_str().map(str::to_owned);
                let now = Instant::now();
                let waiting = {
                    let mut unseen = unseen.lock().unwrap();
                    unseen.retain(|(room, id, at)| {
                        let shown = *room == r && seen.as_ref().is_some_and(|seen| id <= seen);
                        if shown {
                            lags.lock().unwrap().push(now - *at);
                        }
                        !shown
                    });
                    unseen.iter().any(|(room, _, _)| *room == r)
                };
                if is_done() && !waiting {
                    break;
                }
                tokio::time::sleep(load.watch_every).await;
            }
        }
    });
    let sending = async {
        let sent = join_all(senders).await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (sent, started.elapsed())
    };
    let ((sent, elapsed), _, _) = tokio::join!(sending, join_all(readers), join_all(watchers));
    let projected_after = started.elapsed();

    // Every room holds exactly its sent messages, each once, newest first.
    let mut expected: Vec<Vec<(String, String)>> = vec![Vec::new(); ROOMS];
    for (room, ids) in sent {
        expected[room].extend(ids);
    }
    stack.settled().await.expect("the projector catches up");
    for (r, room) in rooms.iter().enumerate() {
        let mut listed = Vec::new();
        let mut count = None;
        let mut path = format!("/api/v1/org/{org}/rooms/{room}/messages?limit=100");
        loop {
            let page = client.call(Method::GET, &path, &members[r][0], None, None).await;
            count = count.or(page.body["count"].as_u64());
            listed
                .extend(page.body["results"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()));
            match page.body["next"].as_str() {
                Some(next) => path = next.trim_start_matches(&client.base).to_owned(),
                None => break,
            }
        }
        let unique: HashSet<String> = listed.iter().cloned().collect();
        let sent: HashSet<String> = expected[r].iter().map(|(_, id)| id.clone()).collect();
        assert_eq!(unique.len(), listed.len(), "room {r}: a message listed twice");
        assert_eq!(unique, sent, "room {r}: stored messages differ from sent ones");
        assert!(listed.windows(2).all(|w| w[0] > w[1]), "room {r}: not newest first");
        assert_eq!(count, Some(sent.len() as u64), "room {r}: count");
        // Each member has read up to their own newest message: what others sent after it is unread.
        for member in &members[r] {
            let own = expected[r].iter().filter(|(sender, _)| sender == member).map(|(_, id)| id).max();
            let unread = expected[r].iter().filter(|(sender, id)| sender != member && own.is_none_or(|own| id > own));
            let path = format!("/api/v1/org/{org}/users/{member}/rooms");
            let inbox = client.call(Method::GET, &path, member, None, None).await;
            // Exact up to the cap; past it, the cap and the flag that says so.
            let unread = unread.count() as u64;
            let shown = (&inbox.body["results"][0]["unread_count"], &inbox.body["results"][0]["unread_count_capped"]);
            let expected = (&json!(unread.min(UNREAD_CAP)), &json!(unread > UNREAD_CAP));
            assert_eq!(shown, expected, "room {r}: {member}'s unread count");
        }
    }
    assert_eq!(*server_errors.lock().unwrap(), 0, "5xx answers");
    let (used, stream) = (stack.state.store.usage().since(used_before), stack.stream_work());
    let (projector, push) = (stream.projector.since(stream_before.projector), stream.push.since(stream_before.push));
    let notifier = stream.notifier.since(stream_before.notifier);

    let messages: usize = expected.iter().map(Vec::len).sum();
    let sends = messages as f64 / elapsed.as_secs_f64();
    println!(
        "{senders_count} senders ({per_room} a room) in {ROOMS} rooms: {messages} messages in {:.1} s, {sends:.0} sends/s; \
         the last shown in the inbox {:.1} s after the first send; 0 lost, 0 duplicated, counts and unread exact, 0 5xx\n",
        elapsed.as_secs_f64(),
        projected_after.as_secs_f64(),
    );
    let per_message = |usage: dm_shared::store::Usage| usage.calls as f64 / messages as f64;
    println!(
        "DynamoDB requests a message: {:.1} in all; the projector {:.1}, the push {:.1}, the notifier {:.1}, the API \
         {:.1} (sends, retries, readers, watchers, and the checks above)\n",
        per_message(used),
        per_message(projector),
        per_message(push),
        per_message(notifier),
        per_message(used.since(projector).since(push).since(notifier)),
    );
    println!("| {senders_count} senders | requests | p50 ms | p99 ms |");
    println!("| --- | --- | --- | --- |");
    let mut rows = std::mem::take(&mut *timings.0.lock().unwrap());
    rows.insert("projection lag", std::mem::take(&mut *lags.lock().unwrap()));
    for (route, mut took) in rows {
        took.sort();
        println!(
            "| {route} | {} | {:.1} | {:.1} |",
            took.len(),
            ms(percentile(&took, 0.5)),
            ms(percentile(&took, 0.99))
        );
    }
    println!();
    sends
}
