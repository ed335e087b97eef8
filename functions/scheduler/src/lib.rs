//! Sends scheduled messages when they are due, exactly once, fairly.
//!
//! A run reads the index of buckets due by now (one bucket per minute, org and sender) and takes
//! turns between them: a page of one bucket, then a page of the next, so a sender who queued
//! thousands of messages for one minute delays nobody else's by more than a page. Each due item is
//! claimed with a condition and sent through the same code as a send, with an idempotency key of its
//! own: two runs at once never both send it, and an item whose run died after claiming is claimed
//! again when the claim lapses, and its send, if it was stored, is not stored twice. A run that runs
//! out of time leaves the rest to the next; an item that keeps failing is given up after a few
//! attempts instead of being retried for ever.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use dm_shared::access::RoomAccess;
use dm_shared::input::{CheckedPost, IdempotencyKey};
use dm_shared::metrics::{Record, Unit};
use dm_shared::posting::{self, Outgoing};
use dm_shared::store::{Bucket, Item, Scheduled};
use dm_shared::text::MessageText;
use dm_shared::time::now_ms;
use dm_shared::{AppState, Error, Result};
use serde::Serialize;

/// How long a claim holds before another run may take the item over.
pub const LEASE: Duration = Duration::from_secs(60);
/// Claims an item gets before it is given up.
const MAX_ATTEMPTS: u32 = 5;
/// Buckets whose turns run at once: a slow or failing item holds back only its own bucket's page.
/// Within a page items go one after another (they are mostly for one room, whose sends would only
/// contend).
const BUCKETS_AT_ONCE: usize = 4;

/// How much one run may do.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Items read from a bucket at its turn.
    pub page: usize,
    /// Buckets taken up in one run (the index is read a page at a time up to this); each gets one
    /// turn before the budget counts.
    pub buckets: usize,
    /// When the run stops taking further turns; what is left is the next run's.
    pub budget: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self { page: 25, buckets: 200, budget: Duration::from_secs(40) }
    }
}

/// What a run did.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub sent: usize,
    /// Items that can never be sent (the sender left the room, the room is gone, or it kept failing).
    pub dropped: usize,
    /// Whether the run stopped for its budget with due items left.
    pub unfinished: bool,
    /// How late the latest message sent was, in milliseconds after its due time.
    pub max_lag_ms: i64,
}

/// A bucket's turn: where its next page starts.
struct Turn {
    bucket: Bucket,
    after: Option<Item>,
    /// Whether any item is left in it after this run's pages (claimed elsewhere, failed, not due).
    left: bool,
}

/// One run as EventBridge Scheduler invokes it, every minute: the event carries nothing the run
/// needs (any payload is accepted). The report is logged and returned.
pub async fn handle(state: &AppState, _event: serde_json::Value) -> Result<serde_json::Value> {
    let report = tick(state, LEASE, Limits::default()).await?;
    tracing::info!(
        sent = report.sent,
        dropped = report.dropped,
        unfinished = report.unfinished,
        max_lag_ms = report.max_lag_ms,
        "scheduler run"
    );
    Record::default()
        .dimension("Function", dm_shared::metrics::function_name())
        .value("MessagesSent", report.sent as f64, Unit::Count)
        .value("MessagesDropped", report.dropped as f64, Unit::Count)
        .value("MaxLag", report.max_lag_ms as f64, Unit::Milliseconds)
        .emit();
    serde_json::to_value(report).map_err(Error::internal)
}

/// One run: sends what is due, taking turns between buckets, within `limits`.
pub async fn tick(state: &AppState, lease: Duration, limits: Limits) -> Result<Report> {
    let started = Instant::now();
    let mut report = Report::default();
    let now = now_ms();
    let now_minute = now.div_euclid(60_000);
    let mut turns: VecDeque<Turn> = VecDeque::new();
    let mut after = None;
    loop {
        let (buckets, next) = state.store.due_buckets(now_minute, after, limits.buckets - turns.len()).await?;
        turns.extend(buckets.into_iter().map(|bucket| Turn { bucket, after: None, left: false }));
        after = next;
        if after.is_none() || turns.len() >= limits.buckets {
            break;
        }
    }
    // Every bucket taken up gets its first turn whatever the budget, so no sender's flood can use up
    // a run before another sender's bucket comes up; the budget bounds the rounds after.
    let mut first_round = turns.len();
    while !turns.is_empty() {
        if first_round == 0 && started.elapsed() >= limits.budget {
            report.unfinished = true;
            break;
        }
        let batch: Vec<Turn> = turns.drain(..turns.len().min(BUCKETS_AT_ONCE)).collect();
        first_round = first_round.saturating_sub(batch.len());
        let turns_taken = batch.into_iter().map(|turn| take_turn(state, turn, now, lease, limits.page));
        let taken = futures_util::future::join_all(turns_taken).await;
        for taken in taken {
            let Taken { mut turn, more, outcomes } = taken?;
            for outcome in outcomes {
                match outcome {
                    Outcome::Sent { lag_ms } => {
                        report.sent += 1;
                        report.max_lag_ms = report.max_lag_ms.max(lag_ms);
                    }
                    Outcome::Dropped => report.dropped += 1,
                    Outcome::Left => turn.left = true,
                }
            }
            match more {
                Some(next) => {
                    turn.after = Some(next);
                    turns.push_back(turn);
                }
                // A bucket of a minute long past that this run emptied is forgotten; nothing can be
                // scheduled into it any more (schedules are for the future).
                None if !turn.left && turn.bucket.minute < now_minute - 1 => {
                    state.store.forget_bucket(&turn.bucket).await?;
                }
                None => {}
            }
        }
    }
    Ok(report)
}

/// What a turn did: where the bucket's next page starts, if it has one, and each item's outcome.
struct Taken {
    turn: Turn,
    more: Option<Item>,
    outcomes: Vec<Outcome>,
}

/// One turn of a bucket: a page of it, its items delivered in order.
async fn take_turn(state: &AppState, mut turn: Turn, now: i64, lease: Duration, page: usize) -> Result<Taken> {
    let (items, more) = state.store.bucket_page(&turn.bucket, turn.after.take(), page).await?;
    let mut outcomes = Vec::with_capacity(items.len());
    for item in &items {
        outcomes.push(deliver(state, item, now, lease).await);
    }
    Ok(Taken { turn, more, outcomes })
}

enum Outcome {
    Sent {
        lag_ms: i64,
    },
    Dropped,
    /// Not done with: not due yet, claimed by another run, or failed this time.
    Left,
}

async fn deliver(state: &AppState, item: &Scheduled, now: i64, lease: Duration) -> Outcome {
    if item.due_ms > now {
        return Outcome::Left;
    }
    match try_deliver(state, item, now, lease).await {
        Ok(outcome) => outcome,
        Err(err) => {
            tracing::error!(schedule_id = %item.schedule_id, error = %err, "a scheduled message was not sent; it is retried");
            Outcome::Left
        }
    }
}

async fn try_deliver(state: &AppState, item: &Scheduled, now: i64, lease: Duration) -> Result<Outcome> {
    let until = now + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
    if !state.store.claim_scheduled(item, now, until).await? {
        return Ok(Outcome::Left);
    }
    if item.attempts >= MAX_ATTEMPTS {
        tracing::error!(schedule_id = %item.schedule_id, attempts = item.attempts, "dropped: it kept failing");
        state.store.finish_scheduled(item).await?;
        return Ok(Outcome::Dropped);
    }
    let outgoing = |mentions: Vec<_>| -> Result<Outgoing> {
        let text = MessageText::parse(item.message.clone(), !item.media.is_empty())?;
        Ok(Outgoing {
            org: item.org_id.clone(),
            room: item.room_id.clone(),
            parent: None,
            post: CheckedPost { sender: item.sender_id.clone(), text, media: item.media.clone(), mentions },
            idempotency_key: Some(IdempotencyKey::Scheduled(item.schedule_id.clone())),
        })
    };
    let mut sent = posting::store(state, outgoing(item.mentions.clone())?).await;
    if matches!(sent, Err(Error::BadRequest(_) | Error::Unprocessable(_))) {
        // Someone it mentions left the room meanwhile (a run that stopped may have sent it so
        // already, which the key then answers): it mentions those still there.
        sent = match RoomAccess::load(&state.store, &item.org_id, &item.room_id, &item.sender_id, &[]).await {
            Ok(access) => {
                let present = item.mentions.iter().filter(|user| access.room.has_member(user)).cloned().collect();
                posting::store(state, outgoing(present)?).await
            }
            Err(err) => Err(err),
        };
    }
    let outcome = match sent {
        Ok(_) => Outcome::Sent { lag_ms: now_ms() - item.due_ms },
        Err(Error::Forbidden(_) | Error::NotFound(_)) => {
            tracing::warn!(schedule_id = %item.schedule_id, "dropped: the sender is no longer in the room");
            Outcome::Dropped
        }
        Err(err) => return Err(err),
    };
    state.store.finish_scheduled(item).await?;
    Ok(outcome)
}
