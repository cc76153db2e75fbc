-- 0008: subjects are numbered. day_usage and month_rollup were keyed by
-- (provider, account, subject, ...) as text, and comparing those strings on every
-- insert made the key alone cost 1.7x a plain insert (BENCHMARKS.md §1); they are now
-- keyed by (subject_id, ...), and the views join the names back, so queries over
-- usage_daily and usage_monthly see the same columns and rows as before.
--
-- The rows are copied in key order into the new tables, then the old ones are
-- dropped; the views and the revision trigger are made again over the new ones.

CREATE TABLE subject (
    id       INTEGER PRIMARY KEY,
    provider TEXT NOT NULL,
    account  TEXT NOT NULL,
    subject  TEXT NOT NULL,
    UNIQUE (provider, account, subject)
) STRICT;

INSERT INTO subject (provider, account, subject)
SELECT DISTINCT provider, account, subject FROM day_usage
UNION
SELECT DISTINCT provider, account, subject FROM month_rollup
ORDER BY 1, 2, 3;

DROP VIEW usage_daily;
DROP VIEW usage_monthly;
DROP TRIGGER day_usage_revision;
ALTER TABLE day_usage RENAME TO day_usage_v7;
ALTER TABLE month_rollup RENAME TO month_rollup_v7;

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

INSERT INTO day_usage (subject_id, day, upload_mb, download_mb, total_mb, is_final, derived,
                       first_seen_at, last_seen_at)
SELECT s.id, d.day, d.upload_mb, d.download_mb, d.total_mb, d.is_final, d.derived,
       d.first_seen_at, d.last_seen_at
FROM day_usage_v7 d
JOIN subject s ON s.provider = d.provider AND s.account = d.account AND s.subject = d.subject
ORDER BY s.id, d.day;
DROP TABLE day_usage_v7;

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

INSERT INTO month_rollup (subject_id, month, days, last_day, upload_mb, download_mb, total_mb,
                          is_final)
SELECT s.id, r.month, r.days, r.last_day, r.upload_mb, r.download_mb, r.total_mb, r.is_final
FROM month_rollup_v7 r
JOIN subject s ON s.provider = r.provider AND s.account = r.account AND s.subject = r.subject
ORDER BY s.id, r.month;
DROP TABLE month_rollup_v7;

CREATE TRIGGER day_usage_revision AFTER UPDATE ON day_usage
WHEN OLD.is_final = 1 AND (
    NEW.total_mb IS NOT OLD.total_mb OR NEW.upload_mb IS NOT OLD.upload_mb
    OR NEW.download_mb IS NOT OLD.download_mb)
BEGIN
    INSERT INTO usage_revision (provider, account, subject, period, old_total_mb, new_total_mb, changed_at)
    SELECT provider, account, subject, OLD.day, OLD.total_mb, NEW.total_mb, NEW.last_seen_at
    FROM subject WHERE id = OLD.subject_id;
END;

CREATE VIEW usage_daily AS
SELECT s.provider, s.account, s.subject, d.day, d.upload_mb, d.download_mb, d.total_mb,
       d.is_final, d.derived, d.first_seen_at, d.last_seen_at
FROM day_usage d JOIN subject s ON s.id = d.subject_id;

CREATE VIEW usage_monthly AS
SELECT provider, account, subject, month, upload_mb, download_mb, total_mb, is_final,
       'reported' AS source
FROM month_usage
UNION ALL
SELECT s.provider, s.account, s.subject, r.month, r.upload_mb, r.download_mb, r.total_mb,
       r.is_final * (r.month < strftime('%Y-%m', 'now')) AS is_final,
       'rollup' AS source
FROM month_rollup r JOIN subject s ON s.id = r.subject_id;
