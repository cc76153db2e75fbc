-- 0005: Hostens: the rotating refresh token, monthly disk and inode figures, and two views.

-- Credentials a provider rotates (Hostens refresh tokens). The newest token is
-- written here, durably, before it is used; `seed` is the refresh_token from
-- daemon.toml the chain started from, so a new seed in the config wins. This
-- table holds secrets: no view exposes it and `status` never reads it.
CREATE TABLE auth_token (
    provider      TEXT NOT NULL,
    account       TEXT NOT NULL,
    seed          TEXT NOT NULL,
    refresh_token TEXT NOT NULL,
    access_token  TEXT,
    rotated_at    TEXT NOT NULL,
    PRIMARY KEY (provider, account)
) STRICT, WITHOUT ROWID;

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
