//! Each member's inbox: one row a room (`ORG#{org}#USER#{user}` / `ROOM#{room}`) with the room's last
//! message, when it was last active, the member's read marker and their unread count.
//!
//! Rows are written with the room's membership; everything after that is kept by the projector from
//! the table's stream, a run of a room's new messages at a time. A message is counted once: its
//! `COUNTED#` item is written in the same transaction as the rows it changes, and each row changes
//! only from the version that was read, so a replayed record or a race with a reader's marker makes
//! the projector read again, never count twice. A member's unread count is the number of counted
//! messages of other members after their marker, which is also how a marker moved by hand, and a
//! row that showed a deleted message, are recounted.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnConsumedCapacity, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::messages::value;
use super::meter::Consumed;
use super::{Item, Order, Store, failed_at, from_item, keys, sdk_error, to_item};
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
/// DynamoDB's limit on the items of one transaction.
const TRANSACTION_ITEMS: usize = 100;
/// The most messages counted in one transaction; with a row for each of a room's members, a small
/// room's run is one transaction.
const RUN: usize = 25;

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

/// A message counted in its room's unread counts. A room whose rows do not fit in one transaction
/// with the run is counted a part of its members at a time: while `pending`, `applied` names the
/// members whose rows have it, and each part applies only to the `version` it read.
#[derive(Clone, Serialize, Deserialize)]
struct Counted {
    sender_id: UserId,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pending: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "serde_dynamo::string_set")]
    applied: Vec<String>,
    #[serde(default)]
    version: u64,
}

impl Counted {
    /// Whether `user`'s row still lacks it (`None`: not counted at all yet).
    fn lacks(counted: Option<&Self>, user: &UserId) -> bool {
        counted.is_none_or(|counted| !counted.applied.iter().any(|applied| applied == user.as_str()))
    }
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
    fn row_put(&self, org: &OrgId, user: &UserId, row: &InboxRow, seen_version: u64) -> Result<TransactWriteItem> {
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
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(&keys::user_room(org, user, &row.room_id), &row)?))
            .condition_expression(condition)
            .expression_attribute_values(":seen", value(&seen_version)?)
            .build()
            .map_err(Error::internal)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The room's message count moved by `by` (in the transaction that counts or uncounts a message).
    fn room_count(&self, room: &RoomId, by: i64) -> Result<TransactWriteItem> {
        super::messages::tx_update(
            self.update_builder(&keys::room_count(room))
                .update_expression("ADD message_count :by")
                .expression_attribute_values(":by", super::messages::number(by)),
        )
    }

    /// Messages of others than `user` counted after `after` (all when `None`): their unread count
    /// with their marker there.
    async fn count_unread(&self, room: &RoomId, user: &UserId, after: Option<&MessageId>) -> Result<u64> {
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
                // A message still being counted in part of the rows is counted by the run that counts it.
                .filter_expression("sender_id <> :me AND attribute_not_exists(pending)")
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
    /// sender's marker moves to what they sent (what they sent, they have read). A room's messages are
    /// counted a run at a time: one read of the room with the rows of the members `known` names for
    /// it (again, when they are not its members), one transaction.
    pub async fn project_stored(&self, posts: &[Message], known: &KnownMembers) -> Result<()> {
        let mut posts: Vec<&Message> = posts.iter().filter(|post| post.parent.is_none()).collect();
        posts.sort_by(|a, b| (&a.room_id, &a.id).cmp(&(&b.room_id, &b.id)));
        posts.dedup_by(|a, b| a.id == b.id);
        for room in posts.chunk_by(|a, b| a.room_id == b.room_id) {
            for run in room.chunks(RUN) {
                self.count_run(run, known).await?;
            }
        }
        Ok(())
    }

    /// Counts `run` (messages of one room, oldest first), a transaction's worth of members at a time.
    async fn count_run(&self, run: &[&Message], known: &KnownMembers) -> Result<()> {
        let (room_id, org) = (&run[0].room_id, &run[0].org_id);
        let mut guess = known.of(room_id);
        let mut conflicts = 0;
        while conflicts < ATTEMPTS {
            let mut wanted = vec![keys::room(room_id)];
            wanted.extend(run.iter().map(|post| keys::counted(room_id, &post.id)));
            wanted.extend(guess.iter().map(|user| keys::user_room(org, user, room_id)));
            let mut found = self.get_many(&wanted).await?.into_iter();
            let Some(room) = found.next().flatten().map(from_item::<Room>).transpose()? else { return Ok(()) };
            if room.room_user_ids != guess {
                // The room's first run here, or its members changed: read again, their rows.
                guess = room.room_user_ids;
                known.remember(room_id, &guess);
                conflicts += 1;
                continue;
            }
            let members = &room.room_user_ids;
            let counted = found.by_ref().take(run.len()).map(|item| item.map(from_item::<Counted>).transpose());
            let todo: Vec<(&Message, Option<Counted>)> = run
                .iter()
                .copied()
                .zip(counted.collect::<Result<Vec<_>>>()?)
                .filter(|(_, counted)| counted.as_ref().is_none_or(|counted| counted.pending))
                .collect();
            let rows = found.map(|item| item.map(from_item::<InboxRow>).transpose()).collect::<Result<Vec<_>>>()?;
            if todo.is_empty() {
                return Ok(());
            }
            // What each member still lacks, and the members whose rows fit this transaction.
            let lacking = |user: &UserId| -> Vec<&Message> {
                todo.iter()
                    .filter(|(_, counted)| Counted::lacks(counted.as_ref(), user))
                    .map(|(post, _)| *post)
                    .collect()
            };
            let mut budget = TRANSACTION_ITEMS - todo.len() - 1;
            let mut part: Vec<(&UserId, Option<&InboxRow>, Vec<&Message>)> = Vec::new();
            let mut complete = true;
            for (user, row) in members.iter().zip(&rows) {
                let lacks = lacking(user);
                if lacks.is_empty() {
                    continue;
                }
                if budget == 0 {
                    complete = false;
                    break;
                }
                budget -= 1;
                part.push((user, row.as_ref(), lacks));
            }
            let applied: Vec<&str> = part.iter().map(|(user, _, _)| user.as_str()).collect();

            let mut items = Vec::new();
            let mut newly_counted = 0;
            for (post, counted) in &todo {
                let key = keys::counted(room_id, &post.id);
                items.push(match counted {
                    None => {
                        newly_counted += 1;
                        let applied =
                            if complete { Vec::new() } else { applied.iter().map(|u| (*u).to_owned()).collect() };
                        let counted =
                            Counted { sender_id: post.sender_id.clone(), pending: !complete, applied, version: 0 };
                        self.put_new(&key, &counted)?
                    }
                    Some(counted) => self.counted_part(&key, counted, complete, &applied)?,
                });
            }
            if newly_counted > 0 {
                items.push(self.room_count(room_id, newly_counted)?);
            }
            for (user, row, lacks) in &part {
                let Some(row) = row else { continue };
                let own = lacks.iter().filter(|post| post.sender_id == **user).max_by(|a, b| a.id.cmp(&b.id));
                let mut new = lacks.iter().fold((*row).clone(), |new, post| new.with_last_message(post));
                match own {
                    Some(own) if row.is_unread(&own.id) => {
                        // Recounted from its own message: counted messages of others after it, and the
                        // run's that are not counted for everyone yet. The row shows the newest message
                        // counted in it, so when that is older than its own there is none to read.
                        new.last_read_message_id = Some(own.id.clone());
                        new.read_at = Some(own.created_at.clone());
                        let in_run = todo.iter().filter(|(post, _)| post.sender_id != **user && post.id > own.id);
                        let counted_after = match &row.last_message {
                            Some(last) if last.message_id > own.id => {
                                self.count_unread(room_id, user, Some(&own.id)).await?
                            }
                            _ => 0,
                        };
                        new.unread_count = counted_after + in_run.count() as u64;
                    }
                    _ => {
                        let unread = lacks.iter().filter(|post| post.sender_id != **user && row.is_unread(&post.id));
                        new.unread_count += unread.count() as u64;
                    }
                }
                if new != **row {
                    items.push(self.row_put(&room.org_id, user, &new, row.version)?);
                }
            }
            match self.transact(items).await? {
                Ok(()) if complete => return Ok(()),
                Ok(()) => {}
                // Another run, or a reader's marker, got there first: read again.
                Err(_) => conflicts += 1,
            }
        }
        Err(Error::conflict("the inbox kept changing while messages were counted"))
    }

    /// The update of a message's `Counted` item that applies one more part of its room's members to
    /// it (and clears it once every member has it), if it is still as read.
    fn counted_part(
        &self,
        key: &keys::Key,
        seen: &Counted,
        complete: bool,
        applied: &[&str],
    ) -> Result<TransactWriteItem> {
        let update = self
            .update_builder(key)
            .condition_expression("version = :seen")
            .expression_attribute_values(":seen", value(&seen.version)?)
            .expression_attribute_values(":next", value(&(seen.version + 1))?);
        let update = if complete {
            update.update_expression("SET version = :next REMOVE pending, applied")
        } else {
            update
                .update_expression("SET version = :next ADD applied :applied")
                .expression_attribute_values(":applied", super::messages::string_set(applied))
        };
        super::messages::tx_update(update)
    }

    /// Takes a removed message out of its room's counts, once, then recounts the rows that could
    /// have counted it and shows the newest message left where it was the last one. The recounts are
    /// absolute, so a replayed removal leaves the rows as they are.
    pub async fn project_removed(&self, post: &Message) -> Result<()> {
        if post.parent.is_some() {
            return Ok(());
        }
        let room_id = &post.room_id;
        let uncount = vec![
            super::tx::conditional_delete(self, &keys::counted(room_id, &post.id))?,
            self.room_count(room_id, -1)?,
        ];
        if let Err(reasons) = self.transact(uncount).await?
            && !failed_at(&reasons, 0)
        {
            return Err(Error::internal_msg("uncounting a message failed a condition it cannot fail"));
        }
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
                    new.unread_count = self.count_unread(room_id, user, row.last_read_message_id.as_ref()).await?;
                }
                if new != row {
                    items.push(self.row_put(&room.org_id, user, &new, row.version)?);
                }
            }
            let mut settled = true;
            for part in items.chunks(TRANSACTION_ITEMS) {
                settled &= self.transact(part.to_vec()).await?.is_ok();
            }
            if settled {
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
            new.unread_count = self.count_unread(room, user, Some(message)).await?;
            let items =
                vec![self.row_put(org, user, &new, row.version)?, self.put(&keys::read_marker(room, user), &marker)?];
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
