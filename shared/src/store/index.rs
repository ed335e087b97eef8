//! What the projector derives from a post's text and place, off the send path: the search-term
//! entries search merges across rooms, the room's link entries, and a message's reply count.
//!
//! Index entries are whole items put or deleted by key, so a record delivered again writes the same
//! items; a reply is counted once through its `COUNTED_REPLY#` item, written in the transaction that
//! moves its message's `thread_count`.

use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};
use serde::{Deserialize, Serialize};

use super::messages::{number, tx_update};
use super::{PostRef, Store, failed_at, key_item, keys, to_item, tx::conditional_delete};
use crate::error::{Error, Result};
use crate::ids::{MessageId, RoomId};
use crate::model::Message;
use crate::text::{links, terms};

/// A search term's entry: where the post it names is stored.
#[derive(Serialize, Deserialize)]
pub(crate) struct TermEntry {
    pub room_id: RoomId,
    pub item_sk: String,
}

/// A URL among the room's links, from a message, a reply or a bookmark (`message_id` names it).
#[derive(Serialize, Deserialize)]
pub(crate) struct LinkEntry {
    pub url: String,
    pub message_id: MessageId,
    /// For a reply's link: its message, which must still exist for the link to show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<MessageId>,
}

/// A counted reply: which message's `thread_count` holds it.
#[derive(Serialize, Deserialize)]
struct CountedReply {
    parent: MessageId,
}

/// The index entries of a post's text: (key, entry) for each term and each link.
fn entries(post: &Message) -> Result<Vec<(keys::Key, super::Item)>> {
    let item_sk = PostRef::of(post).key(&post.room_id).sk;
    let term = TermEntry { room_id: post.room_id.clone(), item_sk };
    let mut out = Vec::new();
    for word in terms(&post.message) {
        let key = keys::term(&post.room_id, &word, &post.id);
        out.push((key.clone(), to_item(&key, &term)?));
    }
    for (n, url) in links(&post.message).into_iter().enumerate() {
        let key = keys::link(&post.room_id, &post.id, n);
        let link = LinkEntry { url, message_id: post.id.clone(), parent: post.parent.clone() };
        out.push((key.clone(), to_item(&key, &link)?));
    }
    Ok(out)
}

fn entry_keys(post: &Message) -> Vec<keys::Key> {
    let room = &post.room_id;
    let terms = terms(&post.message).into_iter().map(|word| keys::term(room, &word, &post.id));
    terms.chain((0..links(&post.message).len()).map(|n| keys::link(room, &post.id, n))).collect()
}

pub(crate) fn put_request(item: super::Item) -> Result<WriteRequest> {
    let put = PutRequest::builder().set_item(Some(item)).build().map_err(Error::internal)?;
    Ok(WriteRequest::builder().put_request(put).build())
}

fn delete_request(key: &keys::Key) -> Result<WriteRequest> {
    let delete = DeleteRequest::builder().set_key(Some(key_item(key))).build().map_err(Error::internal)?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

impl Store {
    /// Indexes stored posts under their terms and links.
    pub async fn index_posts(&self, posts: &[&Message]) -> Result<()> {
        let mut writes = Vec::new();
        for post in posts {
            for (_, item) in entries(post)? {
                writes.push(put_request(item)?);
            }
        }
        self.write_many(writes).await
    }

    /// Moves an edited post's entries from its old text to its new one.
    pub async fn reindex_post(&self, old: &Message, new: &Message) -> Result<()> {
        let kept = entries(new)?;
        let mut writes: Vec<WriteRequest> = entry_keys(old)
            .iter()
            .filter(|key| !kept.iter().any(|(k, _)| k == *key))
            .map(delete_request)
            .collect::<Result<_>>()?;
        for (_, item) in kept {
            writes.push(put_request(item)?);
        }
        self.write_many(writes).await
    }

    /// Removes a removed post's entries.
    pub async fn unindex_post(&self, post: &Message) -> Result<()> {
        self.write_many(entry_keys(post).iter().map(delete_request).collect::<Result<_>>()?).await
    }

    /// Counts a stored reply in its message's `thread_count`, once. A reply whose message was
    /// deleted before it was stored is removed (its message's removal could not see it).
    pub async fn count_reply(&self, reply: &Message) -> Result<()> {
        let Some(parent) = &reply.parent else { return Ok(()) };
        let room = &reply.room_id;
        let counted = self.put_new(&keys::counted_reply(room, &reply.id), &CountedReply { parent: parent.clone() })?;
        match self.transact(vec![counted, self.thread_count(room, parent, 1)?]).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 0) => Ok(()),
            Err(reasons) if failed_at(&reasons, 1) => {
                let orphan = [PostRef::of(reply).key(room), keys::message_pointer(&reply.id)];
                self.delete_many(&orphan).await
            }
            Err(_) => Err(Error::internal_msg("counting a reply failed a condition it cannot fail")),
        }
    }

    /// Takes a removed reply out of its message's `thread_count`, once (the message may be gone too).
    pub async fn uncount_reply(&self, reply: &Message) -> Result<()> {
        let Some(parent) = &reply.parent else { return Ok(()) };
        let key = keys::counted_reply(&reply.room_id, &reply.id);
        let items = vec![conditional_delete(self, &key)?, self.thread_count(&reply.room_id, parent, -1)?];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 0) => Ok(()),
            Err(reasons) if failed_at(&reasons, 1) => self.delete_many(&[key]).await,
            Err(_) => Err(Error::internal_msg("uncounting a reply failed a condition it cannot fail")),
        }
    }

    fn thread_count(
        &self,
        room: &RoomId,
        parent: &MessageId,
        by: i64,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem> {
        tx_update(
            self.update_builder(&keys::message(room, parent))
                .update_expression("ADD thread_count :by")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":by", number(by)),
        )
    }
}
