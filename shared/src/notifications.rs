//! A member's notification settings: the seed's `settings` object, whose `notifications` block the
//! API reads and checks where it knows a key, and keeps as given where it does not (so a seed client
//! gets back what it sent). They are the member's own: never in the member list or its events.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::text::words;

/// Keywords a member may watch for.
pub const MAX_KEYWORDS: usize = 20;
/// How deep the settings' free-form keys may nest (DynamoDB stores 32 levels at most).
const MAX_DEPTH: usize = 16;

/// What a member is notified about, unless a room says otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyAbout {
    #[default]
    All,
    Mentions,
    Nothing,
}

/// What a member is notified about in one room: `default` follows their settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomLevel {
    #[default]
    Default,
    All,
    Mentions,
    Nothing,
}

/// A member's own settings for one room.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomNotifications {
    #[serde(default)]
    pub level: RoomLevel,
    /// Muted until then (RFC 3339); a time past, or none, is not muted.
    #[serde(default)]
    pub muted_until: Option<String>,
}

impl RoomNotifications {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Whether the room is muted at `now_ms`: no unread badge but its mentions, no notification.
    pub fn muted(&self, now_ms: i64) -> bool {
        let until = self.muted_until.as_deref().and_then(crate::time::stamp_ms);
        until.is_some_and(|until| i64::try_from(until).unwrap_or(i64::MAX) > now_ms)
    }
}

/// A daily do-not-disturb window in the member's time zone, `HH:MM` to `HH:MM` (it may wrap midnight;
/// equal times make an empty window).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    pub start: String,
    pub end: String,
}

/// The `notifications` block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NotificationSettings {
    pub notify_me_about: NotifyAbout,
    /// Single words, as given; matched folded, as search matches.
    pub my_keywords: Vec<String>,
    pub notification_schedule: Option<QuietHours>,
    pub message_preview_in_each_notification: bool,
    pub thread_replies_notification: bool,
    /// The seed's other keys (`mute_all_sounds`, ...), as given.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            notify_me_about: NotifyAbout::All,
            my_keywords: Vec::new(),
            notification_schedule: None,
            message_preview_in_each_notification: true,
            thread_replies_notification: true,
            other: Map::new(),
        }
    }
}

/// The whole `settings` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub notifications: NotificationSettings,
    /// The seed's other blocks (`sidebar`, `themes`, ...), as given.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Settings {
    /// These settings changed by `patch`, a JSON Merge Patch (RFC 7386: what it names is replaced,
    /// a key set to `null` goes back to its default), and checked: 400 naming what is wrong.
    pub fn patched(&self, patch: &Value) -> Result<Self> {
        let mut merged = serde_json::to_value(self).map_err(Error::internal)?;
        merge(&mut merged, patch);
        Self::parse(merged)
    }

    /// Settings as a client sends them, in the seed's shapes too (`""` for a choice not made,
    /// keywords as one comma-separated string).
    pub fn parse(value: Value) -> Result<Self> {
        storable(&value, 0)?;
        let Value::Object(mut other) = value else { return Err(Error::bad_request("settings must be an object")) };
        let notifications = match other.remove("notifications") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(block)) => block,
            Some(_) => return Err(Error::bad_request("settings.notifications must be an object")),
        };
        Ok(Self { notifications: parse_notifications(notifications)?, other })
    }
}

/// What makes a message meant for a member: it names them, or holds one of their keywords as a whole
/// word (case and accents aside, as search matches).
pub struct Watch {
    user: UserId,
    keywords: Vec<String>,
}

impl Watch {
    pub fn new(user: &UserId, settings: &Settings) -> Self {
        let keywords = settings.notifications.my_keywords.iter().flat_map(|keyword| words(keyword)).collect();
        Self { user: user.clone(), keywords }
    }

    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// Whether a message's text is needed to tell (only with keywords).
    pub fn reads_text(&self) -> bool {
        !self.keywords.is_empty()
    }

    pub fn meant_for(&self, mentions: &[UserId], text: &str) -> bool {
        mentions.contains(&self.user) || (self.reads_text() && words(text).iter().any(|w| self.keywords.contains(w)))
    }
}

fn parse_notifications(mut block: Map<String, Value>) -> Result<NotificationSettings> {
    let defaults = NotificationSettings::default();
    let mut take = |key: &str| block.remove(key).filter(|value| !value.is_null() && value.as_str() != Some(""));
    let notify_me_about = match take("notify_me_about") {
        None => defaults.notify_me_about,
        Some(value) => serde_json::from_value(value)
            .map_err(|_| Error::bad_request("notify_me_about is \"all\", \"mentions\" or \"nothing\""))?,
    };
    let my_keywords = match take("my_keywords") {
        None => Vec::new(),
        Some(Value::String(list)) => list.split(',').map(str::to_owned).collect(),
        Some(Value::Array(list)) => list
            .into_iter()
            .map(|word| word.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::bad_request("my_keywords holds words"))?,
        Some(_) => return Err(Error::bad_request("my_keywords is a list of words")),
    };
    let my_keywords: Vec<String> =
        my_keywords.iter().map(|word| word.trim()).filter(|word| !word.is_empty()).map(str::to_owned).collect();
    if my_keywords.len() > MAX_KEYWORDS {
        return Err(Error::bad_request(format!("my_keywords holds at most {MAX_KEYWORDS} words")));
    }
    // A search term's bounds: one word, of at most 64 characters.
    if let Some(bad) = my_keywords.iter().find(|word| words(word).len() != 1) {
        return Err(Error::bad_request(format!("a keyword is one word of at most 64 characters: {bad:?}")));
    }
    let notification_schedule = match take("notification_schedule") {
        None => None,
        Some(value) => Some(parse_quiet_hours(value)?),
    };
    let flag = |value: Option<Value>, name: &str, default: bool| match value {
        None => Ok(default),
        Some(Value::Bool(on)) => Ok(on),
        Some(_) => Err(Error::bad_request(format!("{name} is true or false"))),
    };
    let preview = take("message_preview_in_each_notification");
    let replies = take("thread_replies_notification");
    Ok(NotificationSettings {
        notify_me_about,
        my_keywords,
        notification_schedule,
        message_preview_in_each_notification: flag(
            preview,
            "message_preview_in_each_notification",
            defaults.message_preview_in_each_notification,
        )?,
        thread_replies_notification: flag(
            replies,
            "thread_replies_notification",
            defaults.thread_replies_notification,
        )?,
        other: block,
    })
}

fn parse_quiet_hours(value: Value) -> Result<QuietHours> {
    let bad = || Error::bad_request("notification_schedule is {\"start\": \"HH:MM\", \"end\": \"HH:MM\"}");
    let hours: QuietHours = serde_json::from_value(value).map_err(|_| bad())?;
    if minute_of_day(&hours.start).is_none() || minute_of_day(&hours.end).is_none() {
        return Err(bad());
    }
    Ok(hours)
}

/// 400 for what a client may send but DynamoDB would refuse to store: keys that are empty, nesting
/// past `MAX_DEPTH`, numbers outside DynamoDB's range (magnitudes from 1E-130 to below 1E+126).
fn storable(value: &Value, depth: usize) -> Result<()> {
    let refused = |what: &str| Err(Error::bad_request(format!("settings hold {what}, which cannot be stored")));
    match value {
        _ if depth > MAX_DEPTH => refused(&format!("objects or lists nested more than {MAX_DEPTH} deep")),
        Value::Object(fields) => {
            if fields.keys().any(String::is_empty) {
                return refused("an empty key");
            }
            fields.values().try_for_each(|field| storable(field, depth + 1))
        }
        Value::Array(items) => items.iter().try_for_each(|item| storable(item, depth + 1)),
        Value::Number(number) => {
            let magnitude = number.as_f64().map(f64::abs).unwrap_or(f64::INFINITY);
            match magnitude == 0.0 || (1e-130..1e125).contains(&magnitude) {
                true => Ok(()),
                false => refused("a number out of range"),
            }
        }
        _ => Ok(()),
    }
}

/// Minutes since midnight of `HH:MM`.
pub fn minute_of_day(time: &str) -> Option<u32> {
    let (hours, minutes) = time.split_once(':')?;
    let well_formed = hours.len() == 2 && minutes.len() == 2;
    let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
    (well_formed && hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
}

/// RFC 7386: `patch`'s keys replace `target`'s, objects merged key by key, `null` removing one.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(fields) = target {
        for (key, change) in changes {
            match change {
                Value::Null => {
                    fields.remove(key);
                }
                change => merge(fields.entry(key.clone()).or_insert(Value::Null), change),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_seeds_empty_shapes_read_as_defaults_and_unknown_keys_stay() {
        let seed = json!({
            "notifications": {
                "notify_me_about": "", "my_keywords": "", "notification_schedule": "",
                "message_preview_in_each_notification": false, "mute_all_sounds": false,
                "email_notifications_for_mentions_and_dm": null,
            },
            "themes": { "colors": "" },
        });
        let settings = Settings::parse(seed).unwrap();
        assert_eq!(settings.notifications.notify_me_about, NotifyAbout::All);
        assert!(
            settings.notifications.my_keywords.is_empty() && settings.notifications.notification_schedule.is_none()
        );
        assert!(!settings.notifications.message_preview_in_each_notification);
        assert_eq!(settings.notifications.other["mute_all_sounds"], false);
        assert_eq!(settings.other["themes"], json!({ "colors": "" }));
    }

    #[test]
    fn a_patch_changes_what_it_names_and_null_restores_a_default() {
        let start = Settings::parse(json!({ "notifications": { "my_keywords": "deploy, Café" } })).unwrap();
        assert_eq!(start.notifications.my_keywords, ["deploy", "Café"]);
        let patched = start.patched(&json!({ "notifications": { "notify_me_about": "mentions" } })).unwrap();
        assert_eq!(patched.notifications.notify_me_about, NotifyAbout::Mentions);
        assert_eq!(patched.notifications.my_keywords, ["deploy", "Café"]);
        let cleared = patched.patched(&json!({ "notifications": { "my_keywords": null } })).unwrap();
        assert!(cleared.notifications.my_keywords.is_empty());
        let bob = UserId::parse("bob").unwrap();
        assert!(!Watch::new(&bob, &cleared).meant_for(&[], "cafe"));
        assert!(Watch::new(&bob, &patched).meant_for(&[], "Meet at the CAFE at noon"));
        assert!(!Watch::new(&bob, &patched).meant_for(&[], "cafeteria"), "whole words only");
        assert!(Watch::new(&bob, &cleared).meant_for(std::slice::from_ref(&bob), "hi"));
    }

    #[test]
    fn what_the_api_knows_is_checked() {
        for bad in [
            json!({ "notifications": { "notify_me_about": "everything" } }),
            json!({ "notifications": { "my_keywords": ["two words"] } }),
            json!({ "notifications": { "my_keywords": (0..21).map(|i| format!("w{i}")).collect::<Vec<_>>() } }),
            json!({ "notifications": { "notification_schedule": { "start": "25:00", "end": "08:00" } } }),
            json!({ "notifications": { "thread_replies_notification": "yes" } }),
            json!({ "notifications": 3 }),
            json!({ "themes": { "big": 1e200 } }),
            json!({ "themes": { "": true } }),
            json!({ "a": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]] }),
        ] {
            assert!(matches!(Settings::parse(bad.clone()), Err(Error::BadRequest(_))), "{bad}");
        }
        let night = json!({ "notifications": { "notification_schedule": { "start": "22:00", "end": "08:00" } } });
        assert!(Settings::parse(night).is_ok());
    }
}
