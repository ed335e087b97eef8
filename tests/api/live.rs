//! What clients say on their WebSocket (heartbeats, typing) and presence.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dm_tests::{Socket, TestApp, event_within, expect_event, send_frame, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An org of alice (owner), bob and carol; a room of alice and bob.
async fn setup(app: &TestApp) -> (String, String) {
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    (org, room)
}

async fn typing_of(socket: &mut Socket) -> Value {
    expect_event(socket, "typing").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_are_answered_and_typing_reaches_the_rooms_other_members_only() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let mut alice = app.socket("alice", &org).await.unwrap();
    let mut alice_phone = app.socket("alice", &org).await.unwrap();
    let mut bob = app.socket("bob", &org).await.unwrap();
    let mut carol = app.socket("carol", &org).await.unwrap();
    let typing = |state: &str| json!({ "action": "typing", "org_id": org, "room_id": room, "state": state });

    send_frame(&mut alice, json!({ "action": "ping" })).await;
    assert_eq!(expect_event(&mut alice, "pong").await, json!({ "event": "pong" }));

    let sent = Instant::now();
    send_frame(&mut alice, typing("start")).await;
    send_frame(&mut alice, typing("start")).await;
    send_frame(&mut alice, typing("stop")).await;
    assert_eq!(
        typing_of(&mut bob).await,
        json!({ "event": "typing", "room_id": room, "user_id": "alice", "state": "start" })
    );
    // A second start within 2 s is not relayed; the stop is.
    let next = typing_of(&mut bob).await;
    if next["state"] == "start" {
        assert!(sent.elapsed() >= Duration::from_secs(2), "a start relayed twice within 2 s");
        assert_eq!(typing_of(&mut bob).await["state"], "stop");
    } else {
        assert_eq!(next["state"], "stop");
    }
    // After a stop, the next start is relayed at once.
    send_frame(&mut alice, typing("start")).await;
    assert_eq!(typing_of(&mut bob).await["state"], "start");

    // Not a member of the room: an error frame, nothing relayed.
    send_frame(&mut carol, typing("start")).await;
    let refused = expect_event(&mut carol, "error").await;
    assert_eq!(refused["status"], 403, "{refused}");
    send_frame(&mut bob, json!({ "action": "typing", "org_id": org, "room_id": "no-such-room", "state": "start" }))
        .await;
    assert_eq!(expect_event(&mut bob, "error").await["status"], 404);
    for bad in
        [json!({ "action": "shout" }), json!({ "action": "typing", "org_id": org, "room_id": room, "state": "maybe" })]
    {
        send_frame(&mut bob, bad).await;
        assert_eq!(expect_event(&mut bob, "error").await["status"], 400);
    }
    send_frame(&mut bob, typing("start")).await;
    let from_bob = typing_of(&mut alice).await;
    assert_eq!((from_bob["user_id"].clone(), from_bob["state"].clone()), (json!("bob"), json!("start")));
    // The typist's own connections hear nothing of their typing: alice's phone hears bob only.
    assert_eq!(typing_of(&mut alice_phone).await["user_id"], "bob");
    assert_eq!(event_within(&mut carol, "typing", Duration::from_millis(500)).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_follows_connections_and_can_be_hidden() {
    let app = &spawn_app().await;
    let (org, _) = setup(app).await;
    let presence = |user: &'static str| {
        let path = format!("/api/v1/org/{org}/members/{user}/presence");
        async move { app.get(&path, "bob").await }
    };
    let never = presence("alice").await;
    assert_eq!(never.status, StatusCode::OK, "{}", never.raw);
    assert_eq!(never.body, json!({ "user_id": "alice", "status": "offline", "last_seen_at": null }));
    assert_eq!(presence("stranger").await.status, StatusCode::NOT_FOUND);
    let outsider = app.get(&format!("/api/v1/org/{org}/members/alice/presence"), "stranger").await;
    assert_eq!(outsider.status, StatusCode::FORBIDDEN);

    let mut bob = app.socket("bob", &org).await.unwrap();
    let mut carol = app.socket("carol", &org).await.unwrap();
    let alice = app.socket("alice", &org).await.unwrap();
    let online = expect_event(&mut bob, "presence").await;
    assert_eq!(online["data"], json!({ "user_id": "alice", "status": "online", "last_seen_at": null }));
    assert_eq!(presence("alice").await.body["status"], "online");
    let inbox = app.get(&format!("/api/v1/org/{org}/users/bob/rooms"), "bob").await;
    assert_eq!(inbox.body["results"][0]["presence"]["alice"]["status"], "online", "{}", inbox.raw);

    // A second connection changes nothing; the last one closing makes her offline.
    let mut phone = app.socket("alice", &org).await.unwrap();
    phone.close(None).await.unwrap();
    drop(alice);
    let offline = expect_event(&mut bob, "presence").await;
    assert_eq!(offline["data"]["status"], "offline", "{offline}");
    assert!(offline["data"]["last_seen_at"].is_string());
    let seen = presence("alice").await;
    assert_eq!(seen.body["status"], "offline");
    assert_eq!(seen.body["last_seen_at"], offline["data"]["last_seen_at"]);
    // Carol shares no room with alice.
    assert_eq!(event_within(&mut carol, "presence", Duration::from_millis(500)).await, None);

    // Hidden while away: offline to everyone, and no event when she connects.
    let profile = format!("/api/v1/org/{org}/members/alice/profile");
    let bad = app.call(Method::PATCH, &profile, Some("alice"), Some(json!({ "presence": "invisible" }))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let hidden = app.call(Method::PATCH, &profile, Some("alice"), Some(json!({ "presence": "hidden" }))).await;
    assert_eq!(hidden.body["presence"], "hidden", "{}", hidden.raw);
    let _alice = app.socket("alice", &org).await.unwrap();
    assert_eq!(event_within(&mut bob, "presence", Duration::from_secs(2)).await, None);
    assert_eq!(presence("alice").await.body, json!({ "user_id": "alice", "status": "offline", "last_seen_at": null }));
    let inbox = app.get(&format!("/api/v1/org/{org}/users/bob/rooms"), "bob").await;
    assert_eq!(inbox.body["results"][0]["presence"]["alice"]["status"], "offline");

    // Shown again while connected: her room mates see her come online at once; hidden again, they
    // see her go offline, and never when.
    let shown = app.call(Method::PATCH, &profile, Some("alice"), Some(json!({ "presence": "visible" }))).await;
    assert_eq!(shown.body["presence"], "visible", "{}", shown.raw);
    let back = expect_event(&mut bob, "presence").await;
    assert_eq!(back["data"], json!({ "user_id": "alice", "status": "online", "last_seen_at": null }));
    assert_eq!(presence("alice").await.body["status"], "online");
    app.call(Method::PATCH, &profile, Some("alice"), Some(json!({ "presence": "hidden" }))).await;
    let gone = expect_event(&mut bob, "presence").await;
    assert_eq!(gone["data"], json!({ "user_id": "alice", "status": "offline", "last_seen_at": null }));
    assert_eq!(presence("alice").await.body, json!({ "user_id": "alice", "status": "offline", "last_seen_at": null }));
    assert_eq!(event_within(&mut carol, "presence", Duration::from_millis(500)).await, None);
}

/// Room events (presence and typing have no `seq`) by room, each room's in order.
fn by_room(events: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut rooms: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for event in events.iter().filter(|event| event["seq"].is_u64()) {
        rooms.entry(event["room_id"].as_str().expect("a room").to_owned()).or_default().push(event.clone());
    }
    for events in rooms.values_mut() {
        events.sort_by_key(|event| event["seq"].as_u64());
    }
    rooms
}

/// `user`'s sync from `since`, page by page: its events, and the token to go on from.
async fn sync_all(app: &TestApp, org: &str, user: &str, since: &str) -> (Vec<Value>, String) {
    let mut events = Vec::new();
    let mut path = format!("/api/v1/org/{org}/users/{user}/sync?since={since}&limit=7");
    loop {
        let page = app.get(&path, user).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
        events.extend(page.body["events"].as_array().unwrap().iter().cloned());
        match page.body["next"].as_str() {
            Some(next) => path = next.to_owned(),
            None => return (events, page.body["token"].as_str().unwrap().to_owned()),
        }
    }
}

/// The token of "from now on".
async fn sync_start(app: &TestApp, org: &str, user: &str) -> String {
    let start = app.get(&format!("/api/v1/org/{org}/users/{user}/sync"), user).await;
    assert_eq!((start.body["events"].clone(), start.body["next"].clone()), (json!([]), Value::Null), "{}", start.raw);
    start.body["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_back_from_a_tunnel_syncs_exactly_what_its_connected_twin_got() {
    let app = &spawn_app().await;
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let mut phone = app.socket("bob", &org).await.unwrap();
    let mut laptop = app.socket("bob", &org).await.unwrap();
    let dm = app.room(&org, "alice", &["bob"]).await;
    let group = app.room(&org, "alice", &["bob", "carol"]).await;
    let later = app.room(&org, "alice", &["carol"]).await;
    for socket in [&mut phone, &mut laptop] {
        let mut created: Vec<String> = Vec::new();
        for _ in 0..2 {
            let event = expect_event(socket, "room_created").await;
            assert_eq!(event["seq"], 1, "{event}");
            created.push(event["room_id"].as_str().unwrap().to_owned());
        }
        created.sort();
        let mut expected = vec![dm.clone(), group.clone()];
        expected.sort();
        assert_eq!(created, expected);
    }
    // The laptop's client took its token when it started.
    let token = sync_start(app, &org, "bob").await;

    app.send(&org, &dm, "alice", "before the tunnel").await;
    let seen = expect_event(&mut laptop, "message_create").await;
    assert_eq!(seen["seq"], 2, "{seen}");
    expect_event(&mut phone, "message_create").await;
    drop(laptop);

    // 51 events in three rooms while the laptop is away.
    let mut ids = Vec::new();
    for n in 0..8 {
        ids.push(app.send(&org, &dm, if n % 2 == 0 { "alice" } else { "bob" }, &format!("dm {n}")).await);
        app.send(&org, &group, "carol", &format!("group {n}")).await;
        app.send(&org, &later, "carol", &format!("before bob {n}")).await;
    }
    let edit = format!("/api/v1/org/{org}/rooms/{dm}/messages/{}", ids[0]);
    app.call(Method::PUT, &edit, Some("alice"), Some(json!({ "sender_id": "alice", "message": "dm 0, edited" }))).await;
    app.call(Method::DELETE, &format!("/api/v1/org/{org}/rooms/{dm}/messages/{}", ids[2]), Some("alice"), None).await;
    for emoji in ["👍", "🎉", "🚀", "👀"] {
        let path = format!("/api/v1/org/{org}/rooms/{dm}/messages/{}/reactions", ids[1]);
        app.post(&path, "alice", json!({ "sender_id": "alice", "data": emoji })).await;
    }
    assert!(app.put(&format!("/api/v1/org/{org}/rooms/{later}/add-member/bob"), "alice").await.status.is_success());
    for n in 0..8 {
        app.send(&org, &later, "carol", &format!("with bob {n}")).await;
        app.send(&org, &group, "alice", &format!("group again {n}")).await;
    }
    let removed = app.put(&format!("/api/v1/org/{org}/rooms/{group}/remove-member/bob"), "alice").await;
    assert!(removed.status.is_success(), "{}", removed.raw);
    app.send(&org, &group, "carol", "after bob left").await;
    app.send(&org, &dm, "alice", "the last in the dm").await;
    app.send(&org, &later, "carol", "the last with bob").await;

    // What the phone, connected all along, got: until the last event of each room it is in.
    let mut got = Vec::new();
    let mut last = (false, false, false);
    while last != (true, true, true) {
        let event = expect_event_any(&mut phone).await;
        match (event["event"].as_str(), event["data"]["message"].as_str()) {
            (Some("message_create"), Some("the last in the dm")) => last.0 = true,
            (Some("message_create"), Some("the last with bob")) => last.1 = true,
            (Some("member_removed"), _) => last.2 = true,
            _ => {}
        }
        got.push(event);
    }
    assert!(got.iter().all(|e| e["data"]["message"] != "after bob left" && e["data"]["message"] != "before bob 0"));

    let (synced, fresh) = sync_all(app, &org, "bob", &token).await;
    // The laptop drops what it had (the dm up to `seq` 2) by room and seq, as the web client does.
    let synced: Vec<Value> =
        synced.into_iter().filter(|e| !(e["room_id"] == dm.as_str() && e["seq"].as_u64() <= Some(2))).collect();
    // Of a room one has left, sync holds what one was sent of it: up to one's removal.
    let expected = got;
    let seqs = |events: &[Value]| -> BTreeMap<String, Vec<u64>> {
        by_room(events)
            .into_iter()
            .map(|(room, events)| (room, events.iter().filter_map(|e| e["seq"].as_u64()).collect()))
            .collect()
    };
    assert_eq!(seqs(&synced), seqs(&expected), "the same events of each room");
    assert_eq!(by_room(&synced), by_room(&expected), "the sync holds what the connected twin got, once");
    assert_eq!(synced.len(), by_room(&synced).values().map(Vec::len).sum::<usize>(), "room events only, once");
    for (room, events) in by_room(&synced) {
        let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
        assert!(seqs.windows(2).all(|pair| pair[1] == pair[0] + 1), "{room}: one by one: {seqs:?}");
    }
    assert!(synced.iter().any(|e| e["event"] == "member_added" && e["room_id"] == later.as_str()));
    let (nothing, _) = sync_all(app, &org, "bob", &fresh).await;
    assert_eq!(nothing, Vec::<Value>::new(), "caught up");

    // Garbage, a token past the retention, someone else's sync.
    let sync = |since: &str| format!("/api/v1/org/{org}/users/bob/sync?since={since}");
    assert_eq!(app.get(&sync("nonsense"), "bob").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get(&sync("1000"), "bob").await.status, StatusCode::GONE);
    assert_eq!(app.get(&sync(&fresh), "alice").await.status, StatusCode::FORBIDDEN);
}

/// The next event of any kind, waiting as `expect_event` does.
async fn expect_event_any(socket: &mut Socket) -> Value {
    dm_tests::next_event(socket, Duration::from_secs(30)).await.expect("an event")
}

/// One room's changes logged by two consumers at once, each also delivering the other's changes
/// (two stream shards after a partition split, numbered independently, and a retried batch racing
/// its first delivery): every event gets one number of its own, each change keeps the numbers it
/// got first, and the room's message count takes each message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_logging_one_room_at_once_give_each_event_one_number() {
    // No stream reader: the batches below are the only push.
    let app = &dm_tests::spawn_app_without_scheduler().await;
    let (org, room) = setup(app).await;
    let token = sync_start(app, &org, "bob").await;
    let (mut shard_a, mut shard_b) = (Vec::new(), Vec::new());
    for n in 0..12u64 {
        let id = app.send(&org, &room, "alice", &format!("message {n}")).await;
        let mut record = crate::inbox::stored_record(app, &room, format!("MSG#{id}"), n as usize).await;
        // The shards' sequence numbers say nothing of each other's.
        record.sequence_number = if n % 2 == 0 { 900 + n } else { 100 + n }.to_string();
        if n % 2 == 0 { shard_a.push(record) } else { shard_b.push(record) }
    }
    let consumer = || dm_realtime::Realtime::new(app.stack.state.clone(), app.stack.connections_endpoint()).unwrap();
    let (one, other) = (consumer(), consumer());
    let (a, b) = tokio::join!(one.publish(&shard_a), other.publish(&shard_b));
    assert!(a.is_empty() && b.is_empty());
    let (a, b) = tokio::join!(one.publish(&shard_b), other.publish(&shard_a));
    assert!(a.is_empty() && b.is_empty(), "each delivered again by the other consumer");

    let (synced, _) = sync_all(app, &org, "bob", &token).await;
    let mut seqs: Vec<u64> = synced.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=12).collect::<Vec<_>>(), "{synced:?}");
    let mut texts: Vec<&str> = synced.iter().map(|e| e["data"]["message"].as_str().unwrap()).collect();
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), 12, "each message once");
    let list = app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "bob").await;
    assert_eq!(list.body["count"], 12);
}

/// A backlog's changes are logged a room's run at a time. A run delivered again, whole or split
/// differently (as a retried stream batch is, to an instance that knows nothing of the first), is
/// pushed with the numbers it had and logged once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_delivered_again_split_differently_keeps_its_numbers_and_is_logged_once() {
    // No stream reader: the batches below are the only push.
    let app = &dm_tests::spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let token = sync_start(app, &org, "bob").await;
    let texts = ["one", "two", "three", "four"];
    let mut batch = Vec::new();
    for (n, text) in texts.into_iter().enumerate() {
        let id = app.send(&org, &room, "alice", text).await;
        batch.push(crate::inbox::stored_record(app, &room, format!("MSG#{id}"), n + 1).await);
    }
    let mut socket = app.socket("bob", &org).await.expect("bob connects");
    // What pushing `changes` posts to bob: `posts` events, and then nothing.
    let pushed = async |socket: &mut Socket, changes: &[dm_shared::stream::Change], posts: usize| {
        let realtime = dm_realtime::Realtime::new(app.stack.state.clone(), app.stack.connections_endpoint()).unwrap();
        assert_eq!(realtime.publish(changes).await, Vec::<String>::new());
        let mut events = Vec::new();
        for _ in 0..posts {
            events.push(dm_tests::next_event(socket, Duration::from_secs(10)).await.expect("an event"));
        }
        assert_eq!(dm_tests::next_event(socket, Duration::from_millis(300)).await, None);
        events
    };

    let first = pushed(&mut socket, &batch[..3], 3).await;
    let texts_of = |events: &[Value]| events.iter().map(|e| e["data"]["message"].clone()).collect::<Vec<_>>();
    assert_eq!(texts_of(&first), [json!("one"), json!("two"), json!("three")]);
    assert_eq!(first.iter().map(|e| e["seq"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(pushed(&mut socket, &batch[..2], 2).await, first[..2], "a part of the run again");
    let rest = pushed(&mut socket, &batch[1..], 3).await;
    assert_eq!(rest[..2], first[1..], "the rest of the run again, then a change not pushed yet");
    assert_eq!((rest[2]["data"]["message"].clone(), rest[2]["seq"].clone()), (json!("four"), json!(4)));
    let whole: Vec<Value> = first.into_iter().chain(rest[2..].iter().cloned()).collect();
    assert_eq!(pushed(&mut socket, &batch, 4).await, whole, "the whole batch again: as numbered before");

    let (synced, _) = sync_all(app, &org, "bob", &token).await;
    assert_eq!(synced, whole, "each once");
}
