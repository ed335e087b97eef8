//! Each member's inbox: one row a room (`ORG#{org}#USER#{user}` / `ROOM#{room}`) with the room's last
//! message, when it was last active and the member's read marker.
//!
//! Rows are written with the room's membership; the projector keeps their last message from the
//! table's stream. Every later write to a row updates only the attributes it owns, on a condition
//! about the message it carries: a row takes a message only if it is newer (by id) than the one it
//! shows, and a sender's marker moves only forward to what they sent. So a record delivered again,
//! late, in another batch or from another shard at the same time leaves a row as if each message
//! had come once and in order; and a mark, an edit and a new message never put back what another
//! wrote.
//!
//! Rooms of more than `LARGE_ROOM_MEMBERS` members keep their last message in one summary item
//! instead (only the sender's marker moves in the rows), and an inbox page merges them in by it.
//!
//! Unread counts are not kept but counted when asked, with one definition: a member's unread
//! messages are the other members' messages after their marker and after they joined (`Unread`).
//! A row tells whether there can be any (its last message is past both), so only such rooms are
//! counted, each with one Query of its messages that stops past `UNREAD_CAP`.

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use std::collections::HashMap;

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use super::messages::value;
use super::meter::Consumed;
use super::{Item, Order, Store, failed_at, from_item, keys, sdk_error, to_item};
use crate::error::{Error, Result};
use crate::ids::{MessageId, OrgId, RoomId, UserId};
use crate::model::{Message, Room};
use crate::notifications::{RoomNotifications, Watch};
use crate::paging::{Direction, Page, PageRequest};
use crate::store::ReadMarker;

/// The longest text preview a row shows.
pub const PREVIEW_CHARS: usize = 200;
/// The index that orders a member's rows by activity, newest first.
pub const ACTIVITY_INDEX: &str = "ByActivity";
pub const ACTIVITY_PK: &str = "activity_pk";
pub const ACTIVITY_SK: &str = "activity_sk";
/// Rooms with more members than this keep their last message in one summary item (`room_summary`)
/// instead of every member's row, so an ordinary message there writes nothing per member; their
/// rows sit apart in the activity index and take their place in an inbox page when it is read.
pub const LARGE_ROOM_MEMBERS: usize = 8;
/// Unread messages are counted exactly up to this many; past it a count says "at least this many".
pub const UNREAD_CAP: u64 = 100;
/// A row's marker is behind `:own`, a message its member sent at `:own_at`, and was set before then.
const MARKER_BEHIND: &str =
    "(attribute_not_exists(last_read_message_id) OR (last_read_message_id < :own AND read_at < :own_at))";
/// Rooms whose rows are written, or whose unread messages are counted, at once.
const ROOMS_AT_ONCE: usize = 16;

/// The newest message of a room, as an inbox shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastMessage {
    pub message_id: MessageId,
    pub sender_id: UserId,
    pub preview: String,
    pub created_at: String,
    /// The edit the preview shows: an older edit delivered late does not put back its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<String>,
}

impl LastMessage {
    fn of(post: &Message) -> Self {
        Self {
            message_id: post.id.clone(),
            sender_id: post.sender_id.clone(),
            preview: post.message.chars().take(PREVIEW_CHARS).collect(),
            created_at: post.created_at.clone(),
            edited_at: post.edited_at.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxRow {
    pub room_id: RoomId,
    pub last_activity_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message: Option<LastMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_read_message_id: Option<MessageId>,
    /// When the marker was set: by the member's mark, or their message's time when sending moved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<String>,
    /// Sorts before the id of every message sent after the member joined: nothing before it is
    /// theirs to read.
    joined_floor: MessageId,
    activity_pk: String,
    activity_sk: String,
    /// The member's own notification settings for the room: kept on their row, which only they
    /// change this way (rows are moved and marked by updates that leave them be).
    #[serde(default, skip_serializing_if = "RoomNotifications::is_default")]
    pub notifications: RoomNotifications,
}

impl InboxRow {
    /// A new member's row: joined and active at `at`, nothing read; a large room's row sits apart.
    pub(crate) fn new(org: &OrgId, user: &UserId, room: &RoomId, at: &str, large: bool) -> Result<Self> {
        let (activity_pk, activity_sk) = activity_keys(org, user, room, at, large);
        Ok(Self {
            room_id: room.clone(),
            last_activity_at: at.to_owned(),
            last_message: None,
            last_read_message_id: None,
            read_at: None,
            joined_floor: id_floor(at)?,
            activity_pk,
            activity_sk,
            notifications: RoomNotifications::default(),
        })
    }

    /// Whether the row is a large room's, whose last message is the room's summary.
    fn is_large(&self) -> bool {
        self.activity_pk.ends_with(keys::LARGE_ROOMS_SUFFIX)
    }

    /// A large room's row as an inbox shows it: with the summary's last message and activity (none
    /// before its first message: active since it was made).
    fn with_summary(mut self, summary: Option<Summary>) -> Self {
        let summary = summary.unwrap_or_else(|| Summary::of(None, &self.last_activity_at));
        self.last_message = summary.last_message;
        self.activity_sk = activity_sort_key(&summary.last_activity_at, &self.room_id);
        self.last_activity_at = summary.last_activity_at;
        self
    }

    /// Where the member's unread messages start: after their marker and after they joined.
    fn unread_after(&self) -> &MessageId {
        match &self.last_read_message_id {
            Some(read) if *read > self.joined_floor => read,
            _ => &self.joined_floor,
        }
    }

    /// Whether the room may hold unread messages for the member: its last message is past where
    /// they start. (It may be the member's own, after a marker moved back: then it is counted.)
    fn may_have_unread(&self) -> bool {
        self.last_message.as_ref().is_some_and(|last| last.message_id > *self.unread_after())
    }
}

/// The smallest message id of the millisecond of `at` (RFC 3339): every message sent from then on
/// sorts after it, as message ids are ULIDs.
fn id_floor(at: &str) -> Result<MessageId> {
    let ms = crate::time::stamp_ms(at).ok_or_else(|| Error::internal_msg("a row's time is not RFC 3339"))?;
    MessageId::parse(ulid::Ulid::from_parts(ms, 0).to_string())
}

fn activity_sort_key(at: &str, room: &RoomId) -> String {
    format!("{at}#{room}")
}

/// A row's keys in the activity index: by when the room was last active, or for a large room, apart
/// and fixed.
fn activity_keys(org: &OrgId, user: &UserId, room: &RoomId, at: &str, large: bool) -> (String, String) {
    if large {
        (keys::large_rooms_pk(org, user), format!("{}{room}", keys::ROOM_PREFIX))
    } else {
        (keys::user_rooms_pk(org, user), activity_sort_key(at, room))
    }
}

/// Whether a room of `members` members is large (see `LARGE_ROOM_MEMBERS`).
pub fn is_large(members: usize) -> bool {
    members > LARGE_ROOM_MEMBERS
}

/// A large room's last message and when it was last active.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Summary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_message: Option<LastMessage>,
    last_activity_at: String,
}

impl Summary {
    /// A summary showing `newest` (none: active since `since`).
    pub(crate) fn of(newest: Option<&Message>, since: &str) -> Self {
        Self {
            last_message: newest.map(LastMessage::of),
            last_activity_at: newest.map_or_else(|| since.to_owned(), |post| post.created_at.clone()),
        }
    }
}

/// The room a row's activity sort key ends with.
fn room_of_sort_key(sort_key: &str) -> Option<RoomId> {
    sort_key.rsplit_once('#').and_then(|(_, room)| RoomId::parse(room).ok())
}

/// A member's unread messages in a room: exact up to `UNREAD_CAP`, at least that many when `capped`;
/// and of those, how many are meant for them (`Watch`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unread {
    pub count: u64,
    pub capped: bool,
    pub mentions: u64,
}

/// What the unread count reads of a message: whom it names, and its text when keywords need it.
#[derive(Deserialize)]
struct Seen {
    #[serde(default)]
    mentions: Vec<UserId>,
    #[serde(default)]
    message: String,
}

/// A room of a member's inbox: the room, their row and what is unread in it.
pub struct InboxEntry {
    pub room: Room,
    pub row: InboxRow,
    pub unread: Unread,
}

/// A member's rows as first read: a page of them (by room), or by activity a page's worth and where
/// the Query stopped, to be merged with their large rooms'.
enum Listed {
    Page(Page<InboxRow>),
    Rows((Vec<InboxRow>, Option<Item>)),
}

/// How a member's inbox is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboxOrder {
    /// Latest activity first.
    Activity,
    /// Newest room first.
    Created,
}

/// A member's unread total, for a badge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnreadTotals {
    pub rooms: u64,
    pub messages: u64,
    /// Of `messages`, those meant for the member.
    pub mentions: u64,
    /// Some room has more than `UNREAD_CAP` unread: `messages` is a floor.
    pub capped: bool,
}

impl Store {
    /// Shows stored messages of one room (none of them replies) in its members' rows: every row
    /// takes the newest if it is newer than what it shows, and each sender's marker moves to their
    /// newest if it is further on. Rows of members who left are gone, and nothing is written there.
    pub async fn project_stored(&self, room: &RoomId, posts: &[&Message]) -> Result<()> {
        let Some(newest) = posts.iter().max_by(|a, b| a.id.cmp(&b.id)) else { return Ok(()) };
        let Some(room) = self.get::<Room>(&keys::room(room)).await? else { return Ok(()) };
        let own = |user: &UserId| posts.iter().filter(|post| post.sender_id == *user).max_by(|a, b| a.id.cmp(&b.id));
        if is_large(room.room_user_ids.len()) {
            // The summary shows it; of the rows, only the senders' markers move.
            self.update_if(self.summary_shows(&room.room_id, newest)?).await?;
            let markers: Vec<_> = room
                .room_user_ids
                .iter()
                .filter_map(|user| own(user).map(|own| (keys::user_room(&room.org_id, user, &room.room_id), own)))
                .collect();
            let moves: Vec<_> = markers.iter().map(|(row, own)| self.move_marker_forward(row, own)).collect();
            return stream::iter(moves).buffer_unordered(ROOMS_AT_ONCE).try_collect().await;
        }
        // Collected first: a lazy map here would hold a closure over borrowed ids across awaits.
        let rows: Vec<_> = room
            .room_user_ids
            .iter()
            .map(|user| self.show_in_row(&room.org_id, user, newest, own(user).copied()))
            .collect();
        stream::iter(rows).buffer_unordered(ROOMS_AT_ONCE).try_collect().await
    }

    /// The update that shows `newest` in its large room's summary, unless it shows a newer one.
    fn summary_shows(&self, room: &RoomId, newest: &Message) -> Result<UpdateItemFluentBuilder> {
        Ok(self
            .update_item(&keys::room_summary(room))
            .update_expression("SET last_message = :last, last_activity_at = :at")
            .condition_expression("attribute_not_exists(last_message) OR last_message.message_id < :id")
            .expression_attribute_values(":last", value(&LastMessage::of(newest))?)
            .expression_attribute_values(":at", AttributeValue::S(newest.created_at.clone()))
            .expression_attribute_values(":id", value(&newest.id)?))
    }

    /// `newest` in `user`'s row, and `own` (their newest of the same messages) as their marker: one
    /// update while both hold (they do but for a record delivered again, or a marker moved back),
    /// so a reader never sees the one without the other.
    async fn show_in_row(&self, org: &OrgId, user: &UserId, newest: &Message, own: Option<&Message>) -> Result<()> {
        let key = keys::user_room(org, user, &newest.room_id);
        let show = |update: UpdateItemFluentBuilder| {
            Ok::<_, Error>(
                update
                    .expression_attribute_values(":last", value(&LastMessage::of(newest))?)
                    .expression_attribute_values(":at", AttributeValue::S(newest.created_at.clone()))
                    .expression_attribute_values(
                        ":sk",
                        AttributeValue::S(activity_sort_key(&newest.created_at, &newest.room_id)),
                    )
                    .expression_attribute_values(":id", value(&newest.id)?)
                    .expression_attribute_values(":pk", AttributeValue::S(keys::user_rooms_pk(org, user))),
            )
        };
        // Only a small room's row: one that turned large meanwhile is the summary's to show.
        const NEWER: &str =
            "activity_pk = :pk AND (attribute_not_exists(last_message) OR last_message.message_id < :id)";
        const SHOW: &str = "last_message = :last, last_activity_at = :at, activity_sk = :sk";
        if let Some(own) = own {
            let both = show(self.update_item(&key))?
                .update_expression(format!("SET {SHOW}, last_read_message_id = :own, read_at = :own_at"))
                .condition_expression(format!("{NEWER} AND {MARKER_BEHIND}"))
                .expression_attribute_values(":own", value(&own.id)?)
                .expression_attribute_values(":own_at", AttributeValue::S(own.created_at.clone()));
            if self.update_if(both).await? {
                return Ok(());
            }
        }
        let shown = show(self.update_item(&key))?.update_expression(format!("SET {SHOW}")).condition_expression(NEWER);
        self.update_if(shown).await?;
        match own {
            Some(own) => self.move_marker_forward(&key, own).await,
            None => Ok(()),
        }
    }

    /// Moves a marker to `own` (a message its member sent) unless it is there or further on already,
    /// or was set after `own` was sent (the member marked it back since: theirs is the last word).
    async fn move_marker_forward(&self, row: &keys::Key, own: &Message) -> Result<()> {
        let update = self
            .update_item(row)
            .update_expression("SET last_read_message_id = :own, read_at = :own_at")
            .condition_expression(format!("attribute_exists(PK) AND {MARKER_BEHIND}"))
            .expression_attribute_values(":own", value(&own.id)?)
            .expression_attribute_values(":own_at", AttributeValue::S(own.created_at.clone()));
        self.update_if(update).await.map(drop)
    }

    /// A removed message out of the rows that show it: they show the room's newest message left
    /// (or none). A row that took a newer message meanwhile keeps it.
    pub async fn project_removed(&self, room: &RoomId, removed: &MessageId) -> Result<()> {
        let Some(room) = self.get::<Room>(&keys::room(room)).await? else { return Ok(()) };
        if is_large(room.room_user_ids.len()) {
            return self.summary_without(&room, removed).await;
        }
        let rows = self.member_rows(&room.org_id, &room.room_id, &room.room_user_ids).await?;
        let shows = |row: &Option<InboxRow>| {
            row.as_ref().and_then(|row| row.last_message.as_ref()).is_some_and(|last| last.message_id == *removed)
        };
        if !rows.iter().any(shows) {
            return Ok(());
        }
        let newest = self.newest_message(&room.room_id).await?;
        let mut updates = Vec::new();
        for (user, _) in room.room_user_ids.iter().zip(&rows).filter(|(_, row)| shows(row)) {
            let update = self.update_item(&keys::user_room(&room.org_id, user, &room.room_id));
            let update = match &newest {
                Some(newest) => update
                    .update_expression("SET last_message = :last")
                    .expression_attribute_values(":last", value(&LastMessage::of(newest))?),
                None => update.update_expression("REMOVE last_message"),
            };
            updates.push(
                update
                    .condition_expression("last_message.message_id = :removed")
                    .expression_attribute_values(":removed", value(removed)?),
            );
        }
        let replaced: Vec<_> = updates.into_iter().map(|update| self.update_if(update)).collect();
        stream::iter(replaced).buffer_unordered(ROOMS_AT_ONCE).try_collect::<Vec<bool>>().await.map(drop)
    }

    /// A removed message out of its large room's summary, if it shows it: the newest left instead.
    async fn summary_without(&self, room: &Room, removed: &MessageId) -> Result<()> {
        let summary: Option<Summary> = self.get(&keys::room_summary(&room.room_id)).await?;
        let shows = summary.and_then(|summary| summary.last_message).is_some_and(|last| last.message_id == *removed);
        if !shows {
            return Ok(());
        }
        let newest = self.newest_message(&room.room_id).await?;
        let update = self.update_item(&keys::room_summary(&room.room_id));
        let update = match &newest {
            Some(newest) => update
                .update_expression("SET last_message = :last, last_activity_at = :at")
                .expression_attribute_values(":last", value(&LastMessage::of(newest))?)
                .expression_attribute_values(":at", AttributeValue::S(newest.created_at.clone())),
            None => update.update_expression("REMOVE last_message"),
        };
        let update = update
            .condition_expression("last_message.message_id = :removed")
            .expression_attribute_values(":removed", value(removed)?);
        self.update_if(update).await.map(drop)
    }

    /// The rows of `members` in the room, in their order (`None` for one without): their inbox and
    /// read state, in one read.
    pub async fn member_rows(&self, org: &OrgId, room: &RoomId, members: &[UserId]) -> Result<Vec<Option<InboxRow>>> {
        let wanted: Vec<keys::Key> = members.iter().map(|user| keys::user_room(org, user, room)).collect();
        let rows = self.get_many(&wanted).await?;
        rows.into_iter().map(|row| row.map(from_item).transpose()).collect()
    }

    /// An edited message's new text in the previews that show it (its room's rows, or a large room's
    /// summary).
    pub async fn project_edited(&self, post: &Message) -> Result<()> {
        let Some(edited_at) = &post.edited_at else { return Ok(()) };
        let Some(room) = self.get::<Room>(&keys::room(&post.room_id)).await? else { return Ok(()) };
        let shown_in = match is_large(room.room_user_ids.len()) {
            true => vec![keys::room_summary(&room.room_id)],
            false => room.room_user_ids.iter().map(|user| keys::user_room(&room.org_id, user, &room.room_id)).collect(),
        };
        let updates: Vec<_> = shown_in
            .iter()
            .map(|key| {
                self.update_if(
                    self.update_item(key)
                        .update_expression("SET last_message.preview = :preview, last_message.edited_at = :edited")
                        .condition_expression(
                            "last_message.message_id = :id AND (attribute_not_exists(last_message.edited_at) \
                             OR last_message.edited_at < :edited)",
                        )
                        .expression_attribute_values(":preview", AttributeValue::S(LastMessage::of(post).preview))
                        .expression_attribute_values(":edited", AttributeValue::S(edited_at.clone()))
                        .expression_attribute_values(":id", AttributeValue::S(post.id.to_string())),
                )
            })
            .collect();
        stream::iter(updates).buffer_unordered(ROOMS_AT_ONCE).try_collect::<Vec<bool>>().await.map(drop)
    }

    /// Sets `user`'s marker in the room at `message` (forwards or back), in one transaction with the
    /// marker item whose change is the room's `read_marker` event. Only the marker's attributes of
    /// the row change, so a message or an edit the projector writes at the same moment stays.
    pub async fn mark_read(
        &self,
        org: &OrgId,
        room: &RoomId,
        user: &UserId,
        message: &MessageId,
    ) -> Result<ReadMarker> {
        let marker = ReadMarker {
            org_id: org.clone(),
            room_id: room.clone(),
            user_id: user.clone(),
            last_read_message_id: message.clone(),
            read_at: crate::time::now(),
        };
        let row = super::messages::tx_update(
            self.update_builder(&keys::user_room(org, user, room))
                .update_expression("SET last_read_message_id = :id, read_at = :at")
                .condition_expression("attribute_exists(PK)")
                .expression_attribute_values(":id", value(message)?)
                .expression_attribute_values(":at", AttributeValue::S(marker.read_at.clone())),
        )?;
        match self.transact(vec![row, self.put(&keys::read_marker(room, user), &marker)?]).await? {
            Ok(()) => Ok(marker),
            Err(reasons) if failed_at(&reasons, 0) => Err(Error::forbidden("You are not a member of this room")),
            Err(_) => Err(Error::internal_msg("marking a room read failed a condition it cannot fail")),
        }
    }

    /// What is unread for `watch`'s member in the room of `row`, and meant for them: one Query of
    /// the messages after where their unread messages start (whom each names, and its text when
    /// keywords need it: the same read units as counting alone), stopping once it has counted past
    /// `UNREAD_CAP`; none without asking when the row's last message says there are none. Nothing
    /// of it is stored, so it is exact whatever the stream did.
    pub async fn unread(&self, watch: &Watch, row: &InboxRow) -> Result<Unread> {
        if !row.may_have_unread() {
            return Ok(Unread::default());
        }
        let from = format!("{}\0", keys::message(&row.room_id, row.unread_after()).sk);
        let query = self
            .client
            .query()
            .table_name(self.table())
            .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
            .filter_expression("sender_id <> :me")
            .expression_attribute_values(":pk", AttributeValue::S(keys::room_pk(&row.room_id)))
            .expression_attribute_values(":from", AttributeValue::S(from))
            .expression_attribute_values(":to", AttributeValue::S(keys::MESSAGE_END.to_owned()))
            .expression_attribute_values(":me", value(watch.user())?)
            .expression_attribute_names("#mentions", "mentions");
        let query = match watch.reads_text() {
            true => query.projection_expression("#mentions, #text").expression_attribute_names("#text", "message"),
            false => query.projection_expression("#mentions"),
        };
        let mut start: Option<Item> = None;
        let mut unread = Unread::default();
        loop {
            let sent = query
                .clone()
                // Read no further than the cap needs, however many of them are the member's own.
                .limit(i32::try_from(UNREAD_CAP + 1 - unread.count).map_err(Error::internal)?)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let output = self.metered(sent, |o| o.consumed_capacity.units()).map_err(sdk_error)?;
            for seen in output.items.unwrap_or_default().into_iter().map(from_item::<Seen>) {
                let seen = seen?;
                if unread.count < UNREAD_CAP {
                    unread.mentions += u64::from(watch.meant_for(&seen.mentions, &seen.message));
                }
                unread.count += 1;
            }
            match output.last_evaluated_key {
                _ if unread.count > UNREAD_CAP => return Ok(Unread { count: UNREAD_CAP, capped: true, ..unread }),
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(unread),
            }
        }
    }

    /// What is unread for `watch`'s member in each of `rows`, in their order, rooms counted at once.
    async fn unread_of(&self, watch: &Watch, rows: &[InboxRow]) -> Result<Vec<Unread>> {
        let counts: Vec<_> = rows.iter().map(|row| self.unread(watch, row)).collect();
        stream::iter(counts).buffered(ROOMS_AT_ONCE).try_collect().await
    }

    /// A page of `user`'s rooms with their rows, in `order`; with `unread_only`, rooms whose last
    /// message is past their marker (a page may then hold fewer than asked, with `next` to go on;
    /// `count_unread` tells which have unread messages after all); 403 unless `user` is a member of
    /// the org. Two round trips: the page's rows (by activity, with every large room's row beside
    /// them: a member is in few), then one BatchGet of the membership (checked before anything read
    /// is shown), the rooms and the large rooms' summaries, which place them in the page.
    pub async fn inbox(
        &self,
        org: &OrgId,
        user: &UserId,
        order: InboxOrder,
        unread_only: bool,
        page: &PageRequest,
    ) -> Result<Page<InboxEntry>> {
        let pk = keys::user_rooms_pk(org, user);
        let (listed, large) = match order {
            InboxOrder::Created => {
                let page = self.query_page(pk, keys::ROOM_PREFIX, Order::NewestFirst, page).await?;
                (Listed::Page(page.try_map(from_item::<InboxRow>)?), Vec::new())
            }
            InboxOrder::Activity => {
                let large_pk = keys::large_rooms_pk(org, user);
                let (rows, large) =
                    tokio::try_join!(self.activity_rows(&pk, unread_only, page), self.query_index_all(&large_pk))?;
                (Listed::Rows(rows), large)
            }
        };
        let rows: Vec<&InboxRow> = match &listed {
            Listed::Page(page) => page.items.iter().collect(),
            Listed::Rows((rows, _)) => rows.iter().collect(),
        };
        let mut wanted = vec![keys::member(org, user)];
        wanted.extend(rows.iter().chain(&large.iter().collect::<Vec<_>>()).map(|row| keys::room(&row.room_id)));
        let summarized: Vec<&InboxRow> = rows.iter().copied().chain(&large).filter(|row| row.is_large()).collect();
        wanted.extend(summarized.iter().map(|row| keys::room_summary(&row.room_id)));
        let found = self.get_many(&wanted).await?;
        if super::rooms::current_member(found[0].clone())?.is_none() {
            return Err(Error::forbidden("You are not a member of this organization"));
        }
        let mut rooms: HashMap<RoomId, Room> = HashMap::new();
        let mut summaries: HashMap<RoomId, Summary> = HashMap::new();
        for item in found.into_iter().skip(1).flatten() {
            match super::string_attr(&item, keys::SK).as_deref() {
                Some("SUMMARY") => {
                    let room = super::string_attr(&item, keys::PK)
                        .and_then(|pk| pk.strip_prefix(keys::ROOM_PREFIX).and_then(|id| RoomId::parse(id).ok()));
                    if let Some(room) = room {
                        summaries.insert(room, from_item(item)?);
                    }
                }
                _ => {
                    let room: Room = from_item(item)?;
                    rooms.insert(room.room_id.clone(), room);
                }
            }
        }
        let shown = |row: InboxRow| match row.is_large() {
            true => {
                let summary = summaries.get(&row.room_id).cloned();
                Some(row.with_summary(summary))
            }
            false => Some(row),
        };
        let page_rows = match listed {
            Listed::Page(page) => page.try_map(|row| Ok::<_, Error>(shown(row)))?,
            Listed::Rows((rows, evaluated_past)) => {
                let direction = page.cursor.as_ref().map_or(Direction::After, |c| c.direction);
                let beyond = |row: &InboxRow| match &page.cursor {
                    None => true,
                    Some(cursor) if direction == Direction::After => row.activity_sk < cursor.sort_key,
                    Some(cursor) => row.activity_sk > cursor.sort_key,
                };
                // Where the small rooms' Query stopped reading: large rooms past it are the next
                // page's, which reads on from there.
                let stop = evaluated_past.as_ref().and_then(|key| super::string_attr(key, ACTIVITY_SK));
                let before_stop = |row: &InboxRow| match (&stop, direction) {
                    (None, _) => true,
                    (Some(stop), Direction::After) => row.activity_sk > *stop,
                    (Some(stop), Direction::Before) => row.activity_sk < *stop,
                };
                let large = large
                    .into_iter()
                    .filter_map(shown)
                    .filter(|row| beyond(row) && before_stop(row) && (!unread_only || row.may_have_unread()));
                let mut merged: Vec<InboxRow> = rows.into_iter().chain(large).collect();
                merged.sort_by(|a, b| b.activity_sk.cmp(&a.activity_sk));
                if direction == Direction::Before {
                    merged.reverse();
                }
                let items = merged.iter().map(|row| to_item(&keys::user_room(org, user, &row.room_id), row));
                let items = items.collect::<Result<Vec<_>>>()?;
                super::paged(items, page, ACTIVITY_SK, evaluated_past).try_map(|item| from_item(item).map(Some))?
            }
        };
        let mut entries = Vec::with_capacity(page_rows.items.len());
        for row in page_rows.items.into_iter().flatten() {
            if unread_only && !row.may_have_unread() {
                continue;
            }
            if let Some(room) = rooms.remove(&row.room_id) {
                entries.push(InboxEntry { room, row, unread: Unread::default() });
            }
        }
        Ok(Page { items: entries, next: page_rows.next, previous: page_rows.previous })
    }

    /// What is unread for `watch`'s member in each of `entries`, in their order, rooms counted at once.
    pub async fn count_unread(&self, watch: &Watch, entries: &[InboxEntry]) -> Result<Vec<Unread>> {
        let rows: Vec<InboxRow> = entries.iter().map(|entry| entry.row.clone()).collect();
        self.unread_of(watch, &rows).await
    }

    /// A page's worth of a member's small rooms' rows by activity, from the cursor (one more than
    /// the page, to tell whether more follow), and where the Query stopped; with `unread_only`,
    /// those whose last message is past where the member's unread messages start.
    async fn activity_rows(
        &self,
        pk: &str,
        unread_only: bool,
        page: &PageRequest,
    ) -> Result<(Vec<InboxRow>, Option<Item>)> {
        let direction = page.cursor.as_ref().map_or(Direction::After, |c| c.direction);
        let start = match &page.cursor {
            None => None,
            Some(cursor) => {
                let room = room_of_sort_key(&cursor.sort_key).ok_or_else(|| Error::bad_request("invalid cursor"))?;
                let mut key =
                    super::key_item(&keys::Key { pk: pk.to_owned(), sk: format!("{}{room}", keys::ROOM_PREFIX) });
                key.insert(ACTIVITY_PK.into(), AttributeValue::S(pk.to_owned()));
                key.insert(ACTIVITY_SK.into(), AttributeValue::S(cursor.sort_key.clone()));
                Some(key)
            }
        };
        let query = self
            .activity_query(pk)
            .scan_index_forward(direction == Direction::Before)
            .limit(i32::try_from(page.limit + 1).map_err(Error::internal)?)
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        let query = match unread_only {
            true => query.filter_expression(
                "last_message.message_id > joined_floor AND (attribute_not_exists(last_read_message_id) \
                 OR last_message.message_id > last_read_message_id)",
            ),
            false => query,
        };
        let output = self.metered(query.send().await, |o| o.consumed_capacity.units()).map_err(sdk_error)?;
        let rows = output.items.unwrap_or_default().into_iter().map(from_item).collect::<Result<_>>()?;
        Ok((rows, output.last_evaluated_key.filter(|key| !key.is_empty())))
    }

    /// Every row under `pk` in the activity index (a member's large rooms).
    async fn query_index_all(&self, pk: &str) -> Result<Vec<InboxRow>> {
        self.every_page(self.activity_query(pk)).await?.into_iter().map(from_item).collect()
    }

    /// A Query of the rows under `pk` in the activity index (eventually consistent, as an index is).
    fn activity_query(&self, pk: &str) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.client
            .query()
            .table_name(self.table())
            .index_name(ACTIVITY_INDEX)
            .key_condition_expression(format!("{ACTIVITY_PK} = :pk"))
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
    }

    /// How many of `user`'s rooms have unread messages, and how many messages in all: one Query of
    /// their rows, then the rooms that may have some counted at once.
    pub async fn unread_totals(&self, org: &OrgId, user: &UserId) -> Result<UnreadTotals> {
        let rows = self.query_all(keys::user_rooms_pk(org, user), keys::ROOM_PREFIX, true);
        let (rows, settings) = tokio::try_join!(rows, self.settings(org, user))?;
        let watch = Watch::new(user, &settings.settings);
        let rows: Vec<InboxRow> = rows.into_iter().map(from_item).collect::<Result<_>>()?;
        let large: Vec<keys::Key> =
            rows.iter().filter(|row| row.is_large()).map(|row| keys::room_summary(&row.room_id)).collect();
        let mut summaries = self.get_many(&large).await?.into_iter();
        let mut shown = Vec::with_capacity(rows.len());
        for row in rows {
            let row = match row.is_large() {
                true => row.with_summary(summaries.next().flatten().map(from_item).transpose()?),
                false => row,
            };
            if row.may_have_unread() {
                shown.push(row);
            }
        }
        let mut totals = UnreadTotals::default();
        let now = crate::time::now_ms();
        for (row, unread) in shown.iter().zip(self.unread_of(&watch, &shown).await?) {
            // A muted room shows no badge but its mentions (Mattermost's mute).
            let (count, capped) = match row.notifications.muted(now) {
                true => (unread.mentions, false),
                false => (unread.count, unread.capped),
            };
            totals.rooms += u64::from(count > 0);
            totals.messages += count;
            totals.mentions += unread.mentions;
            totals.capped |= capped;
        }
        Ok(totals)
    }

    /// What a membership change that makes `room` large (or small again) writes with it: the rows of
    /// the members who stay, moved in the activity index (turning small, they take the summary's
    /// last message), and the summary put (from the newest message) or deleted.
    pub(crate) async fn resize_items(
        &self,
        room: &Room,
        staying: &[UserId],
        large: bool,
    ) -> Result<Vec<aws_sdk_dynamodb::types::TransactWriteItem>> {
        let summary = match large {
            true => Summary::of(self.newest_message(&room.room_id).await?.as_ref(), &room.created_at),
            // A room made large has a summary from its first message on.
            false => self
                .get(&keys::room_summary(&room.room_id))
                .await?
                .unwrap_or_else(|| Summary::of(None, &room.created_at)),
        };
        let mut items = Vec::with_capacity(staying.len() + 1);
        for user in staying {
            let (pk, sk) = activity_keys(&room.org_id, user, &room.room_id, &summary.last_activity_at, large);
            let row = self
                .update_builder(&keys::user_room(&room.org_id, user, &room.room_id))
                .expression_attribute_values(":pk", AttributeValue::S(pk))
                .expression_attribute_values(":sk", AttributeValue::S(sk));
            const KEYS: &str = "SET activity_pk = :pk, activity_sk = :sk";
            let row = match (large, &summary.last_message) {
                (true, _) => row.update_expression(KEYS),
                (false, Some(last)) => row
                    .update_expression(format!("{KEYS}, last_activity_at = :at, last_message = :last"))
                    .expression_attribute_values(":at", AttributeValue::S(summary.last_activity_at.clone()))
                    .expression_attribute_values(":last", value(last)?),
                // No message: no attribute (a null would fail every "newer than" condition after).
                (false, None) => row
                    .update_expression(format!("{KEYS}, last_activity_at = :at REMOVE last_message"))
                    .expression_attribute_values(":at", AttributeValue::S(summary.last_activity_at.clone())),
            };
            items.push(super::messages::tx_update(row)?);
        }
        let key = keys::room_summary(&room.room_id);
        items.push(if large { self.put(&key, &summary)? } else { self.delete(&key)? });
        Ok(items)
    }

    /// A member's new row as a put of the membership's transaction (`large`: the room's).
    pub(crate) fn row_put(
        &self,
        org: &OrgId,
        user: &UserId,
        room: &RoomId,
        at: &str,
        large: bool,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem> {
        let row = InboxRow::new(org, user, room, at, large)?;
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(&keys::user_room(org, user, room), &row)?))
            .build()
            .map_err(Error::internal)?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put).build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(at: &str, last: Option<&str>, read: Option<&str>) -> InboxRow {
        let (org, user, room) = (OrgId::parse("o").unwrap(), UserId::parse("u").unwrap(), RoomId::parse("r").unwrap());
        let mut row = InboxRow::new(&org, &user, &room, at, false).unwrap();
        row.last_message = last.map(|id| LastMessage {
            message_id: MessageId::parse(id).unwrap(),
            sender_id: UserId::parse("other").unwrap(),
            preview: String::new(),
            created_at: at.to_owned(),
            edited_at: None,
        });
        row.last_read_message_id = read.map(|id| MessageId::parse(id).unwrap());
        row
    }

    #[test]
    fn a_row_may_have_unread_only_past_both_its_marker_and_its_join() {
        let at = "2026-01-01T00:00:00.000Z";
        let floor = id_floor(at).unwrap();
        let before = ulid::Ulid::from_parts(1, 0).to_string();
        let after = ulid::Ulid::from_parts(u64::MAX >> 16, 0).to_string();
        assert!(floor.as_str() > before.as_str() && floor.as_str() < after.as_str());
        assert!(!row(at, None, None).may_have_unread(), "no message");
        assert!(!row(at, Some(&before), None).may_have_unread(), "sent before they joined");
        assert!(row(at, Some(&after), None).may_have_unread());
        assert!(!row(at, Some(&after), Some(&after)).may_have_unread(), "read");
        assert!(row(at, Some(&after), Some(&before)).may_have_unread(), "a marker from before the join");
    }
}
