//! Timestamps as the API shows them: RFC 3339 in UTC with milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Seconds since the Unix epoch: what DynamoDB's TTL and the presence windows count in.
pub fn epoch_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// Milliseconds since the Unix epoch: when scheduled messages are due, and sync tokens' times.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

pub fn now() -> String {
    let now = OffsetDateTime::now_utc();
    let millis = now.replace_nanosecond(now.millisecond() as u32 * 1_000_000).unwrap_or(now);
    millis.format(&Rfc3339).unwrap_or_default()
}
