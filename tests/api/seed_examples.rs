//! A client written against the seeds sends their example bodies as shown: each is accepted. The
//! seeds' users are the callers; the org, room and message ids in the bodies are the seeds' own (the
//! path names ours, and wins).

use dm_tests::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

/// `body` with every string equal to a seed id replaced by the id it stands for here.
fn ours(mut body: Value, ids: &[(&str, &str)]) -> Value {
    match &mut body {
        Value::String(text) => {
            if let Some((_, to)) = ids.iter().find(|(from, _)| from == text) {
                *text = (*to).to_owned();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| *item = ours(item.take(), ids)),
        Value::Object(fields) => fields.values_mut().for_each(|value| *value = ours(value.take(), ids)),
        _ => {}
    }
    body
}

async fn sent(app: &TestApp, method: Method, path: &str, user: &str, body: Value) -> Value {
    let reply = app.call(method, path, Some(user), Some(body)).await;
    assert!(reply.status.is_success(), "{path}: {} {}", reply.status, reply.raw);
    reply.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_body_of_the_seeds_is_accepted() {
    let app = &spawn_app().await;
    let users = [
        "614e8de3f31a74e068e40qbr",
        "614e8de3f31d74e0w8e4d7fc",
        "61467e5fc00bcc41a5607b13",
        "61467e181ab13c00bcc15607",
        "61467e13c00bcc181a5607b1",
        "614e1606f31a74e068e4d2e2",
        "6155a0e9276be7f31a5a1eca",
    ];
    let org = app.org_with(users[0], &users[1..]).await;

    let create = json!({
        "org_id": "614e8de3f068e4d7fc31a74e",
        "room_user_ids": ["614e8de3f31a74e068e40qbr", "614e8de3f31d74e0w8e4d7fc"],
        "bookmarks": ["string"],
        "pinned": ["string"]
    });
    let pair = sent(app, Method::POST, &format!("/api/v1/org/{org}/room"), users[0], create).await;
    assert!(pair["room_id"].is_string(), "{pair}");

    let room = app.room(&org, users[0], &users[1..]).await;
    let base = format!("/api/v1/org/{org}/rooms/{room}");
    let message = json!({
      "sender_id": "61467e5fc00bcc41a5607b13",
      "room_id": "61467e13c00bcc181a5607b1",
      "message": "This is a test Example",
      "media": [],
      "read": false,
      "pinned": false,
      "saved_by": ["string"],
      "threads": [{
          "message_id": "string",
          "sender_id": "string",
          "message": "string",
          "media": [],
          "created_at": "2021-09-30T11:23:55.065Z"
      }],
      "reactions": [{
          "message_id": "string",
          "sender_id": "string",
          "data": "string",
          "category": "string",
          "aliases": ["string"],
          "count": 0,
          "created_at": "2021-09-30T11:23:55.065Z"
      }],
      "created_at": "2021-09-30T11:23:55.065Z"
    });
    let message = sent(app, Method::POST, &format!("{base}/messages"), users[2], message).await;
    let message_id = message["data"]["message_id"].as_str().or(message["message_id"].as_str()).unwrap().to_owned();
    let threads = format!("{base}/messages/{message_id}/threads");

    let reply = json!({
      "message_id": "6155a0e6be7f31a9275a1eca",
      "sender_id": "61467e181ab13c00bcc15607",
      "message": "Checking out the threads",
      "media": [],
      "created_at": "2021-09-30T15:41:45.685Z"
    });
    sent(app, Method::POST, &threads, users[3], reply.clone()).await;
    // The edit example's sender edits a reply of their own.
    let own = ours(reply, &[("61467e181ab13c00bcc15607", users[4])]);
    let own = sent(app, Method::POST, &threads, users[4], own).await;
    let reply_id = own["thread_id"].as_str().unwrap().to_owned();
    let edit = json!({
        "sender_id": "61467e13c00bcc181a5607b1",
        "message_id": "6155a0e7f365e1a927a1ecab",
        "message": "thread message edit"
    });
    let edited = sent(app, Method::PUT, &format!("{threads}/{reply_id}"), users[4], edit).await;
    assert_eq!(edited["data"]["message"], "thread message edit", "{edited}");

    let schedule = json!({
        "sender_id": "614e1606f31a74e068e4d2e2",
        "room_id": "611a744d24e16e068e06f3e2",
        "message": "tomorrow is independence day",
        "timer": "2021-09-30T22:18:57.476Z"
    });
    // The seed's timer is in its past; a client schedules into its future.
    let tomorrow = (time::OffsetDateTime::now_utc() + time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let schedule = ours(schedule, &[("2021-09-30T22:18:57.476Z", &tomorrow)]);
    sent(app, Method::POST, &format!("{base}/schedule-message"), users[5], schedule).await;

    let reaction = json!({
      "message_id": "6155a0e6be7f31a9275a1eca",
      "sender_id": "6155a0e9276be7f31a5a1eca",
      "data": "string",
      "category": "string",
      "aliases": ["string"],
      "count": 0,
      "created_at": "2021-09-30T18:59:48.088Z"
    });
    sent(app, Method::POST, &format!("{base}/messages/{message_id}/reactions"), users[6], reaction).await;

    let bookmark = json!({
      "link": "https://dm.zuri.chat/docs/v1/",
      "name": "dm plugin docs",
      "created_at": "2021-09-30T19:29:32.378Z"
    });
    let saved = sent(app, Method::POST, &format!("{base}/new-bookmark"), users[0], bookmark).await;
    assert_eq!(saved["name"], "dm plugin docs");

    // Rocket.Chat's `channels.invite` bodies, and Mudbase's remove-participant.
    let (newcomer, other, leaving) = ("nSYqWzZ4GsKTX4dyK", "SYqWzZ4Gsasdfgh", "usr_l6ZF362tQSr4nE");
    for user in [newcomer, other, leaving] {
        app.join(&org, users[0], user, "member").await;
    }
    let invite = json!({ "roomId": "ByehQjC44FwMeiLbX", "userId": "nSYqWzZ4GsKTX4dyK" });
    let invited = sent(app, Method::POST, &format!("{base}/members"), users[0], invite).await;
    assert_eq!(invited["added"], json!([newcomer]), "{invited}");
    let invite = json!({ "roomId": "ByehQjC44FwMeiLbX", "userIds": ["nSYqWzZ4GsKTX4dyK", "SYqWzZ4Gsasdfgh"] });
    let invited = sent(app, Method::POST, &format!("{base}/members"), users[0], invite).await;
    assert_eq!((&invited["added"], &invited["already_members"]), (&json!([other]), &json!([newcomer])), "{invited}");
    // Mudbase's example removes a participant of its own.
    sent(app, Method::POST, &format!("{base}/members"), users[0], json!({ "member_id": leaving })).await;
    let remove = json!({ "userId": "usr_l6ZF362tQSr4nE" });
    let removed = sent(app, Method::DELETE, &format!("{base}/participants"), users[0], remove).await;
    assert!(removed["message"].is_string(), "{removed}");
    let info = app.get(&format!("{base}/info"), users[0]).await;
    assert!(!info.body["room_user_ids"].as_array().unwrap().iter().any(|id| id == leaving), "{}", info.raw);
}
