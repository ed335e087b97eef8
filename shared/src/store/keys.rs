//! Every key of the single table is formatted here and nowhere else.

use crate::ids::{InviteId, MessageId, OrgId, RoomId, SubscriptionId, UserId};
use crate::input::IdempotencyKey;

pub const PK: &str = "PK";
pub const SK: &str = "SK";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

const META: &str = "META";
pub const MEMBER_PREFIX: &str = "MEMBER#";
pub const ROOM_PREFIX: &str = "ROOM#";

pub fn org(org: &OrgId) -> Key {
    Key { pk: format!("ORG#{org}"), sk: META.into() }
}

pub fn member(org: &OrgId, user: &UserId) -> Key {
    Key { pk: format!("ORG#{org}"), sk: format!("{MEMBER_PREFIX}{user}") }
}

pub fn members_pk(org: &OrgId) -> String {
    format!("ORG#{org}")
}

pub const INVITE_PREFIX: &str = "INVITE#";

/// An invite in its org's list: names the invite by id and keeps its token's digest, which is the
/// invite's own key.
pub fn invite_entry(org: &OrgId, invite_id: &InviteId) -> Key {
    Key { pk: format!("ORG#{org}"), sk: format!("{INVITE_PREFIX}{invite_id}") }
}

/// An invite, found by the digest of its token: the only way in from the token, which is never stored.
pub fn invite(token_digest: &str) -> Key {
    Key { pk: format!("{INVITE_PREFIX}{token_digest}"), sk: META.into() }
}

/// One caller's attempts of one kind (`what`) in one window of time: a fixed-window counter.
pub fn attempts(what: &str, user: &UserId, window: u64) -> Key {
    Key { pk: format!("ATTEMPTS#{what}#{user}"), sk: window.to_string() }
}

pub fn room(room: &RoomId) -> Key {
    Key { pk: format!("ROOM#{room}"), sk: META.into() }
}

/// The item that makes a member set unique within an org; `digest` names the sorted set.
pub fn member_set(org: &OrgId, digest: &str) -> Key {
    Key { pk: format!("ORG#{org}"), sk: format!("ROOMSET#{digest}") }
}

pub fn user_rooms_pk(org: &OrgId, user: &UserId) -> String {
    format!("ORG#{org}#USER#{user}")
}

/// Where a member's rows of rooms larger than `LARGE_ROOM_MEMBERS` sit in the activity index: apart,
/// under a fixed sort key, as their order comes from the room's summary.
pub fn large_rooms_pk(org: &OrgId, user: &UserId) -> String {
    format!("{}{LARGE_ROOMS_SUFFIX}", user_rooms_pk(org, user))
}

pub const LARGE_ROOMS_SUFFIX: &str = "#LARGE";

pub const LEFT_PREFIX: &str = "LEFT#";

/// A room a member left, kept as long as its events are (sync holds what they were sent of it).
pub fn left_room(org: &OrgId, user: &UserId, room: &RoomId) -> Key {
    Key { pk: user_rooms_pk(org, user), sk: format!("{LEFT_PREFIX}{room}") }
}

/// A large room's last message and activity, what its members' rows do not keep.
pub fn room_summary(room: &RoomId) -> Key {
    Key { pk: format!("ROOM#{room}"), sk: "SUMMARY".into() }
}

pub const PUSH_PREFIX: &str = "PUSH#";
/// Sorts before every item of a member's own beside their rows: their subscriptions and its count.
pub const PUSH_ITEMS_PREFIX: &str = "PUSH";

/// One of a member's Web Push subscriptions, beside their rows.
pub fn push_subscription(org: &OrgId, user: &UserId, subscription_id: &SubscriptionId) -> Key {
    Key { pk: user_rooms_pk(org, user), sk: format!("{PUSH_PREFIX}{subscription_id}") }
}

/// That `message` was pushed to one of `user`'s devices (`subscription`): each is told of a message once.
pub fn push_claim(message: &MessageId, user: &UserId, subscription_id: &SubscriptionId) -> Key {
    Key { pk: format!("PUSHED#{message}"), sk: format!("DEVICE#{user}#{subscription_id}") }
}

/// How many subscriptions a member keeps: the cap's count.
pub fn push_count(org: &OrgId, user: &UserId) -> Key {
    Key { pk: user_rooms_pk(org, user), sk: "PUSHCOUNT".into() }
}

/// A member's own settings (notifications), beside their rows: never in the member list.
pub fn settings(org: &OrgId, user: &UserId) -> Key {
    Key { pk: user_rooms_pk(org, user), sk: "SETTINGS".into() }
}

pub fn user_room(org: &OrgId, user: &UserId, room: &RoomId) -> Key {
    Key { pk: user_rooms_pk(org, user), sk: format!("{ROOM_PREFIX}{room}") }
}

/// A key that no item ever has: the cheapest read that proves the table answers.
pub fn probe() -> Key {
    Key { pk: "PING".into(), sk: META.into() }
}

pub const MESSAGE_PREFIX: &str = "MSG#";
/// Sorts after every `MSG#` key (`$` follows `#`).
pub const MESSAGE_END: &str = "MSG$";

pub fn message(room: &RoomId, message: &MessageId) -> Key {
    Key { pk: format!("ROOM#{room}"), sk: format!("{MESSAGE_PREFIX}{message}") }
}

pub fn room_pk(room: &RoomId) -> String {
    format!("ROOM#{room}")
}

/// Routes that name no room (read, pin, link) find the message's room through this pointer.
pub fn message_pointer(message: &MessageId) -> Key {
    Key { pk: format!("MSG#{message}"), sk: META.into() }
}

/// The previous text of an edited message, at the time of the edit.
pub fn message_version(room: &RoomId, message: &MessageId, at: &str) -> Key {
    Key { pk: format!("ROOM#{room}"), sk: format!("EDIT#{message}#{at}") }
}

pub fn message_versions_prefix(message: &MessageId) -> String {
    format!("EDIT#{message}#")
}

pub const LINK_PREFIX: &str = "LINK#";

/// The `n`th link of a message. Links are listed newest first (descending keys), so the index counts
/// down: a message's links then list in the order of its text.
pub fn link(room: &RoomId, message: &MessageId, n: usize) -> Key {
    let rank = 99usize.saturating_sub(n);
    Key { pk: format!("ROOM#{room}"), sk: format!("{LINK_PREFIX}{message}#{rank:02}") }
}

/// A search term's entry for one message or reply (`item_id`) of a room.
pub fn term(room: &RoomId, term: &str, item_id: &MessageId) -> Key {
    Key { pk: term_pk(room, term), sk: format!("{MESSAGE_PREFIX}{item_id}") }
}

pub fn term_pk(room: &RoomId, term: &str) -> String {
    format!("ROOM#{room}#TERM#{term}")
}

/// A retried send finds its first reply here. Each kind of key has its own fixed segment after the
/// user (who holds no `#`), so no key a client sends can name a reply's or the scheduler's.
pub fn idempotency(room: &RoomId, user: &UserId, key: &IdempotencyKey, parent: Option<&MessageId>) -> Key {
    let pk = match (key, parent) {
        (IdempotencyKey::Client(key), None) => format!("IDEMPOTENCY#{room}#{user}#SEND#{key}"),
        (IdempotencyKey::Client(key), Some(parent)) => format!("IDEMPOTENCY#{room}#{user}#REPLY#{parent}#{key}"),
        (IdempotencyKey::Scheduled(id), _) => format!("IDEMPOTENCY#{room}#{user}#SCHEDULED#{id}"),
    };
    Key { pk, sk: META.into() }
}

/// A reply in the thread of `parent`.
pub fn thread_reply(room: &RoomId, parent: &MessageId, reply: &MessageId) -> Key {
    Key { pk: format!("ROOM#{room}"), sk: format!("{}{reply}", thread_prefix(parent)) }
}

pub const THREAD_PREFIX: &str = "THREAD#";

pub fn thread_prefix(parent: &MessageId) -> String {
    format!("{THREAD_PREFIX}{parent}#")
}

/// One user's reaction with one emoji on a message or reply (`target`). User ids hold no `#`, so the
/// last segment is always the user, whatever the emoji holds.
pub fn reaction(room: &RoomId, target: &MessageId, emoji: &str, user: &UserId) -> Key {
    Key { pk: format!("ROOM#{room}"), sk: format!("{}{emoji}#{user}", reactions_prefix(target)) }
}

pub fn reactions_prefix(target: &MessageId) -> String {
    format!("REACTION#{target}#")
}

pub const BOOKMARK_PREFIX: &str = "BOOKMARK#";

pub const READ_PREFIX: &str = "READ#";

pub const COUNTED_REPLY_PREFIX: &str = "COUNTED_REPLY#";

/// Marks a reply counted in its message's `thread_count` (kept while the reply is).
pub fn counted_reply(room: &RoomId, reply: &MessageId) -> Key {
    Key { pk: format!("ROOM#{room}"), sk: format!("{COUNTED_REPLY_PREFIX}{reply}") }
}

/// A member's read marker in a room: the newest message they have read.
pub fn read_marker(room: &RoomId, user: &UserId) -> Key {
    Key { pk: format!("ROOM#{room}"), sk: format!("{READ_PREFIX}{user}") }
}

pub fn bookmark(room: &RoomId, name: &str) -> Key {
    Key { pk: format!("ROOM#{room}"), sk: format!("{BOOKMARK_PREFIX}{name}") }
}

/// One sender's scheduled messages due in one minute (epoch minutes) in one org: the scheduler works
/// through each such bucket a page at a time, taking turns between buckets, so one sender's flood
/// never holds back another's messages.
pub fn schedule_bucket(minute: i64, org: &OrgId, user: &UserId) -> String {
    format!("SCHEDULE#{minute}#{org}#{user}")
}

/// A scheduled message in its bucket: what the scheduler claims. Schedule ids are ULIDs whose time
/// is the due time, so they sort by it.
pub fn scheduled(minute: i64, org: &OrgId, user: &UserId, id: &MessageId) -> Key {
    Key { pk: schedule_bucket(minute, org, user), sk: format!("{DUE_PREFIX}{id}") }
}

pub const DUE_PREFIX: &str = "DUE#";

/// The partition that lists the buckets holding messages (by minute, then org and sender): what a
/// scheduler run reads first.
pub const SCHEDULE_BUCKETS: &str = "SCHEDULE#BUCKETS";

pub fn schedule_bucket_entry(minute: i64, org: &OrgId, user: &UserId) -> Key {
    Key { pk: SCHEDULE_BUCKETS.into(), sk: format!("{minute:012}#{org}#{user}") }
}

/// The same scheduled message in its sender's pending list for the room, soonest first.
pub fn scheduled_for_sender(room: &RoomId, user: &UserId, id: &MessageId) -> Key {
    Key { pk: format!("ROOM#{room}"), sk: format!("{}{id}", scheduled_prefix(user)) }
}

pub fn scheduled_prefix(user: &UserId) -> String {
    format!("SCHEDULED#{user}#")
}

/// How many scheduled messages a sender has pending, in all and in one room: the caps.
pub fn scheduled_count(user: &UserId) -> Key {
    Key { pk: format!("USER#{user}"), sk: "SCHEDULED_COUNT".into() }
}

pub fn scheduled_count_in_room(room: &RoomId, user: &UserId) -> Key {
    Key { pk: format!("ROOM#{room}"), sk: format!("SCHEDULED_COUNT#{user}") }
}

/// Whose a connection is: `$disconnect` knows only the connection's id.
pub fn connection_owner(connection_id: &str) -> Key {
    Key { pk: format!("CONNECTION#{connection_id}"), sk: META.into() }
}

/// Whether a user is online in an org, and their open connections.
pub fn presence(org: &OrgId, user: &UserId) -> Key {
    Key { pk: format!("ORG#{org}#USER#{user}#CONNECTIONS"), sk: "PRESENCE".into() }
}

/// When `user` may next have a `typing` start relayed in `room`.
pub fn typing(room: &RoomId, user: &UserId) -> Key {
    Key { pk: format!("ROOM#{room}#TYPING"), sk: format!("USER#{user}") }
}

/// A room's event log's head: how far it is published, and the room's message count.
pub fn log_head(room: &RoomId) -> Key {
    Key { pk: format!("ROOM#{room}"), sk: "LOG".into() }
}

pub const LOG_PREFIX: &str = "LOG#";

/// A room event in its room's log. Entries sort by their number: 20 digits hold any u64.
pub fn log_entry(room: &RoomId, seq: u64) -> Key {
    Key { pk: format!("ROOM#{room}"), sk: format!("{LOG_PREFIX}{seq:020}") }
}
