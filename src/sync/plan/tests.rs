//! The plan's decisions, subject by subject.

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
