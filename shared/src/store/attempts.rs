//! Attempts of one kind by one caller, counted in fixed windows: what rate-limits guessing (invite
//! tokens). One conditional update an attempt; the counter lapses with its window (TTL).

use aws_sdk_dynamodb::types::AttributeValue;

use super::messages::value;
use super::{Store, keys};
use crate::error::{Error, Result};
use crate::ids::UserId;

impl Store {
    /// Counts an attempt of `what` by `user`; 429 (retry when the window ends) past `limit` in a
    /// window of `window_secs`.
    pub async fn attempt(&self, what: &str, user: &UserId, limit: u32, window_secs: u64) -> Result<()> {
        let now = crate::time::epoch_secs();
        let window = now / window_secs;
        let ends = (window + 1) * window_secs;
        let update = self
            .update_item(&keys::attempts(what, user, window))
            .update_expression("SET attempts = if_not_exists(attempts, :zero) + :one, #ttl = :ttl")
            .condition_expression("attribute_not_exists(attempts) OR attempts < :limit")
            .expression_attribute_names("#ttl", super::TTL_ATTRIBUTE)
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", value(&limit)?)
            .expression_attribute_values(":ttl", value(&ends)?);
        match self.update_if(update).await? {
            true => Ok(()),
            false => Err(Error::RateLimited(ends.saturating_sub(now).max(1))),
        }
    }
}
