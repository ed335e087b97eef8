//! Each room's event log: what a reconnecting client catches up from, one copy of each event
//! whatever the room's size. An entry (`ROOM#{room}` / `LOG#{seq}`) is one room event numbered 1,
//! 2, 3 ... in its room; the head (`ROOM#{room}` / `LOG`) says how far the log is published: its
//! last `seq`, when it last moved (`at_ms`), and the room's message count, which moves with the
//! message events it publishes.
//!
//! Each entry is kept once and in order under AWS's faults, by conditions on what the entries and
//! the head hold, never on stream sequence numbers (they order one shard only):
//! - An entry is put only where its number is free, by a writer that put or found the one before
//!   it: the log has no gap.
//!   The head then moves over the new entries only from where it was read, so each entry's count is
//!   taken once.
//! - A change delivered again (a retried batch, or another shard's consumer of the same room after a
//!   partition split) is found by its stream record id among the log's newest entries and keeps its
//!   numbers. The log is read back only when the head moved since the change was made, or when a put
//!   finds its number taken.
//! - Entries past the head (their writer stopped between the put and the head) are taken over by
//!   the next writer: stamped with the time it publishes them, then the head moves over them.
//!
//! Readers see entries up to the head only, and an entry's `at_ms` is when it was published, give or
//! take `PUBLISH_WINDOW_MS` (what one write may take, and clocks may differ): sync compares it with
//! the time of the caller's previous sync.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::inbox::InboxRow;
use super::messages::value;
use super::meter::Consumed;
use super::{Store, from_item, keys, sdk_error};
use crate::error::{Error, Result};
use crate::ids::{MessageId, OrgId, RoomId, UserId};
use crate::time::{epoch_secs, now_ms};

/// How long the log keeps an event; a sync token older than this is refused (410).
pub const LOG_RETENTION_SECS: u64 = 7 * 24 * 3600;
/// How much later than its `at_ms` an entry may become visible as published: a write gives up
/// after 5 s (the SDK's budget in AWS), and clocks differ by less than the rest.
pub const PUBLISH_WINDOW_MS: i64 = 10_000;
/// Tries at logging a run: only another writer of the same room makes one fail.
const ATTEMPTS: usize = 8;
/// Entries read a page at a time from the log's end.
const TAIL_PAGE: usize = 25;
/// Rooms read at once by a sync.
const ROOMS_AT_ONCE: usize = 16;

#[derive(Clone, Debug, Default, Deserialize)]
struct LogHead {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    at_ms: i64,
    #[serde(default)]
    message_count: i64,
    /// The room's members as of the last change logged: whom its room events, and the next
    /// change's, are for, however late they are logged.
    #[serde(default)]
    members: Vec<UserId>,
    /// The room's version those members are of: a room change delivered late leaves newer ones.
    #[serde(default)]
    members_version: u64,
}

/// One room event in the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub room_id: RoomId,
    pub seq: u64,
    pub at_ms: i64,
    /// The stream record it is of, and which of its events it is: a change delivered again finds
    /// its entries by them.
    pub change: String,
    #[serde(default)]
    pub event_index: usize,
    /// The event as pushed, without its `seq`.
    pub event: String,
    /// Who it is for: the room's members when it happened (as of its place in the stream, not when
    /// it was logged), or whom it names (a removal's is also for whoever it removed).
    pub audience: Vec<UserId>,
    /// How the room's message count moves with it: a message stored 1, deleted -1.
    #[serde(default)]
    pub counts: i64,
    pub ttl: u64,
}

impl LogEntry {
    /// The event with its `seq`: what a connection is sent and what a sync answers.
    pub fn event_with_seq(&self) -> Result<Value> {
        let mut event: Value = serde_json::from_str(&self.event).map_err(Error::internal)?;
        event["seq"] = self.seq.into();
        Ok(event)
    }
}

/// A room event to log: the event (without `seq`), whom it is for when not the room's members, and
/// how it moves the room's message count.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub payload: Value,
    pub audience: Option<Vec<UserId>>,
    pub counts: i64,
}

/// A change's room events to log: its stream record id, when it was made (epoch ms, 0 when not
/// known) and its events.
#[derive(Clone, Debug)]
pub struct Logging {
    pub change: String,
    pub created_ms: i64,
    pub events: Vec<NewEvent>,
}

/// A place in a member's catch-up: events published after `at_ms` (give or take the window), but
/// for the rooms named, whose events up to their `seq` the member has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncToken {
    pub at_ms: i64,
    pub seen: Vec<(RoomId, u64)>,
}

impl SyncToken {
    /// `{at_ms}` then `~{room}:{seq}` for each room seen near it.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = || Error::bad_request("since is not a sync token");
        let mut parts = text.split('~');
        let at_ms = parts.next().and_then(|at| at.parse().ok()).ok_or_else(invalid)?;
        let seen = parts
            .map(|part| {
                let (room, seq) = part.split_once(':').ok_or_else(invalid)?;
                Ok((RoomId::parse(room).map_err(|_| invalid())?, seq.parse().map_err(|_| invalid())?))
            })
            .collect::<Result<_>>()?;
        Ok(Self { at_ms, seen })
    }

    /// 410 once events after it may have expired: the client reloads instead.
    pub fn check_retained(&self) -> Result<()> {
        let oldest = now_ms() - i64::try_from(LOG_RETENTION_SECS * 1000).map_err(Error::internal)?;
        if self.at_ms < oldest {
            return Err(Error::Gone("the sync token is older than the 7 days of events kept: reload".into()));
        }
        Ok(())
    }

    fn seen(&self, room: &RoomId) -> u64 {
        self.seen.iter().find(|(seen, _)| seen == room).map_or(0, |(_, seq)| *seq)
    }
}

impl std::fmt::Display for SyncToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.at_ms)?;
        for (room, seq) in &self.seen {
            write!(f, "~{room}:{seq}")?;
        }
        Ok(())
    }
}

/// A room a member left: their sync still holds what they were sent of it, its removal included,
/// for as long as the log keeps events.
#[derive(Serialize, Deserialize)]
pub(crate) struct LeftRoom {
    room_id: RoomId,
    ttl: u64,
}

impl LeftRoom {
    pub(crate) fn new(room: &RoomId) -> Self {
        Self { room_id: room.clone(), ttl: epoch_secs() + LOG_RETENTION_SECS }
    }
}

/// What a room's log has counted of its messages lately (see `Store::counted_since`).
#[derive(Default)]
pub(crate) struct Counted {
    pub seen: u64,
    pub by_message: HashMap<MessageId, i64>,
    pub pending: i64,
}

/// A page of a member's catch-up: the events, in the order they were published, and the token to
/// go on from (the next page's when `more`).
pub struct SyncPage {
    pub events: Vec<Value>,
    pub token: SyncToken,
    pub more: bool,
}

impl Store {
    /// Logs a run of `room`'s changes (in the order the stream gave them), each change's events
    /// numbered together, and publishes them: the entries of each change, in order, whether this
    /// call or an earlier delivery of the same change numbered them. `members_now`: the room's
    /// members as the run's first change (the room's own item) leaves them; otherwise they are the
    /// head's, as the last change logged left them. One read of the head and one write an entry and
    /// one of the head while the log keeps up.
    pub async fn log_run(
        &self,
        room: &RoomId,
        members_now: Option<(&[UserId], u64)>,
        run: &[Logging],
    ) -> Result<Vec<Vec<LogEntry>>> {
        let earliest = run.iter().map(|change| change.created_ms).min().unwrap_or_default();
        let mut read_back = false;
        'attempt: for _ in 0..ATTEMPTS {
            let mut head: LogHead = self.get(&keys::log_head(room)).await?.unwrap_or_default();
            match members_now {
                Some((members, version)) if version >= head.members_version => {
                    (head.members, head.members_version) = (members.to_vec(), version);
                }
                None if head.members.is_empty() => {
                    if let Some(now) = self.get::<crate::model::Room>(&keys::room(room)).await? {
                        (head.members, head.members_version) = (now.room_user_ids, now.version);
                    }
                }
                _ => {}
            }
            // Only a head that moved since the run's first change was made can have logged some of it.
            read_back |= head.at_ms + PUBLISH_WINDOW_MS >= earliest;
            let tail = match read_back {
                true => self.log_tail(room, earliest - PUBLISH_WINDOW_MS, head.seq).await?,
                false => Vec::new(),
            };
            let Numbered { mut publish, fresh, mut logged, end, at_ms } = number(room, &head, &tail, run);
            for entry in &mut publish {
                if !self.restamp(entry, at_ms).await? {
                    // Another writer published it meanwhile: from what the log holds now.
                    read_back = true;
                    continue 'attempt;
                }
                entry.at_ms = at_ms;
            }
            for entry in &fresh {
                if !self.put_if(self.new_item(&keys::log_entry(room, entry.seq), entry)?).await? {
                    // Another writer took the number: read the log back and go on after it.
                    read_back = true;
                    continue 'attempt;
                }
            }
            // Published well within the window sync allows, or stamped anew: writes that took long
            // leave their entries past the head for the next attempt.
            if now_ms() - at_ms > PUBLISH_WINDOW_MS / 4 {
                read_back = true;
                continue;
            }
            let moved = end > head.seq || members_now.is_some();
            if moved && !self.move_head(room, &head, end, at_ms, &publish, &fresh).await? {
                read_back = true;
                continue;
            }
            for entry in logged.iter_mut().flatten().filter(|entry| entry.seq > head.seq) {
                entry.at_ms = at_ms;
            }
            return Ok(logged);
        }
        Err(Error::Unavailable("logging a room's events kept conflicting".into()))
    }

    /// Moves the head from where it was read to `end`, published at `at_ms`, with the message count
    /// moved by what the entries it passes count and the members they left; `Ok(false)` when
    /// another writer moved it first.
    async fn move_head(
        &self,
        room: &RoomId,
        head: &LogHead,
        end: u64,
        at_ms: i64,
        published: &[LogEntry],
        fresh: &[LogEntry],
    ) -> Result<bool> {
        let counts: i64 = published.iter().chain(fresh).map(|entry| entry.counts).sum();
        let update = self
            .update_item(&keys::log_head(room))
            .update_expression(
                "SET seq = :end, at_ms = :at, members = :members, members_version = :version ADD message_count :counts",
            )
            .expression_attribute_values(":members", value(&head.members)?)
            .expression_attribute_values(":version", value(&head.members_version)?)
            .expression_attribute_values(":end", value(&end)?)
            .expression_attribute_values(":at", value(&at_ms)?)
            .expression_attribute_values(":counts", value(&counts)?);
        let update = if head.seq == 0 {
            update.condition_expression("attribute_not_exists(seq) OR seq = :seen")
        } else {
            update.condition_expression("seq = :seen")
        };
        self.update_if(update.expression_attribute_values(":seen", value(&head.seq)?)).await
    }

    /// An entry past the head, stamped with the time it is published at, if it still holds the time
    /// it was read with (another writer that published it first changed nothing of it since, or
    /// its stamp is left alone); `Ok(false)` when it does not.
    async fn restamp(&self, entry: &LogEntry, at_ms: i64) -> Result<bool> {
        let update = self
            .update_item(&keys::log_entry(&entry.room_id, entry.seq))
            .update_expression("SET at_ms = :at")
            .condition_expression("at_ms = :read")
            .expression_attribute_values(":at", value(&at_ms)?)
            .expression_attribute_values(":read", value(&entry.at_ms)?);
        self.update_if(update).await
    }

    /// The log's newest entries, newest first: at least a page, back to the head (`published`), and
    /// back to the first published before `since_ms`.
    async fn log_tail(&self, room: &RoomId, since_ms: i64, published: u64) -> Result<Vec<LogEntry>> {
        let mut entries: Vec<LogEntry> = Vec::new();
        let mut start = None;
        loop {
            let sort = Some(("begins_with(SK, :sk)", keys::LOG_PREFIX.to_owned()));
            let (items, next) = self.query_limited(keys::room_pk(room), sort, false, start, TAIL_PAGE).await?;
            entries.extend(items.into_iter().map(from_item::<LogEntry>).collect::<Result<Vec<_>>>()?);
            match next {
                Some(next)
                    if entries.last().is_some_and(|oldest| oldest.at_ms >= since_ms || oldest.seq > published) =>
                {
                    start = Some(next)
                }
                _ => return Ok(entries),
            }
        }
    }

    /// The room's messages as the log's head counts them.
    pub(crate) fn message_count_of(head: Option<super::Item>) -> Result<u64> {
        let head: LogHead = head.map(from_item).transpose()?.unwrap_or_default();
        Ok(u64::try_from(head.message_count).unwrap_or_default())
    }

    /// `user`'s room events after `since` across their rooms, in the order published, `limit` at a
    /// time; without `since`, none and the token of "from now on". One Query of their rows, one
    /// batch read of their rooms' heads, then one Query for each room published since.
    pub async fn sync(&self, org: &OrgId, user: &UserId, since: Option<&SyncToken>, limit: usize) -> Result<SyncPage> {
        let now = now_ms();
        let pk = keys::user_rooms_pk(org, user);
        let (rows, left) = tokio::try_join!(
            self.query_all(pk.clone(), keys::ROOM_PREFIX, true),
            self.query_all(pk, keys::LEFT_PREFIX, true)
        )?;
        let mut ids: Vec<RoomId> =
            rows.into_iter().map(from_item::<InboxRow>).map(|row| row.map(|row| row.room_id)).collect::<Result<_>>()?;
        // Rooms left (and not joined again), while their events are kept; DynamoDB deletes expired items late.
        for left in left.into_iter().map(from_item::<LeftRoom>) {
            let left = left?;
            if left.ttl > epoch_secs() && !ids.contains(&left.room_id) {
                ids.push(left.room_id);
            }
        }
        let heads: Vec<keys::Key> = ids.iter().map(keys::log_head).collect();
        let heads = self.get_many(&heads).await?;
        let heads: Vec<LogHead> = heads
            .into_iter()
            .map(|head| head.map(from_item).transpose().map(Option::unwrap_or_default))
            .collect::<Result<_>>()?;
        let rooms: Vec<(&RoomId, &LogHead)> = ids.iter().zip(&heads).collect();
        let Some(since) = since else {
            return Ok(SyncPage { events: Vec::new(), token: token_at(now, &rooms, &HashMap::new()), more: false });
        };
        since.check_retained()?;
        let bound = since.at_ms - PUBLISH_WINDOW_MS;
        let reads: Vec<_> = rooms
            .iter()
            .filter(|(room, head)| head.at_ms > bound && head.seq > since.seen(room))
            .map(|(room, head)| {
                let wanted = move |entry: &LogEntry| entry.audience.contains(user);
                self.published(room, (since.seen(room), head.seq), bound, limit + 1, wanted)
            })
            .collect();
        let read: Vec<Vec<LogEntry>> = stream::iter(reads).buffer_unordered(ROOMS_AT_ONCE).try_collect().await?;
        let mut entries: Vec<LogEntry> = read.into_iter().flatten().collect();
        entries.sort_by(|a, b| (a.at_ms, &a.room_id, a.seq).cmp(&(b.at_ms, &b.room_id, b.seq)));
        let more = entries.len() > limit;
        entries.truncate(limit);
        let mut returned: HashMap<RoomId, u64> = HashMap::new();
        for entry in &entries {
            let seq = returned.entry(entry.room_id.clone()).or_default();
            *seq = (*seq).max(entry.seq);
        }
        let token = if more {
            // The next page: the same window, past what this one holds.
            let mut seen = since.seen.clone();
            for (room, seq) in returned {
                match seen.iter_mut().find(|(seen, _)| *seen == room) {
                    Some(seen) => seen.1 = seq,
                    None => seen.push((room, seq)),
                }
            }
            SyncToken { at_ms: since.at_ms, seen }
        } else {
            token_at(now, &rooms, &returned)
        };
        let events = entries.iter().map(LogEntry::event_with_seq).collect::<Result<_>>()?;
        Ok(SyncPage { events, token, more })
    }

    /// The room's published entries after `after` up to `head` and published after `bound` that
    /// are `wanted`, oldest first, at most `limit`. A room the caller had (`after` > 0) is read on
    /// from there; another back from the head to the bound (an entry's time grows with its
    /// number), so a room costs what it published since, however long its log.
    async fn published(
        &self,
        room: &RoomId,
        (after, head): (u64, u64),
        bound: i64,
        limit: usize,
        wanted: impl Fn(&LogEntry) -> bool,
    ) -> Result<Vec<LogEntry>> {
        let now = epoch_secs();
        let onward = after > 0;
        let (mut found, mut start) = (Vec::new(), None);
        'read: loop {
            let sent = self
                .client
                .query()
                .table_name(self.table())
                .key_condition_expression("PK = :pk AND SK BETWEEN :from AND :to")
                .expression_attribute_values(":pk", AttributeValue::S(keys::room_pk(room)))
                .expression_attribute_values(":from", AttributeValue::S(keys::log_entry(room, after + 1).sk))
                .expression_attribute_values(":to", AttributeValue::S(keys::log_entry(room, head).sk))
                .scan_index_forward(onward)
                .consistent_read(true)
                .limit(i32::try_from(if onward { limit } else { TAIL_PAGE * 4 }).map_err(Error::internal)?)
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let output = self.metered(sent, |o| o.consumed_capacity.units()).map_err(sdk_error)?;
            for entry in output.items.unwrap_or_default().into_iter().map(from_item::<LogEntry>) {
                let entry = entry?;
                if !onward && entry.at_ms <= bound {
                    break 'read;
                }
                if entry.ttl > now && entry.at_ms > bound && wanted(&entry) {
                    found.push(entry);
                }
            }
            match output.last_evaluated_key.filter(|key| !key.is_empty()) {
                Some(key) if !onward || found.len() < limit => start = Some(key),
                _ => break,
            }
        }
        if !onward {
            found.reverse();
        }
        found.truncate(limit);
        Ok(found)
    }

    /// How far the room's log is published (the head's `seq`), how its entries since `since_ms`
    /// (and those past the head, which the next writer publishes) moved the message count, by
    /// message (1: counted; 0: counted and taken back), and how much of that the head has yet to
    /// take (what is past it).
    pub(crate) async fn counted_since(&self, room: &RoomId, since_ms: i64) -> Result<Counted> {
        let head: LogHead = self.get(&keys::log_head(room)).await?.unwrap_or_default();
        let mut counted = Counted { seen: head.seq, ..Counted::default() };
        for entry in self.log_tail(room, since_ms, head.seq).await?.iter().filter(|entry| entry.counts != 0) {
            let event: Value = serde_json::from_str(&entry.event).map_err(Error::internal)?;
            if let Some(id) = event["data"]["message_id"].as_str().and_then(|id| MessageId::parse(id).ok()) {
                *counted.by_message.entry(id).or_default() += entry.counts;
            }
            if entry.seq > head.seq {
                counted.pending += entry.counts;
            }
        }
        Ok(counted)
    }

    /// Sets the head's message count to `count`, the room's messages counted after the head was
    /// read at `seen`; `Ok(false)` when it moved meanwhile (count again).
    pub(crate) async fn set_message_count(&self, room: &RoomId, seen: u64, count: u64) -> Result<bool> {
        let update = self
            .update_item(&keys::log_head(room))
            .update_expression("SET message_count = :count")
            .condition_expression("attribute_not_exists(seq) OR seq = :seen")
            .expression_attribute_values(":count", value(&count)?)
            .expression_attribute_values(":seen", value(&seen)?);
        self.update_if(update).await
    }
}

/// A run numbered against the head and the log's tail as read: the entries past the head to
/// publish with it, the new entries to put, each change's entries in event order, the last number
/// and the time they are published at.
struct Numbered {
    publish: Vec<LogEntry>,
    fresh: Vec<LogEntry>,
    logged: Vec<Vec<LogEntry>>,
    end: u64,
    at_ms: i64,
}

/// Numbers `run` after what the log holds: a change found in `tail` keeps its entries, and what an
/// earlier delivery did not log of it (it stopped part way) goes after everything logged since.
fn number(room: &RoomId, head: &LogHead, tail: &[LogEntry], run: &[Logging]) -> Numbered {
    // Never earlier than what is published, nor than what waits past the head: a room's times grow
    // with its numbers.
    let stamped = tail.iter().map(|entry| entry.at_ms).max().unwrap_or_default();
    let at_ms = now_ms().max(head.at_ms).max(stamped);
    let ttl = u64::try_from(at_ms / 1000).unwrap_or_default() + LOG_RETENTION_SECS;
    let mut publish: Vec<LogEntry> = tail.iter().filter(|entry| entry.seq > head.seq).cloned().collect();
    publish.sort_by_key(|entry| entry.seq);
    let mut end = publish.last().map_or(head.seq, |entry| entry.seq);
    let (mut fresh, mut logged) = (Vec::new(), Vec::with_capacity(run.len()));
    for change in run {
        let mut entries: Vec<LogEntry> = tail.iter().filter(|entry| entry.change == change.change).cloned().collect();
        for (index, event) in change.events.iter().enumerate() {
            if entries.iter().any(|entry| entry.event_index == index) {
                continue;
            }
            end += 1;
            let entry = LogEntry {
                room_id: room.clone(),
                seq: end,
                at_ms,
                change: change.change.clone(),
                event_index: index,
                event: event.payload.to_string(),
                audience: event.audience.clone().unwrap_or_else(|| head.members.clone()),
                counts: event.counts,
                ttl,
            };
            fresh.push(entry.clone());
            entries.push(entry);
        }
        entries.sort_by_key(|entry| entry.event_index);
        logged.push(entries);
    }
    Numbered { publish, fresh, logged, end, at_ms }
}

/// The token of "everything published by `now` is had": the time, and the rooms whose head moved
/// within the window before it (their later entries may carry earlier times), at their head or at
/// what was returned of them, whichever is further.
fn token_at(now: i64, rooms: &[(&RoomId, &LogHead)], returned: &HashMap<RoomId, u64>) -> SyncToken {
    let seen = rooms
        .iter()
        .filter(|(_, head)| head.at_ms > now - PUBLISH_WINDOW_MS)
        .map(|(room, head)| ((*room).clone(), head.seq.max(returned.get(*room).copied().unwrap_or(0))))
        .collect();
    SyncToken { at_ms: now, seen }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_read_back_as_written_and_refuse_the_rest() {
        let room = RoomId::parse("01ROOM").unwrap();
        let token = SyncToken { at_ms: 1_800_000_000_000, seen: vec![(room, 7)] };
        assert_eq!(token.to_string(), "1800000000000~01ROOM:7");
        assert_eq!(SyncToken::parse(&token.to_string()).unwrap(), token);
        assert_eq!(SyncToken::parse("5").unwrap(), SyncToken { at_ms: 5, seen: Vec::new() });
        for bad in ["", "nonsense", "5~", "5~room", "5~room:x", "5~a/b:1"] {
            assert!(SyncToken::parse(bad).is_err(), "{bad:?}");
        }
    }
}
