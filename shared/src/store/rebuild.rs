//! A room's derived state rebuilt from its posts: what an operator runs when a stream batch was
//! discarded (its records sat in the failure queue past the stream's 24 hours), or to check a room.
//! Each step is an effect the projector itself makes, conditioned on a post's id, so a rebuild is
//! idempotent and safe while traffic flows: whatever the projector does at the same time is done
//! once either way.
//!
//! What it makes right: the room's `message_count` and every `thread_count` (posts counted or
//! uncounted by their markers), the members' rows (the newest message, each sender's marker at least
//! at their newest message, no row showing a deleted one), the search-term and link entries of every
//! post, and the link entries of posts that are gone. Search-term entries of a post that is gone stay
//! (their partitions are named by words the post no longer holds): search passes over them.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{Item, Store, from_item, keys, string_attr};
use crate::error::Result;
use crate::ids::{MessageId, RoomId};
use crate::model::Message;

/// What a rebuild found and mended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rebuilt {
    pub room_id: RoomId,
    pub messages: usize,
    pub replies: usize,
    /// Posts counted that were not (their stored records never counted).
    pub counted: usize,
    /// Posts uncounted that were gone (their removals never counted).
    pub uncounted: usize,
}

/// A counted reply's marker: which message's `thread_count` holds it.
#[derive(Deserialize)]
struct CountedReply {
    parent: MessageId,
}

/// The id at the end of a marker's or entry's sort key (`COUNTED#{id}`, `LINK#{id}#{n}`).
fn id_after(item: &Item, prefix: &str) -> Option<MessageId> {
    let sk = string_attr(item, keys::SK)?;
    let rest = sk.strip_prefix(prefix)?;
    MessageId::parse(rest.split('#').next()?).ok()
}

impl Store {
    /// Rebuilds `room`'s derived state from its posts (see the module's page).
    pub async fn rebuild_room(&self, room: &RoomId) -> Result<Rebuilt> {
        let pk = keys::room_pk(room);
        // Markers before posts: a post stored between the two reads is counted here (the projector
        // then finds it counted), one removed between them is uncounted here (and by it, once).
        let counted = self.query_all(pk.clone(), keys::COUNTED_PREFIX, true).await?;
        let counted_replies = self.query_all(pk.clone(), keys::COUNTED_REPLY_PREFIX, true).await?;
        let links = self.query_all(pk.clone(), keys::LINK_PREFIX, true).await?;
        let messages: Vec<Message> = self
            .query_all(pk.clone(), keys::MESSAGE_PREFIX, true)
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<_>>()?;
        let replies: Vec<Message> =
            self.query_all(pk, keys::THREAD_PREFIX, true).await?.into_iter().map(from_item).collect::<Result<_>>()?;
        let live: HashSet<&MessageId> = messages.iter().chain(&replies).map(|post| &post.id).collect();
        let mut rebuilt = Rebuilt {
            room_id: room.clone(),
            messages: messages.len(),
            replies: replies.len(),
            counted: 0,
            uncounted: 0,
        };

        let counted: HashSet<MessageId> =
            counted.iter().filter_map(|item| id_after(item, keys::COUNTED_PREFIX)).collect();
        let uncounted: Vec<&MessageId> =
            messages.iter().map(|post| &post.id).filter(|id| !counted.contains(*id)).collect();
        self.count_messages(room, &uncounted).await?;
        rebuilt.counted += uncounted.len();
        for gone in counted.iter().filter(|id| !live.contains(id)) {
            self.uncount_message(room, gone).await?;
            rebuilt.uncounted += 1;
        }
        let reply_markers: Vec<(MessageId, MessageId)> = counted_replies
            .into_iter()
            .filter_map(|item| {
                Some((id_after(&item, keys::COUNTED_REPLY_PREFIX)?, from_item::<CountedReply>(item).ok()?.parent))
            })
            .collect();
        for reply in replies.iter().filter(|reply| !reply_markers.iter().any(|(id, _)| *id == reply.id)) {
            self.count_reply(reply).await?;
            rebuilt.counted += 1;
        }
        for (gone, parent) in reply_markers.iter().filter(|(id, _)| !live.contains(id)) {
            self.uncount_reply(room, gone, parent).await?;
            rebuilt.uncounted += 1;
        }

        let shown: Vec<&Message> = messages.iter().collect();
        self.project_stored(room, &shown).await?;
        if let Some(room_item) = self.get::<crate::model::Room>(&keys::room(room)).await? {
            let rows = self.member_rows(&room_item.org_id, room, &room_item.room_user_ids).await?;
            let stale: HashSet<MessageId> = rows
                .into_iter()
                .flatten()
                .filter_map(|row| row.last_message.map(|last| last.message_id))
                .filter(|id| !live.contains(id))
                .collect();
            for gone in stale {
                self.project_removed(room, &gone).await?;
            }
        }

        let posts: Vec<&Message> = messages.iter().chain(&replies).collect();
        self.index_posts(&posts).await?;
        let dead_links: Vec<keys::Key> = links
            .iter()
            .filter(|item| id_after(item, keys::LINK_PREFIX).is_some_and(|id| !live.contains(&id)))
            .filter_map(|item| Some(keys::Key { pk: keys::room_pk(room), sk: string_attr(item, keys::SK)? }))
            .collect();
        self.delete_many(&dead_links).await?;
        Ok(rebuilt)
    }
}
