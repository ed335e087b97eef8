//! The scheduler under floods: a test binary of its own, so their thousands of writes run after the
//! other integration tests instead of slowing them down on the shared DynamoDB Local.

use std::time::Duration;

use dm_tests::spawn_app_without_scheduler;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The floods run one at a time: each measures what the shared DynamoDB Local does under its own load.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn in_ms(ms: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::milliseconds(ms)).format(&Rfc3339).unwrap()
}

/// 2,000 messages due in one minute: 1,999 from two senders of one org, one from another org. Runs
/// that each stop after their budget deliver all of them, each once, and the other org's message
/// goes out in the first run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_two_thousand_is_delivered_once_and_delays_no_one_else() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let app = &spawn_app_without_scheduler().await;
    let others: Vec<String> = (0..10).map(|i| format!("x{i}")).collect();
    let mut names: Vec<&str> = others.iter().map(String::as_str).collect();
    names.extend(["a1", "a2"]);
    let flood_org = app.org_with("owner", &names).await;
    let mut flood_rooms = Vec::new();
    for sender in ["a1", "a2"] {
        for other in &others {
            flood_rooms.push((sender, app.room(&flood_org, sender, &[other]).await));
        }
    }
    let quiet_org = app.org_with("b1", &["b2"]).await;
    let quiet_room = app.room(&quiet_org, "b1", &["b2"]).await;

    // Each sender's messages one after another, as one client would queue them (a sender's count is
    // one item: concurrent schedules of one sender only contend for it).
    let flood = |sender: &'static str, take: usize| {
        let rooms: Vec<&String> = flood_rooms.iter().filter(|(s, _)| *s == sender).map(|(_, room)| room).collect();
        let org = flood_org.clone();
        async move {
            let mut stored = Vec::new();
            for (n, room) in rooms.iter().flat_map(|room| std::iter::repeat_n(*room, 100)).take(take).enumerate() {
                stored.push(app.scheduled(&org, room, sender, &format!("{sender} {room} {n}"), -1_000).await);
            }
            stored
        }
    };
    let (first, second) = tokio::join!(flood("a1", 1_000), flood("a2", 999));
    let stored: Vec<_> = first.into_iter().chain(second).collect();
    assert!(stored.iter().all(Result::is_ok));
    app.scheduled(&quiet_org, &quiet_room, "b1", "not stuck behind a flood", -1_000).await.unwrap();

    // A short lease, so an item whose send failed under load is claimed again soon.
    let (lease, limits) =
        (Duration::from_secs(2), dm_scheduler::Limits { budget: Duration::from_millis(300), ..Default::default() });
    let mut runs = Vec::new();
    while runs.iter().map(|r: &dm_scheduler::Report| r.sent).sum::<usize>() < 2_000 {
        let report = dm_scheduler::tick(&app.stack.state, lease, limits).await.unwrap();
        if runs.is_empty() {
            let quiet = app.get(&format!("/api/v1/org/{quiet_org}/rooms/{quiet_room}/messages"), "b2").await;
            let listed = quiet.body["results"].as_array().map(Vec::len);
            assert_eq!(listed, Some(1), "the other org's message went out in the first run");
        }
        if !report.unfinished {
            tokio::time::sleep(lease).await;
        }
        runs.push(report);
        assert!(runs.len() < 300, "runs keep making progress");
    }
    assert!(runs.len() > 1, "the budget split the work over several runs");
    assert_eq!(runs.iter().map(|r| r.sent).sum::<usize>(), 2_000);
    assert_eq!(runs.iter().map(|r| r.dropped).sum::<usize>(), 0);
    let mut texts = std::collections::HashSet::new();
    for (sender, room) in &flood_rooms {
        let sent =
            app.all_pages(&format!("/api/v1/org/{flood_org}/rooms/{room}/messages?limit=100"), sender, "results").await;
        for message in sent {
            assert!(texts.insert(message["message"].as_str().unwrap().to_owned()), "sent twice: {message}");
        }
    }
    assert_eq!(texts.len(), 1_999);
    assert_eq!(dm_scheduler::tick(&app.stack.state, lease, limits).await.unwrap().sent, 0);
}

/// One sender may have 100 messages waiting in a room and 1,000 in all: a flood is refused before it
/// is stored, and a cancel or a send makes room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_cannot_queue_more_than_the_caps() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let app = &spawn_app_without_scheduler().await;
    let others: Vec<String> = (0..10).map(|i| format!("x{i}")).collect();
    let names: Vec<&str> = others.iter().map(String::as_str).collect();
    let org = app.org_with("alice", &names).await;
    let mut rooms = Vec::new();
    for other in &names {
        rooms.push(app.room(&org, "alice", &[other]).await);
    }
    let path = format!("/api/v1/org/{org}/rooms/{}/schedule-message", rooms[0]);
    let body = || json!({ "sender_id": "alice", "message": "later", "timer": in_ms(3_600_000) });
    for _ in 0..100 {
        assert_eq!(app.post(&path, "alice", body()).await.status, StatusCode::CREATED);
    }
    let refused = app.post(&path, "alice", body()).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.str("message").contains("100 scheduled messages"), "{}", refused.raw);

    let list = format!("/api/v1/org/{org}/rooms/{}/scheduled-messages?limit=1", rooms[0]);
    let first = app.get(&list, "alice").await.body["results"][0]["schedule_id"].as_str().unwrap().to_owned();
    let cancel = format!("/api/v1/org/{org}/rooms/{}/scheduled-messages/{first}", rooms[0]);
    assert_eq!(app.call(Method::DELETE, &cancel, Some("alice"), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.post(&path, "alice", body()).await.status, StatusCode::CREATED, "a cancel makes room");

    // 900 more across the other rooms, then the thousandth-and-first anywhere is refused.
    let fill = rooms[1..].iter().flat_map(|room| (0..100).map(move |_| room.clone()));
    let filled: Vec<_> = futures_util::stream::iter(fill)
        .map(|room| {
            let org = org.clone();
            async move { app.scheduled(&org, &room, "alice", "later", 3_600_000).await }
        })
        // Few at once: they all count against one sender's count, an item each transaction updates.
        .buffer_unordered(2)
        .collect()
        .await;
    assert!(filled.iter().all(Result::is_ok));
    let other = app.room(&org, "alice", &["x0", "x1"]).await;
    let refused = app.post(&format!("/api/v1/org/{org}/rooms/{other}/schedule-message"), "alice", body()).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.str("message").contains("1000 scheduled messages"), "{}", refused.raw);
}
