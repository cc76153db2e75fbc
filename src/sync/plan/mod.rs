//! The fetch plan (SPEC §5.9): which subjects a scheduled run fetches now, so that
//! the cost follows activity, not history.
//!
//! Every subject gets a class from what the archive and the listing say:
//! - *hot* (usage on one of the last two UTC days, listed as active, or a running
//!   counter): fetched on every tick;
//! - *quiet* (anything else still inside the provider's window, and daily snapshots):
//!   fetched once per UTC day, on the first tick after midnight, which is the fetch that
//!   makes yesterday final;
//! - *dormant* (no usage for longer than the window, every archived day final, and ended
//!   where the provider's listing says so): probed seldom, spread over the days.
//!
//! A subject never fetched is due at once. A subject the listing shows active, or whose
//! probe found usage, is hot from then on.
//!
//! Every closed day is fetched after it closed and before it leaves the window: a quiet
//! subject is fetched on every UTC day; a dormant one no listing watches is probed at
//! least every window − 1 days; a dormant one its listing reports ended (a terminal
//! state, so no usage to come) has each day vouched for by the run that saw it ended,
//! and is fetched as soon as a missed day leaves its coverage behind. So the days between
//! probes are covered, and the probes of ended subjects can be spread over more than the
//! window when there are many of them.
//!
//! Nothing here touches the store or the network: the facts come in ([`PlanFacts`]),
//! the decisions go out.

use std::hash::{Hash, Hasher};

use chrono::{Datelike, NaiveDate, TimeDelta};

use crate::providers::{Cadence, Listed, ListedState};
use crate::store::plan::{AccountPlan, PlanFacts};

/// A subject's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Fetched on every tick.
    Hot,
    /// Fetched once per UTC day.
    Quiet,
    /// Probed seldom.
    Dormant,
}

impl Class {
    /// The name stored in `subjects.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hot => "hot",
            Self::Quiet => "quiet",
            Self::Dormant => "dormant",
        }
    }
}

/// The longest a dormant subject goes between probes when nothing else watches it.
pub const PROBE_DAYS: i64 = 7;

/// The share of the plan's other requests that probing subjects a listing reports as
/// ended may take; beyond it, their probes are spread over more days.
const ENDED_PROBE_SHARE: f64 = 0.1;

/// One subject as the plan sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The subject.
    pub subject: &'a str,
    /// How often the provider says it needs fetching.
    pub cadence: Cadence,
    /// What the listing said of it, if it named it.
    pub listed: Option<&'a Listed>,
}

/// The class of `c` on `today` from the archive's `facts`.
pub fn classify(c: &Candidate<'_>, facts: &PlanFacts, today: NaiveDate) -> Class {
    match c.cadence {
        Cadence::EveryTick => Class::Hot,
        // An ended object whose snapshot the listing still matches will not change.
        Cadence::Daily if is_ended(c) && daily_due(c, facts, today) == Some(false) => {
            Class::Dormant
        }
        Cadence::Daily => Class::Quiet,
        Cadence::History => {
            let state = c.listed.map(|l| l.state);
            if state == Some(ListedState::Active) || facts.recent.contains(c.subject) {
                Class::Hot
            } else if facts.covered.contains_key(c.subject)
                && !facts.in_window.contains(c.subject)
                && !facts.provisional.contains(c.subject)
                && state != Some(ListedState::Other)
            {
                Class::Dormant
            } else {
                Class::Quiet
            }
        }
    }
}

/// How often dormant subjects are probed: those no listing watches at most every
/// [`PROBE_DAYS`] and often enough that no closed day leaves the window unfetched;
/// those a listing reports as ended (which would show them coming back) weekly, or less
/// often when there are so many that their probes would cost more than a tenth of the
/// plan's other requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeDays {
    /// Days between probes of a dormant subject no listing watches.
    pub unwatched: i64,
    /// Days between probes of a dormant subject its listing reports as ended.
    pub ended: i64,
}

impl ProbeDays {
    /// The probe intervals for a provider keeping `window_days`, given the plan's other
    /// daily requests and how many dormant subjects are ended.
    pub fn new(window_days: u32, other_requests_per_day: f64, ended_dormant: u64) -> Self {
        let unwatched = (i64::from(window_days) - 1).clamp(1, PROBE_DAYS);
        let budget = (other_requests_per_day * ENDED_PROBE_SHARE).max(1.0);
        let spread = (ended_dormant as f64 / budget).ceil() as i64;
        Self {
            unwatched,
            ended: spread.max(PROBE_DAYS),
        }
    }

    fn of(&self, listed: Option<&Listed>) -> i64 {
        match listed.map(|l| l.state) {
            Some(ListedState::Ended) => self.ended,
            _ => self.unwatched,
        }
    }
}

/// The day of the latest fetch (or vouch) that covered `c`: the day after its last covered
/// day, since coverage holds closed days only.
fn fetched_on(facts: &PlanFacts, c: &Candidate<'_>) -> Option<NaiveDate> {
    facts
        .covered
        .get(c.subject)
        .map(|d| *d + TimeDelta::days(1))
}

/// Whether `c`, of class `class`, is fetched by a run on `today`.
pub fn is_due(
    c: &Candidate<'_>,
    class: Class,
    facts: &PlanFacts,
    today: NaiveDate,
    probes: ProbeDays,
) -> bool {
    // Coverage holds closed days: the fetch that covered through day D ran on D + 1.
    let covered = fetched_on(facts, c);
    let not_today = covered.is_none_or(|d| d < today);
    match class {
        Class::Hot => true,
        _ if c.cadence == Cadence::Daily => daily_due(c, facts, today).unwrap_or(true),
        Class::Quiet => not_today,
        Class::Dormant => {
            let every = probes.of(c.listed).max(1);
            let overdue = covered.is_none_or(|d| (today - d).num_days() >= every);
            // The listing vouches for an ended subject only on the days a run saw it:
            // coverage that fell behind (missed ticks) is caught up by a fetch.
            let behind = is_ended(c) && covered.is_none_or(|d| d < today - TimeDelta::days(1));
            let slot = slot_of(c.subject, every) == day_number(today).rem_euclid(every);
            overdue || behind || (slot && not_today)
        }
    }
}

/// Whether the listing reports `c` as ended (a terminal state: it has no usage to come).
fn is_ended(c: &Candidate<'_>) -> bool {
    c.listed.is_some_and(|l| l.state == ListedState::Ended)
}

/// Whether the run's listing vouches for yesterday of `c`, a subject it does not fetch: an
/// ended, dormant subject covered through the day before, which the listing shows still
/// ended (so yesterday had no use, and is complete).
fn vouched(
    c: &Candidate<'_>,
    class: Class,
    due: bool,
    facts: &PlanFacts,
    today: NaiveDate,
) -> bool {
    !due && class == Class::Dormant
        && c.cadence == Cadence::History
        && is_ended(c)
        && fetched_on(facts, c) == Some(today - TimeDelta::days(1))
}

/// Where a snapshot keeps the listing's row it was taken against (the writer puts it there).
pub(super) const LISTING_KEY: &str = "listing";

/// For a daily snapshot its listing names (`None` when it names none): due when the
/// entity has no snapshot yet, or when a field of the listing's row differs from the
/// latest snapshot; else once per UTC day, unless the listing reports it ended (then
/// nothing is left to change).
fn daily_due(c: &Candidate<'_>, facts: &PlanFacts, today: NaiveDate) -> Option<bool> {
    let (kind, id, row) = c.listed?.row.as_ref()?;
    let Some((taken, snapshot)) = facts.snapshots.get(&(kind.clone(), id.clone())) else {
        return Some(true);
    };
    // The row the snapshot was taken against; snapshots from before it was kept are
    // compared field by field with the details.
    let changed = match snapshot.get(LISTING_KEY) {
        Some(kept) => kept != row,
        None => row.as_object().is_some_and(|fields| {
            fields
                .iter()
                .any(|(k, v)| snapshot.get(k).is_some_and(|kept| kept != v))
        }),
    };
    Some(changed || (*taken < today && !is_ended(c)))
}

/// The day of a subject's probe within `every` days, spread by a hash of its name.
fn slot_of(subject: &str, every: i64) -> i64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    subject.hash(&mut hasher);
    (hasher.finish() % every.unsigned_abs().max(1)) as i64
}

fn day_number(day: NaiveDate) -> i64 {
    i64::from(day.num_days_from_ce())
}

/// What a run decided: each subject's class and whether it is fetched now.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The subject.
    pub subject: String,
    /// Its class.
    pub class: Class,
    /// Whether this run fetches it.
    pub due: bool,
    /// Whether, not fetched, its listing vouches for today : an ended subject the listing still shows ended has no usage that day.
    pub vouched: bool,
}

/// Decides every candidate for a run on `today`, and the account's plan at
/// `ticks_per_day` ticks a day.
pub fn decide(
    candidates: &[Candidate<'_>],
    facts: &PlanFacts,
    today: NaiveDate,
    window_days: u32,
    ticks_per_day: f64,
) -> (Vec<Decision>, AccountPlan) {
    let classes: Vec<Class> = candidates
        .iter()
        .map(|c| classify(c, facts, today))
        .collect();
    let count = |class| classes.iter().filter(|c| **c == class).count() as u64;
    let (hot, quiet, dormant) = (
        count(Class::Hot),
        count(Class::Quiet),
        count(Class::Dormant),
    );
    let ended_dormant = candidates
        .iter()
        .zip(&classes)
        .filter(|(c, class)| {
            **class == Class::Dormant && c.cadence == Cadence::History && is_ended(c)
        })
        .count() as u64;
    // Dormant snapshots are never probed: only a changed listing row makes them due.
    let probed = candidates
        .iter()
        .zip(&classes)
        .filter(|(c, class)| **class == Class::Dormant && c.cadence == Cadence::History)
        .count() as u64;
    let others = hot as f64 * ticks_per_day + quiet as f64;
    let probes = ProbeDays::new(window_days, others, ended_dormant);
    let probes_per_day = ended_dormant as f64 / probes.ended as f64
        + (probed - ended_dormant) as f64 / probes.unwatched as f64;
    let decisions = candidates
        .iter()
        .zip(classes)
        .map(|(c, class)| {
            let due = is_due(c, class, facts, today, probes);
            Decision {
                subject: c.subject.to_owned(),
                class,
                due,
                vouched: vouched(c, class, due, facts, today),
            }
        })
        .collect();
    let plan = AccountPlan {
        hot,
        quiet,
        dormant,
        requests_per_day: others + probes_per_day,
        everything_per_day: candidates.len() as f64 * ticks_per_day,
    };
    (decisions, plan)
}

#[cfg(test)]
mod tests;
