-- A schema change the running (older) code survives: a new column with a default.
ALTER TABLE notes ADD COLUMN author TEXT NOT NULL DEFAULT 'unknown';
