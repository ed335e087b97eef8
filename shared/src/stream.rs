//! The table's stream as its consumers read it: the realtime push and the projector both take a
//! batch of changes and answer the ones to deliver again, so nothing is ever applied before what
//! came earlier (for the projector: earlier in the same room).

use serde_dynamo::Item;

use crate::error::Result;

/// One change of one item, as DynamoDB Streams reports it (new and old images).
#[derive(Clone, Debug)]
pub struct Change {
    /// The stream record's id: stable across redeliveries, so clients can drop duplicates.
    pub event_id: String,
    pub sequence_number: String,
    pub old: Option<Item>,
    pub new: Option<Item>,
}

/// A consumer of the stream.
pub trait Consumer {
    /// Applies a batch; answers the sequence numbers to deliver again (`ReportBatchItemFailures`).
    fn consume(&self, changes: &[Change]) -> impl Future<Output = Vec<String>> + Send;
}

/// Applies `changes` one at a time in order, stopping at the first that fails. Returns the sequence
/// numbers of that change and of every one after it.
pub async fn in_order<'a, F>(changes: &'a [Change], apply: impl Fn(&'a Change) -> F) -> Vec<String>
where
    F: Future<Output = Result<()>>,
{
    for (at, change) in changes.iter().enumerate() {
        if let Err(err) = apply(change).await {
            return redeliver(changes, at, &err);
        }
    }
    Vec::new()
}

/// What to deliver again when the change at `at` failed: it and every later one.
pub fn redeliver(changes: &[Change], at: usize, err: &crate::Error) -> Vec<String> {
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

    /// Applies `batch`, failing on the change numbered `fail_at`; answers what it was asked to
    /// apply and what it reported.
    async fn run(batch: &[Change], fail_at: &str) -> (Vec<String>, Vec<String>) {
        let applied = std::sync::Mutex::new(Vec::new());
        let failed = in_order(batch, |change| {
            applied.lock().unwrap().push(change.sequence_number.clone());
            let fails = change.sequence_number == fail_at;
            async move { if fails { Err(crate::Error::internal_msg("boom")) } else { Ok(()) } }
        })
        .await;
        (applied.into_inner().unwrap(), failed)
    }

    #[tokio::test]
    async fn a_failure_stops_the_batch_and_reports_it_and_what_follows() {
        let batch: Vec<Change> = (1..=5).map(change).collect();
        assert_eq!(
            run(&batch, "3").await,
            (vec!["1".into(), "2".into(), "3".into()], vec!["3".into(), "4".into(), "5".into()])
        );
        let (applied, failed) = run(&batch, "none").await;
        assert_eq!((applied.len(), failed.len()), (5, 0));
    }
}
