//! What the table derives from its own changes, kept from its stream: a stored message is counted in
//! its members' inboxes (last message, activity, unread counts, the sender's read marker) and keeps
//! the files it names (their uploads lose the tag the bucket's lifecycle rule expires); an edit
//! changes the previews that show it; once a message is deleted it is uncounted, and what hung off
//! it (its edit history, reactions, replies and files) goes too. Every projection happens once, so a
//! record delivered again, or in another batch, changes nothing.

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
        let store = &self.state.store;
        match (post(change.old.clone()), post(change.new.clone())) {
            (None, Some(stored)) => {
                store.project_stored(&stored).await?;
                for key in files(&stored) {
                    self.media.mark_referenced(&key).await?;
                }
            }
            (Some(old), Some(new)) if old.message != new.message => store.project_edited(&new).await?,
            (Some(removed), None) => {
                store.project_removed(&removed).await?;
                store.purge_dependents(&removed).await?;
                for key in files(&removed) {
                    self.media.delete(&key).await?;
                }
            }
            _ => {}
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
