-- Wharf metadata schema, version 2: upload sessions know who opened them and when they were last
-- used, so that idle sessions expire and open sessions are capped per principal and per registry.
-- Sessions recorded by version 1 have no principal and count as last used when they were created.
ALTER TABLE uploads ADD COLUMN principal TEXT;
ALTER TABLE uploads ADD COLUMN last_activity INTEGER NOT NULL DEFAULT 0;
UPDATE uploads SET last_activity = created_at;
CREATE INDEX uploads_by_last_activity ON uploads (last_activity);
CREATE INDEX uploads_by_principal ON uploads (principal) WHERE principal IS NOT NULL;
