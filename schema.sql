-- usage-archiver archive schema, user_version 12, application_id 1430344259
-- (0x55415243, "UARC": a file without it is not an archive of this program).
--
-- The five views below (usage_daily, usage_monthly, balance_snapshots,
-- sync_runs, usage_revisions) are the stable interface for users' queries
-- (SPEC §4). The tables behind them are internal and may change between
-- versions; query the views.
--
-- Conventions: days are 'YYYY-MM-DD' (UTC), months 'YYYY-MM', timestamps UTC
-- RFC 3339 text ('2026-11-22T10:10:00Z'), megabytes REAL, provider names
-- lowercase ('hydraproxy', 'infiniteproxies', 'hostens', 'proxyshard').
--
-- Fresh archives run this file; older archives are upgraded by the files in
-- src/store/migrations/, which are append-only.
--
-- The archive holds no credential: the Hostens token chains live in a file of the
-- service alone beside it (<archive>.credentials, mode 0600).

PRAGMA application_id = 1430344259;

-- Every subject the archive holds days of, numbered: day_usage and month_rollup
-- are keyed by the number, so their B-trees compare an integer instead of three
-- strings on every insert and lookup (BENCHMARKS.md §1). usage_daily and
-- usage_monthly join the names back. See migrations/0008_subject_ids.sql.
-- subject_id is not declared a foreign key: the writer takes every id from this
-- table (store::usage::subject_id), and the check per day row cost about 8% of
-- the upsert rate.
CREATE TABLE subject (
    id       INTEGER PRIMARY KEY,
    provider TEXT NOT NULL,
    account  TEXT NOT NULL,
    subject  TEXT NOT NULL,
    UNIQUE (provider, account, subject)
) STRICT;

-- One row per subject and UTC day, as reported or derived.
CREATE TABLE day_usage (
    subject_id    INTEGER NOT NULL,
    day           TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
    upload_mb     REAL CHECK (upload_mb >= 0),
    download_mb   REAL CHECK (download_mb >= 0),
    total_mb      REAL NOT NULL CHECK (total_mb >= 0),
    is_final      INTEGER NOT NULL CHECK (is_final IN (0, 1)),
    derived       INTEGER NOT NULL DEFAULT 0 CHECK (derived IN (0, 1)),
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    PRIMARY KEY (subject_id, day)
) STRICT, WITHOUT ROWID;

-- Each subject's days summed per month: what usage_monthly's rollups, `report
-- --by month` and `status` read, instead of summing day_usage. The writer keeps
-- it in the same transaction as the days (store::usage::upsert_days refreshes
-- the months a write changed), so it never disagrees with day_usage.
--   days      day rows in the month;  last_day  the latest of them
--   upload_mb / download_mb  NULL when any day lacks them
--   is_final  1 when every day is final
-- Query plans (EXPLAIN QUERY PLAN, 10,000,000 day rows, see BENCHMARKS.md):
--   report --by month:  SCAN month_rollup; SEARCH subject USING INTEGER PRIMARY
--     KEY (rowid=?); USE TEMP B-TREE FOR GROUP BY and for count(DISTINCT)
--     (one row per subject and month: 10,000 subjects x 34 months = 340,000
--     rows instead of 10,000,000; the grouping sorts those few rows)
--   refresh after a write:  SEARCH day_usage USING PRIMARY KEY (subject_id=?
--     AND day>? AND day<?): only the changed months of one subject are read again
--   status, and the archived subjects a sync retries:  SEARCH subject USING
--     COVERING INDEX sqlite_autoindex_subject_1 (provider=? AND account=?);
--     SEARCH month_rollup USING PRIMARY KEY (subject_id=?)
CREATE TABLE month_rollup (
    subject_id  INTEGER NOT NULL,
    month       TEXT NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]'),
    days        INTEGER NOT NULL CHECK (days > 0),
    last_day    TEXT NOT NULL,
    upload_mb   REAL,
    download_mb REAL,
    total_mb    REAL NOT NULL,
    is_final    INTEGER NOT NULL CHECK (is_final IN (0, 1)),
    PRIMARY KEY (subject_id, month)
) STRICT, WITHOUT ROWID;

-- One row per provider/account/subject/month, as the provider reports it.
CREATE TABLE month_usage (
    provider      TEXT NOT NULL,
    account       TEXT NOT NULL,
    subject       TEXT NOT NULL,
    month         TEXT NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]'),
    upload_mb     REAL CHECK (upload_mb >= 0),
    download_mb   REAL CHECK (download_mb >= 0),
    total_mb      REAL NOT NULL CHECK (total_mb >= 0),
    is_final      INTEGER NOT NULL CHECK (is_final IN (0, 1)),
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    PRIMARY KEY (provider, account, subject, month)
) STRICT, WITHOUT ROWID;

-- Latest value of each account metric per UTC day.
CREATE TABLE balance_snapshot (
    provider TEXT NOT NULL,
    account  TEXT NOT NULL,
    day      TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
    metric   TEXT NOT NULL,
    value    REAL NOT NULL,
    unit     TEXT NOT NULL,
    taken_at TEXT NOT NULL,
    PRIMARY KEY (provider, account, day, metric)
) STRICT, WITHOUT ROWID;

-- Every change to a row that was already final.
CREATE TABLE usage_revision (
    id           INTEGER PRIMARY KEY,
    provider     TEXT NOT NULL,
    account      TEXT NOT NULL,
    subject      TEXT NOT NULL,
    period       TEXT NOT NULL,
    old_total_mb REAL,
    new_total_mb REAL,
    changed_at   TEXT NOT NULL
) STRICT;

-- A change to a final day is logged here by the archive itself.
CREATE TRIGGER day_usage_revision AFTER UPDATE ON day_usage
WHEN OLD.is_final = 1 AND (
    NEW.total_mb IS NOT OLD.total_mb OR NEW.upload_mb IS NOT OLD.upload_mb
    OR NEW.download_mb IS NOT OLD.download_mb)
BEGIN
    INSERT INTO usage_revision (provider, account, subject, period, old_total_mb, new_total_mb, changed_at)
    SELECT provider, account, subject, OLD.day, OLD.total_mb, NEW.total_mb, NEW.last_seen_at
    FROM subject WHERE id = OLD.subject_id;
END;

CREATE TRIGGER month_usage_revision AFTER UPDATE ON month_usage
WHEN OLD.is_final = 1 AND (
    NEW.total_mb IS NOT OLD.total_mb OR NEW.upload_mb IS NOT OLD.upload_mb
    OR NEW.download_mb IS NOT OLD.download_mb)
BEGIN
    INSERT INTO usage_revision (provider, account, subject, period, old_total_mb, new_total_mb, changed_at)
    VALUES (OLD.provider, OLD.account, OLD.subject, OLD.month, OLD.total_mb, NEW.total_mb, NEW.last_seen_at);
END;

-- One row per sync of one account. `pid` is the process that ran it, so a later start
-- can tell a run still going in another process from one a crash left 'running'
-- (marked 'crashed'). See migrations/0009_ours_and_crashed_runs.sql.
CREATE TABLE sync_run (
    id              INTEGER PRIMARY KEY,
    provider        TEXT NOT NULL,
    account         TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    status          TEXT NOT NULL CHECK (status IN ('running', 'ok', 'partial', 'failed', 'interrupted', 'crashed')),
    subjects_ok     INTEGER NOT NULL DEFAULT 0,
    subjects_failed INTEGER NOT NULL DEFAULT 0,
    rows_inserted   INTEGER NOT NULL DEFAULT 0,
    rows_updated    INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    pid             INTEGER
) STRICT;
CREATE INDEX sync_run_account ON sync_run (provider, account, id);

-- Per-subject failures of a run (the run's `error` holds the first).
CREATE TABLE sync_error (
    run_id   INTEGER NOT NULL REFERENCES sync_run (id) ON DELETE CASCADE,
    subject  TEXT,
    error    TEXT NOT NULL
) STRICT;
CREATE INDEX sync_error_run ON sync_error (run_id);

-- Raw response bodies, per [archive] keep_raw.
CREATE TABLE raw_response (
    id          INTEGER PRIMARY KEY,
    provider    TEXT NOT NULL,
    account     TEXT NOT NULL,
    subject     TEXT,
    endpoint    TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    fetched_at  TEXT NOT NULL,
    error       TEXT,
    body        BLOB NOT NULL
) STRICT;

-- Which days each subject's successful fetches covered, as maximal intervals.
-- A fetch at day T of a provider that keeps N days covers T-N+1 .. T, with or
-- without rows (HydraProxy omits days without usage); days between two
-- intervals were never seen. See src/store/migrations/0002_subject_coverage.sql.
CREATE TABLE subject_coverage (
    provider  TEXT NOT NULL,
    account   TEXT NOT NULL,
    subject   TEXT NOT NULL,
    first_day TEXT NOT NULL CHECK (first_day GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
    last_day  TEXT NOT NULL CHECK (last_day >= first_day),
    PRIMARY KEY (provider, account, subject, first_day)
) STRICT, WITHOUT ROWID;

-- Snapshots of running traffic counters (Hostens bw_in/bw_out, ProxyShard
-- data_spent): per subject, counter and UTC day, the first snapshot and the
-- latest one, which carries the increase accumulated over the day's snapshots
-- (a drop counts the new value from zero). Day D = latest(D).accumulated_mb +
-- increase(latest(D) -> first(D+1)). See migrations/0003_counter_snapshot.sql.
CREATE TABLE counter_snapshot (
    provider       TEXT NOT NULL,
    account        TEXT NOT NULL,
    subject        TEXT NOT NULL,
    counter        TEXT NOT NULL CHECK (counter IN ('upload', 'download', 'total')),
    day            TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
    slot           TEXT NOT NULL CHECK (slot IN ('first', 'latest')),
    taken_at       TEXT NOT NULL,
    value_mb       REAL NOT NULL CHECK (value_mb >= 0),
    accumulated_mb REAL NOT NULL DEFAULT 0 CHECK (accumulated_mb >= 0),
    PRIMARY KEY (provider, account, subject, counter, day, slot)
) STRICT, WITHOUT ROWID;

-- Daily snapshots of provider objects (ProxyShard orders): the object's JSON as
-- last seen that UTC day, credentials removed. See migrations/0004_entity_snapshot.sql.
CREATE TABLE entity_snapshot (
    provider  TEXT NOT NULL,
    account   TEXT NOT NULL,
    kind      TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    day       TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
    data      TEXT NOT NULL CHECK (json_valid(data)),
    taken_at  TEXT NOT NULL,
    PRIMARY KEY (provider, account, kind, entity_id, day)
) STRICT, WITHOUT ROWID;

-- See migrations/0005_hostens.sql.

-- Monthly figures beyond bandwidth (which goes to month_usage), as reported:
-- Hostens disk quota and inode usage and limits.
CREATE TABLE month_resources (
    provider      TEXT NOT NULL,
    account       TEXT NOT NULL,
    subject       TEXT NOT NULL,
    month         TEXT NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]'),
    quota_usage   REAL,
    quota_limit   REAL,
    inode_usage   REAL,
    inode_limit   REAL,
    first_seen_at TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    PRIMARY KEY (provider, account, subject, month)
) STRICT, WITHOUT ROWID;

-- Facts about each account that status needs without a config (schedule).
CREATE TABLE account_state (
    provider       TEXT NOT NULL,
    account        TEXT NOT NULL,
    schedule       TEXT,
    retention_days INTEGER,
    PRIMARY KEY (provider, account)
) STRICT, WITHOUT ROWID;

-- The fetch plan (see migrations/0010_fetch_plan.sql): every subject a listing named or
-- a run fetched, with the plan's class at the latest run (last_seen_at moves once a day);
-- the latest run's plan per account (subjects per class, and the requests a day it costs
-- at the schedule beside what fetching every subject every tick would); and the
-- provider's window as its answers showed it, per account and day.
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

-- Final days above what a subject could use in a day (the counter's own allocation,
-- ProxyShard `data`, or the account's max_day_mb): kept as the provider gave them,
-- and marked here. A change to the day clears the mark; a write that still finds it
-- implausible marks it again. See migrations/0012_figures_and_spend.sql.
CREATE TABLE day_flag (
    subject_id INTEGER NOT NULL,
    day        TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
    reason     TEXT NOT NULL CHECK (reason IN ('over_allocation', 'over_ceiling')),
    total_mb   REAL NOT NULL,
    limit_mb   REAL NOT NULL,
    flagged_at TEXT NOT NULL,
    PRIMARY KEY (subject_id, day)
) STRICT, WITHOUT ROWID;

-- Evidence that a provider keeps fewer days than its answers once reached: an answer
-- that left out a day with use it had answered before. at_most is the most days back
-- the provider can still be keeping (today being 1); the window is bounded by it at once.
CREATE TABLE window_evidence (
    provider TEXT NOT NULL,
    account  TEXT NOT NULL,
    day      TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
    at_most  INTEGER NOT NULL CHECK (at_most > 0),
    PRIMARY KEY (provider, account, day)
) STRICT, WITHOUT ROWID;

-- usage_daily: one row per provider/account/subject/UTC day.
--   provider      TEXT  'hydraproxy', 'infiniteproxies', 'hostens', 'proxyshard'
--   account       TEXT  the account label from daemon.toml
--   subject       TEXT  order id, customer username, server id, 'type/user'
--   day           TEXT  'YYYY-MM-DD', UTC
--   upload_mb     REAL  NULL where the provider reports only a total
--   download_mb   REAL  NULL where the provider reports only a total
--   total_mb      REAL  megabytes used that day
--   is_final      INT   1 once fetched after the day ended; 0 = provisional, may still change
--   derived       INT   1 when computed from counter snapshots (Hostens, ProxyShard)
--   first_seen_at TEXT  when the archive first stored the day
--   last_seen_at  TEXT  when the row last changed (value or finality); an unchanged re-sync leaves it
CREATE VIEW usage_daily AS
SELECT s.provider, s.account, s.subject, d.day, d.upload_mb, d.download_mb, d.total_mb,
       d.is_final, d.derived, d.first_seen_at, d.last_seen_at
FROM day_usage d JOIN subject s ON s.id = d.subject_id;

-- usage_monthly: one row per provider/account/subject/month and source.
--   month   TEXT 'YYYY-MM'
--   source  TEXT 'reported' (the provider's own monthly figure, e.g. Hostens history)
--                or 'rollup' (the sum of usage_daily for the month)
--   is_final INT 1 once the month has ended and (for rollups) all its days are final
--   other columns as in usage_daily; upload/download NULL when any day lacks them
CREATE VIEW usage_monthly AS
SELECT provider, account, subject, month, upload_mb, download_mb, total_mb, is_final,
       'reported' AS source
FROM month_usage
UNION ALL
SELECT s.provider, s.account, s.subject, r.month, r.upload_mb, r.download_mb, r.total_mb,
       r.is_final * (r.month < strftime('%Y-%m', 'now')) AS is_final,
       'rollup' AS source
FROM month_rollup r JOIN subject s ON s.id = r.subject_id;

-- balance_snapshots: latest value of each account metric per UTC day.
--   metric TEXT e.g. 'balance_usd'; value REAL in `unit` (e.g. 'USD', 'MB')
CREATE VIEW balance_snapshots AS
SELECT provider, account, day, metric, value, unit
FROM balance_snapshot;

-- subjects: one row per provider/account/subject a listing named or a run fetched.
--   label         TEXT what the provider calls it (ProxyShard sub-user first_name, Hostens
--                      server label, HydraProxy network type); NULL where it has no name
--   first_seen_at TEXT when a run first saw it; last_seen_at TEXT the latest day one did
--   state         TEXT the fetch plan's class at the latest run: 'hot' (fetched every
--                      tick), 'quiet' (once a UTC day), 'dormant' (a seldom probe)
CREATE VIEW subjects AS
SELECT provider, account, subject, label, first_seen_at, last_seen_at, state
FROM subject_info;

-- sync_runs: one row per sync of one account.
--   status TEXT 'running', 'ok', 'partial' (some subjects failed, or rows were refused),
--               'failed' (nothing could be synced), 'interrupted' (stopped by a signal),
--               'crashed' (its process ended without finishing it; marked at the next start)
--   error  TEXT the first error, NULL when none
CREATE VIEW sync_runs AS
SELECT id, provider, account, started_at, finished_at, status, subjects_ok,
       subjects_failed, rows_inserted, rows_updated, error
FROM sync_run;

-- usage_revisions: every change to a row that was already final.
--   period TEXT the day ('YYYY-MM-DD') or month ('YYYY-MM') that changed
CREATE VIEW usage_revisions AS
SELECT provider, account, subject, period, old_total_mb, new_total_mb, changed_at
FROM usage_revision;

-- suspect_days: one row per final day marked implausible.
--   total_mb REAL the day as archived; limit_mb REAL what it exceeds
--   reason   TEXT 'over_allocation' (above the counter's own allocation) or
--                 'over_ceiling' (above the account's max_day_mb)
--   flagged_at TEXT when a write found it so
CREATE VIEW suspect_days AS
SELECT s.provider, s.account, s.subject, f.day, f.total_mb, f.limit_mb, f.reason, f.flagged_at
FROM day_flag f JOIN subject s ON s.id = f.subject_id;

-- proxyshard_order_history: one row per ProxyShard order and UTC day it was seen.
--   order_id TEXT; day TEXT 'YYYY-MM-DD'; status TEXT (e.g. 'active', 'on-hold', 'cancelled')
--   product, cycle TEXT; quantity INT; price_cents, addons_price_cents INT (cents, as ProxyShard sends)
--   created_at, expires_at TEXT as ProxyShard sends them (ISO 8601, expires_at may be NULL)
--   auto_renewal INT/NULL; tag TEXT/NULL; order_json TEXT the whole order (no credentials)
--   A status change shows as consecutive days with different `status`.
CREATE VIEW proxyshard_order_history AS
SELECT account, entity_id AS order_id, day,
       json_extract(data, '$.status') AS status,
       json_extract(data, '$.product_name') AS product,
       json_extract(data, '$.cycle_name') AS cycle,
       json_extract(data, '$.quantity') AS quantity,
       json_extract(data, '$.price_paid') AS price_cents,
       json_extract(data, '$.addons_price_paid') AS addons_price_cents,
       json_extract(data, '$.created_at') AS created_at,
       json_extract(data, '$.expires_at') AS expires_at,
       json_extract(data, '$.auto_renewal') AS auto_renewal,
       json_extract(data, '$.tag') AS tag,
       data AS order_json,
       taken_at
FROM entity_snapshot
WHERE provider = 'proxyshard' AND kind = 'order';

-- hydraproxy_order_history: one row per HydraProxy order and UTC day its details
-- (order_details/) were taken: once a day for an order in use, again when the listing
-- shows it changed, never again for an ended order the listing still shows the same.
--   order_id TEXT; day TEXT 'YYYY-MM-DD'; status TEXT ('ACTIVE', 'TERMINATED', …)
--   network_type TEXT 'MOBILE' or 'RESIDENTIAL'; price_usd REAL
--   date_created, date_end TEXT as HydraProxy sends them ('2020-10-29 11:35:21', UTC;
--   date_end for MOBILE orders); initial_bandwidth, bandwidth_available REAL in GB
--   (RESIDENTIAL orders: bought, and left); extension_gb, extension_days, extension_usd
--   REAL what the order's extensions added (GB for residential, days for mobile) and cost,
--   0 without any; ports_nr, days_nr REAL (MOBILE orders are priced per port and day);
--   order_json TEXT the whole snapshot, with connection_type and the extensions as sent
--   (never the proxy's credentials)
CREATE VIEW hydraproxy_order_history AS
SELECT account, entity_id AS order_id, day,
       json_extract(data, '$.status') AS status,
       json_extract(data, '$.network_type') AS network_type,
       json_extract(data, '$.price_usd') AS price_usd,
       json_extract(data, '$.date_created') AS date_created,
       json_extract(data, '$.date_end') AS date_end,
       json_extract(data, '$.initial_bandwidth') AS initial_bandwidth,
       json_extract(data, '$.bandwidth_available') AS bandwidth_available,
       coalesce(json_extract(data, '$.extension_gb'), 0) AS extension_gb,
       coalesce(json_extract(data, '$.extension_days'), 0) AS extension_days,
       coalesce(json_extract(data, '$.extension_usd'), 0) AS extension_usd,
       json_extract(data, '$.ports_nr') AS ports_nr,
       json_extract(data, '$.days_nr') AS days_nr,
       data AS order_json,
       taken_at
FROM entity_snapshot
WHERE provider = 'hydraproxy' AND kind = 'order';

-- hostens_invoices: one row per Hostens invoice, as last seen (a change of status or
-- datepaid is seen on the next run that fetches it).
--   invoice_id, number TEXT; date, duedate, paybefore TEXT 'YYYY-MM-DD'; datepaid TEXT
--   'YYYY-MM-DD HH:MM:SS' or NULL; status TEXT ('Paid', 'Unpaid', 'Cancelled',
--   'Refunded', …); subtotal, credit (paid from the account's credit), tax, tax2, total
--   REAL in `currency`; taxrate REAL percent; items_json TEXT the invoice's lines. The
--   account holder's address (the body's `client` block) is never kept.
CREATE VIEW hostens_invoices AS
SELECT e.account, e.entity_id AS invoice_id,
       json_extract(e.data, '$.number') AS number,
       json_extract(e.data, '$.date') AS date,
       json_extract(e.data, '$.duedate') AS duedate,
       json_extract(e.data, '$.paybefore') AS paybefore,
       json_extract(e.data, '$.datepaid') AS datepaid,
       json_extract(e.data, '$.status') AS status,
       json_extract(e.data, '$.subtotal') AS subtotal,
       json_extract(e.data, '$.credit') AS credit,
       json_extract(e.data, '$.tax') AS tax,
       json_extract(e.data, '$.taxrate') AS taxrate,
       json_extract(e.data, '$.tax2') AS tax2,
       json_extract(e.data, '$.total') AS total,
       json_extract(e.data, '$.currency') AS currency,
       json_extract(e.data, '$.items') AS items_json,
       e.taken_at
FROM entity_snapshot e
WHERE e.provider = 'hostens' AND e.kind = 'invoice'
  AND e.day = (SELECT max(l.day) FROM entity_snapshot l
               WHERE l.provider = e.provider AND l.account = e.account
                 AND l.kind = e.kind AND l.entity_id = e.entity_id);

-- hostens_service_history: one row per Hostens service and UTC day it was seen.
--   service_id TEXT; day TEXT 'YYYY-MM-DD'; name, domain, status, billingcycle TEXT;
--   listed_status TEXT the status the listing showed when the snapshot was taken (it
--   may differ from the details' status; a change of it takes a new snapshot);
--   total REAL (the recurring amount); next_due TEXT 'YYYY-MM-DD'; service_json TEXT
--   the whole details (never the service's password)
CREATE VIEW hostens_service_history AS
SELECT account, entity_id AS service_id, day,
       json_extract(data, '$.name') AS name,
       json_extract(data, '$.domain') AS domain,
       json_extract(data, '$.status') AS status,
       json_extract(data, '$.listing.status') AS listed_status,
       json_extract(data, '$.billingcycle') AS billingcycle,
       json_extract(data, '$.total') AS total,
       json_extract(data, '$.next_due') AS next_due,
       data AS service_json,
       taken_at
FROM entity_snapshot
WHERE provider = 'hostens' AND kind = 'service';

-- hostens_domain_history: one row per Hostens domain and UTC day it was seen.
--   domain_id TEXT; name, status TEXT; recurring_amount REAL (per period, in the
--   account's currency); period_years TEXT; expires, next_due TEXT 'YYYY-MM-DD';
--   autorenew TEXT '1' or '0'; domain_json TEXT the whole details
CREATE VIEW hostens_domain_history AS
SELECT account, entity_id AS domain_id, day,
       json_extract(data, '$.name') AS name,
       json_extract(data, '$.status') AS status,
       json_extract(data, '$.recurring_amount') AS recurring_amount,
       json_extract(data, '$.period') AS period_years,
       json_extract(data, '$.expires') AS expires,
       json_extract(data, '$.next_due') AS next_due,
       json_extract(data, '$.autorenew') AS autorenew,
       data AS domain_json,
       taken_at
FROM entity_snapshot
WHERE provider = 'hostens' AND kind = 'domain';

-- hostens_certificate_history: one row per Hostens SSL certificate and UTC day it was seen.
--   certificate_id TEXT; name, domain, status, billingcycle TEXT; total REAL the
--   recurring amount; next_due TEXT 'YYYY-MM-DD'; cert_status TEXT; cert_expires TEXT
--   'YYYY-MM-DD HH:MM:SS'; certificate_json TEXT the details without the CSR, contacts,
--   organization and e-mail
CREATE VIEW hostens_certificate_history AS
SELECT account, entity_id AS certificate_id, day,
       json_extract(data, '$.name') AS name,
       json_extract(data, '$.domain') AS domain,
       json_extract(data, '$.status') AS status,
       json_extract(data, '$.total') AS total,
       json_extract(data, '$.billingcycle') AS billingcycle,
       json_extract(data, '$.next_due') AS next_due,
       json_extract(data, '$.cert_status') AS cert_status,
       json_extract(data, '$.cert_expires') AS cert_expires,
       data AS certificate_json,
       taken_at
FROM entity_snapshot
WHERE provider = 'hostens' AND kind = 'certificate';

-- hostens_monthly: one row per Hostens server and month of its usage history.
--   server_id TEXT; month TEXT 'YYYY-MM'; bw_in_mb (download), bw_out_mb (upload), total_mb REAL in MB
--   quota_usage, quota_limit, inode_usage, inode_limit REAL as Hostens reports them (NULL if absent)
--   is_final INT 1 once fetched after the month ended
--
-- hostens_server_history: one row per Hostens server and UTC day it was seen: the
--   server details (GET /server/@id) as last seen that day. bw_in/bw_out are the
--   running counters in the provider's bandwidth_unit, disk_usage/ram_used the
--   gauges; daily traffic derived from the counters is in usage_daily (derived = 1).
CREATE VIEW hostens_monthly AS
SELECT m.account, m.subject AS server_id, m.month,
       m.download_mb AS bw_in_mb, m.upload_mb AS bw_out_mb, m.total_mb,
       r.quota_usage, r.quota_limit, r.inode_usage, r.inode_limit, m.is_final
FROM month_usage m
LEFT JOIN month_resources r
       ON r.provider = m.provider AND r.account = m.account AND r.subject = m.subject
      AND r.month = m.month
WHERE m.provider = 'hostens';

CREATE VIEW hostens_server_history AS
SELECT account, entity_id AS server_id, day,
       json_extract(data, '$.status') AS status,
       json_extract(data, '$.label') AS label,
       json_extract(data, '$.domain') AS domain,
       json_extract(data, '$.bw_in') AS bw_in,
       json_extract(data, '$.bw_out') AS bw_out,
       json_extract(data, '$.bw_limit') AS bw_limit,
       json_extract(data, '$.disk_usage') AS disk_usage,
       json_extract(data, '$.disk_limit') AS disk_limit,
       json_extract(data, '$.ram_used') AS ram_used,
       json_extract(data, '$.ram_limit') AS ram_limit,
       json_extract(data, '$.synch_date') AS synch_date,
       data AS server_json,
       taken_at
FROM entity_snapshot
WHERE provider = 'hostens' AND kind = 'server';

-- coverage_gaps: one row per stretch of days between two stretches that
-- successful fetches covered, per subject: days never archived. (status adds
-- the days after a subject's last covered day, and tells recoverable from lost.)
--   first_day, last_day TEXT 'YYYY-MM-DD' of the stretch; days INT its length
CREATE VIEW coverage_gaps AS
SELECT provider, account, subject,
       date(previous_last_day, '+1 day') AS first_day,
       date(first_day, '-1 day') AS last_day,
       CAST(julianday(first_day) - julianday(previous_last_day) - 1 AS INTEGER) AS days
FROM (
    SELECT provider, account, subject, first_day,
           lag(last_day) OVER (PARTITION BY provider, account, subject ORDER BY first_day)
               AS previous_last_day
    FROM subject_coverage
)
WHERE previous_last_day IS NOT NULL;
