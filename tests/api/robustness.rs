use std::time::{Duration, Instant};

use dm_local::dynamodb::{DynamoDbLocal, free_port};
use dm_tests::spawn_with;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_the_local_rate_limit_gets_429_with_retry_after() {
    let app = spawn_with(|options| options.rate_limit = 5).await;
    let mut statuses = Vec::new();
    let started = Instant::now();
    for _ in 0..12 {
        let response = app.raw(Method::GET, "/api/v1/ping").send().await.unwrap();
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(response.headers()["retry-after"], "1");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["status"], 429);
        }
        statuses.push(status);
    }
    // Five at once, and the bucket refills at five a second while the requests take their time.
    let allowed = 5 + (started.elapsed().as_secs_f64() * 5.0).floor() as usize;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!((5..=allowed).contains(&ok), "{statuses:?}");
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS));
    // Another caller has its own bucket.
    assert_eq!(app.call(Method::GET, "/api/v1/ping", Some("someone"), None).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.raw(Method::GET, "/api/v1/ping").send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_stops_answering_is_503_and_every_route_recovers_when_it_is_back() {
    let dir = std::env::temp_dir().join(format!("dm-outage-{}", ulid::Ulid::new()));
    let port = free_port().unwrap();
    let local = DynamoDbLocal::start_on(port, Some(&dir)).unwrap();
    let endpoint = local.endpoint().to_owned();
    let app = spawn_with(|options| {
        options.dynamodb_endpoint = Some(endpoint);
        options.scheduler = false;
    })
    .await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    app.send(&org, &room, "alice", "before the outage").await;

    drop(local);
    let checks = [
        (Method::GET, "/api/v1/ping".to_owned(), None),
        (Method::GET, format!("/api/v1/org/{org}/rooms/{room}/messages"), None),
        (
            Method::POST,
            format!("/api/v1/org/{org}/rooms/{room}/messages"),
            Some(json!({ "sender_id": "alice", "message": "lost?" })),
        ),
        (Method::POST, format!("/api/v1/org/{org}/room"), Some(json!({ "room_user_ids": ["bob"] }))),
    ];
    for (method, path, body) in &checks {
        let started = Instant::now();
        let reply = app.call(method.clone(), path, Some("alice"), body.clone()).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{method} {path}: {}", reply.raw);
        assert!(started.elapsed() < Duration::from_secs(8), "{method} {path} hung for {:?}", started.elapsed());
    }
    let ping = app.call(Method::GET, "/api/v1/ping", None, None).await;
    assert_eq!(ping.body, json!({ "status": 503, "server": false }));
    let send = app
        .post(
            &format!("/api/v1/org/{org}/rooms/{room}/messages"),
            "alice",
            json!({ "sender_id": "alice", "message": "x" }),
        )
        .await;
    assert_eq!(send.body, json!({ "status": 503, "message": "Service unavailable" }));

    let _local = DynamoDbLocal::start_on(port, Some(&dir)).unwrap();
    assert_eq!(app.call(Method::GET, "/api/v1/ping", None, None).await.status, StatusCode::OK);
    app.send(&org, &room, "alice", "after the outage").await;
    let list = app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "bob").await;
    let texts: Vec<&str> =
        list.body["results"].as_array().unwrap().iter().map(|m| m["message"].as_str().unwrap()).collect();
    assert_eq!(texts, ["after the outage", "before the outage"], "nothing lost, nothing half-written");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_counts_its_own_dynamodb_calls_while_others_run() {
    let app = dm_tests::spawn_app().await;
    let store = app.stack.state.store.clone();
    let one = dm_shared::store::measured(async { store.ping().await });
    let three = dm_shared::store::measured(async {
        for _ in 0..3 {
            store.ping().await?;
        }
        Ok::<_, dm_shared::Error>(())
    });
    let ((first, one), (second, three)) = tokio::join!(one, three);
    first.unwrap();
    second.unwrap();
    assert_eq!((one.calls, three.calls), (1, 3));
    assert!(three.capacity_units >= one.capacity_units, "{one:?} {three:?}");
}
