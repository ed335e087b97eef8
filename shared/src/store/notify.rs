//! What the notifier reads and keeps: who might be told of a post (their membership, settings, the
//! room's settings, whether a client of theirs is in front of them, whether they have devices), who
//! follows a thread, and a claim per message and device, so a redelivered record pushes nothing twice.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Deserialize;

use super::messages::value;
use super::settings::StoredSettings;
use super::{InboxRow, Item, Store, from_item, keys};
use crate::error::Result;
use crate::ids::{MessageId, OrgId, RoomId, SubscriptionId, UserId};
use crate::model::Member;
use crate::notifications::{RoomNotifications, Settings};
use crate::time::epoch_secs;

/// How long a push is remembered as made: longer than a stream record lives (a day), so no
/// redelivery finds it forgotten.
const PUSH_CLAIM_SECS: u64 = 2 * 24 * 60 * 60;

/// A member who might be told of a post in a room by a push.
#[derive(Clone, Debug)]
pub struct Recipient {
    pub member: Member,
    pub settings: Settings,
    /// Their own settings for the room.
    pub room: RoomNotifications,
}

#[derive(Deserialize)]
struct PushCount {
    #[serde(default)]
    subscriptions: u32,
}

#[derive(Deserialize)]
struct Follower {
    sender_id: UserId,
    #[serde(default)]
    mentions: Vec<UserId>,
}

impl Store {
    /// Those of `users` who would learn of a post in `room` only by a push: members of `org` and of
    /// the room (their row is there) who keep a device subscribed and have no client in front of
    /// them. Two batch reads: everyone's presence and device count (two small items each), then the
    /// member, settings and row of those left, who are few (most are online or have no device). Both
    /// eventually consistent, at half the read units: a member who connected or changed a setting a
    /// moment before may be read as they were.
    pub async fn recipients(&self, org: &OrgId, room: &RoomId, users: &[UserId]) -> Result<Vec<Recipient>> {
        let reach: Vec<keys::Key> =
            users.iter().flat_map(|user| [keys::presence(org, user), keys::push_count(org, user)]).collect();
        let found = if reach.is_empty() { Vec::new() } else { self.get_many_eventually(&reach).await? };
        let now = epoch_secs();
        let mut away = Vec::new();
        for (user, pair) in users.iter().zip(found.chunks(2)) {
            let devices = pair[1].clone().map(from_item::<PushCount>).transpose()?.map_or(0, |c| c.subscriptions);
            let attended = pair[0].as_ref().is_some_and(|item: &Item| super::presence::attended(item, now));
            if devices > 0 && !attended {
                away.push(user);
            }
        }
        let wanted: Vec<keys::Key> = away
            .iter()
            .flat_map(|user| [keys::member(org, user), keys::settings(org, user), keys::user_room(org, user, room)])
            .collect();
        let found = if wanted.is_empty() { Vec::new() } else { self.get_many_eventually(&wanted).await? };
        let mut recipients = Vec::new();
        for items in found.chunks(3) {
            let [member, settings, row] = items else { continue };
            let (Some(member), Some(row)) = (super::rooms::current_member(member.clone())?, row.clone()) else {
                continue;
            };
            let settings = settings.clone().map(from_item::<StoredSettings>).transpose()?.unwrap_or_default();
            let room = from_item::<InboxRow>(row)?.notifications;
            recipients.push(Recipient { member, settings: settings.settings, room });
        }
        Ok(recipients)
    }

    /// Who follows the thread under `parent`: who started it, replied in it, or was named in either.
    /// One read of the message and one Query of its replies (who sent each, whom each names).
    pub async fn thread_followers(&self, room: &RoomId, parent: &MessageId) -> Result<Vec<UserId>> {
        let started: Option<Follower> = self.get(&keys::message(room, parent)).await?;
        let query = self
            .prefix_query(keys::room(room).pk, &keys::thread_prefix(parent))
            .projection_expression("sender_id, #mentions")
            .expression_attribute_names("#mentions", "mentions");
        let replies = self.every_page(query).await?;
        let mut followers: Vec<UserId> = Vec::new();
        let replies = replies.into_iter().map(from_item::<Follower>).collect::<Result<Vec<_>>>()?;
        for follower in started.into_iter().chain(replies) {
            for user in std::iter::once(follower.sender_id).chain(follower.mentions) {
                if !followers.contains(&user) {
                    followers.push(user);
                }
            }
        }
        Ok(followers)
    }

    /// Claims the push of `message` to one of `user`'s devices: `true` the first time only.
    pub async fn claim_push(&self, message: &MessageId, user: &UserId, device: &SubscriptionId) -> Result<bool> {
        let now = epoch_secs();
        let mut put = self.new_item(&keys::push_claim(message, user, device), &serde_json::json!({}))?;
        put.item.insert(super::TTL_ATTRIBUTE.to_owned(), value(&(now + PUSH_CLAIM_SECS))?);
        // A claim past its time is gone, whether or not TTL removed it yet.
        put.condition_expression = Some("attribute_not_exists(PK) OR #ttl < :now".into());
        put.expression_attribute_names = Some([("#ttl".to_owned(), super::TTL_ATTRIBUTE.to_owned())].into());
        put.expression_attribute_values = Some([(":now".to_owned(), AttributeValue::N(now.to_string()))].into());
        self.put_if(put).await
    }
}
