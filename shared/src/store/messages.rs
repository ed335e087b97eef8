//! Messages and what is written with them in the same transaction: the pointer that finds a
//! message's room, its search-term entries, its links, the room's message count and the sender's
//! idempotency key.

use std::collections::{BTreeMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, ReturnConsumedCapacity, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use super::meter::Consumed;
use super::{
    Item, Order, Store, failed_at, from_item, key_item, keys, sdk_error, string_attr, to_item,
};
use crate::error::{Error, Result};
use crate::ids::{MessageId, OrgId, RoomId, UserId};
use crate::model::{Message, Room};
use crate::paging::{Page, PageRequest};
use crate::text::{MessageText, links, terms};

/// How long a retried send with the same key gets the first reply.
pub const IDEMPOTENCY_TTL_SECS: u64 = 24 * 3600;
/// The most messages a room may have pinned.
pub const MAX_PINS: usize = 100;
/// Term and room queries a search runs at once.
const SEARCH_CONCURRENCY: usize = 16;

#[derive(Serialize, Deserialize)]
struct Pointer {
    org_id: OrgId,
    room_id: RoomId,
}

/// A search term's entry: where the message (or reply) it names is stored.
#[derive(Serialize, Deserialize)]
struct TermEntry {
    room_id: RoomId,
    item_sk: String,
}

#[derive(Serialize, Deserialize)]
struct LinkEntry {
    url: String,
    message_id: MessageId,
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
    ttl: u64,
}

pub enum Sent {
    New(SendReceipt),
    /// A retry of a send that was stored before: its first reply.
    Repeat(SendReceipt),
}

fn epoch_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn value<T: Serialize>(value: &T) -> Result<AttributeValue> {
    serde_dynamo::to_attribute_value(value).map_err(Error::internal)
}

fn string_set(values: &[&str]) -> AttributeValue {
    AttributeValue::Ss(values.iter().map(|v| (*v).to_owned()).collect())
}

/// `update` as a transaction item.
fn tx_update(
    update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
) -> Result<TransactWriteItem> {
    Ok(TransactWriteItem::builder()
        .update(update.build().map_err(Error::internal)?)
        .build())
}

impl Store {
    fn update_builder(&self, key: &keys::Key) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        Update::builder()
            .table_name(self.table())
            .set_key(Some(key_item(key)))
    }

    fn term_puts(
        &self,
        room: &RoomId,
        id: &MessageId,
        item_sk: &str,
        terms: &[String],
    ) -> Result<Vec<TransactWriteItem>> {
        let entry = TermEntry {
            room_id: room.clone(),
            item_sk: item_sk.to_owned(),
        };
        terms
            .iter()
            .map(|term| self.put(&keys::term(room, term, id), &entry))
            .collect()
    }

    fn link_puts(
        &self,
        room: &RoomId,
        id: &MessageId,
        urls: &[String],
    ) -> Result<Vec<TransactWriteItem>> {
        urls.iter()
            .enumerate()
            .map(|(n, url)| {
                self.put(
                    &keys::link(room, id, n),
                    &LinkEntry {
                        url: url.clone(),
                        message_id: id.clone(),
                    },
                )
            })
            .collect()
    }

    /// Stores a new message with its pointer, search terms, links and the room's count, and the
    /// sender's idempotency key when one is given, in one transaction. The room must still have the
    /// sender as a member when it commits.
    pub async fn send_message(
        &self,
        message: &mut Message,
        idempotency_key: Option<&str>,
    ) -> Result<Sent> {
        let urls = links(&message.message);
        message.terms = terms(&message.message);
        message.link_count = urls.len();
        let receipt = SendReceipt {
            message_id: message.id.clone(),
            sender_id: message.sender_id.clone(),
            message: message.message.clone(),
            created_at: message.created_at.clone(),
            ttl: epoch_secs() + IDEMPOTENCY_TTL_SECS,
        };
        let message_key = keys::message(&message.room_id, &message.id);
        let room_update = self
            .update_builder(&keys::room(&message.room_id))
            .update_expression("ADD message_count :one")
            .condition_expression("contains(room_user_ids, :sender)")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(
                ":sender",
                AttributeValue::S(message.sender_id.to_string()),
            );
        let mut items = vec![
            self.put_new(&message_key, message)?,
            self.put(
                &keys::message_pointer(&message.id),
                &Pointer {
                    org_id: message.org_id.clone(),
                    room_id: message.room_id.clone(),
                },
            )?,
            tx_update(room_update)?,
        ];
        let key =
            idempotency_key.map(|key| keys::idempotency(&message.room_id, &message.sender_id, key));
        if let Some(key) = &key {
            let put = Put::builder()
                .table_name(self.table())
                .set_item(Some(to_item(key, &receipt)?))
                // DynamoDB deletes expired items late (DynamoDB Local never): an expired key is free.
                .condition_expression("attribute_not_exists(PK) OR #ttl < :now")
                .expression_attribute_names("#ttl", super::TTL_ATTRIBUTE)
                .expression_attribute_values(":now", value(&epoch_secs())?)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(Error::internal)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        items.extend(self.term_puts(
            &message.room_id,
            &message.id,
            &message_key.sk,
            &message.terms,
        )?);
        items.extend(self.link_puts(&message.room_id, &message.id, &urls)?);

        match self.transact(items).await? {
            Ok(()) => Ok(Sent::New(receipt)),
            Err(reasons) if key.is_some() && failed_at(&reasons, 3) => {
                let receipt = match (reasons.get(3).and_then(|reason| reason.item()), &key) {
                    (Some(item), _) => Some(from_item(item.clone())?),
                    (None, Some(key)) => self.get::<SendReceipt>(key).await?,
                    (None, None) => None,
                };
                receipt.map(Sent::Repeat).ok_or_else(|| {
                    Error::internal_msg("an idempotency key vanished while it was read")
                })
            }
            Err(reasons) if failed_at(&reasons, 2) => {
                Err(Error::forbidden("You are not a member of this room"))
            }
            Err(_) => Err(Error::internal_msg(
                "sending a message failed a condition it cannot fail",
            )),
        }
    }

    /// A page of the room's messages, newest first: one strongly consistent Query.
    pub async fn list_messages(&self, room: &RoomId, page: &PageRequest) -> Result<Page<Message>> {
        let page = self
            .query_page(
                keys::room_pk(room),
                keys::MESSAGE_PREFIX,
                Order::NewestFirst,
                page,
            )
            .await?;
        let items = page
            .items
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<Message>>>()?;
        Ok(Page {
            items,
            next: page.next,
            previous: page.previous,
        })
    }

    /// The org and room of a message, from its pointer.
    pub async fn message_location(&self, message: &MessageId) -> Result<Option<(OrgId, RoomId)>> {
        let pointer: Option<Pointer> = self.get(&keys::message_pointer(message)).await?;
        Ok(pointer.map(|pointer| (pointer.org_id, pointer.room_id)))
    }

    /// Replaces a message's text; the old text becomes a version and the search terms and links move
    /// with the text, in one transaction. 409 when another edit got there first.
    pub async fn edit_message(&self, old: &Message, text: MessageText) -> Result<Message> {
        let mut new = old.clone();
        new.message = text.into_string();
        new.edited = true;
        new.edited_at = Some(crate::time::now());
        new.terms = terms(&new.message);
        let urls = links(&new.message);
        new.link_count = urls.len();
        let at = new.edited_at.clone().unwrap_or_default();

        let key = keys::message(&old.room_id, &old.id);
        let update = self
            .update_builder(&key)
            .update_expression("SET #text = :text, edited = :edited, edited_at = :at, terms = :terms, link_count = :links")
            .condition_expression("attribute_exists(PK) AND #text = :old")
            .expression_attribute_names("#text", "message")
            .expression_attribute_values(":text", value(&new.message)?)
            .expression_attribute_values(":old", value(&old.message)?)
            .expression_attribute_values(":edited", AttributeValue::Bool(true))
            .expression_attribute_values(":at", value(&at)?)
            .expression_attribute_values(":terms", value(&new.terms)?)
            .expression_attribute_values(":links", value(&new.link_count)?);
        let version = Version {
            message: old.message.clone(),
            written_at: old
                .edited_at
                .clone()
                .unwrap_or_else(|| old.created_at.clone()),
            replaced_at: at.clone(),
        };
        let mut items = vec![
            tx_update(update)?,
            self.put(&keys::message_version(&old.room_id, &old.id, &at), &version)?,
        ];
        let removed: Vec<String> = old
            .terms
            .iter()
            .filter(|t| !new.terms.contains(t))
            .cloned()
            .collect();
        let added: Vec<String> = new
            .terms
            .iter()
            .filter(|t| !old.terms.contains(t))
            .cloned()
            .collect();
        for term in &removed {
            items.push(self.delete(&keys::term(&old.room_id, term, &old.id))?);
        }
        items.extend(self.term_puts(&old.room_id, &old.id, &key.sk, &added)?);
        items.extend(self.link_puts(&old.room_id, &old.id, &urls)?);
        for n in urls.len()..old.link_count {
            items.push(self.delete(&keys::link(&old.room_id, &old.id, n))?);
        }
        match self.transact(items).await? {
            Ok(()) => Ok(new),
            Err(reasons) if failed_at(&reasons, 0) => Err(Error::conflict(
                "The message changed while it was edited; try again",
            )),
            Err(_) => Err(Error::internal_msg(
                "editing a message failed a condition it cannot fail",
            )),
        }
    }

    /// Deletes a message and everything that finds it (pointer, terms, links, its pin), and lowers the
    /// room's count, in one transaction.
    pub async fn delete_message(&self, message: &Message) -> Result<()> {
        let room = &message.room_id;
        let mut room_update = self
            .update_builder(&keys::room(room))
            .expression_attribute_values(":minus", AttributeValue::N("-1".into()));
        room_update = if message.pinned {
            room_update
                .update_expression("ADD message_count :minus DELETE pinned :id")
                .expression_attribute_values(":id", string_set(&[message.id.as_str()]))
        } else {
            room_update.update_expression("ADD message_count :minus")
        };
        let delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key_item(&keys::message(room, &message.id))))
            .condition_expression("attribute_exists(PK)")
            .build()
            .map_err(Error::internal)?;
        let mut items = vec![
            TransactWriteItem::builder().delete(delete).build(),
            self.delete(&keys::message_pointer(&message.id))?,
            tx_update(room_update)?,
        ];
        for term in &message.terms {
            items.push(self.delete(&keys::term(room, term, &message.id))?);
        }
        for n in 0..message.link_count {
            items.push(self.delete(&keys::link(room, &message.id, n))?);
        }
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 0) => Err(Error::not_found("message not found")),
            Err(_) => Err(Error::internal_msg(
                "deleting a message failed a condition it cannot fail",
            )),
        }
    }

    /// A page of a message's earlier texts, oldest first.
    pub async fn message_versions(
        &self,
        room: &RoomId,
        message: &MessageId,
        page: &PageRequest,
    ) -> Result<Page<Version>> {
        let page = self
            .query_page(
                keys::room_pk(room),
                &keys::message_versions_prefix(message),
                Order::OldestFirst,
                page,
            )
            .await?;
        let items = page
            .items
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<Version>>>()?;
        Ok(Page {
            items,
            next: page.next,
            previous: page.previous,
        })
    }

    /// Sets whether `user` has read `message`; one member's flag never touches another's.
    pub async fn set_read(&self, message: &Message, user: &UserId, read: bool) -> Result<()> {
        let action = if read { "ADD" } else { "DELETE" };
        let updated = self
            .client
            .update_item()
            .table_name(self.table())
            .set_key(Some(key_item(&keys::message(
                &message.room_id,
                &message.id,
            ))))
            .update_expression(format!("{action} read_by :user"))
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":user", string_set(&[user.as_str()]))
            .return_values(ReturnValue::None)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let updated = self.metered(updated, |o| o.consumed_capacity.units());
        match updated {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Error::not_found("message not found"))
            }
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// Pins or unpins a message: the message's flag and the room's pinned set change together.
    pub async fn set_pinned(&self, message: &Message, pinned: bool) -> Result<()> {
        let message_update = self
            .update_builder(&keys::message(&message.room_id, &message.id))
            .update_expression("SET pinned = :pinned")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_values(":pinned", AttributeValue::Bool(pinned));
        let id = string_set(&[message.id.as_str()]);
        let room_update = self
            .update_builder(&keys::room(&message.room_id))
            .expression_attribute_values(":id", id);
        let room_update = if pinned {
            room_update
                .update_expression("ADD pinned :id")
                .condition_expression(
                    "attribute_not_exists(pinned) OR size(pinned) < :max OR contains(pinned, :one)",
                )
                .expression_attribute_values(":max", value(&MAX_PINS)?)
                .expression_attribute_values(":one", AttributeValue::S(message.id.to_string()))
        } else {
            room_update.update_expression("DELETE pinned :id")
        };
        match self
            .transact(vec![tx_update(message_update)?, tx_update(room_update)?])
            .await?
        {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 0) => Err(Error::not_found("message not found")),
            Err(reasons) if failed_at(&reasons, 1) => Err(Error::bad_request(format!(
                "a room pins at most {MAX_PINS} messages"
            ))),
            Err(_) => Err(Error::internal_msg(
                "pinning failed a condition it cannot fail",
            )),
        }
    }

    /// The room's links, newest first, each once, paged.
    pub async fn room_links(&self, room: &RoomId, page: &PageRequest) -> Result<Page<String>> {
        let items = self
            .query_all(keys::room_pk(room), keys::LINK_PREFIX, false)
            .await?;
        let mut seen = HashSet::new();
        let mut links = Vec::new();
        for item in items {
            let (Some(sk), Ok(entry)) =
                (string_attr(&item, keys::SK), from_item::<LinkEntry>(item))
            else {
                continue;
            };
            if seen.insert(entry.url.clone()) {
                links.push((sk, entry.url));
            }
        }
        page_in_memory(links, page, keys::LINK_PREFIX)
    }

    /// Messages in any room `user` is in now that hold every one of `words`, newest first, paged.
    ///
    /// No Scan: one Query for the user's rooms, then one Query per room and word over that room's term
    /// entries (run concurrently), then one batch read for the page.
    pub async fn search(
        &self,
        org: &OrgId,
        user: &UserId,
        words: &[String],
        page: &PageRequest,
    ) -> Result<Page<Message>> {
        let rooms: Vec<RoomId> = self
            .query_all(keys::user_rooms_pk(org, user), keys::ROOM_PREFIX, false)
            .await?
            .into_iter()
            .filter_map(|item| string_attr(&item, "room_id").and_then(|id| RoomId::parse(id).ok()))
            .collect();
        // Owned values: the lookups run as concurrent futures that must not borrow across tasks.
        let lookups: Vec<(RoomId, String)> = rooms
            .iter()
            .flat_map(|room| words.iter().map(|word| (room.clone(), word.clone())))
            .collect();
        let store = self.clone();
        let entries: Vec<(RoomId, Vec<Item>)> = stream::iter(lookups)
            .map(move |(room, word)| {
                let store = store.clone();
                async move {
                    let items = store
                        .query_all(keys::term_pk(&room, &word), keys::MESSAGE_PREFIX, false)
                        .await?;
                    Ok::<_, Error>((room, items))
                }
            })
            .buffer_unordered(SEARCH_CONCURRENCY)
            .try_collect()
            .await?;
        // Per room, the entries that every word found.
        let mut per_room: BTreeMap<RoomId, BTreeMap<String, (usize, String)>> = BTreeMap::new();
        for (room, items) in entries {
            let found = per_room.entry(room).or_default();
            for item in &items {
                let (Some(sk), Some(item_sk)) =
                    (string_attr(item, keys::SK), string_attr(item, "item_sk"))
                else {
                    continue;
                };
                found.entry(sk).or_insert((0, item_sk)).0 += 1;
            }
        }
        let mut hits: Vec<(String, keys::Key)> = Vec::new();
        for (room, found) in per_room {
            for (sk, (count, item_sk)) in found {
                if count == words.len() {
                    hits.push((
                        sk,
                        keys::Key {
                            pk: keys::room_pk(&room),
                            sk: item_sk,
                        },
                    ));
                }
            }
        }
        hits.sort_by(|a, b| b.0.cmp(&a.0));
        let page = page_in_memory(hits, page, keys::MESSAGE_PREFIX)?;
        let keys: Vec<keys::Key> = page.items.clone();
        let found = if keys.is_empty() {
            Vec::new()
        } else {
            self.get_many(&keys).await?
        };
        let items = found
            .into_iter()
            .flatten()
            .map(from_item)
            .collect::<Result<Vec<Message>>>()?;
        Ok(Page {
            items,
            next: page.next,
            previous: page.previous,
        })
    }
}

/// Pages a list already sorted newest first by its sort keys, with the same cursors as a Query.
fn page_in_memory<T: Clone>(
    items: Vec<(String, T)>,
    page: &PageRequest,
    prefix: &str,
) -> Result<Page<T>> {
    use crate::paging::{Cursor, Direction};
    let (start, end) = match &page.cursor {
        None => (0, page.limit.min(items.len())),
        Some(cursor) if !cursor.sort_key.starts_with(prefix) => {
            return Err(Error::bad_request("invalid cursor"));
        }
        Some(cursor) => {
            // Newest first: "after" a key means smaller keys.
            let split = items
                .iter()
                .position(|(sk, _)| *sk < cursor.sort_key)
                .unwrap_or(items.len());
            let split_before = items
                .iter()
                .position(|(sk, _)| *sk <= cursor.sort_key)
                .unwrap_or(items.len());
            match cursor.direction {
                Direction::After => (split, (split + page.limit).min(items.len())),
                Direction::Before => (split_before.saturating_sub(page.limit), split_before),
            }
        }
    };
    let cursor_at = |index: usize, direction| {
        items.get(index).map(|(sk, _)| Cursor {
            direction,
            sort_key: sk.clone(),
        })
    };
    let next = if end < items.len() && end > start {
        cursor_at(end - 1, Direction::After)
    } else {
        None
    };
    let previous = if start > 0 && end > start {
        cursor_at(start, Direction::Before)
    } else {
        None
    };
    let slice = items[start..end]
        .iter()
        .map(|(_, item)| item.clone())
        .collect();
    Ok(Page {
        items: slice,
        next,
        previous,
    })
}

impl Room {
    /// The room's pinned ids after pinning or unpinning `message`.
    pub fn with_pin(&self, message: &MessageId, pinned: bool) -> Vec<String> {
        let mut ids: Vec<String> = self
            .pinned
            .iter()
            .filter(|id| *id != message.as_str())
            .cloned()
            .collect();
        if pinned {
            ids.push(message.to_string());
        }
        ids.sort_unstable();
        ids
    }
}
