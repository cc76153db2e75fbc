//! A year in a minute (issue 26): deterministic simulation of long operation.
//!
//! The real sync, fetch plan and store archive the in-process simulators of all four
//! providers through virtual time: an hourly tick runs what `run --once` would (every
//! account a tick of its schedule made due), now and then a `backfill`, while the seed's
//! history unfolds: orders, customers, servers and sub-users created, busy, quiet,
//! ended and back; extensions; counters reset; HydraProxy's window shrinking from 7 days
//! to 3; faults of every kind; outages of hours to days, one per provider longer than
//! its window; restarts; crashes between fetch and commit; the clock stepping back and
//! forward; a Hostens token expiring in the middle of a run. After every tick the rows
//! and snapshots it wrote are checked against the simulators' truth, and after every
//! simulated day the whole archive (see `invariants`). A failure names the seed and the
//! tick; `SIMULATION_SEED=N cargo test simulation::a_year` replays it
//! (`scripts/simulate.sh` runs many seeds).

mod invariants;
mod truth;
mod world;

use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;
use usage_archiver::config::Config;
use usage_archiver::http::HttpClient;
use usage_archiver::sim::Simulator;
use usage_archiver::store::Store;
use usage_archiver::store::runs::RunStatus;
use usage_archiver::sync::{self, Clock, SyncOptions};

use invariants::Seen;
use world::{Events, History, PROVIDERS};

/// What a simulated history came to.
#[derive(Debug, Default)]
pub struct Outcome {
    pub seed: u64,
    pub days: u32,
    pub ticks: u64,
    pub runs: u64,
    pub requests: u64,
    pub faults: u64,
    pub outage_hours: u64,
    pub restarts: u64,
    pub crashes: u64,
    pub clock_steps: u64,
    pub checks: u64,
}

/// The archiver's process: its archive connection and HTTP client. A restart drops it.
struct Process {
    store: Store,
    http: HttpClient,
}

impl Process {
    fn start(config: &Config) -> Self {
        Self {
            store: Store::open(&config.archive.database).expect("the archive opens"),
            http: HttpClient::new(&config.http).expect("an HTTP client"),
        }
    }
}

/// Runs `days` simulated days of seed `seed`; the first broken promise panics, naming
/// the seed and the tick.
pub async fn simulate(seed: u64, days: u32) -> Outcome {
    let history = History::new(seed, days);
    let sim = Simulator::start(history.book())
        .await
        .expect("the simulator starts");
    sim.faults()
        .set_stall(std::time::Duration::from_millis(400));
    let dir = world::scratch_dir();
    let config = world::config(&sim, &dir.path().join("archive.db"));
    let mut process = Process::start(&config);
    let mut seen = Seen::default();
    let conn = rusqlite::Connection::open(&config.archive.database).expect("a reader");
    let mut outcome = Outcome {
        seed,
        days,
        ..Outcome::default()
    };
    let ticks = u64::from(days) * 24;
    let mut previous = history.start;
    for n in 0..ticks {
        let now = history.clock_at(n);
        let events = history.events_at(n);
        if now < previous || now - previous > TimeDelta::hours(1) {
            outcome.clock_steps += 1;
        }
        previous = now;
        sim.clock().set(now);
        let down = history.down_at(now);
        outcome.outage_hours += down.len() as u64;
        for (i, (_, prefix)) in PROVIDERS.iter().enumerate() {
            sim.faults().set_down(prefix, down.contains(&i));
        }
        let (rate, kinds) = history.faults(events);
        sim.faults().set(rate, &kinds);
        if events.restart {
            drop(process);
            process = Process::start(&config);
            outcome.restarts += 1;
        }
        let fail = |what: String| {
            // The archive as it was, for a look: `sqlite3 target/simulation-seed-N.db`.
            let kept = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("target/simulation-seed-{seed}.db"));
            let _ = std::fs::remove_file(&kept);
            let _ = conn.execute("VACUUM INTO ?1", [kept.to_string_lossy()]);
            panic!(
                "seed {seed}, tick {n} ({now}): {what} (the archive: {})",
                kept.display()
            )
        };
        let crashed = tick(
            &config,
            &mut process,
            &sim,
            &mut seen,
            now,
            events,
            &mut outcome,
        )
        .await;
        if crashed {
            // The crashed process is gone: its run is marked so when the archive reopens.
            conn.execute(
                "UPDATE sync_run SET pid = 999999999 WHERE status = 'running'",
                [],
            )
            .expect("mark the crashed run's process gone");
            drop(process);
            process = Process::start(&config);
            outcome.crashes += 1;
        }
        if let Err(e) = seen.rows_hold_the_truth(&conn, sim.config(), Some(now)) {
            fail(e);
        }
        let last = n + 1 == ticks;
        let day_ends = history.clock_at(n + 1).date_naive() != now.date_naive() || last;
        let week_ends =
            day_ends && (now.date_naive() - history.start.date_naive()).num_days() % 7 == 6;
        if day_ends
            && let Err(e) = check_day(
                &conn,
                &sim,
                &config,
                &mut seen,
                now,
                week_ends || last,
                last,
            )
        {
            fail(e);
        }
    }
    if let Some(keep) = std::env::var_os("SIMULATION_KEEP") {
        let _ = std::fs::remove_file(&keep);
        let _ = conn.execute("VACUUM INTO ?1", [keep.to_string_lossy()]);
    }
    outcome.ticks = ticks;
    outcome.requests = sim.faults().requests();
    outcome.faults = sim.faults().injected();
    outcome.checks = seen.checks;
    outcome
}

/// One tick: every account a tick of its schedule made due, by the fetch plan (one of
/// them crashed part way when the history says so), then a backfill when it says so.
/// Returns whether a run crashed.
async fn tick(
    config: &Config,
    process: &mut Process,
    sim: &Simulator,
    seen: &mut Seen,
    now: DateTime<Utc>,
    events: Events,
    outcome: &mut Outcome,
) -> bool {
    let mut crashed = false;
    for (i, account) in config.accounts.iter().enumerate() {
        let label = account.label();
        let (kind, name) = (account.kind.as_str(), account.name.clone());
        let last = process
            .store
            .call(move |c| usage_archiver::store::runs::load_last_success(c, kind, &name))
            .await
            .expect("last success")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc));
        if !account.schedule.ticked_since(last, now) {
            continue;
        }
        seen.ticks
            .entry(label.clone())
            .or_default()
            .insert(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let crash_here = events.crash == Some(i);
        let status = run(process, account, sim, now, true, crash_here).await;
        outcome.runs += 1;
        match status {
            Some(RunStatus::Ok) => seen.ok_runs.entry(label).or_default().push(now),
            None => {
                crashed = true;
                break;
            }
            Some(_) => {}
        }
    }
    if events.backfill && !crashed {
        for account in &config.accounts {
            let label = account.label();
            seen.ticks
                .entry(label.clone())
                .or_default()
                .insert(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            if run(process, account, sim, now, false, false).await == Some(RunStatus::Ok) {
                seen.ok_runs.entry(label).or_default().push(now);
            }
            outcome.runs += 1;
        }
    }
    crashed
}

/// One run of `account` at `now`; `None` when it was cut off between fetch and commit.
async fn run(
    process: &Process,
    account: &usage_archiver::config::AccountConfig,
    sim: &Simulator,
    now: DateTime<Utc>,
    plan: bool,
    crash: bool,
) -> Option<RunStatus> {
    let vault = sync::vault(Some(process.store.path()), account);
    let provider = usage_archiver::providers::build(account, &process.http, vault);
    let mut options = SyncOptions::new(usage_archiver::config::KeepRaw::Errors);
    options.clock = Clock::fixed(now);
    options.plan = plan;
    let cancel = CancellationToken::new();
    let running = sync::run_account(account, provider, &process.store, &options, &cancel);
    if !crash {
        let status = running.await.expect("the run is recorded").status;
        return Some(status);
    }
    // Cut off once a couple of answers have come: fetched, not all committed.
    let cut = sim.faults().requests() + 3;
    tokio::select! {
        report = running => Some(report.expect("the run is recorded").status),
        () = async {
            while sim.faults().requests() < cut {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        } => None,
    }
}

/// At the end of a simulated day: the day's snapshots, the rollups, and each account's
/// coverage and gaps; weekly (`thorough`) the file's soundness and secrets; at the end
/// (`all`) every row, snapshot and day again.
fn check_day(
    conn: &rusqlite::Connection,
    sim: &Simulator,
    config: &Config,
    seen: &mut Seen,
    now: DateTime<Utc>,
    thorough: bool,
    all: bool,
) -> Result<(), String> {
    if all {
        seen.rows_hold_the_truth(conn, sim.config(), None)?;
    }
    let day = (!all).then(|| now.date_naive());
    seen.snapshots_hold_the_truth(conn, sim.config(), day)?;
    seen.archive_is_sound(conn, thorough)?;
    for account in &config.accounts {
        let window = window_of(conn, account, now);
        seen.days_are_kept_or_told(conn, sim.config(), account, now, window, all)?;
    }
    Ok(())
}

/// The window the gap calendar uses for an account: the observed one when trusted.
fn window_of(
    conn: &rusqlite::Connection,
    account: &usage_archiver::config::AccountConfig,
    now: DateTime<Utc>,
) -> u32 {
    let observed = usage_archiver::store::plan::load_observed_window(
        conn,
        account.kind.as_str(),
        &account.name,
        now.date_naive(),
    )
    .expect("observed window");
    usage_archiver::store::plan::ObservedWindow::trusted(observed, account.retention_days).max(1)
}

/// The seed and length of history the test runs: `SIMULATION_SEED` and `SIMULATION_DAYS`.
fn from_env() -> (u64, u32) {
    let seed = std::env::var("SIMULATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let days = std::env::var("SIMULATION_DAYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(365);
    (seed, days)
}

/// One seed of a whole simulated year, every provider, every kind of fault: every
/// promise holds after every tick and every day. `SIMULATION_SEED` and
/// `SIMULATION_DAYS` choose another history; `scripts/simulate.sh` runs many.
// See: issue 26
#[tokio::test(flavor = "current_thread")]
async fn a_year_of_every_provider_keeps_every_promise() {
    let (seed, days) = from_env();
    let began = Instant::now();
    let o = simulate(seed, days).await;
    eprintln!(
        "SIMULATION seed {} ok: {} days, {} ticks, {} runs, {} requests, {} faults, {} outage hours, \
         {} restarts, {} crashes, {} clock steps, {} checks, {:.1} s",
        o.seed,
        o.days,
        o.ticks,
        o.runs,
        o.requests,
        o.faults,
        o.outage_hours,
        o.restarts,
        o.crashes,
        o.clock_steps,
        o.checks,
        began.elapsed().as_secs_f64(),
    );
    assert!(o.runs > o.ticks / 2 && o.checks > o.ticks, "{o:?}");
    if days >= 365 {
        assert!(
            o.faults > 100 && o.restarts > 5 && o.clock_steps > 5,
            "{o:?}"
        );
    }
}

/// Seed 1's first days: a day fetched only before it ended (InfiniteProxies, before its
/// 16-day outage) was taken as covered, its provisional figure passing for final.
// See: issue 26 (found by the simulation, seed 1, tick 95)
#[tokio::test(flavor = "current_thread")]
async fn seed_1_a_day_fetched_only_before_it_ended_is_a_gap() {
    let o = simulate(1, 5).await;
    assert!(o.checks > 0);
}

/// Seed 1's second week: an order's first day with use cut its coverage short, leaving
/// the days before it within the window (fetched, without use) uncovered.
// See: issue 26 (found by the simulation, seed 1, tick 191)
#[tokio::test(flavor = "current_thread")]
async fn seed_1_days_before_a_subjects_first_use_are_covered() {
    let o = simulate(1, 9).await;
    assert!(o.checks > 0);
}

/// Seed 1 over 20 days: HydraProxy's window shrinks from 7 days to 3 while the learned
/// window still said 7 (the most of 30 days of answers): days the provider no longer kept
/// were told recoverable. An answer that leaves out a day with use now bounds the window
/// at once.
// See: issue 26 (found by the simulation, seed 1, tick 287 of a 20-day history)
#[tokio::test(flavor = "current_thread")]
async fn seed_1_a_shrunk_window_is_learned_at_once() {
    let o = simulate(1, 20).await;
    assert!(o.checks > 0);
}

/// Seed 45's third week: after an outage longer than the observations' week, an order
/// with no use in its answer covered nothing, so its days within the window were never
/// covered. A stale run now covers yesterday, writes answers without days last, and
/// takes the window another answer of the same run reached.
// See: issue 26 (found by the simulation, seed 45, tick 455)
#[tokio::test(flavor = "current_thread")]
async fn seed_45_an_empty_answer_after_an_outage_covers_what_the_run_confirmed() {
    let o = simulate(45, 20).await;
    assert!(o.checks > 0);
}

/// Seed 3's fifth month: a window that shrank (7 → 3 days, learned from a dropped day)
/// was forgotten after a week of outage, and the older, wider window made lost days look
/// recoverable. The evidence now holds until an answer reaches further.
// See: issue 26 (found by the simulation, seed 3, tick 3479)
#[tokio::test(flavor = "current_thread")]
async fn seed_3_a_shrunk_window_is_remembered_through_an_outage() {
    let o = simulate(3, 146).await;
    assert!(o.checks > 0);
}

/// Seed 152's second week: after an outage, an order whose answer reached back less far
/// than another's was written first and covered only its own reach. A run after an
/// outage now writes its answers once all are in, the one reaching back furthest first.
// See: issue 26 (found by the simulation, seed 152, tick 311)
#[tokio::test(flavor = "current_thread")]
async fn seed_152_after_an_outage_the_widest_answer_is_written_first() {
    let o = simulate(152, 14).await;
    assert!(o.checks > 0);
}
