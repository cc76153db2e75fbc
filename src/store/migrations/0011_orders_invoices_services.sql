-- 0011 (issue 18): what gives usage its meaning, as views over the daily snapshots.
--
-- hydraproxy_order_history: one row per HydraProxy order and UTC day its details were
-- taken (order_details/: status, network type, price, dates, bandwidth bought and left).
-- hostens_invoices: one row per Hostens invoice, its latest snapshot (status and
-- datepaid change it); the account holder's address block is never kept.
-- hostens_service_history: one row per Hostens service and UTC day it was seen.

CREATE VIEW hydraproxy_order_history AS
SELECT account, entity_id AS order_id, day,
       json_extract(data, '$.status') AS status,
       json_extract(data, '$.network_type') AS network_type,
       json_extract(data, '$.price_usd') AS price_usd,
       json_extract(data, '$.date_created') AS date_created,
       json_extract(data, '$.date_end') AS date_end,
       json_extract(data, '$.initial_bandwidth') AS initial_bandwidth,
       json_extract(data, '$.bandwidth_available') AS bandwidth_available,
       data AS order_json,
       taken_at
FROM entity_snapshot
WHERE provider = 'hydraproxy' AND kind = 'order';

CREATE VIEW hostens_invoices AS
SELECT e.account, e.entity_id AS invoice_id,
       json_extract(e.data, '$.number') AS number,
       json_extract(e.data, '$.date') AS date,
       json_extract(e.data, '$.duedate') AS duedate,
       json_extract(e.data, '$.datepaid') AS datepaid,
       json_extract(e.data, '$.status') AS status,
       json_extract(e.data, '$.subtotal') AS subtotal,
       json_extract(e.data, '$.tax') AS tax,
       json_extract(e.data, '$.total') AS total,
       json_extract(e.data, '$.currency') AS currency,
       json_extract(e.data, '$.items') AS items_json,
       e.taken_at
FROM entity_snapshot e
WHERE e.provider = 'hostens' AND e.kind = 'invoice'
  AND e.day = (SELECT max(l.day) FROM entity_snapshot l
               WHERE l.provider = e.provider AND l.account = e.account
                 AND l.kind = e.kind AND l.entity_id = e.entity_id);

CREATE VIEW hostens_service_history AS
SELECT account, entity_id AS service_id, day,
       json_extract(data, '$.name') AS name,
       json_extract(data, '$.domain') AS domain,
       json_extract(data, '$.status') AS status,
       json_extract(data, '$.billingcycle') AS billingcycle,
       json_extract(data, '$.total') AS total,
       json_extract(data, '$.next_due') AS next_due,
       data AS service_json,
       taken_at
FROM entity_snapshot
WHERE provider = 'hostens' AND kind = 'service';

-- InfiniteProxies customer balances are MB, not GB (README, decisions): the figures
-- stay as they were, only the unit they were labelled with is corrected.
UPDATE balance_snapshot SET unit = 'MB'
WHERE provider = 'infiniteproxies' AND metric LIKE 'customer\_balance:%' ESCAPE '\' AND unit = 'GB';
