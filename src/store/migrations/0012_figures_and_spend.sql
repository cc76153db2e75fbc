-- 0012 (issues 22, 23): implausible final days are marked, never silent; the spend
-- views carry what a reseller reconciles with.
--
-- day_flag: a final day whose figure is above what the subject could use in a day
-- (the counter's own allocation, ProxyShard `data`; or the account's max_day_mb)
-- is kept as the provider gave it, and marked here. A later change to the day
-- clears its mark, and a write that still finds it implausible marks it again.
-- The same upgrade re-derives every counter-derived day from the snapshots kept
-- (store::rederive): days that earlier versions inflated by taking a snapshot
-- older than the latest one as a counter reset are corrected, each correction
-- of a final day recorded in usage_revision.

CREATE TABLE day_flag (
    subject_id INTEGER NOT NULL,
    day        TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
    reason     TEXT NOT NULL CHECK (reason IN ('over_allocation', 'over_ceiling')),
    total_mb   REAL NOT NULL,
    limit_mb   REAL NOT NULL,
    flagged_at TEXT NOT NULL,
    PRIMARY KEY (subject_id, day)
) STRICT, WITHOUT ROWID;

CREATE VIEW suspect_days AS
SELECT s.provider, s.account, s.subject, f.day, f.total_mb, f.limit_mb, f.reason, f.flagged_at
FROM day_flag f JOIN subject s ON s.id = f.subject_id;

-- Issue 23: HydraProxy extensions and prices per port and day, Hostens invoice credit
-- and taxes, the status a service's listing showed, and domains and certificates.
DROP VIEW hydraproxy_order_history;
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

DROP VIEW hostens_invoices;
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

DROP VIEW hostens_service_history;
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
