//! Invitations: made by owners and admins, previewed and accepted by anyone holding the link, with
//! every rule of who may invite whom, and the link's limits (expiry, uses, revocation, guessing).

use aws_sdk_dynamodb::types::AttributeValue;
use dm_tests::{TestApp, expect_event, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// An invite to `org` made by `by` with `body`, which must succeed.
async fn invite(app: &TestApp, org: &str, by: &str, body: Value) -> Value {
    let made = app.post(&format!("/api/v1/org/{org}/invites"), by, body).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.raw);
    made.body
}

async fn accept(app: &TestApp, token: &str, user: &str) -> dm_tests::Reply {
    app.call(Method::POST, &format!("/api/v1/invites/{token}/accept"), Some(user), None).await
}

async fn member_ids(app: &TestApp, org: &str) -> Vec<String> {
    let members = app.all_pages(&format!("/api/v1/org/{org}/members"), "owner", "data").await;
    members.iter().map(|member| member["_id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_shows_where_it_leads_and_makes_a_member_with_its_role() {
    let app = spawn_app().await;
    let org = app.org("owner").await;
    let made = invite(&app, &org, "owner", json!({ "role": "admin", "email": "bob@example.com" })).await;
    let token = made["token"].as_str().unwrap();
    assert!(token.len() >= 22, "128 bits or more: {token}");
    assert_eq!(made["url"], format!("{}/app/#invite={token}", app.base), "the web client's page, from the app URL");
    let made_for_bob = (made["role"].as_str(), made["uses"].as_u64(), made["max_uses"].as_u64());
    assert_eq!(made_for_bob, (Some("admin"), Some(0), Some(1)), "an invite made out to someone is theirs alone");

    let preview = app.get(&format!("/api/v1/invites/{token}"), "bob").await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.raw);
    assert_eq!(preview.body["org_id"], org.as_str());
    assert_eq!(preview.body["org_name"], "Acme");
    assert_eq!(preview.body["invited_by"], "owner");
    assert_eq!(preview.body["role"], "admin");
    assert_eq!(preview.body["expires_at"], made["expires_at"]);
    assert_eq!(preview.body["member"], false);

    let body = json!({ "display_name": "Bob Stone" });
    let joined = app.call(Method::POST, &format!("/api/v1/invites/{token}/accept"), Some("bob"), Some(body)).await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.raw);
    assert_eq!(joined.body["message"], "Joined the organization");
    assert_eq!(joined.body["data"]["role"], "admin");
    assert_eq!(joined.body["data"]["display_name"], "Bob Stone");
    assert_eq!(joined.body["data"]["email"], "bob@example.com");
    assert!(member_ids(&app, &org).await.contains(&"bob".to_owned()));
    let orgs = app.get("/api/v1/orgs", "bob").await;
    assert_eq!(orgs.body["results"][0]["org_id"], org.as_str(), "the org is bob's now");

    // His link, used up now, still shows him where it led, and accepting again changes nothing.
    let again = accept(&app, token, "bob").await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.raw);
    assert_eq!(again.body["message"], "Already a member of the organization");
    assert_eq!(app.get(&format!("/api/v1/invites/{token}"), "bob").await.body["member"], true);
    assert_eq!(app.get(&format!("/api/v1/invites/{token}"), "carol").await.status, StatusCode::GONE);
    let path = format!("/api/v1/org/{org}/invites");
    assert_eq!(app.get(&path, "owner").await.body["count"], 0, "used up, it leaves the list of live invites");

    // A link for many: each use counted once, the list showing it without its token.
    let team = invite(&app, &org, "owner", json!({ "max_uses": 10, "email": "team@example.com" })).await;
    let token = team["token"].as_str().unwrap();
    for user in ["carol", "carol", "bob"] {
        assert_eq!(accept(&app, token, user).await.status, StatusCode::OK);
    }
    let carol = app.get(&format!("/api/v1/org/{org}/members/carol/profile"), "owner").await;
    assert_eq!(carol.body["email"], "", "a shared link's address is a label, not each joiner's");
    let listed = app.get(&path, "owner").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.raw);
    let listed = &listed.body["results"][0];
    assert_eq!(listed["invite_id"], team["invite_id"]);
    assert_eq!(listed["uses"], 1, "carol joined once; bob was in already");
    assert!(listed.get("token").is_none() && listed.get("url").is_none(), "a list never shows tokens: {listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_owners_and_admins_invite_and_no_one_invites_above_their_role() {
    let app = spawn_app().await;
    let org = app.org("owner").await;
    app.join(&org, "owner", "admin", "admin").await;
    app.join(&org, "owner", "member", "member").await;
    let path = format!("/api/v1/org/{org}/invites");
    let status = |user: &'static str, body: Value| {
        let path = path.clone();
        let app = &app;
        async move { app.post(&path, user, body).await.status }
    };

    assert_eq!(status("member", json!({})).await, StatusCode::FORBIDDEN);
    assert_eq!(status("stranger", json!({})).await, StatusCode::FORBIDDEN);
    assert_eq!(status("admin", json!({ "role": "admin" })).await, StatusCode::FORBIDDEN, "an admin makes no admin");
    assert_eq!(status("owner", json!({ "role": "owner" })).await, StatusCode::BAD_REQUEST, "owners are promoted");
    assert_eq!(status("admin", json!({})).await, StatusCode::CREATED);
    assert_eq!(status("owner", json!({ "role": "admin" })).await, StatusCode::CREATED);
    let whole = json!({ "max_uses": 2.0, "expires_in": 3600.0 });
    assert_eq!(status("owner", whole).await, StatusCode::CREATED, "2.0 is JSON's 2");
    for bad in [
        json!({ "expires_in": 0 }),
        json!({ "expires_in": 31 * 24 * 3600 }),
        json!({ "max_uses": 0 }),
        json!({ "max_uses": 1001 }),
        json!({ "max_uses": 1.5 }),
        json!({ "expires_in": -60 }),
        json!({ "email": "nope" }),
        json!({ "role": "root" }),
        json!({ "uses": 3 }),
    ] {
        let reply = app.post(&path, "owner", bad.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}: {}", reply.raw);
        assert_eq!(reply.body["status"], 400);
    }
    // No body at all is a member invite for 7 days.
    let plain = app.raw(Method::POST, &path).bearer_auth(dm_tests::token("owner")).send().await.unwrap();
    let plain = dm_tests::read(plain).await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.raw);
    assert_eq!(plain.body["role"], "member");
    assert_eq!(plain.body["max_uses"], Value::Null);

    assert_eq!(app.get(&path, "member").await.status, StatusCode::FORBIDDEN, "members do not see invites");
    assert_eq!(app.get(&path, "admin").await.body["count"], 4);
    let id = plain.str("invite_id");
    let one = format!("{path}/{id}");
    let revoke = |user: &'static str| app.call(Method::DELETE, &one, Some(user), None);
    assert_eq!(revoke("member").await.status, StatusCode::FORBIDDEN);
    assert_eq!(revoke("admin").await.status, StatusCode::NO_CONTENT);
    assert_eq!(revoke("admin").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_expired_or_used_up_link_lets_no_one_in() {
    let app = spawn_app().await;
    let org = app.org("owner").await;
    let revoked = invite(&app, &org, "owner", json!({})).await;
    let token = revoked["token"].as_str().unwrap();
    let revoke = format!("/api/v1/org/{org}/invites/{}", revoked["invite_id"].as_str().unwrap());
    assert_eq!(app.call(Method::DELETE, &revoke, Some("owner"), None).await.status, StatusCode::NO_CONTENT);
    let gone = app.get(&format!("/api/v1/invites/{token}"), "bob").await;
    // Revoked reads as unknown: the same status and words as a token never made, or a malformed one.
    let unknown = app.get(&format!("/api/v1/invites/{}", "A".repeat(43)), "bob").await;
    let malformed = app.get("/api/v1/invites/nope", "bob").await;
    for reply in [&gone, &unknown, &malformed] {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.raw);
        assert_eq!(reply.body["message"], gone.body["message"]);
    }
    assert_eq!(accept(&app, token, "bob").await.status, StatusCode::NOT_FOUND);

    let once = invite(&app, &org, "owner", json!({ "max_uses": 1 })).await;
    let token = once["token"].as_str().unwrap();
    assert_eq!(accept(&app, token, "bob").await.status, StatusCode::OK);
    let used_up = accept(&app, token, "carol").await;
    assert_eq!(used_up.status, StatusCode::GONE, "{}", used_up.raw);
    assert!(used_up.body["message"].as_str().unwrap().contains("used up"));

    // An invite past its expiry (aged in the table: the shortest life is a minute).
    let expiring = invite(&app, &org, "owner", json!({ "expires_in": 60 })).await;
    let token = expiring["token"].as_str().unwrap();
    age(&app, &org, expiring["invite_id"].as_str().unwrap()).await;
    let expired = app.get(&format!("/api/v1/invites/{token}"), "carol").await;
    assert_eq!(expired.status, StatusCode::GONE, "{}", expired.raw);
    assert!(expired.body["message"].as_str().unwrap().contains("expired"));
    assert_eq!(accept(&app, token, "carol").await.status, StatusCode::GONE);
    let live = app.get(&format!("/api/v1/org/{org}/invites"), "owner").await;
    assert_eq!(live.body["count"], 0, "the list shows live invites only: {}", live.raw);
    assert_eq!(member_ids(&app, &org).await, ["bob", "owner"]);
}

/// Moves an invite's expiry into the past, as time would.
async fn age(app: &TestApp, org: &str, invite_id: &str) {
    let store = &app.stack.state.store;
    let entry = store
        .client()
        .get_item()
        .table_name(store.table())
        .key("PK", AttributeValue::S(format!("ORG#{org}")))
        .key("SK", AttributeValue::S(format!("INVITE#{invite_id}")))
        .send()
        .await
        .unwrap();
    let digest = entry.item.unwrap()["token_digest"].as_s().unwrap().clone();
    let past = [(":past", AttributeValue::N("1".into()))];
    app.alter_item((&format!("INVITE#{digest}"), "META"), "SET expires_secs = :past", &past).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_accepts_of_a_one_use_link_make_one_member() {
    let app = spawn_app().await;
    let org = app.org("owner").await;
    let made = invite(&app, &org, "owner", json!({ "max_uses": 1 })).await;
    let token = made["token"].as_str().unwrap();
    let users = ["u1", "u2", "u3", "u4", "u5", "u6"];
    let replies = futures_util::future::join_all(users.iter().map(|user| accept(&app, token, user))).await;
    let joined = replies.iter().filter(|reply| reply.status == StatusCode::OK).count();
    assert_eq!(joined, 1, "{replies:?}");
    assert!(replies.iter().all(|r| matches!(r.status, StatusCode::OK | StatusCode::GONE)), "{replies:?}");
    assert_eq!(member_ids(&app, &org).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_tokens_is_cut_short_per_caller() {
    let app = spawn_app().await;
    let org = app.org("owner").await;
    let made = invite(&app, &org, "owner", json!({})).await;
    let mut statuses = Vec::new();
    for n in 0..21 {
        let guess = format!("{n:0>43}");
        let reply = app.raw(Method::GET, &format!("/api/v1/invites/{guess}")).bearer_auth(dm_tests::token("mallory"));
        let reply = reply.send().await.unwrap();
        let retry_after = reply.headers().get("retry-after").map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
        statuses.push((reply.status(), retry_after));
    }
    assert!(statuses[..20].iter().all(|(status, _)| *status == StatusCode::NOT_FOUND), "{statuses:?}");
    let (status, retry_after) = statuses[20];
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some_and(|secs| (1..=60).contains(&secs)), "{retry_after:?}");
    // The real link too, for that caller, until the window ends; nobody else is held back.
    let token = made["token"].as_str().unwrap();
    assert_eq!(accept(&app, token, "mallory").await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(accept(&app, token, "bob").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_rejoins_through_a_new_invite_and_members_hear_of_joins() {
    let app = spawn_app().await;
    let org = app.org_with("owner", &["bob"]).await;
    let mut watching = app.socket("owner", &org).await.expect("the owner connects");
    let remove = format!("/api/v1/org/{org}/members/bob");
    assert_eq!(app.call(Method::DELETE, &remove, Some("owner"), None).await.status, StatusCode::NO_CONTENT);
    let left = expect_event(&mut watching, "member_left").await;
    assert_eq!(left["data"]["member_id"], "bob");
    assert_eq!(app.get(&format!("/api/v1/org/{org}/members/bob/profile"), "owner").await.status, StatusCode::NOT_FOUND);

    let made = invite(&app, &org, "owner", json!({})).await;
    let joined = accept(&app, made["token"].as_str().unwrap(), "bob").await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.raw);
    let event = expect_event(&mut watching, "member_joined").await;
    assert_eq!(event["org_id"], org.as_str());
    assert_eq!((event["data"]["_id"].as_str(), event["data"]["role"].as_str()), (Some("bob"), Some("member")));
    let room = app.post(&format!("/api/v1/org/{org}/room"), "owner", json!({ "room_user_ids": ["bob"] })).await;
    assert!(room.status.is_success(), "a rejoined member is a member again: {}", room.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_finishes_a_removal_cut_short_and_an_old_run_leaves_the_member_back_be() {
    let app = spawn_app().await;
    let org = app.org_with("owner", &["bob"]).await;
    let before = app.room(&org, "owner", &["bob"]).await;
    let store = &app.stack.state.store;
    let (org_id, bob) =
        (dm_shared::ids::OrgId::parse(org.clone()).unwrap(), dm_shared::ids::UserId::parse("bob").unwrap());
    let stale = store.member_record(&org_id, &bob).await.unwrap().expect("bob's membership");
    // A removal that stopped right after marking him.
    let yes = [(":yes", AttributeValue::Bool(true))];
    app.alter_item((&format!("ORG#{org}"), "MEMBER#bob"), "SET deleted = :yes", &yes).await;

    let made = invite(&app, &org, "owner", json!({})).await;
    let joined = accept(&app, made["token"].as_str().unwrap(), "bob").await;
    assert_eq!(joined.status, StatusCode::OK, "{}", joined.raw);
    assert_eq!(joined.body["message"], "Joined the organization");
    let info = app.get(&format!("/api/v1/org/{org}/rooms/{before}/info"), "owner").await;
    assert_eq!(info.body["room_user_ids"], json!(["owner"]), "the removal was finished first");
    let after = app.room(&org, "owner", &["bob"]).await;

    // The run that stopped comes back to finish: it finds bob back, and leaves him and his rooms be.
    let leaving = dm_shared::model::Member { deleted: true, ..stale.clone() };
    store.remove_from_org(&leaving, &leaving).await.expect("the old run ends");
    assert_eq!(app.get(&format!("/api/v1/org/{org}/members/bob/profile"), "owner").await.status, StatusCode::OK);
    let info = app.get(&format!("/api/v1/org/{org}/rooms/{after}/info"), "bob").await;
    assert_eq!(info.body["room_user_ids"], json!(["owner", "bob"]), "{}", info.raw);
}
