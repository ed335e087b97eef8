use std::time::Duration;

use dm_tests::{Socket, TestApp, expect_event, next_event, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An org of alice (owner), bob and carol; a room of alice and bob.
async fn setup(app: &TestApp) -> (String, String) {
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    (org, room)
}

/// No room event within a while (room mates' presence and the org's member events aside).
async fn silent(socket: &mut Socket) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Some(event) = next_event(socket, deadline.saturating_duration_since(tokio::time::Instant::now())).await {
        assert!(event.get("room_id").is_none(), "expected no room event, got {event}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_needs_a_valid_token_and_org() {
    let app = &spawn_app().await;
    let (org, _) = setup(app).await;
    assert!(app.socket("bob", &org).await.is_ok());
    assert_eq!(app.socket("stranger", &org).await.err(), Some(403));
    assert_eq!(app.socket("bob", "").await.err(), Some(400));
    let url = format!("{}/ws?token=not-a-token&org_id={org}", app.base.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("a bad token must be refused: {:?}", other.map(|_| ())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_receive_every_event_of_their_room() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let mut bob = app.socket("bob", &org).await.unwrap();
    let base = format!("/api/v1/org/{org}/rooms/{room}");

    let id = app.send(&org, &room, "alice", "hello bob").await;
    let created = expect_event(&mut bob, "message_create").await;
    assert_eq!(created["org_id"], org.as_str());
    assert_eq!(created["room_id"], room.as_str());
    assert_eq!(created["data"]["message_id"], id.as_str());
    assert_eq!(created["data"]["message"], "hello bob");
    assert!(created["event_id"].is_string());

    app.call(
        Method::PUT,
        &format!("{base}/messages/{id}"),
        Some("alice"),
        Some(json!({ "sender_id": "alice", "message": "hello Bob" })),
    )
    .await;
    assert_eq!(expect_event(&mut bob, "message_update").await["data"]["message"], "hello Bob");
    app.put(&format!("/api/v1/org/{org}/messages/{id}/pin"), "alice").await;
    assert_eq!(expect_event(&mut bob, "pin_message").await["data"]["message_id"], id.as_str());
    app.put(&format!("/api/v1/org/{org}/messages/{id}/pin"), "alice").await;
    expect_event(&mut bob, "unpin_message").await;

    let reactions = format!("{base}/messages/{id}/reactions");
    app.post(&reactions, "alice", json!({ "sender_id": "alice", "data": "👍" })).await;
    let added = expect_event(&mut bob, "add_message_reaction").await;
    assert_eq!(added["data"]["reaction"], "👍");
    assert_eq!(added["data"]["message_id"], id.as_str());
    app.call(Method::DELETE, &format!("{reactions}/%F0%9F%91%8D"), Some("alice"), None).await;
    expect_event(&mut bob, "remove_message_reaction").await;

    let thread = format!("{base}/messages/{id}/threads");
    let reply =
        app.post(&thread, "alice", json!({ "sender_id": "alice", "message": "in a thread" })).await.str("thread_id");
    assert_eq!(expect_event(&mut bob, "thread_message_create").await["data"]["thread_id"], reply.as_str());
    app.call(
        Method::PUT,
        &format!("{thread}/{reply}"),
        Some("alice"),
        Some(json!({ "sender_id": "alice", "message": "edited" })),
    )
    .await;
    expect_event(&mut bob, "thread_message_update").await;
    app.call(Method::DELETE, &format!("{thread}/{reply}"), Some("alice"), None).await;
    expect_event(&mut bob, "thread_message_delete").await;

    app.put(&format!("{base}/add-member/carol"), "alice").await;
    assert_eq!(expect_event(&mut bob, "member_added").await["data"]["member_id"], "carol");
    app.put(&format!("{base}/remove-member/carol"), "alice").await;
    assert_eq!(expect_event(&mut bob, "member_removed").await["data"]["member_id"], "carol");

    app.call(Method::DELETE, &format!("{base}/messages/{id}/message"), Some("alice"), None).await;
    assert_eq!(expect_event(&mut bob, "message_delete").await["data"]["message_id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_room_reaches_its_members_before_its_first_message() {
    let app = &spawn_app().await;
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let mut bob = app.socket("bob", &org).await.unwrap();
    let mut carol = app.socket("carol", &org).await.unwrap();

    let room = app.room(&org, "alice", &["bob"]).await;
    let created = expect_event(&mut bob, "room_created").await;
    assert_eq!((created["room_id"].as_str(), created["seq"].as_u64()), (Some(room.as_str()), Some(1)));
    assert_eq!(created["data"]["room_user_ids"], json!(["alice", "bob"]));
    assert_eq!(created["data"]["created_by"], "alice");
    assert_eq!(created["data"]["room_id"], room.as_str());
    app.send(&org, &room, "alice", "hi").await;
    assert_eq!(expect_event(&mut bob, "message_create").await["seq"], 2);
    silent(&mut carol).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_goes_to_the_readers_own_connections_only() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let mut alice = app.socket("alice", &org).await.unwrap();
    let mut bob_phone = app.socket("bob", &org).await.unwrap();
    let mut bob_laptop = app.socket("bob", &org).await.unwrap();
    let id = app.send(&org, &room, "alice", "read me").await;
    for socket in [&mut alice, &mut bob_phone, &mut bob_laptop] {
        expect_event(socket, "message_create").await;
    }
    app.put(&format!("/api/v1/org/{org}/messages/{id}/read"), "bob").await;
    for socket in [&mut bob_phone, &mut bob_laptop] {
        let read = expect_event(socket, "read").await;
        assert_eq!(read["data"], json!({ "message_id": id, "read": true }));
    }
    silent(&mut alice).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outsiders_and_removed_members_get_nothing() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let mut carol = app.socket("carol", &org).await.unwrap();
    let other_org = app.org_with("bob", &["alice"]).await;
    let mut bob_elsewhere = app.socket("bob", &other_org).await.unwrap();
    let mut bob = app.socket("bob", &org).await.unwrap();

    app.send(&org, &room, "alice", "private").await;
    expect_event(&mut bob, "message_create").await;
    silent(&mut carol).await;
    silent(&mut bob_elsewhere).await;

    app.call(Method::DELETE, &format!("/api/v1/org/{org}/rooms/{room}/members/bob"), Some("alice"), None).await;
    let removed = expect_event(&mut bob, "member_removed").await;
    assert_eq!(removed["data"]["member_id"], "bob", "the removed member hears of it");
    assert_eq!(removed["room_id"], room.as_str());
    app.send(&org, &room, "alice", "after bob left").await;
    silent(&mut bob).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_in_order_and_closed_connections_are_forgotten() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let mut bob = app.socket("bob", &org).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..20 {
        sent.push(app.send(&org, &room, if i % 2 == 0 { "alice" } else { "bob" }, &format!("n{i}")).await);
    }
    let mut received = Vec::new();
    let mut ids = std::collections::HashSet::new();
    while received.len() < 20 {
        let event = expect_event(&mut bob, "message_create").await;
        assert!(ids.insert(event["event_id"].as_str().unwrap().to_owned()), "event ids are unique");
        received.push(event["data"]["message_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(received, sent);

    let store = &app.stack.state.store;
    let (org_id, bob_id) =
        (dm_shared::ids::OrgId::parse(org.clone()).unwrap(), dm_shared::ids::UserId::parse("bob").unwrap());
    assert_eq!(store.open_connections(&org_id, std::slice::from_ref(&bob_id)).await.unwrap()[0].len(), 1);
    bob.close(None).await.unwrap();
    let mut open = 1;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        open = store.open_connections(&org_id, std::slice::from_ref(&bob_id)).await.unwrap()[0].len();
        if open == 0 {
            break;
        }
    }
    assert_eq!(open, 0, "a closed connection is forgotten");

    // A connection the WebSocket API reports gone (410) is forgotten on the next event.
    store.open_connection(&org_id, &bob_id, "vanished").await.unwrap();
    app.send(&org, &room, "alice", "anyone there?").await;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        open = store.open_connections(&org_id, std::slice::from_ref(&bob_id)).await.unwrap()[0].len();
        if open == 0 {
            break;
        }
    }
    assert_eq!(open, 0, "a gone connection is forgotten");
    let status = app.get(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "alice").await.status;
    assert_eq!(status, StatusCode::OK, "writes never wait for delivery");
}

/// An OIDC issuer on loopback publishing one key, as Cognito publishes its keys.
async fn issuer(secret: &[u8]) -> String {
    use base64::Engine;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let keys = json!({ "keys": [{ "kty": "oct", "kid": "k1", "alg": "HS256", "k": k }] });
    let discovery = json!({ "issuer": base, "jwks_uri": format!("{base}/keys") });
    let app = axum::Router::new()
        .route("/.well-known/openid-configuration", axum::routing::get(move || async move { axum::Json(discovery) }))
        .route("/keys", axum::routing::get(move || async move { axum::Json(keys) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_issuer_connect_checks_tokens_against_its_published_keys() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let app = &spawn_app().await;
    let (org, _) = setup(app).await;
    let secret = b"the issuer's signing key";
    let issuer = issuer(secret).await;
    let mut config = (*app.stack.state.config).clone();
    config.jwt_issuer = Some(issuer.clone());
    config.jwt_audience = vec!["dm-app".into()];
    let sdk = dm_shared::state::sdk_config(&config).await;
    let realtime = dm_realtime::Realtime::new(dm_shared::AppState::new(config.clone(), &sdk), &app.base).unwrap();

    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 600;
    let mint = |kid: Option<&str>, claims: Value, key: &[u8]| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = kid.map(str::to_owned);
        encode(&header, &claims, &EncodingKey::from_secret(key)).unwrap()
    };
    let good = mint(Some("k1"), json!({ "sub": "bob", "exp": exp, "iss": issuer, "aud": "dm-app" }), secret);
    assert_eq!(realtime.connect("c1", Some(&good), Some(&org)).await.unwrap().as_str(), "bob");
    let cognito = mint(Some("k1"), json!({ "sub": "bob", "exp": exp, "iss": issuer, "client_id": "dm-app" }), secret);
    assert!(realtime.connect("c2", Some(&cognito), Some(&org)).await.is_ok());

    let refused = [
        mint(Some("k1"), json!({ "sub": "bob", "exp": exp, "iss": issuer, "aud": "another-app" }), secret),
        mint(Some("k1"), json!({ "sub": "bob", "exp": exp, "iss": "https://elsewhere", "aud": "dm-app" }), secret),
        mint(Some("k1"), json!({ "sub": "bob", "exp": exp - 1200, "iss": issuer, "aud": "dm-app" }), secret),
        mint(Some("k2"), json!({ "sub": "bob", "exp": exp, "iss": issuer, "aud": "dm-app" }), secret),
        mint(Some("k1"), json!({ "sub": "bob", "exp": exp, "iss": issuer, "aud": "dm-app" }), b"forged"),
        mint(Some("k1"), json!({ "sub": "bob", "exp": exp, "iss": issuer, "aud": "dm-app", "nbf": exp - 300 }), secret),
        mint(Some("k1"), json!({ "sub": "bob", "exp": exp, "aud": "dm-app" }), secret),
        mint(Some("k1"), json!({ "sub": "bob", "exp": exp, "iss": format!("{issuer}/"), "aud": "dm-app" }), secret),
        dm_tests::token("bob"),
    ];
    for token in refused {
        let err = realtime.connect("c3", Some(&token), Some(&org)).await.unwrap_err();
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    }

    // An issuer configured with a trailing slash is compared with it, as the HTTP API's authorizer does.
    let mut slashed = config.clone();
    slashed.jwt_issuer = Some(format!("{issuer}/"));
    let realtime = dm_realtime::Realtime::new(dm_shared::AppState::new(slashed, &sdk), &app.base).unwrap();
    let with_slash =
        mint(Some("k1"), json!({ "sub": "bob", "exp": exp, "iss": format!("{issuer}/"), "aud": "dm-app" }), secret);
    assert!(realtime.connect("c4", Some(&with_slash), Some(&org)).await.is_ok());
    assert!(realtime.connect("c5", Some(&good), Some(&org)).await.is_err(), "no slash is another issuer");

    // No audience would accept any app's tokens: the function refuses to start.
    let mut open = config;
    open.jwt_audience = Vec::new();
    assert!(dm_realtime::Realtime::new(dm_shared::AppState::new(open, &sdk), &app.base).is_err());
}

/// 200 connections across 20 rooms while messages flow: each connection gets exactly its room's
/// events, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_connections_get_exactly_their_rooms_events_in_order() {
    let app = &spawn_app().await;
    let users: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let org = app.org_with("owner", &names).await;
    // Room r holds users 5r..5r+5; each user opens two connections.
    let mut rooms = Vec::new();
    for chunk in names.chunks(5) {
        rooms.push(app.room(&org, chunk[0], &chunk[1..]).await);
    }
    let mut sockets = Vec::new();
    for (i, user) in names.iter().enumerate() {
        for _ in 0..2 {
            sockets.push((i / 5, app.socket(user, &org).await.unwrap()));
        }
    }
    assert_eq!(sockets.len(), 200);

    let per_room = 5;
    let mut sent: Vec<Vec<String>> = vec![Vec::new(); rooms.len()];
    let org = &org;
    for n in 0..per_room {
        let sends = rooms.iter().enumerate().map(|(r, room)| {
            let sender = names[r * 5 + n % 5];
            let text = format!("room {r} message {n}");
            async move { app.send(org, room, sender, &text).await }
        });
        for (r, id) in futures_util::future::join_all(sends).await.into_iter().enumerate() {
            sent[r].push(id);
        }
    }
    let receive = sockets.into_iter().map(|(r, mut socket)| {
        let expected = sent[r].clone();
        let room = rooms[r].clone();
        async move {
            let mut got = Vec::new();
            while got.len() < expected.len() {
                // Generous: the push logs and posts each event to five members, on the DynamoDB
                // Local the whole suite shares (alone, every event arrives within seconds).
                let event = next_event(&mut socket, Duration::from_secs(180)).await.expect("every event arrives");
                if event.get("room_id").is_none() || event["event"] == "room_created" {
                    // Room mates coming online, members joining the org, and the rooms' creation
                    // pushed as the sockets connected: not the messages this test counts.
                    continue;
                }
                assert_eq!(event["room_id"], room.as_str(), "an event of another room");
                got.push(event["data"]["message_id"].as_str().unwrap().to_owned());
            }
            assert_eq!(got, expected, "events in order");
            let more = next_event(&mut socket, Duration::from_millis(300)).await;
            assert!(more.is_none_or(|event| event["event"] == "presence"), "nothing more");
        }
    });
    futures_util::future::join_all(receive).await;
}

/// The `@connections` API posts to any connection: only the functions inside the local stack may
/// call it, as only IAM-authorised callers may in AWS. The public port does not serve it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_port_does_not_serve_the_management_api() {
    let app = &spawn_app().await;
    let org = app.org_with("alice", &["bob"]).await;
    let mut bob = app.socket("bob", &org).await.unwrap();
    let (org_id, bob_id) =
        (dm_shared::ids::OrgId::parse(org.clone()).unwrap(), dm_shared::ids::UserId::parse("bob").unwrap());
    let connections = app.stack.state.store.open_connections(&org_id, std::slice::from_ref(&bob_id)).await.unwrap();
    let id = &connections[0][0];
    for method in [Method::POST, Method::DELETE] {
        let forged = app.raw(method, &format!("/@connections/{id}")).body(r#"{"event":"forged"}"#).send();
        assert_eq!(forged.await.unwrap().status(), StatusCode::NOT_FOUND);
    }
    silent(&mut bob).await;
    assert_eq!(
        app.stack.state.store.open_connections(&org_id, std::slice::from_ref(&bob_id)).await.unwrap()[0].len(),
        1
    );
}
