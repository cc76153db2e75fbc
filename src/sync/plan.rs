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
mod tests {
    use super::*;

    fn day(d: &str) -> NaiveDate {
        NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap()
    }

    fn listed(state: ListedState) -> Listed {
        Listed::new(state)
    }

    /// What the archive may say of a subject.
    #[derive(Clone, Copy)]
    struct Archive {
        covered: Option<&'static str>,
        recent: bool,
        in_window: bool,
        provisional: bool,
    }

    const FRESH: Archive = Archive {
        covered: None,
        recent: false,
        in_window: false,
        provisional: false,
    };
    const USED_TODAY: Archive = Archive {
        covered: Some("2026-03-10"),
        recent: true,
        in_window: true,
        provisional: true,
    };
    const USED_LAST_WEEK: Archive = Archive {
        covered: Some("2026-03-09"),
        recent: false,
        in_window: true,
        provisional: false,
    };
    const SILENT_FINAL: Archive = Archive {
        covered: Some("2026-03-09"),
        recent: false,
        in_window: false,
        provisional: false,
    };
    const SILENT_PROVISIONAL: Archive = Archive {
        covered: Some("2026-03-09"),
        recent: false,
        in_window: false,
        provisional: true,
    };

    fn facts(a: Archive) -> PlanFacts {
        let mut f = PlanFacts::default();
        let s = "s".to_owned();
        // `covered` names the day of the latest fetch: coverage holds the days before it.
        if let Some(d) = a.covered {
            f.covered.insert(s.clone(), day(d) - TimeDelta::days(1));
        }
        if a.recent {
            f.recent.insert(s.clone());
        }
        if a.in_window {
            f.in_window.insert(s.clone());
        }
        if a.provisional {
            f.provisional.insert(s);
        }
        f
    }

    /// See: issue 16 (plan classes from archive states)
    #[test]
    fn classes_follow_the_archive_and_the_listing() {
        use Cadence::*;
        use ListedState::*;
        let cases: [(&str, Cadence, Option<ListedState>, Archive, Class); 12] = [
            ("counter", EveryTick, None, SILENT_FINAL, Class::Hot),
            ("daily snapshot", Daily, None, USED_TODAY, Class::Quiet),
            (
                "listed active, silent",
                History,
                Some(Active),
                SILENT_FINAL,
                Class::Hot,
            ),
            (
                "used yesterday or today",
                History,
                Some(Ended),
                USED_TODAY,
                Class::Hot,
            ),
            (
                "used within the window",
                History,
                None,
                USED_LAST_WEEK,
                Class::Quiet,
            ),
            ("never fetched", History, Some(Ended), FRESH, Class::Quiet),
            (
                "ended, silent, final",
                History,
                Some(Ended),
                SILENT_FINAL,
                Class::Dormant,
            ),
            (
                "no state known, silent, final",
                History,
                None,
                SILENT_FINAL,
                Class::Dormant,
            ),
            (
                "not terminal (no funds)",
                History,
                Some(Other),
                SILENT_FINAL,
                Class::Quiet,
            ),
            (
                "a provisional day left",
                History,
                Some(Ended),
                SILENT_PROVISIONAL,
                Class::Quiet,
            ),
            (
                "ended but used last week",
                History,
                Some(Ended),
                USED_LAST_WEEK,
                Class::Quiet,
            ),
            (
                "listed active, used",
                History,
                Some(Active),
                USED_TODAY,
                Class::Hot,
            ),
        ];
        for (what, cadence, state, archive, class) in cases {
            let l = state.map(listed);
            let c = Candidate {
                subject: "s",
                cadence,
                listed: l.as_ref(),
            };
            assert_eq!(
                classify(&c, &facts(archive), day("2026-03-10")),
                class,
                "{what}"
            );
        }
    }

    /// Quiet subjects are due on the first run of a UTC day and not again that day;
    /// dormant ones when overdue or on their slot; a daily snapshot when its listing row
    /// differs from the day's snapshot.
    #[test]
    fn what_is_due_when() {
        let probes = ProbeDays {
            unwatched: 6,
            ended: 7,
        };
        let c = Candidate {
            subject: "s",
            cadence: Cadence::History,
            listed: None,
        };
        let f = facts(USED_LAST_WEEK);
        assert!(
            is_due(&c, Class::Quiet, &f, day("2026-03-10"), probes),
            "first run of the day"
        );
        assert!(
            !is_due(&c, Class::Quiet, &f, day("2026-03-09"), probes),
            "already fetched today"
        );
        let f = facts(SILENT_FINAL);
        assert!(
            is_due(&c, Class::Dormant, &f, day("2026-03-15"), probes),
            "six days: overdue"
        );
        let due_days = (10..15)
            .filter(|d| is_due(&c, Class::Dormant, &f, day(&format!("2026-03-{d}")), probes))
            .count();
        assert!(
            due_days <= 1,
            "at most its slot before it is overdue: {due_days}"
        );
        assert!(is_due(&c, Class::Hot, &f, day("2026-03-09"), probes));

        let mut f = PlanFacts::default();
        let row = serde_json::json!({"tag": "a", "expires_at": null});
        let l = Listed {
            row: Some(("order".into(), "5".into(), row)),
            ..Listed::new(ListedState::Other)
        };
        let c = Candidate {
            subject: "order/5",
            cadence: Cadence::Daily,
            listed: Some(&l),
        };
        let today = day("2026-03-10");
        assert!(
            is_due(&c, Class::Quiet, &f, today, probes),
            "never snapshotted"
        );
        let kept = serde_json::json!({"tag": "a", "status": "active", "expires_at": null});
        let key = ("order".to_owned(), "5".to_owned());
        f.snapshots.insert(key.clone(), (today, kept.clone()));
        assert!(
            !is_due(&c, Class::Quiet, &f, today, probes),
            "unchanged today"
        );
        f.snapshots
            .insert(key.clone(), (day("2026-03-09"), kept.clone()));
        assert!(is_due(&c, Class::Quiet, &f, today, probes), "a new UTC day");
        f.snapshots
            .insert(key.clone(), (today, serde_json::json!({"tag": "b"})));
        assert!(
            is_due(&c, Class::Quiet, &f, today, probes),
            "the listing changed"
        );
        // An ended object: its snapshot is not taken again unless the listing changes.
        let ended = Listed {
            state: ListedState::Ended,
            ..l.clone()
        };
        let c = Candidate {
            listed: Some(&ended),
            ..c
        };
        f.snapshots.insert(key.clone(), (day("2026-02-01"), kept));
        assert_eq!(classify(&c, &f, today), Class::Dormant);
        assert!(
            !is_due(&c, Class::Dormant, &f, today, probes),
            "nothing to change"
        );
        f.snapshots
            .insert(key, (day("2026-02-01"), serde_json::json!({"tag": "b"})));
        assert_eq!(classify(&c, &f, today), Class::Quiet, "the listing changed");
        assert!(is_due(&c, Class::Quiet, &f, today, probes));
    }

    /// An ended dormant subject covered through yesterday is left to the listing, which
    /// vouches for today; one whose coverage fell behind (missed ticks) is fetched.
    #[test]
    fn the_listing_vouches_for_ended_subjects_seen_every_day() {
        let probes = ProbeDays {
            unwatched: 6,
            ended: 30,
        };
        let ended = listed(ListedState::Ended);
        // A name whose probe slot is not 2026-03-10 nor 2026-03-11.
        let subject = (0..)
            .map(|i| format!("order-{i}"))
            .find(|n| {
                let slot = slot_of(n, 30);
                ![day("2026-03-10"), day("2026-03-11")]
                    .iter()
                    .any(|d| slot == day_number(*d).rem_euclid(30))
            })
            .unwrap();
        let c = Candidate {
            subject: &subject,
            cadence: Cadence::History,
            listed: Some(&ended),
        };
        // The day of the latest fetch or vouch: coverage holds the days before it.
        let covered_through = |d: &str| {
            let mut f = PlanFacts::default();
            f.covered
                .insert(subject.clone(), day(d) - TimeDelta::days(1));
            f
        };
        let today = day("2026-03-10");
        let f = covered_through("2026-03-09");
        let due = is_due(&c, Class::Dormant, &f, today, probes);
        assert!(!due, "covered through yesterday, not its slot");
        assert!(vouched(&c, Class::Dormant, due, &f, today));
        let f = covered_through("2026-03-10");
        let due = is_due(&c, Class::Dormant, &f, today, probes);
        assert!(
            !due && !vouched(&c, Class::Dormant, due, &f, today),
            "already covered"
        );
        let f = covered_through("2026-03-08");
        assert!(
            is_due(&c, Class::Dormant, &f, today, probes),
            "a day was missed: fetched to catch up"
        );
        let unwatched = Candidate { listed: None, ..c };
        let f = covered_through("2026-03-09");
        let due = is_due(&unwatched, Class::Dormant, &f, today, probes);
        assert!(
            !vouched(&unwatched, Class::Dormant, due, &f, today),
            "no listing: no voucher"
        );
        let other = listed(ListedState::Other);
        let not_ended = Candidate {
            listed: Some(&other),
            ..c
        };
        assert!(
            !vouched(&not_ended, Class::Dormant, false, &f, today),
            "not terminal"
        );
        assert!(!vouched(&c, Class::Quiet, false, &f, today), "not dormant");
    }

    /// Probes of dormant subjects spread evenly over their interval.
    #[test]
    fn probes_spread_over_the_days() {
        let probes = ProbeDays {
            unwatched: 7,
            ended: 7,
        };
        let mut f = PlanFacts::default();
        let names: Vec<String> = (0..7000).map(|i| format!("order-{i}")).collect();
        for n in &names {
            f.covered.insert(n.clone(), day("2026-03-08"));
        }
        let today = day("2026-03-10");
        let due = names
            .iter()
            .filter(|n| {
                let c = Candidate {
                    subject: n,
                    cadence: Cadence::History,
                    listed: None,
                };
                is_due(&c, Class::Dormant, &f, today, probes)
            })
            .count();
        assert!((800..1200).contains(&due), "about a seventh: {due}");
    }

    /// Unwatched dormant subjects are probed before a closed day can leave the window;
    /// ended ones weekly, or less often when they would cost over a tenth of the plan.
    #[test]
    fn probe_intervals() {
        assert_eq!(
            ProbeDays::new(7, 24_000.0, 9_000),
            ProbeDays {
                unwatched: 6,
                ended: 7
            }
        );
        assert_eq!(ProbeDays::new(14, 24_000.0, 9_000).unwatched, 7);
        assert_eq!(ProbeDays::new(2, 0.0, 0).unwatched, 1);
        assert_eq!(ProbeDays::new(7, 24_000.0, 90_000).ended, 38);
    }
}
