//! `usage-archiver status`: each account's health, as a table or JSON.
//!
//! Exit codes (SPEC §2): 0 healthy; 1 degraded (an account's last success is
//! older than twice its schedule's interval, it never succeeded, days are
//! lost, or in the last 7 days a final day was marked implausible or a final
//! figure was revised by more than tenfold); 2 the archive cannot be opened. Works from `--db` alone, taking schedules from
//! the archive's own records.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{EXIT_DEGRADED, EXIT_ERROR, EXIT_OK, database_path, load_optional_config};
use crate::cli::StatusArgs;
use crate::config::{Config, Schedule};
use crate::model::ProviderKind;
use crate::store::coverage::{SubjectGaps, load_gaps};
use crate::store::flags::{Revision, SuspectDay, load_revisions, load_suspect_days};
use crate::store::plan::{AccountPlan, ObservedWindow, load_account_plan, load_observed_window};
use crate::store::query::{self, AccountStatus};
use crate::store::{Store, StoreError};

mod render;
use render::{ago, render_status};

/// One account's status plus the verdict.
#[derive(Debug, Serialize)]
pub(crate) struct AccountHealth {
    #[serde(flatten)]
    status: AccountStatus,
    /// `healthy`, `degraded` or `unknown`.
    health: &'static str,
    /// Why it is not healthy.
    reason: Option<String>,
    /// The next scheduled run, when the schedule is known.
    next_run_at: Option<String>,
    /// Missing days still kept by the provider.
    recoverable_days: usize,
    /// Missing days the provider no longer keeps.
    lost_days: usize,
    /// The exact missing days per subject.
    gaps: Vec<SubjectGaps>,
    /// The latest scheduled run's fetch plan, when one was made.
    plan: Option<AccountPlan>,
    /// The days of history the provider is assumed to keep (`retention_days`).
    window_days_assumed: u32,
    /// The most days back its answers reached on the latest 7 days they were seen, when it answers with
    /// history (trusted once answers were seen on as many days as assumed).
    window_days_observed: Option<u32>,
    /// Said when the provider keeps fewer days than assumed.
    window_warning: Option<String>,
    /// Changes to final figures in the last [`RECENT_DAYS`] days: news to whoever billed
    /// from them.
    revisions_recent: usize,
    /// Those of them by more than the large-revision factor either way.
    large_revisions: Vec<Revision>,
    /// Final days marked implausible in the last [`RECENT_DAYS`] days.
    suspect_days: Vec<SuspectDay>,
}

/// How far back `status` looks for revisions and implausible days.
const RECENT_DAYS: i64 = 7;

pub(super) async fn execute(args: StatusArgs) -> anyhow::Result<u8> {
    let config = load_optional_config(&args.paths)?;
    let path = database_path(&args.paths, config.as_ref());
    let now = args.now.unwrap_or_else(Utc::now);
    show(&path, config.as_ref(), now, args.json)
}

/// Prints the status of the archive at `path` (accounts of `config` included) and returns the exit code.
pub(super) fn show(
    path: &std::path::Path,
    config: Option<&Config>,
    now: DateTime<Utc>,
    json: bool,
) -> anyhow::Result<u8> {
    let healths = match load_healths(path, config, now) {
        Ok(h) => h,
        Err(err) => {
            eprintln!("error: {:#}", anyhow::Error::from(err));
            return Ok(EXIT_ERROR);
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "database": path.display().to_string(),
                "accounts": healths,
            }))?
        );
    } else {
        print!("{}", render_status(path, &healths, now));
    }
    let degraded = healths.iter().any(|h| h.health != "healthy");
    Ok(if degraded { EXIT_DEGRADED } else { EXIT_OK })
}

/// Every account's status, gaps and verdict.
fn load_healths(
    path: &std::path::Path,
    config: Option<&Config>,
    now: DateTime<Utc>,
) -> Result<Vec<AccountHealth>, StoreError> {
    let store = Store::open_read_only(path)?;
    store.with_conn(|c| {
        let statuses = with_configured_accounts(query::load_account_statuses(c)?, config);
        let since = (now - chrono::TimeDelta::days(RECENT_DAYS))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let revisions = load_revisions(c, &since)?;
        let suspects = load_suspect_days(c, &since)?;
        statuses
            .into_iter()
            .map(|s| {
                let assumed = retention_days(&s, config);
                let today = now.date_naive();
                let observed = load_observed_window(c, &s.provider, &s.account, today)?;
                let window = ObservedWindow::trusted(observed, assumed);
                let gaps = load_gaps(c, &s.provider, &s.account, today, window)?;
                let plan = load_account_plan(c, &s.provider, &s.account)?;
                let ours = |p: &str, a: &str| p == s.provider && a == s.account;
                let recent: Vec<&Revision> = revisions
                    .iter()
                    .filter(|r| ours(&r.provider, &r.account))
                    .collect();
                let figures = Figures {
                    revisions_recent: recent.len(),
                    large_revisions: recent.into_iter().filter(|r| r.is_large()).cloned().collect(),
                    suspect_days: suspects
                        .iter()
                        .filter(|d| ours(&d.provider, &d.account))
                        .cloned()
                        .collect(),
                };
                let mut health = assess(s, gaps, figures, config, now);
                health.plan = plan;
                health.window_days_assumed = assumed;
                health.window_days_observed = observed.map(|o| o.days);
                health.window_warning = (window < assumed).then(|| {
                    let o = window;
                    format!(
                        "the provider's answers reach back {o} days, fewer than the {assumed} assumed \
                         (retention_days): days missed in an outage longer than {o} days are lost; \
                         set retention_days = {o}"
                    )
                });
                Ok(health)
            })
            .collect()
    })
}

/// The account's retention window: the config's, else the archive's record, else the provider's default.
fn retention_days(status: &AccountStatus, config: Option<&Config>) -> u32 {
    config
        .and_then(|c| {
            c.accounts
                .iter()
                .find(|a| a.kind.as_str() == status.provider && a.name == status.account)
        })
        .map(|a| a.retention_days)
        .or(status.retention_days)
        .or_else(|| {
            ProviderKind::from_name(&status.provider)
                .map(|k| crate::config::profile(k).retention_days)
        })
        .unwrap_or(1)
}

/// Adds configured accounts the archive has never seen, so they show as never synced.
fn with_configured_accounts(
    mut statuses: Vec<AccountStatus>,
    config: Option<&Config>,
) -> Vec<AccountStatus> {
    for a in config.map(|c| c.accounts.as_slice()).unwrap_or_default() {
        if !statuses
            .iter()
            .any(|s| s.provider == a.kind.as_str() && s.account == a.name)
        {
            statuses.push(AccountStatus {
                provider: a.kind.as_str().to_owned(),
                account: a.name.clone(),
                schedule: Some(a.schedule.as_str().to_owned()),
                retention_days: Some(a.retention_days),
                last_attempt_at: None,
                last_status: None,
                last_success_at: None,
                last_error: None,
                subjects: 0,
                rows: 0,
            });
        }
    }
    statuses
}

/// What the account's recent figures show beyond its runs.
struct Figures {
    revisions_recent: usize,
    large_revisions: Vec<Revision>,
    suspect_days: Vec<SuspectDay>,
}

/// Judges one account against its schedule and its figures.
fn assess(
    status: AccountStatus,
    gaps: Vec<SubjectGaps>,
    figures: Figures,
    config: Option<&Config>,
    now: DateTime<Utc>,
) -> AccountHealth {
    let configured = config.and_then(|c| {
        c.accounts
            .iter()
            .find(|a| a.kind.as_str() == status.provider && a.name == status.account)
    });
    let schedule = configured.map(|a| a.schedule.clone()).or_else(|| {
        status
            .schedule
            .as_deref()
            .and_then(|s| Schedule::parse(s).ok())
    });
    let next_run_at = schedule
        .as_ref()
        .and_then(|s| s.next_after(now))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let last_success = status
        .last_success_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let recoverable_days = gaps.iter().map(|g| g.recoverable.len()).sum();
    let lost_days: usize = gaps.iter().map(|g| g.lost.len()).sum();
    let (health, reason) = match (last_success, &schedule) {
        (None, _) => ("degraded", Some("never synced successfully".to_owned())),
        (Some(t), _) if crate::config::is_in_future(t, now) => (
            "degraded",
            Some(format!(
                "last success {} is in the future: the clock moved back (or was wrong then); runs are due now",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )),
        ),
        _ if lost_days > 0 => (
            "degraded",
            Some(format!(
                "{lost_days} {} lost (no longer kept by the provider); `status --json` lists them",
                if lost_days == 1 { "day" } else { "days" }
            )),
        ),
        _ if !figures.suspect_days.is_empty() => (
            "degraded",
            Some(format!(
                "{} implausible final {} in the last {RECENT_DAYS} days (above the counter's \
                 allocation or max_day_mb), kept as given; `status --json` lists them",
                figures.suspect_days.len(),
                if figures.suspect_days.len() == 1 {
                    "day"
                } else {
                    "days"
                }
            )),
        ),
        _ if !figures.large_revisions.is_empty() => (
            "degraded",
            Some(format!(
                "{} final {} revised by more than {}x in the last {RECENT_DAYS} days; \
                 `status --json` lists them",
                figures.large_revisions.len(),
                if figures.large_revisions.len() == 1 {
                    "figure"
                } else {
                    "figures"
                },
                crate::store::flags::LARGE_REVISION_FACTOR
            )),
        ),
        (Some(t), Some(s)) if now - t > s.interval(now) * 2 => (
            "degraded",
            Some(format!(
                "last success {} ago, more than twice the schedule's interval",
                ago(now - t)
            )),
        ),
        (Some(_), None) => ("healthy", None),
        (Some(_), Some(_)) => ("healthy", None),
    };
    AccountHealth {
        status,
        health,
        reason,
        next_run_at,
        recoverable_days,
        lost_days,
        gaps,
        plan: None,
        window_days_assumed: 0,
        window_days_observed: None,
        window_warning: None,
        revisions_recent: figures.revisions_recent,
        large_revisions: figures.large_revisions,
        suspect_days: figures.suspect_days,
    }
}
