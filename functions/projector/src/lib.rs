//! What the table derives from its own changes, kept from its stream: a stored post is indexed
//! (search terms, links), counted (its room's count and its members' inboxes: last message, activity,
//! unread counts, the sender's read marker; a reply in its message's `thread_count`) and keeps the
//! files it names (their uploads lose the tag the bucket's lifecycle rule expires); an edit moves the
//! index and the previews that show it; once a post is deleted it is unindexed and uncounted, and
//! what hung off it (its edit history, reactions, replies and files) goes too. Every projection
//! happens once, so a record delivered again, or in another batch, changes nothing.
//!
//! A room's changes are projected in order, new posts a run at a time; rooms are independent of each
//! other (the stream keeps a room's items in one shard, in order), so a batch's rooms go at once.

use std::sync::Arc;

use dm_shared::ids::RoomId;
use dm_shared::media::Media;
use dm_shared::model::Message;
use dm_shared::store::{Delivered, KnownMembers};
use dm_shared::stream::{Change, Consumer, in_groups, position};
use dm_shared::{AppState, Result};

/// Rooms of one batch projected at once. A room's run is a few requests one after another, each
/// mostly waiting on DynamoDB, so a batch's rooms overlap: a batch that holds a backlog of many
/// rooms takes about as long as its slowest room.
const ROOMS_AT_ONCE: usize = 16;

#[derive(Clone)]
pub struct Projector {
    state: AppState,
    media: Media,
    members: Arc<KnownMembers>,
}

/// What one change asks of the projector; a post stored or removed with the change's place in the
/// stream, by which its room's count and rows take it once.
enum Step {
    Stored(Message, String),
    Edited { old: Box<Message>, new: Box<Message> },
    Removed(Message, String),
}

impl Step {
    fn of(change: &Change) -> Option<Self> {
        let at = || position(&change.sequence_number);
        match (post(change.old.clone()), post(change.new.clone())) {
            (None, Some(stored)) => Some(Self::Stored(stored, at())),
            (Some(old), Some(new)) if old.message != new.message => {
                Some(Self::Edited { old: Box::new(old), new: Box::new(new) })
            }
            (Some(removed), None) => Some(Self::Removed(removed, at())),
            _ => None,
        }
    }

    fn room(&self) -> &RoomId {
        match self {
            Self::Stored(post, _) | Self::Removed(post, _) => &post.room_id,
            Self::Edited { new, .. } => &new.room_id,
        }
    }
}

impl Consumer for Projector {
    fn consume(&self, changes: &[Change]) -> impl Future<Output = Vec<String>> + Send {
        self.project(changes)
    }
}

impl Projector {
    pub fn new(state: AppState) -> Self {
        let media = Media::new(&state);
        Self { state, media, members: Arc::default() }
    }

    /// Projects `changes`, each room's in order, stopping a room at its first change that fails;
    /// returns the sequence numbers to deliver again (from the earliest that failed, every later one:
    /// what other rooms applied after it is applied again, which changes nothing).
    pub async fn project(&self, changes: &[Change]) -> Vec<String> {
        let group = |change| Step::of(change).map(|step| (step.room().clone(), step));
        in_groups(changes, group, ROOMS_AT_ONCE, |steps| async move { self.project_room(&steps).await }).await
    }

    /// One room's steps in order, consecutive new posts together; the first that fails, if any.
    async fn project_room(&self, steps: &[(usize, Step)]) -> Option<(usize, dm_shared::Error)> {
        let mut at = 0;
        while let Some((first, step)) = steps.get(at) {
            let stored: Vec<Delivered> = steps[at..]
                .iter()
                .map_while(|(_, step)| match step {
                    Step::Stored(post, change) => Some(Delivered { post, change }),
                    _ => None,
                })
                .collect();
            let applied = if stored.is_empty() { self.apply(step).await } else { self.stored(&stored).await };
            if let Err(err) = applied {
                return Some((*first, err));
            }
            at += stored.len().max(1);
        }
        None
    }

    /// New posts of one room, in stream order.
    async fn stored(&self, stored: &[Delivered<'_>]) -> Result<()> {
        let store = &self.state.store;
        let posts: Vec<&Message> = stored.iter().map(|stored| stored.post).collect();
        // Counted while indexed: the inbox (what every member is waiting on) does not wait for the index.
        let count = async {
            for reply in posts.iter().filter(|post| post.parent.is_some()) {
                store.count_reply(reply).await?;
            }
            store.project_stored(stored, &self.members).await
        };
        tokio::try_join!(count, store.index_posts(&posts))?;
        for key in posts.iter().flat_map(|post| files(post)) {
            self.media.mark_referenced(&key).await?;
        }
        Ok(())
    }

    async fn apply(&self, step: &Step) -> Result<()> {
        let store = &self.state.store;
        match step {
            Step::Stored(post, change) => self.stored(&[Delivered { post, change }]).await,
            Step::Edited { old, new } => {
                store.reindex_post(old, new).await?;
                store.project_edited(new).await
            }
            Step::Removed(removed, change) => {
                store.unindex_post(removed).await?;
                store.uncount_reply(removed).await?;
                store.project_removed(&Delivered { post: removed, change }).await?;
                store.purge_dependents(removed).await?;
                for key in files(removed) {
                    self.media.delete(&key).await?;
                }
                Ok(())
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct Keys {
    #[serde(rename = "PK")]
    pk: String,
    #[serde(rename = "SK")]
    sk: String,
}

/// The objects of this room's files that `post` names.
fn files(post: &Message) -> impl Iterator<Item = String> + '_ {
    post.media.iter().filter_map(|url| Media::key_of_url(url, &post.org_id, &post.room_id))
}

/// The message or reply an image is, if it is one.
fn post(image: Option<serde_dynamo::Item>) -> Option<Message> {
    let image = image?;
    let keys: Keys = serde_dynamo::from_item(image.clone()).ok()?;
    // Search-term entries also sort under `MSG#`, in their own `ROOM#{room}#TERM#{term}` partitions.
    let post_key = keys.pk.starts_with("ROOM#") && !keys.pk.contains("#TERM#");
    if !post_key || !(keys.sk.starts_with("MSG#") || keys.sk.starts_with("THREAD#")) {
        return None;
    }
    serde_dynamo::from_item(image).ok()
}
