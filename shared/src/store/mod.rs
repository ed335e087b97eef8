//! The single DynamoDB table: one client plus the table's name, cheap to clone into tasks.

mod attempts;
mod bookmarks;
mod connections;
mod counts;
mod inbox;
mod index;
mod invites;
mod keys;
mod log;
mod messages;
mod meter;
mod notify;
mod orgs;
mod posts;
mod presence;
mod push;
mod reactions;
mod read_markers;
mod rebuild;
mod rooms;
mod schedule;
mod settings;
mod table;
mod tx;
mod typing;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, DeleteRequest, KeysAndAttributes, Put, ReturnConsumedCapacity,
    TransactWriteItem, WriteRequest,
};
use meter::Consumed;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use bookmarks::{Bookmark, MAX_BOOKMARKS};
pub use connections::{CONNECTION_TTL_SECS, Connection};
pub use inbox::{
    ACTIVITY_INDEX, ACTIVITY_PK, ACTIVITY_SK, InboxEntry, InboxOrder, InboxRow, LastMessage, PREVIEW_CHARS, UNREAD_CAP,
    Unread, UnreadTotals,
};
pub use invites::{
    Accepted, DEFAULT_INVITE_SECS, Invite, InviteToken, MAX_INVITE_SECS, MAX_INVITE_USES, MIN_INVITE_SECS,
};
pub use keys::Key;
pub use log::{LOG_RETENTION_SECS, LogEntry, Logging, NewEvent, PUBLISH_WINDOW_MS, SyncPage, SyncToken};
pub use messages::{IDEMPOTENCY_TTL_SECS, MAX_PINS, Pointer, SendReceipt, Sent, Version};
pub use meter::Usage;
pub use notify::Recipient;
pub use posts::PostRef;
pub use presence::{AWAY_AFTER_SECS, Attention, PRESENCE_WINDOW_SECS, Presence, Status};
pub use push::{Subscribed, Subscription};
pub use reactions::{MAX_EMOJI, Reacted, Reaction};
pub use read_markers::ReadMarker;
pub use rebuild::Rebuilt;
pub use rooms::{CreatedRoom, MAX_ROOM_MEMBERS, MembershipChange, MembershipChanged, member_digest};
pub use schedule::{Bucket, MAX_SCHEDULED, MAX_SCHEDULED_IN_ROOM, Scheduled, schedule_id};
pub use table::{TTL_ATTRIBUTE, create_table};

use crate::error::{Error, Result};
use crate::paging::{Cursor, Direction, Page, PageRequest};

pub type Item = HashMap<String, AttributeValue>;

tokio::task_local! {
    /// What the request this task serves has asked of DynamoDB.
    static REQUEST_METER: Arc<meter::Meter>;
}

/// Runs `work` (one request), and answers what it asked of DynamoDB beside its output; requests
/// served at once (locally) are each counted on their own, and work measured inside other measured
/// work counts in both.
pub async fn measured<F: Future>(work: F) -> (F::Output, Usage) {
    let outer = REQUEST_METER.try_with(Arc::clone).ok();
    let meter = Arc::new(meter::Meter::within(outer));
    let output = REQUEST_METER.scope(meter.clone(), work).await;
    (output, meter.usage())
}

#[derive(Clone)]
pub struct Store {
    client: Client,
    table: Arc<str>,
    meter: Arc<meter::Meter>,
}

/// The order a list is shown in, by sort key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    NewestFirst,
    OldestFirst,
}

impl Store {
    pub fn new(client: Client, table: &str) -> Self {
        Self { client, table: table.into(), meter: Arc::default() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// DynamoDB round trips and capacity used by this store so far.
    pub fn usage(&self) -> Usage {
        self.meter.usage()
    }

    /// Counts one round trip and the capacity its answer reports, for the store and for the request
    /// being measured (if any).
    pub(crate) fn metered<O, E>(
        &self,
        result: std::result::Result<O, E>,
        units: impl Fn(&O) -> f64,
    ) -> std::result::Result<O, E> {
        let units = result.as_ref().map(&units).unwrap_or_default();
        self.meter.record(units);
        let _ = REQUEST_METER.try_with(|meter| meter.record(units));
        result
    }

    /// One cheap read: proves the table answers (ping) and warms the connection (init).
    pub async fn ping(&self) -> Result<()> {
        self.get::<serde_json::Value>(&keys::probe()).await.map(drop)
    }

    /// A strongly consistent read of one item.
    pub(crate) async fn get<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>> {
        let sent = self
            .client
            .get_item()
            .table_name(self.table())
            .set_key(Some(key_item(key)))
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let output = self.metered(sent, |o| o.consumed_capacity.units()).map_err(sdk_error)?;
        output.item.map(from_item).transpose()
    }

    /// `page`'s items, each with the item `key_of` names, read in one BatchGet; an item whose other
    /// is gone is left out of the page.
    pub(crate) async fn joined<T, U: serde::de::DeserializeOwned>(
        &self,
        page: Page<T>,
        key_of: impl Fn(&T) -> Key,
    ) -> Result<Page<(T, U)>> {
        let wanted: Vec<Key> = page.items.iter().map(key_of).collect();
        let found = if wanted.is_empty() { Vec::new() } else { self.get_many(&wanted).await? };
        let items = page
            .items
            .into_iter()
            .zip(found)
            .filter_map(|(item, other)| other.map(|other| from_item::<U>(other).map(|other| (item, other))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, next: page.next, previous: page.previous })
    }

    /// Strongly consistent reads of many items, 100 a round trip (a batch's limit; more only for
    /// unprocessed keys), returned in the order of `keys`.
    pub(crate) async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>> {
        self.read_many(keys, true).await
    }

    /// The same reads, eventually consistent (half the read units): for what a change a moment old
    /// may be missing from without harm.
    pub(crate) async fn get_many_eventually(&self, keys: &[Key]) -> Result<Vec<Option<Item>>> {
        self.read_many(keys, false).await
    }

    async fn read_many(&self, keys: &[Key], consistent: bool) -> Result<Vec<Option<Item>>> {
        let mut found: HashMap<(String, String), Item> = HashMap::with_capacity(keys.len());
        // A batch may not name one key twice.
        let mut unique: Vec<&Key> = Vec::with_capacity(keys.len());
        for key in keys {
            if !unique.contains(&key) {
                unique.push(key);
            }
        }
        let mut batches = unique.chunks(100).map(|chunk| chunk.iter().map(|key| key_item(key)).collect());
        let mut pending: Vec<Item> = batches.next().unwrap_or_default();
        let mut attempt = 0;
        while !pending.is_empty() {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut pending)))
                .consistent_read(consistent)
                .build()
                .map_err(Error::internal)?;
            let sent = self
                .client
                .batch_get_item()
                .request_items(self.table(), request)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let output = self.metered(sent, |o| o.consumed_capacity.units()).map_err(sdk_error)?;
            for item in output.responses.unwrap_or_default().remove(self.table()).unwrap_or_default() {
                if let (Some(pk), Some(sk)) = (string_attr(&item, keys::PK), string_attr(&item, keys::SK)) {
                    found.insert((pk, sk), item);
                }
            }
            if let Some(mut unprocessed) = output.unprocessed_keys
                && let Some(rest) = unprocessed.remove(self.table())
            {
                pending = rest.keys;
                attempt += 1;
                if attempt > 5 {
                    return Err(Error::Throttled("batch read left keys unprocessed".into()));
                }
                tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
            }
            if pending.is_empty() {
                pending = batches.next().unwrap_or_default();
            }
        }
        Ok(keys.iter().map(|key| found.get(&(key.pk.clone(), key.sk.clone())).cloned()).collect())
    }

    /// Deletes every item of `keys` (those not stored are no-ops).
    pub(crate) async fn delete_many(&self, keys: &[Key]) -> Result<()> {
        let deletes = keys
            .iter()
            .map(|key| {
                let delete = DeleteRequest::builder().set_key(Some(key_item(key))).build().map_err(Error::internal)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<_>>()?;
        self.write_many(deletes).await
    }

    /// Unconditional puts and deletes of whole items, 25 a round trip (a batch's limit; more only for
    /// unprocessed ones). No two may name the same key.
    pub(crate) async fn write_many(&self, writes: Vec<WriteRequest>) -> Result<()> {
        for chunk in writes.chunks(25) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                let sent = self
                    .client
                    .batch_write_item()
                    .request_items(self.table(), std::mem::take(&mut pending))
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
                    .await;
                let output = self.metered(sent, |o| o.consumed_capacity.units()).map_err(sdk_error)?;
                pending = output.unprocessed_items.and_then(|mut left| left.remove(self.table())).unwrap_or_default();
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt > 5 {
                        return Err(Error::Throttled("a batch write left items unprocessed".into()));
                    }
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
            }
        }
        Ok(())
    }

    /// One page of a partition's items whose sort key starts with `prefix`: one Query.
    pub(crate) async fn query_page(
        &self,
        pk: String,
        prefix: &str,
        order: Order,
        page: &PageRequest,
    ) -> Result<Page<Item>> {
        let direction = page.cursor.as_ref().map_or(Direction::After, |c| c.direction);
        if let Some(cursor) = &page.cursor
            && !cursor.sort_key.starts_with(prefix)
        {
            return Err(Error::bad_request("invalid cursor"));
        }
        let ascending = (order == Order::OldestFirst) == (direction == Direction::After);
        let start = page.cursor.as_ref().map(|cursor| key_item(&Key { pk: pk.clone(), sk: cursor.sort_key.clone() }));
        let limit = i32::try_from(page.limit + 1).map_err(Error::internal)?;
        let sent = self
            .prefix_query(pk, prefix)
            .scan_index_forward(ascending)
            .limit(limit)
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let output = self.metered(sent, |o| o.consumed_capacity.units()).map_err(sdk_error)?;
        Ok(paged(output.items.unwrap_or_default(), page, keys::SK, None))
    }

    /// Up to `limit` items of partition `pk`, in the order asked, whose sort key meets `sort` (a
    /// condition on `SK` naming its value `:sk`, and that value), from `start`: one strongly
    /// consistent Query. Also where the next page starts, if there may be more.
    pub(crate) async fn query_limited(
        &self,
        pk: String,
        sort: Option<(&str, String)>,
        ascending: bool,
        start: Option<Item>,
        limit: usize,
    ) -> Result<(Vec<Item>, Option<Item>)> {
        let mut query = self
            .client
            .query()
            .table_name(self.table())
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .scan_index_forward(ascending)
            .consistent_read(true)
            .limit(i32::try_from(limit).map_err(Error::internal)?)
            .set_exclusive_start_key(start)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        query = match sort {
            Some((condition, value)) => query
                .key_condition_expression(format!("PK = :pk AND {condition}"))
                .expression_attribute_values(":sk", AttributeValue::S(value)),
            None => query.key_condition_expression("PK = :pk"),
        };
        let output = self.metered(query.send().await, |o| o.consumed_capacity.units()).map_err(sdk_error)?;
        let next = output.last_evaluated_key.filter(|key| !key.is_empty());
        Ok((output.items.unwrap_or_default(), next))
    }

    /// An UpdateItem of `key` on this table, to be completed and sent by `update_if`.
    pub(crate) fn update_item(&self, key: &Key) -> UpdateItemFluentBuilder {
        self.client.update_item().table_name(self.table()).set_key(Some(key_item(key)))
    }

    /// Sends one conditional update; `Ok(false)` when its condition did not hold.
    pub(crate) async fn update_if(&self, update: UpdateItemFluentBuilder) -> Result<bool> {
        let sent = update.return_consumed_capacity(ReturnConsumedCapacity::Total).send().await;
        match self.metered(sent, |o| o.consumed_capacity.units()) {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// Sends one conditional put on its own (outside a transaction, at half the write units);
    /// `Ok(false)` when its condition did not hold.
    pub(crate) async fn put_if(&self, put: Put) -> Result<bool> {
        let sent = self
            .client
            .put_item()
            .table_name(put.table_name)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_names(put.expression_attribute_names)
            .set_expression_attribute_values(put.expression_attribute_values)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match self.metered(sent, |o| o.consumed_capacity.units()) {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(err) => Err(sdk_error(err)),
        }
    }

    /// Every item of a partition whose sort key starts with `prefix`, page after page.
    pub(crate) async fn query_all(&self, pk: String, prefix: &str, ascending: bool) -> Result<Vec<Item>> {
        self.every_page(self.prefix_query(pk, prefix).scan_index_forward(ascending)).await
    }

    /// A strongly consistent Query of a partition's items whose sort key starts with `prefix`.
    fn prefix_query(&self, pk: String, prefix: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(self.table())
            .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.to_owned()))
            .consistent_read(true)
    }

    /// Every item `query` finds, page after page.
    pub(crate) async fn every_page(&self, query: QueryFluentBuilder) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let sent = query
                .clone()
                .set_exclusive_start_key(start)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let output = self.metered(sent, |o| o.consumed_capacity.units()).map_err(sdk_error)?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Runs one transaction. `Ok(Err(reasons))` says which of its conditions failed (a reason per
    /// item, in order); transaction conflicts with concurrent writers are retried here.
    pub(crate) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<std::result::Result<(), Vec<CancellationReason>>> {
        let mut attempt = 0u32;
        loop {
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await;
            let sent = self.metered(sent, |o| o.consumed_capacity.units());
            let err = match sent {
                Ok(_) => return Ok(Ok(())),
                Err(err) => err,
            };
            let reasons = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    cancelled.cancellation_reasons().to_vec()
                }
                _ => return Err(sdk_error(err)),
            };
            // A failed condition is an answer. Conflicts and throttling are not: the items they name
            // were never checked, so the transaction is tried again, and past that the client is told
            // to retry (429), never that a condition "cannot fail" (500).
            let failed_condition = reasons.iter().any(|r| r.code() == Some("ConditionalCheckFailed"));
            let retryable = reasons.iter().any(|r| r.code().is_some_and(|code| TX_RETRYABLE.contains(&code)));
            if failed_condition || !retryable {
                return Ok(Err(reasons));
            }
            attempt += 1;
            if attempt > TX_ATTEMPTS {
                return Err(Error::Throttled(err.into()));
            }
            tokio::time::sleep(Duration::from_millis(10 * u64::from(attempt))).await;
        }
    }
}

/// A page of what a Query answered for `page` (read with a limit one past the page's, so an extra item
/// says there is more), with cursors on the `sort` attribute. `evaluated_past` is where a filtered
/// Query stopped reading, which may lie past its last item: the next page starts there.
pub(crate) fn paged(mut items: Vec<Item>, page: &PageRequest, sort: &str, evaluated_past: Option<Item>) -> Page<Item> {
    let direction = page.cursor.as_ref().map_or(Direction::After, |c| c.direction);
    let more = items.len() > page.limit || evaluated_past.is_some();
    items.truncate(page.limit);
    if direction == Direction::Before {
        items.reverse();
    }
    let cursor_at = |item: Option<&Item>, direction| {
        item.and_then(|item| string_attr(item, sort)).map(|sort_key| Cursor { direction, sort_key })
    };
    let first = items.first();
    let (next, previous) = match direction {
        Direction::After => (
            if more { cursor_at(items.last().or(evaluated_past.as_ref()), Direction::After) } else { None },
            page.cursor.as_ref().and(cursor_at(first, Direction::Before)),
        ),
        Direction::Before => {
            (cursor_at(items.last(), Direction::After), if more { cursor_at(first, Direction::Before) } else { None })
        }
    };
    Page { items, next, previous }
}

pub(crate) fn key_item(key: &Key) -> Item {
    HashMap::from([
        (keys::PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (keys::SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// `value` as an item stored under `key`.
pub(crate) fn to_item<T: Serialize>(key: &Key, value: &T) -> Result<Item> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(Error::internal)?;
    item.extend(key_item(key));
    Ok(item)
}

pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T> {
    serde_dynamo::from_item(item).map_err(Error::internal)
}

/// The key of an item as read.
pub(crate) fn item_key(item: &Item) -> Option<Key> {
    Some(Key { pk: string_attr(item, keys::PK)?, sk: string_attr(item, keys::SK)? })
}

pub(crate) fn string_attr(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|value| value.as_s().ok()).cloned()
}

/// Whether the transaction item at `index` failed its condition.
pub(crate) fn failed_at(reasons: &[CancellationReason], index: usize) -> bool {
    reasons.get(index).and_then(CancellationReason::code) == Some("ConditionalCheckFailed")
}

/// Errors a client should retry: throttling, and a single write that raced a transaction on its
/// item (the SDK has retried both already).
const THROTTLED: [&str; 6] = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "TransactionConflictException",
    "TransactionInProgressException",
];
/// Cancellation reasons of a transaction whose items were not checked: it may succeed if sent again.
const TX_RETRYABLE: [&str; 3] = ["TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"];
/// Tries of a transaction that conflicts or is throttled, after the SDK's own retries of each.
const TX_ATTEMPTS: u32 = 8;
const UNAVAILABLE: [&str; 2] = ["InternalServerError", "ServiceUnavailable"];

/// What an SDK failure means to a client: throttled (429), the table not answering (503), or a bug
/// of ours (500).
pub(crate) fn sdk_error<E, R>(err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            Error::Unavailable(err.into())
        }
        SdkError::ServiceError(service) => match service.err().code() {
            Some(code) if THROTTLED.contains(&code) => Error::Throttled(err.into()),
            Some(code) if UNAVAILABLE.contains(&code) => Error::Unavailable(err.into()),
            _ => Error::Internal(err.into()),
        },
        _ => Error::Internal(err.into()),
    }
}
