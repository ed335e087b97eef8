//! What the table derives from its own changes, kept from its stream: a stored message or reply keeps
//! the files it names (their uploads lose the tag the bucket's lifecycle rule expires); once it is
//! deleted, what hung off it (its edit history, reactions, replies and files) goes too. Every
//! projection is idempotent, so a record delivered again, or in another batch, changes nothing.

use dm_shared::media::Media;
use dm_shared::model::Message;
use dm_shared::stream::{Change, Consumer, in_order};
use dm_shared::{AppState, Result};

#[derive(Clone)]
pub struct Projector {
    state: AppState,
    media: Media,
}

impl Projector {
    pub fn new(state: AppState) -> Self {
        let media = Media::new(&state);
        Self { state, media }
    }

    /// Projects `changes` in order, stopping at the first that fails; returns the sequence numbers
    /// to deliver again (that one and every later one).
    pub async fn project(&self, changes: &[Change]) -> Vec<String> {
        in_order(self, changes).await
    }
}

impl Consumer for Projector {
    async fn apply(&self, change: &Change) -> Result<()> {
        if let Some(post) = stored_post(change) {
            for key in files(&post) {
                self.media.mark_referenced(&key).await?;
            }
        }
        let Some(post) = removed_post(change) else { return Ok(()) };
        self.state.store.purge_dependents(&post).await?;
        for key in files(&post) {
            self.media.delete(&key).await?;
        }
        Ok(())
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

/// The message or reply a change stored anew, if it stored one.
fn stored_post(change: &Change) -> Option<Message> {
    if change.old.is_some() {
        return None;
    }
    post(change.new.clone()?)
}

/// The message or reply a change removed, if it removed one.
fn removed_post(change: &Change) -> Option<Message> {
    if change.new.is_some() {
        return None;
    }
    post(change.old.clone()?)
}

fn post(image: serde_dynamo::Item) -> Option<Message> {
    let keys: Keys = serde_dynamo::from_item(image.clone()).ok()?;
    // Search-term entries also sort under `MSG#`, in their own `ROOM#{room}#TERM#{term}` partitions.
    let post_key = keys.pk.starts_with("ROOM#") && !keys.pk.contains("#TERM#");
    if !post_key || !(keys.sk.starts_with("MSG#") || keys.sk.starts_with("THREAD#")) {
        return None;
    }
    serde_dynamo::from_item(image).ok()
}
