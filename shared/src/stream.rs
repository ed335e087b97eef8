//! The table's stream as its consumers read it: the realtime push and the projector both take a
//! batch of changes and answer the ones to deliver again, so nothing is ever applied before what
//! came earlier (for the projector: earlier in the same room).

use std::collections::HashMap;
use std::hash::Hash;

use futures_util::{StreamExt, stream};
use serde_dynamo::Item;

use crate::error::Error;

/// One change of one item, as DynamoDB Streams reports it (new and old images).
#[derive(Clone, Debug)]
pub struct Change {
    /// The stream record's id: stable across redeliveries, so clients can drop duplicates.
    pub event_id: String,
    pub sequence_number: String,
    /// When the change was made (epoch ms, to the second as the stream says it; 0 when not known).
    pub created_ms: i64,
    pub old: Option<Item>,
    pub new: Option<Item>,
}

/// Where a record comes in its shard: its stream sequence number (a decimal string of up to 40
/// digits) padded, so that places compare as the numbers do. Only within one shard: a room's
/// records may come from two.
pub fn position(sequence_number: &str) -> String {
    format!("{sequence_number:0>40}")
}

/// A consumer of the stream.
pub trait Consumer {
    /// Applies a batch; answers the sequence numbers to deliver again (`ReportBatchItemFailures`).
    fn consume(&self, changes: &[Change]) -> impl Future<Output = Vec<String>> + Send;
}

/// Applies `changes` in groups independent of each other (a room's changes, say): `at_once` groups
/// at a time, each group's changes in order, a group stopping at its first failure. `group` names a
/// change's group and what it asks of the consumer (`None`: nothing); `run` applies one group's
/// `(index, ask)`s and answers the index of its failure, if any. Returns the sequence numbers to
/// deliver again: from the earliest failure on, every change (what other groups applied after it is
/// applied again, which consumers make change nothing).
pub async fn in_groups<'a, K, T, F>(
    changes: &'a [Change],
    group: impl Fn(&'a Change) -> Option<(K, T)>,
    at_once: usize,
    run: impl Fn(Vec<(usize, T)>) -> F,
) -> Vec<String>
where
    K: Eq + Hash,
    F: Future<Output = Option<(usize, Error)>>,
{
    let mut groups: Vec<Vec<(usize, T)>> = Vec::new();
    let mut index: HashMap<K, usize> = HashMap::new();
    for (at, change) in changes.iter().enumerate() {
        let Some((key, ask)) = group(change) else { continue };
        let at_group = *index.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[at_group].push((at, ask));
    }
    let failures: Vec<(usize, Error)> = stream::iter(groups.into_iter().map(run))
        .buffer_unordered(at_once)
        .filter_map(|failed| async move { failed })
        .collect()
        .await;
    match failures.into_iter().min_by_key(|(at, _)| *at) {
        Some((at, err)) => redeliver(changes, at, &err),
        None => Vec::new(),
    }
}

/// What to deliver again when the change at `at` failed: it and every later one.
pub fn redeliver(changes: &[Change], at: usize, err: &Error) -> Vec<String> {
    let failed = &changes[at];
    tracing::error!(sequence_number = %failed.sequence_number, error = %err, "a change failed; it and what follows are retried");
    changes[at..].iter().map(|change| change.sequence_number.clone()).collect()
}

#[cfg(feature = "stream")]
mod lambda {
    use aws_lambda_events::dynamodb::Event;
    use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

    use super::Change;

    /// A stream batch as Lambda delivers it.
    pub fn changes(event: Event) -> Vec<Change> {
        event
            .records
            .into_iter()
            .map(|record| Change {
                event_id: record.event_id,
                sequence_number: record.change.sequence_number.unwrap_or_default(),
                created_ms: record.change.approximate_creation_date_time.timestamp_millis(),
                old: Some(record.change.old_image).filter(|image| !image.is_empty()),
                new: Some(record.change.new_image).filter(|image| !image.is_empty()),
            })
            .collect()
    }

    /// Lambda's answer to a batch: the records to deliver again.
    pub fn response(failed: Vec<String>) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = failed
            .into_iter()
            .map(|id| {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(id);
                failure
            })
            .collect();
        response
    }
}

#[cfg(feature = "stream")]
pub use lambda::{changes, response};

/// What the stream itself says, read through the DynamoDB Streams API rather than handed over by
/// Lambda: the replay of a batch that exhausted its retries, and the local stack's reader.
#[cfg(feature = "stream-api")]
pub mod api {
    use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
    use serde::Deserialize;

    use super::{Change, Consumer, position};
    use crate::error::{Error, Result};

    /// The keys of a record's item: what event source filters look at.
    pub struct ItemKeys {
        pub pk: String,
        pub sk: String,
    }

    /// A record as the API reads it, with its item's keys; `None` for one that names no item.
    pub fn read_record(record: Record) -> Option<(ItemKeys, Change)> {
        let data = record.dynamodb?;
        let key = |name: &str| data.keys.as_ref()?.get(name)?.as_s().ok().cloned();
        let keys = ItemKeys { pk: key("PK")?, sk: key("SK")? };
        let change = Change {
            event_id: record.event_id.unwrap_or_default(),
            sequence_number: data.sequence_number.unwrap_or_default(),
            created_ms: data.approximate_creation_date_time.map_or(0, |at| at.to_millis().unwrap_or(0)),
            old: data.old_image.map(serde_dynamo::Item::from),
            new: data.new_image.map(serde_dynamo::Item::from),
        };
        Some((keys, change))
    }

    /// A message of a stream consumer's failure destination: where the batch that exhausted its
    /// retries lies in the stream (Lambda sends its place, not its records).
    #[derive(Clone, Debug, Deserialize)]
    pub struct FailedBatch {
        #[serde(rename = "DDBStreamBatchInfo")]
        pub batch: BatchInfo,
    }

    #[derive(Clone, Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct BatchInfo {
        pub stream_arn: String,
        pub shard_id: String,
        pub start_sequence_number: String,
        pub end_sequence_number: String,
    }

    /// Applies again, through `consumer`, the records of batches that exhausted their retries, read
    /// from the stream where the failure queue's messages say they lie; how many records it applied.
    /// Consumers condition every effect on what a record carries, so what was applied before
    /// changes nothing.
    pub async fn replay(
        consumer: &impl Consumer,
        client: &aws_sdk_dynamodbstreams::Client,
        failed: &[FailedBatch],
    ) -> Result<usize> {
        let mut replayed = 0;
        for FailedBatch { batch } in failed {
            let changes = read_failed(client, batch).await?;
            if !consumer.consume(&changes).await.is_empty() {
                return Err(Error::Unavailable("a replayed record failed again: replay the batch later".into()));
            }
            replayed += changes.len();
        }
        Ok(replayed)
    }

    /// Reads after this many answers in a row with no records (0.2 s apart) give up on an open
    /// shard's tail.
    const EMPTY_READS: usize = 10;

    /// The records of a failed batch, read again from its shard (sequence numbers compare within
    /// one shard). A stream keeps records 24 hours: past that the answer is 410, and the batch's
    /// rooms are for the operator to rebuild.
    pub async fn read_failed(client: &aws_sdk_dynamodbstreams::Client, failed: &BatchInfo) -> Result<Vec<Change>> {
        let started = client
            .get_shard_iterator()
            .stream_arn(&failed.stream_arn)
            .shard_id(&failed.shard_id)
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .sequence_number(&failed.start_sequence_number)
            .send()
            .await;
        let started = match started {
            Ok(started) => started,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_trimmed_data_access_exception()) => {
                return Err(Error::Gone("the stream no longer holds the batch: rebuild its rooms".into()));
            }
            Err(err) => return Err(Error::Unavailable(err.into())),
        };
        let end = position(&failed.end_sequence_number);
        let (mut iterator, mut changes, mut empty) = (started.shard_iterator, Vec::new(), 0);
        while let Some(at) = iterator.take() {
            let read =
                client.get_records().shard_iterator(at).send().await.map_err(|err| Error::Unavailable(err.into()))?;
            let records = read.records.unwrap_or_default();
            empty = if records.is_empty() { empty + 1 } else { 0 };
            for (_, change) in records.into_iter().filter_map(read_record) {
                let at = position(&change.sequence_number);
                if at > end {
                    return Ok(changes);
                }
                changes.push(change);
                if at == end {
                    return Ok(changes);
                }
            }
            if empty >= EMPTY_READS {
                return Err(Error::Unavailable("the stream did not hand over the whole batch: replay it later".into()));
            }
            if empty > 0 {
                // An open shard may answer a page with nothing before the records that follow.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            iterator = read.next_shard_iterator;
        }
        // The shard closed: it holds nothing past what was read.
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(n: u32) -> Change {
        Change { event_id: format!("e{n}"), sequence_number: format!("{n}"), created_ms: 0, old: None, new: None }
    }

    fn parity(change: &Change) -> u32 {
        change.sequence_number.parse::<u32>().unwrap() % 2
    }

    /// Applies `batch` in two groups (odd and even numbers), failing on the change numbered
    /// `fail_at`; answers what it was asked to apply and what it reported.
    async fn run(batch: &[Change], fail_at: &str) -> (Vec<String>, Vec<String>) {
        let applied = std::sync::Mutex::new(Vec::new());
        let group = |change| Some((parity(change), change));
        let failed = in_groups(batch, group, 2, |changes| {
            let applied = &applied;
            async move {
                for (at, change) in changes {
                    applied.lock().unwrap().push(change.sequence_number.clone());
                    if change.sequence_number == fail_at {
                        return Some((at, Error::internal_msg("boom")));
                    }
                }
                None
            }
        })
        .await;
        let mut applied = applied.into_inner().unwrap();
        applied.sort();
        (applied, failed)
    }

    #[tokio::test]
    async fn a_failure_stops_its_group_and_reports_it_and_what_follows() {
        let batch: Vec<Change> = (1..=6).map(change).collect();
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // The odd group stops at 3; the even one goes on; 3 and all after it come again.
        assert_eq!(run(&batch, "3").await, (strings(&["1", "2", "3", "4", "6"]), strings(&["3", "4", "5", "6"])));
        let (applied, failed) = run(&batch, "none").await;
        assert_eq!((applied.len(), failed.len()), (6, 0));
    }
}
