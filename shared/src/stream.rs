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
    pub old: Option<Item>,
    pub new: Option<Item>,
}

/// Where a change comes among its room's: its stream sequence number (a decimal string of up to 40
/// digits) padded, so that places compare as the numbers do.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn change(n: u32) -> Change {
        Change { event_id: format!("e{n}"), sequence_number: format!("{n}"), old: None, new: None }
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
