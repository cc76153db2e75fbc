-- 0012 (issue 22): implausible final days are marked, never silent.
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
