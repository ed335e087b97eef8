//! The table's stream as its consumers read it: the realtime push and the projector both take a
//! batch of changes, apply them in order, and stop at the first that fails.

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

/// A consumer of the stream: applies one change.
pub trait Consumer {
    fn apply(&self, change: &Change) -> impl Future<Output = Result<()>> + Send;
}

/// Applies `changes` in order, stopping at the first that fails. Returns the sequence numbers of
/// that change and of every one after it: what Lambda must deliver again (`ReportBatchItemFailures`),
/// so no change is ever applied before one that came earlier.
pub async fn in_order(consumer: &impl Consumer, changes: &[Change]) -> Vec<String> {
    for (at, change) in changes.iter().enumerate() {
        if let Err(err) = consumer.apply(change).await {
            tracing::error!(sequence_number = %change.sequence_number, error = %err, "a change failed; it and what follows are retried");
            return changes[at..].iter().map(|change| change.sequence_number.clone()).collect();
        }
    }
    Vec::new()
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

    /// Fails on the change numbered `fail_at`; records what it was asked to apply.
    struct Recorder {
        fail_at: &'static str,
        applied: std::sync::Mutex<Vec<String>>,
    }

    impl Consumer for Recorder {
        async fn apply(&self, change: &Change) -> Result<()> {
            self.applied.lock().unwrap().push(change.sequence_number.clone());
            if change.sequence_number == self.fail_at { Err(crate::Error::internal_msg("boom")) } else { Ok(()) }
        }
    }

    #[tokio::test]
    async fn a_failure_stops_the_batch_and_reports_it_and_what_follows() {
        let batch: Vec<Change> = (1..=5).map(change).collect();
        let recorder = Recorder { fail_at: "3", applied: Default::default() };
        assert_eq!(in_order(&recorder, &batch).await, ["3", "4", "5"]);
        assert_eq!(*recorder.applied.lock().unwrap(), ["1", "2", "3"]);
        let clean = Recorder { fail_at: "none", applied: Default::default() };
        assert!(in_order(&clean, &batch).await.is_empty());
        assert_eq!(clean.applied.lock().unwrap().len(), 5);
    }
}
