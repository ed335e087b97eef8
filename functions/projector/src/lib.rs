//! What the table derives from its own changes, kept from its stream: a stored post is indexed
//! (search terms, links), a reply counted in its message's `thread_count`, a message shown in its
//! members' inbox rows (last message, activity, the sender's read marker) and keeps the
//! files it names (their uploads lose the tag the bucket's lifecycle rule expires); an edit moves the
//! index and the previews that show it; once a post is deleted it is unindexed and uncounted, and
//! what hung off it (its edit history, reactions, replies and files) goes too.
//!
//! Every effect is conditioned on the post it carries (its id), never on the record's place in the
//! stream: a record delivered again, in another batch, late, or by a second shard of the same room at
//! the same time changes nothing that was done. A room's changes are still taken in order (a post
//! stored then removed in one batch is counted, then uncounted) and rooms at once.

use dm_shared::ids::RoomId;
use dm_shared::media::Media;
use dm_shared::model::Message;
use dm_shared::store::Rebuilt;
use dm_shared::stream::api::FailedBatch;
use dm_shared::stream::{Change, Consumer, in_groups};
use dm_shared::{AppState, Result};
use serde::Deserialize;

/// Rooms of one batch projected at once. A room's run is a few requests one after another, each
/// mostly waiting on DynamoDB, so a batch's rooms overlap: a batch that holds a backlog of many
/// rooms takes about as long as its slowest room.
const ROOMS_AT_ONCE: usize = 16;

#[derive(Clone)]
pub struct Projector {
    state: AppState,
    media: Media,
}

/// What one change asks of the projector.
enum Step {
    Stored(Message),
    Edited { old: Box<Message>, new: Box<Message> },
    Removed(Message),
}

impl Step {
    fn of(change: &Change) -> Option<Self> {
        match (post(change.old.clone()), post(change.new.clone())) {
            (None, Some(stored)) => Some(Self::Stored(stored)),
            (Some(old), Some(new)) if old.message != new.message => {
                Some(Self::Edited { old: Box::new(old), new: Box::new(new) })
            }
            (Some(removed), None) => Some(Self::Removed(removed)),
            _ => None,
        }
    }

    fn room(&self) -> &RoomId {
        match self {
            Self::Stored(post) | Self::Removed(post) => &post.room_id,
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
        Self { state, media }
    }

    /// Rebuilds each of `rooms` from its posts (see `Store::rebuild_room`), one after another.
    pub async fn rebuild(&self, rooms: &[RoomId]) -> Result<Vec<Rebuilt>> {
        let mut rebuilt = Vec::with_capacity(rooms.len());
        for room in rooms {
            rebuilt.push(self.state.store.rebuild_room(room).await?);
        }
        Ok(rebuilt)
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
            let stored: Vec<&Message> = steps[at..]
                .iter()
                .map_while(|(_, step)| match step {
                    Step::Stored(post) => Some(post),
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

    /// New posts of one room.
    async fn stored(&self, posts: &[&Message]) -> Result<()> {
        let store = &self.state.store;
        let (replies, messages): (Vec<&Message>, Vec<&Message>) = posts.iter().partition(|post| post.parent.is_some());
        // Shown while indexed: the inbox (what every member is waiting on) does not wait for the index.
        let shown = async {
            for reply in &replies {
                store.count_reply(reply).await?;
            }
            if let Some(first) = messages.first() {
                store.project_stored(&first.room_id, &messages).await?;
            }
            Ok(())
        };
        tokio::try_join!(shown, store.index_posts(posts))?;
        for key in posts.iter().flat_map(|post| files(post)) {
            self.media.mark_referenced(&key).await?;
        }
        Ok(())
    }

    async fn apply(&self, step: &Step) -> Result<()> {
        let store = &self.state.store;
        match step {
            Step::Stored(post) => self.stored(&[post]).await,
            Step::Edited { old, new } => {
                store.reindex_post(old, new).await?;
                match new.parent {
                    None => store.project_edited(new).await,
                    Some(_) => Ok(()),
                }
            }
            Step::Removed(removed) => {
                store.unindex_post(removed).await?;
                let (room, id) = (&removed.room_id, &removed.id);
                match &removed.parent {
                    Some(parent) => store.uncount_reply(room, id, parent).await?,
                    None => store.project_removed(room, id).await?,
                }
                store.purge_dependents(removed).await?;
                for key in files(removed) {
                    self.media.delete(&key).await?;
                }
                Ok(())
            }
        }
    }
}

/// What the projector is invoked with: the table's stream, or an operator's command.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Invocation {
    /// `{"rebuild": ["room id", ...]}`: rebuild these rooms' derived state.
    Rebuild {
        rebuild: Vec<RoomId>,
    },
    /// `{"replay": [message, ...]}`: the failure queue's messages, their batches projected again.
    Replay {
        replay: Vec<FailedBatch>,
    },
    Stream(aws_lambda_events::dynamodb::Event),
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
