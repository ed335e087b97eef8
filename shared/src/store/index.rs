//! What the projector derives from a post's text, off the send path: the search-term entries search
//! merges across rooms, and the room's link entries.
//!
//! Index entries are whole items put or deleted by key, so a record delivered again writes the same
//! items.

use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};
use serde::{Deserialize, Serialize};

use super::{PostRef, Store, key_item, keys, to_item};
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
}
