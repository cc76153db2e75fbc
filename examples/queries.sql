-- Example queries over the archive's views (see schema.sql for every column).
--
--   sqlite3 -readonly -header -column usage-archiver-demo.db < examples/queries.sql
--
-- Each one also appears in docs/archive.md or the README, and a test runs them on the demo archive.

-- Daily usage of one order
SELECT day, upload_mb, download_mb, total_mb, is_final
FROM usage_daily
WHERE provider = 'hydraproxy' AND subject = '37000'
ORDER BY day;

-- Month totals per provider, in GB
SELECT month, provider, round(sum(total_mb) / 1024, 2) AS total_gb
FROM usage_monthly
WHERE source = 'rollup'
GROUP BY month, provider
ORDER BY month, provider;

-- Top ten subjects of the last 30 days
SELECT provider, account, subject, round(sum(total_mb), 1) AS total_mb
FROM usage_daily
WHERE day >= date('now', '-30 days')
GROUP BY provider, account, subject
ORDER BY total_mb DESC
LIMIT 10;

-- Balance trend
SELECT day, provider, account, metric, value, unit
FROM balance_snapshots
ORDER BY provider, account, metric, day;

-- When ProxyShard orders changed status
SELECT order_id, day, previous_status, status
FROM (
    SELECT order_id, day, status,
           lag(status) OVER (PARTITION BY account, order_id ORDER BY day) AS previous_status
    FROM proxyshard_order_history
)
WHERE previous_status IS NOT status AND previous_status IS NOT NULL
ORDER BY day, order_id;

-- Hostens servers: reported months beside disk use, and the daily traffic derived from the counters
SELECT server_id, month, bw_in_mb, bw_out_mb, quota_usage, quota_limit, is_final
FROM hostens_monthly
ORDER BY server_id, month;

SELECT d.subject AS server_id, d.day, d.download_mb, d.upload_mb, h.disk_usage, h.ram_used
FROM usage_daily d
JOIN hostens_server_history h
  ON h.account = d.account AND h.server_id = d.subject AND h.day = d.day
WHERE d.provider = 'hostens'
ORDER BY d.subject, d.day;

-- HydraProxy residential orders: GB bought (extensions included), used (archived days) and left
SELECT o.account, o.order_id, o.status,
       o.initial_bandwidth + o.extension_gb AS bought_gb,
       round(coalesce(sum(u.total_mb), 0) / 1024, 3) AS used_gb_archived,
       o.bandwidth_available AS left_gb
FROM hydraproxy_order_history o
LEFT JOIN usage_daily u
  ON u.provider = 'hydraproxy' AND u.account = o.account AND u.subject = o.order_id
WHERE o.network_type = 'RESIDENTIAL'
  AND o.day = (SELECT max(day) FROM hydraproxy_order_history l
               WHERE l.account = o.account AND l.order_id = o.order_id)
GROUP BY o.account, o.order_id
ORDER BY used_gb_archived DESC;

-- What each HydraProxy residential order cost per GB it used (extensions included)
SELECT o.account, o.order_id, o.price_usd + o.extension_usd AS paid_usd,
       round(sum(u.total_mb) / 1024, 3) AS used_gb,
       round((o.price_usd + o.extension_usd) / (sum(u.total_mb) / 1024), 2) AS usd_per_gb
FROM hydraproxy_order_history o
JOIN usage_daily u
  ON u.provider = 'hydraproxy' AND u.account = o.account AND u.subject = o.order_id
WHERE o.network_type = 'RESIDENTIAL'
  AND o.day = (SELECT max(day) FROM hydraproxy_order_history l
               WHERE l.account = o.account AND l.order_id = o.order_id)
GROUP BY o.account, o.order_id
HAVING sum(u.total_mb) > 0
ORDER BY usd_per_gb DESC;

-- HydraProxy mobile orders are priced per port and day, not per GB
SELECT o.account, o.order_id, o.price_usd + o.extension_usd AS paid_usd, o.ports_nr,
       o.days_nr + o.extension_days AS days,
       round((o.price_usd + o.extension_usd) / (o.ports_nr * (o.days_nr + o.extension_days)), 2)
         AS usd_per_port_day
FROM hydraproxy_order_history o
WHERE o.network_type = 'MOBILE' AND o.ports_nr > 0 AND o.days_nr > 0
  AND o.day = (SELECT max(day) FROM hydraproxy_order_history l
               WHERE l.account = o.account AND l.order_id = o.order_id)
ORDER BY usd_per_port_day DESC;

-- Hostens spend per month, from the invoices (cancelled and refunded ones left out)
SELECT substr(date, 1, 7) AS month, account, currency,
       round(sum(total), 2) AS invoiced,
       round(sum(CASE WHEN status = 'Paid' THEN total ELSE 0 END), 2) AS paid,
       round(sum(coalesce(credit, 0)), 2) AS from_credit
FROM hostens_invoices
WHERE status NOT IN ('Cancelled', 'Refunded')
GROUP BY month, account, currency
ORDER BY month, account;

-- Hostens renewals: each domain's and certificate's next due date and recurring amount
SELECT 'domain' AS kind, account, name, next_due, recurring_amount AS amount, status
FROM hostens_domain_history d
WHERE day = (SELECT max(day) FROM hostens_domain_history l
             WHERE l.account = d.account AND l.domain_id = d.domain_id)
UNION ALL
SELECT 'certificate', account, name || ' (' || domain || ')', next_due, total, status
FROM hostens_certificate_history c
WHERE day = (SELECT max(day) FROM hostens_certificate_history l
             WHERE l.account = c.account AND l.certificate_id = c.certificate_id)
ORDER BY next_due, kind, name;

-- ProxyShard usage per named sub-user
SELECT s.label AS sub_user, u.account, u.subject, round(sum(u.total_mb), 1) AS total_mb
FROM usage_daily u
JOIN subjects s ON s.provider = u.provider AND s.account = u.account AND s.subject = u.subject
WHERE u.provider = 'proxyshard' AND s.label IS NOT NULL
GROUP BY u.account, u.subject
ORDER BY total_mb DESC;

-- Runs that did not fully succeed in the last week, and final days that changed
SELECT started_at, provider, account, status, subjects_failed, error
FROM sync_runs
WHERE status <> 'ok' AND started_at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-7 days')
ORDER BY id DESC;

SELECT provider, account, subject, period, old_total_mb, new_total_mb, changed_at
FROM usage_revisions
ORDER BY changed_at DESC;

-- Stretches of days never archived (status --json adds the days after each subject's last covered day)
SELECT provider, account, subject, first_day, last_day, days
FROM coverage_gaps
ORDER BY provider, account, subject, first_day;
