use dm_shared::ids::{OrgId, RoomId, UserId};
use dm_shared::paging::{PageQuery, PageRequest};
use dm_tests::{TestApp, read, spawn_app};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An org of alice (owner), bob and carol (members), and a room of alice and bob.
async fn setup(app: &TestApp) -> (String, String) {
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    (org, room)
}

fn ids(results: &[Value], field: &str) -> Vec<String> {
    results.iter().map(|m| m[field].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sent_message_is_listed_with_every_field() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/messages");

    let sent = app
        .post(&path, "alice", json!({ "sender_id": "alice", "room_id": room, "message": "Hello Bob", "media": [] }))
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.raw);
    assert_eq!(sent.body["status"], 201);
    assert_eq!(sent.body["event"], "message_create");
    assert_eq!(sent.body["room_id"], room.as_str());
    assert_eq!(sent.body["thread"], false);
    assert_eq!(sent.body["data"]["sender_id"], "alice");
    assert_eq!(sent.body["data"]["message"], "Hello Bob");
    let id = sent.str("message_id");

    // The count follows the stream; the message is listed at once.
    let list = app.get(&path, "bob").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["results"].as_array().map(Vec::len), Some(1));
    app.get_when(&path, "bob", |list| list["count"] == 1).await;
    let message = &list.body["results"][0];
    assert_eq!(message["id"], id.as_str());
    assert_eq!(message["_id"], id.as_str());
    assert_eq!(message["message"], "Hello Bob");
    assert_eq!(message["created_at"], sent.body["data"]["created_at"]);
    for (field, value) in [
        ("edited", json!(false)),
        ("pinned", json!(false)),
        ("read", json!(false)),
        ("thread_count", json!(0)),
        ("reactions", json!([])),
        ("threads", json!([])),
        ("media", json!([])),
        ("saved_by", json!([])),
    ] {
        assert_eq!(message[field], value, "{field}");
    }

    let media_only = app
        .post(&path, "bob", json!({ "sender_id": "bob", "message": " ", "media": ["https://cdn.example.com/a.png"] }))
        .await;
    assert_eq!(media_only.status, StatusCode::CREATED, "{}", media_only.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_is_refused_for_the_wrong_sender_room_or_text() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/messages");
    let send = |user: &'static str, body: Value| app.post(&path, user, body);

    let cases = [
        ("alice", json!({ "sender_id": "bob", "message": "spoof" }), StatusCode::FORBIDDEN),
        ("carol", json!({ "sender_id": "carol", "message": "not in room" }), StatusCode::FORBIDDEN),
        ("stranger", json!({ "sender_id": "stranger", "message": "x" }), StatusCode::FORBIDDEN),
        ("alice", json!({ "sender_id": "alice", "message": "   " }), StatusCode::BAD_REQUEST),
        ("alice", json!({ "sender_id": "alice", "message": "x".repeat(10_001) }), StatusCode::BAD_REQUEST),
        ("alice", json!({ "sender_id": "alice", "message": 5 }), StatusCode::BAD_REQUEST),
        ("alice", json!({ "sender_id": "alice" }), StatusCode::BAD_REQUEST),
        (
            "alice",
            json!({ "sender_id": "alice", "message": "x", "media": ["javascript:alert(1)"] }),
            StatusCode::BAD_REQUEST,
        ),
        ("alice", json!({ "sender_id": "alice", "message": "x".repeat(300_000) }), StatusCode::PAYLOAD_TOO_LARGE),
    ];
    for (user, body, status) in cases {
        let reply = send(user, body).await;
        assert_eq!(reply.status, status, "{}", reply.raw);
        assert_eq!(reply.body["status"], status.as_u16());
    }
    assert_eq!(
        send("alice", json!({ "sender_id": "alice", "message": "x".repeat(10_000) })).await.status,
        StatusCode::CREATED
    );

    let missing = app
        .post(
            &format!("/api/v1/org/{org}/rooms/nosuchroom/messages"),
            "alice",
            json!({ "sender_id": "alice", "message": "x" }),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let other_org = app.org("alice").await;
    let foreign = app
        .post(
            &format!("/api/v1/org/{other_org}/rooms/{room}/messages"),
            "alice",
            json!({ "sender_id": "alice", "message": "x" }),
        )
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    app.get_when(&path, "alice", |list| list["count"] == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_one_idempotency_key_store_one_message() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/messages");
    let token = dm_tests::token("alice");
    let send = |key: &'static str| {
        app.raw(Method::POST, &path)
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(&json!({ "sender_id": "alice", "message": "once" }))
            .send()
    };

    let replies = futures_util::future::join_all((0..10).map(|_| send("key-1"))).await;
    let mut ids = std::collections::HashSet::new();
    for reply in replies {
        let reply = read(reply.unwrap()).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
        ids.insert(reply.str("message_id"));
    }
    assert_eq!(ids.len(), 1);
    let again = read(send("key-1").await.unwrap()).await;
    assert!(ids.contains(&again.str("message_id")));
    let other = read(send("key-2").await.unwrap()).await;
    assert!(!ids.contains(&other.str("message_id")));

    let list = app.get_when(&path, "alice", |list| list["count"] == 2).await;
    assert_eq!(list["results"].as_array().unwrap().len(), 2);

    let too_long = "k".repeat(129);
    let bad = read(
        app.raw(Method::POST, &path)
            .bearer_auth(&token)
            .header("idempotency-key", too_long)
            .json(&json!({ "sender_id": "alice", "message": "x" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

/// A key reused for another body is refused (Stripe's 422), and no key a client sends can name one
/// the server derives: a reply's key once was `thread:{parent}:{key}`, which a client could type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_refuse_another_body_and_live_in_their_own_namespaces() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/messages");
    let send = |path: String, key: String, text: &'static str| {
        let request = app
            .raw(Method::POST, &path)
            .bearer_auth(dm_tests::token("alice"))
            .header("idempotency-key", key)
            .json(&json!({ "sender_id": "alice", "message": text }));
        async move { read(request.send().await.unwrap()).await }
    };
    let first = send(path.clone(), "k-1".into(), "one").await;
    assert_eq!(first.status, StatusCode::CREATED);
    let changed = send(path.clone(), "k-1".into(), "two").await;
    assert_eq!(changed.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", changed.raw);
    assert!(changed.str("message").contains("different request"), "{}", changed.raw);
    assert_eq!(send(path.clone(), "k-1".into(), "one").await.str("message_id"), first.str("message_id"));

    let message = first.str("message_id");
    let replies = format!("{path}/{message}/threads");
    let reply = send(replies.clone(), "k-1".into(), "one").await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    assert_ne!(reply.str("thread_id"), message, "a reply's key is not a message's");
    let typed = send(path.clone(), format!("thread:{message}:k-1"), "one").await;
    assert_eq!(typed.status, StatusCode::CREATED);
    assert_ne!(typed.str("message_id"), reply.str("thread_id"));
    assert_ne!(typed.str("message_id"), message);
    app.get_when(&path, "alice", |list| list["count"] == 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_through_250_messages_loses_and_repeats_none_while_new_ones_arrive() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/messages");
    let mut sent = Vec::new();
    for chunk in (0..250).collect::<Vec<_>>().chunks(5) {
        let texts: Vec<(usize, String)> = chunk.iter().map(|i| (*i, format!("message {i}"))).collect();
        let sends = texts.iter().map(|(i, text)| app.send(&org, &room, if i % 2 == 0 { "alice" } else { "bob" }, text));
        sent.extend(futures_util::future::join_all(sends).await);
    }
    sent.sort();
    sent.reverse();

    let mut seen = Vec::new();
    let mut page_path = format!("{path}?limit=40");
    let mut pages = 0;
    loop {
        let page = app.get(&page_path, "bob").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
        seen.extend(ids(page.body["results"].as_array().unwrap(), "id"));
        // New messages arrive between pages; they belong to newer pages, never to the ones ahead.
        app.send(&org, &room, "alice", &format!("late {pages}")).await;
        pages += 1;
        match page.body["next"].as_str() {
            Some(next) => page_path = next.trim_start_matches(&app.base).to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 7);
    assert_eq!(seen, sent);

    let first = app.get_when(&format!("{path}?limit=10"), "bob", |list| list["count"] == 250 + pages).await;
    assert_eq!(first["previous"], json!(null));
    let second = app.get(first["next"].as_str().unwrap().trim_start_matches(&app.base), "bob").await;
    let back = app.get(second.str("previous").trim_start_matches(&app.base), "bob").await;
    assert_eq!(back.body["results"], first["results"]);

    for bad in ["?limit=0", "?limit=101", "?limit=x", "?cursor=zz!", "?cursor=YTpST09NIzE"] {
        let reply = app.get(&format!("{path}{bad}"), "bob").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}: {}", reply.raw);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_room_lists_an_empty_200() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let list = app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "alice").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body, json!({ "status": 200, "count": 0, "next": null, "previous": null, "results": [] }));
    assert_eq!(
        app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "carol").await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_member_has_their_own_read_flag() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let id = app.send(&org, &room, "alice", "read me").await;
    let path = format!("/api/v1/org/{org}/messages/{id}/read");
    let read_flag = |user: &'static str| {
        let list = format!("/api/v1/org/{org}/rooms/{room}/messages");
        async move { app.get(&list, user).await.body["results"][0]["read"].clone() }
    };

    let toggled = app.put(&path, "bob").await;
    assert_eq!(toggled.body, json!({ "status": 200, "read": true }));
    assert_eq!(read_flag("bob").await, json!(true));
    assert_eq!(read_flag("alice").await, json!(false));

    let set = app.call(Method::PUT, &path, Some("bob"), Some(json!({ "read": true }))).await;
    assert_eq!(set.body["read"], true);
    assert_eq!(read_flag("bob").await, json!(true));
    let unread = app.put(&path, "bob").await;
    assert_eq!(unread.body["read"], false);
    assert_eq!(read_flag("bob").await, json!(false));

    assert_eq!(app.put(&path, "carol").await.status, StatusCode::FORBIDDEN);
    let bad = app.call(Method::PUT, &path, Some("bob"), Some(json!({ "read": "yes" }))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.put(&format!("/api/v1/org/{org}/messages/01NOSUCHMESSAGE/read"), "bob").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_toggle_and_agree_with_room_info() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let first = app.send(&org, &room, "alice", "first").await;
    let second = app.send(&org, &room, "bob", "second").await;
    let pin = |id: &str| format!("/api/v1/org/{org}/messages/{id}/pin");
    let info = format!("/api/v1/org/{org}/rooms/{room}/info");

    let pinned = app.put(&pin(&second), "alice").await;
    assert_eq!(pinned.status, StatusCode::CREATED, "{}", pinned.raw);
    assert_eq!(pinned.body["event"], "pin_message");
    assert_eq!(pinned.body["pinned"], json!([second]));
    let both = app.put(&pin(&first), "bob").await;
    assert_eq!(both.body["pinned"], json!([first, second]));
    assert_eq!(app.get(&info, "alice").await.body["pinned"], json!([first, second]));

    let unpinned = app.put(&pin(&second), "bob").await;
    assert_eq!(unpinned.status, StatusCode::OK);
    assert_eq!(unpinned.body["event"], "unpin_message");
    assert_eq!(unpinned.body["pinned"], json!([first]));
    let set = app.call(Method::PUT, &pin(&first), Some("alice"), Some(json!({ "pinned": true }))).await;
    assert_eq!(set.status, StatusCode::CREATED);
    assert_eq!(app.get(&info, "alice").await.body["pinned"], json!([first]));
    let list = app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "alice").await;
    let flags: Vec<(String, bool)> = list.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_owned(), m["pinned"].as_bool().unwrap()))
        .collect();
    assert_eq!(flags, [(second.clone(), false), (first.clone(), true)]);
    assert_eq!(app.put(&pin(&first), "carol").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_links_and_room_links() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let id = app.send(&org, &room, "alice", "Docs at https://docs.example.com/v1. Also (see https://x.org/a)!").await;
    app.send(&org, &room, "bob", "again https://docs.example.com/v1, and http://new.example.com").await;

    let link = app.get(&format!("/api/v1/org/{org}/messages/{id}/link"), "bob").await;
    assert_eq!(link.status, StatusCode::OK);
    assert_eq!(link.body["room_id"], room.as_str());
    assert_eq!(link.body["message_id"], id.as_str());
    assert_eq!(link.body["link"], format!("http://dm.test/getmessage/{room}/{id}"));
    assert_eq!(app.get(&format!("/api/v1/org/{org}/messages/{id}/link"), "carol").await.status, StatusCode::FORBIDDEN);
    let other_org = app.org("alice").await;
    assert_eq!(
        app.get(&format!("/api/v1/org/{other_org}/messages/{id}/link"), "alice").await.status,
        StatusCode::NOT_FOUND
    );

    app.settled().await;
    let links = app.get(&format!("/api/v1/org/{org}/rooms/{room}/links"), "alice").await;
    assert_eq!(links.status, StatusCode::OK, "{}", links.raw);
    assert_eq!(links.body["room_id"], room.as_str());
    assert_eq!(
        links.body["links"],
        json!(["https://docs.example.com/v1", "http://new.example.com", "https://x.org/a"])
    );
    // Pages are read one at a time: each shows a URL once, and a URL shared again further back
    // shows again on its own page.
    let paged = app.all_pages(&format!("/api/v1/org/{org}/rooms/{room}/links?limit=2"), "alice", "links").await;
    assert_eq!(
        Value::Array(paged),
        json!([
            "https://docs.example.com/v1",
            "http://new.example.com",
            "https://docs.example.com/v1",
            "https://x.org/a"
        ])
    );
    assert_eq!(app.get(&format!("/api/v1/org/{org}/rooms/{room}/links"), "carol").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_moves_the_search_terms_and_keeps_the_old_text() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let id = app.send(&org, &room, "alice", "Meet at the café https://old.example.com").await;
    let edit = format!("/api/v1/org/{org}/rooms/{room}/messages/{id}");
    let search = |user: &'static str, keyword: &str| {
        let path = format!("/api/v1/org/{org}/users/{user}/messages/search?keyword={keyword}");
        async move {
            app.settled().await;
            app.get(&path, user).await
        }
    };
    assert_eq!(search("bob", "CAFE").await.body["count"], 1);

    let refused =
        app.call(Method::PUT, &edit, Some("bob"), Some(json!({ "sender_id": "bob", "message": "hijack" }))).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let edited = app
        .call(
            Method::PUT,
            &edit,
            Some("alice"),
            Some(json!({ "sender_id": "alice", "message": "Meet at the library" })),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.raw);
    assert_eq!(edited.body["event"], "message_update");
    assert_eq!(edited.body["edited"], true);
    assert_eq!(edited.body["data"]["message"], "Meet at the library");

    assert_eq!(search("bob", "cafe").await.body["count"], 0);
    let found = search("bob", "library").await;
    assert_eq!(found.body["count"], 1);
    assert_eq!(found.body["results"][0]["message"], "Meet at the library");
    let links = app.get(&format!("/api/v1/org/{org}/rooms/{room}/links"), "alice").await;
    assert_eq!(links.body["links"], json!([]));

    let list = app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "bob").await;
    assert_eq!(list.body["results"][0]["edited"], true);
    assert!(list.body["results"][0]["edited_at"].is_string());
    let history = app.get(&format!("{edit}/history"), "bob").await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.raw);
    assert_eq!(history.body["results"][0]["message"], "Meet at the café https://old.example.com");
    assert_eq!(app.get(&format!("{edit}/history"), "carol").await.status, StatusCode::FORBIDDEN);

    let blank = app.call(Method::PUT, &edit, Some("alice"), Some(json!({ "sender_id": "alice", "message": "" }))).await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST);
    let missing = app
        .call(
            Method::PUT,
            &format!("/api/v1/org/{org}/rooms/{room}/messages/01NOSUCH"),
            Some("alice"),
            Some(json!({ "sender_id": "alice", "message": "x" })),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_message_is_gone_from_every_read_route() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let id = app.send(&org, &room, "alice", "secret plan https://plan.example.com").await;
    let keep = app.send(&org, &room, "bob", "other words").await;
    app.put(&format!("/api/v1/org/{org}/messages/{id}/pin"), "alice").await;
    let delete = format!("/api/v1/org/{org}/rooms/{room}/messages/{id}/message");

    assert_eq!(app.call(Method::DELETE, &delete, Some("bob"), None).await.status, StatusCode::FORBIDDEN);
    let deleted = app.call(Method::DELETE, &delete, Some("alice"), None).await;
    assert_eq!(deleted.body, json!({ "status": 200, "message": "OK" }));
    let again = app.call(Method::DELETE, &delete, Some("alice"), None).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.body["message"], "message not found");

    let list = app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "bob").await;
    assert_eq!(ids(list.body["results"].as_array().unwrap(), "id"), [keep.as_str()]);
    app.settled().await;
    assert_eq!(app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "bob").await.body["count"], 1);
    let search = app.get(&format!("/api/v1/org/{org}/users/bob/messages/search?keyword=plan"), "bob").await;
    assert_eq!(search.body["count"], 0);
    let links = app.get(&format!("/api/v1/org/{org}/rooms/{room}/links"), "bob").await;
    assert_eq!(links.body["links"], json!([]));
    assert_eq!(app.get(&format!("/api/v1/org/{org}/rooms/{room}/info"), "bob").await.body["pinned"], json!([]));
    for path in [
        format!("/api/v1/org/{org}/messages/{id}/link"),
        format!("/api/v1/org/{org}/rooms/{room}/messages/{id}/history"),
    ] {
        assert_eq!(app.get(&path, "bob").await.status, StatusCode::NOT_FOUND, "{path}");
    }
    for path in [format!("/api/v1/org/{org}/messages/{id}/pin"), format!("/api/v1/org/{org}/messages/{id}/read")] {
        assert_eq!(app.put(&path, "bob").await.status, StatusCode::NOT_FOUND, "{path}");
    }

    // An org owner may delete anyone's message.
    let by_owner = app
        .call(Method::DELETE, &format!("/api/v1/org/{org}/rooms/{room}/messages/{keep}/message"), Some("alice"), None)
        .await;
    assert_eq!(by_owner.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_matches_every_word_in_the_callers_current_rooms() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let other = app.room(&org, "alice", &["carol"]).await;
    app.send(&org, &room, "alice", "The Quick brown fox.").await;
    app.send(&org, &room, "bob", "quick thinking").await;
    app.send(&org, &other, "carol", "a quick fox, in another room").await;
    let search = |user: &'static str, keyword: &str| {
        let path = format!("/api/v1/org/{org}/users/{user}/messages/search?keyword={keyword}");
        async move {
            app.settled().await;
            app.get(&path, user).await
        }
    };

    let quick = search("alice", "QUICK").await;
    assert_eq!(quick.status, StatusCode::OK, "{}", quick.raw);
    assert_eq!(quick.body["count"], 3);
    let messages: Vec<String> = ids(quick.body["results"].as_array().unwrap(), "message");
    assert_eq!(messages, ["a quick fox, in another room", "quick thinking", "The Quick brown fox."]);
    let hit = &quick.body["results"][0];
    for field in ["_id", "message_id", "room_id", "sender_id", "created_at", "media"] {
        assert!(!hit[field].is_null(), "{field}");
    }
    assert_eq!(hit["thread"], false);

    assert_eq!(search("alice", "fox%20quick").await.body["count"], 2);
    // Stop words neither narrow a search nor find anything alone.
    assert_eq!(search("alice", "the%20fox%20in%20a%20quick").await.body["count"], 2);
    let stop_words_alone = search("alice", "the%20a%20in").await;
    assert_eq!((stop_words_alone.status, stop_words_alone.body["count"].clone()), (StatusCode::OK, json!(0)));
    assert_eq!(search("alice", "qui").await.body["count"], 0);
    assert_eq!(search("bob", "fox").await.body["count"], 1);
    let paged = app
        .all_pages(&format!("/api/v1/org/{org}/users/alice/messages/search?keyword=quick&limit=1"), "alice", "results")
        .await;
    assert_eq!(ids(&paged, "message"), messages);

    // Carol leaves the room: its messages no longer find her.
    app.call(Method::DELETE, &format!("/api/v1/org/{org}/rooms/{other}/members/carol"), Some("carol"), None).await;
    assert_eq!(search("carol", "fox").await.body["count"], 0);

    assert_eq!(search("alice", "%20%20").await.status, StatusCode::BAD_REQUEST);
    let punctuation = search("alice", "%21%3F").await;
    assert_eq!((punctuation.status, &punctuation.body["count"]), (StatusCode::OK, &json!(0)), "{}", punctuation.raw);
    assert_eq!(
        app.get(&format!("/api/v1/org/{org}/users/alice/messages/search"), "alice").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get(&format!("/api/v1/org/{org}/users/bob/messages/search?keyword=fox"), "alice").await.status,
        StatusCode::FORBIDDEN
    );
}

/// A search page reads what it shows plus a bounded look-ahead, however many posts match: the same
/// page costs about the same with 12 matches as with 240. Pages merge rooms newest first and walk
/// both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_pages_stop_early_and_merge_rooms_both_ways() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let other = app.room(&org, "alice", &["carol"]).await;
    let mut sent = Vec::new();
    for i in 0..12 {
        let target = if i % 2 == 0 { &room } else { &other };
        sent.push(app.send(&org, target, "alice", &format!("needle haystack {i}")).await);
    }
    sent.reverse();
    let path = format!("/api/v1/org/{org}/users/alice/messages/search?keyword=needle%20haystack&limit=5");
    app.settled().await;
    let found = app.all_pages(&path, "alice", "results").await;
    assert_eq!(ids(&found, "message_id"), sent, "every hit once, newest first across rooms");
    let first = app.get(&path, "alice").await;
    let second = app.get(first.body["next"].as_str().unwrap().trim_start_matches(&app.base), "alice").await;
    assert_eq!(ids(second.body["results"].as_array().unwrap(), "message_id"), sent[5..10]);
    let back = app.get(second.body["previous"].as_str().unwrap().trim_start_matches(&app.base), "alice").await;
    assert_eq!(ids(back.body["results"].as_array().unwrap(), "message_id"), sent[..5]);

    // A store of its own: the one the stack shares also serves the stream's consumers meanwhile.
    let store = own_store(app);
    let (org_id, alice) = (OrgId::parse(org.clone()).unwrap(), UserId::parse("alice").unwrap());
    let words = ["needle".to_owned(), "haystack".to_owned()];
    let cost = || async {
        let before = store.usage();
        let page = PageQuery::default().parse().map(|page| PageRequest { limit: 5, ..page }).unwrap();
        assert_eq!(store.search(&org_id, &alice, &words, &page).await.unwrap().items.len(), 5);
        store.usage().since(before).capacity_units
    };
    let few = cost().await;
    let noise = (0..228).map(|i| {
        let target = if i % 2 == 0 { room.clone() } else { other.clone() };
        let org = org.clone();
        async move { app.send(&org, &target, "alice", &format!("needle haystack more {i}")).await }
    });
    futures_util::stream::iter(noise).buffer_unordered(8).collect::<Vec<_>>().await;
    app.settled().await;
    let many = cost().await;
    assert!(many <= few * 1.5 + 2.0, "a page of 5 cost {few} units with 12 matches and {many} with 240");

    let long = "a".repeat(600);
    let refused = app.get(&format!("/api/v1/org/{org}/users/alice/messages/search?keyword={long}"), "alice").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
}

/// The room's links page like every list: a page of links is one page of entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_links_page_newest_first_without_reading_them_all() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    for i in 0..30 {
        app.send(&org, &room, "alice", &format!("see https://links.example/{i}")).await;
    }
    let path = format!("/api/v1/org/{org}/rooms/{room}/links?limit=10");
    app.settled().await;
    let first = app.get(&path, "bob").await;
    let links: Vec<&str> = first.body["links"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(links.len(), 10);
    assert_eq!(links[0], "https://links.example/29");
    let all = app.all_pages(&path, "bob", "links").await;
    assert_eq!(all.len(), 30);
    let store = own_store(app);
    let before = store.usage();
    let page = PageQuery::default().parse().map(|page| PageRequest { limit: 10, ..page }).unwrap();
    let shown = store.room_links(&RoomId::parse(room.clone()).unwrap(), &page).await.unwrap();
    assert_eq!(shown.items.len(), 10);
    let used = store.usage().since(before);
    assert_eq!(used.calls, 1, "one Query");
    assert!(used.capacity_units <= 1.0, "one page, not the room's 30 links: {used:?}");
}

fn own_store(app: &TestApp) -> dm_shared::store::Store {
    let shared = &app.stack.state.store;
    dm_shared::store::Store::new(shared.client().clone(), shared.table())
}

/// A search hit or a pin opens one message, and the page around it scrolls both ways from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_opens_alone_or_with_the_page_around_it() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let mut sent = Vec::new();
    for n in 0..12 {
        sent.push(app.send(&org, &room, if n % 2 == 0 { "alice" } else { "bob" }, &format!("number {n}")).await);
    }
    let newest_first: Vec<String> = sent.iter().rev().cloned().collect();
    let base = format!("/api/v1/org/{org}/rooms/{room}/messages");

    let mut one = app.get(&format!("{base}/{}", sent[3]), "bob").await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.raw);
    assert_eq!(one.body["status"], 200);
    one.body.as_object_mut().unwrap().remove("status");
    let listed = app.get(&base, "bob").await;
    assert_eq!(one.body, listed.body["results"][8], "as the list shows it");
    assert_eq!(app.get(&format!("{base}/{}", sent[3]), "carol").await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&format!("{base}/01NOSUCHMESSAGE"), "bob").await.status, StatusCode::NOT_FOUND);

    // Five around the fourth message: two newer above it, it and two older below.
    let around = app.get(&format!("{base}?around={}&limit=5", sent[3]), "bob").await;
    assert_eq!(around.status, StatusCode::OK, "{}", around.raw);
    assert_eq!(ids(around.body["results"].as_array().unwrap(), "id"), newest_first[6..11]);
    let older = app.get(around.body["next"].as_str().unwrap().trim_start_matches(&app.base), "bob").await;
    assert_eq!(ids(older.body["results"].as_array().unwrap(), "id"), newest_first[11..]);
    assert_eq!(older.body["next"], Value::Null);
    let newer = app.get(around.body["previous"].as_str().unwrap().trim_start_matches(&app.base), "bob").await;
    assert_eq!(ids(newer.body["results"].as_array().unwrap(), "id"), newest_first[1..6]);
    // At the newest message there is nothing newer.
    let top = app.get(&format!("{base}?around={}&limit=3", sent[11]), "bob").await;
    assert_eq!(ids(top.body["results"].as_array().unwrap(), "id"), newest_first[..2]);
    assert_eq!(top.body["previous"], Value::Null);

    let deleted = sent[5].clone();
    let gone = app.call(Method::DELETE, &format!("{base}/{deleted}/message"), Some("bob"), None).await;
    assert_eq!(gone.status, StatusCode::OK);
    assert_eq!(app.get(&format!("{base}/{deleted}"), "bob").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("{base}?around={deleted}"), "bob").await.status, StatusCode::NOT_FOUND);
    let cursor = around.body["next"].as_str().unwrap().split("cursor=").nth(1).unwrap().to_owned();
    let both = app.get(&format!("{base}?around={}&cursor={cursor}", sent[3]), "bob").await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get(&format!("{base}?around=not%20an%20id"), "bob").await.status, StatusCode::BAD_REQUEST);
}

/// A post names whom it is for: members of the room only (400 naming the others), at most 20, each
/// once; the message shows them (`[]` when none), its event carries them, and an edit may change them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_mentions_members_of_its_room_only_and_an_edit_may_change_whom() {
    let app = spawn_app().await;
    let org = app.org_with("alice", &["bob", "carol", "dave"]).await;
    let room = app.room(&org, "alice", &["bob", "carol"]).await;
    let messages = format!("/api/v1/org/{org}/rooms/{room}/messages");
    let mut socket = app.socket("bob", &org).await.expect("bob connects");
    let send = |body: Value| app.post(&messages, "alice", body);

    let plain = send(json!({ "sender_id": "alice", "message": "hello all" })).await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.raw);
    let sent = send(json!({ "sender_id": "alice", "message": "@bob look", "mentions": ["bob", "bob", "carol"] })).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.raw);
    assert_eq!(sent.body["data"]["mentions"], json!(["bob", "carol"]), "each once, in the order given");
    let event = dm_tests::expect_event(&mut socket, "message_create").await;
    assert_eq!(event["data"]["mentions"], json!([]));
    let event = dm_tests::expect_event(&mut socket, "message_create").await;
    assert_eq!(event["data"]["mentions"], json!(["bob", "carol"]));
    let listed = app.get(&messages, "bob").await.body["results"].clone();
    assert_eq!((listed[0]["mentions"].clone(), listed[1]["mentions"].clone()), (json!(["bob", "carol"]), json!([])));

    let outside = send(json!({ "sender_id": "alice", "message": "hi", "mentions": ["bob", "dave", "nobody"] })).await;
    assert_eq!(outside.status, StatusCode::BAD_REQUEST, "{}", outside.raw);
    assert!(outside.body["message"].as_str().unwrap().ends_with("not: dave, nobody"), "{}", outside.raw);
    let many: Vec<String> = (0..21).map(|i| format!("u{i}")).collect();
    assert_eq!(
        send(json!({ "sender_id": "alice", "message": "hi", "mentions": many })).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get(&messages, "bob").await.body["results"].as_array().unwrap().len(),
        2,
        "nothing refused was stored"
    );

    let id = sent.str("message_id");
    let threads = format!("{messages}/{id}/threads");
    let reply = app.post(&threads, "bob", json!({ "sender_id": "bob", "message": "ok", "mentions": ["alice"] })).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.raw);
    assert_eq!(app.get(&threads, "alice").await.body["results"][0]["mentions"], json!(["alice"]));

    let one = format!("{messages}/{id}");
    let edit = |body: Value| app.call(Method::PUT, &one, Some("alice"), Some(body));
    let moved = edit(json!({ "sender_id": "alice", "message": "@carol look", "mentions": ["carol"] })).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.raw);
    assert_eq!(moved.body["data"]["mentions"], json!(["carol"]));
    let kept = edit(json!({ "sender_id": "alice", "message": "@carol look here" })).await;
    assert_eq!(kept.body["data"]["mentions"], json!(["carol"]), "an edit without mentions keeps them");
    let refused = edit(json!({ "sender_id": "alice", "message": "x", "mentions": ["dave"] })).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.raw);
    // Carol leaves: an edit that keeps its mentions still goes through.
    let leave = format!("/api/v1/org/{org}/rooms/{room}/members/carol");
    assert_eq!(app.call(Method::DELETE, &leave, Some("carol"), None).await.status, StatusCode::NO_CONTENT);
    let typo = edit(json!({ "sender_id": "alice", "message": "@carol look here!" })).await;
    assert_eq!(typo.status, StatusCode::OK, "{}", typo.raw);
    assert_eq!(typo.body["data"]["mentions"], json!(["carol"]));
    let updated = dm_tests::expect_event(&mut socket, "message_update").await;
    assert_eq!(updated["data"]["mentions"], json!(["carol"]));
}
