//! A validated UTC cron schedule with a seconds field.
//!
//! Parsed exactly as tokio-cron-scheduler parses it (croner, seconds
//! required, day-of-month AND day-of-week), so a schedule accepted here is
//! one the scheduler accepts.

use chrono::{DateTime, TimeDelta, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// How far ahead of now a recorded time may lie before the clock is distrusted: a last
/// success further in the future means the clock moved back since (or was wrong then).
pub const FUTURE_SKEW: TimeDelta = TimeDelta::minutes(5);

/// Whether `at`, a recorded time, lies more than [`FUTURE_SKEW`] after `now`.
pub fn is_in_future(at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    at - now > FUTURE_SKEW
}

/// How many upcoming ticks are looked at to find a schedule's interval.
const INTERVAL_SAMPLE: usize = 12;

/// A cron expression (`sec min hour day month weekday`, UTC).
#[derive(Debug, Clone)]
pub struct Schedule {
    expr: String,
    cron: Cron,
}

impl Schedule {
    /// Parses a six- or seven-field expression; the error says what is expected.
    pub fn parse(expr: &str) -> Result<Self, String> {
        let fields = expr.split_whitespace().count();
        if !(6..=7).contains(&fields) {
            return Err(format!(
                "{expr:?} has {fields} fields; expected 6 (sec min hour day month weekday), e.g. \"0 10 * * * *\""
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(expr)
            .map_err(|e| format!("{expr:?} is not a valid cron expression: {e}"))?;
        let schedule = Self {
            expr: expr.to_owned(),
            cron,
        };
        if schedule.next_after(Utc::now()).is_none() {
            return Err(format!("{expr:?} never fires"));
        }
        Ok(schedule)
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.expr
    }

    /// Whether a run is due at `now`, given the last success: never succeeded, missed at
    /// least one tick, or a last success in the future (the clock moved back).
    pub fn is_due(&self, last_success: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        last_success.is_none_or(|t| now - t > self.interval(now) || is_in_future(t, now))
    }

    /// Whether a tick came since the last success: what `run --once` asks, so that a timer
    /// firing more often than the schedule runs the account only as the daemon would.
    /// Never succeeded, or a last success in the future (the clock moved back), counts as
    /// a tick.
    pub fn ticked_since(&self, last_success: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        last_success.is_none_or(|t| {
            is_in_future(t, now) || self.next_after(t).is_some_and(|tick| tick <= now)
        })
    }

    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }

    /// How many times it fires in the day after `from` (at most once a second).
    pub fn ticks_per_day(&self, from: DateTime<Utc>) -> u32 {
        let end = from + TimeDelta::days(1);
        let ticks = self
            .cron
            .iter_after(from)
            .take_while(|t| *t <= end)
            .take(86_400)
            .count();
        u32::try_from(ticks).unwrap_or(86_400)
    }

    /// The longest gap between consecutive ticks after `from`, over the next dozen ticks.
    ///
    /// This is "the schedule's interval" of SPEC §2: a source whose last
    /// success is older than it has missed at least one tick.
    pub fn interval(&self, from: DateTime<Utc>) -> TimeDelta {
        let ticks: Vec<_> = self.cron.iter_after(from).take(INTERVAL_SAMPLE).collect();
        ticks
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or(TimeDelta::days(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_fields_are_refused_with_a_hint() {
        let err = Schedule::parse("0 * * * *").unwrap_err();
        assert!(err.contains("expected 6"), "{err}");
    }

    #[test]
    fn a_tick_since_the_last_success() {
        let s = Schedule::parse("0 10 * * * *").unwrap();
        let t = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        let last = Some(t("2026-03-01T10:10:04Z"));
        assert!(s.ticked_since(None, t("2026-03-01T10:00:00Z")), "never ran");
        assert!(
            !s.ticked_since(last, t("2026-03-01T11:09:59Z")),
            "before the tick"
        );
        assert!(
            s.ticked_since(last, t("2026-03-01T11:10:00Z")),
            "at the tick"
        );
        assert!(
            !s.ticked_since(last, t("2026-03-01T10:06:00Z")),
            "a little earlier is within the skew"
        );
        assert!(
            s.ticked_since(last, t("2026-03-01T09:00:00Z")),
            "a last success in the future"
        );
    }

    #[test]
    fn interval_of_hourly_schedule_is_one_hour() {
        let s = Schedule::parse("0 10 * * * *").unwrap();
        assert_eq!(s.interval(Utc::now()), TimeDelta::hours(1));
    }

    #[test]
    fn ticks_a_day() {
        let now = Utc::now();
        assert_eq!(
            Schedule::parse("0 10 * * * *").unwrap().ticks_per_day(now),
            24
        );
        assert_eq!(
            Schedule::parse("0 20 0,6,12,18 * * *")
                .unwrap()
                .ticks_per_day(now),
            4
        );
        assert_eq!(
            Schedule::parse("*/2 * * * * *").unwrap().ticks_per_day(now),
            43_200
        );
    }

    #[test]
    fn interval_of_irregular_schedule_is_the_longest_gap() {
        let s = Schedule::parse("0 0 0,6 * * *").unwrap();
        assert_eq!(s.interval(Utc::now()), TimeDelta::hours(18));
    }
}
