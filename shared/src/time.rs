//! Timestamps as the API shows them: RFC 3339 in UTC with milliseconds.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now() -> String {
    let now = OffsetDateTime::now_utc();
    let millis = now.replace_nanosecond(now.millisecond() as u32 * 1_000_000).unwrap_or(now);
    millis.format(&Rfc3339).unwrap_or_default()
}
