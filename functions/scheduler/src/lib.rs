//! Sends scheduled messages when they are due, exactly once.
//!
//! A run reads the minute buckets from the cursor (the first minute not finished) up to now, claims
//! each due item with a condition and sends it through the same code as a send, with an idempotency
//! key of its own: two runs at once never both send it, and an item whose run died after claiming is
//! claimed again when the claim lapses, and its send, if it was stored, is not stored twice.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dm_shared::input::IdempotencyKey;
use dm_shared::posting::{self, Outgoing};
use dm_shared::store::Scheduled;
use dm_shared::text::MessageText;
use dm_shared::{AppState, Error, Result};
use serde::Serialize;

/// How long a claim holds before another run may take the item over.
pub const LEASE: Duration = Duration::from_secs(60);
/// Minutes one run reads at most; a scheduler that was down catches up over several runs.
const MAX_MINUTES_PER_RUN: i64 = 720;

/// What a run did.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub sent: usize,
    /// Items that can never be sent (the sender left the room, the room is gone).
    pub dropped: usize,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

/// One run: sends everything due.
pub async fn tick(state: &AppState, lease: Duration) -> Result<Report> {
    let mut report = Report::default();
    let Some(cursor) = state.store.schedule_cursor().await? else { return Ok(report) };
    let now = now_ms();
    let now_minute = now.div_euclid(60_000);
    let last = now_minute.min(cursor + MAX_MINUTES_PER_RUN);
    let mut first_unfinished = None;
    for minute in cursor..=last {
        for item in state.store.scheduled_in(minute).await? {
            let finished = item.due_ms <= now && deliver(state, &item, now, lease, &mut report).await;
            if !finished && first_unfinished.is_none() {
                first_unfinished = Some(minute);
            }
        }
    }
    let next = first_unfinished.unwrap_or(last);
    if next != cursor {
        state.store.advance_schedule_cursor(cursor, next).await?;
    }
    Ok(report)
}

/// Claims and sends one item; true when it is finished with (sent, or never sendable).
async fn deliver(state: &AppState, item: &Scheduled, now: i64, lease: Duration, report: &mut Report) -> bool {
    match try_deliver(state, item, now, lease).await {
        Ok(Some(sent)) => {
            if sent {
                report.sent += 1;
            } else {
                report.dropped += 1;
            }
            true
        }
        Ok(None) => false,
        Err(err) => {
            tracing::error!(schedule_id = %item.schedule_id, error = %err, "a scheduled message was not sent; it is retried");
            false
        }
    }
}

/// `Some(true)` sent, `Some(false)` dropped, `None` claimed by another run.
async fn try_deliver(state: &AppState, item: &Scheduled, now: i64, lease: Duration) -> Result<Option<bool>> {
    let until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
    if !state.store.claim_scheduled(item, now, until).await? {
        return Ok(None);
    }
    let outgoing = Outgoing {
        org: item.org_id.clone(),
        room: item.room_id.clone(),
        parent: None,
        sender: item.sender_id.clone(),
        text: MessageText::parse(item.message.clone(), !item.media.is_empty())?,
        media: item.media.clone(),
        idempotency_key: Some(IdempotencyKey::Scheduled(item.schedule_id.clone())),
    };
    let sent = match posting::store(state, outgoing).await {
        Ok(_) => true,
        Err(Error::Forbidden(_) | Error::NotFound(_)) => {
            tracing::warn!(schedule_id = %item.schedule_id, "dropped: the sender is no longer in the room");
            false
        }
        Err(err) => return Err(err),
    };
    state.store.finish_scheduled(item).await?;
    Ok(Some(sent))
}
