//! Media files in S3: uploads under `message_media/{org}/{room}/{id}/{file name}`, fetched through
//! short-lived presigned URLs so the bytes never pass through a function twice.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use crate::error::{Error, Result};
use crate::ids::{MessageId, OrgId, RoomId};

/// How long a presigned upload stays valid.
pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(15 * 60);
/// How long a presigned download stays valid.
pub const DOWNLOAD_URL_TTL: Duration = Duration::from_secs(5 * 60);
const MAX_FILE_NAME: usize = 100;

#[derive(Clone)]
pub struct Media {
    client: aws_sdk_s3::Client,
    bucket: String,
}

/// What S3 knows of a stored file.
pub struct StoredFile {
    pub content_type: String,
}

/// A file name that cannot leave its folder or break a header: its last path segment, with only
/// letters, digits, `.`, `-` and `_` (others become `_`), no leading dots, at most 100 characters.
pub fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String =
        last.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    let trimmed: String = cleaned.trim_start_matches('.').chars().take(MAX_FILE_NAME).collect();
    if trimmed.is_empty() { "file".into() } else { trimmed }
}

/// The only types a browser shows inline: raster images, which never run script.
const INLINE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// How a file is served, whatever type its uploader claimed: one of `INLINE_TYPES` exactly (no
/// parameters, no list) shows inline as that type; anything else (SVG, HTML, XML, a list of types,
/// a type with parameters) downloads as an attachment of `application/octet-stream`, so an uploaded
/// page never runs in a browser.
#[derive(Debug, PartialEq, Eq)]
pub struct Served {
    pub content_type: &'static str,
    pub disposition: String,
}

pub fn served_as(claimed: &str, file_name: &str) -> Served {
    let claimed = claimed.trim().to_ascii_lowercase();
    match INLINE_TYPES.into_iter().find(|inline| *inline == claimed) {
        Some(content_type) => Served { content_type, disposition: format!("inline; filename=\"{file_name}\"") },
        None => Served {
            content_type: "application/octet-stream",
            disposition: format!("attachment; filename=\"{file_name}\""),
        },
    }
}

/// The object key of a room's file.
pub fn object_key(org: &OrgId, room: &RoomId, id: &MessageId, file_name: &str) -> String {
    format!("message_media/{org}/{room}/{id}/{file_name}")
}

fn s3_error(err: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Unavailable(Box::new(err))
}

/// Every upload is stored with this tag; the bucket's lifecycle rule deletes what still carries it
/// after the deployer's number of days. Storing a message that names the file removes it.
pub const UNREFERENCED: &str = "dm-state=unreferenced";

/// No such object: S3 answers 404, or 403 to a caller who may not list the bucket (the functions may
/// not: they can read a key they know, never the bucket's contents).
fn is_missing<E>(err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool {
    err.raw_response().is_some_and(|raw| matches!(raw.status().as_u16(), 403 | 404))
}

/// A presigned upload: the URL, and the headers the PUT must carry exactly (they are signed).
pub struct PresignedUpload {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

impl Media {
    /// The S3 client for the state's configuration (built once per cold start, by the router).
    pub fn new(state: &crate::AppState) -> Self {
        let mut s3 = aws_sdk_s3::config::Builder::from(&state.sdk);
        if let Some(endpoint) = &state.config.s3_endpoint {
            // A local S3 answers on one host: buckets go in the path, not the host name.
            s3 = s3.endpoint_url(endpoint).force_path_style(true);
        }
        Self { client: aws_sdk_s3::Client::from_conf(s3.build()), bucket: state.config.bucket.clone() }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Stores a file as it will be served (see `served_as`).
    pub async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str, file_name: &str) -> Result<()> {
        let served = served_as(content_type, file_name);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(served.content_type)
            .content_disposition(served.disposition)
            .tagging(UNREFERENCED)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(s3_error)?;
        Ok(())
    }

    /// The stored file, or `None` when there is none.
    pub async fn head(&self, key: &str) -> Result<Option<StoredFile>> {
        match self.client.head_object().bucket(&self.bucket).key(key).send().await {
            Ok(head) => Ok(Some(StoredFile {
                content_type: head.content_type.unwrap_or_else(|| "application/octet-stream".into()),
            })),
            Err(err) if is_missing(&err) => Ok(None),
            Err(err) => Err(s3_error(err)),
        }
    }

    /// Keeps a file past the lifecycle rule: a stored message names it. A file that is not there
    /// (never uploaded, or deleted since) has nothing to keep.
    pub async fn mark_referenced(&self, key: &str) -> Result<()> {
        match self.client.delete_object_tagging().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(()),
            Err(err) if is_missing(&err) => Ok(()),
            Err(err) => Err(s3_error(err)),
        }
    }

    /// The object behind a media URL of this room (this API's own fetch route), if `url` is one.
    /// A URL of another room's file names nothing here: a post cannot take another room's files
    /// with it.
    pub fn key_of_url(url: &str, org: &OrgId, room: &RoomId) -> Option<String> {
        let route = format!("/api/v1/org/{org}/rooms/{room}/media/");
        let (_, rest) = url.split_once(&route)?;
        let (id, name) = rest.split_once('/')?;
        let id = MessageId::parse(id).ok()?;
        (safe_file_name(name) == name).then(|| object_key(org, room, &id, name))
    }

    /// Deletes a stored file; deleting one that is not there is no error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        self.client.delete_object().bucket(&self.bucket).key(key).send().await.map_err(s3_error)?;
        Ok(())
    }

    /// A URL that uploads exactly `size` bytes of `content_type` to `key` with one PUT, tagged as
    /// every upload is.
    pub async fn upload_url(&self, key: &str, content_type: &str, size: i64) -> Result<PresignedUpload> {
        let presigning = PresigningConfig::expires_in(UPLOAD_URL_TTL).map_err(Error::internal)?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(size)
            .tagging(UNREFERENCED)
            .presigned(presigning)
            .await
            .map_err(s3_error)?;
        // A browser sets Content-Length itself (a page may not), and Host is the URL's.
        let headers = request
            .headers()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("content-length") && !name.eq_ignore_ascii_case("host"))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
            .collect();
        Ok(PresignedUpload { url: request.uri().to_owned(), headers })
    }

    /// A URL that downloads `key` for a few minutes. The URL itself fixes the response's type and
    /// disposition (see `served_as`): what the uploader stored with a presigned PUT is not trusted.
    pub async fn download_url(&self, key: &str, file: &StoredFile, file_name: &str) -> Result<String> {
        let presigning = PresigningConfig::expires_in(DOWNLOAD_URL_TTL).map_err(Error::internal)?;
        let served = served_as(&file.content_type, file_name);
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_type(served.content_type)
            .response_content_disposition(served.disposition)
            .presigned(presigning)
            .await
            .map_err(s3_error)?;
        Ok(request.uri().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_cannot_escape_their_folder() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(safe_file_name("..."), "file");
        assert_eq!(safe_file_name(".hidden"), "hidden");
        assert_eq!(safe_file_name("my photo (1).png"), "my_photo__1_.png");
        assert_eq!(safe_file_name("é\"\r\n.txt"), "____.txt");
        assert_eq!(safe_file_name(&"a".repeat(300)).len(), 100);
    }

    #[test]
    fn only_this_rooms_media_urls_name_objects() {
        let (org, room) = (OrgId::parse("o1").unwrap(), RoomId::parse("r1").unwrap());
        let url = "https://api.example/api/v1/org/o1/rooms/r1/media/01JABC/photo.png";
        assert_eq!(Media::key_of_url(url, &org, &room).as_deref(), Some("message_media/o1/r1/01JABC/photo.png"));
        for other in [
            "https://api.example/api/v1/org/o1/rooms/r2/media/01JABC/photo.png",
            "https://api.example/api/v1/org/o1/rooms/r1/media/01JABC/../x.png",
            "https://api.example/api/v1/org/o1/rooms/r1/media/01JABC",
            "https://elsewhere.example/photo.png",
        ] {
            assert_eq!(Media::key_of_url(other, &org, &room), None, "{other}");
        }
    }

    #[test]
    fn only_four_raster_types_show_inline() {
        for inline in ["image/png", "IMAGE/JPEG", " image/gif ", "image/webp"] {
            let served = served_as(inline, "a");
            assert_eq!(served.content_type, inline.trim().to_ascii_lowercase(), "{inline}");
            assert!(served.disposition.starts_with("inline;"), "{inline}");
        }
        for risky in [
            "image/svg+xml",
            "text/html",
            "application/xhtml+xml",
            "text/xml",
            "image/png, text/html",
            "image/png;text/html",
            "image/png; charset=utf-8",
            "image/bmp",
            "",
        ] {
            let served = served_as(risky, "x.html");
            assert_eq!(served.content_type, "application/octet-stream", "{risky}");
            assert_eq!(served.disposition, "attachment; filename=\"x.html\"", "{risky}");
        }
    }
}
