//! A room's derived state rebuilt from its posts: what an operator runs when a stream batch was
//! discarded (its records sat in the failure queue past the stream's 24 hours), or to check a room.
//! Each step is an effect the projector itself makes, conditioned on a post's id, so a rebuild is
//! idempotent and safe while traffic flows: whatever the projector does at the same time is done
//! once either way.
//!
//! What it makes right: the room's message count (on its log's head, set from its messages while
//! the head stays where it was read, once the push has counted the recent ones), every
//! `thread_count` (replies counted or uncounted by their markers), the members' rows (the newest
//! message, each sender's marker at least at their newest message, no row or large room's summary
//! showing a deleted one), the search-term and link entries of every post, and the link entries of
//! posts that are gone. Search-term entries of a post that is gone stay (their partitions are named
//! by words the post no longer holds): search passes over them.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;

use super::counts::CountedReply;

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
    /// Replies counted that were not (their stored records never counted).
    pub counted: usize,
    /// Replies uncounted that were gone (their removals never counted).
    pub uncounted: usize,
}

/// Counts of the room's messages tried before giving up: each retry waits for the push.
const RECOUNTS: usize = 20;
/// How far behind the push may be with a room's messages: older ones were counted by it long ago (or
/// never will be: their batch was discarded, which is what a rebuild repairs).
const PUSH_LAG_MS: i64 = 5 * 60 * 1000;

/// The id at the end of a marker's or entry's sort key (`COUNTED_REPLY#{id}`, `LINK#{id}#{n}`).
fn id_after(item: &Item, prefix: &str) -> Option<MessageId> {
    let sk = string_attr(item, keys::SK)?;
    let rest = sk.strip_prefix(prefix)?;
    MessageId::parse(rest.split('#').next()?).ok()
}

impl Store {
    /// The room's messages, and its log head's message count set to how many they are: counted
    /// while the head stayed where it was read, and once the push has counted every recent message
    /// (and taken back every recent deletion), so none is counted again when the push gets to it.
    async fn recount_messages(&self, room: &RoomId) -> Result<Vec<Message>> {
        for _ in 0..RECOUNTS {
            let since = crate::time::now_ms() - PUSH_LAG_MS;
            let counted = self.counted_since(room, since).await?;
            let messages: Vec<Message> = self
                .query_all(keys::room_pk(room), keys::MESSAGE_PREFIX, true)
                .await?
                .into_iter()
                .map(from_item)
                .collect::<Result<_>>()?;
            let recent = |post: &&Message| crate::time::stamp_ms(&post.created_at).is_some_and(|ms| ms as i64 >= since);
            let by_message = &counted.by_message;
            let uncounted = messages.iter().filter(recent).any(|post| by_message.get(&post.id) != Some(&1));
            let live: HashSet<&MessageId> = messages.iter().map(|post| &post.id).collect();
            let not_taken_back = by_message.iter().any(|(id, counts)| *counts == 1 && !live.contains(id));
            if uncounted || not_taken_back {
                // The push is on its way: what it counts next would be counted twice.
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            // What waits past the head is counted when the next writer publishes it.
            let count = u64::try_from(messages.len() as i64 - counted.pending).unwrap_or_default();
            if self.set_message_count(room, counted.seen, count).await? {
                return Ok(messages);
            }
        }
        Err(crate::error::Error::Unavailable(
            "the room's push has not caught up with its recent messages: rebuild it again later".into(),
        ))
    }

    /// Rebuilds `room`'s derived state from its posts (see the module's page).
    pub async fn rebuild_room(&self, room: &RoomId) -> Result<Rebuilt> {
        let pk = keys::room_pk(room);
        // Markers before posts: a reply stored between the two reads is counted here (the projector
        // then finds it counted), one removed between them is uncounted here (and by it, once).
        let counted_replies = self.query_all(pk.clone(), keys::COUNTED_REPLY_PREFIX, true).await?;
        let links = self.query_all(pk.clone(), keys::LINK_PREFIX, true).await?;
        let replies: Vec<Message> = self
            .query_all(pk.clone(), keys::THREAD_PREFIX, true)
            .await?
            .into_iter()
            .map(from_item)
            .collect::<Result<_>>()?;
        let messages = self.recount_messages(room).await?;
        let live: HashSet<&MessageId> = messages.iter().chain(&replies).map(|post| &post.id).collect();
        let mut rebuilt = Rebuilt {
            room_id: room.clone(),
            messages: messages.len(),
            replies: replies.len(),
            counted: 0,
            uncounted: 0,
        };

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
        // An edit of the newest message that never reached its previews.
        if let Some(newest) = messages.iter().max_by(|a, b| a.id.cmp(&b.id)) {
            self.project_edited(newest).await?;
        }
        if let Some(room_item) = self.get::<crate::model::Room>(&keys::room(room)).await? {
            let rows = self.member_rows(&room_item.org_id, room, &room_item.room_user_ids).await?;
            let summary: Option<super::inbox::Summary> = self.get(&keys::room_summary(room)).await?;
            let shown = rows.into_iter().flatten().filter_map(|row| row.last_message);
            let stale: HashSet<MessageId> = shown
                .chain(summary.and_then(|summary| summary.last_message))
                .map(|last| last.message_id)
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
