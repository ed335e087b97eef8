//! What a message or a thread reply may carry.

use axum::http::HeaderMap;
use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};
use crate::ids::{MessageId, UserId};
use crate::text::{MessageText, is_web_url};

const MAX_MEDIA: usize = 10;
/// Members one message may mention.
pub const MAX_MENTIONS: usize = 20;
const MAX_IDEMPOTENCY_KEY: usize = 128;

/// A whole number, for `#[serde(deserialize_with)]`: JSON's `1.0` is the same number as `1`, as
/// JSON Schema's `integer` says.
pub fn whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    number
        .as_i64()
        .or_else(|| number.as_f64().filter(|n| n.fract() == 0.0 && n.abs() < 9.0e15).map(|n| n as i64))
        .ok_or_else(|| serde::de::Error::custom("expected a whole number"))
}

/// An optional whole number, for `#[serde(default, deserialize_with)]`.
pub fn some_whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Option<i64>, D::Error> {
    whole_number(deserializer).map(Some)
}

/// The seed's send body, for a message or a reply. Its other fields (`room_id`, `message_id`,
/// `read`, `pinned`, `threads`, ...) are ignored: the path names the room and the message, the rest
/// belongs to the server.
#[derive(Deserialize)]
pub struct NewPost {
    sender_id: UserId,
    message: String,
    #[serde(default)]
    media: Vec<String>,
    /// Members of the room the post is meant for.
    #[serde(default)]
    mentions: Vec<UserId>,
}

/// A post as a client may send it: checked, but not yet against the room.
pub struct CheckedPost {
    pub sender: UserId,
    pub text: MessageText,
    pub media: Vec<String>,
    /// Each once, in the order given; whether they are the room's members is the send's condition.
    pub mentions: Vec<UserId>,
}

/// Mentions as given, each once: at most `MAX_MENTIONS`.
pub fn check_mentions(mentions: Vec<UserId>) -> Result<Vec<UserId>> {
    if mentions.len() > MAX_MENTIONS {
        return Err(Error::bad_request(format!("a message mentions at most {MAX_MENTIONS} members")));
    }
    let mut once: Vec<UserId> = Vec::with_capacity(mentions.len());
    for user in mentions {
        if !once.contains(&user) {
            once.push(user);
        }
    }
    Ok(once)
}

impl NewPost {
    /// The sender (who must be the caller), the text, the media URLs and the mentions.
    pub fn check(self, caller: &UserId) -> Result<CheckedPost> {
        if self.sender_id != *caller {
            return Err(Error::forbidden("sender_id must be the caller"));
        }
        if self.media.len() > MAX_MEDIA {
            return Err(Error::bad_request(format!("a message carries at most {MAX_MEDIA} media urls")));
        }
        if !self.media.iter().all(|url| is_web_url(url)) {
            return Err(Error::bad_request("media must hold http(s) urls of at most 2048 characters"));
        }
        let text = MessageText::parse(self.message, !self.media.is_empty())?;
        let mentions = check_mentions(self.mentions)?;
        Ok(CheckedPost { sender: self.sender_id, text, media: self.media, mentions })
    }
}

/// What makes a retried send the same send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyKey {
    /// A client's `Idempotency-Key` header.
    Client(String),
    /// The scheduler's own key for a scheduled message.
    Scheduled(MessageId),
}

/// The `Idempotency-Key` header: 1 to 128 printable ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or("");
    let printable = key.bytes().all(|b| (0x20..0x7f).contains(&b));
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !printable {
        return Err(Error::bad_request("Idempotency-Key must be 1 to 128 printable ASCII characters"));
    }
    Ok(Some(IdempotencyKey::Client(key.to_owned())))
}
