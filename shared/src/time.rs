//! Timestamps as the API shows them: RFC 3339 in UTC with milliseconds.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

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

/// Whether `stamp` is an RFC 3339 time, before the epoch too.
pub fn is_stamp(stamp: &str) -> bool {
    OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339).is_ok()
}

/// Milliseconds since the Unix epoch of a stamp (RFC 3339), if it is one.
pub fn stamp_ms(stamp: &str) -> Option<u64> {
    let at = OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

pub fn now() -> String {
    stamp(OffsetDateTime::now_utc())
}

/// The stamp of a moment given in epoch seconds.
pub fn stamp_secs(secs: u64) -> String {
    let at = i64::try_from(secs).ok().and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok());
    stamp(at.unwrap_or(OffsetDateTime::UNIX_EPOCH))
}

/// Always three fraction digits: timestamps end sort keys (a room's activity), so they must sort
/// as the times they name, and RFC 3339's shortest form does not (`…:05Z` after `…:05.250Z`).
fn stamp(at: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use time::format_description::well_known::Rfc3339;

    use super::*;

    #[test]
    fn stamps_sort_as_their_times_and_parse_back() {
        let second = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let times: Vec<OffsetDateTime> =
            [0, 100, 120, 123, 999].iter().map(|ms| second + time::Duration::milliseconds(*ms)).collect();
        let stamps: Vec<String> = times.iter().map(|at| stamp(*at)).collect();
        assert_eq!(stamps[0], "2027-01-15T08:00:00.000Z");
        let mut sorted = stamps.clone();
        sorted.sort();
        assert_eq!(sorted, stamps);
        for (stamp, at) in stamps.iter().zip(&times) {
            assert_eq!(OffsetDateTime::parse(stamp, &Rfc3339).unwrap(), *at);
        }
    }
}
