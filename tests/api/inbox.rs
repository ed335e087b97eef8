//! The inbox every client opens on: rooms by latest activity with their last message and unread
//! counts, kept by the projector from the table's stream, once per message.

use dm_tests::{TestApp, spawn_app, spawn_app_without_scheduler};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The room ids of an inbox page, in order.
fn rooms(inbox: &Value) -> Vec<String> {
    inbox["results"].as_array().unwrap().iter().map(|r| r["room_id"].as_str().unwrap().to_owned()).collect()
}

/// A room of an inbox page.
fn row<'a>(inbox: &'a Value, room: &str) -> &'a Value {
    inbox["results"].as_array().unwrap().iter().find(|r| r["room_id"] == room).expect("the room is listed")
}

async fn unread(app: &TestApp, org: &str, user: &str) -> Value {
    let totals = app.get(&format!("/api/v1/org/{org}/users/{user}/unread"), user).await;
    assert_eq!(totals.status, StatusCode::OK, "{}", totals.raw);
    assert_eq!(totals.body["messages_capped"], false, "{}", totals.raw);
    json!({ "rooms": totals.body["rooms"], "messages": totals.body["messages"] })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_come_by_latest_activity_with_last_message_and_unread_count() {
    let app = &spawn_app().await;
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let with_bob = app.room(&org, "alice", &["bob"]).await;
    let with_carol = app.room(&org, "alice", &["carol"]).await;
    let bob_and_carol = app.room(&org, "bob", &["carol"]).await;
    let hello = app.send(&org, &with_bob, "alice", "hello bob").await;
    app.send(&org, &with_carol, "alice", "hello carol").await;
    let first = app.send(&org, &with_bob, "bob", "hi alice").await;
    let long = "x".repeat(250);
    let last = app.send(&org, &with_bob, "bob", &long).await;

    // Unread is counted when asked; the last message is the projector's, which may follow later.
    let shown = |inbox: &Value| inbox["results"][0]["last_message"]["message_id"] == last.as_str();
    let inbox = app.inbox_when(&org, "alice", "", shown).await;
    assert_eq!(inbox["results"][0]["unread_count"], 2);
    assert_eq!(rooms(&inbox), [with_bob.clone(), with_carol.clone()]);
    let newest = row(&inbox, &with_bob);
    assert_eq!(newest["last_message"]["message_id"], last.as_str());
    assert_eq!(newest["last_message"]["sender_id"], "bob");
    assert_eq!(newest["last_message"]["preview"].as_str().unwrap().chars().count(), 200);
    assert_eq!(newest["last_activity_at"], newest["last_message"]["created_at"]);
    assert_eq!(newest["last_read_message_id"], hello.as_str(), "what alice sent, she has read");
    assert_eq!(row(&inbox, &with_carol)["unread_count"], 0, "alice sent it");
    assert_eq!(unread(app, &org, "alice").await, json!({ "rooms": 1, "messages": 2 }));
    assert_eq!(unread(app, &org, "carol").await, json!({ "rooms": 1, "messages": 1 }));

    // Sending moved bob's marker to what he sent; the room bob and carol never wrote in comes after.
    let bobs = app.inbox_when(&org, "bob", "", |inbox| inbox["results"][0]["last_read_message_id"] == last).await;
    assert_eq!(rooms(&bobs), [with_bob.clone(), bob_and_carol.clone()]);
    assert_eq!(row(&bobs, &with_bob)["unread_count"], 0);
    assert_eq!(row(&bobs, &bob_and_carol)["last_message"], Value::Null);

    let created = app.get(&format!("/api/v1/org/{org}/users/alice/rooms?sort=created"), "alice").await;
    assert_eq!(rooms(&created.body), [with_carol.clone(), with_bob.clone()]);
    let only_unread = app.get(&format!("/api/v1/org/{org}/users/alice/rooms?unread=true"), "alice").await;
    assert_eq!(rooms(&only_unread.body), [with_bob.as_str()]);
    // Pages of one: the unread room, then nothing more.
    let one = app.get(&format!("/api/v1/org/{org}/users/alice/rooms?unread=true&limit=1"), "alice").await;
    assert_eq!(rooms(&one.body), [with_bob.as_str()], "{}", one.raw);
    let rest = one.body["next"].as_str().map(|next| next.trim_start_matches(&app.base).to_owned());
    if let Some(rest) = rest {
        let rest = app.get(&rest, "alice").await;
        assert_eq!((rooms(&rest.body).len(), &rest.body["next"]), (0, &Value::Null), "{}", rest.raw);
    }
    for bad in ["?sort=size", "?unread=maybe"] {
        let refused = app.get(&format!("/api/v1/org/{org}/users/alice/rooms{bad}"), "alice").await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let others = app.get(&format!("/api/v1/org/{org}/users/bob/unread"), "alice").await;
    assert_eq!(others.status, StatusCode::FORBIDDEN);

    // Read: nothing unread; back to bob's first message: his second is unread again.
    let read = |body: Option<Value>| {
        let path = format!("/api/v1/org/{org}/rooms/{with_bob}/read");
        async move { app.call(Method::PUT, &path, Some("alice"), body).await }
    };
    assert_eq!(read(None).await.status, StatusCode::OK);
    assert_eq!(unread(app, &org, "alice").await, json!({ "rooms": 0, "messages": 0 }));
    assert_eq!(read(Some(json!({ "message_id": first }))).await.status, StatusCode::OK);
    assert_eq!(unread(app, &org, "alice").await, json!({ "rooms": 1, "messages": 1 }));

    // An edit of the last message changes its preview; deleting it uncounts it and shows the one before.
    let edit = json!({ "sender_id": "bob", "message": "edited" });
    let edited = app
        .call(Method::PUT, &format!("/api/v1/org/{org}/rooms/{with_bob}/messages/{last}"), Some("bob"), Some(edit))
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.raw);
    app.inbox_when(&org, "alice", "", |inbox| inbox["results"][0]["last_message"]["preview"] == "edited").await;
    let deleted = app
        .call(Method::DELETE, &format!("/api/v1/org/{org}/rooms/{with_bob}/messages/{last}/message"), Some("bob"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.raw);
    let inbox =
        app.inbox_when(&org, "alice", "", |inbox| inbox["results"][0]["last_message"]["message_id"] == first).await;
    assert_eq!(row(&inbox, &with_bob)["unread_count"], 0);
    assert_eq!(unread(app, &org, "alice").await, json!({ "rooms": 0, "messages": 0 }));
}

/// The stored state of one message or room item, as a stream record shows it.
pub(crate) async fn image(app: &TestApp, pk: String, sk: String) -> serde_dynamo::Item {
    stored(app, pk, sk).await.expect("the item is stored")
}

/// The item at a key, if there is one.
async fn stored(app: &TestApp, pk: String, sk: String) -> Option<serde_dynamo::Item> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let state = &app.stack.state;
    let found = state
        .store
        .client()
        .get_item()
        .table_name(state.store.table())
        .key("PK", AttributeValue::S(pk))
        .key("SK", AttributeValue::S(sk))
        .send()
        .await
        .unwrap();
    found.item.map(serde_dynamo::Item::from)
}

/// A stream record of the item at `sk` being stored.
pub(crate) async fn stored_record(app: &TestApp, room: &str, sk: String, n: usize) -> dm_shared::stream::Change {
    let new = image(app, format!("ROOM#{room}"), sk).await;
    dm_shared::stream::Change {
        event_id: format!("e{n}"),
        sequence_number: format!("{n}"),
        created_ms: 0,
        old: None,
        new: Some(new),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_rebatched_records_count_each_message_once() {
    // No stream reader: the batches below are the only projection.
    let app = &spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let mut batch = Vec::new();
    let mut ids = Vec::new();
    for (n, text) in ["one", "two", "three"].into_iter().enumerate() {
        let id = app.send(&org, &room, "alice", text).await;
        batch.push(stored_record(app, &room, format!("MSG#{id}"), n).await);
        ids.push(id);
    }
    let removed = image(app, format!("ROOM#{room}"), format!("MSG#{}", ids[2])).await;
    let gone = app
        .call(
            Method::DELETE,
            &format!("/api/v1/org/{org}/rooms/{room}/messages/{}/message", ids[2]),
            Some("alice"),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::OK);
    batch.push(dm_shared::stream::Change {
        event_id: "e3".into(),
        sequence_number: "3".into(),
        created_ms: 0,
        old: Some(removed),
        new: None,
    });

    let projector = dm_projector::Projector::new(app.stack.state.clone());
    let expected = json!({ "rooms": 1, "messages": 2 });
    assert!(projector.project(&batch).await.is_empty());
    assert_eq!(unread(app, &org, "bob").await, expected);
    assert!(projector.project(&batch).await.is_empty(), "the whole batch again");
    assert!(projector.project(&batch[..2]).await.is_empty(), "split differently");
    assert!(projector.project(&batch[1..]).await.is_empty());
    assert_eq!(unread(app, &org, "bob").await, expected);
    let inbox = app.get(&format!("/api/v1/org/{org}/users/bob/rooms"), "bob").await;
    assert_eq!(inbox.body["results"][0]["last_message"]["message_id"], ids[1].as_str());
    let alices = app.get(&format!("/api/v1/org/{org}/users/alice/rooms"), "alice").await;
    // A marker stays where it was set, on a message deleted since too: everything up to it is read.
    assert_eq!(alices.body["results"][0]["last_read_message_id"], ids[2].as_str(), "{}", alices.raw);
    assert_eq!(alices.body["results"][0]["unread_count"], 0);
}

/// Five members of one room send four messages each at once: unread counts come out exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_leave_exact_unread_counts() {
    spawn_app().await.send_at_once(5, 4).await;
}

/// A room of 98 members (more rows than one transaction holds) counts its messages in every
/// member's row exactly once, also when the batch comes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_room_counts_each_member_once() {
    let app = &spawn_app_without_scheduler().await;
    let members: Vec<String> = (0..98).map(|i| format!("m{i:02}")).collect();
    let names: Vec<&str> = members.iter().map(String::as_str).collect();
    let org = app.org_with("m00", &names[1..]).await;
    let room = app.room(&org, "m00", &names[1..]).await;
    let mut batch = Vec::new();
    for (n, sender) in ["m00", "m01", "m00"].into_iter().enumerate() {
        let id = app.send(&org, &room, sender, &format!("{sender} says {n}")).await;
        batch.push(stored_record(app, &room, format!("MSG#{id}"), n).await);
    }
    let projector = dm_projector::Projector::new(app.stack.state.clone());
    assert!(projector.project(&batch).await.is_empty());
    assert!(projector.project(&batch).await.is_empty(), "the whole batch again");
    assert!(projector.project(&batch[1..]).await.is_empty(), "split differently");
    for member in &names {
        let expected = match *member {
            "m00" => 0,
            "m01" => 1,
            _ => 3,
        };
        assert_eq!(unread(app, &org, member).await["messages"], expected, "{member}");
    }
}

/// A reply stored just as its message was deleted (the delete's cleanup ran first) is removed when
/// the projector meets it, so no reply outlives its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_that_outlived_its_message_is_removed() {
    let app = &spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let message = app.send(&org, &room, "alice", "question").await;
    let thread = format!("/api/v1/org/{org}/rooms/{room}/messages/{message}/threads");
    let reply = app.post(&thread, "bob", json!({ "sender_id": "bob", "message": "answer" })).await.str("thread_id");
    let record = stored_record(app, &room, format!("THREAD#{message}#{reply}"), 0).await;
    let delete = format!("/api/v1/org/{org}/rooms/{room}/messages/{message}/message");
    assert_eq!(app.call(Method::DELETE, &delete, Some("alice"), None).await.status, StatusCode::OK);

    let projector = dm_projector::Projector::new(app.stack.state.clone());
    assert!(projector.project(&[record]).await.is_empty());
    assert!(stored(app, format!("ROOM#{room}"), format!("THREAD#{message}#{reply}")).await.is_none(), "the reply");
    assert!(stored(app, format!("MSG#{reply}"), "META".into()).await.is_none(), "its pointer");
}

/// A message counted before a member joined, delivered again after, is not theirs to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_delivered_again_after_a_member_joined_is_not_unread_for_them() {
    let app = &spawn_app_without_scheduler().await;
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let id = app.send(&org, &room, "alice", "before carol").await;
    let batch = [stored_record(app, &room, format!("MSG#{id}"), 0).await];
    let projector = dm_projector::Projector::new(app.stack.state.clone());
    assert!(projector.project(&batch).await.is_empty());
    let add = format!("/api/v1/org/{org}/rooms/{room}/add-member/carol");
    assert!(app.put(&add, "alice").await.status.is_success());

    assert!(projector.project(&batch).await.is_empty(), "the batch again");
    assert_eq!(unread(app, &org, "carol").await, json!({ "rooms": 0, "messages": 0 }));
    assert_eq!(unread(app, &org, "bob").await, json!({ "rooms": 1, "messages": 1 }));
    let later = app.send(&org, &room, "bob", "after carol").await;
    let next = [stored_record(app, &room, format!("MSG#{later}"), 1).await];
    assert!(projector.project(&next).await.is_empty());
    assert_eq!(unread(app, &org, "carol").await, json!({ "rooms": 1, "messages": 1 }), "what came after she joined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_who_joins_is_counted_from_then_on_and_one_who_left_no_more() {
    let app = &spawn_app().await;
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob", "carol"]).await;
    let base = format!("/api/v1/org/{org}/rooms/{room}");
    // The projector has counted this room with its first members before they change.
    app.send(&org, &room, "alice", "before").await;
    app.settled().await;
    assert_eq!(unread(app, &org, "carol").await, json!({ "rooms": 1, "messages": 1 }));

    assert!(app.put(&format!("{base}/remove-member/carol"), "alice").await.status.is_success());
    assert!(app.put(&format!("{base}/add-member/carol"), "alice").await.status.is_success());
    assert!(app.put(&format!("{base}/remove-member/bob"), "alice").await.status.is_success());
    app.send(&org, &room, "alice", "after").await;
    app.settled().await;
    assert_eq!(unread(app, &org, "carol").await, json!({ "rooms": 1, "messages": 1 }), "counted since she came back");
    assert_eq!(unread(app, &org, "bob").await, json!({ "rooms": 0, "messages": 0 }), "gone with his row");
}

/// Rooms of more than eight members keep their last message in one summary, not in each member's
/// row: the inbox places them by it among the small rooms, exactly and a page at a time, and a room
/// that grows past eight members or shrinks back keeps its place and its last message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_rooms_take_their_place_in_the_inbox_from_their_summary() {
    let app = &spawn_app().await;
    let names: Vec<String> = (0..10).map(|n| format!("m{n}")).collect();
    let members: Vec<&str> = names.iter().map(String::as_str).collect();
    let org = app.org_with("m0", &members[1..]).await;
    let big = app.room(&org, "m0", &members[1..]).await;
    let (dm1, dm2) = (app.room(&org, "m0", &["m1"]).await, app.room(&org, "m0", &["m2"]).await);
    app.send(&org, &dm1, "m1", "a").await;
    let b = app.send(&org, &big, "m3", "b").await;
    app.send(&org, &dm2, "m2", "c").await;
    let d = app.send(&org, &big, "m4", "d").await;
    app.settled().await;

    let inbox = app.get(&format!("/api/v1/org/{org}/users/m0/rooms"), "m0").await;
    assert_eq!(rooms(&inbox.body), [big.clone(), dm2.clone(), dm1.clone()], "{}", inbox.raw);
    let shown = row(&inbox.body, &big);
    assert_eq!((&shown["last_message"]["message_id"], &shown["unread_count"]), (&json!(d), &json!(2)), "{shown}");
    assert_eq!(unread(app, &org, "m0").await, json!({ "rooms": 3, "messages": 4 }));
    // A page at a time, both ways.
    let mut path = format!("/api/v1/org/{org}/users/m0/rooms?limit=1");
    let mut walked = Vec::new();
    let mut last = Value::Null;
    loop {
        let page = app.get(&path, "m0").await;
        walked.extend(rooms(&page.body));
        match page.body["next"].as_str() {
            Some(next) => path = next.trim_start_matches(&app.base).to_owned(),
            None => break,
        }
        last = page.body;
    }
    assert_eq!(walked, [big.clone(), dm2.clone(), dm1.clone()]);
    let back = last["previous"].as_str().expect("a previous page").trim_start_matches(&app.base).to_owned();
    assert_eq!(rooms(&app.get(&back, "m0").await.body), [big.as_str()]);

    // What m0 sends moves a small room up; a mark reads the large one.
    app.send(&org, &dm1, "m0", "e").await;
    let mark = format!("/api/v1/org/{org}/rooms/{big}/read");
    assert_eq!(app.call(Method::PUT, &mark, Some("m0"), None).await.status, StatusCode::OK);
    let inbox = app.inbox_when(&org, "m0", "", |inbox| inbox["results"][0]["room_id"] == dm1.as_str()).await;
    assert_eq!(rooms(&inbox), [dm1.clone(), big.clone(), dm2.clone()]);
    assert_eq!(row(&inbox, &big)["unread_count"], 0);
    let only_unread = app.get(&format!("/api/v1/org/{org}/users/m0/rooms?unread=true"), "m0").await;
    assert_eq!(rooms(&only_unread.body), [dm2.as_str()]);

    // Deleted, edited: the summary follows.
    let delete = format!("/api/v1/org/{org}/rooms/{big}/messages/{d}/message");
    assert_eq!(app.call(Method::DELETE, &delete, Some("m4"), None).await.status, StatusCode::OK);
    let edit = format!("/api/v1/org/{org}/rooms/{big}/messages/{b}");
    let edited = app.call(Method::PUT, &edit, Some("m3"), Some(json!({ "sender_id": "m3", "message": "b2" }))).await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.raw);
    let shown = |inbox: &Value| row(inbox, &big)["last_message"]["preview"].clone();
    app.inbox_when(&org, "m1", "", |inbox| shown(inbox) == json!("b2")).await;

    // Down to eight members the rows show it themselves; past eight again, the summary does.
    for gone in ["m9", "m8"] {
        let path = format!("/api/v1/org/{org}/rooms/{big}/remove-member/{gone}");
        assert!(app.put(&path, "m0").await.status.is_success());
    }
    let inbox = app.get(&format!("/api/v1/org/{org}/users/m1/rooms"), "m1").await.body;
    assert_eq!((shown(&inbox), row(&inbox, &big)["last_message"]["message_id"].clone()), (json!("b2"), json!(b)));
    let f = app.send(&org, &big, "m5", "f").await;
    app.inbox_when(&org, "m1", "", |inbox| row(inbox, &big)["last_message"]["message_id"] == f.as_str()).await;
    assert!(app.put(&format!("/api/v1/org/{org}/rooms/{big}/add-member/m8"), "m0").await.status.is_success());
    let inbox = app.get(&format!("/api/v1/org/{org}/users/m8/rooms"), "m8").await;
    assert_eq!(row(&inbox.body, &big)["last_message"]["message_id"], f.as_str(), "{}", inbox.raw);
    let g = app.send(&org, &big, "m5", "g").await;
    let inbox =
        app.inbox_when(&org, "m1", "", |inbox| row(inbox, &big)["last_message"]["message_id"] == g.as_str()).await;
    assert_eq!(rooms(&inbox)[0], big, "first again, by its summary");
}

/// A large room whose only message is deleted shows none, then takes the next one as any room does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_room_that_lost_its_last_message_shows_the_next() {
    let app = &spawn_app().await;
    let names: Vec<String> = (0..9).map(|n| format!("m{n}")).collect();
    let members: Vec<&str> = names.iter().map(String::as_str).collect();
    let org = app.org_with("m0", &members[1..]).await;
    let big = app.room(&org, "m0", &members[1..]).await;
    let only = app.send(&org, &big, "m1", "only").await;
    app.inbox_when(&org, "m2", "", |inbox| row(inbox, &big)["last_message"]["message_id"] == only.as_str()).await;
    let delete = format!("/api/v1/org/{org}/rooms/{big}/messages/{only}/message");
    assert_eq!(app.call(Method::DELETE, &delete, Some("m1"), None).await.status, StatusCode::OK);
    app.inbox_when(&org, "m2", "", |inbox| row(inbox, &big)["last_message"].is_null()).await;
    let next = app.send(&org, &big, "m3", "next").await;
    let inbox =
        app.inbox_when(&org, "m2", "", |inbox| row(inbox, &big)["last_message"]["message_id"] == next.as_str()).await;
    assert_eq!(row(&inbox, &big)["unread_count"], 1);
}

/// A member's mention count: their unread messages that name them or hold one of their keywords
/// (whole words, case and accents aside), others' only; an edit that drops the mention drops it from
/// the count, and reading past them zeroes it. Counted when read, so nothing of it can drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_and_keywords_count_among_a_members_unread_messages() {
    let app = spawn_app().await;
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob", "carol"]).await;
    let keywords = json!({ "settings": { "notifications": { "my_keywords": ["deploy"] } } });
    let profile = format!("/api/v1/org/{org}/members/bob/profile");
    assert_eq!(app.call(Method::PATCH, &profile, Some("bob"), Some(keywords)).await.status, StatusCode::OK);
    let messages = format!("/api/v1/org/{org}/rooms/{room}/messages");
    let send = |sender: &'static str, text: &'static str, mentions: Value| {
        let body = json!({ "sender_id": sender, "message": text, "mentions": mentions });
        let messages = messages.clone();
        let app = &app;
        async move {
            let sent = app.post(&messages, sender, body).await;
            assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.raw);
            sent.str("message_id")
        }
    };
    // His own message comes first: sending moves his marker past it (and all before).
    send("bob", "deploy what", json!(["bob"])).await;
    send("alice", "hi all", json!([])).await;
    let named = send("alice", "@bob can you look", json!(["bob"])).await;
    send("alice", "we deploy today", json!([])).await;
    send("alice", "Deployment went fine", json!([])).await;
    send("carol", "DÉPLOY done?", json!(["alice"])).await;

    let inbox = app.inbox_when(&org, "bob", "", |inbox| inbox["results"][0]["unread_count"] == 5).await;
    assert_eq!(inbox["results"][0]["mention_count"], 3, "{inbox}");
    let totals = app.get(&format!("/api/v1/org/{org}/users/bob/unread"), "bob").await;
    assert_eq!(
        (totals.body["messages"].as_u64(), totals.body["mentions"].as_u64()),
        (Some(5), Some(3)),
        "{}",
        totals.raw
    );
    let alice = app.inbox_when(&org, "alice", "", |inbox| inbox["results"][0]["unread_count"] == 1).await;
    assert_eq!(alice["results"][0]["mention_count"], 1, "carol named her: {alice}");

    let unnamed = json!({ "sender_id": "alice", "message": "can someone look", "mentions": [] });
    assert_eq!(
        app.call(Method::PUT, &format!("{messages}/{named}"), Some("alice"), Some(unnamed)).await.status,
        StatusCode::OK
    );
    let inbox = app.get(&format!("/api/v1/org/{org}/users/bob/rooms"), "bob").await;
    assert_eq!(inbox.body["results"][0]["mention_count"], 2, "{}", inbox.raw);

    assert_eq!(app.put(&format!("/api/v1/org/{org}/rooms/{room}/read"), "bob").await.status, StatusCode::OK);
    let inbox = app.inbox_when(&org, "bob", "", |inbox| inbox["results"][0]["unread_count"] == 0).await;
    assert_eq!(inbox["results"][0]["mention_count"], 0);
    assert_eq!(app.get(&format!("/api/v1/org/{org}/users/bob/unread"), "bob").await.body["mentions"], 0);
}

/// A member's own settings for a room: a level and a mute. A muted room is marked in the inbox and
/// shows no unread badge in `/unread` but its mentions (Mattermost's mute); unmuted, it counts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_room_counts_only_its_mentions_until_unmuted() {
    let app = spawn_app().await;
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    let settings = format!("/api/v1/org/{org}/rooms/{room}/notifications");
    let set = |user: &'static str, body: Value| app.call(Method::PUT, &settings, Some(user), Some(body));

    let fresh = app.get(&settings, "bob").await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.raw);
    assert_eq!((fresh.body["level"].as_str(), fresh.body["muted"].as_bool()), (Some("default"), Some(false)));
    let muted = set("bob", json!({ "level": "mentions", "muted_until": "2999-01-01T00:00:00Z" })).await;
    assert_eq!(muted.status, StatusCode::OK, "{}", muted.raw);
    assert_eq!(muted.body["muted"], true);
    assert_eq!(app.get(&settings, "bob").await.body["level"], "mentions");
    assert_eq!(set("carol", json!({ "level": "all" })).await.status, StatusCode::FORBIDDEN, "not in the room");
    assert_eq!(set("bob", json!({ "level": "loud" })).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(set("bob", json!({ "muted_until": "tomorrow" })).await.status, StatusCode::BAD_REQUEST);

    let messages = format!("/api/v1/org/{org}/rooms/{room}/messages");
    for (text, mentions) in [("one", json!([])), ("two", json!([])), ("@bob three", json!(["bob"]))] {
        let body = json!({ "sender_id": "alice", "message": text, "mentions": mentions });
        assert_eq!(app.post(&messages, "alice", body).await.status, StatusCode::CREATED);
    }
    let inbox = app.inbox_when(&org, "bob", "", |inbox| inbox["results"][0]["unread_count"] == 3).await;
    assert_eq!(
        (inbox["results"][0]["muted"].as_bool(), inbox["results"][0]["mention_count"].as_u64()),
        (Some(true), Some(1))
    );
    let path = format!("/api/v1/org/{org}/users/bob/unread");
    let badge = || async { app.get(&path, "bob").await.body };
    let totals = badge().await;
    assert_eq!(
        (totals["rooms"].as_u64(), totals["messages"].as_u64(), totals["mentions"].as_u64()),
        (Some(1), Some(1), Some(1)),
        "{totals}"
    );

    let unmuted = set("bob", json!({ "level": "default", "muted_until": null })).await;
    assert_eq!(unmuted.body["muted"], false, "{}", unmuted.raw);
    assert_eq!(badge().await["messages"], 3);
    let row = app.get(&format!("/api/v1/org/{org}/users/bob/rooms"), "bob").await;
    assert_eq!(row.body["results"][0]["muted"], false);
}
