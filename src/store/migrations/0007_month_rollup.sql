-- 0007: month_rollup, each subject's days summed per month, kept by the writer
-- in the same transaction as the days (store::usage::upsert_days). usage_monthly's
-- rollups, `report --by month` and `status` read it instead of summing day_usage,
-- so an archive of 10 million day rows answers in milliseconds (BENCHMARKS.md).

CREATE TABLE month_rollup (
    provider    TEXT NOT NULL,
    account     TEXT NOT NULL,
    subject     TEXT NOT NULL,
    month       TEXT NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]'),
    days        INTEGER NOT NULL CHECK (days > 0),
    last_day    TEXT NOT NULL,
    upload_mb   REAL,
    download_mb REAL,
    total_mb    REAL NOT NULL,
    is_final    INTEGER NOT NULL CHECK (is_final IN (0, 1)),
    PRIMARY KEY (provider, account, subject, month)
) STRICT, WITHOUT ROWID;

INSERT INTO month_rollup (provider, account, subject, month, days, last_day, upload_mb,
                          download_mb, total_mb, is_final)
SELECT provider, account, subject, substr(day, 1, 7), count(*), max(day),
       CASE WHEN count(upload_mb) = count(*) THEN sum(upload_mb) END,
       CASE WHEN count(download_mb) = count(*) THEN sum(download_mb) END,
       sum(total_mb), min(is_final)
FROM day_usage
GROUP BY provider, account, subject, substr(day, 1, 7);

DROP VIEW usage_monthly;
CREATE VIEW usage_monthly AS
SELECT provider, account, subject, month, upload_mb, download_mb, total_mb, is_final,
       'reported' AS source
FROM month_usage
UNION ALL
SELECT provider, account, subject, month, upload_mb, download_mb, total_mb,
       is_final * (month < strftime('%Y-%m', 'now')) AS is_final,
       'rollup' AS source
FROM month_rollup;
