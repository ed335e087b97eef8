//! What a reconnecting client catches up from. Each room event gets the room's next `seq`, once (the
//! room's sequence item remembers the run of changes it numbered last), and lands in the feed of
//! every user it is sent to, numbered there too (a user's entries of a run put together where their
//! numbers are free): a user's feed holds, in order, the events their connections were sent, for 7
//! days, and a sync token names a place in it. A change delivered again finds its numbers and
//! entries where it left them.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Store, failed_at, from_item, keys};
use crate::error::{Error, Result};
use crate::ids::{OrgId, RoomId, UserId};
use crate::model::Room;
use crate::stream::position;
use crate::time::{epoch_secs, now_ms};

/// How long the feed keeps an event; a token older than this is refused (410).
pub const FEED_RETENTION_SECS: u64 = 7 * 24 * 3600;
/// Tries at numbering before giving up: only another instance numbering the same room's changes
/// makes one fail.
const ATTEMPTS: usize = 8;
/// Changes numbered together, at most: the room's sequence item lists them.
pub const RUN_CHANGES: usize = 25;
/// Events of the changes numbered together, at most: a user's entries of them are one transaction
/// (of at most 100 items).
pub const RUN_EVENTS: usize = 50;
/// Tries at appending to a feed: each try may find its place taken by another pusher appending to
/// the same feed (another room's events for the same user, from another stream shard).
const APPEND_ATTEMPTS: usize = 32;
/// Appends that chase a busy pusher place by place before reading where the feed ends.
const READ_END_EVERY: usize = 4;
/// Users' feeds appended to at once.
const FEEDS_AT_ONCE: usize = 16;
/// Entries read a page at a time when looking for a change delivered again.
const APPENDED_BEFORE_PAGE: usize = 25;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Sequence {
    seq: u64,
    /// The last change numbered.
    change: String,
    /// The first number of `change`, in an item written before runs (which has no `run`).
    #[serde(default)]
    first: u64,
    /// The room's members as of the last run: who its events (and the next run's) are for.
    #[serde(default)]
    members: Vec<UserId>,
    /// The changes numbered last, together, each with its first number.
    #[serde(default)]
    run: Vec<Placed>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Placed {
    change: String,
    first: u64,
}

impl Sequence {
    /// Where a run delivered again, whose first change was numbered before (`positions`, its
    /// changes' places), stands: changes older than the last run numbered were published whole
    /// (a room's runs are published in order, each only once the one before it was); those of the
    /// last run get their numbers again.
    fn place_again(self, positions: &[String]) -> Place {
        let run = if self.run.is_empty() { vec![Placed { change: self.change, first: self.first }] } else { self.run };
        let published = positions.iter().take_while(|at| **at < run[0].change).count();
        let firsts: Vec<u64> = positions[published..]
            .iter()
            .map_while(|at| run.iter().find(|placed| placed.change == *at).map(|placed| placed.first))
            .collect();
        match (published, firsts.is_empty()) {
            (0, false) => Place::Numbered(Numbered { firsts, last: self.seq, members: self.members, again: true }),
            // Between the last run's changes yet not one of them: nothing of it to publish.
            (0, true) => Place::Published(1),
            (published, _) => Place::Published(published),
        }
    }
}

/// What numbering a room's run of changes found.
#[derive(Clone, Debug)]
pub enum Place {
    /// Numbers for the run's first `firsts.len()` changes (all of them unless `again`).
    Numbered(Numbered),
    /// The run's first n changes were published before, whole: nothing of them to do.
    Published(usize),
}

/// Changes' places in their room: the first `seq` of each change's events, the room's last `seq`,
/// the members they are for, and whether they were numbered before (delivered again). Kept by the
/// caller, it is the guess the room's next run starts from.
#[derive(Clone, Debug)]
pub struct Numbered {
    pub firsts: Vec<u64>,
    pub last: u64,
    pub members: Vec<UserId>,
    pub again: bool,
}

/// An event in a user's feed: the event as pushed (without its token) and its place.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FeedEntry {
    pub seq: u64,
    pub at_ms: i64,
    pub event: String,
    pub ttl: u64,
    /// The room and change it is of, which a change delivered again looks for.
    #[serde(default)]
    source: String,
}

impl FeedEntry {
    /// The event with its token: what a connection is sent and what a sync answers.
    pub fn event_with_token(&self) -> Result<Value> {
        let mut event: Value = serde_json::from_str(&self.event).map_err(Error::internal)?;
        event["token"] = Value::String(SyncToken { seq: self.seq, at_ms: self.at_ms }.to_string());
        Ok(event)
    }
}

/// A user's share of a run of changes: the events that go to their feed, each with the change (its
/// stream sequence number) it is of, and the feed's last number as the caller last saw it (0:
/// unknown).
#[derive(Clone, Debug)]
pub struct Share {
    pub user: UserId,
    pub events: Vec<(String, Value)>,
    pub known: u64,
}

impl Share {
    /// The share's events as the entries numbered from `first`, appended at `at_ms`.
    fn entries(&self, room: &RoomId, first: u64, at_ms: i64) -> Vec<FeedEntry> {
        let ttl = u64::try_from(at_ms / 1000).unwrap_or_default() + FEED_RETENTION_SECS;
        let numbered = self.events.iter().zip(first..);
        let entry = |((change, event), seq): (&(String, Value), u64)| FeedEntry {
            seq,
            at_ms,
            event: event.to_string(),
            ttl,
            source: entry_source(room, change),
        };
        numbered.map(entry).collect()
    }

    /// The `source`s of the share's entries, oldest first, each once.
    fn sources(&self, room: &RoomId) -> Vec<String> {
        let mut sources: Vec<String> = self.events.iter().map(|(change, _)| entry_source(room, change)).collect();
        sources.dedup();
        sources
    }
}

/// What a share became: its user's entries, and their feed's last number after them.
#[derive(Clone, Debug)]
pub struct Appended {
    pub user: UserId,
    pub entries: Vec<FeedEntry>,
    pub last: u64,
}

/// A place in a user's feed: after entry `seq`, known at `at_ms` (every later entry is newer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncToken {
    pub seq: u64,
    pub at_ms: i64,
}

impl SyncToken {
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = || Error::bad_request("since is not a sync token");
        let (seq, at_ms) = text.split_once('.').ok_or_else(invalid)?;
        Ok(Self { seq: seq.parse().map_err(|_| invalid())?, at_ms: at_ms.parse().map_err(|_| invalid())? })
    }

    /// 410 once events after it may have expired: the client reloads instead.
    pub fn check_retained(&self) -> Result<()> {
        let oldest = now_ms() - i64::try_from(FEED_RETENTION_SECS * 1000).map_err(Error::internal)?;
        if self.at_ms < oldest {
            return Err(Error::Gone("the sync token is older than the 7 days of events kept: reload".into()));
        }
        Ok(())
    }
}

impl std::fmt::Display for SyncToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.seq, self.at_ms)
    }
}

/// What the `source` of every entry of the room starts with.
fn room_source(room: &RoomId) -> String {
    format!("{room}|")
}

/// The `source` of a change's entries.
fn entry_source(room: &RoomId, change: &str) -> String {
    room_source(room) + &position(change)
}

impl Store {
    /// Numbers a run of `room`'s changes (each its stream sequence number and how many events it
    /// numbers, oldest first): the room's next `seq`s the first time, the same ones when a change
    /// comes again (see `Place`). Also who they are for: the members as of the run, which the
    /// sequence item follows run by run (`members_now` when the run starts with the room's own
    /// change), so an event reaches whoever was in the room when it happened, however late it is
    /// pushed. `known` is the room's previous run as its caller numbered it: right, it saves a read.
    /// One request for the whole run: under a backlog a room's changes are numbered many at a time.
    pub async fn number_run(
        &self,
        room: &RoomId,
        run: &[(&str, u64)],
        members_now: Option<&[UserId]>,
        known: Option<Numbered>,
    ) -> Result<Place> {
        let key = keys::event_sequence(room);
        let positions: Vec<String> = run.iter().map(|(change, _)| position(change)).collect();
        let (Some(oldest), Some(newest)) = (positions.first(), positions.last()) else {
            return Ok(Place::Published(0));
        };
        let mut current = match known {
            Some(known) => Some((known.last, known.members)),
            None => self.get::<Sequence>(&key).await?.map(|current| (current.seq, current.members)),
        };
        for _ in 0..ATTEMPTS {
            let members = match (members_now, &current) {
                (Some(members), _) => members.to_vec(),
                (None, Some((_, members))) if !members.is_empty() => members.clone(),
                (None, _) => {
                    self.get::<Room>(&keys::room(room)).await?.map(|room| room.room_user_ids).unwrap_or_default()
                }
            };
            let last = current.as_ref().map_or(0, |(seq, _)| *seq);
            let mut firsts = Vec::with_capacity(run.len());
            let mut next = last + 1;
            for (_, count) in run {
                firsts.push(next);
                next += count;
            }
            let placed: Vec<Placed> = positions
                .iter()
                .zip(&firsts)
                .map(|(change, first)| Placed { change: change.clone(), first: *first })
                .collect();
            let mut update = self
                .update_item(&key)
                .update_expression("SET seq = :seq, #change = :change, members = :members, #run = :run")
                .expression_attribute_names("#change", "change")
                .expression_attribute_names("#run", "run")
                .expression_attribute_values(":seq", AttributeValue::N((next - 1).to_string()))
                .expression_attribute_values(":change", AttributeValue::S(newest.clone()))
                .expression_attribute_values(
                    ":members",
                    serde_dynamo::to_attribute_value(&members).map_err(Error::internal)?,
                )
                .expression_attribute_values(
                    ":run",
                    serde_dynamo::to_attribute_value(&placed).map_err(Error::internal)?,
                );
            update = match current {
                Some(_) => update
                    .condition_expression("seq = :last AND #change < :oldest")
                    .expression_attribute_values(":last", AttributeValue::N(last.to_string()))
                    .expression_attribute_values(":oldest", AttributeValue::S(oldest.clone())),
                None => update.condition_expression("attribute_not_exists(seq)"),
            };
            let stored = match self.update_or_current(update).await? {
                Ok(()) => return Ok(Place::Numbered(Numbered { firsts, last: next - 1, members, again: false })),
                Err(stored) => stored.map(from_item::<Sequence>).transpose()?,
            };
            match stored {
                Some(stored) if stored.change >= *oldest => return Ok(stored.place_again(&positions)),
                // The guess was stale (another instance numbered since): from what is stored.
                stored => current = stored.map(|stored| (stored.seq, stored.members)),
            }
        }
        Err(Error::Unavailable("numbering a room's events kept conflicting".into()))
    }

    /// Appends each share's events (each as pushed, without its token), all of one numbered run of
    /// `room`'s changes, to its user's feed: for each user, the entries and the feed's last number
    /// after them, in the order of `shares`. A user's entries are put only where their numbers are
    /// free, so two pushers appending to one feed at once never share a number: the one refused
    /// goes on after the entry it met (now and then from where the feed ends). A share's `known` is
    /// that end as the caller last saw it (0: unknown): right, a user's append is one request.
    /// `again`: the run was numbered before (delivered again), so what a feed already holds of it
    /// is taken as it is, not appended twice.
    pub async fn append_to_feeds(
        &self,
        org: &OrgId,
        room: &RoomId,
        again: bool,
        shares: Vec<Share>,
    ) -> Result<Vec<Appended>> {
        let appends: Vec<_> = shares.into_iter().map(|share| self.append_share(org, room, again, share)).collect();
        stream::iter(appends).buffered(FEEDS_AT_ONCE).try_collect().await
    }

    /// One user's share of a run, appended to their feed (see `append_to_feeds`).
    async fn append_share(&self, org: &OrgId, room: &RoomId, again: bool, share: Share) -> Result<Appended> {
        if again && let Some(appended) = self.appended_before(org, &share.user, room, &share.sources(room)).await? {
            return Ok(appended);
        }
        let mut end = (share.known > 0).then_some(share.known);
        for attempt in 0..APPEND_ATTEMPTS {
            let known = match end {
                Some(known) => known,
                None => self.feed_newest(org, &share.user).await?.map_or(0, |newest| newest.seq),
            };
            let entries = share.entries(room, known + 1, now_ms());
            let Some(taken) = self.put_entries(org, &share.user, &entries).await? else {
                let last = known + entries.len() as u64;
                return Ok(Appended { user: share.user, entries, last });
            };
            // Another pusher got to the feed first. The place found taken holds an entry, so the
            // next one is free to follow it (a feed never gets a gap); every few tries, from where
            // the feed ends now, to catch up with a busy pusher.
            let read_end = attempt % READ_END_EVERY == READ_END_EVERY - 1;
            end = (!read_end).then_some(known + taken as u64 + 1);
        }
        Err(Error::Unavailable("appending to feeds kept conflicting".into()))
    }

    /// Puts `user`'s entries where their numbers are free: one entry on its own (at half the write
    /// units of a transaction), more in one transaction, so a user gets all of a run or none. The
    /// last entry whose place was found taken, if any.
    async fn put_entries(&self, org: &OrgId, user: &UserId, entries: &[FeedEntry]) -> Result<Option<usize>> {
        let mut puts = entries
            .iter()
            .map(|entry| self.new_item(&keys::feed_entry(org, user, entry.seq), entry))
            .collect::<Result<Vec<_>>>()?;
        if puts.len() <= 1 {
            let put = match puts.pop() {
                Some(put) => self.put_if(put).await?,
                None => true,
            };
            return Ok((!put).then_some(0));
        }
        let items = puts.into_iter().map(|put| TransactWriteItem::builder().put(put).build()).collect();
        match self.transact(items).await? {
            Ok(()) => Ok(None),
            Err(reasons) => (0..entries.len())
                .filter(|n| failed_at(&reasons, *n))
                .max()
                .map(Some)
                .ok_or_else(|| Error::internal_msg("appending to a feed failed a condition it cannot fail")),
        }
    }

    /// The newest entry of `user`'s feed, after which their next one goes (none: the feed starts at
    /// 1). Expired or not: once the entries a token could name have expired, so has the token.
    async fn feed_newest(&self, org: &OrgId, user: &UserId) -> Result<Option<FeedEntry>> {
        let (items, _) = self.query_limited(keys::feed_pk(org, user), None, false, None, 1).await?;
        items.into_iter().next().map(from_item).transpose()
    }

    /// A run's entries already in `user`'s feed (`sources`: those its share makes), read back from
    /// the feed's end. They were put together, one after the other, and no later run of the room
    /// was numbered yet: the feed's end holds other rooms' entries and maybe entries of the run's
    /// later changes (when it comes again split differently), then either these or the room's
    /// earlier ones (nothing of this share).
    async fn appended_before(
        &self,
        org: &OrgId,
        user: &UserId,
        room: &RoomId,
        sources: &[String],
    ) -> Result<Option<Appended>> {
        let (of_room, Some(newest)) = (room_source(room), sources.last()) else { return Ok(None) };
        let (mut start, mut last, mut found) = (None, None, Vec::<FeedEntry>::new());
        'read: loop {
            let (items, next) =
                self.query_limited(keys::feed_pk(org, user), None, false, start, APPENDED_BEFORE_PAGE).await?;
            for entry in items.into_iter().map(from_item::<FeedEntry>) {
                let entry = entry?;
                last.get_or_insert(entry.seq);
                if sources.contains(&entry.source) {
                    found.push(entry);
                } else if !found.is_empty() || (entry.source.starts_with(&of_room) && entry.source < *newest) {
                    break 'read;
                }
            }
            match next {
                Some(next) => start = Some(next),
                None => break,
            }
        }
        found.reverse();
        let last = last.unwrap_or_default();
        Ok((!found.is_empty()).then(|| Appended { user: user.clone(), entries: found, last }))
    }

    /// Up to `limit` entries of `user`'s feed after `seq`, oldest first, and whether more follow.
    pub async fn feed_after(
        &self,
        org: &OrgId,
        user: &UserId,
        seq: u64,
        limit: usize,
    ) -> Result<(Vec<FeedEntry>, bool)> {
        let after = keys::feed_entry(org, user, seq).sk;
        let (items, _) =
            self.query_limited(keys::feed_pk(org, user), Some(("SK > :sk", after)), true, None, limit + 1).await?;
        let mut entries = items.into_iter().map(from_item).collect::<Result<Vec<FeedEntry>>>()?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let now = epoch_secs();
        Ok((entries.into_iter().filter(|entry| entry.ttl > now).collect(), more))
    }

    /// Where `user`'s feed ends now: the token of "from now on", as old as the entry it names (a
    /// feed with nothing in it: now), so it expires with that entry.
    pub async fn feed_end(&self, org: &OrgId, user: &UserId) -> Result<SyncToken> {
        Ok(match self.feed_newest(org, user).await? {
            Some(newest) if newest.ttl > epoch_secs() => SyncToken { seq: newest.seq, at_ms: newest.at_ms },
            _ => SyncToken { seq: 0, at_ms: now_ms() },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sequence item after a run of changes 4, 5 and 7 (events 10-11, 12, 13-15).
    fn after_run() -> Sequence {
        let placed = |change: &str, first| Placed { change: position(change), first };
        Sequence {
            seq: 15,
            change: position("7"),
            first: 0,
            members: Vec::new(),
            run: vec![placed("4", 10), placed("5", 12), placed("7", 13)],
        }
    }

    fn positions(changes: &[&str]) -> Vec<String> {
        changes.iter().map(|change| position(change)).collect()
    }

    #[test]
    fn a_run_delivered_again_keeps_the_numbers_of_the_changes_numbered_last() {
        let Place::Numbered(again) = after_run().place_again(&positions(&["5", "7", "8"])) else {
            panic!("numbered again")
        };
        // 8 is new: its caller numbers it next, after the room's last seq.
        assert_eq!((again.firsts, again.last, again.again), (vec![12, 13], 15, true));
    }

    #[test]
    fn changes_before_the_last_run_were_published_whole() {
        assert!(matches!(after_run().place_again(&positions(&["2", "3", "4"])), Place::Published(2)));
        // Not one of the run's changes (its records are not those numbered): nothing to publish.
        assert!(matches!(after_run().place_again(&positions(&["6", "7"])), Place::Published(1)));
    }

    #[test]
    fn an_item_from_before_runs_is_its_one_change() {
        let before = Sequence { seq: 3, change: position("9"), first: 2, members: Vec::new(), run: Vec::new() };
        let Place::Numbered(again) = before.place_again(&positions(&["9"])) else { panic!("numbered again") };
        assert_eq!(again.firsts, [2]);
    }
}
