use std::time::Duration;

use dm_tests::{TestApp, spawn_app, spawn_app_without_scheduler};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

async fn setup(app: &TestApp) -> (String, String) {
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    (org, room)
}

/// A timer `ms` from now, in milliseconds as the API's own times are.
fn in_ms(ms: i64) -> String {
    let at = OffsetDateTime::now_utc() + time::Duration::milliseconds(ms);
    at.replace_nanosecond(u32::from(at.millisecond()) * 1_000_000).unwrap().format(&Rfc3339).unwrap()
}

async fn schedule(app: &TestApp, org: &str, room: &str, text: &str, timer: &str) -> String {
    let path = format!("/api/v1/org/{org}/rooms/{room}/schedule-message");
    let reply = app.post(&path, "alice", json!({ "sender_id": "alice", "message": text, "timer": timer })).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    reply.str("schedule_id")
}

async fn messages(app: &TestApp, org: &str, room: &str) -> Vec<Value> {
    app.all_pages(&format!("/api/v1/org/{org}/rooms/{room}/messages?limit=100"), "bob", "results").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_scheduled_two_seconds_ahead_arrives_once() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let timer = in_ms(2_000);
    let due = OffsetDateTime::parse(&timer, &Rfc3339).unwrap();
    let path = format!("/api/v1/org/{org}/rooms/{room}/schedule-message");
    let reply = app
        .post(
            &path,
            "alice",
            json!({ "sender_id": "alice", "message": "Happy birthday https://cake.example.com", "timer": timer }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    assert_eq!(reply.body["message"], "Message Scheduled");
    assert_eq!(reply.body["timer"], timer.as_str());
    let pending = app.get(&format!("/api/v1/org/{org}/rooms/{room}/scheduled-messages"), "alice").await;
    assert_eq!(pending.body["count"], 1);
    assert_eq!(pending.body["results"][0]["schedule_id"], reply.body["schedule_id"]);
    // A loaded machine may take the two seconds to get here: only a read that
    // ended before the timer must have found nothing.
    let early = messages(app, &org, &room).await;
    if OffsetDateTime::now_utc() < due {
        assert!(early.is_empty(), "sent before its time: {early:?}");
    }

    let mut delivered = Vec::new();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        delivered = messages(app, &org, &room).await;
        if !delivered.is_empty() {
            break;
        }
    }
    assert_eq!(delivered.len(), 1, "delivered within 10 s");
    assert_eq!(delivered[0]["message"], "Happy birthday https://cake.example.com");
    assert_eq!(delivered[0]["sender_id"], "alice");
    let sent_at = OffsetDateTime::parse(delivered[0]["created_at"].as_str().unwrap(), &Rfc3339).unwrap();
    assert!(sent_at >= due, "sent at {sent_at}, due at {due}");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(messages(app, &org, &room).await.len(), 1, "sent once");
    app.settled().await;
    let search = app.get(&format!("/api/v1/org/{org}/users/bob/messages/search?keyword=birthday"), "bob").await;
    assert_eq!(search.body["count"], 1);
    let links = app.get(&format!("/api/v1/org/{org}/rooms/{room}/links"), "bob").await;
    assert_eq!(links.body["links"], json!(["https://cake.example.com"]));
    let pending = app.get(&format!("/api/v1/org/{org}/rooms/{room}/scheduled-messages"), "alice").await;
    assert_eq!(pending.body["count"], 0);
}

fn run(app: &TestApp) -> impl Future<Output = dm_shared::Result<dm_scheduler::Report>> {
    dm_scheduler::tick(&app.stack.state, dm_scheduler::LEASE, dm_scheduler::Limits::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_racing_over_a_hundred_due_messages_send_each_once() {
    let app = &spawn_app_without_scheduler().await;
    let (org, room) = setup(app).await;
    for i in 0..100 {
        app.scheduled(&org, &room, "alice", &format!("due {i}"), -100).await.unwrap();
    }
    // Budgets wide enough for both runs to finish: this is about sending each once, not about time.
    let limits = dm_scheduler::Limits { budget: Duration::from_secs(600), ..Default::default() };
    let (a, b) = tokio::join!(
        dm_scheduler::tick(&app.stack.state, dm_scheduler::LEASE, limits),
        dm_scheduler::tick(&app.stack.state, dm_scheduler::LEASE, limits)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sent + b.sent, 100, "{a:?} {b:?}");
    let sent = messages(app, &org, &room).await;
    assert_eq!(sent.len(), 100);
    let mut texts: Vec<&str> = sent.iter().map(|m| m["message"].as_str().unwrap()).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 100);
    assert_eq!(run(app).await.unwrap().sent, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_whose_run_died_is_sent_by_a_later_run_once() {
    let app = &spawn_app_without_scheduler().await;
    let (org, room) = setup(app).await;
    app.scheduled(&org, &room, "alice", "survives a crash", -100).await.unwrap();
    // A run that claims for three seconds and dies before sending: mimicked by claiming only (long
    // enough that the next run comes within it even on a loaded machine).
    let store = &app.stack.state.store;
    let now = dm_shared::time::now_ms();
    let (buckets, _) = store.due_buckets(now.div_euclid(60_000), None, 10).await.unwrap();
    assert_eq!(buckets.len(), 1);
    let (items, _) = store.bucket_page(&buckets[0], None, 10).await.unwrap();
    assert!(store.claim_scheduled(&items[0], now, now + 3_000).await.unwrap());

    assert_eq!(run(app).await.unwrap().sent, 0, "the claim still holds");
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    assert_eq!(run(app).await.unwrap().sent, 1);
    assert_eq!(run(app).await.unwrap().sent, 0);
    assert_eq!(messages(app, &org, &room).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_messages_list_in_pages_soonest_first() {
    let app = &spawn_app_without_scheduler().await;
    let (org, room) = setup(app).await;
    let mut ids = Vec::new();
    for minutes in [50, 10, 40, 20, 30, 60, 70] {
        ids.push((minutes, schedule(app, &org, &room, &format!("in {minutes}"), &in_ms(minutes * 60_000)).await));
    }
    ids.sort();
    let expected: Vec<String> = ids.into_iter().map(|(_, id)| id).collect();
    let path = format!("/api/v1/org/{org}/rooms/{room}/scheduled-messages?limit=3");
    let listed = app.all_pages(&path, "alice", "results").await;
    let got: Vec<String> = listed.iter().map(|s| s["schedule_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(got, expected);
    let second = app.get(&path, "alice").await.body["next"].as_str().unwrap().trim_start_matches(&app.base).to_owned();
    let page = app.get(&second, "alice").await;
    assert_eq!(page.body["count"], 3);
    assert!(page.body["previous"].is_string());
    assert!(
        app.get(&format!("/api/v1/org/{org}/rooms/{room}/scheduled-messages"), "bob").await.body["results"]
            .as_array()
            .unwrap()
            .is_empty(),
        "only the caller's own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_message_is_never_sent() {
    let app = &spawn_app_without_scheduler().await;
    let (org, room) = setup(app).await;
    let id = schedule(app, &org, &room, "never mind", &in_ms(1_000)).await;
    let keep = schedule(app, &org, &room, "still on", &in_ms(1_000)).await;
    let cancel = |user: &'static str, id: &str| {
        let path = format!("/api/v1/org/{org}/rooms/{room}/scheduled-messages/{id}");
        async move { app.call(Method::DELETE, &path, Some(user), None).await }
    };
    assert_eq!(cancel("bob", &id).await.status, StatusCode::NOT_FOUND, "only its sender");
    let cancelled = cancel("alice", &id).await;
    assert_eq!(cancelled.status, StatusCode::NO_CONTENT);
    assert!(cancelled.raw.is_empty());
    assert_eq!(cancel("alice", &id).await.status, StatusCode::NOT_FOUND);

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(run(app).await.unwrap().sent, 1);
    let sent = messages(app, &org, &room).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["message"], "still on");
    assert_eq!(cancel("alice", &keep).await.status, StatusCode::NOT_FOUND, "already sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_is_checked() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/schedule-message");
    let cases = [
        ("alice", json!({ "sender_id": "alice", "message": "x", "timer": in_ms(-60_000) }), StatusCode::BAD_REQUEST),
        ("alice", json!({ "sender_id": "alice", "message": "x", "timer": "tomorrow" }), StatusCode::BAD_REQUEST),
        (
            "alice",
            json!({ "sender_id": "alice", "message": "x", "timer": in_ms(121 * 24 * 3_600_000) }),
            StatusCode::BAD_REQUEST,
        ),
        ("alice", json!({ "sender_id": "alice", "message": "x" }), StatusCode::BAD_REQUEST),
        ("alice", json!({ "sender_id": "alice", "message": " ", "timer": in_ms(60_000) }), StatusCode::BAD_REQUEST),
        ("alice", json!({ "sender_id": "bob", "message": "x", "timer": in_ms(60_000) }), StatusCode::FORBIDDEN),
        ("carol", json!({ "sender_id": "carol", "message": "x", "timer": in_ms(60_000) }), StatusCode::FORBIDDEN),
    ];
    for (user, body, status) in cases {
        let reply = app.post(&path, user, body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.raw);
    }
    let far = app
        .post(&path, "alice", json!({ "sender_id": "alice", "message": "x", "timer": in_ms(119 * 24 * 3_600_000) }))
        .await;
    assert_eq!(far.status, StatusCode::CREATED);
}
