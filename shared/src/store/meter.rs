//! What the store has asked of DynamoDB: round trips and consumed capacity units. Every call asks
//! for its consumed capacity (DynamoDB reports it at no cost), so a benchmark can show what each route
//! costs.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::ConsumedCapacity;

#[derive(Debug, Default)]
pub(crate) struct Meter {
    calls: AtomicU64,
    /// Thousandths of a capacity unit.
    milli_units: AtomicU64,
    /// The meter of the work this one measures a part of: it counts the part too.
    outer: Option<std::sync::Arc<Meter>>,
}

/// Totals since the store was built.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub calls: u64,
    pub capacity_units: f64,
}

impl Usage {
    /// What was used between `earlier` and `self`.
    pub fn since(self, earlier: Usage) -> Usage {
        Usage { calls: self.calls - earlier.calls, capacity_units: self.capacity_units - earlier.capacity_units }
    }

    /// What `self` and `more` used together.
    pub fn plus(self, more: Usage) -> Usage {
        Usage { calls: self.calls + more.calls, capacity_units: self.capacity_units + more.capacity_units }
    }
}

/// The capacity a response reports, one object or one per table.
pub(crate) trait Consumed {
    fn units(&self) -> f64;
}

impl Consumed for Option<ConsumedCapacity> {
    fn units(&self) -> f64 {
        self.as_ref().and_then(ConsumedCapacity::capacity_units).unwrap_or_default()
    }
}

impl Consumed for Option<Vec<ConsumedCapacity>> {
    fn units(&self) -> f64 {
        self.iter().flatten().filter_map(ConsumedCapacity::capacity_units).sum()
    }
}

impl Meter {
    /// A meter of part of what `outer` measures.
    pub(crate) fn within(outer: Option<std::sync::Arc<Meter>>) -> Self {
        Self { outer, ..Self::default() }
    }

    pub(crate) fn record(&self, units: f64) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.milli_units.fetch_add((units * 1000.0).round() as u64, Ordering::Relaxed);
        if let Some(outer) = &self.outer {
            outer.record(units);
        }
    }

    pub(crate) fn usage(&self) -> Usage {
        Usage {
            calls: self.calls.load(Ordering::Relaxed),
            capacity_units: self.milli_units.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}
