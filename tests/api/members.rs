use dm_tests::spawn_app;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_creator_owns_a_new_org_and_adds_members() {
    let app = spawn_app().await;
    let org = app.org("owner").await;
    let body = json!({
        "member_id": "bob", "email": "bob@example.com", "role": "member",
        "first_name": "Bob", "last_name": "Stone", "display_name": "bobby", "user_name": "bob",
    });
    let added = app.post(&format!("/api/v1/org/{org}/members"), "owner", body.clone()).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.raw);
    assert_eq!(added.body["data"]["role"], "member");

    let again = app.post(&format!("/api/v1/org/{org}/members"), "owner", body).await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    let list = app.get(&format!("/api/v1/org/{org}/members"), "bob").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["message"], "Members retrieved successfully");
    let members = list.body["data"].as_array().unwrap();
    let roles: Vec<(&str, &str)> =
        members.iter().map(|m| (m["_id"].as_str().unwrap(), m["role"].as_str().unwrap())).collect();
    assert_eq!(roles, [("bob", "member"), ("owner", "owner")]);
    assert_eq!(members[0]["email"], "bob@example.com");
    assert_eq!(members[0]["display_name"], "bobby");
    assert_eq!(members[0]["org_id"], org.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_owners_and_admins_add_members_and_only_owners_add_admins() {
    let app = spawn_app().await;
    let org = app.org("owner").await;
    app.join(&org, "owner", "admin", "admin").await;
    app.join(&org, "owner", "bob", "member").await;
    let path = format!("/api/v1/org/{org}/members");
    let new = |id: &str, role: &str| json!({ "member_id": id, "email": format!("{id}@example.com"), "role": role });

    assert_eq!(app.post(&path, "bob", new("carol", "member")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&path, "stranger", new("carol", "member")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&path, "admin", new("carol", "member")).await.status, StatusCode::CREATED);
    assert_eq!(app.post(&path, "admin", new("dave", "admin")).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.post(&path, "owner", new("dave", "owner")).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.post(&path, "owner", new("dave", "superuser")).await.status, StatusCode::BAD_REQUEST);
    let bad_email = json!({ "member_id": "erin", "email": "nope", "role": "member" });
    assert_eq!(app.post(&path, "owner", bad_email).await.status, StatusCode::BAD_REQUEST);
    let bad_id = json!({ "member_id": "../x", "email": "x@example.com" });
    assert_eq!(app.post(&path, "owner", bad_id).await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_read_as_the_seed_shows_them_and_change_by_their_owner_or_a_manager() {
    let app = spawn_app().await;
    let org = app.org_with("owner", &["bob", "carol"]).await;
    let bob = format!("/api/v1/org/{org}/members/bob/profile");

    let patch = |user: &'static str, body: serde_json::Value| app.call(Method::PATCH, &bob, Some(user), Some(body));
    let changed = patch("bob", json!({ "bio": "Medic", "pronouns": "he/him", "status": "away" })).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.raw);
    assert_eq!(changed.body["bio"], "Medic");

    assert_eq!(patch("carol", json!({ "bio": "hacked" })).await.status, StatusCode::FORBIDDEN);
    assert_eq!(patch("owner", json!({ "display_name": "Bobby" })).await.status, StatusCode::OK);
    assert_eq!(patch("bob", json!({ "role": "owner" })).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(patch("bob", json!({ "bio": 5 })).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(patch("bob", json!({ "phone": "1".repeat(300) })).await.status, StatusCode::BAD_REQUEST);

    let profile = app.get(&bob, "carol").await;
    assert_eq!(profile.status, StatusCode::OK);
    for (field, value) in [("bio", "Medic"), ("pronouns", "he/him"), ("status", "away"), ("display_name", "Bobby")] {
        assert_eq!(profile.body[field], value, "{}", profile.raw);
    }
    for field in ["first_name", "last_name", "user_name", "image_url", "phone"] {
        assert!(profile.body[field].is_string(), "{field} in {}", profile.raw);
    }

    let missing = app.get(&format!("/api/v1/org/{org}/members/nobody/profile"), "bob").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let patched_missing = app
        .call(
            Method::PATCH,
            &format!("/api/v1/org/{org}/members/nobody/profile"),
            Some("owner"),
            Some(json!({ "bio": "x" })),
        )
        .await;
    assert_eq!(patched_missing.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&bob, "stranger").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_member_list_pages_with_a_cursor() {
    let app = spawn_app().await;
    let org = app.org_with("owner", &["m1", "m2", "m3", "m4"]).await;
    let mut seen = Vec::new();
    let mut path = format!("/api/v1/org/{org}/members?limit=2");
    loop {
        let page = app.get(&path, "owner").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
        for member in page.body["data"].as_array().unwrap() {
            seen.push(member["_id"].as_str().unwrap().to_owned());
        }
        match page.body["next"].as_str() {
            Some(next) => path = next.trim_start_matches(&app.base).to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, ["m1", "m2", "m3", "m4", "owner"]);
    let bad = app.get(&format!("/api/v1/org/{org}/members?limit=0"), "owner").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = app.get(&format!("/api/v1/org/{org}/members?cursor=garbage!"), "owner").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

/// An org membership ends by leaving or by removal (owner/admin; an admin only by an owner; never the
/// last owner), and takes every room membership of the org with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_leaves_the_org_and_every_room_in_it() {
    let app = &spawn_app().await;
    let org = app.org_with("owner", &["alice", "bob", "carol"]).await;
    app.join(&org, "owner", "admin", "admin").await;
    app.join(&org, "owner", "admin2", "admin").await;
    let pair = app.room(&org, "alice", &["bob"]).await;
    let trio = app.room(&org, "alice", &["bob", "carol"]).await;
    let remove = |caller: &'static str, member: &'static str| {
        let path = format!("/api/v1/org/{org}/members/{member}");
        async move { app.call(Method::DELETE, &path, Some(caller), None).await }
    };
    let members_of = |room: String| {
        let path = format!("/api/v1/org/{org}/rooms/{room}/info");
        async move { app.get(&path, "owner").await.body["room_user_ids"].clone() }
    };

    assert_eq!(remove("carol", "bob").await.status, StatusCode::FORBIDDEN, "a member removes only themself");
    assert_eq!(remove("admin", "admin2").await.status, StatusCode::FORBIDDEN, "only an owner removes an admin");
    assert_eq!(remove("owner", "owner").await.status, StatusCode::CONFLICT, "the last owner cannot leave");
    assert_eq!(remove("stranger", "bob").await.status, StatusCode::FORBIDDEN);
    assert_eq!(remove("owner", "nobody").await.status, StatusCode::NOT_FOUND);

    let left = remove("bob", "bob").await;
    assert_eq!(left.status, StatusCode::NO_CONTENT, "{}", left.raw);
    assert!(left.raw.is_empty());
    assert_eq!(members_of(pair.clone()).await, json!(["alice"]));
    assert_eq!(members_of(trio.clone()).await, json!(["alice", "carol"]));
    assert_eq!(app.get(&format!("/api/v1/org/{org}/users/bob/rooms"), "bob").await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&format!("/api/v1/org/{org}/users/bob/unread"), "bob").await.status, StatusCode::FORBIDDEN);
    let listed = app.get(&format!("/api/v1/org/{org}/members"), "owner").await;
    let ids: Vec<&str> = listed.body["data"].as_array().unwrap().iter().map(|m| m["_id"].as_str().unwrap()).collect();
    assert!(!ids.contains(&"bob"), "{ids:?}");
    assert_eq!(remove("bob", "bob").await.status, StatusCode::NOT_FOUND, "gone");

    assert_eq!(remove("admin", "carol").await.status, StatusCode::NO_CONTENT);
    assert_eq!(members_of(trio).await, json!(["alice"]));
    assert_eq!(remove("owner", "admin2").await.status, StatusCode::NO_CONTENT);
}

/// A removal cut short after it ended the member's access (the member item is marked, their rooms
/// not yet left) is finished by asking again; meanwhile nobody can add them to a room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_cut_short_is_finished_by_asking_again() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let app = &spawn_app().await;
    let org = app.org_with("owner", &["alice", "bob", "carol"]).await;
    let rooms = [
        app.room(&org, "alice", &["bob"]).await,
        app.room(&org, "carol", &["bob"]).await,
        app.room(&org, "alice", &["bob", "carol"]).await,
    ];
    // One room left already; then the member item marked, as a run that stopped there leaves it.
    let one = app.put(&format!("/api/v1/org/{org}/rooms/{}/remove-member/bob", rooms[0]), "bob").await;
    assert_eq!(one.status, StatusCode::OK);
    let yes = [(":yes", AttributeValue::Bool(true))];
    app.alter_item((&format!("ORG#{org}"), "MEMBER#bob"), "SET deleted = :yes", &yes).await;
    assert_eq!(app.get(&format!("/api/v1/org/{org}/members"), "bob").await.status, StatusCode::FORBIDDEN);
    let add = app.put(&format!("/api/v1/org/{org}/rooms/{}/add-member/bob", rooms[0]), "alice").await;
    assert_eq!(add.status, StatusCode::NOT_FOUND, "a leaving member is no member: {}", add.raw);

    let finished = app.call(Method::DELETE, &format!("/api/v1/org/{org}/members/bob"), Some("bob"), None).await;
    assert_eq!(finished.status, StatusCode::NO_CONTENT, "{}", finished.raw);
    for room in &rooms {
        let members =
            app.get(&format!("/api/v1/org/{org}/rooms/{room}/info"), "owner").await.body["room_user_ids"].clone();
        assert!(!members.as_array().unwrap().contains(&json!("bob")), "{room}: {members}");
    }
    let profile = app.get(&format!("/api/v1/org/{org}/members/bob/profile"), "alice").await;
    assert_eq!(profile.status, StatusCode::NOT_FOUND);
}

/// An org picker: the caller's orgs with their names and the caller's role, oldest first, paged;
/// an org left is no longer listed, nor anyone else's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_lists_their_own_orgs_for_an_org_picker() {
    let app = spawn_app().await;
    let create = |owner: &'static str, name: &'static str| {
        let app = &app;
        async move { app.post("/api/v1/orgs", owner, json!({ "name": name })).await.str("org_id") }
    };
    let acme = create("alice", "Acme").await;
    let beta = create("bob", "Beta").await;
    app.join(&beta, "bob", "alice", "admin").await;
    let _theirs = create("carol", "Carol's").await;

    let listed = |user: &'static str| {
        let app = &app;
        async move {
            let mut seen = Vec::new();
            let mut path = "/api/v1/orgs?limit=1".to_owned();
            loop {
                let page = app.get(&path, user).await;
                assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
                assert!(page.body["count"].as_u64().is_some_and(|count| count <= 1), "{}", page.raw);
                for org in page.body["results"].as_array().unwrap() {
                    seen.push((org["org_id"].as_str().unwrap().to_owned(), org["name"].clone(), org["role"].clone()));
                }
                match page.body["next"].as_str() {
                    Some(next) => path = next.trim_start_matches(&app.base).to_owned(),
                    None => break seen,
                }
            }
        }
    };
    assert_eq!(
        listed("alice").await,
        [(acme.clone(), json!("Acme"), json!("owner")), (beta.clone(), json!("Beta"), json!("admin"))]
    );
    assert_eq!(listed("dave").await, [], "a user of no org lists none");

    let left = app.call(Method::DELETE, &format!("/api/v1/org/{beta}/members/alice"), Some("alice"), None).await;
    assert_eq!(left.status, StatusCode::NO_CONTENT, "{}", left.raw);
    assert_eq!(listed("alice").await, [(acme, json!("Acme"), json!("owner"))]);

    assert_eq!(app.call(Method::GET, "/api/v1/orgs", None, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get("/api/v1/orgs?limit=0", "alice").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get("/api/v1/orgs?cursor=garbage!", "alice").await.status, StatusCode::BAD_REQUEST);
}

/// Roles change by the org's one rule: owners give any role, admins none above member (so they
/// change no one's), members none; an org always keeps an owner, even when its owners step down at
/// the same moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_change_by_the_orgs_rule_and_an_org_always_keeps_an_owner() {
    let app = &spawn_app().await;
    let org = app.org_with("owner", &["bob", "carol"]).await;
    app.join(&org, "owner", "admin", "admin").await;
    let set = |caller: &'static str, member: &'static str, role: &'static str| {
        let path = format!("/api/v1/org/{org}/members/{member}/role");
        async move { app.call(Method::PUT, &path, Some(caller), Some(json!({ "role": role }))).await }
    };
    let role_of = |member: &'static str| {
        let path = format!("/api/v1/org/{org}/members/{member}/profile");
        async move { app.get(&path, "owner").await.body["role"].clone() }
    };

    assert_eq!(set("admin", "bob", "owner").await.status, StatusCode::FORBIDDEN, "an admin cannot promote to owner");
    assert_eq!(set("admin", "bob", "admin").await.status, StatusCode::FORBIDDEN, "nor make an admin");
    assert_eq!(set("admin", "owner", "member").await.status, StatusCode::FORBIDDEN, "nor demote an owner");
    assert_eq!(set("bob", "carol", "admin").await.status, StatusCode::FORBIDDEN);
    assert_eq!(set("bob", "bob", "admin").await.status, StatusCode::FORBIDDEN, "nobody promotes themself");
    assert_eq!(set("stranger", "bob", "member").await.status, StatusCode::FORBIDDEN);
    assert_eq!(set("owner", "nobody", "admin").await.status, StatusCode::NOT_FOUND);
    assert_eq!(set("owner", "bob", "king").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(set("owner", "owner", "admin").await.status, StatusCode::CONFLICT, "the last owner cannot step down");
    assert_eq!(role_of("owner").await, "owner");

    let promoted = set("owner", "bob", "admin").await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.raw);
    assert_eq!(promoted.body["role"], "admin");
    assert_eq!(set("owner", "carol", "owner").await.status, StatusCode::OK);
    assert_eq!(role_of("carol").await, "owner");
    // Two owners now: either may leave or step down, but not both at once.
    let (a, b) = tokio::join!(set("owner", "owner", "member"), set("carol", "carol", "admin"));
    let stepped_down = [a.status, b.status].iter().filter(|status| **status == StatusCode::OK).count();
    assert_eq!(stepped_down, 1, "{} / {}", a.raw, b.raw);
    assert!([a.status, b.status].contains(&StatusCode::CONFLICT));
    let owners = app.get(&format!("/api/v1/org/{org}/members"), "bob").await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|member| member["role"] == "owner")
        .count();
    assert_eq!(owners, 1);

    // A second owner again, who then leaves: the first stays, and is the last again.
    let last = if a.status == StatusCode::OK { "carol" } else { "owner" };
    let other = if last == "carol" { "owner" } else { "carol" };
    assert_eq!(set(last, other, "owner").await.status, StatusCode::OK);
    let leave = format!("/api/v1/org/{org}/members/{other}");
    assert_eq!(app.call(Method::DELETE, &leave, Some(other), None).await.status, StatusCode::NO_CONTENT);
    let leave_last = format!("/api/v1/org/{org}/members/{last}");
    assert_eq!(app.call(Method::DELETE, &leave_last, Some(last), None).await.status, StatusCode::CONFLICT);
}

/// Notification settings are the member's own: they read and change them through their profile (a
/// merge patch, checked, the seed's empty shapes and unknown keys kept), and nobody else sees them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_settings_are_the_members_own_checked_and_kept_as_given() {
    let app = &spawn_app().await;
    let org = app.org_with("owner", &["bob"]).await;
    let bob = format!("/api/v1/org/{org}/members/bob/profile");
    let patch = |user: &'static str, body: serde_json::Value| app.call(Method::PATCH, &bob, Some(user), Some(body));

    let fresh = app.get(&bob, "bob").await;
    assert_eq!(fresh.body["settings"]["notifications"]["notify_me_about"], "all", "{}", fresh.raw);
    assert_eq!(fresh.body["settings"]["notifications"]["message_preview_in_each_notification"], true);

    let seed = json!({ "settings": {
        "notifications": {
            "notify_me_about": "mentions", "my_keywords": "deploy, Café", "notification_schedule": "",
            "mute_all_sounds": true, "use_different_settings_mobile": "",
        },
        "themes": { "colors": "dark" },
    }});
    let saved = patch("bob", seed).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.raw);
    let notifications = &saved.body["settings"]["notifications"];
    assert_eq!(notifications["notify_me_about"], "mentions");
    assert_eq!(notifications["my_keywords"], json!(["deploy", "Café"]));
    assert_eq!(notifications["mute_all_sounds"], true, "unknown keys are kept as given");
    assert_eq!(saved.body["settings"]["themes"]["colors"], "dark");

    let night =
        json!({ "settings": { "notifications": { "notification_schedule": { "start": "22:00", "end": "08:00" } } } });
    assert_eq!(patch("bob", night).await.status, StatusCode::OK);
    let read = app.get(&bob, "bob").await.body["settings"]["notifications"].clone();
    assert_eq!(read["notification_schedule"], json!({ "start": "22:00", "end": "08:00" }));
    assert_eq!(read["notify_me_about"], "mentions", "a patch changes only what it names");
    let settings = app.get(&bob, "bob").await.body["settings"].clone();
    assert!(settings.get("PK").is_none() && settings.get("version").is_none(), "only settings: {settings}");

    for bad in [
        json!({ "settings": { "notifications": { "notify_me_about": "everything" } } }),
        json!({ "settings": { "notifications": { "my_keywords": ["two words"] } } }),
        json!({ "settings": { "notifications": { "notification_schedule": { "start": "8am", "end": "9am" } } } }),
        json!({ "settings": { "notifications": { "my_keywords": (0..21).map(|i| format!("w{i}")).collect::<Vec<_>>() } } }),
        json!({ "settings": [] }),
    ] {
        let refused = patch("bob", bad.clone()).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}: {}", refused.raw);
    }
    assert_eq!(app.get(&bob, "bob").await.body["settings"]["notifications"], read, "a refused change changes nothing");

    let by_owner = patch("owner", json!({ "settings": { "notifications": { "notify_me_about": "all" } } })).await;
    assert_eq!(by_owner.status, StatusCode::FORBIDDEN, "{}", by_owner.raw);
    assert!(app.get(&bob, "owner").await.body.get("settings").is_none(), "others never see them");
    let listed = app.get(&format!("/api/v1/org/{org}/members"), "owner").await;
    assert!(listed.body["data"].as_array().unwrap().iter().all(|m| m.get("settings").is_none()), "{}", listed.raw);
    let carol = json!({ "member_id": "carol", "email": "carol@example.com", "settings": {} });
    let added = app.post(&format!("/api/v1/org/{org}/members"), "owner", carol).await;
    assert_eq!(added.status, StatusCode::BAD_REQUEST, "a manager sets no one's settings: {}", added.raw);
}
