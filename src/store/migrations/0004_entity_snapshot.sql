-- 0004: daily snapshots of provider objects (ProxyShard orders), and the order history view.
--
-- One row per provider/account/kind/id and UTC day: the object's JSON as last
-- seen that day (credentials removed). An unchanged object is not rewritten.
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
