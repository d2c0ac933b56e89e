-- SPDX-License-Identifier: MIT
-- gradwatch storage, version 3: compressed chunks, an append-only tail,
-- bounded chunk spans, distinct point counts.
--
-- chunks.data replaces the raw steps and vals blobs: one blob in the
-- format of daemon/chunk.h (delta-of-delta steps, Gorilla XOR values,
-- float32 patterns when every value is a widened float32), read and
-- written only through that module.  gradwatchd re-encodes every chunk
-- of an older database right after this script, in the same
-- transaction, then drops the old columns (store.c, store_migrate).
--
-- tails: the newest points of each series, appended as small rows (one
-- per series and commit) at the end of the table, so a commit writes
-- O(new points) pages however long the run is; when a series' tail rows
-- hold enough points the writer seals them into one chunk and deletes
-- them.  A series' points are its chunks' and its tails' together; no
-- step is stored twice across both.  Tail rows carry no summary: they
-- are small, and readers decode them.
--
-- series.max_span bounds last_step - first_step over the series' chunks
-- and tail rows, so that the chunks meeting steps [from, to] are found
-- in the index by first_step BETWEEN from - max_span AND to, whatever
-- the run's length.
--
-- runs.points and series.points count distinct stored steps (a step
-- sent again replaces its value and is not counted twice).

ALTER TABLE chunks ADD COLUMN data BLOB;

ALTER TABLE series ADD COLUMN max_span INTEGER NOT NULL DEFAULT 0;

CREATE TABLE tails (
	id		INTEGER PRIMARY KEY,
	series_id	INTEGER NOT NULL REFERENCES series(id) ON DELETE CASCADE,
	first_step	INTEGER NOT NULL,
	last_step	INTEGER NOT NULL,
	n		INTEGER NOT NULL CHECK (n > 0),
	data		BLOB NOT NULL		-- daemon/chunk.h's format
);
CREATE INDEX tails_by_series ON tails(series_id, first_step);

-- quarantine: rows whose blobs gradwatchd found damaged (a legacy chunk
-- at this migration, or later a chunk or tail row that does not decode),
-- moved here whole instead of being dropped or trusted, each with the
-- reason and a warning in the log naming it.  Their points are not part
-- of their series (series.points and runs.points no longer count them);
-- the blobs stay for whoever wants to look at them.  source is the table
-- the row was in and source_id its id there; steps and vals hold a
-- legacy chunk's blobs (schema 0001's layout), data a chunk.h blob.
CREATE TABLE quarantine (
	id		INTEGER PRIMARY KEY,
	series_id	INTEGER REFERENCES series(id) ON DELETE CASCADE,
	source		TEXT NOT NULL CHECK (source IN ('chunks', 'tails')),
	source_id	INTEGER NOT NULL,
	first_step	INTEGER,
	last_step	INTEGER,
	n		INTEGER,
	steps		BLOB,
	vals		BLOB,
	data		BLOB,
	reason		TEXT NOT NULL,
	quarantined_at	REAL NOT NULL
);
