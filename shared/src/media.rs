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

/// Images show inline; anything else downloads, so an uploaded page never runs in a browser.
/// SVG can carry script, so it downloads too.
pub fn content_disposition(content_type: &str, file_name: &str) -> Option<String> {
    let inline = content_type.starts_with("image/") && !content_type.starts_with("image/svg");
    (!inline).then(|| format!("attachment; filename=\"{file_name}\""))
}

/// The object key of a room's file.
pub fn object_key(org: &OrgId, room: &RoomId, id: &MessageId, file_name: &str) -> String {
    format!("message_media/{org}/{room}/{id}/{file_name}")
}

fn s3_error(err: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Unavailable(Box::new(err))
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

    /// Stores a file with its content type (and, unless it is an image, as an attachment).
    pub async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str, file_name: &str) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .set_content_disposition(content_disposition(content_type, file_name))
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
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => Err(s3_error(err)),
        }
    }

    /// A URL that uploads exactly `size` bytes of `content_type` to `key` with one PUT.
    pub async fn upload_url(&self, key: &str, content_type: &str, size: i64) -> Result<String> {
        let presigning = PresigningConfig::expires_in(UPLOAD_URL_TTL).map_err(Error::internal)?;
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(size)
            .presigned(presigning)
            .await
            .map_err(s3_error)?;
        Ok(request.uri().to_owned())
    }

    /// A URL that downloads `key` for a few minutes, as an attachment unless it is an image.
    pub async fn download_url(&self, key: &str, file: &StoredFile, file_name: &str) -> Result<String> {
        let presigning = PresigningConfig::expires_in(DOWNLOAD_URL_TTL).map_err(Error::internal)?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_response_content_disposition(content_disposition(&file.content_type, file_name))
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
    fn only_images_show_inline() {
        assert_eq!(content_disposition("image/png", "a.png"), None);
        assert!(content_disposition("image/svg+xml", "a.svg").is_some());
        assert_eq!(content_disposition("text/html", "x.html").as_deref(), Some("attachment; filename=\"x.html\""));
    }
}
