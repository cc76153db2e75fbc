//! The promises checked while the simulated time runs: after every tick, every row and
//! snapshot the tick wrote; after every simulated day, the whole archive.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use rusqlite::{Connection, params};
use usage_archiver::config::AccountConfig;
use usage_archiver::sim::SimConfig;
use usage_archiver::store::coverage::load_gaps;

use super::truth;
use super::world::next;

/// What the simulators hand out that no archive may hold: tokens, keys, passwords, the
/// account holder's address.
const SECRETS: &[&str] = &[
    usage_archiver::sim::hydraproxy::SIM_TOKEN,
    usage_archiver::sim::hydraproxy::SIM_PROXY_PASSWORD,
    usage_archiver::sim::infiniteproxies::SIM_API_KEY,
    usage_archiver::sim::hostens::SIM_PASSWORD,
    usage_archiver::sim::hostens::SIM_SERVICE_PASSWORD,
    usage_archiver::sim::hostens::SIM_CLIENT_ADDRESS,
    "sim-hostens-refresh-",
    usage_archiver::sim::proxyshard::SIM_TOKEN,
    "sim-proxy-password",
    "sim-order-secret",
];

/// A broken promise, worded for the failure message.
pub type Broken = String;

/// Below this, two derived figures are the same (the archive keeps a millionth of a MB).
const ROUNDING_MB: f64 = 1e-5;

/// What the checker has seen of the runs, to tell what the archive must hold.
#[derive(Default)]
pub struct Seen {
    /// Instants of every `ok` run, per `provider/account`.
    pub ok_runs: HashMap<String, Vec<DateTime<Utc>>>,
    /// Every instant a tick ran at, per `provider/account` (counter snapshots are taken
    /// at these, and only these).
    pub ticks: HashMap<String, BTreeSet<String>>,
    /// Invariants checked so far.
    pub checks: u64,
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn parse_day(d: &str) -> NaiveDate {
    NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap_or_default()
}

fn parse_at(t: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(t)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// One day row as the archive holds it.
struct Row {
    provider: String,
    account: String,
    subject: String,
    day: String,
    upload: Option<f64>,
    download: Option<f64>,
    total: f64,
    is_final: bool,
    derived: bool,
}

/// Day rows written at `since` (a tick writes days of the last few weeks only: the range
/// of the key is read, not the table), or every row.
fn rows(conn: &Connection, since: Option<(&str, NaiveDate)>) -> Vec<Row> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT s.provider, s.account, s.subject, d.day, d.upload_mb, d.download_mb, d.total_mb, \
             d.is_final, d.derived FROM subject s JOIN day_usage d ON d.subject_id = s.id \
             WHERE ?1 IS NULL OR (d.day >= ?2 AND d.last_seen_at = ?1)",
        )
        .expect("query");
    let (at, from) = since.map_or((None, String::new()), |(t, d)| (Some(t), d.to_string()));
    stmt.query_map(params![at, from], |r| {
        Ok(Row {
            provider: r.get(0)?,
            account: r.get(1)?,
            subject: r.get(2)?,
            day: r.get(3)?,
            upload: r.get(4)?,
            download: r.get(5)?,
            total: r.get(6)?,
            is_final: r.get(7)?,
            derived: r.get(8)?,
        })
    })
    .expect("rows")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// The snapshot rows of one counter on one day: `(first, latest)` as `(taken_at, value)`.
type Slots = ((String, f64), (String, f64));

fn slots(conn: &Connection, r: &Row, counter: &str, day: &str) -> Option<Slots> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT slot, taken_at, value_mb FROM counter_snapshot WHERE provider = ?1 AND account = ?2 \
             AND subject = ?3 AND counter = ?4 AND day = ?5",
        )
        .ok()?;
    let found: BTreeMap<String, (String, f64)> = stmt
        .query_map(
            params![r.provider, r.account, r.subject, counter, day],
            |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))),
        )
        .ok()?
        .filter_map(Result::ok)
        .collect();
    Some((found.get("first")?.clone(), found.get("latest")?.clone()))
}

impl Seen {
    /// Every final day row (written at `since`, or all of them) holds the provider's own
    /// figures; a derived one the counters' increase between the snapshots it kept, which
    /// were taken at ticks and hold what the counters read then.
    pub fn rows_hold_the_truth(
        &mut self,
        conn: &Connection,
        book: &SimConfig,
        since: Option<DateTime<Utc>>,
    ) -> Result<(), Broken> {
        let since = since.map(|t| (rfc(t), t.date_naive() - TimeDelta::days(31)));
        for r in rows(conn, since.as_ref().map(|(t, d)| (t.as_str(), *d))) {
            self.checks += 1;
            if !r.is_final {
                continue;
            }
            let day = parse_day(&r.day);
            if r.derived {
                self.derived_holds_the_truth(conn, book, &r)?;
                continue;
            }
            match truth::reported_day(book, &r.provider, &r.subject, day) {
                Some((up, down, total)) if (up, down, total) == (r.upload, r.download, r.total) => {
                }
                truth => {
                    return Err(format!(
                        "{}/{} {} {}: final ({:?}, {:?}, {}) but the provider says {truth:?}",
                        r.provider, r.account, r.subject, r.day, r.upload, r.download, r.total
                    ));
                }
            }
        }
        Ok(())
    }

    fn derived_holds_the_truth(
        &self,
        conn: &Connection,
        book: &SimConfig,
        r: &Row,
    ) -> Result<(), Broken> {
        let day = parse_day(&r.day);
        let label = format!("{}/{}", r.provider, r.account);
        let mut total = 0.0;
        for (counter, read) in truth::counters(book, &r.provider, &r.subject) {
            let (Some(((f_at, f_v), (l_at, l_v))), Some(((n_at, n_v), _))) = (
                slots(conn, r, counter, &r.day),
                slots(conn, r, counter, &next(day).to_string()),
            ) else {
                return Err(format!(
                    "{label} {} {}: final without snapshots on both days",
                    r.subject, r.day
                ));
            };
            for (at, kept) in [(&f_at, f_v), (&l_at, l_v), (&n_at, n_v)] {
                if !self.ticks.get(&label).is_some_and(|t| t.contains(at)) {
                    return Err(format!(
                        "{label} {} {counter}: a snapshot at {at}, when no tick ran",
                        r.subject
                    ));
                }
                let real = read(parse_at(at));
                if (real - kept).abs() > ROUNDING_MB {
                    return Err(format!(
                        "{label} {} {counter} at {at}: kept {kept}, the counter read {real}",
                        r.subject
                    ));
                }
            }
            let (first, latest, then) = (
                read(parse_at(&f_at)),
                read(parse_at(&l_at)),
                read(parse_at(&n_at)),
            );
            let rise = if then >= latest { then - latest } else { then };
            total += (latest - first) + rise;
        }
        if (total - r.total).abs() > ROUNDING_MB * 10.0 {
            return Err(format!(
                "{label} {} {}: derived {} MB, the counters rose {total} MB between the snapshots kept",
                r.subject, r.day, r.total
            ));
        }
        Ok(())
    }

    /// Snapshots of objects (of the UTC day `day`, or all) show the object's state when taken.
    pub fn snapshots_hold_the_truth(
        &mut self,
        conn: &Connection,
        book: &SimConfig,
        day: Option<NaiveDate>,
    ) -> Result<(), Broken> {
        let day = day.map(|d| d.to_string());
        let mut stmt = conn
            .prepare_cached(
                "SELECT provider, kind, entity_id, taken_at, json_extract(data, '$.status') FROM entity_snapshot \
                 WHERE ?1 IS NULL OR day = ?1",
            )
            .expect("query");
        let found: Vec<(String, String, String, String, Option<String>)> = stmt
            .query_map([day], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        for (provider, kind, id, taken, status) in found {
            self.checks += 1;
            let Some(real) = truth::object_status(book, &provider, &kind, &id, parse_at(&taken))
            else {
                continue;
            };
            if status.as_deref() != Some(real.as_str()) {
                return Err(format!(
                    "{provider} {kind} {id} taken at {taken}: {status:?}, the object was {real:?}"
                ));
            }
        }
        Ok(())
    }

    /// Whole-archive promises: month rollups equal their days, and (`thorough`) the file is
    /// sound and holds no secret of the simulators'.
    pub fn archive_is_sound(&mut self, conn: &Connection, thorough: bool) -> Result<(), Broken> {
        self.checks += 1;
        let off: i64 = conn
            .query_row(
                "SELECT count(*) FROM (SELECT subject_id, substr(day, 1, 7) AS month, count(*) AS days, \
                 sum(total_mb) AS total FROM day_usage GROUP BY subject_id, month \
                 EXCEPT SELECT subject_id, month, days, total_mb FROM month_rollup)",
                [],
                |r| r.get(0),
            )
            .expect("rollup query");
        if off > 0 {
            return Err(format!(
                "{off} month rollups differ from the sum of their days"
            ));
        }
        if !thorough {
            return Ok(());
        }
        self.checks += 2;
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity");
        if check != "ok" {
            return Err(format!("integrity_check: {check}"));
        }
        let path = conn
            .path()
            .map(std::path::PathBuf::from)
            .unwrap_or_default();
        let mut bytes = std::fs::read(&path).unwrap_or_default();
        bytes.extend(std::fs::read(path.with_extension("db-wal")).unwrap_or_default());
        let text = String::from_utf8_lossy(&bytes);
        for secret in SECRETS {
            if text.contains(secret) {
                return Err(format!("a credential is in the archive: {secret}"));
            }
        }
        Ok(())
    }

    /// Coverage and gaps of one account at `now`: a closed day of a subject that existed
    /// while an `ok` run could still fetch it is covered; a covered closed day with use
    /// has its final row; a day the gap calendar calls lost was never within reach of an
    /// `ok` run, and one it calls recoverable is still kept by the provider.
    pub fn days_are_kept_or_told(
        &mut self,
        conn: &Connection,
        book: &SimConfig,
        account: &AccountConfig,
        now: DateTime<Utc>,
        window_days: u32,
        thorough: bool,
    ) -> Result<(), Broken> {
        let (provider, account) = (account.kind.as_str(), account.name.as_str());
        let label = format!("{provider}/{account}");
        let today = now.date_naive();
        // Coverage of a day changes only while answers can still hold it: a day is checked
        // daily for a month, and every day at the end.
        let recent = if thorough {
            NaiveDate::MIN
        } else {
            today - TimeDelta::days(31)
        };
        let ok_runs = self.ok_runs.get(&label).cloned().unwrap_or_default();
        let window_at = |t: DateTime<Utc>| match provider {
            "hydraproxy" => book.hydraproxy.window_at(t),
            "infiniteproxies" => book.infiniteproxies.window_days,
            _ => 1,
        };
        // The days an `ok` run could fetch as final: each day before it within its window;
        // for counters, the run's own day (its snapshot).
        let derived = !matches!(provider, "hydraproxy" | "infiniteproxies");
        let mut reachable: BTreeMap<NaiveDate, DateTime<Utc>> = BTreeMap::new();
        let ok_runs: Vec<DateTime<Utc>> = ok_runs
            .into_iter()
            .filter(|t| t.date_naive() >= recent)
            .collect();
        let ok_days: BTreeSet<NaiveDate> = ok_runs.iter().map(|t| t.date_naive()).collect();
        for t in &ok_runs {
            let w = i64::from(window_at(*t));
            if derived {
                // A derived day is final once an ok run took a snapshot of it and of the next.
                let d = t.date_naive() - TimeDelta::days(1);
                if ok_days.contains(&d) {
                    reachable.entry(d).or_insert(*t);
                }
                continue;
            }
            for back in 1..w {
                reachable
                    .entry(t.date_naive() - TimeDelta::days(back))
                    .or_insert(*t);
            }
        }
        let intervals = coverage(conn, provider, account);
        for (subject, spans) in &intervals {
            let Some(first) = spans.first().map(|s| s.0.max(recent)) else {
                continue;
            };
            let covered = |d: NaiveDate| spans.iter().any(|(a, b)| *a <= d && d <= *b);
            let mut d = first;
            while d < today {
                self.checks += 1;
                if let Some(t) = reachable.get(&d)
                    && truth::exists(book, provider, subject, d)
                    && truth::exists(book, provider, subject, t.date_naive())
                    && !covered(d)
                {
                    return Err(format!(
                        "{label} {subject} {d}: within reach of the ok run at {t}, yet not covered"
                    ));
                }
                if covered(d) && !matches!(provider, "hostens" | "proxyshard") {
                    let kept = day_row(conn, provider, account, subject, d);
                    let used = truth::reported_day(book, provider, subject, d);
                    if used.is_some() && kept != Some(true) {
                        return Err(format!(
                            "{label} {subject} {d}: covered, the provider has {used:?}, the archive {kept:?} (final?)"
                        ));
                    }
                }
                d = next(d);
            }
        }
        for gaps in load_gaps(conn, provider, account, today, window_days).expect("gaps") {
            for lost in &gaps.lost {
                let d = parse_day(lost);
                if d < recent {
                    continue;
                }
                self.checks += 1;
                // A subject that did not exist that day has nothing lost; the archive cannot
                // tell its absence from a loss (the listings do not say), so either is fine.
                let existed = |day| truth::exists(book, provider, &gaps.subject, day);
                if let Some(t) = reachable
                    .get(&d)
                    .filter(|t| existed(d) && existed(t.date_naive()))
                {
                    return Err(format!(
                        "{label} {} {d}: told lost, but the ok run at {t} could fetch it",
                        gaps.subject
                    ));
                }
            }
            // A window that shrank is learned from the answers after it (at once when one
            // leaves out a day with use, else within a week of answers): until then the
            // archive still counts on the days it no longer has.
            let learning = provider == "hydraproxy"
                && book.hydraproxy.window_shrinks.is_some_and(|(shrunk, _)| {
                    let first_answer = ok_runs
                        .iter()
                        .chain(self.ok_runs.get(&label).into_iter().flatten())
                        .filter(|t| **t >= shrunk)
                        .min();
                    first_answer.is_none_or(|t| now < *t + TimeDelta::days(8))
                });
            for recoverable in &gaps.recoverable {
                if learning {
                    break;
                }
                self.checks += 1;
                let d = parse_day(recoverable);
                // A derived day can still be closed by a snapshot of the next day.
                let extra = i64::from(derived);
                let kept_from = today - TimeDelta::days(i64::from(window_at(now)) - 1 + extra);
                if d < kept_from {
                    return Err(format!(
                        "{label} {} {d}: told recoverable, but the provider keeps days from {kept_from} only",
                        gaps.subject
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Each subject's covered stretches, in order.
fn coverage(
    conn: &Connection,
    provider: &str,
    account: &str,
) -> BTreeMap<String, Vec<(NaiveDate, NaiveDate)>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT subject, first_day, last_day FROM subject_coverage WHERE provider = ?1 AND account = ?2 \
             ORDER BY subject, first_day",
        )
        .expect("query");
    let mut out: BTreeMap<String, Vec<(NaiveDate, NaiveDate)>> = BTreeMap::new();
    let found = stmt
        .query_map(params![provider, account], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .expect("rows");
    for (subject, a, b) in found.filter_map(Result::ok) {
        out.entry(subject)
            .or_default()
            .push((parse_day(&a), parse_day(&b)));
    }
    out
}

/// Whether the archive has a row of the day, and whether it is final.
fn day_row(
    conn: &Connection,
    provider: &str,
    account: &str,
    subject: &str,
    day: NaiveDate,
) -> Option<bool> {
    conn.prepare_cached(
        "SELECT is_final FROM usage_daily WHERE provider = ?1 AND account = ?2 AND subject = ?3 AND day = ?4",
    )
    .ok()?
    .query_row(params![provider, account, subject, day.to_string()], |r| r.get(0))
    .ok()
}
