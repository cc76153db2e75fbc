-- 0010 (issue 16): the fetch plan.
--
-- subject_info: every subject a listing named or a run fetched, with when it was first
-- and last seen, and the plan's class for it at the latest run (hot, quiet, dormant);
-- the `subjects` view (SPEC §4) reads it. last_seen_at moves once a day at most, so an
-- unchanged re-sync writes nothing.
-- account_plan: the latest run's plan per account, for `status`.
-- observed_window: per account and UTC day, how many days back (today included) the
-- oldest day of any answer lay: the provider's window as its answers show it.

CREATE TABLE subject_info (
    provider      TEXT NOT NULL,
    account       TEXT NOT NULL,
    subject       TEXT NOT NULL,
    label         TEXT,
    state         TEXT NOT NULL CHECK (state IN ('hot', 'quiet', 'dormant')),
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    PRIMARY KEY (provider, account, subject)
) STRICT, WITHOUT ROWID;

CREATE TABLE account_plan (
    provider          TEXT NOT NULL,
    account           TEXT NOT NULL,
    hot               INTEGER NOT NULL,
    quiet             INTEGER NOT NULL,
    dormant           INTEGER NOT NULL,
    requests_per_day  REAL NOT NULL,
    everything_per_day REAL NOT NULL,
    planned_at        TEXT NOT NULL,
    PRIMARY KEY (provider, account)
) STRICT, WITHOUT ROWID;

CREATE TABLE observed_window (
    provider    TEXT NOT NULL,
    account     TEXT NOT NULL,
    day         TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
    window_days INTEGER NOT NULL CHECK (window_days > 0),
    PRIMARY KEY (provider, account, day)
) STRICT, WITHOUT ROWID;

CREATE VIEW subjects AS
SELECT provider, account, subject, label, first_seen_at, last_seen_at, state
FROM subject_info;
