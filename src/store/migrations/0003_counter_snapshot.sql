-- 0003: snapshots of providers' running traffic counters, from which days are derived.
--
-- Per subject, counter and UTC day, two rows: the day's first snapshot, and
-- its latest one, which also carries the increase accumulated over every
-- snapshot of the day so far (a drop counts the new value from zero). Day D's
-- usage is latest(D).accumulated_mb plus the increase from latest(D) to
-- first(D+1) (SPEC §5.7); without a snapshot on D+1, D stays provisional.
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
