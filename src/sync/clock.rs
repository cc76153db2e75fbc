//! Where a sync's "now" comes from: the system clock, a fixed instant, or (in
//! tests) one that steps at every reading. Finality and coverage are decided
//! from it, so tests control them without touching the wall clock.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::FetchTime;

/// Where "now" comes from: the system clock, a fixed instant, or (in tests) one that steps.
#[derive(Debug, Clone, Default)]
pub struct Clock(ClockKind);

#[derive(Debug, Clone, Default)]
enum ClockKind {
    #[default]
    System,
    Fixed(DateTime<Utc>),
    Stepping {
        start: DateTime<Utc>,
        step: TimeDelta,
        ticks: Arc<std::sync::atomic::AtomicI32>,
    },
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(ClockKind::System)
    }

    /// Always `at`.
    pub fn fixed(at: DateTime<Utc>) -> Self {
        Self(ClockKind::Fixed(at))
    }

    /// `start`, then `step` later at every reading: a run that spans a moment (tests).
    pub fn stepping(start: DateTime<Utc>, step: TimeDelta) -> Self {
        Self(ClockKind::Stepping {
            start,
            step,
            ticks: Arc::default(),
        })
    }

    /// The current time.
    pub fn now(&self) -> FetchTime {
        FetchTime(match &self.0 {
            ClockKind::System => Utc::now(),
            ClockKind::Fixed(at) => *at,
            ClockKind::Stepping { start, step, ticks } => {
                *start + *step * ticks.fetch_add(1, Ordering::Relaxed)
            }
        })
    }
}
