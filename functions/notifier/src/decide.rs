//! Whether a member is told of a post, and how urgently: their settings, the room's and the clock
//! decide, as Slack and Mattermost users expect. The sender is never told; a muted room, a room or
//! a member set to `nothing`, and a do-not-disturb window tell nobody; what names the member (a
//! mention, or one of their keywords) and a direct message tell them unless set to `nothing`; a
//! reply tells those who follow its thread and want replies; anything else tells them only where
//! they asked for `all`.

use dm_shared::ids::UserId;
use dm_shared::notifications::{NotificationSettings, NotifyAbout, QuietHours, RoomLevel, Watch, minute_of_day};
use dm_shared::store::Recipient;
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A post, as those who might be told of it see it.
pub struct Arrival<'a> {
    pub sender: &'a UserId,
    pub text: &'a str,
    pub mentions: &'a [UserId],
    /// A room of two: every message in it is meant for the other.
    pub direct: bool,
    /// A reply: who follows its thread (who started it, replied in it, or was named in it).
    pub followers: Option<&'a [UserId]>,
    /// An edit: the members it named anew, the only ones it tells.
    pub named_anew: Option<&'a [UserId]>,
}

/// How a push asks to be delivered (RFC 8030's `Urgency`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Urgency {
    Normal,
    High,
}

impl Urgency {
    pub fn header(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::High => "high",
        }
    }
}

/// Whether `recipient` is told of `arrival` at `now`, and how urgently (high when it names them or
/// is a direct message).
pub fn decide(recipient: &Recipient, arrival: &Arrival, now: Timestamp) -> Option<Urgency> {
    let user = &recipient.member.id;
    let notifications = &recipient.settings.notifications;
    if user == arrival.sender || recipient.room.muted(now.as_millisecond()) {
        return None;
    }
    let about = match recipient.room.level {
        RoomLevel::Default => notifications.notify_me_about,
        RoomLevel::All => NotifyAbout::All,
        RoomLevel::Mentions => NotifyAbout::Mentions,
        RoomLevel::Nothing => NotifyAbout::Nothing,
    };
    let named = Watch::new(user, &recipient.settings).meant_for(arrival.mentions, arrival.text);
    let told = match (about, arrival.named_anew, arrival.followers) {
        (NotifyAbout::Nothing, _, _) => false,
        (_, Some(named_anew), _) => named_anew.contains(user),
        // A direct message is meant for the other, as a mention is.
        _ if named || arrival.direct => true,
        (_, None, Some(followers)) => notifications.thread_replies_notification && followers.contains(user),
        (NotifyAbout::All, None, None) => true,
        (NotifyAbout::Mentions, None, None) => false,
    };
    if !told || quiet(notifications, &recipient.member.profile.time_zone, now) {
        return None;
    }
    Some(if named || arrival.direct || arrival.named_anew.is_some() { Urgency::High } else { Urgency::Normal })
}

/// Whether `now` falls in the member's do-not-disturb window, read in their time zone (UTC when
/// they set none, or one this build does not know).
fn quiet(notifications: &NotificationSettings, time_zone: &str, now: Timestamp) -> bool {
    let Some(QuietHours { start, end }) = &notifications.notification_schedule else { return false };
    let (Some(start), Some(end)) = (minute_of_day(start), minute_of_day(end)) else { return false };
    let zone = TimeZone::get(time_zone).unwrap_or(TimeZone::UTC);
    let local = now.to_zoned(zone);
    let minute = u32::from(local.hour().unsigned_abs()) * 60 + u32::from(local.minute().unsigned_abs());
    match start <= end {
        true => (start..end).contains(&minute),
        // The window wraps midnight.
        false => minute >= start || minute < end,
    }
}

#[cfg(test)]
mod tests {
    use dm_shared::model::Member;
    use dm_shared::notifications::{RoomNotifications, Settings};
    use serde_json::json;

    use super::*;

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    fn recipient(id: &str, settings: serde_json::Value, room: RoomNotifications) -> Recipient {
        let member: Member = serde_json::from_value(json!({
            "_id": id, "org_id": "org1", "role": "member", "joined_at": "2026-01-01T00:00:00Z",
            "time_zone": "Asia/Tokyo",
        }))
        .unwrap();
        Recipient { member, settings: Settings::parse(settings).unwrap(), room }
    }

    fn at(stamp: &str) -> Timestamp {
        stamp.parse().unwrap()
    }

    const NOON_TOKYO: &str = "2026-12-05T03:00:00Z";

    fn message<'a>(sender: &'a UserId, mentions: &'a [UserId], direct: bool) -> Arrival<'a> {
        Arrival { sender, text: "the deploy is done", mentions, direct, followers: None, named_anew: None }
    }

    #[test]
    fn levels_and_mentions_decide_and_the_sender_is_never_told() {
        let (alice, bob) = (user("alice"), user("bob"));
        let plain = message(&alice, &[], false);
        let everyone = recipient("bob", json!({}), RoomNotifications::default());
        assert_eq!(decide(&everyone, &plain, at(NOON_TOKYO)), Some(Urgency::Normal));
        assert_eq!(decide(&everyone, &message(&alice, &[], true), at(NOON_TOKYO)), Some(Urgency::High), "a DM");
        let sender = recipient("alice", json!({}), RoomNotifications::default());
        assert_eq!(decide(&sender, &plain, at(NOON_TOKYO)), None);

        let mentions_only =
            recipient("bob", json!({ "notifications": { "notify_me_about": "mentions" } }), Default::default());
        assert_eq!(decide(&mentions_only, &plain, at(NOON_TOKYO)), None);
        assert_eq!(decide(&mentions_only, &message(&alice, &[], true), at(NOON_TOKYO)), Some(Urgency::High), "a DM");
        let named = [bob.clone()];
        assert_eq!(decide(&mentions_only, &message(&alice, &named, false), at(NOON_TOKYO)), Some(Urgency::High));
        let watching = |word: &str| {
            let settings = json!({ "notifications": { "notify_me_about": "mentions", "my_keywords": [word] } });
            decide(&recipient("bob", settings, Default::default()), &plain, at(NOON_TOKYO))
        };
        assert_eq!(watching("DÉPLOY"), Some(Urgency::High), "case and accents aside");
        assert_eq!(watching("deplo"), None, "whole words only");

        let nothing =
            recipient("bob", json!({ "notifications": { "notify_me_about": "nothing" } }), Default::default());
        assert_eq!(decide(&nothing, &message(&alice, &named, true), at(NOON_TOKYO)), None);
        let room_all = RoomNotifications { level: RoomLevel::All, muted_until: None };
        let nothing_but_this_room =
            recipient("bob", json!({ "notifications": { "notify_me_about": "nothing" } }), room_all);
        assert_eq!(decide(&nothing_but_this_room, &plain, at(NOON_TOKYO)), Some(Urgency::Normal));
        let room_nothing = RoomNotifications { level: RoomLevel::Nothing, muted_until: None };
        assert_eq!(
            decide(&recipient("bob", json!({}), room_nothing), &message(&alice, &named, false), at(NOON_TOKYO)),
            None
        );
    }

    #[test]
    fn a_muted_room_tells_nothing_until_its_mute_ends() {
        let (alice, bob) = (user("alice"), user("bob"));
        let named = [bob];
        let muted = RoomNotifications { level: RoomLevel::Default, muted_until: Some("2026-12-05T04:00:00Z".into()) };
        let member = recipient("bob", json!({}), muted);
        assert_eq!(decide(&member, &message(&alice, &named, true), at(NOON_TOKYO)), None);
        assert!(decide(&member, &message(&alice, &named, true), at("2026-12-05T04:00:01Z")).is_some());
    }

    #[test]
    fn do_not_disturb_is_read_in_the_members_time_zone_and_may_wrap_midnight() {
        let alice = user("alice");
        let night = json!({ "notifications": { "notification_schedule": { "start": "22:00", "end": "08:00" } } });
        let member = recipient("bob", night, Default::default());
        let plain = message(&alice, &[], true);
        assert!(decide(&member, &plain, at(NOON_TOKYO)).is_some(), "noon in Tokyo");
        assert_eq!(decide(&member, &plain, at("2026-12-05T14:30:00Z")), None, "23:30 in Tokyo");
        assert_eq!(decide(&member, &plain, at("2026-12-04T22:59:00Z")), None, "07:59 in Tokyo");
        assert!(decide(&member, &plain, at("2026-12-04T23:00:00Z")).is_some(), "08:00 in Tokyo: over");
        let lunch = json!({ "notifications": { "notification_schedule": { "start": "12:00", "end": "13:00" } } });
        assert_eq!(decide(&recipient("bob", lunch, Default::default()), &plain, at(NOON_TOKYO)), None);
    }

    #[test]
    fn replies_tell_their_followers_who_want_them_and_whom_they_name() {
        let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
        let followers = [alice.clone(), bob.clone()];
        let reply = Arrival { followers: Some(&followers), ..message(&alice, &[], false) };
        assert_eq!(
            decide(&recipient("bob", json!({}), Default::default()), &reply, at(NOON_TOKYO)),
            Some(Urgency::Normal)
        );
        assert_eq!(decide(&recipient("carol", json!({}), Default::default()), &reply, at(NOON_TOKYO)), None);
        let mentions_only = json!({ "notifications": { "notify_me_about": "mentions" } });
        let following = decide(&recipient("bob", mentions_only, Default::default()), &reply, at(NOON_TOKYO));
        assert_eq!(following, Some(Urgency::Normal), "followers hear of replies at any level but nothing");
        let in_a_dm = Arrival { direct: true, ..reply };
        let not_following = decide(&recipient("carol", json!({}), Default::default()), &in_a_dm, at(NOON_TOKYO));
        assert_eq!(not_following, Some(Urgency::High), "a reply in a conversation of two is meant for the other");
        let no_replies = json!({ "notifications": { "thread_replies_notification": false } });
        assert_eq!(decide(&recipient("bob", no_replies, Default::default()), &reply, at(NOON_TOKYO)), None);
        let named = [carol];
        let naming = Arrival { followers: Some(&followers), ..message(&alice, &named, false) };
        assert_eq!(
            decide(&recipient("carol", json!({}), Default::default()), &naming, at(NOON_TOKYO)),
            Some(Urgency::High)
        );
    }

    #[test]
    fn an_edit_tells_only_whom_it_named_anew() {
        let (alice, bob) = (user("alice"), user("bob"));
        let named = [bob.clone()];
        let anew: [UserId; 0] = [];
        let kept = Arrival { named_anew: Some(&anew), ..message(&alice, &named, true) };
        assert_eq!(decide(&recipient("bob", json!({}), Default::default()), &kept, at(NOON_TOKYO)), None);
        let added = Arrival { named_anew: Some(&named), ..message(&alice, &named, false) };
        assert_eq!(
            decide(&recipient("bob", json!({}), Default::default()), &added, at(NOON_TOKYO)),
            Some(Urgency::High)
        );
    }
}
