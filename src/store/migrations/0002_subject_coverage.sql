-- 0002: which days each subject's successful fetches covered, for gap reports.
--
-- One row per maximal run of covered days. A fetch at day T of a provider
-- that keeps N days covers T-N+1 .. T, whether or not it returned rows for
-- them (HydraProxy omits days without usage). Days between two intervals
-- were never seen by the archive.
CREATE TABLE subject_coverage (
    provider  TEXT NOT NULL,
    account   TEXT NOT NULL,
    subject   TEXT NOT NULL,
    first_day TEXT NOT NULL CHECK (first_day GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
    last_day  TEXT NOT NULL CHECK (last_day >= first_day),
    PRIMARY KEY (provider, account, subject, first_day)
) STRICT, WITHOUT ROWID;

-- Archives from version 1 had no coverage: every archived day counts as covered.
INSERT INTO subject_coverage (provider, account, subject, first_day, last_day)
SELECT provider, account, subject, day, day FROM day_usage;
