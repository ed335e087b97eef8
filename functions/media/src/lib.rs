//! Media: uploads to S3 (small files through the API, large ones straight to S3 with a presigned
//! URL) and fetches through a presigned redirect, for the room's members only.

use axum::Extension;
use axum::Router;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dm_shared::access::RoomAccess;
use dm_shared::auth::Caller;
use dm_shared::http::{Json, Path, Query, reply, service};
use dm_shared::ids::{MessageId, OrgId, RoomId};
use dm_shared::media::{DOWNLOAD_URL_TTL, Media, UPLOAD_URL_TTL, object_key, safe_file_name};
use dm_shared::{AppState, Error, Result};
use serde::Deserialize;
use serde_json::json;

/// The largest upload through the API. Lambda takes at most 6 MB of request, and API Gateway sends a
/// file base64-encoded (a third larger), so 4 MB of file is what fits with room for the rest.
pub const MAX_UPLOAD: usize = 4 * 1024 * 1024;
/// The largest file a presigned upload may carry.
pub const MAX_PRESIGNED_UPLOAD: i64 = 100 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let room = "/api/v1/org/{org_id}/rooms/{room_id}";
    let routes = Router::new()
        .route(&format!("{room}/messagemedia"), post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD)))
        .route(&format!("{room}/media/upload-url"), post(upload_url))
        .route(&format!("{room}/media/{{media_id}}/{{file_name}}"), get(fetch))
        .layer(Extension(Media::new(&state)));
    service(routes, state)
}

fn too_large() -> Error {
    Error::PayloadTooLarge(format!(
        "Files over {} MB go straight to S3: POST .../media/upload-url for a presigned upload",
        MAX_UPLOAD / (1024 * 1024)
    ))
}

/// The URL clients fetch a file at: this API's own route, on the host the request came to.
fn media_url(uri: &Uri, org: &OrgId, room: &RoomId, id: &MessageId, name: &str) -> String {
    let path = format!("/api/v1/org/{org}/rooms/{room}/media/{id}/{name}");
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}{path}"),
        _ => path,
    }
}

fn multipart_error(err: axum::extract::multipart::MultipartError) -> Error {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        Error::bad_request(format!("malformed multipart body: {}", err.body_text()))
    }
}

/// A content type as `type/subtype`, printable, at most 255 characters.
fn check_content_type(content_type: &str) -> Result<()> {
    let valid = content_type.len() <= 255
        && content_type.split_once('/').is_some_and(|(kind, sub)| !kind.is_empty() && !sub.is_empty())
        && content_type.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && HeaderValue::from_str(content_type).is_ok();
    if valid { Ok(()) } else { Err(Error::bad_request("content_type must be a media type such as image/png")) }
}

async fn upload(
    State(state): State<AppState>,
    Extension(media): Extension<Media>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
    uri: Uri,
    multipart: std::result::Result<Multipart, MultipartRejection>,
) -> Result<Response> {
    let mut multipart =
        multipart.map_err(|err| Error::bad_request(format!("expected multipart/form-data: {}", err.body_text())))?;
    RoomAccess::load(&state.store, &org, &room, &caller, &[]).await?.require_member()?;
    let mut urls = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("file") {
            continue;
        }
        let name = safe_file_name(field.file_name().unwrap_or("file"));
        let content_type = field.content_type().unwrap_or("application/octet-stream").to_owned();
        check_content_type(&content_type)?;
        let bytes = field.bytes().await.map_err(multipart_error)?;
        let id = MessageId::generate();
        media.put(&object_key(&org, &room, &id, &name), bytes.to_vec(), &content_type, &name).await?;
        urls.push(media_url(&uri, &org, &room, &id, &name));
    }
    let Some(first) = urls.first().cloned() else {
        return Err(Error::bad_request("No file attached, Use send Message api to send only a message"));
    };
    Ok(reply(StatusCode::CREATED, json!({ "media_url": first, "media_urls": urls })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadRequest {
    filename: String,
    content_type: String,
    #[serde(deserialize_with = "dm_shared::input::whole_number")]
    size: i64,
}

async fn upload_url(
    State(state): State<AppState>,
    Extension(media): Extension<Media>,
    Caller(caller): Caller,
    Path((org, room)): Path<(OrgId, RoomId)>,
    uri: Uri,
    Json(body): Json<UploadRequest>,
) -> Result<Response> {
    check_content_type(&body.content_type)?;
    if body.size <= 0 {
        return Err(Error::bad_request("size must be a positive number of bytes"));
    }
    if body.size > MAX_PRESIGNED_UPLOAD {
        return Err(Error::PayloadTooLarge(format!(
            "a file holds at most {} MB",
            MAX_PRESIGNED_UPLOAD / (1024 * 1024)
        )));
    }
    RoomAccess::load(&state.store, &org, &room, &caller, &[]).await?.require_member()?;
    let name = safe_file_name(&body.filename);
    let id = MessageId::generate();
    let upload = media.upload_url(&object_key(&org, &room, &id, &name), &body.content_type, body.size).await?;
    let headers: serde_json::Map<String, serde_json::Value> =
        upload.headers.into_iter().map(|(name, value)| (name, value.into())).collect();
    Ok(reply(
        StatusCode::CREATED,
        json!({
            "upload_url": upload.url,
            "upload_headers": headers,
            "media_url": media_url(&uri, &org, &room, &id, &name),
            "expires_in": UPLOAD_URL_TTL.as_secs(),
        }),
    ))
}

#[derive(Deserialize)]
struct FetchOptions {
    /// `false`: answer the presigned URL as JSON instead of redirecting to it. A page cannot put a
    /// bearer token on `<img src>`; it asks for the URL with its token and shows that.
    #[serde(default = "redirect_by_default")]
    redirect: bool,
}

fn redirect_by_default() -> bool {
    true
}

async fn fetch(
    State(state): State<AppState>,
    Extension(media): Extension<Media>,
    Caller(caller): Caller,
    Path((org, room, id, name)): Path<(OrgId, RoomId, MessageId, String)>,
    Query(options): Query<FetchOptions>,
) -> Result<Response> {
    if safe_file_name(&name) != name {
        return Err(Error::bad_request("invalid file name"));
    }
    RoomAccess::load(&state.store, &org, &room, &caller, &[]).await?.require_member()?;
    let key = object_key(&org, &room, &id, &name);
    let file = media.head(&key).await?.ok_or_else(|| Error::not_found("media not found"))?;
    let location = media.download_url(&key, &file, &name).await?;
    if !options.redirect {
        return Ok(reply(StatusCode::OK, json!({ "url": location, "expires_in": DOWNLOAD_URL_TTL.as_secs() })));
    }
    let location = HeaderValue::from_str(&location).map_err(Error::internal)?;
    Ok((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
}
