//! The status table's parts: the verdict line, the missing days and the fetch plans.

use super::*;

/// The subjects missing days, with their names, at most [`GAPS_SHOWN`] per account
/// (`--json` lists every one).
pub(super) fn render_gaps(healths: &[AccountHealth]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for h in healths.iter().filter(|h| !h.gaps.is_empty()) {
        let _ = writeln!(
            out,
            "\nMissing days, {}/{} (recoverable/lost):",
            h.status.provider, h.status.account
        );
        for g in h.gaps.iter().take(GAPS_SHOWN) {
            let name = g
                .label
                .as_ref()
                .map_or_else(|| g.subject.clone(), |l| format!("{} ({l})", g.subject));
            let first = g.lost.first().or(g.recoverable.first());
            let last = g.recoverable.last().or(g.lost.last());
            let span = match (first, last) {
                (Some(a), Some(b)) if a != b => format!(", {a} to {b}"),
                (Some(a), _) => format!(", {a}"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {name}: {}/{}{span}",
                g.recoverable.len(),
                g.lost.len()
            );
        }
        if h.gaps.len() > GAPS_SHOWN {
            let _ = writeln!(out, "  … and {} more subjects", h.gaps.len() - GAPS_SHOWN);
        }
    }
    out
}

/// How many subjects with missing days the text status names per account.
const GAPS_SHOWN: usize = 10;

pub(super) fn ago(d: chrono::TimeDelta) -> String {
    let mins = d.num_minutes();
    match mins {
        m if m < 1 => "under a minute".to_owned(),
        m if m < 120 => format!("{m} min"),
        m if m < 48 * 60 => format!("{} h", m / 60),
        m => format!("{} days", m / (24 * 60)),
    }
}

/// `2026-11-21T00:05:00Z` as `2026-11-21 00:05Z`; other text unchanged.
pub(super) fn short_time(t: &str) -> String {
    DateTime::parse_from_rfc3339(t).map_or_else(
        |_| t.to_owned(),
        |t| t.with_timezone(&Utc).format("%Y-%m-%d %H:%MZ").to_string(),
    )
}

/// The first line of `text`, at most `max` characters (an ellipsis marks a cut).
pub(super) fn one_line(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    if line.chars().count() > max {
        let cut: String = line.chars().take(max - 1).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    }
}

/// The monitoring line: `OK`, `WARNING` (degraded, exit 1) with the accounts concerned.
pub(super) fn summary(healths: &[AccountHealth]) -> String {
    let degraded: Vec<String> = healths
        .iter()
        .filter(|h| h.health != "healthy")
        .map(|h| format!("{}/{}", h.status.provider, h.status.account))
        .collect();
    if degraded.is_empty() {
        format!(
            "OK: {} of {} accounts healthy",
            healths.len(),
            healths.len()
        )
    } else {
        format!(
            "WARNING: {} of {} accounts degraded: {}",
            degraded.len(),
            healths.len(),
            degraded.join(", ")
        )
    }
}

/// The status table as printed: a monitoring line, one row per account, then the reasons.
pub(crate) fn render_status(
    path: &std::path::Path,
    healths: &[AccountHealth],
    now: DateTime<Utc>,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    if healths.is_empty() {
        let _ = writeln!(
            out,
            "WARNING: no account has been synced into this archive yet"
        );
        let _ = writeln!(out, "Archive: {}", path.display());
        return out;
    }
    let _ = writeln!(out, "{}", summary(healths));
    let _ = writeln!(out, "Archive: {}\n", path.display());
    let mut rows = vec![
        [
            "provider",
            "account",
            "health",
            "last success",
            "last run",
            "subjects",
            "rows",
            "gaps rec/lost",
            "revised 7d",
            "next run",
            "last error",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for h in healths {
        let s = &h.status;
        let success = s.last_success_at.as_deref().map_or_else(
            || "never".to_owned(),
            |t| match DateTime::parse_from_rfc3339(t) {
                Ok(at) => format!(
                    "{}, {} ago",
                    short_time(t),
                    ago(now - at.with_timezone(&Utc))
                ),
                Err(_) => t.to_owned(),
            },
        );
        rows.push(vec![
            s.provider.clone(),
            s.account.clone(),
            h.health.to_owned(),
            success,
            s.last_status.clone().unwrap_or_else(|| "-".to_owned()),
            s.subjects.to_string(),
            s.rows.to_string(),
            format!("{}/{}", h.recoverable_days, h.lost_days),
            h.revisions_recent.to_string(),
            h.next_run_at
                .as_deref()
                .map_or_else(|| "-".to_owned(), short_time),
            s.last_error
                .as_deref()
                .map_or_else(|| "-".to_owned(), |e| one_line(e, 60)),
        ]);
    }
    out.push_str(&crate::commands::render_columns(&rows));
    let reasons: Vec<&AccountHealth> = healths.iter().filter(|h| h.reason.is_some()).collect();
    if !reasons.is_empty() {
        out.push('\n');
    }
    for h in reasons {
        let _ = writeln!(
            out,
            "{}/{}: {}",
            h.status.provider,
            h.status.account,
            h.reason.as_deref().unwrap_or_default()
        );
    }
    out.push_str(&render_plans(healths));
    out
}

/// The fetch plan and the provider's window per account, and a warning line for each
/// provider that keeps fewer days than assumed.
pub(super) fn render_plans(healths: &[AccountHealth]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let planned: Vec<&AccountHealth> = healths.iter().filter(|h| h.plan.is_some()).collect();
    if planned.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nFetch plan (requests a day at the schedule; everything = every subject every tick):"
    );
    let mut rows = vec![
        [
            "account",
            "hot",
            "quiet",
            "dormant",
            "requests/day",
            "everything",
            "share",
            "window days",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for h in planned {
        let Some(p) = &h.plan else { continue };
        let share = if p.everything_per_day > 0.0 {
            format!("{:.1}%", 100.0 * p.requests_per_day / p.everything_per_day)
        } else {
            "-".to_owned()
        };
        let window = match h.window_days_observed {
            Some(o) => format!("{} assumed, {o} seen", h.window_days_assumed),
            None => format!("{} assumed", h.window_days_assumed),
        };
        rows.push(vec![
            format!("{}/{}", h.status.provider, h.status.account),
            p.hot.to_string(),
            p.quiet.to_string(),
            p.dormant.to_string(),
            format!("{:.0}", p.requests_per_day),
            format!("{:.0}", p.everything_per_day),
            share,
            window,
        ]);
    }
    out.push_str(&crate::commands::render_columns(&rows));
    out.push_str(&render_gaps(healths));
    for h in healths {
        if let Some(w) = &h.window_warning {
            let _ = writeln!(
                out,
                "WARNING {}/{}: {w}",
                h.status.provider, h.status.account
            );
        }
    }
    out
}
