//! Tells members of what arrives while they are away: for each new message or reply in the table's
//! stream (and each edit that names someone anew), every member of the room its sender's settings,
//! the room's and the clock say should hear of it (`decide`), and who has no client in front of
//! them, gets a Web Push on each of their devices.
//!
//! Each device hears of a message once: a push is claimed (an item per message and device) before
//! it is sent, so a record delivered again, late or replayed pushes nothing twice. A device the
//! service says is gone is forgotten; one whose service asks for patience is tried again as it asks.

pub mod decide;
pub mod webpush;

use std::time::{Duration, Instant};

use dm_shared::ids::{MessageId, UserId};
use dm_shared::model::{Member, Message};
use dm_shared::store::{PREVIEW_CHARS, Recipient, Subscription};
use dm_shared::stream::{Change, Consumer};
use dm_shared::{AppState, Error, Result};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;

use crate::decide::{Arrival, Urgency, decide};
use crate::webpush::{Delivery, Pusher};

/// Posts of one batch taken at once: each mostly waits on DynamoDB and push services.
const POSTS_AT_ONCE: usize = 32;
/// Pushes of one post sent at once: a push mostly waits on its service, and a slow one must not
/// hold back the rest past the function's timeout.
const PUSHES_AT_ONCE: usize = 64;
/// A post older than this is told of no more (a batch retried for long, or replayed): late, a
/// notification is noise.
const TELL_WITHIN_MS: i64 = 60 * 60 * 1000;
/// Tries of one push when the service asks for patience, and the longest wait between two (what
/// `Retry-After` asks, or a growing pause).
const PUSH_TRIES: u32 = 3;
const LONGEST_WAIT: Duration = Duration::from_secs(10);
/// What one try may take: a push is claimed, or tried again, only with this much of the run left;
/// a device there is no time for is left to the record's next delivery, unclaimed.
const ONE_TRY: Duration = Duration::from_secs(webpush::SEND_WITHIN.as_secs() + 2);
/// How long a run may take where no Lambda deadline says (the local stack): the function's timeout.
const RUN_FOR: Duration = Duration::from_secs(60);
const NO_PREVIEW: &str = "New message";

#[derive(Clone)]
pub struct Notifier {
    state: AppState,
    pusher: std::sync::Arc<Pusher>,
}

/// What a change asks of the notifier.
enum Told {
    Posted(Message),
    /// An edit that names members it did not name before: them only.
    Named {
        post: Message,
        anew: Vec<UserId>,
    },
}

impl Told {
    /// A post stored (the record has no old image) or edited to name someone new; nothing else.
    fn of(change: &Change) -> Option<Self> {
        let post = |item: &serde_dynamo::Item| serde_dynamo::from_item::<_, Message>(item.clone()).ok();
        let new = post(change.new.as_ref()?)?;
        let Some(old) = &change.old else { return Some(Self::Posted(new)) };
        let old = post(old)?;
        let anew: Vec<UserId> = new.mentions.iter().filter(|u| !old.mentions.contains(u)).cloned().collect();
        (!anew.is_empty()).then_some(Self::Named { post: new, anew })
    }

    fn post(&self) -> &Message {
        match self {
            Self::Posted(post) | Self::Named { post, .. } => post,
        }
    }
}

/// What a device shows.
#[derive(Serialize)]
struct Payload<'a> {
    org_id: &'a str,
    room_id: &'a str,
    message_id: &'a MessageId,
    sender_name: &'a str,
    title: String,
    body: String,
    url: String,
}

impl Consumer for Notifier {
    fn consume(&self, changes: &[Change]) -> impl Future<Output = Vec<String>> + Send {
        self.notify(changes, Instant::now() + RUN_FOR)
    }
}

impl Notifier {
    pub fn new(state: AppState, pusher: Pusher) -> Self {
        Self { state, pusher: std::sync::Arc::new(pusher) }
    }

    /// A stream batch as Lambda delivers it, to be done by `deadline_ms` (the invocation's, epoch ms):
    /// the records to deliver again (`ReportBatchItemFailures`).
    pub async fn stream(
        &self,
        batch: aws_lambda_events::dynamodb::Event,
        deadline_ms: i64,
    ) -> Result<serde_json::Value> {
        let left = u64::try_from(deadline_ms - dm_shared::time::now_ms()).unwrap_or_default();
        let failed =
            self.notify(&dm_shared::stream::changes(batch), Instant::now() + Duration::from_millis(left)).await;
        serde_json::to_value(dm_shared::stream::response(failed)).map_err(Error::internal)
    }

    /// Tells of each post in `changes`, posts at once, by `deadline`; answers the sequence numbers of
    /// those to deliver again: the table failed them (throttled, say), or time ran out before all
    /// their devices were tried. Devices already told are not told twice.
    pub async fn notify(&self, changes: &[Change], deadline: Instant) -> Vec<String> {
        let now = dm_shared::time::now_ms();
        let mut runs = Vec::new();
        for change in changes {
            let recent = change.created_ms == 0 || now - change.created_ms < TELL_WITHIN_MS;
            if let Some(told) = Told::of(change).filter(|_| recent) {
                runs.push(self.tell_or_retry(change, told, deadline));
            }
        }
        stream::iter(runs).buffer_unordered(POSTS_AT_ONCE).filter_map(std::future::ready).collect().await
    }

    /// The change's sequence number if its pushes should be tried again.
    async fn tell_or_retry(&self, change: &Change, told: Told, deadline: Instant) -> Option<String> {
        let err = self.tell(&told, deadline).await.err()?;
        tracing::warn!(sequence_number = %change.sequence_number, error = %err, "a post's pushes are retried");
        Some(change.sequence_number.clone())
    }

    async fn tell(&self, told: &Told, deadline: Instant) -> Result<()> {
        let store = &self.state.store;
        let post = told.post();
        let Some(room) = store.room(&post.room_id).await? else { return Ok(()) };
        let candidates: Vec<UserId> = match told {
            Told::Posted(_) => room.room_user_ids.clone(),
            Told::Named { anew, .. } => anew.clone(),
        };
        let followers = async {
            match (&post.parent, told) {
                (Some(parent), Told::Posted(_)) => store.thread_followers(&post.room_id, parent).await.map(Some),
                _ => Ok(None),
            }
        };
        let others: Vec<UserId> = candidates.into_iter().filter(|user| *user != post.sender_id).collect();
        let (followers, recipients, sender) = tokio::try_join!(
            followers,
            store.recipients(&post.org_id, &post.room_id, &others),
            store.member(&post.org_id, &post.sender_id)
        )?;
        let arrival = Arrival {
            sender: &post.sender_id,
            text: &post.message,
            mentions: &post.mentions,
            direct: room.room_user_ids.len() == 2,
            followers: followers.as_deref(),
            named_anew: match told {
                Told::Named { anew, .. } => Some(anew),
                Told::Posted(_) => None,
            },
        };
        let now = jiff::Timestamp::now();
        let sender_name = sender.as_ref().map_or(post.sender_id.as_str(), Member::name);
        let told: Vec<(Recipient, Urgency)> = recipients
            .into_iter()
            .filter_map(|recipient| decide(&recipient, &arrival, now).map(|urgency| (recipient, urgency)))
            .collect();
        let mut lookups = Vec::new();
        let mut payloads = Vec::new();
        for (recipient, _) in &told {
            lookups.push(store.subscriptions(&post.org_id, &recipient.member.id));
            payloads.push(self.payload(post, &arrival, recipient, sender_name)?);
        }
        let devices: Vec<Vec<Subscription>> = stream::iter(lookups).buffered(PUSHES_AT_ONCE).try_collect().await?;
        // Every device at once, each to its end: a push under way is never dropped with its claim
        // taken, whatever happens to the others.
        let mut pushes = Vec::new();
        for (((recipient, urgency), devices), payload) in told.iter().zip(&devices).zip(&payloads) {
            for device in devices {
                pushes.push(self.push_once(post, &recipient.member.id, device, payload, (*urgency, deadline)));
            }
        }
        let pushed: Vec<Result<()>> = stream::iter(pushes).buffer_unordered(PUSHES_AT_ONCE).collect().await;
        pushed.into_iter().collect()
    }

    /// What `recipient`'s devices show of `post`: its text only where they allow previews.
    fn payload(&self, post: &Message, arrival: &Arrival, recipient: &Recipient, sender_name: &str) -> Result<Vec<u8>> {
        let named = arrival.mentions.contains(&recipient.member.id);
        let title = match (&post.parent, named, arrival.direct) {
            (_, true, _) => format!("{sender_name} mentioned you"),
            (Some(_), false, _) => format!("{sender_name} replied in a thread"),
            (None, false, true) => sender_name.to_owned(),
            (None, false, false) => format!("{sender_name} in a group conversation"),
        };
        let preview = recipient.settings.notifications.message_preview_in_each_notification;
        let body = match (preview, post.message.trim()) {
            (false, _) => NO_PREVIEW.to_owned(),
            (true, "") if !post.media.is_empty() => "Sent a file".to_owned(),
            (true, "") => NO_PREVIEW.to_owned(),
            (true, text) => text.chars().take(PREVIEW_CHARS).collect(),
        };
        let url = format!("{}#room={}/{}", self.state.config.app_url, post.org_id, post.room_id);
        let payload = Payload {
            org_id: post.org_id.as_str(),
            room_id: post.room_id.as_str(),
            message_id: &post.id,
            sender_name,
            title,
            body,
            url,
        };
        serde_json::to_vec(&payload).map_err(Error::internal)
    }

    /// Pushes to one device unless it heard of `post` already, if there is time for a try before
    /// `deadline` (else the record is delivered again, this device unclaimed). A service that asks
    /// for patience is waited on as it asks (within bounds and the time left) and tried again; if it
    /// still asks, the device misses this one: failing the record would hold back every later
    /// message of its shard behind one device, which any member could make answer 503.
    async fn push_once(
        &self,
        post: &Message,
        user: &UserId,
        device: &Subscription,
        payload: &[u8],
        (urgency, deadline): (Urgency, Instant),
    ) -> Result<()> {
        let store = &self.state.store;
        let left = || deadline.saturating_duration_since(Instant::now());
        if left() < ONE_TRY {
            return Err(Error::Unavailable("no time left for a push: the record is delivered again".into()));
        }
        if !store.claim_push(&post.id, user, &device.subscription_id).await? {
            return Ok(());
        }
        for attempt in 1..=PUSH_TRIES {
            match self.pusher.push(device, payload, urgency).await {
                Ok(Delivery::Accepted) => return Ok(()),
                Ok(Delivery::Gone) => {
                    return match store.unsubscribe(&post.org_id, user, &device.subscription_id).await {
                        Ok(()) | Err(Error::NotFound(_)) => Ok(()),
                        Err(err) => Err(err),
                    };
                }
                Ok(Delivery::Later(wait)) if attempt < PUSH_TRIES => {
                    let wait = wait.unwrap_or(Duration::from_millis(500) * attempt).min(LONGEST_WAIT);
                    if left() < wait + ONE_TRY {
                        break;
                    }
                    tokio::time::sleep(wait).await;
                }
                Ok(Delivery::Later(_)) => break,
                // Refused for good, or sent without an answer (sending again could show it twice).
                Ok(Delivery::Missed(why)) => {
                    tracing::warn!(reason = %why, "a push was not delivered");
                    return Ok(());
                }
                Err(err) => {
                    tracing::warn!(error = %err, "a push could not be made");
                    return Ok(());
                }
            }
        }
        tracing::warn!("a push service still asked for patience: the device misses this message");
        Ok(())
    }
}
