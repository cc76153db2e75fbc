-- 0009 (issue 15): the archive is marked as usage-archiver's, runs a crash left
-- 'running' can be marked 'crashed', each run records the process that ran it, and
-- the token chains leave the archive.
--
-- Before this runs, the binary moves auth_token's rows to the credential file beside
-- the archive and turns on secure_delete, so the pages that held them are zeroed.
-- sync_run is rebuilt (its CHECK changes) with foreign keys off, so sync_error keeps
-- its rows; the sync_runs view is made again over the new table.

PRAGMA application_id = 1430344259;

DROP VIEW sync_runs;

-- With foreign keys off and the legacy rename, sync_error keeps referring to "sync_run",
-- which is the new table once the old one is dropped.
PRAGMA legacy_alter_table = ON;
ALTER TABLE sync_run RENAME TO sync_run_v8;
DROP INDEX sync_run_account;

CREATE TABLE sync_run (
    id              INTEGER PRIMARY KEY,
    provider        TEXT NOT NULL,
    account         TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    status          TEXT NOT NULL CHECK (status IN ('running', 'ok', 'partial', 'failed', 'interrupted', 'crashed')),
    subjects_ok     INTEGER NOT NULL DEFAULT 0,
    subjects_failed INTEGER NOT NULL DEFAULT 0,
    rows_inserted   INTEGER NOT NULL DEFAULT 0,
    rows_updated    INTEGER NOT NULL DEFAULT 0,
    error           TEXT,
    pid             INTEGER
) STRICT;
CREATE INDEX sync_run_account ON sync_run (provider, account, id);

INSERT INTO sync_run (id, provider, account, started_at, finished_at, status, subjects_ok,
                      subjects_failed, rows_inserted, rows_updated, error)
SELECT id, provider, account, started_at, finished_at, status, subjects_ok,
       subjects_failed, rows_inserted, rows_updated, error
FROM sync_run_v8 ORDER BY id;

DROP TABLE sync_run_v8;
PRAGMA legacy_alter_table = OFF;

CREATE VIEW sync_runs AS
SELECT id, provider, account, started_at, finished_at, status, subjects_ok,
       subjects_failed, rows_inserted, rows_updated, error
FROM sync_run;

DELETE FROM auth_token;
DROP TABLE auth_token;
