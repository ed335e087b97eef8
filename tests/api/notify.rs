//! Web Push to members who are away, against a push service that speaks the protocol (it checks
//! each push's VAPID signature and audience and decrypts its payload with the device's key): who is
//! told of what their settings say, once a device, and what a push service answers is honoured.

use aws_sdk_dynamodb::types::AttributeValue;
use dm_tests::push_service::{Answer, PushService, Received};
use dm_tests::{TestApp, send_frame, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The stack's push service, whose pushes are signed with the stack's VAPID key.
async fn push_service(app: &TestApp) -> PushService {
    let key = app.get("/api/v1/push/vapid-public-key", "anyone").await;
    PushService::start(&key.str("public_key")).await
}

/// A new device of `user`'s, subscribed: its name at the push service.
async fn device(app: &TestApp, service: &PushService, org: &str, user: &str, answer: Answer) -> String {
    let (name, subscription) = service.subscribe(answer);
    let path = format!("/api/v1/org/{org}/users/{user}/push-subscriptions");
    let made = app.post(&path, user, subscription).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.raw);
    name
}

async fn settings(app: &TestApp, org: &str, user: &str, settings: Value) {
    let path = format!("/api/v1/org/{org}/members/{user}/profile");
    let changed = app.call(Method::PATCH, &path, Some(user), Some(settings)).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.raw);
}

async fn send(app: &TestApp, org: &str, room: &str, text: &str, mentions: &[&str]) -> String {
    let body = json!({ "sender_id": "alice", "message": text, "mentions": mentions });
    let sent = app.post(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "alice", body).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.raw);
    sent.str("message_id")
}

fn only(received: Vec<Received>) -> Received {
    assert_eq!(received.len(), 1, "{received:?}");
    received.into_iter().next().expect("one push")
}

/// A message reaches every away member whose settings want it, on each device, once: a mention
/// urgently with its text, a plain message normally, its text only where previews are allowed; a
/// member set to mentions hears of a plain message only once an edit names them; the sender hears
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reaches_away_members_as_their_settings_say_once_a_device() {
    let app = spawn_app().await;
    let service = push_service(&app).await;
    let org = app.org_with("alice", &["bob", "carol", "dave"]).await;
    let profile = format!("/api/v1/org/{org}/members/alice/profile");
    let named = json!({ "display_name": "Alice Liddell" });
    assert_eq!(app.call(Method::PATCH, &profile, Some("alice"), Some(named)).await.status, StatusCode::OK);
    let room = app.room(&org, "alice", &["bob", "carol", "dave"]).await;
    let alice = device(&app, &service, &org, "alice", Answer::Accept).await;
    let bob_phone = device(&app, &service, &org, "bob", Answer::Accept).await;
    let bob_laptop = device(&app, &service, &org, "bob", Answer::Accept).await;
    let carol = device(&app, &service, &org, "carol", Answer::Accept).await;
    settings(
        &app,
        &org,
        "carol",
        json!({ "settings": { "notifications": { "message_preview_in_each_notification": false } } }),
    )
    .await;
    let dave = device(&app, &service, &org, "dave", Answer::Accept).await;
    settings(&app, &org, "dave", json!({ "settings": { "notifications": { "notify_me_about": "mentions" } } })).await;

    let message = send(&app, &org, &room, "@bob the deploy is done", &["bob"]).await;
    app.settled().await;
    assert!(service.faults().is_empty(), "{:?}", service.faults());
    for phone in [&bob_phone, &bob_laptop] {
        let push = only(service.received(phone));
        assert_eq!((push.urgency.as_str(), push.ttl > 0), ("high", true));
        let payload = &push.payload;
        assert_eq!(
            (payload["org_id"].as_str(), payload["room_id"].as_str()),
            (Some(org.as_str()), Some(room.as_str()))
        );
        assert_eq!(payload["message_id"], message.as_str());
        assert_eq!(payload["sender_name"], "Alice Liddell");
        assert_eq!(payload["title"], "Alice Liddell mentioned you");
        assert_eq!(payload["body"], "@bob the deploy is done");
        assert!(payload["url"].as_str().is_some_and(|url| url.ends_with(&format!("#room={org}/{room}"))), "{payload}");
    }
    let push = only(service.received(&carol));
    assert_eq!((push.urgency.as_str(), &push.payload["body"]), ("normal", &json!("New message")), "no preview");
    assert!(service.received(&dave).is_empty(), "mentions only");
    assert!(service.received(&alice).is_empty(), "the sender");

    let edited =
        json!({ "sender_id": "alice", "message": "@bob @dave the deploy is done", "mentions": ["bob", "dave"] });
    let path = format!("/api/v1/org/{org}/rooms/{room}/messages/{message}");
    assert_eq!(app.call(Method::PUT, &path, Some("alice"), Some(edited)).await.status, StatusCode::OK);
    app.settled().await;
    let push = only(service.received(&dave));
    assert_eq!((push.urgency.as_str(), &push.payload["title"]), ("high", &json!("Alice Liddell mentioned you")));
    assert_eq!(service.received(&bob_phone).len(), 1, "named before the edit: not told again");
}

/// Nobody is pushed who sees the message already or asked for quiet: a member with a client in
/// front of them, one whose room is muted, one in their do-not-disturb window, one set to nothing.
/// A client hidden for two minutes no longer counts as watching, until it says it is active again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_for_the_online_the_muted_the_quiet_or_those_set_to_nothing() {
    let app = spawn_app().await;
    let service = push_service(&app).await;
    let users = ["bob", "carol", "dave", "erin", "frank"];
    let org = app.org_with("alice", &users).await;
    let room = app.room(&org, "alice", &users).await;
    let mut devices = std::collections::HashMap::new();
    for user in users {
        devices.insert(user, device(&app, &service, &org, user, Answer::Accept).await);
    }
    let mut bob_socket = app.socket("bob", &org).await.expect("bob connects");
    send_frame(&mut bob_socket, json!({ "action": "ping", "state": "active" })).await;
    dm_tests::expect_event(&mut bob_socket, "pong").await;
    let mute = json!({ "level": "default", "muted_until": "2999-01-01T00:00:00Z" });
    let path = format!("/api/v1/org/{org}/rooms/{room}/notifications");
    assert_eq!(app.call(Method::PUT, &path, Some("carol"), Some(mute)).await.status, StatusCode::OK);
    // A window around now, in dave's zone.
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::get("America/New_York").expect("a zone"));
    let window = json!({
        "start": (&now - jiff::SignedDuration::from_mins(60)).strftime("%H:%M").to_string(),
        "end": (&now + jiff::SignedDuration::from_mins(60)).strftime("%H:%M").to_string(),
    });
    let quiet = json!({ "time_zone": "America/New_York", "settings": { "notifications": { "notification_schedule": window } } });
    settings(&app, &org, "dave", quiet).await;
    settings(&app, &org, "erin", json!({ "settings": { "notifications": { "notify_me_about": "nothing" } } })).await;

    send(&app, &org, &room, "@bob @carol @dave @erin @frank look", &users).await;
    app.settled().await;
    assert!(service.faults().is_empty(), "{:?}", service.faults());
    only(service.received(&devices["frank"]));
    for user in ["bob", "carol", "dave", "erin"] {
        assert!(service.received(&devices[user]).is_empty(), "{user}");
    }

    // Bob's tab goes to the background: for two minutes he still counts as watching.
    send_frame(&mut bob_socket, json!({ "action": "ping", "state": "hidden" })).await;
    dm_tests::expect_event(&mut bob_socket, "pong").await;
    send(&app, &org, &room, "@bob just now", &["bob"]).await;
    app.settled().await;
    assert_eq!(service.received(&devices["frank"]).len(), 2, "the message was told of");
    assert!(service.received(&devices["bob"]).is_empty(), "hidden for less than two minutes");
    let store = &app.stack.state.store;
    let (pk, sk) = (AttributeValue::S(format!("ORG#{org}#USER#bob#CONNECTIONS")), AttributeValue::S("PRESENCE".into()));
    let read = store.client().get_item().table_name(store.table()).key("PK", pk.clone()).key("SK", sk.clone());
    let item = read.send().await.expect("the presence item").item.expect("bob is present");
    let away = item.keys().find(|name| name.starts_with("away#")).expect("hidden since the ping").clone();
    let since = dm_shared::time::epoch_secs() - dm_shared::store::AWAY_AFTER_SECS - 1;
    let update = store.client().update_item().table_name(store.table()).key("PK", pk).key("SK", sk);
    let update = update.update_expression("SET #away = :since").expression_attribute_names("#away", away);
    update.expression_attribute_values(":since", AttributeValue::N(since.to_string())).send().await.expect("moved");
    // Still hidden: a ping saying so again keeps when it began.
    send_frame(&mut bob_socket, json!({ "action": "ping", "state": "hidden" })).await;
    dm_tests::expect_event(&mut bob_socket, "pong").await;
    send(&app, &org, &room, "@bob still there?", &["bob"]).await;
    app.settled().await;
    assert_eq!(only(service.received(&devices["bob"])).payload["body"], "@bob still there?");
    // Back in front of it: nothing more is pushed.
    send_frame(&mut bob_socket, json!({ "action": "ping", "state": "active" })).await;
    dm_tests::expect_event(&mut bob_socket, "pong").await;
    send(&app, &org, &room, "@bob welcome back", &["bob"]).await;
    app.settled().await;
    assert_eq!(service.received(&devices["frank"]).len(), 4, "the message was told of");
    assert_eq!(service.received(&devices["bob"]).len(), 1, "watching again");
}

/// What a push service answers is honoured: a device that is gone (410) is forgotten, one that
/// asks for patience (429, `Retry-After`) gets the push once it is ready; and a batch delivered
/// again, as the stream does, pushes nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_devices_are_forgotten_busy_ones_retried_and_a_replay_pushes_nothing_twice() {
    let app = spawn_app().await;
    let service = push_service(&app).await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let gone = device(&app, &service, &org, "bob", Answer::Gone).await;
    let busy = device(&app, &service, &org, "bob", Answer::BusyOnce).await;
    let message = send(&app, &org, &room, "are you there", &[]).await;
    app.settled().await;
    assert!(service.faults().is_empty(), "{:?}", service.faults());
    let push = only(service.received(&busy));
    assert_eq!((push.urgency.as_str(), &push.payload["title"]), ("high", &json!("alice")), "a DM, from alice");
    assert_eq!(service.requests(&busy), 2, "tried again after its Retry-After");
    assert_eq!(service.requests(&gone), 1);
    let kept = app.get(&format!("/api/v1/org/{org}/users/bob/push-subscriptions"), "bob").await;
    assert_eq!(kept.body["results"].as_array().map(Vec::len), Some(1), "the gone device is forgotten: {}", kept.raw);

    // The message's stream record again, as Lambda delivers a retried or replayed batch.
    let store = &app.stack.state.store;
    let key = |k: &str| AttributeValue::S(k.to_owned());
    let read = store.client().get_item().table_name(store.table());
    let read = read.key("PK", key(&format!("ROOM#{room}"))).key("SK", key(&format!("MSG#{message}")));
    let item = read.send().await.expect("the message").item.expect("stored");
    let keys = json!({ "PK": { "S": format!("ROOM#{room}") }, "SK": { "S": format!("MSG#{message}") } });
    let image = serde_json::to_string(&serde_dynamo::Item::from(item)).expect("an image");
    let batch = include_str!("data/dynamodb_stream_insert.json")
        .replace("{{keys}}", &keys.to_string())
        .replace("{{new_image}}", &image)
        .replace("1795646900", &dm_shared::time::epoch_secs().to_string());
    // A device subscribed since: the replay must reach it, once, and only it.
    let new_phone = device(&app, &service, &org, "bob", Answer::Accept).await;
    let vapid = dm_notifier::webpush::Vapid::new(&app.stack.vapid().private_key, "mailto:ops@example.com");
    let vapid = vapid.expect("the stack's VAPID key");
    let pusher = dm_notifier::webpush::Pusher::new(vapid, app.stack.state.config.push_reach).expect("a pusher");
    let notifier = dm_notifier::Notifier::new(app.stack.state.clone(), pusher);
    // An invocation with no time left for a push claims nothing and asks for the record again.
    let now = dm_shared::time::now_ms();
    let answer = notifier.stream(serde_json::from_str(&batch).expect("a batch"), now).await.expect("an answer");
    assert_eq!(answer["batchItemFailures"][0]["itemIdentifier"], "4421584500000000017450439091", "{answer}");
    assert!(service.received(&new_phone).is_empty(), "no time for it");
    let answer =
        notifier.stream(serde_json::from_str(&batch).expect("a batch"), now + 60_000).await.expect("an answer");
    assert_eq!(answer["batchItemFailures"], json!([]), "nothing to retry: {answer}");
    assert_eq!(service.requests(&busy), 2, "nothing pushed twice");
    assert_eq!(only(service.received(&new_phone)).payload["message_id"], message.as_str(), "the new device, once");
    assert!(service.faults().is_empty(), "{:?}", service.faults());
}

/// A reply tells those who follow its thread (who started it, replied in it, or were named in it)
/// and whom it names, not the rest of the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_reaches_its_threads_followers_and_whom_it_names() {
    let app = spawn_app().await;
    let service = push_service(&app).await;
    let users = ["alice", "bob", "carol", "dave"];
    let org = app.org_with("alice", &users[1..]).await;
    let room = app.room(&org, "alice", &users[1..]).await;
    let mut devices = std::collections::HashMap::new();
    for user in users {
        devices.insert(user, device(&app, &service, &org, user, Answer::Accept).await);
    }
    let message = send(&app, &org, &room, "Lunch on Friday?", &[]).await;
    let thread = format!("/api/v1/org/{org}/rooms/{room}/messages/{message}/threads");
    let reply = |user: &'static str, text: &'static str, mentions: Value| {
        let (app, thread) = (&app, thread.clone());
        async move {
            let body = json!({ "sender_id": user, "message": text, "mentions": mentions });
            let sent = app.post(&thread, user, body).await;
            assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.raw);
            sent.str("thread_id")
        }
    };
    let yes = reply("bob", "Yes!", json!([])).await;
    app.settled().await;
    let push = only(service.received(&devices["alice"]));
    assert_eq!(
        (push.payload["title"].as_str(), push.payload["message_id"].as_str()),
        (Some("bob replied in a thread"), Some(yes.as_str()))
    );
    assert_eq!(service.received(&devices["carol"]).len(), 1, "the message, not a reply to a thread she is not in");
    let named = reply("dave", "@carol are you in?", json!(["carol"])).await;
    app.settled().await;
    assert!(service.faults().is_empty(), "{:?}", service.faults());
    let last = |user: &str| service.received(&devices[user]).last().map(|push| push.payload.clone());
    assert_eq!(last("carol").map(|p| p["title"].clone()), Some(json!("dave mentioned you")));
    for follower in ["alice", "bob"] {
        assert_eq!(last(follower).map(|p| p["message_id"].clone()), Some(json!(named)), "{follower} follows it");
    }
    let counts: Vec<usize> = users.iter().map(|user| service.received(&devices[user]).len()).collect();
    assert_eq!(counts, [2, 2, 2, 1], "alice, bob, carol, dave");
}
