//! Messages and thread replies, and what is written with them in the same transaction: the pointer
//! that finds a post's room and the sender's idempotency key. What is derived from them (search
//! terms, links, counts, inboxes) is the projector's (`index`, `inbox`).

use std::collections::HashSet;

use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use super::index::LinkEntry;
use super::{Item, Order, PostRef, Store, failed_at, from_item, key_item, keys, string_attr, to_item};
use crate::error::{Error, Result};
use crate::ids::{MessageId, OrgId, RoomId, UserId};
use crate::input::IdempotencyKey;
use crate::model::{Message, Room};
use crate::paging::{Cursor, Direction, Page, PageRequest};
use crate::text::MessageText;
use crate::time::epoch_secs;

/// How long a retried send with the same key gets the first reply.
pub const IDEMPOTENCY_TTL_SECS: u64 = 24 * 3600;
/// The most messages a room may have pinned.
pub const MAX_PINS: usize = 100;
/// Term and room queries a search runs at once.
const SEARCH_CONCURRENCY: usize = 16;
/// Rounds of look-ahead a search page takes before it ends short (with `next` where it stopped).
const SEARCH_ROUNDS: usize = 3;

/// Where a message or reply lives, for routes that name only its id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pointer {
    pub org_id: OrgId,
    pub room_id: RoomId,
    /// Set for a thread reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<MessageId>,
}

/// A message's earlier text.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Version {
    pub message: String,
    /// When this text was written (the send, or the edit before).
    pub written_at: String,
    /// When an edit replaced it.
    pub replaced_at: String,
}

/// The first reply to a send, kept under its idempotency key for the send's retries.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SendReceipt {
    pub message_id: MessageId,
    pub sender_id: UserId,
    pub message: String,
    pub created_at: String,
    /// What was sent (see `request_digest`): a key reused for another request is refused.
    #[serde(default)]
    request: String,
    ttl: u64,
}

/// A digest of what a send asks for (its text and media), to tell a retry from a different request
/// that reuses the key.
fn request_digest(post: &Message) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(post.message.as_bytes());
    for url in &post.media {
        hash.update([0]);
        hash.update(url.as_bytes());
    }
    for user in &post.mentions {
        hash.update([1]);
        hash.update(user.as_str().as_bytes());
    }
    hash.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

pub enum Sent {
    New(SendReceipt),
    /// A retry of a send that was stored before: its first reply.
    Repeat(SendReceipt),
}

pub(crate) fn value<T: Serialize>(value: &T) -> Result<AttributeValue> {
    serde_dynamo::to_attribute_value(value).map_err(Error::internal)
}

pub(crate) fn string_set(values: &[&str]) -> AttributeValue {
    AttributeValue::Ss(values.iter().map(|v| (*v).to_owned()).collect())
}

pub(crate) fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// `update` as a transaction item.
pub(crate) fn tx_update(update: UpdateBuilder) -> Result<TransactWriteItem> {
    Ok(TransactWriteItem::builder().update(update.build().map_err(Error::internal)?).build())
}

impl Store {
    pub(crate) fn update_builder(&self, key: &keys::Key) -> UpdateBuilder {
        Update::builder().table_name(self.table()).set_key(Some(key_item(key)))
    }

    /// Stores a new message or reply with its pointer and the sender's idempotency key when one is
    /// given: one transaction of at most four items, which commits only while the room is the org's
    /// and the sender one of its members (403 otherwise, for the caller to explain). Nothing in it is
    /// written by every send of a room, so concurrent senders never conflict; what a send changes
    /// elsewhere follows from the stream (`index`, `inbox`), including a reply whose message was
    /// deleted meanwhile, which is then removed.
    pub async fn send_message(&self, post: &Message, idempotency_key: Option<&IdempotencyKey>) -> Result<Sent> {
        let receipt = SendReceipt {
            message_id: post.id.clone(),
            sender_id: post.sender_id.clone(),
            message: post.message.clone(),
            created_at: post.created_at.clone(),
            request: request_digest(post),
            ttl: epoch_secs() + IDEMPOTENCY_TTL_SECS,
        };
        let key = PostRef::of(post).key(&post.room_id);
        let sender = AttributeValue::S(post.sender_id.to_string());
        let room_key = keys::room(&post.room_id);
        let pointer =
            Pointer { org_id: post.org_id.clone(), room_id: post.room_id.clone(), parent: post.parent.clone() };
        let mut items = vec![self.put_new(&key, post)?, self.put(&keys::message_pointer(&post.id), &pointer)?];
        // The room is only checked, never written: concurrent senders in a room do not conflict (its
        // count is the projector's). Whom the post mentions is checked with the sender.
        let mut condition = "org_id = :org AND contains(room_user_ids, :sender)".to_owned();
        let mut membership = ConditionCheck::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&room_key)))
            .expression_attribute_values(":org", value(&post.org_id)?)
            .expression_attribute_values(":sender", sender);
        for (i, user) in post.mentions.iter().enumerate() {
            condition.push_str(&format!(" AND contains(room_user_ids, :m{i})"));
            membership = membership.expression_attribute_values(format!(":m{i}"), AttributeValue::S(user.to_string()));
        }
        let membership = membership.condition_expression(condition).build().map_err(Error::internal)?;
        let membership_at = items.len();
        items.push(TransactWriteItem::builder().condition_check(membership).build());
        let idempotency_at = items.len();
        let idempotency =
            idempotency_key.map(|key| keys::idempotency(&post.room_id, &post.sender_id, key, post.parent.as_ref()));
        if let Some(key) = &idempotency {
            let put = Put::builder()
                .table_name(self.table())
                .set_item(Some(to_item(key, &receipt)?))
                // DynamoDB deletes expired items late (DynamoDB Local never): an expired key is free.
                .condition_expression("attribute_not_exists(PK) OR #ttl < :now")
                .expression_attribute_names("#ttl", super::TTL_ATTRIBUTE)
                .expression_attribute_values(":now", value(&epoch_secs())?)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .build()
                .map_err(Error::internal)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }

        match self.transact(items).await? {
            Ok(()) => Ok(Sent::New(receipt)),
            Err(reasons) if idempotency.is_some() && failed_at(&reasons, idempotency_at) => {
                let receipt: Option<SendReceipt> =
                    match (reasons.get(idempotency_at).and_then(|r| r.item()), &idempotency) {
                        (Some(item), _) => Some(from_item(item.clone())?),
                        (None, Some(key)) => self.get::<SendReceipt>(key).await?,
                        (None, None) => None,
                    };
                let first =
                    receipt.ok_or_else(|| Error::internal_msg("an idempotency key vanished while it was read"))?;
                if !first.request.is_empty() && first.request != request_digest(post) {
                    return Err(Error::Unprocessable(
                        "This Idempotency-Key was used for a different request; use a new key for a new message".into(),
                    ));
                }
                Ok(Sent::Repeat(first))
            }
            Err(reasons) if failed_at(&reasons, membership_at) => {
                Err(Error::forbidden("You are not a member of this room"))
            }
            Err(_) => Err(Error::internal_msg("sending failed a condition it cannot fail")),
        }
    }

    /// A page of the room's messages, newest first: one strongly consistent Query.
    pub async fn list_messages(&self, room: &RoomId, page: &PageRequest) -> Result<Page<Message>> {
        self.query_posts(room, keys::MESSAGE_PREFIX, Order::NewestFirst, page).await
    }

    /// The page of the room's messages centred on `message`, newest first: up to `limit`, the message
    /// and older ones in the lower half, newer ones above, with `next` and `previous` to go on both
    /// ways. Two strongly consistent Queries; `None` when the message is not in the room.
    pub async fn messages_around(
        &self,
        room: &RoomId,
        message: &MessageId,
        limit: usize,
    ) -> Result<Option<Page<Message>>> {
        let pk = keys::room_pk(room);
        let at = keys::message(room, message).sk;
        let messages = || Some(("begins_with(SK, :sk)", keys::MESSAGE_PREFIX.to_owned()));
        let start = |sk: String| Some(key_item(&keys::Key { pk: pk.clone(), sk }));
        let newer_wanted = (limit - 1) / 2;
        let older_wanted = limit - newer_wanted;
        // Newest first from just past the message: the message itself comes first.
        let (mut older, _) =
            self.query_limited(pk.clone(), messages(), false, start(format!("{at}\0")), older_wanted + 1).await?;
        if older.first().and_then(|item| string_attr(item, keys::SK)).as_ref() != Some(&at) {
            return Ok(None);
        }
        let (mut newer, _) = self.query_limited(pk.clone(), messages(), true, start(at), newer_wanted + 1).await?;
        let (more_older, more_newer) = (older.len() > older_wanted, newer.len() > newer_wanted);
        older.truncate(older_wanted);
        newer.truncate(newer_wanted);
        newer.reverse();
        let items: Vec<Item> = newer.into_iter().chain(older).collect();
        let cursor = |item: Option<&Item>, direction| {
            item.and_then(|item| string_attr(item, keys::SK)).map(|sort_key| Cursor { direction, sort_key })
        };
        let next = if more_older { cursor(items.last(), Direction::After) } else { None };
        let previous = if more_newer { cursor(items.first(), Direction::Before) } else { None };
        Page { items, next, previous }.try_map(from_item).map(Some)
    }

    /// A page of a message's thread, oldest first: one strongly consistent Query.
    pub async fn list_replies(&self, room: &RoomId, parent: &MessageId, page: &PageRequest) -> Result<Page<Message>> {
        self.query_posts(room, &keys::thread_prefix(parent), Order::OldestFirst, page).await
    }

    async fn query_posts(
        &self,
        room: &RoomId,
        prefix: &str,
        order: Order,
        page: &PageRequest,
    ) -> Result<Page<Message>> {
        let page = self.query_page(keys::room_pk(room), prefix, order, page).await?;
        page.try_map(from_item)
    }

    /// Where a message or reply lives, from its pointer.
    pub async fn locate(&self, id: &MessageId) -> Result<Option<Pointer>> {
        self.get(&keys::message_pointer(id)).await
    }

    /// Replaces a post's text; the old text becomes a version, in one transaction (its index entries
    /// follow from the stream). 409 when another edit got there first.
    pub async fn edit_message(&self, old: &Message, text: MessageText, mentions: Vec<UserId>) -> Result<Message> {
        let mut new = old.clone();
        new.message = text.into_string();
        new.edited = true;
        new.edited_at = Some(crate::time::now());
        new.mentions = mentions;
        let at = new.edited_at.clone().unwrap_or_default();

        let key = PostRef::of(old).key(&old.room_id);
        let update = self
            .update_builder(&key)
            .update_expression("SET #text = :text, edited = :edited, edited_at = :at, mentions = :mentions")
            .expression_attribute_values(":mentions", value(&new.mentions)?)
            .condition_expression("attribute_exists(PK) AND #text = :old")
            .expression_attribute_names("#text", "message")
            .expression_attribute_values(":text", value(&new.message)?)
            .expression_attribute_values(":old", value(&old.message)?)
            .expression_attribute_values(":edited", AttributeValue::Bool(true))
            .expression_attribute_values(":at", value(&at)?);
        let version = Version {
            message: old.message.clone(),
            written_at: old.edited_at.clone().unwrap_or_else(|| old.created_at.clone()),
            replaced_at: at.clone(),
        };
        let items = vec![tx_update(update)?, self.put(&keys::message_version(&old.room_id, &old.id, &at), &version)?];
        match self.transact(items).await? {
            Ok(()) => Ok(new),
            Err(reasons) if failed_at(&reasons, 0) => {
                Err(Error::conflict("The message changed while it was edited; try again"))
            }
            Err(_) => Err(Error::internal_msg("editing failed a condition it cannot fail")),
        }
    }

    /// Deletes a post with its pointer and, for a pinned message, its place in the room's pins, in
    /// one transaction conditioned on the pin as read: a pin that lands first makes it read the post
    /// again, so none is left behind. Its index entries and counts, and what hangs off it (its
    /// history, reactions, replies and files), follow from the table's stream (`purge_dependents`).
    pub async fn delete_message(&self, post: &Message) -> Result<()> {
        let not_found = || Error::not_found("message not found");
        let key = PostRef::of(post).key(&post.room_id);
        let mut post = post.clone();
        for _ in 0..4 {
            match self.transact(self.delete_items(&post)?).await? {
                Ok(()) => return Ok(()),
                Err(reasons) if failed_at(&reasons, 0) => {
                    post = self.get(&key).await?.ok_or_else(not_found)?;
                }
                Err(_) => return Err(Error::internal_msg("deleting failed a condition it cannot fail")),
            }
        }
        Err(Error::conflict("The message kept changing while it was deleted; try again"))
    }

    /// The delete of `post` as read: the post itself first (conditioned on its pin), then its
    /// pointer, then the room's pin (a pinned message).
    fn delete_items(&self, post: &Message) -> Result<Vec<TransactWriteItem>> {
        let room = &post.room_id;
        let as_read = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&PostRef::of(post).key(room))))
            .condition_expression("pinned = :pinned")
            .expression_attribute_values(":pinned", AttributeValue::Bool(post.pinned))
            .build()
            .map_err(Error::internal)?;
        let mut items =
            vec![TransactWriteItem::builder().delete(as_read).build(), self.delete(&keys::message_pointer(&post.id))?];
        if post.pinned {
            items.push(tx_update(
                self.update_builder(&keys::room(room))
                    .update_expression("DELETE pinned :id")
                    .expression_attribute_values(":id", string_set(&[post.id.as_str()])),
            )?);
        }
        Ok(items)
    }

    /// Removes what hung off a deleted post: its earlier texts and its reactions, and, for a message,
    /// its replies with their pointers (each reply's own removal then unindexes it and purges what
    /// hangs off it). Idempotent: a replayed removal finds nothing left to delete.
    pub async fn purge_dependents(&self, post: &Message) -> Result<()> {
        let room_pk = keys::room_pk(&post.room_id);
        let mut doomed: Vec<keys::Key> = Vec::new();
        let mut prefixes = vec![keys::message_versions_prefix(&post.id), keys::reactions_prefix(&post.id)];
        if post.parent.is_none() {
            prefixes.push(keys::thread_prefix(&post.id));
        }
        for prefix in prefixes {
            for item in self.query_all(room_pk.clone(), &prefix, true).await? {
                if let Some(sk) = string_attr(&item, keys::SK) {
                    doomed.push(keys::Key { pk: room_pk.clone(), sk: sk.clone() });
                }
                if sk_is_reply(&item) {
                    let reply: Message = from_item(item)?;
                    doomed.push(keys::message_pointer(&reply.id));
                }
            }
        }
        self.delete_many(&doomed).await
    }

    /// A page of a message's earlier texts, oldest first.
    pub async fn message_versions(
        &self,
        room: &RoomId,
        message: &MessageId,
        page: &PageRequest,
    ) -> Result<Page<Version>> {
        let prefix = keys::message_versions_prefix(message);
        let page = self.query_page(keys::room_pk(room), &prefix, Order::OldestFirst, page).await?;
        page.try_map(from_item)
    }

    /// Sets whether `user` has read `message`; one member's flag never touches another's.
    pub async fn set_read(&self, message: &Message, user: &UserId, read: bool) -> Result<()> {
        let action = if read { "ADD" } else { "DELETE" };
        let update = self
            .update_item(&PostRef::of(message).key(&message.room_id))
            .update_expression(format!("{action} read_by :user"))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":user", string_set(&[user.as_str()]));
        if self.update_if(update).await? { Ok(()) } else { Err(Error::not_found("message not found")) }
    }

    /// Pins or unpins a message: the message's flag and the room's pinned set change together.
    pub async fn set_pinned(&self, message: &Message, pinned: bool) -> Result<()> {
        let message_update = self
            .update_builder(&keys::message(&message.room_id, &message.id))
            .update_expression("SET pinned = :pinned")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":pinned", AttributeValue::Bool(pinned));
        let room_update = self
            .update_builder(&keys::room(&message.room_id))
            .expression_attribute_values(":id", string_set(&[message.id.as_str()]));
        let room_update = if pinned {
            room_update
                .update_expression("ADD pinned :id")
                .condition_expression("attribute_not_exists(pinned) OR size(pinned) < :max OR contains(pinned, :one)")
                .expression_attribute_values(":max", value(&MAX_PINS)?)
                .expression_attribute_values(":one", AttributeValue::S(message.id.to_string()))
        } else {
            room_update.update_expression("DELETE pinned :id")
        };
        match self.transact(vec![tx_update(message_update)?, tx_update(room_update)?]).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 0) => Err(Error::not_found("message not found")),
            Err(reasons) if failed_at(&reasons, 1) => {
                Err(Error::bad_request(format!("a room pins at most {MAX_PINS} messages")))
            }
            Err(_) => Err(Error::internal_msg("pinning failed a condition it cannot fail")),
        }
    }

    /// Which of the messages named (room, id) still exist: one batch read for the distinct ones.
    async fn live_messages(&self, mut refs: Vec<(RoomId, MessageId)>) -> Result<HashSet<MessageId>> {
        refs.sort();
        refs.dedup();
        if refs.is_empty() {
            return Ok(HashSet::new());
        }
        let keys: Vec<keys::Key> = refs.iter().map(|(room, id)| keys::message(room, id)).collect();
        let found = self.get_many(&keys).await?;
        Ok(refs.into_iter().zip(found).filter(|(_, item)| item.is_some()).map(|((_, id), _)| id).collect())
    }

    /// A page of the room's links, newest first, each URL once on a page: one Query for the page,
    /// and one batch read for the messages of the replies it shows (a reply's link shows while its
    /// message exists).
    pub async fn room_links(&self, room: &RoomId, page: &PageRequest) -> Result<Page<String>> {
        let page = self.query_page(keys::room_pk(room), keys::LINK_PREFIX, Order::NewestFirst, page).await?;
        let entries = page.items.into_iter().map(from_item::<LinkEntry>).collect::<Result<Vec<_>>>()?;
        let parents = entries.iter().filter_map(|e| e.parent.clone().map(|p| (room.clone(), p))).collect();
        let live = self.live_messages(parents).await?;
        let mut seen = HashSet::new();
        let items = entries
            .into_iter()
            .filter(|e| e.parent.as_ref().is_none_or(|p| live.contains(p)))
            .filter(|e| seen.insert(e.url.clone()))
            .map(|e| e.url)
            .collect();
        Ok(Page { items, next: page.next, previous: page.previous })
    }

    /// Messages and replies in any room `user` is in now that hold every one of `words`, newest
    /// first, a page at a time.
    ///
    /// No Scan, and a page reads what it shows plus a bounded look-ahead, however many posts match:
    /// one Query for the user's rooms; then, a round at a time, one Query per room over its entries
    /// for the longest word (a page and one more, all rooms at once), merged across rooms; the other
    /// words are checked for those candidates only (one batch read). After `SEARCH_ROUNDS` rounds a
    /// short page ends, with `next` where it stopped.
    pub async fn search(
        &self,
        org: &OrgId,
        user: &UserId,
        words: &[String],
        page: &PageRequest,
    ) -> Result<Page<Message>> {
        let Some(first) = words.iter().max_by_key(|word| word.chars().count()) else {
            return Ok(Page { items: Vec::new(), next: None, previous: None });
        };
        if page.cursor.as_ref().is_some_and(|cursor| !cursor.sort_key.starts_with(keys::MESSAGE_PREFIX)) {
            return Err(Error::bad_request("invalid cursor"));
        }
        let rooms: Vec<RoomId> = self
            .query_all(keys::user_rooms_pk(org, user), keys::ROOM_PREFIX, false)
            .await?
            .into_iter()
            .filter_map(|item| string_attr(&item, "room_id").and_then(|id| RoomId::parse(id).ok()))
            .collect();
        let others: Vec<&String> = words.iter().filter(|word| *word != first).collect();
        let direction = page.cursor.as_ref().map_or(Direction::After, |cursor| cursor.direction);
        let mut from = page.cursor.as_ref().map(|cursor| cursor.sort_key.clone());
        let mut hits: Vec<(String, keys::Key)> = Vec::new();
        let mut exhausted = false;
        for _ in 0..SEARCH_ROUNDS {
            let (candidates, truncated) =
                self.term_candidates(&rooms, first, from.as_deref(), direction, page.limit).await?;
            let verified = self.having_every_word(&candidates, &others).await?;
            let examined = candidates.len();
            for (n, (candidate, every_word)) in candidates.into_iter().zip(verified).enumerate() {
                from = Some(candidate.0.clone());
                if every_word {
                    hits.push(candidate);
                }
                if hits.len() == page.limit {
                    exhausted = !truncated && n + 1 == examined;
                    break;
                }
            }
            if hits.len() == page.limit {
                break;
            }
            if !truncated {
                exhausted = true;
                break;
            }
        }
        // Shown newest first, whichever way the page was read.
        if direction == Direction::Before {
            hits.reverse();
        }
        let keys: Vec<keys::Key> = hits.iter().map(|(_, key)| key.clone()).collect();
        let found = if keys.is_empty() { Vec::new() } else { self.get_many(&keys).await? };
        let posts = found.into_iter().flatten().map(from_item).collect::<Result<Vec<Message>>>()?;
        let parents = posts.iter().filter_map(|p| p.parent.clone().map(|parent| (p.room_id.clone(), parent))).collect();
        let live = self.live_messages(parents).await?;
        let items =
            posts.into_iter().filter(|p| p.parent.as_ref().is_none_or(|parent| live.contains(parent))).collect();

        let at = |sort_key: &String, direction| Cursor { direction, sort_key: sort_key.clone() };
        let (newest, oldest) = (hits.first().map(|(sk, _)| sk), hits.last().map(|(sk, _)| sk));
        let (next, previous) = match direction {
            Direction::After => (
                (!exhausted).then_some(()).and(from.as_ref()).map(|sk| at(sk, Direction::After)),
                page.cursor.as_ref().and(newest).map(|sk| at(sk, Direction::Before)),
            ),
            Direction::Before => (
                oldest.or(page.cursor.as_ref().map(|c| &c.sort_key)).map(|sk| at(sk, Direction::After)),
                (!exhausted).then_some(()).and(from.as_ref()).map(|sk| at(sk, Direction::Before)),
            ),
        };
        Ok(Page { items, next, previous })
    }

    /// The entries for `word` in every room past `from` in the direction read, merged across rooms
    /// (newest first for `After`, oldest first for `Before`), at most `limit`; and whether more lie
    /// beyond them. Each room reads one more than `limit`, so the first `limit` merged are exactly the
    /// next ones across all rooms.
    async fn term_candidates(
        &self,
        rooms: &[RoomId],
        word: &str,
        from: Option<&str>,
        direction: Direction,
        limit: usize,
    ) -> Result<(Vec<(String, keys::Key)>, bool)> {
        let lookups: Vec<(Store, RoomId, String, Option<String>)> =
            rooms.iter().map(|room| (self.clone(), room.clone(), word.to_owned(), from.map(str::to_owned))).collect();
        let per_room: Vec<(RoomId, Vec<Item>)> = stream::iter(lookups)
            .map(|(store, room, word, from)| async move {
                let items = store.term_entries(&room, &word, from.as_deref(), direction, limit + 1).await?;
                Ok::<_, Error>((room, items))
            })
            .buffer_unordered(SEARCH_CONCURRENCY)
            .try_collect()
            .await?;
        let mut merged: Vec<(String, keys::Key)> = per_room
            .into_iter()
            .flat_map(|(room, items)| {
                items.into_iter().filter_map(move |item| {
                    let (sk, item_sk) = (string_attr(&item, keys::SK)?, string_attr(&item, "item_sk")?);
                    Some((sk, keys::Key { pk: keys::room_pk(&room), sk: item_sk }))
                })
            })
            .collect();
        merged.sort_by(|a, b| if direction == Direction::After { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) });
        let more = merged.len() > limit;
        merged.truncate(limit);
        Ok((merged, more))
    }

    /// Up to `limit` of a room's entries for a term past `from`, newest first (`After`) or oldest
    /// first (`Before`): one Query.
    async fn term_entries(
        &self,
        room: &RoomId,
        word: &str,
        from: Option<&str>,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<Item>> {
        let newest_first = direction == Direction::After;
        let sort = from.map(|from| (if newest_first { "SK < :sk" } else { "SK > :sk" }, from.to_owned()));
        Ok(self.query_limited(keys::term_pk(room, word), sort, !newest_first, None, limit).await?.0)
    }

    /// Which of the candidates are indexed under every one of `words` too: one batch read of their
    /// term entries.
    async fn having_every_word(&self, candidates: &[(String, keys::Key)], words: &[&String]) -> Result<Vec<bool>> {
        if words.is_empty() {
            return Ok(vec![true; candidates.len()]);
        }
        let mut lookups = Vec::with_capacity(candidates.len() * words.len());
        for (sk, key) in candidates {
            let room = RoomId::parse(key.pk.trim_start_matches("ROOM#"))?;
            let id = MessageId::parse(sk.trim_start_matches(keys::MESSAGE_PREFIX))?;
            lookups.extend(words.iter().map(|word| keys::term(&room, word, &id)));
        }
        let found = self.get_many(&lookups).await?;
        Ok(found.chunks(words.len()).map(|entries| entries.iter().all(Option::is_some)).collect())
    }
}

fn sk_is_reply(item: &Item) -> bool {
    string_attr(item, keys::SK).is_some_and(|sk| sk.starts_with(keys::THREAD_PREFIX))
}

impl Room {
    /// The room's pinned ids after pinning or unpinning `message`.
    pub fn with_pin(&self, message: &MessageId, pinned: bool) -> Vec<String> {
        let mut ids: Vec<String> = self.pinned.iter().filter(|id| *id != message.as_str()).cloned().collect();
        if pinned {
            ids.push(message.to_string());
        }
        ids.sort_unstable();
        ids
    }
}
