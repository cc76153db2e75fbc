//! What the simulated providers really hold: the figures and states every archived
//! row is compared with.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use usage_archiver::sim::SimConfig;

const MB: f64 = 1_048_576.0;

/// A final day of a provider that reports days: `(upload, download, total)` MB, or `None`
/// when the provider has no row for it (HydraProxy leaves out days without use).
pub fn reported_day(
    book: &SimConfig,
    provider: &str,
    subject: &str,
    day: NaiveDate,
) -> Option<(Option<f64>, Option<f64>, f64)> {
    let after = day + TimeDelta::days(1);
    match provider {
        "hydraproxy" => {
            let id: u64 = subject.parse().ok()?;
            let (up, down) = book.hydraproxy.usage(id, day, after, 1.0)?;
            Some((Some(up), Some(down), ((up + down) * 100.0).round() / 100.0))
        }
        "infiniteproxies" => {
            let index: u64 = subject.strip_prefix("customer")?.parse().ok()?;
            Some((
                None,
                None,
                book.infiniteproxies.usage_on(index, day, 1.0, 1),
            ))
        }
        _ => None,
    }
}

/// Each counter's reading, in MB at an instant.
pub type Reading<'a> = Box<dyn Fn(DateTime<Utc>) -> f64 + 'a>;

/// The counters of a subject that derives its days.
pub fn counters<'a>(
    book: &'a SimConfig,
    provider: &str,
    subject: &str,
) -> Vec<(&'static str, Reading<'a>)> {
    match provider {
        "hostens" => {
            let Ok(server) = subject.parse::<u64>() else {
                return Vec::new();
            };
            vec![
                (
                    "download",
                    Box::new(move |t| book.hostens.counter(server, 0, t)),
                ),
                (
                    "upload",
                    Box::new(move |t| book.hostens.counter(server, 1, t)),
                ),
            ]
        }
        "proxyshard" => {
            let Some((kind, who)) = subject.split_once('/') else {
                return Vec::new();
            };
            let base = if kind == "premium" { 1000 } else { 0 };
            let who = match who.strip_prefix('u') {
                Some(n) => n.parse().unwrap_or(u64::MAX),
                None => 900 + base,
            };
            vec![(
                "total",
                Box::new(move |t| book.proxyshard.data_spent(who, t) / MB),
            )]
        }
        _ => Vec::new(),
    }
}

/// The status a snapshot of an object must show when taken at `at`, where the
/// simulator can tell.
pub fn object_status(
    book: &SimConfig,
    provider: &str,
    kind: &str,
    id: &str,
    at: DateTime<Utc>,
) -> Option<String> {
    let n: u64 = id.parse().ok()?;
    let status = match (provider, kind) {
        ("hydraproxy", "order") => book.hydraproxy.status_on(n, at.date_naive()),
        ("proxyshard", "order") => book.proxyshard.order_status(n, at),
        ("hostens", "service") => book.hostens.service_status(n.checked_sub(300)?, at),
        _ => return None,
    };
    Some(status.to_owned())
}

/// Whether a subject exists at the provider on `day` (a derived or reported subject).
pub fn exists(book: &SimConfig, provider: &str, subject: &str, day: NaiveDate) -> bool {
    use usage_archiver::sim::life::Kind;
    let life = |kind, id| book.hydraproxy.life.is_none_or(|l| l.alive(kind, id, day));
    match provider {
        "hydraproxy" => subject
            .parse()
            .is_ok_and(|id| book.hydraproxy.listed_on(id, day)),
        "infiniteproxies" => subject
            .strip_prefix("customer")
            .and_then(|n| n.parse().ok())
            .is_some_and(|i| book.infiniteproxies.exists_on(i, day)),
        "hostens" => subject
            .parse()
            .is_ok_and(|s: u64| s == 201 || life(Kind::Server, s)),
        "proxyshard" => match subject.split_once('/') {
            Some((_, "owner")) => true,
            // A sub-user's number carries its type (premium ones from 1000).
            Some((_, user)) => user
                .strip_prefix('u')
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|who| life(Kind::SubUser, who)),
            None => false,
        },
        _ => false,
    }
}
