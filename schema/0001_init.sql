-- SPDX-License-Identifier: MIT
-- gradwatch storage, version 1.
--
-- Layout.  A training step carries tens to thousands of per-layer values,
-- so a point is not a row: a row would cost ~100 bytes of index and
-- b-tree overhead per 8-byte value and cap ingest at a few hundred
-- thousand points a second.  Instead each series' points are stored in
-- chunks: one row holds a run of one series' points as two packed
-- arrays (steps and values), plus a summary (min, max, their steps,
-- whether any value is non-finite).  The writer turns every series of
-- a committed request group into one chunk, so a request of 50 steps x
-- 200 layers becomes 200 row inserts instead of 10,000.  Small appends
-- (a step or two per request) are merged into the series' tail chunk so
-- that a slow trickle does not degrade into one row per point.
--
-- Chunk blobs (little-endian, native on every supported machine):
--   vals:  n IEEE-754 binary64 values; NaN and +-Inf stored as such,
--          so they round-trip exactly (a bound NaN REAL would be NULL).
--   steps: n int64 steps in ascending order, or NULL when the chunk's
--          steps are exactly first_step, first_step+1, ..., last_step.
-- Invariant: within a series no step is stored in two chunks; the
-- writer rewrites older chunks when a step is sent again.  Ranges of
-- two chunks may still interleave (steps 0,2,4 and 1,3,5), so readers
-- merge by step.  The summary lets downsampling and the heatmap skip
-- the blobs of every chunk that lies wholly inside one bucket.
--
-- Non-finite scalars outside blobs (series.last_value, chunk min/max,
-- alert values) are REAL columns with a companion *_class column:
-- 0 finite (the REAL holds it), 1 NaN, 2 +Infinity, 3 -Infinity.

CREATE TABLE runs (
	id		INTEGER PRIMARY KEY,
	key		TEXT NOT NULL UNIQUE,
	project		TEXT,
	status		TEXT NOT NULL DEFAULT 'running'
			CHECK (status IN ('running', 'finished', 'failed', 'stalled')),
	health		TEXT NOT NULL DEFAULT 'ok'
			CHECK (health IN ('ok', 'warning', 'critical')),
	config		TEXT,		-- meta.config, compact JSON
	meta		TEXT,		-- the latest meta object, compact JSON
	first_step	INTEGER,
	last_step	INTEGER,
	started_at	REAL NOT NULL,	-- receive time of the first request
	last_seen	REAL NOT NULL,	-- receive time of the latest request
	points		INTEGER NOT NULL DEFAULT 0,	-- points written (resends count again)
	dropped		INTEGER NOT NULL DEFAULT 0	-- sum of the clients' dropped counts
);
CREATE INDEX runs_by_last_seen ON runs(last_seen);

CREATE TABLE series (
	id		INTEGER PRIMARY KEY,
	run_id		INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	kind		TEXT NOT NULL,	-- API.md's kinds, plus loss_scale, skipped, time
	name		TEXT NOT NULL,
	points		INTEGER NOT NULL DEFAULT 0,	-- distinct steps stored
	last_step	INTEGER,
	last_value	REAL,
	last_class	INTEGER NOT NULL DEFAULT 0,
	numel		INTEGER,	-- layer metadata from meta.layers
	depth		INTEGER,
	shape		TEXT,
	UNIQUE (run_id, kind, name)
);

CREATE TABLE chunks (
	id		INTEGER PRIMARY KEY,
	series_id	INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
	first_step	INTEGER NOT NULL,
	last_step	INTEGER NOT NULL,
	n		INTEGER NOT NULL CHECK (n > 0),
	steps		BLOB,		-- NULL: consecutive from first_step
	vals		BLOB NOT NULL,
	min_value	REAL,		-- over the finite values; NULL if none
	min_step	INTEGER,
	max_value	REAL,
	max_step	INTEGER,
	nonfinite	INTEGER NOT NULL DEFAULT 0	-- count of NaN/+-Inf values
);
CREATE INDEX chunks_by_series ON chunks(series_id, first_step);

CREATE TABLE alerts (
	id		INTEGER PRIMARY KEY,
	run_id		INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	kind		TEXT NOT NULL,
	severity	TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
	state		TEXT NOT NULL CHECK (state IN ('firing', 'resolved')),
	series		TEXT,
	onset_step	INTEGER,
	fire_step	INTEGER,
	resolve_step	INTEGER,
	fired_at	REAL NOT NULL,
	resolved_at	REAL,
	value		REAL,
	value_class	INTEGER NOT NULL DEFAULT 0,
	baseline	REAL,
	threshold	REAL,
	message		TEXT NOT NULL,
	detail		TEXT		-- JSON with extra context (lead time, top layers)
);
CREATE INDEX alerts_by_run ON alerts(run_id, state);
CREATE INDEX alerts_by_fired_at ON alerts(fired_at);
