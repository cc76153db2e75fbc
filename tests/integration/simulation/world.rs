//! The simulated world: a book of every provider that lives through virtual time, the
//! archiver's config, and the history of faults, outages, restarts, crashes and clock
//! steps a seed draws.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use usage_archiver::config::{self, AccountConfig, Config, HttpConfig, Schedule};
use usage_archiver::sim::faults::Fault;
use usage_archiver::sim::life::Lifecycle;
use usage_archiver::sim::{SimConfig, Simulator};

/// The first simulated instant: a year in the past, so nothing is ahead of the real clock.
pub const START: &str = "2025-01-01T00:00:00Z";

/// A splitmix draw from the seed and a few integers.
pub fn draw(seed: u64, parts: &[u64]) -> u64 {
    usage_archiver::sim::mix_seeded(seed, parts)
}

/// Provider path prefixes on the simulator, for outages and request counts.
pub const PROVIDERS: [(&str, &str); 4] = [
    ("hydraproxy", "/hydraproxy/"),
    ("infiniteproxies", "/infiniteproxies/"),
    ("hostens", "/hostens/"),
    ("proxyshard", "/proxyshard/"),
];

/// One outage of a provider: every request to it fails from `from` to `to`.
#[derive(Debug, Clone, Copy)]
pub struct Outage {
    pub provider: usize,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// What happens at one tick beyond the hourly pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Events {
    /// The archiver's process restarts before the tick (everything dropped, reopened).
    pub restart: bool,
    /// A run of this account is cut off between fetch and commit, as by a crash.
    pub crash: Option<usize>,
    /// A `backfill` of every account runs after the pass.
    pub backfill: bool,
    /// Stalls (responses held past the client's timeout) instead of the usual faults.
    pub stalls: bool,
}

/// The whole history a seed draws.
pub struct History {
    pub seed: u64,
    pub days: u32,
    pub start: DateTime<Utc>,
    /// Per-request fault rate outside outages.
    pub fault_rate: f64,
    pub outages: Vec<Outage>,
    /// When HydraProxy's window shrinks from 7 days to 3.
    pub window_shrinks: DateTime<Utc>,
}

impl History {
    pub fn new(seed: u64, days: u32) -> Self {
        let start: DateTime<Utc> = DateTime::parse_from_rfc3339(START)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let span = i64::from(days.max(2));
        let hours = |n: u64| TimeDelta::hours((n % (span as u64 * 24)) as i64);
        let mut outages = Vec::new();
        // Each provider: a few outages of hours to days, and one longer than its window
        // (HydraProxy's 7 days, InfiniteProxies' 14, a day of counters) per year.
        for provider in 0..PROVIDERS.len() {
            let per_year = 2 + draw(seed, &[10, provider as u64]) % 3;
            for i in 0..(per_year * u64::from(days) / 365).max(1) {
                let from = start + hours(draw(seed, &[11, provider as u64, i]));
                let long = i == 0;
                let length = if long {
                    TimeDelta::days([9, 16, 2, 2][provider])
                } else {
                    TimeDelta::hours(2 + (draw(seed, &[12, provider as u64, i]) % 60) as i64)
                };
                outages.push(Outage {
                    provider,
                    from,
                    to: from + length,
                });
            }
        }
        Self {
            seed,
            days,
            start,
            fault_rate: 0.01 + (draw(seed, &[1]) % 30) as f64 / 1000.0,
            outages,
            window_shrinks: start
                + TimeDelta::days(span / 3 + (draw(seed, &[2]) % (span as u64 / 3).max(1)) as i64),
        }
    }

    /// The clock at tick `n`: on the hour plus 30 minutes, unless the seed steps it back
    /// (NTP, a restored VM) or forward for a few ticks.
    pub fn clock_at(&self, n: u64) -> DateTime<Utc> {
        let base = self.start + TimeDelta::hours(n as i64) + TimeDelta::minutes(30);
        // About once in 200 ticks a stretch of 1–4 ticks runs off: back 1–3 hours, or ahead.
        let stretch = n / 4;
        let d = draw(self.seed, &[20, stretch]);
        if !d.is_multiple_of(50) || n % 4 > d % 4 {
            return base;
        }
        let hours = 1 + (d >> 8) % 3;
        if (d >> 16).is_multiple_of(3) {
            base + TimeDelta::hours(hours as i64)
        } else {
            base - TimeDelta::hours(hours as i64)
        }
    }

    /// What happens at tick `n`.
    pub fn events_at(&self, n: u64) -> Events {
        let d = draw(self.seed, &[30, n]);
        Events {
            restart: d % 240 == 7,
            crash: (d % 311 == 13).then_some(((d >> 20) % 5) as usize),
            backfill: d % 230 == 31,
            stalls: d % 700 == 3,
        }
    }

    /// The providers down at `at`.
    pub fn down_at(&self, at: DateTime<Utc>) -> Vec<usize> {
        self.outages
            .iter()
            .filter(|o| o.from <= at && at < o.to)
            .map(|o| o.provider)
            .collect()
    }

    /// The simulated book: small, of every provider, every entity with a life.
    pub fn book(&self) -> SimConfig {
        let life = Lifecycle {
            seed: self.seed,
            start: self.start.date_naive(),
            days: self.days,
        };
        let mut book = SimConfig::demo();
        book.hydraproxy.orders = 6;
        book.hydraproxy.retention_days = 7;
        book.hydraproxy.seed = self.seed;
        book.hydraproxy.life = Some(life);
        book.hydraproxy.window_shrinks = Some((self.window_shrinks, 3));
        book.infiniteproxies.customers = 4;
        book.infiniteproxies.seed = self.seed;
        book.infiniteproxies.life = Some(life);
        book.hostens.servers = 3;
        book.hostens.seed = self.seed;
        book.hostens.life = Some(life);
        // Tokens refused after a few uses: one expires in the middle of a run. A refresh
        // whose answer a fault cuts off is recovered with the previous refresh token, as
        // the simulator accepts it until the newest is used (`strict_tokens` would make it
        // a chain only a new seed mends, which `tokens::` tests).
        book.hostens.access_token_uses = 4;
        book.proxyshard.sub_users = 3;
        book.proxyshard.orders = 6;
        book.proxyshard.seed = self.seed;
        book.proxyshard.life = Some(life);
        book
    }

    /// The faults of the tick: the seed's rate of every kind but stalls, or stalls alone.
    pub fn faults(&self, events: Events) -> (f64, Vec<Fault>) {
        if events.stalls {
            (0.05, vec![Fault::Stall])
        } else {
            let kinds = Fault::ALL
                .into_iter()
                .filter(|k| *k != Fault::Stall)
                .collect();
            (self.fault_rate, kinds)
        }
    }
}

/// The archiver's config for the simulator: every account, each on its own schedule
/// (hourly ticks make each due when a tick of its schedule came), one request at a time,
/// and timeouts and backoffs short enough for virtual time.
pub fn config(sim: &Simulator, db: &Path) -> Config {
    let text = sim.daemon_toml(db);
    let mut config = config::parse(&text, Path::new("simulation.toml"))
        .expect("the simulator's config is valid")
        .config;
    config.http = HttpConfig {
        timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        max_retries: 3,
        // Retries go at once: virtual time has no use for waiting (Retry-After is capped
        // by backoff_max too).
        backoff_initial: Duration::ZERO,
        backoff_max: Duration::ZERO,
        ..HttpConfig::default()
    };
    for account in &mut config.accounts {
        tune(account);
    }
    config
}

fn tune(account: &mut AccountConfig) {
    account.max_concurrency = 1;
    let schedule = match (account.kind.as_str(), account.name.as_str()) {
        ("hydraproxy", _) => "0 10 */4 * * *",
        ("infiniteproxies", _) => "0 20 0,6,12,18 * * *",
        ("hostens", "sim-token") => "0 5 0,12 * * *",
        _ => "0 5 */6 * * *",
    };
    account.schedule = Schedule::parse(schedule).expect("a valid schedule");
    if account.kind.as_str() == "hydraproxy" {
        // The document states no window: 7 days assumed; the simulator shrinks to 3.
        account.retention_days = 7;
    }
}

/// A directory in memory for the archive when there is one (no fsync to wait for).
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::tempdir_in(&shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("a temporary directory")
}

/// The day after `day`.
pub fn next(day: NaiveDate) -> NaiveDate {
    day + TimeDelta::days(1)
}
