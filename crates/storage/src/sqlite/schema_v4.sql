-- Wharf metadata schema, version 4: the claimed ticks of ACR Tasks' timer triggers. Times are
-- unix nanoseconds (UTC).

-- One row per tick of a task's timer trigger that queued its run: the primary key is the claim,
-- so a tick runs once whichever process (or replica) sees it, and across restarts. Task ids are
-- lowercased; trigger names are kept as given. Rows outlive their runs, tasks and registries
-- until the scheduler sweeps old ticks. `registry` and `run_id` name the run the tick queued.
CREATE TABLE timer_ticks (
    task         TEXT NOT NULL,
    trigger_name TEXT NOT NULL,
    tick         INTEGER NOT NULL,
    registry     TEXT,
    run_id       TEXT,
    claimed_at   INTEGER NOT NULL,
    PRIMARY KEY (task, trigger_name, tick)
) WITHOUT ROWID;
CREATE INDEX timer_ticks_by_tick ON timer_ticks (tick);
