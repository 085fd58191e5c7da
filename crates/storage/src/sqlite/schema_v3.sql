-- Wharf metadata schema, version 3: the run queue of ACR Tasks. Times are unix nanoseconds (UTC).

-- The last run number each registry key was given. Rows are never deleted (not even by a
-- registry purge), so a number is never handed out twice for a key.
CREATE TABLE run_counters (
    registry    TEXT PRIMARY KEY NOT NULL,
    last_number INTEGER NOT NULL
) WITHOUT ROWID;

-- Runs, deleted with their registry. Run ids and task names are compared case-insensitively
-- through their lowercased copies; the originals are returned as created. The status is the
-- tasks plane's; the store acts only on 'Queued', 'Started' and 'Running'.
CREATE TABLE runs (
    registry     TEXT NOT NULL,
    number       INTEGER NOT NULL,
    run_id       TEXT NOT NULL,
    run_id_lower TEXT NOT NULL,
    task         TEXT,
    task_lower   TEXT,
    status       TEXT NOT NULL,
    body         TEXT NOT NULL,
    agent        TEXT,
    lease_until  INTEGER,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (registry, number)
) WITHOUT ROWID;
CREATE UNIQUE INDEX runs_by_id ON runs (registry, run_id_lower);
CREATE INDEX runs_by_task ON runs (registry, task_lower, number);
-- The queue order: claims, queue positions, runs in progress and expired leases.
CREATE INDEX runs_by_status ON runs (status, created_at, registry, number);
