use dm_tests::{TestApp, read, spawn_app, token};
use reqwest::multipart::{Form, Part};
use reqwest::redirect::Policy;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn setup(app: &TestApp) -> (String, String) {
    let org = app.org_with("alice", &["bob", "carol"]).await;
    let room = app.room(&org, "alice", &["bob"]).await;
    (org, room)
}

fn file(bytes: Vec<u8>, name: &str, content_type: &str) -> Part {
    Part::bytes(bytes).file_name(name.to_owned()).mime_str(content_type).unwrap()
}

async fn upload(app: &TestApp, org: &str, room: &str, user: &str, form: Form) -> dm_tests::Reply {
    let path = format!("/api/v1/org/{org}/rooms/{room}/messagemedia");
    read(app.raw(Method::POST, &path).bearer_auth(token(user)).multipart(form).send().await.unwrap()).await
}

/// Uploads `bytes` with a granted presigned PUT, carrying the headers the grant names (as a page does).
async fn put_upload(granted: &dm_tests::Reply, url: &str, bytes: Vec<u8>) -> reqwest::Response {
    let mut put = reqwest::Client::new().put(url).body(bytes);
    for (name, value) in granted.body["upload_headers"].as_object().expect("upload headers") {
        put = put.header(name.as_str(), value.as_str().expect("a header value"));
    }
    put.send().await.unwrap()
}

/// Fetches a media URL as `user` without following the redirect; returns the status and Location.
async fn fetch(media_url: &str, user: &str) -> (StatusCode, Option<String>) {
    let client = reqwest::Client::builder().redirect(Policy::none()).build().unwrap();
    let response = client.get(media_url).bearer_auth(token(user)).send().await.unwrap();
    let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    (response.status(), location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_files_come_back_through_a_presigned_redirect() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let photo: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let form = Form::new()
        .part("file", file(photo.clone(), "holiday photo.png", "image/png"))
        .part("file", file(b"notes".to_vec(), "notes.txt", "text/plain"))
        .text("caption", "ignored");
    let uploaded = upload(app, &org, &room, "bob", form).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.raw);
    let urls: Vec<String> =
        uploaded.body["media_urls"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_owned()).collect();
    assert_eq!(urls.len(), 2);
    assert_eq!(uploaded.body["media_url"], urls[0].as_str());
    assert!(urls[0].starts_with(&format!("{}/api/v1/org/{org}/rooms/{room}/media/", app.base)), "{}", urls[0]);
    assert!(urls[0].ends_with("/holiday_photo.png"));

    let (status, location) = fetch(&urls[0], "alice").await;
    assert_eq!(status, StatusCode::FOUND);
    let location = location.unwrap();
    assert!(location.starts_with(&app.stack.s3_endpoint), "{location}");
    let object = reqwest::get(&location).await.unwrap();
    assert_eq!(object.status(), StatusCode::OK);
    assert_eq!(object.headers()["content-type"], "image/png");
    assert_eq!(object.headers()["content-disposition"], "inline; filename=\"holiday_photo.png\"", "images show inline");
    assert_eq!(object.bytes().await.unwrap().to_vec(), photo);

    // A message can carry the URLs.
    let sent = app
        .post(
            &format!("/api/v1/org/{org}/rooms/{room}/messages"),
            "bob",
            json!({ "sender_id": "bob", "message": "", "media": urls }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.raw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_names_stay_in_their_folder_and_pages_download_as_attachments() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let page = b"<script>alert(document.cookie)</script>".to_vec();
    let form = Form::new().part("file", file(page.clone(), "../../../evil.html", "text/html"));
    let uploaded = upload(app, &org, &room, "bob", form).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.raw);
    let url = uploaded.str("media_url");
    assert!(url.contains(&format!("/rooms/{room}/media/")) && url.ends_with("/evil.html"), "{url}");
    assert!(!url.contains(".."));

    let (status, location) = fetch(&url, "bob").await;
    assert_eq!(status, StatusCode::FOUND);
    let location = location.unwrap();
    assert!(location.contains("response-content-disposition=attachment"), "{location}");
    let object = reqwest::get(&location).await.unwrap();
    assert_eq!(object.headers()["content-disposition"], "attachment; filename=\"evil.html\"");
    assert_eq!(object.headers()["content-type"], "application/octet-stream");
    assert_eq!(object.bytes().await.unwrap().to_vec(), page);

    let traversal = format!("/api/v1/org/{org}/rooms/{room}/media/01JABCDEFGHJKMNPQRSTVWXYZ0/..%2F..%2Fsecret");
    assert_eq!(app.get(&traversal, "bob").await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_room_members_upload_and_fetch() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let form = || Form::new().part("file", file(b"x".to_vec(), "x.txt", "text/plain"));
    assert_eq!(upload(app, &org, &room, "carol", form()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(upload(app, &org, &room, "stranger", form()).await.status, StatusCode::FORBIDDEN);
    let url = upload(app, &org, &room, "alice", form()).await.str("media_url");
    assert_eq!(fetch(&url, "carol").await.0, StatusCode::FORBIDDEN);
    assert_eq!(fetch(&url, "stranger").await.0, StatusCode::FORBIDDEN);
    let missing = url.replace("/x.txt", "/y.txt");
    assert_eq!(fetch(&missing, "bob").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_without_a_file_malformed_or_too_large_are_refused() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let none = upload(app, &org, &room, "bob", Form::new().text("caption", "no file")).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    assert_eq!(none.body["message"], "No file attached, Use send Message api to send only a message");

    let path = format!("/api/v1/org/{org}/rooms/{room}/messagemedia");
    let malformed = app
        .raw(Method::POST, &path)
        .bearer_auth(token("bob"))
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nunterminated")
        .send()
        .await
        .unwrap();
    assert_eq!(read(malformed).await.status, StatusCode::BAD_REQUEST);
    let not_multipart = app.post(&path, "bob", json!({ "file": "x" })).await;
    assert_eq!(not_multipart.status, StatusCode::BAD_REQUEST);

    let big = Form::new().part("file", file(vec![7u8; 5 * 1024 * 1024], "big.bin", "application/octet-stream"));
    let refused = upload(app, &org, &room, "bob", big).await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", refused.raw);
    assert!(refused.str("message").contains("upload-url"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_files_go_straight_to_s3_with_a_presigned_put() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/media/upload-url");
    let video: Vec<u8> = (0..200_000u32).map(|i| (i % 13) as u8).collect();
    let granted = app
        .post(&path, "bob", json!({ "filename": "clip.mp4", "content_type": "video/mp4", "size": video.len() }))
        .await;
    assert_eq!(granted.status, StatusCode::CREATED, "{}", granted.raw);
    assert_eq!(granted.body["expires_in"], 900);
    let upload_url = granted.str("upload_url");
    assert!(upload_url.starts_with(&app.stack.s3_endpoint));

    let put = put_upload(&granted, &upload_url, video.clone()).await;
    assert!(put.status().is_success(), "{}: {}", put.status(), put.text().await.unwrap());
    let (status, location) = fetch(&granted.str("media_url"), "alice").await;
    assert_eq!(status, StatusCode::FOUND);
    let object = reqwest::get(location.unwrap()).await.unwrap();
    assert_eq!(object.bytes().await.unwrap().to_vec(), video);

    let tampered = put_upload(&granted, &upload_url.replace("clip.mp4", "other.mp4"), video).await;
    assert!(tampered.status().is_client_error(), "a presigned URL covers only its own key");

    let cases = [
        (
            json!({ "filename": "a.bin", "content_type": "application/octet-stream", "size": 101 * 1024 * 1024 }),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            json!({ "filename": "a.bin", "content_type": "application/octet-stream", "size": 0 }),
            StatusCode::BAD_REQUEST,
        ),
        (json!({ "filename": "a.bin", "content_type": "nonsense", "size": 10 }), StatusCode::BAD_REQUEST),
        (json!({ "filename": "a.bin", "size": 10 }), StatusCode::BAD_REQUEST),
    ];
    for (body, status) in cases {
        assert_eq!(app.post(&path, "bob", body.clone()).await.status, status, "{body}");
    }
    assert_eq!(
        app.post(&path, "carol", json!({ "filename": "a", "content_type": "text/plain", "size": 1 })).await.status,
        StatusCode::FORBIDDEN
    );
}

/// What an uploader stores with a presigned PUT is not what a reader gets: the download URL fixes
/// the type and disposition itself, so script-capable types never render.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presigned_uploads_of_script_capable_types_download_as_attachments() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let path = format!("/api/v1/org/{org}/rooms/{room}/media/upload-url");
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec();
    for (claimed, name) in
        [("image/svg+xml", "logo.svg"), ("text/html", "page.html"), ("image/png; text/html", "x.png")]
    {
        let body = json!({ "filename": name, "content_type": claimed, "size": svg.len() });
        let granted = app.post(&path, "bob", body).await;
        assert_eq!(granted.status, StatusCode::CREATED, "{}", granted.raw);
        let put = put_upload(&granted, &granted.str("upload_url"), svg.clone()).await;
        assert!(put.status().is_success(), "{claimed}: {}", put.status());
        let (status, location) = fetch(&granted.str("media_url"), "alice").await;
        assert_eq!(status, StatusCode::FOUND);
        let location = location.unwrap();
        assert!(location.contains("response-content-type=application%2Foctet-stream"), "{location}");
        let object = reqwest::get(&location).await.unwrap();
        assert_eq!(object.headers()["content-type"], "application/octet-stream", "{claimed}");
        assert_eq!(object.headers()["content-disposition"], format!("attachment; filename=\"{name}\""));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_asks_for_a_files_url_to_show_it_in_an_img() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let photo = vec![7u8; 2_000];
    let uploaded =
        upload(app, &org, &room, "bob", Form::new().part("file", file(photo.clone(), "cat.png", "image/png"))).await;
    let media_url = uploaded.str("media_url");

    let asked = app.get(&format!("{}?redirect=false", media_url.trim_start_matches(&app.base)), "alice").await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.raw);
    assert_eq!(asked.body["expires_in"], 300);
    // The URL itself needs no token: it is what `<img src>` loads.
    let shown = reqwest::get(asked.str("url")).await.unwrap();
    assert_eq!(shown.headers()["content-type"], "image/png");
    assert_eq!(shown.bytes().await.unwrap().to_vec(), photo);

    let outsider = app.get(&format!("{}?redirect=false", media_url.trim_start_matches(&app.base)), "carol").await;
    assert_eq!(outsider.status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_is_404_though_s3_answers_403_to_functions_that_may_not_list() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let (status, _) = fetch(
        &format!("{}/api/v1/org/{org}/rooms/{room}/media/01JAAAAAAAAAAAAAAAAAAAAAAA/gone.png", app.base),
        "alice",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The local S3 answers as AWS does to a caller without s3:ListBucket.
    let media = dm_shared::media::Media::new(&app.stack.state);
    let head = media.client().head_object().bucket(media.bucket()).key("message_media/none").send().await;
    assert_eq!(head.unwrap_err().raw_response().map(|r| r.status().as_u16()), Some(403));
}

/// The tags of a file, as the bucket's lifecycle rule sees them.
async fn tags(app: &TestApp, media_url: &str) -> Vec<(String, String)> {
    let media = dm_shared::media::Media::new(&app.stack.state);
    let key = format!(
        "message_media/{}",
        media_url.split("/org/").nth(1).unwrap().replacen("/rooms/", "/", 1).replacen("/media/", "/", 1)
    );
    let tagging = media.client().get_object_tagging().bucket(media.bucket()).key(key).send().await.unwrap();
    tagging.tag_set().iter().map(|tag| (tag.key().to_owned(), tag.value().to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_no_message_names_stay_tagged_for_the_lifecycle_rule() {
    let app = &spawn_app().await;
    let (org, room) = setup(app).await;
    let unreferenced = vec![("dm-state".to_owned(), "unreferenced".to_owned())];
    let kept =
        upload(app, &org, &room, "bob", Form::new().part("file", file(vec![1; 10], "kept.png", "image/png"))).await;
    let dropped =
        upload(app, &org, &room, "bob", Form::new().part("file", file(vec![2; 10], "dropped.png", "image/png"))).await;
    let granted = app
        .post(
            &format!("/api/v1/org/{org}/rooms/{room}/media/upload-url"),
            "bob",
            json!({ "filename": "big.mp4", "content_type": "video/mp4", "size": 3 }),
        )
        .await;
    assert!(put_upload(&granted, &granted.str("upload_url"), vec![1, 2, 3]).await.status().is_success());
    for url in [kept.str("media_url"), dropped.str("media_url"), granted.str("media_url")] {
        assert_eq!(tags(app, &url).await, unreferenced, "{url}");
    }

    let body =
        json!({ "sender_id": "bob", "message": "look", "media": [kept.str("media_url"), granted.str("media_url")] });
    let sent = app.post(&format!("/api/v1/org/{org}/rooms/{room}/messages"), "bob", body).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.raw);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !tags(app, &kept.str("media_url")).await.is_empty() || !tags(app, &granted.str("media_url")).await.is_empty()
    {
        assert!(std::time::Instant::now() < deadline, "a sent message keeps its files");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(tags(app, &dropped.str("media_url")).await, unreferenced, "no message names it");
}
