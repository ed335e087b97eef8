//! What a send may carry.

use axum::http::HeaderMap;
use dm_shared::ids::{RoomId, UserId};
use dm_shared::text::MessageText;
use dm_shared::{Error, Result};
use serde::Deserialize;

const MAX_MEDIA: usize = 10;
const MAX_URL: usize = 2_048;
const MAX_IDEMPOTENCY_KEY: usize = 128;

/// The seed's send body. Its other fields (`read`, `pinned`, `threads`, ...) belong to the server and
/// are ignored.
#[derive(Deserialize)]
pub struct NewMessage {
    sender_id: UserId,
    message: String,
    #[serde(default)]
    media: Vec<String>,
    room_id: Option<RoomId>,
}

impl NewMessage {
    /// The sender (who must be the caller), the text and the media URLs.
    pub fn check(
        self,
        caller: &UserId,
        room: &RoomId,
    ) -> Result<(UserId, MessageText, Vec<String>)> {
        if self.sender_id != *caller {
            return Err(Error::forbidden("sender_id must be the caller"));
        }
        if self.room_id.as_ref().is_some_and(|id| id != room) {
            return Err(Error::bad_request(
                "room_id in the body must match the path",
            ));
        }
        if self.media.len() > MAX_MEDIA {
            return Err(Error::bad_request(format!(
                "a message carries at most {MAX_MEDIA} media urls"
            )));
        }
        for url in &self.media {
            let lower = url.to_ascii_lowercase();
            let web = lower.starts_with("https://") || lower.starts_with("http://");
            if !web
                || url.len() > MAX_URL
                || url.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(Error::bad_request(
                    "media must hold http(s) urls of at most 2048 characters",
                ));
            }
        }
        let text = MessageText::parse(self.message, !self.media.is_empty())?;
        Ok((self.sender_id, text, self.media))
    }
}

/// The `Idempotency-Key` header: 1 to 128 printable ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or("");
    let printable = key.bytes().all(|b| (0x20..0x7f).contains(&b));
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !printable {
        return Err(Error::bad_request(
            "Idempotency-Key must be 1 to 128 printable ASCII characters",
        ));
    }
    Ok(Some(key.to_owned()))
}
