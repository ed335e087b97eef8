//! Each member's inbox: one row a room (`ORG#{org}#USER#{user}` / `ROOM#{room}`) with the room's last
//! message, when it was last active, the member's read marker and their unread count.
//!
//! Rows are written with the room's membership; everything after that is kept by the projector from
//! the table's stream, a run of a room's new messages at a time. A message is counted once, with no
//! transaction: the room's count item and each row remember the place in the stream of the last
//! change they took (`counted_through`), and each changes only from what was read, so a replayed
//! record is passed over and a race with a reader's marker makes the projector read that row again.
//! Each new message also gets a `COUNTED#` item, written before any row takes it: a member's unread
//! count is the number of those, of other members' messages, after their marker and up to their
//! row's place, which is how a marker moved by hand, and a row that showed a deleted message, are
//! recounted without counting what the projector is about to add.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnConsumedCapacity, TransactWriteItem};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use super::messages::value;
use super::meter::Consumed;
use super::{Item, Order, Store, from_item, keys, sdk_error, to_item};
use crate::error::{Error, Result};
use crate::ids::{MessageId, OrgId, RoomId, UserId};
use crate::model::{Message, Room};
use crate::paging::{Direction, Page, PageRequest};
use crate::store::ReadMarker;

/// The longest text preview a row shows.
pub const PREVIEW_CHARS: usize = 200;
/// The index that orders a member's rows by activity, newest first.
pub const ACTIVITY_INDEX: &str = "ByActivity";
pub const ACTIVITY_PK: &str = "activity_pk";
pub const ACTIVITY_SK: &str = "activity_sk";
/// The index of a member's rows with unread messages, by latest activity: a row holds its keys only
/// while something in it is unread (a sparse index), so a page of it is full.
pub const UNREAD_INDEX: &str = "Unread";
pub const UNREAD_PK: &str = "unread_pk";
pub const UNREAD_SK: &str = "unread_sk";
/// Reads and writes a projection or a marker retries when another got there first.
const ATTEMPTS: usize = 8;
/// Rows written at once: a big room's rows are each their own request.
const ROWS_AT_ONCE: usize = 16;

/// The newest message of a room, as an inbox shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastMessage {
    pub message_id: MessageId,
    pub sender_id: UserId,
    pub preview: String,
    pub created_at: String,
}

impl LastMessage {
    fn of(post: &Message) -> Self {
        Self {
            message_id: post.id.clone(),
            sender_id: post.sender_id.clone(),
            preview: post.message.chars().take(PREVIEW_CHARS).collect(),
            created_at: post.created_at.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxRow {
    pub room_id: RoomId,
    #[serde(default)]
    pub last_activity_at: String,
    #[serde(default)]
    pub last_message: Option<LastMessage>,
    #[serde(default)]
    pub unread_count: u64,
    #[serde(default)]
    pub last_read_message_id: Option<MessageId>,
    /// When the marker was set: by the member's mark, or their message's time when sending moved it.
    #[serde(default)]
    pub read_at: Option<String>,
    /// The stream place of the last message counted in the row (empty: none yet).
    #[serde(default)]
    counted_through: String,
    /// Bumped by every change after the row was written: a change applies only to what it read.
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    activity_pk: String,
    #[serde(default)]
    activity_sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unread_pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unread_sk: Option<String>,
}

impl InboxRow {
    /// A new member's row: active since `at`, nothing unread.
    pub(crate) fn new(org: &OrgId, user: &UserId, room: &RoomId, at: &str) -> Self {
        Self {
            room_id: room.clone(),
            last_activity_at: at.to_owned(),
            last_message: None,
            unread_count: 0,
            last_read_message_id: None,
            read_at: None,
            counted_through: String::new(),
            version: 0,
            activity_pk: keys::user_rooms_pk(org, user),
            activity_sk: activity_sort_key(at, room),
            unread_pk: None,
            unread_sk: None,
        }
    }

    fn is_unread(&self, message: &MessageId) -> bool {
        self.last_read_message_id.as_ref().is_none_or(|read| read < message)
    }

    fn with_last_message(mut self, post: &Message) -> Self {
        if self.last_message.as_ref().is_none_or(|last| last.message_id < post.id) {
            self.last_message = Some(LastMessage::of(post));
            self.last_activity_at = post.created_at.clone();
            self.activity_sk = activity_sort_key(&post.created_at, &self.room_id);
        }
        self
    }
}

fn activity_sort_key(at: &str, room: &RoomId) -> String {
    format!("{at}#{room}")
}

/// The room a row's activity sort key ends with.
fn room_of_sort_key(sort_key: &str) -> Option<RoomId> {
    sort_key.rsplit_once('#').and_then(|(_, room)| RoomId::parse(room).ok())
}

/// A message counted in its room: who sent it and its place in the stream, which tells the rows
/// that have it (theirs is as late) from those that will.
#[derive(Clone, Serialize, Deserialize)]
struct Counted {
    sender_id: UserId,
    change: String,
}

/// What the projector reads of the room's count item: the stream place of the last change it took.
#[derive(Default, Deserialize)]
struct RoomCount {
    #[serde(default)]
    counted_through: String,
}

/// A stored message as the stream brought it: the message and its place (`stream::position`).
pub struct Delivered<'a> {
    pub post: &'a Message,
    pub change: &'a str,
}

/// The members of rooms as the projector last read them: which rows a run reads in the request that
/// reads its room. A wrong guess costs a second read, never a wrong count.
#[derive(Default)]
pub struct KnownMembers(Mutex<HashMap<RoomId, Vec<UserId>>>);

/// Rooms remembered before the memory starts again: a bound, not a cache policy.
const KNOWN_ROOMS: usize = 10_000;

impl KnownMembers {
    fn of(&self, room: &RoomId) -> Vec<UserId> {
        self.lock().get(room).cloned().unwrap_or_default()
    }

    fn remember(&self, room: &RoomId, members: &[UserId]) {
        let mut known = self.lock();
        if known.len() >= KNOWN_ROOMS {
            known.clear();
        }
        known.insert(room.clone(), members.to_vec());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, Vec<UserId>>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
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
}

impl Store {
    /// Writes `row` as the new state of `user`'s row, if the row is still at `seen_version`.
    fn row_put(&self, org: &OrgId, user: &UserId, row: &InboxRow, seen_version: u64) -> Result<Put> {
        let mut row = row.clone();
        row.version = seen_version + 1;
        // Rows written before the activity index have no index keys yet.
        row.activity_pk = keys::user_rooms_pk(org, user);
        if row.activity_sk.is_empty() {
            row.activity_sk = activity_sort_key(&row.last_activity_at, &row.room_id);
        }
        let unread = row.unread_count > 0;
        row.unread_pk = unread.then(|| row.activity_pk.clone());
        row.unread_sk = unread.then(|| row.activity_sk.clone());
        let condition = if seen_version == 0 {
            "attribute_exists(PK) AND (attribute_not_exists(version) OR version = :seen)"
        } else {
            "attribute_exists(PK) AND version = :seen"
        };
        Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(&keys::user_room(org, user, &row.room_id), &row)?))
            .condition_expression(condition)
            .expression_attribute_values(":seen", value(&seen_version)?)
            .build()
            .map_err(Error::internal)
    }

    /// Moves the room's message count by `by` for the changes up to `through`, if it is still at
    /// `seen` as read (`None`: anywhere before `through`); `Ok(false)` when it is not.
    async fn move_room_count(&self, room: &RoomId, by: i64, seen: Option<&str>, through: &str) -> Result<bool> {
        let update = self
            .update_item(&keys::room_count(room))
            .update_expression("ADD message_count :by SET counted_through = :through")
            .expression_attribute_values(":by", super::messages::number(by))
            .expression_attribute_values(":through", AttributeValue::S(through.to_owned()));
        // A count item from before places were kept has none: it takes what comes.
        let update = match seen {
            Some(seen) => update
                .condition_expression("counted_through = :seen")
                .expression_attribute_values(":seen", AttributeValue::S(seen.to_owned())),
            None => update.condition_expression("attribute_not_exists(counted_through) OR counted_through < :through"),
        };
        self.update_if(update).await
    }

    /// Messages of others than `user` counted after `after` (all when `None`) and up to `through`
    /// (their row's place): their unread count with their marker there.
    async fn count_unread(
        &self,
        room: &RoomId,
        user: &UserId,
        after: Option<&MessageId>,
        through: &str,
    ) -> Result<u64> {
        // Counted items sort between `COUNTED#` and `COUNTED$`; the marker's own message is read.
        let from =
            after.map_or_else(|| keys::COUNTED_PREFIX.to_owned(), |id| format!("{}\0", keys::counted(room, id).sk));
        let to = keys::COUNTED_END.to_owned();
        let mut start: Option<Item> = None;
        let mut count = 0u64;
        loop {
            let sent = self
                .client
                .query()
                .table_name(self.table())
                .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                // What the row has not taken yet is the projector's to add (counted before places
                // were kept: every row has it).
                .filter_expression("sender_id <> :me AND (attribute_not_exists(#change) OR #change <= :through)")
                .expression_attribute_names("#change", "change")
                .expression_attribute_values(":through", AttributeValue::S(through.to_owned()))
                .expression_attribute_values(":pk", AttributeValue::S(keys::room_pk(room)))
                .expression_attribute_values(":from", AttributeValue::S(from.clone()))
                .expression_attribute_values(":to", AttributeValue::S(to.clone()))
                .expression_attribute_values(":me", value(user)?)
                .select(aws_sdk_dynamodb::types::Select::Count)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let output = self.metered(sent, |o| o.consumed_capacity.units()).map_err(sdk_error)?;
            count += u64::try_from(output.count).unwrap_or_default();
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(count),
            }
        }
    }

    /// Counts stored messages in their rooms, once each: every member's row gets the newest as its
    /// last message (if newer), every other member one more unread for each after their marker, and a
    /// sender's marker moves to what they sent (what they sent, they have read). A room's messages
    /// (in stream order) are counted a run at a time: one read of the room, its count and the rows
    /// of the members `known` names for it (again, when they are not its members), the run's
    /// `COUNTED#` items, the count, then each row, all on their own.
    pub async fn project_stored(&self, posts: &[Delivered<'_>], known: &KnownMembers) -> Result<()> {
        let mut posts: Vec<&Delivered> = posts.iter().filter(|stored| stored.post.parent.is_none()).collect();
        posts.sort_by(|a, b| (&a.post.room_id, &a.change).cmp(&(&b.post.room_id, &b.change)));
        posts.dedup_by(|a, b| a.change == b.change);
        for run in posts.chunk_by(|a, b| a.post.room_id == b.post.room_id) {
            self.count_run(run, known).await?;
        }
        Ok(())
    }

    /// Counts `run` (messages of one room, in stream order).
    async fn count_run(&self, run: &[&Delivered<'_>], known: &KnownMembers) -> Result<()> {
        let (room_id, org) = (&run[0].post.room_id, &run[0].post.org_id);
        let mut guess = known.of(room_id);
        for _ in 0..ATTEMPTS {
            let mut wanted = vec![keys::room(room_id), keys::room_count(room_id)];
            wanted.extend(guess.iter().map(|user| keys::user_room(org, user, room_id)));
            let mut found = self.get_many(&wanted).await?.into_iter();
            let Some(room) = found.next().flatten().map(from_item::<Room>).transpose()? else { return Ok(()) };
            let count = found.next().flatten().map(from_item::<RoomCount>).transpose()?.unwrap_or_default();
            if room.room_user_ids != guess {
                // The room's first run here, or its members changed: read again, their rows.
                guess = room.room_user_ids;
                known.remember(room_id, &guess);
                continue;
            }
            let rows = found.map(|item| item.map(from_item::<InboxRow>).transpose()).collect::<Result<Vec<_>>>()?;
            let seen = &count.counted_through;
            let new: Vec<&Delivered> = run.iter().copied().filter(|stored| stored.change > seen.as_str()).collect();
            if let Some(last) = new.last() {
                // Each counted before any row takes it, so a recount never misses one a row has.
                let counted = new.iter().map(|stored| {
                    let counted =
                        Counted { sender_id: stored.post.sender_id.clone(), change: stored.change.to_owned() };
                    super::index::put_request(to_item(&keys::counted(room_id, &stored.post.id), &counted)?)
                });
                self.write_many(counted.collect::<Result<_>>()?).await?;
                let by = i64::try_from(new.len()).map_err(Error::internal)?;
                let at = Some(seen.as_str()).filter(|seen| !seen.is_empty());
                if !self.move_room_count(room_id, by, at, last.change).await? {
                    continue;
                }
            }
            // A row that has taken nothing yet (its member is new here) starts where the room's count was.
            let members = room.room_user_ids.iter().zip(rows);
            let counts: Vec<_> = members.map(|(user, row)| self.count_row(org, user, row, run, seen)).collect();
            return stream::iter(counts).buffer_unordered(ROWS_AT_ONCE).try_collect().await;
        }
        Err(Error::conflict("the room's count kept changing while messages were counted"))
    }

    /// Counts in `user`'s row (as read: `None` when they have none) what it has not taken of `run`,
    /// from the version read, reading it again when another write got there first.
    async fn count_row(
        &self,
        org: &OrgId,
        user: &UserId,
        mut row: Option<InboxRow>,
        run: &[&Delivered<'_>],
        room_seen: &str,
    ) -> Result<()> {
        let room_id = &run[0].post.room_id;
        for _ in 0..ATTEMPTS {
            let Some(current) = row else { return Ok(()) };
            let through = if current.counted_through.is_empty() { room_seen } else { &current.counted_through };
            let fresh: Vec<&Message> = run.iter().filter(|stored| stored.change > through).map(|s| s.post).collect();
            let (Some(last), false) = (run.last(), fresh.is_empty()) else {
                // The row took the whole run before: it was delivered again.
                return Ok(());
            };
            let mut new = fresh.iter().fold(current.clone(), |new, post| new.with_last_message(post));
            new.counted_through = last.change.to_owned();
            let own = fresh.iter().filter(|post| post.sender_id == *user).max_by(|a, b| a.id.cmp(&b.id));
            match own {
                Some(own) if current.is_unread(&own.id) => {
                    // Recounted from its own message: what the row had of others after it, and the
                    // run's. The row shows the newest message it had, so when that is older than its
                    // own there is none to read.
                    new.last_read_message_id = Some(own.id.clone());
                    new.read_at = Some(own.created_at.clone());
                    let in_run = fresh.iter().filter(|post| post.sender_id != *user && post.id > own.id);
                    let had_after = match &current.last_message {
                        Some(last) if last.message_id > own.id => {
                            self.count_unread(room_id, user, Some(&own.id), through).await?
                        }
                        _ => 0,
                    };
                    new.unread_count = had_after + in_run.count() as u64;
                }
                _ => {
                    let unread = fresh.iter().filter(|post| post.sender_id != *user && current.is_unread(&post.id));
                    new.unread_count += unread.count() as u64;
                }
            }
            if self.put_if(self.row_put(org, user, &new, current.version)?).await? {
                return Ok(());
            }
            // A reader's marker, or the membership, changed it: from what it is now.
            row = self.get::<InboxRow>(&keys::user_room(org, user, room_id)).await?;
        }
        Err(Error::conflict("the inbox kept changing while messages were counted"))
    }

    /// Takes a removed message out of its room's counts, once, then recounts the rows that could
    /// have counted it and shows the newest message left where it was the last one. The recounts are
    /// absolute, so a replayed removal leaves the rows as they are.
    pub async fn project_removed(&self, removed: &Delivered<'_>) -> Result<()> {
        let post = removed.post;
        if post.parent.is_some() {
            return Ok(());
        }
        let room_id = &post.room_id;
        // Out of the recounts first; the count takes the removal once, by its place.
        self.delete_many(&[keys::counted(room_id, &post.id)]).await?;
        self.move_room_count(room_id, -1, None, removed.change).await?;
        for _ in 0..ATTEMPTS {
            let Some(room) = self.get::<Room>(&keys::room(room_id)).await? else { return Ok(()) };
            let rows = self.member_rows(&room.org_id, room_id, &room.room_user_ids).await?;
            let shown = |row: &InboxRow| row.last_message.as_ref().is_some_and(|last| last.message_id == post.id);
            let mut newest = None;
            let mut items = Vec::new();
            for (user, row) in room.room_user_ids.iter().zip(rows) {
                let Some(row) = row else { continue };
                let mut new = row.clone();
                if shown(&row) {
                    if newest.is_none() {
                        newest = Some(self.newest_message(room_id).await?);
                    }
                    new.last_message = newest.clone().flatten().as_ref().map(LastMessage::of);
                }
                if *user != post.sender_id && row.is_unread(&post.id) {
                    let (after, through) = (row.last_read_message_id.as_ref(), &row.counted_through);
                    new.unread_count = self.count_unread(room_id, user, after, through).await?;
                }
                if new != row {
                    items.push(self.row_put(&room.org_id, user, &new, row.version)?);
                }
            }
            let written: Vec<bool> =
                stream::iter(items).map(|put| self.put_if(put)).buffer_unordered(ROWS_AT_ONCE).try_collect().await?;
            if written.into_iter().all(|written| written) {
                return Ok(());
            }
        }
        Err(Error::conflict("the inbox kept changing while a message was uncounted"))
    }

    /// The rows of `members` in the room, in their order (`None` for one without): their inbox and
    /// read state, in one read.
    pub async fn member_rows(&self, org: &OrgId, room: &RoomId, members: &[UserId]) -> Result<Vec<Option<InboxRow>>> {
        let wanted: Vec<keys::Key> = members.iter().map(|user| keys::user_room(org, user, room)).collect();
        let rows = self.get_many(&wanted).await?;
        rows.into_iter().map(|row| row.map(from_item).transpose()).collect()
    }

    /// An edited message's new text in the previews that show it.
    pub async fn project_edited(&self, post: &Message) -> Result<()> {
        if post.parent.is_some() {
            return Ok(());
        }
        let Some(room) = self.get::<Room>(&keys::room(&post.room_id)).await? else { return Ok(()) };
        for user in &room.room_user_ids {
            let update = self
                .update_item(&keys::user_room(&room.org_id, user, &room.room_id))
                .update_expression("SET last_message.preview = :preview")
                .condition_expression("last_message.message_id = :id")
                .expression_attribute_values(":preview", value(&LastMessage::of(post).preview)?)
                .expression_attribute_values(":id", value(&post.id)?);
            self.update_if(update).await?;
        }
        Ok(())
    }

    /// Sets `user`'s marker in the room at `message` (forwards or back) and recounts what is unread
    /// after it, in one transaction with the row's version as read. The row is the read state; the
    /// marker item records the member's own mark, which is what makes the room's `read_marker` event.
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
        for _ in 0..ATTEMPTS {
            let Some(row) = self.get::<InboxRow>(&keys::user_room(org, user, room)).await? else {
                return Err(Error::forbidden("You are not a member of this room"));
            };
            let mut new = row.clone();
            new.last_read_message_id = Some(message.clone());
            new.read_at = Some(marker.read_at.clone());
            new.unread_count = self.count_unread(room, user, Some(message), &row.counted_through).await?;
            let row_put = TransactWriteItem::builder().put(self.row_put(org, user, &new, row.version)?).build();
            let items = vec![row_put, self.put(&keys::read_marker(room, user), &marker)?];
            if self.transact(items).await?.is_ok() {
                return Ok(marker);
            }
        }
        Err(Error::conflict("The room kept changing while it was marked read; try again"))
    }

    /// A page of `user`'s rooms with their rows, in `order`; with `unread_only`, rooms with unread
    /// messages only (by creation, a page may then hold fewer than asked, with `next` to go on); 403
    /// unless `user` is a member of the org. One Query, and one BatchGet of the page's rooms and the
    /// membership, checked before anything read is shown.
    pub async fn inbox(
        &self,
        org: &OrgId,
        user: &UserId,
        order: InboxOrder,
        unread_only: bool,
        page: &PageRequest,
    ) -> Result<Page<(Room, InboxRow)>> {
        let pk = keys::user_rooms_pk(org, user);
        let rows = match order {
            InboxOrder::Created if !unread_only => {
                self.query_page(pk, keys::ROOM_PREFIX, Order::NewestFirst, page).await?
            }
            _ => self.activity_page(&pk, order, unread_only, page).await?,
        };
        let rows = rows.try_map(from_item::<InboxRow>)?;
        let (member, joined) =
            self.joined_with(vec![keys::member(org, user)], rows, |row| keys::room(&row.room_id)).await?;
        if super::rooms::current_member(member.into_iter().next().flatten())?.is_none() {
            return Err(Error::forbidden("You are not a member of this organization"));
        }
        joined.try_map(|(row, room)| Ok((room, row)))
    }

    /// One Query of the rows: by activity on an index (of every row, or of the rows with unread
    /// messages), or by room on the table with a filter.
    async fn activity_page(
        &self,
        pk: &str,
        order: InboxOrder,
        unread_only: bool,
        page: &PageRequest,
    ) -> Result<Page<Item>> {
        let index = match (order, unread_only) {
            (InboxOrder::Activity, false) => Some((ACTIVITY_INDEX, ACTIVITY_PK, ACTIVITY_SK)),
            (InboxOrder::Activity, true) => Some((UNREAD_INDEX, UNREAD_PK, UNREAD_SK)),
            (InboxOrder::Created, _) => None,
        };
        let direction = page.cursor.as_ref().map_or(Direction::After, |c| c.direction);
        let start = match (&page.cursor, index) {
            (None, _) => None,
            (Some(cursor), Some((_, index_pk, index_sk))) => {
                let room = room_of_sort_key(&cursor.sort_key).ok_or_else(|| Error::bad_request("invalid cursor"))?;
                let mut key =
                    super::key_item(&keys::Key { pk: pk.to_owned(), sk: format!("{}{room}", keys::ROOM_PREFIX) });
                key.insert(index_pk.into(), AttributeValue::S(pk.to_owned()));
                key.insert(index_sk.into(), AttributeValue::S(cursor.sort_key.clone()));
                Some(key)
            }
            (Some(cursor), None) if cursor.sort_key.starts_with(keys::ROOM_PREFIX) => {
                Some(super::key_item(&keys::Key { pk: pk.to_owned(), sk: cursor.sort_key.clone() }))
            }
            (Some(_), None) => return Err(Error::bad_request("invalid cursor")),
        };
        let query = self
            .client
            .query()
            .table_name(self.table())
            .scan_index_forward(direction == Direction::Before)
            .limit(i32::try_from(page.limit + 1).map_err(Error::internal)?)
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()));
        let (query, sort_name) = match index {
            Some((name, index_pk, index_sk)) => {
                (query.index_name(name).key_condition_expression(format!("{index_pk} = :pk")), index_sk)
            }
            None => (
                query
                    .consistent_read(true)
                    .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
                    .expression_attribute_values(":prefix", AttributeValue::S(keys::ROOM_PREFIX.to_owned()))
                    .filter_expression("unread_count > :zero")
                    .expression_attribute_values(":zero", value(&0u64)?),
                keys::SK,
            ),
        };
        let output = self.metered(query.send().await, |o| o.consumed_capacity.units()).map_err(sdk_error)?;
        let evaluated_past = output.last_evaluated_key.filter(|key| !key.is_empty());
        Ok(super::paged(output.items.unwrap_or_default(), page, sort_name, evaluated_past))
    }

    /// How many of `user`'s rooms have unread messages, and how many messages in all.
    pub async fn unread_totals(&self, org: &OrgId, user: &UserId) -> Result<UnreadTotals> {
        let rows = self.query_all(keys::user_rooms_pk(org, user), keys::ROOM_PREFIX, true).await?;
        let mut totals = UnreadTotals::default();
        for row in rows.into_iter().map(from_item::<InboxRow>) {
            let unread = row?.unread_count;
            totals.rooms += u64::from(unread > 0);
            totals.messages += unread;
        }
        Ok(totals)
    }
}
