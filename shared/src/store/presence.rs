//! Who is online. A user's presence item holds, for each open connection, until when it counts as
//! live: API Gateway's idle timeout after its last heartbeat (connecting counts as one). Closing a
//! connection removes its entry; one that vanished without `$disconnect` stops counting when its
//! time passes, whether or not anything removed it yet. Readers and the realtime push judge entries
//! by the same rule (`Presence::of`). The item also says whether its user hides their presence, so
//! hiding and showing it change the item as connecting and closing do, and make the same events.
//! Each connection's heartbeat also says whether its client is in front of its user: since when a
//! client has been hidden or idle is kept beside its entry, and a member none of whose live clients
//! is attended gets pushed notifications (`attended`).

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use serde::Serialize;

use super::messages::tx_update;
use super::{Item, Store, from_item, keys, string_attr};
use crate::error::Result;
use crate::ids::{OrgId, UserId};
use crate::model::{Member, Visibility};
use crate::time::epoch_secs;

/// How long a connection counts as live after its last heartbeat: API Gateway closes a WebSocket
/// idle for 10 minutes, so a client pings more often than that.
pub const PRESENCE_WINDOW_SECS: u64 = 10 * 60;

/// Names a connection's entry in the presence item.
const LIVE_PREFIX: &str = "live#";
/// Names the entry saying since when (epoch seconds) a connection's client is hidden or idle.
const AWAY_PREFIX: &str = "away#";
/// A client hidden or idle this long no longer counts as its user watching: what reaches them is
/// pushed, as Slack pushes to a desktop left alone.
pub const AWAY_AFTER_SECS: u64 = 2 * 60;
/// Set on the presence item while its user hides their presence.
const HIDDEN: &str = "hidden";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Online,
    Offline,
}

/// A user's presence as others see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Presence {
    pub status: Status,
    /// When they were last online (their last connect, heartbeat or close); `None` while online, or
    /// when hidden or never seen.
    pub last_seen_at: Option<String>,
}

impl Presence {
    const UNKNOWN: Self = Self { status: Status::Offline, last_seen_at: None };

    /// The presence a presence item shows at `now` (epoch seconds).
    pub fn of(item: Option<&Item>, now: u64) -> Self {
        let Some(item) = item else { return Self::UNKNOWN };
        if matches!(item.get(HIDDEN), Some(AttributeValue::Bool(true))) {
            return Self::UNKNOWN;
        }
        if live_connections(item, now).next().is_some() {
            Self { status: Status::Online, last_seen_at: None }
        } else {
            Self { status: Status::Offline, last_seen_at: string_attr(item, "seen_at") }
        }
    }

    /// What `member` shows others: offline, and never when, while they hide it.
    fn shown_by(self, member: &Member) -> Self {
        if member.profile.presence == Visibility::Hidden { Self::UNKNOWN } else { self }
    }
}

/// What a client says of itself in its heartbeat: in front of its user, or hidden (a background tab,
/// a closed lid) or idle (no input for a while).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attention {
    #[default]
    Active,
    Hidden,
    Idle,
}

/// Whether a presence item shows, at `now`, a live connection whose client is active or was hidden
/// or idle for less than `AWAY_AFTER_SECS`.
pub(super) fn attended(item: &Item, now: u64) -> bool {
    live_connections(item, now).any(|connection| match item.get(&format!("{AWAY_PREFIX}{connection}")) {
        Some(AttributeValue::N(since)) => since.parse::<u64>().is_ok_and(|since| now < since + AWAY_AFTER_SECS),
        _ => true,
    })
}

/// The connections a presence item counts as live at `now` (epoch seconds), by id.
fn live_connections(item: &Item, now: u64) -> impl Iterator<Item = &str> {
    item.iter().filter_map(move |(name, value)| match value {
        AttributeValue::N(until) if until.parse::<u64>().is_ok_and(|until| until > now) => {
            name.strip_prefix(LIVE_PREFIX)
        }
        _ => None,
    })
}

/// The update of `user`'s presence item when `connection` opens or beats (`Some`, with what its client
/// says of itself) or closes (`None`): (expression, names, values). Away since the first heartbeat
/// that says so; a heartbeat that says active, or the close, forgets it.
fn presence_update(org: &OrgId, user: &UserId, connection: &str, beat: Option<Attention>) -> (String, Names, Item) {
    let names = Names::from([
        ("#live".to_owned(), format!("{LIVE_PREFIX}{connection}")),
        ("#away".to_owned(), format!("{AWAY_PREFIX}{connection}")),
    ]);
    let mut values = Item::from([
        (":seen".to_owned(), AttributeValue::S(crate::time::now())),
        (":org".to_owned(), AttributeValue::S(org.to_string())),
        (":user".to_owned(), AttributeValue::S(user.to_string())),
    ]);
    let now = epoch_secs();
    let expression = match beat {
        Some(attention) => {
            values.insert(":until".into(), AttributeValue::N((now + PRESENCE_WINDOW_SECS).to_string()));
            match attention {
                Attention::Active => "SET #live = :until, seen_at = :seen, org_id = :org, user_id = :user REMOVE #away",
                Attention::Hidden | Attention::Idle => {
                    values.insert(":now".into(), AttributeValue::N(now.to_string()));
                    "SET #live = :until, #away = if_not_exists(#away, :now), seen_at = :seen, org_id = :org, user_id = :user"
                }
            }
        }
        None => "REMOVE #live, #away SET seen_at = :seen, org_id = :org, user_id = :user",
    };
    (expression.to_owned(), names, values)
}

type Names = std::collections::HashMap<String, String>;

impl Store {
    /// The change to `user`'s presence item when `connection` opens (`live`) or closes, for the
    /// transaction that records or forgets the connection.
    pub(crate) fn presence_change(
        &self,
        org: &OrgId,
        user: &UserId,
        connection: &str,
        live: bool,
    ) -> Result<TransactWriteItem> {
        let (expression, names, values) = presence_update(org, user, connection, live.then_some(Attention::Active));
        tx_update(
            self.update_builder(&keys::presence(org, user))
                .update_expression(expression)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values)),
        )
    }

    /// A heartbeat of an open connection, saying whether its client is attended: it counts as live
    /// for another window.
    pub async fn heartbeat(&self, org: &OrgId, user: &UserId, connection: &str, attention: Attention) -> Result<()> {
        let (expression, names, values) = presence_update(org, user, connection, Some(attention));
        let update = self
            .update_item(&keys::presence(org, user))
            .update_expression(expression)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values));
        self.update_if(update).await.map(drop)
    }

    /// Records whether `user` hides their presence: others see them go offline (or come back online)
    /// as when they close (or open) their last connection.
    pub async fn show_presence(&self, org: &OrgId, user: &UserId, visibility: Visibility) -> Result<()> {
        let update = self
            .update_item(&keys::presence(org, user))
            .update_expression("SET #hidden = :hidden, org_id = :org, user_id = :user")
            .expression_attribute_names("#hidden", HIDDEN)
            .expression_attribute_values(":hidden", AttributeValue::Bool(visibility == Visibility::Hidden))
            .expression_attribute_values(":org", AttributeValue::S(org.to_string()))
            .expression_attribute_values(":user", AttributeValue::S(user.to_string()));
        self.update_if(update).await.map(drop)
    }

    /// The open connections of each of `users` in `org`, by id, in the order of `users`: the live
    /// entries of their presence items (hidden or not), one batch read for them all.
    pub async fn open_connections(&self, org: &OrgId, users: &[UserId]) -> Result<Vec<Vec<String>>> {
        let keys: Vec<keys::Key> = users.iter().map(|user| keys::presence(org, user)).collect();
        let items = if keys.is_empty() { Vec::new() } else { self.get_many(&keys).await? };
        let now = epoch_secs();
        let ids = |item: &Item| live_connections(item, now).map(str::to_owned).collect();
        Ok(items.iter().map(|item| item.as_ref().map_or_else(Vec::new, ids)).collect())
    }

    /// The presence of each of `users` as others see it, `None` for one who is not a member of `org`:
    /// one batch read of their member and presence items.
    pub async fn presence(&self, org: &OrgId, users: &[UserId]) -> Result<Vec<Option<Presence>>> {
        let keys: Vec<keys::Key> =
            users.iter().flat_map(|user| [keys::member(org, user), keys::presence(org, user)]).collect();
        let items = if keys.is_empty() { Vec::new() } else { self.get_many(&keys).await? };
        let now = epoch_secs();
        items
            .chunks(2)
            .map(|pair| {
                let Some(member) = pair[0].clone().map(from_item::<Member>).transpose()? else { return Ok(None) };
                let shown = (!member.deleted).then(|| Presence::of(pair[1].as_ref(), now).shown_by(&member));
                Ok(shown)
            })
            .collect()
    }
}
