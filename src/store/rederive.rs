//! Re-derives every counter-derived day from the snapshots kept (issue 22).
//!
//! Versions before schema 12 placed counter snapshots by arrival: a snapshot
//! older than its day's latest one (a clock stepped back, two processes, the
//! demo run twice) was taken as a counter reset, and the whole counter was
//! added to the day. The upgrade to schema 12 runs [`rederive_all`] once, in
//! the migration's transaction:
//! - a day whose `latest` row is older than its `first` got its latest from
//!   such a snapshot: the two are put back in time order;
//! - a day that ends at or above its first value, yet carries more than the
//!   difference, counted a drop that was no reset between neighbours in time:
//!   its increase becomes the difference. (A real reset that the counter
//!   outgrew within the same day is told apart by nothing kept; it is taken
//!   for the same thing, which undercounts at most the part used before it.)
//!
//! Then each day's figure is computed again and upserted; a final day that
//! changes is recorded in `usage_revision` by the archive's trigger, with its
//! old and new totals.

use std::collections::BTreeMap;

use chrono::{NaiveDate, TimeDelta};
use rusqlite::{Transaction, params};

use super::StoreError;
use super::counters::{DaySlots, Slot, combine, day_figure, increase, write_slot};
use super::usage::{SubjectKey, upsert_days_final_before};
use crate::model::{CounterKind, DayUsage, FetchTime};

/// Below this, a day's accumulated increase and its first-to-latest difference are the
/// same figure (float additions in a different order).
const SAME_MB: f64 = 0.001;

/// What a re-derivation did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rederived {
    /// Snapshot rows put back in time order or given their true increase.
    pub slots: u64,
    /// Day rows derived again.
    pub days: u64,
    /// Day rows whose figure changed.
    pub corrected: u64,
}

/// Re-derives the days of every subject with counter snapshots; see the module docs.
pub fn rederive_all(tx: &Transaction<'_>, at: FetchTime) -> Result<Rederived, StoreError> {
    let subjects: Vec<(String, String, String)> = tx
        .prepare("SELECT DISTINCT provider, account, subject FROM counter_snapshot")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut done = Rederived::default();
    for (provider, account, subject) in subjects {
        let Some(provider) = crate::model::ProviderKind::from_name(&provider) else {
            continue;
        };
        let key = SubjectKey {
            provider: provider.as_str(),
            account,
            subject,
        };
        let one = rederive_subject(tx, &key, at)?;
        done.slots += one.slots;
        done.days += one.days;
        done.corrected += one.corrected;
    }
    Ok(done)
}

/// One subject's counters: per counter, its days' snapshot rows.
type Counters = BTreeMap<CounterKind, BTreeMap<NaiveDate, DaySlots>>;

fn rederive_subject(
    tx: &Transaction<'_>,
    key: &SubjectKey,
    at: FetchTime,
) -> Result<Rederived, StoreError> {
    let mut done = Rederived::default();
    let mut counters = load_counters(tx, key)?;
    for (kind, days) in &mut counters {
        for (day, slots) in days.iter_mut() {
            let repaired = repair(slots);
            if repaired != *slots {
                write_slot(tx, key, *kind, *day, "first", &repaired.first)?;
                write_slot(tx, key, *kind, *day, "latest", &repaired.latest)?;
                *slots = repaired;
                done.slots += 1;
            }
        }
    }
    let (finals, open) = derive(&counters);
    done.days = (finals.len() + open.len()) as u64;
    // Final days are final whatever their date; the open ones provisional.
    let last_final = finals.last().map(|d| d.day + TimeDelta::days(1));
    let first_open = open.first().map(|d| d.day);
    for (days, final_before) in [(finals, last_final), (open, first_open)] {
        if let Some(final_before) = final_before {
            let stats = upsert_days_final_before(tx, key, &days, true, at, final_before)?;
            done.corrected += stats.updated;
        }
    }
    if done.corrected > 0 {
        tracing::info!(provider = key.provider, account = %key.account, subject = %key.subject,
            corrected = done.corrected, "Corrected days derived from counter snapshots");
    }
    Ok(done)
}

/// A day's snapshot rows as they should have been written; see the module docs.
fn repair(slots: &DaySlots) -> DaySlots {
    let (first, latest) = (&slots.first, &slots.latest);
    if latest.taken_at < first.taken_at {
        return DaySlots {
            first: Slot {
                accumulated_mb: 0.0,
                ..latest.clone()
            },
            latest: Slot {
                accumulated_mb: increase(latest.value_mb, first.value_mb),
                ..first.clone()
            },
        };
    }
    let difference = latest.value_mb - first.value_mb;
    if difference >= 0.0 && latest.accumulated_mb > difference + SAME_MB {
        return DaySlots {
            first: first.clone(),
            latest: Slot {
                accumulated_mb: difference,
                ..latest.clone()
            },
        };
    }
    slots.clone()
}

/// Every day that all counters have snapshots of: the final ones (the next day has
/// snapshots of every counter), then the open ones, each in day order.
fn derive(counters: &Counters) -> (Vec<DayUsage>, Vec<DayUsage>) {
    let (mut finals, mut open) = (Vec::new(), Vec::new());
    let Some(days) = counters.values().next() else {
        return (finals, open);
    };
    for day in days.keys() {
        let mut figures = Vec::with_capacity(counters.len());
        let mut closed = true;
        for (kind, days) in counters {
            let Some(slots) = days.get(day) else {
                break;
            };
            let next = days.get(&(*day + TimeDelta::days(1))).map(|s| &s.first);
            let (figure, is_final) = day_figure(slots, next);
            closed &= is_final;
            figures.push((*kind, figure));
        }
        if figures.len() < counters.len() {
            continue;
        }
        if let Some(usage) = combine(*day, &figures) {
            if closed { &mut finals } else { &mut open }.push(usage);
        }
    }
    (finals, open)
}

fn load_counters(tx: &Transaction<'_>, key: &SubjectKey) -> Result<Counters, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT counter, day, slot, taken_at, value_mb, accumulated_mb FROM counter_snapshot \
         WHERE provider = ?1 AND account = ?2 AND subject = ?3",
    )?;
    let rows = stmt.query_map(params![key.provider, key.account, key.subject], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            Slot {
                taken_at: r.get(3)?,
                value_mb: r.get(4)?,
                accumulated_mb: r.get(5)?,
            },
        ))
    })?;
    let mut halves: BTreeMap<(CounterKind, NaiveDate), (Option<Slot>, Option<Slot>)> =
        BTreeMap::new();
    for row in rows {
        let (counter, day, slot, value) = row?;
        let (Some(kind), Ok(day)) = (
            CounterKind::from_name(&counter),
            NaiveDate::parse_from_str(&day, "%Y-%m-%d"),
        ) else {
            continue;
        };
        let entry = halves.entry((kind, day)).or_default();
        if slot == "first" {
            entry.0 = Some(value);
        } else {
            entry.1 = Some(value);
        }
    }
    let mut counters = Counters::new();
    for ((kind, day), (first, latest)) in halves {
        if let (Some(first), Some(latest)) = (first, latest) {
            counters
                .entry(kind)
                .or_default()
                .insert(day, DaySlots { first, latest });
        }
    }
    Ok(counters)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(at: &str, value_mb: f64, accumulated_mb: f64) -> Slot {
        Slot {
            taken_at: at.to_owned(),
            value_mb,
            accumulated_mb,
        }
    }

    /// A latest row older than the first (an old snapshot written as the latest) is put
    /// back in time order, with the increase between the two.
    #[test]
    fn a_latest_older_than_the_first_is_swapped_back() {
        let slots = DaySlots {
            first: slot("2026-01-07T10:00:00Z", 1000.0, 0.0),
            latest: slot("2026-01-07T09:00:00Z", 990.0, 990.0),
        };
        assert_eq!(
            repair(&slots),
            DaySlots {
                first: slot("2026-01-07T09:00:00Z", 990.0, 0.0),
                latest: slot("2026-01-07T10:00:00Z", 1000.0, 10.0),
            }
        );
    }

    /// A day that ends above its start but counted a drop gets the difference; a real
    /// drop (the day ends below its start) and a consistent day are left alone.
    #[test]
    fn a_drop_the_day_outgrew_is_no_reset() {
        let inflated = DaySlots {
            first: slot("2026-01-07T00:05:00Z", 1000.0, 0.0),
            latest: slot("2026-01-07T12:05:00Z", 1200.0, 1400.0),
        };
        assert_eq!(repair(&inflated).latest.accumulated_mb, 200.0);
        let reset = DaySlots {
            first: slot("2026-01-07T00:05:00Z", 1000.0, 0.0),
            latest: slot("2026-01-07T12:05:00Z", 30.0, 130.0),
        };
        assert_eq!(repair(&reset), reset);
        let fine = DaySlots {
            first: slot("2026-01-07T00:05:00Z", 1000.0, 0.0),
            latest: slot("2026-01-07T12:05:00Z", 1200.0, 200.0000001),
        };
        assert_eq!(repair(&fine), fine);
    }
}
